%%% End-to-end: kapi_endpoint and kz_endpoint_amqp on this Erlang node, the
%%% real RabbitMQ, the real `kz-endpoint serve' (started by run-e2e.sh on a
%%% copy of fixtures/db under the account id in KZE_ACCOUNT_ID, its queue bound
%%% to that account only). Kazoo's own modules are the stand-ins of this folder.
%%% Fails, never skips, when RabbitMQ or the worker is not there.
-module(kz_endpoint_amqp_e2e_tests).

-include_lib("eunit/include/eunit.hrl").
-include_lib("amqp_client/include/amqp_client.hrl").

-define(CAT, <<"kazoo_endpoint">>).
-define(LOCAL, 'kz_endpoint_test_local').

-define(DEVICE, <<"5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b">>).      %% user_1002, Bob's desk phone
-define(USER_BOB, <<"d00dfeedd00dfeedd00dfeedd00dfe02">>).    %% two devices
-define(GROUP, <<"9a0b0000000000000000000000000010">>).       %% sales team, three legs
-define(CALLER_DEVICE, <<"9b1d7c2e5f4a4b0c8d3e2f1a0b9c8d7e">>).
-define(CALLER_OWNER, <<"c0ffee00c0ffee00c0ffee00c0ffee01">>).

%%% the suite ------------------------------------------------------------------

e2e_test_() ->
    {'setup'
    ,fun setup/0
    ,fun cleanup/1
    ,fun(Env) ->
             {'inorder'
             ,[{Name, {'timeout', 60, fun() -> before_each(), Fun(Env) end}}
               || {Name, Fun} <- cases()
              ]
             }
     end
    }.

cases() ->
    [{"device: legs from the worker, metaflows started locally", fun device/1}
    ,{"user: one build with the user id (kz_endpoints:by_owner_id)", fun user/1}
    ,{"group: the members' legs", fun group/1}
    ,{"each build_error code comes back as its atom, at once", fun error_codes/1}
    ,{"a build_error is not a fallback", fun error_is_not_fallback/1}
    ,{"timeout: a bound queue nobody answers falls back to the local module", fun timeout_fallback/1}
    ,{"returned: nothing bound falls back at once", fun returned_fallback/1}
    ,{"a build_error listed in amqp_fallback_error_codes is built locally", fun fallback_error_code/1}
    ,{"inline JSON endpoints and undefined ids are built locally", fun inline_local/1}
    ,{"off: built locally, nothing asked", fun mode_off/1}
    ,{"shadow: local answer returned, a difference logged field by field and counted", fun shadow_difference/1}
    ,{"shadow: agreeing builds count as a match, known differences ignored", fun shadow_match/1}
    ,{"shadow: users compared through by_owner_id", fun shadow_user/1}
    ,{"shadow: differences docs/compatibility.md lists are counted as listed, others reported", fun shadow_listed/1}
    ,{"shadow: a user's listed differences (forward substitutes, gating) are not reported", fun shadow_listed_user/1}
    ,{"shadow: each class needs its facts (Explain rows, leg shapes)", fun shadow_classes/1}
    ,{"the 4.3 variant of kapi_endpoint talks to the same worker", fun variant_43/1}
    ,{"a reply's Msg-ID is the request's (kz_amqp_worker correlation)", fun msg_id_correlation/1}
    ,{"pool error: no kz_amqp_worker pool falls back", fun pool_fallback/1}
    ].

setup() ->
    AmqpUrl = env("KZE_AMQP_URL"),
    AccountId = list_to_binary(env("KZE_ACCOUNT_ID")),
    RunId = list_to_binary(env("KZE_RUN_ID")),
    %% the AMQP stack: the stand-in pool, or (by hand) a module that starts Kazoo's own
    Stack = stack(),
    case Stack:start_pool(AmqpUrl, 4) of
        'ok' -> 'ok';
        Error -> erlang:error({'rabbitmq_unreachable', AmqpUrl, Error})
    end,
    %% the suite's own plumbing, on a connection of its own
    {'ok', Params} = amqp_uri:parse(AmqpUrl),
    {'ok', Conn} = amqp_connection:start(Params),
    {'ok', Channel} = amqp_connection:open_channel(Conn),
    [#'exchange.declare_ok'{} = amqp_channel:call(Channel, #'exchange.declare'{exchange = X, type = T})
     || {X, T} <- [{<<"kapps">>, <<"topic">>}, {<<"targeted">>, <<"direct">>}]
    ],
    %% an account whose requests reach a queue nobody consumes (timeout), and
    %% one nothing is bound for (returned)
    Silent = rand_account(),
    Unbound = rand_account(),
    SilentQ = <<"kze-erlang-e2e-silent-", RunId/binary>>,
    %% exclusive: gone with the connection, whatever happens
    #'queue.declare_ok'{} =
        amqp_channel:call(Channel, #'queue.declare'{queue = SilentQ, exclusive = 'true', auto_delete = 'true'}),
    #'queue.bind_ok'{} =
        amqp_channel:call(Channel, #'queue.bind'{queue = SilentQ, exchange = <<"kapps">>
                                                ,routing_key = kapi_endpoint:routing_key(Silent)
                                                }),
    Env = #{account => AccountId, silent => Silent, unbound => Unbound, conn => Conn, stack => Stack},
    wait_for_worker(Env, 200),
    Env.

cleanup(#{conn := Conn, stack := Stack}) ->
    catch amqp_connection:close(Conn),
    Stack:stop_pool().

stack() ->
    case os:getenv("KZE_STACK_MODULE") of
        'false' -> 'kz_amqp_worker';
        Module -> list_to_atom(Module)
    end.

%% the entry points callflow uses: Kazoo's kz_endpoint / kz_endpoints when they
%% are loaded (by hand, against Kazoo's real modules), else the backend itself
build(Id, Props, Call) ->
    case os:getenv("KZE_ENTRY") of
        "kazoo" -> kz_endpoint:build(Id, Props, Call);
        _ -> kz_endpoint_amqp:build(Id, Props, Call)
    end.

by_owner(Id, Props, Call) ->
    case os:getenv("KZE_ENTRY") of
        "kazoo" -> kz_endpoints:by_owner_id(Id, Props, Call);
        _ -> kz_endpoint_amqp:by_owner_id(Id, Props, Call)
    end.

env(Name) ->
    case os:getenv(Name) of
        'false' -> erlang:error({'missing_environment', Name, "run through erlang/test/run-e2e.sh"});
        Value -> Value
    end.

rand_account() -> kz_binary:rand_hex(16).

wait_for_worker(_Env, 0) -> erlang:error('worker_never_answered');
wait_for_worker(#{account := AccountId} = Env, N) ->
    Call = call(AccountId, []),
    case kz_endpoint_amqp:remote_build(?DEVICE, props(), Call) of
        {'ok', [_ | _]} -> 'ok';
        _ -> timer:sleep(100), wait_for_worker(Env, N - 1)
    end.

before_each() ->
    kapps_config:reset(),
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"on">>),
    kapps_config:set(?CAT, <<"amqp_fallback_module">>, ?LOCAL),
    kapps_config:set(?CAT, <<"amqp_shadow_compare_module">>, ?LOCAL),
    ?LOCAL:reset(),
    lager:clear(),
    kapps_config:set(?CAT, <<"endpoint_module">>, 'kz_endpoint_amqp'),
    kz_endpoint_amqp_stats:reset().

%%% calls as Kazoo's kapps_call:to_json/1 writes them ------------------------

props() -> kz_json:from_list([{<<"source">>, <<"cf_device">>}, {<<"timeout">>, 20}]).

%% Every key kapps_call:to_proplist/1 has (master and 4.3), with the types a
%% live call gives them: booleans, nested objects, a key-value store holding
%% strings, numbers, objects and lists, custom channel and application vars.
call(AccountId, Overrides) ->
    CallId = <<"e2e-", (kz_binary:rand_hex(6))/binary>>,
    Base = [{<<"Account-DB">>, account_db(AccountId)}
           ,{<<"Account-ID">>, AccountId}
           ,{<<"Authorizing-ID">>, ?CALLER_DEVICE}
           ,{<<"Authorizing-Type">>, <<"device">>}
           ,{<<"Bridge-ID">>, CallId}
           ,{<<"Call-Bridged">>, 'false'}
           ,{<<"Call-Direction">>, <<"inbound">>}
           ,{<<"Call-ID">>, CallId}
           ,{<<"Callee-ID-Name">>, <<"Bob Baker">>}
           ,{<<"Callee-ID-Number">>, <<"2000">>}
           ,{<<"Caller-ID-Name">>, <<"Front Desk">>}
           ,{<<"Caller-ID-Number">>, <<"1001">>}
           ,{<<"Control-Queue">>, <<"ecallmgr@fs1-<0.4242.0>-control">>}
           ,{<<"Controller-Queue">>, <<"pid://<0.7000.0>/kazoo_apps@apps1-callflow-q">>}
           ,{<<"Custom-Application-Vars">>, kz_json:from_list([{<<"campaign">>, <<"spring">>}])}
           ,{<<"Custom-Channel-Vars">>, kz_json:from_list([{<<"Account-ID">>, AccountId}
                                                          ,{<<"Authorizing-ID">>, ?CALLER_DEVICE}
                                                          ,{<<"Authorizing-Type">>, <<"device">>}
                                                          ,{<<"Owner-ID">>, ?CALLER_OWNER}
                                                          ,{<<"Realm">>, <<"acme.sip.example.com">>}
                                                          ,{<<"Username">>, <<"user_1001">>}
                                                          ,{<<"Channel-Authorized">>, <<"true">>}
                                                          ,{<<"Call-Interaction-ID">>, <<"63812345678-1a2b3c4d">>}
                                                          ])}
           ,{<<"Custom-SIP-Headers">>, kz_json:from_list([{<<"X-Custom">>, <<"1">>}])}
           ,{<<"Fetch-ID">>, <<"c8c0b2b4-0000-4000-8000-000000000001">>}
           ,{<<"From">>, <<"1001@acme.sip.example.com">>}
           ,{<<"From-Realm">>, <<"acme.sip.example.com">>}
           ,{<<"From-Tag">>, <<"a1b2c3">>}
           ,{<<"From-User">>, <<"1001">>}
           ,{<<"Inception">>, <<"on-net">>}
           ,{<<"Is-Recording">>, 'false'}
           ,{<<"Is-Call-Forward">>, 'false'}
           ,{<<"Key-Value-Store">>, kz_json:from_list([{<<"cf_flow_id">>, <<"f10f10f10f10f10f10f10f10f10f10f1">>}
                                                      ,{<<"cf_flow_name">>, <<"2000">>}
                                                      ,{<<"cf_capture_group">>, <<"2000">>}
                                                      ,{<<"cf_capture_groups">>, kz_json:new()}
                                                      ,{<<"cf_flow">>, kz_json:from_list([{<<"module">>, <<"device">>}])}
                                                      ,{<<"cf_history">>, [<<"device">>]}
                                                      ,{<<"owner_id">>, ?CALLER_OWNER}
                                                      ,{<<"original_cid_name">>, <<"Front Desk">>}
                                                      ,{<<"original_cid_number">>, <<"1001">>}
                                                      ,{<<"cf_max_depth">>, 30}
                                                      ,{<<"is_recording">>, 'false'}
                                                      ])}
           ,{<<"Language">>, <<"en-us">>}
           ,{<<"Message-Left">>, 'false'}
           ,{<<"Other-Leg-Call-ID">>, <<"other-", CallId/binary>>}
           ,{<<"Owner-ID">>, ?CALLER_OWNER}
           ,{<<"Request">>, <<"2000@acme.sip.example.com">>}
           ,{<<"Request-Realm">>, <<"acme.sip.example.com">>}
           ,{<<"Request-User">>, <<"2000">>}
           ,{<<"Resource-Type">>, <<"audio">>}
           ,{<<"Switch-Hostname">>, <<"fs1.example.com">>}
           ,{<<"Switch-Nodename">>, <<"freeswitch@fs1.example.com">>}
           ,{<<"Switch-URI">>, <<"sip:10.0.0.11:5060">>}
           ,{<<"Switch-URL">>, <<"sip:mod_sofia@10.0.0.11:11000">>}
           ,{<<"To">>, <<"2000@acme.sip.example.com">>}
           ,{<<"To-Realm">>, <<"acme.sip.example.com">>}
           ,{<<"To-Tag">>, <<"d4e5f6">>}
           ,{<<"To-User">>, <<"2000">>}
           ],
    Props = lists:foldl(fun({K, 'delete'}, Acc) -> lists:keydelete(K, 1, Acc);
                           ({K, V}, Acc) -> lists:keystore(K, 1, Acc, {K, V})
                        end
                       ,Base
                       ,Overrides
                       ),
    kapps_call:from_json(kz_json:from_list(Props)).

account_db(<<A:2/binary, B:2/binary, Rest/binary>>) ->
    <<"account%2F", A/binary, "%2F", B/binary, "%2F", Rest/binary>>.

local_builds() -> [Id || {'build', Id} <- ?LOCAL:calls()].

stat(Name) -> proplists:get_value(Name, kz_endpoint_amqp_stats:stats()).

logged(Pattern) ->
    [Text || {_Level, Text} <- lager:messages(), binary:match(Text, Pattern) =/= 'nomatch'].

wait_until(Fun) -> wait_until(Fun, 100).
wait_until(Fun, 0) -> ?assert(Fun());
wait_until(Fun, N) ->
    case Fun() of
        'true' -> 'ok';
        'false' -> timer:sleep(50), wait_until(Fun, N - 1)
    end.

%%% the cases ------------------------------------------------------------------

device(#{account := AccountId}) ->
    Call = call(AccountId, []),
    {'ok', [Leg]} = build(?DEVICE, props(), Call),
    ?assertEqual(<<"user_1002">>, kz_json:get_value(<<"To-User">>, Leg)),
    ?assertEqual(<<"username">>, kz_json:get_value(<<"Invite-Format">>, Leg)),
    ?assertEqual(<<"20">>, kz_json:get_value(<<"Endpoint-Timeout">>, Leg)),
    ?assertEqual(?DEVICE, kz_json:get_value(<<"Endpoint-ID">>, Leg)),
    ?assertEqual([], local_builds()),
    ?assertEqual(1, stat('remote_ok')),
    %% metaflows: asked of the local module for each returned leg
    ?assertEqual([?DEVICE], [Id || {'metaflow', Id} <- ?LOCAL:calls()]),
    %% build/2 is build/3 with empty properties
    ?assertMatch({'ok', [_]}, kz_endpoint_amqp:build(?DEVICE, Call)),
    %% no metaflows for a call that runs a metaflow app already
    ?LOCAL:reset(),
    MetaCall = kapps_call:insert_custom_channel_var(<<"Metaflow-App">>, <<"konami">>, Call),
    {'ok', [_]} = build(?DEVICE, props(), MetaCall),
    ?assertEqual([], [Id || {'metaflow', Id} <- ?LOCAL:calls()]).

user(#{account := AccountId}) ->
    Call = call(AccountId, []),
    Legs = by_owner(?USER_BOB, kz_json:from_list([{<<"source">>, <<"cf_user">>}]), Call),
    ?assertEqual(2, length(Legs)),
    ?assertEqual(1, stat('remote_requests')),
    ?assertEqual([], local_builds()),
    Owners = lists:usort([kz_json:get_value([<<"Custom-Channel-Vars">>, <<"Owner-ID">>], L) || L <- Legs]),
    ?assertEqual([?USER_BOB], Owners),
    %% a user that gets a build_error yields no legs, as kz_endpoints does
    ?assertEqual([], by_owner(<<"e4140000000000000000000000000020">>, kz_json:new(), Call)).

group(#{account := AccountId}) ->
    Call = call(AccountId, []),
    {'ok', Legs} = build(?GROUP, kz_json:from_list([{<<"source">>, <<"cf_group">>}]), Call),
    ?assertEqual(3, length(Legs)),
    ?assertEqual([], local_builds()).

error_cases() ->
    [{<<"0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d05">>, [], 'do_not_disturb'}
    ,{?CALLER_DEVICE, [], 'owner_called_self'}
    ,{?CALLER_DEVICE, [{<<"Owner-ID">>, 'delete'}], 'endpoint_called_self'}
    ,{<<"01d00000000000000000000000000015">>, [], 'endpoint_disabled'}
    ,{<<"90e00000000000000000000000000016">>, [], 'endpoint_deleted'}
    ,{<<"9e9e0000000000000000000000000017">>, [{<<"Custom-Channel-Vars">>, kz_json:from_list([{<<"Queue-ID">>, <<"a1b2c3d4e5f60718293a4b5c6d7e8f90">>}])}], 'exclude_from_queues'}
    ,{?DEVICE, [{<<"Resource-Type">>, 'delete'}], 'no_resource_type'}
    ,{?DEVICE, [{<<"Resource-Type">>, <<"video">>}], 'exception'}
    ,{<<"00000000000000000000000000000404">>, [], 'not_found'}
    ,{<<"b0c00000000000000000000000000018">>, [], 'not_device_nor_user'}
    ,{<<"d0040000000000000000000000000011">>, [], 'no_endpoints'}
    ,{<<"Sales-Phone">>, [], 'invalid_request'}
    ].

error_codes(#{account := AccountId}) ->
    kapps_config:set(?CAT, <<"amqp_timeout_ms">>, 1500),
    lists:foreach(fun({Id, Overrides, Expected}) ->
                          Call = call(AccountId, Overrides),
                          Start = erlang:monotonic_time('millisecond'),
                          Result = build(Id, props(), Call),
                          Elapsed = erlang:monotonic_time('millisecond') - Start,
                          ?assertEqual({Id, {'error', Expected}}, {Id, Result}),
                          %% the validation fun took the build_error: no wait for the timeout
                          ?assert(Elapsed < 1000)
                  end
                 ,error_cases()
                 ),
    ?assertEqual(length(error_cases()), stat('remote_error')),
    ?assertEqual([], local_builds()),
    %% every code of the wire format maps to its own atom; nothing else does
    [?assertEqual(binary_to_atom(C, 'utf8'), kz_endpoint_amqp:error_code(C)) || C <- kapi_endpoint:error_codes()],
    ?assertEqual('internal', kz_endpoint_amqp:error_code(<<"no_such_code_", (rand_account())/binary>>)).

error_is_not_fallback(#{account := AccountId}) ->
    ?assertEqual({'error', 'do_not_disturb'}
                ,build(<<"0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d05">>, props(), call(AccountId, []))),
    ?assertEqual(0, stat('fallback_timeout') + stat('fallback_returned') + stat('fallback_pool')),
    ?assertEqual([], local_builds()).

timeout_fallback(#{silent := Silent}) ->
    kapps_config:set(?CAT, <<"amqp_timeout_ms">>, 400),
    Start = erlang:monotonic_time('millisecond'),
    {'ok', [Leg]} = build(?DEVICE, props(), call(Silent, [])),
    Elapsed = erlang:monotonic_time('millisecond') - Start,
    ?assert(kz_json:is_true(<<"Local-Build">>, Leg)),
    ?assert(Elapsed >= 400),
    ?assert(Elapsed < 2500),
    ?assertEqual([?DEVICE], local_builds()),
    ?assertEqual(1, stat('fallback_timeout')),
    ?assertMatch([_], logged(<<"gave no answer (timeout)">>)).

returned_fallback(#{unbound := Unbound}) ->
    kapps_config:set(?CAT, <<"amqp_timeout_ms">>, 1500),
    Start = erlang:monotonic_time('millisecond'),
    {'ok', [Leg]} = build(?DEVICE, props(), call(Unbound, [])),
    Elapsed = erlang:monotonic_time('millisecond') - Start,
    ?assert(kz_json:is_true(<<"Local-Build">>, Leg)),
    ?assert(Elapsed < 500),
    ?assertEqual(1, stat('fallback_returned')),
    ?assertMatch([_], logged(<<"gave no answer (returned)">>)),
    %% a user falls back to the local module's by_owner_id semantics (v4: each owned device)
    kz_attributes:set_owned(?USER_BOB, [<<"d1">>, <<"d2">>]),
    Legs = by_owner(?USER_BOB, kz_json:new(), call(Unbound, [])),
    ?assertEqual([<<"local-d1">>, <<"local-d2">>], [kz_json:get_value(<<"To-User">>, L) || L <- Legs]),
    ?assertEqual([?DEVICE, <<"d1">>, <<"d2">>], lists:sort(local_builds())).

fallback_error_code(#{account := AccountId}) ->
    kapps_config:set(?CAT, <<"amqp_fallback_error_codes">>, [<<"not_found">>]),
    {'ok', [Leg]} = build(<<"00000000000000000000000000000404">>, props(), call(AccountId, [])),
    ?assert(kz_json:is_true(<<"Local-Build">>, Leg)),
    ?assertEqual(1, stat('fallback_error_code')).

inline_local(#{account := AccountId}) ->
    Call = call(AccountId, []),
    Inline = kz_json:from_list([{<<"_id">>, ?DEVICE}, {<<"pvt_type">>, <<"device">>}]),
    {'ok', [_]} = build(Inline, props(), Call),
    ?assertEqual({'error', 'endpoint_id_undefined'}
                ,begin
                     ?LOCAL:set_result('undefined', {'error', 'endpoint_id_undefined'}),
                     build('undefined', props(), Call)
                 end),
    ?assertEqual([Inline, 'undefined'], local_builds()),
    ?assertEqual(0, stat('remote_requests')),
    %% and the delegated functions go to the local module
    ?assertMatch({'ok', _}, kz_endpoint_amqp:get(?DEVICE, Call)),
    ?assertEqual('ok', kz_endpoint_amqp:flush(account_db(AccountId), ?DEVICE)),
    ?assertMatch([{'get', ?DEVICE}, {'flush', _, ?DEVICE} | _], lists:nthtail(2, ?LOCAL:calls())).

mode_off(#{account := AccountId}) ->
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"off">>),
    Call = call(AccountId, []),
    {'ok', [Leg]} = build(?DEVICE, props(), Call),
    ?assert(kz_json:is_true(<<"Local-Build">>, Leg)),
    kz_attributes:set_owned(?USER_BOB, [<<"d1">>]),
    ?assertEqual(1, length(by_owner(?USER_BOB, kz_json:new(), Call))),
    ?assertEqual(0, stat('remote_requests')),
    ?assertEqual(2, stat('local_builds')),
    %% an unknown mode is off
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"maybe">>),
    ?assertEqual('off', kz_endpoint_amqp:mode()).

worker_legs(AccountId, Id) ->
    {'ok', Legs} = kz_endpoint_amqp:remote_build(Id, props(), call(AccountId, [])),
    kz_endpoint_amqp_stats:reset(),
    Legs.

shadow_difference(#{account := AccountId}) ->
    [WorkerLeg] = worker_legs(AccountId, ?DEVICE),
    Changed = kz_json:set_value(<<"Endpoint-Timeout">>, <<"30">>
                               ,kz_json:set_value([<<"Custom-Channel-Vars">>, <<"Owner-ID">>], <<"someone-else">>, WorkerLeg)),
    ?LOCAL:set_result(?DEVICE, {'ok', [Changed]}),
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"shadow">>),
    Call = call(AccountId, []),
    CallId = kapps_call:call_id_direct(Call),
    %% the call gets the local module's build
    ?assertEqual({'ok', [Changed]}, build(?DEVICE, props(), Call)),
    wait_until(fun() -> stat('shadow_different') =:= 1 end),
    ?assertEqual(2, stat('shadow_fields_different')),
    [Line1] = logged(<<"field Endpoint-Timeout">>),
    ?assertNotEqual('nomatch', binary:match(Line1, CallId)),
    ?assertNotEqual('nomatch', binary:match(Line1, ?DEVICE)),
    ?assertNotEqual('nomatch', binary:match(Line1, <<"local \"30\" worker \"20\"">>)),
    ?assertMatch([_], logged(<<"field Custom-Channel-Vars.Owner-ID">>)),
    %% a missing leg and a different outcome are differences too
    kz_endpoint_amqp_stats:reset(),
    ?LOCAL:set_result(?DEVICE, {'ok', [Changed, ?LOCAL:marker_leg(<<"extra">>)]}),
    _ = build(?DEVICE, props(), call(AccountId, [])),
    wait_until(fun() -> stat('shadow_different') =:= 1 end),
    ?assertMatch([_], logged(<<"leg username:local-extra: only in the local build">>)),
    kz_endpoint_amqp_stats:reset(),
    ?LOCAL:set_result(?DEVICE, {'error', 'do_not_disturb'}),
    ?assertEqual({'error', 'do_not_disturb'}, build(?DEVICE, props(), call(AccountId, []))),
    wait_until(fun() -> stat('shadow_different') =:= 1 end),
    ?assertMatch([_ | _], logged(<<"outcome: local {error,do_not_disturb}">>)).

shadow_match(#{account := AccountId}) ->
    [WorkerLeg] = worker_legs(AccountId, ?DEVICE),
    %% the nested Failover is a difference docs/compatibility.md lists
    Known = kz_json:set_value(<<"Failover">>, kz_json:from_list([{<<"Route">>, <<"loopback/2000">>}]), WorkerLeg),
    ?LOCAL:set_result(?DEVICE, {'ok', [Known]}),
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"shadow">>),
    ?assertEqual({'ok', [Known]}, build(?DEVICE, props(), call(AccountId, []))),
    wait_until(fun() -> stat('shadow_match') =:= 1 end),
    ?assertEqual(0, stat('shadow_different')),
    ?assertEqual([], logged(<<"shadow difference">>)),
    %% the same build_error on both sides is a match
    ?LOCAL:set_result(<<"0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d05">>, {'error', 'do_not_disturb'}),
    _ = build(<<"0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d05">>, props(), call(AccountId, [])),
    wait_until(fun() -> stat('shadow_match') =:= 2 end),
    %% and no answer is counted apart
    kapps_config:set(?CAT, <<"amqp_timeout_ms">>, 300),
    _ = build(?DEVICE, props(), call(rand_account(), [])),
    wait_until(fun() -> stat('shadow_unanswered') =:= 1 end).

shadow_user(#{account := AccountId}) ->
    %% one call for both: forward legs carry call-specific values (Call-Forward-For-UUID)
    Call = call(AccountId, []),
    WorkerLegs = by_owner(?USER_BOB, kz_json:new(), Call),
    ?assertEqual(2, length(WorkerLegs)),
    kz_endpoint_amqp_stats:reset(),
    [First, Second] = WorkerLegs,
    kz_attributes:set_owned(?USER_BOB, [<<"dev-a">>, <<"dev-b">>]),
    ?LOCAL:set_result(<<"dev-a">>, {'ok', [First]}),
    ?LOCAL:set_result(<<"dev-b">>, {'ok', [kz_json:set_value(<<"Codecs">>, [<<"G722">>], Second)]}),
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"shadow">>),
    Local = by_owner(?USER_BOB, kz_json:new(), Call),
    ?assertEqual(2, length(Local)),
    wait_until(fun() -> stat('shadow_different') =:= 1 end),
    ?assertEqual(1, stat('shadow_fields_different')),
    ?assertMatch([_], logged(<<"field Codecs: local [\"G722\"]">>)).

-define(FWD_DEVICE, <<"10bb0000000000000000000000000006">>).   %% forward +14155550106, substitute missing
-define(FWD_USER, <<"ca401000ca401000ca401000ca401003">>).     %% forward +14155550333, substitute

sip_leg_of(DeviceId, User) ->
    kz_json:from_list([{<<"Invite-Format">>, <<"username">>}
                      ,{<<"To-User">>, User}
                      ,{<<"To-Realm">>, <<"acme.sip.example.com">>}
                      ,{<<"Endpoint-ID">>, DeviceId}
                      ,{<<"Custom-Channel-Vars">>, kz_json:from_list([{<<"Authorizing-ID">>, DeviceId}
                                                                     ,{<<"Authorizing-Type">>, <<"device">>}
                                                                     ])}
                      ]).

listed_lines() -> [T || {'debug', T} <- lager:messages(), binary:match(T, <<"shadow listed difference">>) =/= 'nomatch'].
warnings() -> [T || {'warning', T} <- lager:messages()].

shadow_listed(#{account := AccountId}) ->
    %% row 1 (the device's forward, substitute missing): the worker gives only
    %% the forward leg, v4 the SIP leg and the forward leg
    %% one call for the worker's legs and the shadow build: forward legs carry
    %% call-specific values (Call-Forward-For-UUID)
    FwdCall = call(AccountId, []),
    {'ok', [Fwd]} = kz_endpoint_amqp:remote_build(?FWD_DEVICE, props(), FwdCall),
    kz_endpoint_amqp_stats:reset(),
    ?assertEqual(<<"loopback">>, kz_json:get_value(<<"Invite-Format">>, Fwd)),
    V4 = [sip_leg_of(?FWD_DEVICE, <<"user_1006">>), Fwd],
    ?LOCAL:set_result(?FWD_DEVICE, {'ok', V4}),
    %% and a SIP leg whose Invite-Format 4.3 does not know: the worker's is username
    [DeskLeg] = worker_legs(AccountId, ?DEVICE),
    StripPlus = kz_json:set_value(<<"Invite-Format">>, <<"strip_plus">>, DeskLeg),
    ?LOCAL:set_result(?DEVICE, {'ok', [StripPlus]}),
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"shadow">>),
    ?assertEqual({'ok', V4}, build(?FWD_DEVICE, props(), FwdCall)),
    wait_until(fun() -> stat('shadow_match') =:= 1 end),
    ?assertEqual({'ok', [StripPlus]}, build(?DEVICE, props(), call(AccountId, []))),
    wait_until(fun() -> stat('shadow_match') =:= 2 end),
    ?assertEqual(0, stat('shadow_different')),
    ?assertEqual(0, stat('shadow_fields_different')),
    ?assertEqual([], logged(<<"shadow difference">>)),
    ?assertEqual([], [W || W <- warnings(), binary:match(W, <<"shadow">>) =/= 'nomatch']),
    %% counted and logged (debug) as listed, with the row
    ?assert(stat('shadow_listed') >= 2),
    ?assertMatch([_], [L || L <- listed_lines(), binary:match(L, <<"Missing call_forward.substitute">>) =/= 'nomatch']),
    [Listed] = [L || L <- listed_lines(), binary:match(L, <<"only in the local build">>) =/= 'nomatch'],
    ?assertNotEqual('nomatch', binary:match(Listed, ?FWD_DEVICE)),
    ?assertMatch([_], [L || L <- listed_lines(), binary:match(L, <<"field Invite-Format: local \"strip_plus\" worker \"username\"">>) =/= 'nomatch']),
    %% the same builds with one unlisted difference each: only that is reported
    kz_endpoint_amqp_stats:reset(),
    lager:clear(),
    Slow = kz_json:set_value(<<"Endpoint-Timeout">>, <<"45">>, Fwd),
    ?LOCAL:set_result(?FWD_DEVICE, {'ok', [sip_leg_of(?FWD_DEVICE, <<"user_1006">>), Slow, ?LOCAL:marker_leg(<<"extra">>)]}),
    Call = FwdCall,
    _ = build(?FWD_DEVICE, props(), Call),
    wait_until(fun() -> stat('shadow_different') =:= 1 end),
    ?assertEqual(2, stat('shadow_fields_different')),
    ?assertEqual(0, stat('shadow_match')),
    ?assertEqual(1, stat('shadow_listed')),
    [Timeout] = [W || W <- warnings(), binary:match(W, <<"field Endpoint-Timeout">>) =/= 'nomatch'],
    ?assertNotEqual('nomatch', binary:match(Timeout, kapps_call:call_id_direct(Call))),
    ?assertNotEqual('nomatch', binary:match(Timeout, ?FWD_DEVICE)),
    ?assertNotEqual('nomatch', binary:match(Timeout, <<"local \"45\" worker \"20\"">>)),
    ?assertMatch([_], [W || W <- warnings(), binary:match(W, <<"leg username:local-extra: only in the local build">>) =/= 'nomatch']),
    ?assertEqual([], [W || W <- warnings(), binary:match(W, <<"user_1006">>) =/= 'nomatch']),
    ?assertMatch([_], listed_lines()).

shadow_listed_user(#{account := AccountId}) ->
    %% the user's forward substitutes: the worker gives the user's forward leg
    %% only; v4 builds the user's devices
    kz_attributes:set_owned(?FWD_USER, [<<"dev-u1">>, <<"dev-u2">>]),
    ?LOCAL:set_result(<<"dev-u1">>, {'ok', [sip_leg_of(<<"dev-u1">>, <<"u1">>)]}),
    ?LOCAL:set_result(<<"dev-u2">>, {'ok', [sip_leg_of(<<"dev-u2">>, <<"u2">>)]}),
    kapps_config:set(?CAT, <<"amqp_mode">>, <<"shadow">>),
    ?assertEqual(2, length(by_owner(?FWD_USER, kz_json:new(), call(AccountId, [])))),
    wait_until(fun() -> stat('shadow_match') =:= 1 end),
    ?assertEqual(0, stat('shadow_different')),
    ?assertEqual(3, stat('shadow_listed')),
    ?assertEqual(3, length([L || L <- listed_lines(), binary:match(L, <<"Users: User forward">>) =/= 'nomatch'])),
    %% a disabled user: v4 still rings its devices, the worker gates the user
    Disabled = <<"e4140000000000000000000000000020">>,
    {'error', 'endpoint_disabled'} = kz_endpoint_amqp:remote_build(Disabled, kz_json:new(), call(AccountId, [])),
    kz_endpoint_amqp_stats:reset(),
    kz_attributes:set_owned(Disabled, [<<"dev-d1">>]),
    _ = by_owner(Disabled, kz_json:new(), call(AccountId, [])),
    wait_until(fun() -> stat('shadow_match') =:= 1 end),
    ?assertEqual(1, stat('shadow_listed')),
    %% the same outcome for a device build is not listed
    kz_endpoint_amqp_stats:reset(),
    _ = build(Disabled, props(), call(AccountId, [])),
    wait_until(fun() -> stat('shadow_different') =:= 1 end),
    ?assertMatch([_], [W || W <- warnings(), binary:match(W, <<"outcome: local {legs,">>) =/= 'nomatch']).

shadow_classes(_Env) ->
    D = <<"0000000000000000000000000000d001">>,
    Failover = kz_json:from_list([{<<"Invite-Format">>, <<"loopback">>}
                                 ,{<<"Route">>, <<"+15550001">>}
                                 ,{<<"Custom-Channel-Vars">>, kz_json:from_list([{<<"Is-Failover">>, 'true'}
                                                                                ,{<<"Call-Forward">>, <<"true">>}
                                                                                ,{<<"Authorizing-Type">>, <<"device">>}
                                                                                ,{<<"Authorizing-ID">>, D}
                                                                                ])}
                                 ]),
    Sip = sip_leg_of(D, <<"d1">>),
    Row = fun(N) -> [<<"device ", D/binary, ": unregistered (registrar error); no forward; x -> y (device table row ", (integer_to_binary(N))/binary, ")">>] end,
    Classes = fun(Local, Remote) -> [C || {C, _} <- kz_endpoint_amqp_shadow:compare('build', Local, Remote, [])] end,
    %% unregistered (row 4): the FAILOVER leg instead of the SIP leg is listed
    ?assertEqual([{'listed', 'unregistered_device'}, {'listed', 'unregistered_device'}]
                ,Classes({'ok', [Sip]}, {'ok', [Failover], Row(4)})),
    %% the same legs when the worker says the device is registered (row 3): unlisted
    ?assertEqual(['unlisted', 'unlisted'], Classes({'ok', [Sip]}, {'ok', [Failover], Row(3)})),
    %% without Explain lines nothing about registration is assumed
    ?assertEqual(['unlisted', 'unlisted'], Classes({'ok', [Sip]}, {'ok', [Failover]})),
    %% unregistered without failover: no leg (no_endpoints)
    ?assertEqual([{'listed', 'unregistered_device'}], Classes({'ok', [Sip]}, {'error', 'no_endpoints', Row(4)})),
    %% a forward leg v4 merged from the owner onto a device without its own (row 3)
    Fwd = kz_json:set_value([<<"Custom-Channel-Vars">>, <<"Is-Failover">>], 'false', Failover),
    ?assertEqual([{'listed', 'owner_forward'}], Classes({'ok', [Sip, Fwd]}, {'ok', [Sip], Row(3)})),
    %% ... but not when the device's own forward is active (row 2)
    ?assertEqual(['unlisted'], Classes({'ok', [Sip, Fwd]}, {'ok', [Sip], Row(2)})),
    %% a user's FAILOVER leg: listed only when the user's devices are unregistered
    UserFailover = kz_json:set_value([<<"Custom-Channel-Vars">>, <<"Authorizing-Type">>], <<"user">>, Failover),
    ?assertEqual([{'listed', 'user_failover'}], Classes({'ok', []}, {'ok', [UserFailover], Row(4)})),
    ?assertEqual(['unlisted'], Classes({'ok', []}, {'ok', [UserFailover], Row(3) ++ Row(4)})),
    %% a group's forward leg
    Group = kz_json:set_value([<<"Custom-Channel-Vars">>, <<"Authorizing-Type">>], <<"group">>, Fwd),
    ?assertEqual([{'listed', 'group_forward'}], Classes({'ok', [Sip]}, {'ok', [Sip, Group]})),
    %% the same route twice: v4 keeps both, the worker one
    ?assertEqual([{'listed', 'same_route'}], Classes({'ok', [Fwd, Fwd]}, {'ok', [Fwd]})),
    %% an Invite-Format 4.3 knows is not the listed fallback
    ?assertEqual(['unlisted'], Classes({'ok', [kz_json:set_value(<<"Invite-Format">>, <<"npan">>, Sip)]}, {'ok', [Sip]})),
    %% an extra SIP leg, a device forward leg the local build lacks: unlisted
    ?assertEqual(['unlisted'], Classes({'ok', []}, {'ok', [Sip], Row(3)})),
    ?assertEqual(['unlisted'], Classes({'ok', [Sip]}, {'ok', [Sip, Fwd], Row(2)})),
    %% the ignored fields are listed
    ?assertEqual([{'listed', 'ignored_field'}]
                ,[C || {C, _} <- kz_endpoint_amqp_shadow:compare('build', {'ok', [kz_json:set_value(<<"Endpoint-Actions">>, kz_json:from_list([{<<"a">>, 1}]), Sip)]}, {'ok', [Sip]}, [<<"Endpoint-Actions">>])]).

variant_43(#{account := AccountId}) ->
    Master = code:which('kapi_endpoint'),
    Dir = env("KZE_ERLANG_DIR"),
    Src = filename:join([Dir, "variants", "4.3", "kapi_endpoint.erl"]),
    Include = filename:join(Dir, "include"),
    {'ok', 'kapi_endpoint', Bin} = compile:file(Src, ['binary', 'warnings_as_errors', 'return_errors', {'i', Include}]),
    try
        {'module', 'kapi_endpoint'} = code:load_binary('kapi_endpoint', "kapi_endpoint_43.beam", Bin),
        ?assertNot(erlang:function_exported('kapi_endpoint', 'api_definitions', 0)),
        ?assertMatch({'ok', [_]}, build(?DEVICE, props(), call(AccountId, []))),
        ?assertEqual({'error', 'do_not_disturb'}
                    ,build(<<"0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d05">>, props(), call(AccountId, [])))
    after
        code:purge('kapi_endpoint'),
        {'module', 'kapi_endpoint'} = code:load_abs(filename:rootname(Master))
    end,
    ?assert(erlang:function_exported('kapi_endpoint', 'api_definitions', 0)).

msg_id_correlation(#{account := AccountId}) ->
    MsgId = <<"kze-msg-", (rand_account())/binary>>,
    {'ok', Req} = kz_endpoint_amqp:build_request(?DEVICE, props(), call(AccountId, [])),
    %% dated, so that the worker files endpoint recordings under the right month
    ?assert(props:get_value(<<"Timestamp">>, Req) > 1700000000),
    Req1 = [{<<"Msg-ID">>, MsgId} | Req],
    {'ok', Reply} = kz_amqp_worker:call(Req1, fun kapi_endpoint:publish_build_req/1, fun kapi_endpoint:build_resp_v/1, 1500),
    ?assertEqual(MsgId, kz_json:get_value(<<"Msg-ID">>, Reply)),
    ?assertEqual(<<"build_resp">>, kz_json:get_value(<<"Event-Name">>, Reply)),
    ?assert(kapi_endpoint:build_resp_v(Reply)),
    %% a request validates as kapi_endpoint defines it
    ?assert(kapi_endpoint:build_req_v(kz_json:from_list([{<<"Event-Category">>, <<"endpoint">>}
                                                         ,{<<"Event-Name">>, <<"build_req">>}
                                                         ,{<<"Msg-ID">>, MsgId}
                                                          | Req
                                                         ]))),
    ?assertEqual(<<"endpoint.build.", AccountId/binary>>, kapi_endpoint:routing_key(AccountId)),
    ?assertEqual(<<"endpoint.build.a%2Eb">>, kapi_endpoint:routing_key(<<"a.b">>)).

pool_fallback(#{account := AccountId, stack := Stack}) ->
    'ok' = Stack:stop_pool(),
    {'ok', [Leg]} = build(?DEVICE, props(), call(AccountId, [])),
    ?assert(kz_json:is_true(<<"Local-Build">>, Leg)),
    ?assertEqual(1, stat('fallback_pool')),
    ?assertMatch([_], logged(<<"poolboy_fault">>)).
