%%%-----------------------------------------------------------------------------
%%% @doc An endpoint backend that asks kz-endpoint workers over AMQP.
%%%
%%% On master, `kazoo_endpoint.endpoint_module' = `kz_endpoint_amqp' makes the
%%% `kz_endpoint' facade delegate here. On 4.3, the patch in
%%% `erlang/patches/' calls `build/3' and `by_owner_id/3' from `kz_endpoint'
%%% and `kz_endpoints'. Only builds go over AMQP: `get', the flush functions
%%% and the leg helpers go to the local module (`amqp_fallback_module').
%%%
%%% Settings (category `kazoo_endpoint'; per node, zone or default):
%%% <ul>
%%% <li>`amqp_mode': `off' (default: build locally), `shadow' (build locally,
%%% return that, and ask the worker too, outside the call's path, comparing its
%%% legs with `amqp_shadow_compare_module'), `on' (ask the worker; fall back
%%% to the local module on timeout, `returned' or a pool error).</li>
%%% <li>`amqp_timeout_ms' (1500).</li>
%%% <li>`amqp_fallback_module': the local builder (default `kz_endpoint_v5',
%%% or on 4.3 its own `kz_endpoint').</li>
%%% <li>`amqp_shadow_compare_module' (`kz_endpoint_v4'; on 4.3 `kz_endpoint').</li>
%%% <li>`amqp_shadow_ignore_fields': leg fields whose differences are known.</li>
%%% <li>`amqp_fallback_error_codes': `build_error' codes that are built locally
%%% instead of returned (default none; e.g. `["db_not_reachable"]').</li>
%%% </ul>
%%% @end
%%%-----------------------------------------------------------------------------
-module(kz_endpoint_amqp).

%% the kz_endpoint facade's functions
-export([get/1, get/2]).
-export([flush_account/1
        ,flush_account_local/1
        ,flush/2
        ,flush_local/2
        ]).
-export([build/2, build/3]).
-export([create_call_fwd_endpoint/3
        ,create_sip_endpoint/3
        ,maybe_start_metaflow/2
        ,encryption_method_map/2
        ,get_sip_realm/2, get_sip_realm/3
        ]).

%% kz_endpoints:by_owner_id/3,4 (a user: one build with the user id)
-export([by_owner_id/3]).

%% the worker alone, and the settings
-export([remote_build/3, remote_build/4
        ,build_request/3
        ,mode/0
        ,timeout_ms/0
        ,fallback_module/0
        ,compare_module/0
        ,error_code/1
        ]).

-include("kz_endpoint_amqp.hrl").

-type build_return() :: {'ok', kz_json:objects()} | {'error', atom()}.
-type remote_return() :: build_return() | {'fallback', atom() | tuple()}.
-export_type([remote_return/0]).

%% Every `Error-Code' a build_error may carry, as atoms that exist in this
%% module's code: a code is never turned into a new atom.
-define(ERROR_ATOMS, ['endpoint_id_undefined'
                     ,'invalid_endpoint_id'
                     ,'not_found'
                     ,'endpoint_deleted'
                     ,'endpoint_disabled'
                     ,'not_device_nor_user'
                     ,'endpoint_called_self'
                     ,'owner_called_self'
                     ,'do_not_disturb'
                     ,'exclude_from_queues'
                     ,'no_resource_type'
                     ,'no_endpoints'
                     ,'db_not_reachable'
                     ,'exception'
                     ,'internal'
                     ,'invalid_request'
                     ]).

%%%=============================================================================
%%% Delegated to the local module
%%%=============================================================================

-spec get(kapps_call:call()) -> any().
get(Call) -> (fallback_module()):get(Call).

-spec get(kz_term:api_binary(), kz_term:ne_binary() | kapps_call:call()) -> any().
get(EndpointId, Call) -> (fallback_module()):get(EndpointId, Call).

-spec flush_account(kz_term:ne_binary()) -> 'ok'.
flush_account(AccountDb) -> (fallback_module()):flush_account(AccountDb).

-spec flush_account_local(kz_term:ne_binary()) -> 'ok'.
flush_account_local(AccountDb) -> (fallback_module()):flush_account_local(AccountDb).

-spec flush(kz_term:ne_binary(), kz_term:ne_binary()) -> 'ok'.
flush(Db, Id) -> (fallback_module()):flush(Db, Id).

-spec flush_local(kz_term:ne_binary(), kz_term:ne_binary()) -> 'ok'.
flush_local(Db, Id) -> (fallback_module()):flush_local(Db, Id).

-spec maybe_start_metaflow(kapps_call:call(), kz_json:object()) -> 'ok'.
maybe_start_metaflow(Call, Endpoint) -> (fallback_module()):maybe_start_metaflow(Call, Endpoint).

-spec create_sip_endpoint(kz_json:object(), kz_json:object(), kapps_call:call()) -> kz_json:object().
create_sip_endpoint(Endpoint, Properties, Call) ->
    (fallback_module()):create_sip_endpoint(Endpoint, Properties, Call).

-spec create_call_fwd_endpoint(kz_json:object(), kz_json:object(), kapps_call:call()) -> kz_json:object().
create_call_fwd_endpoint(Endpoint, Properties, Call) ->
    (fallback_module()):create_call_fwd_endpoint(Endpoint, Properties, Call).

-spec encryption_method_map(kz_term:api_object(), kz_term:api_binaries() | kz_json:object()) -> kz_term:api_object().
encryption_method_map(CCVs, Methods) -> (fallback_module()):encryption_method_map(CCVs, Methods).

-spec get_sip_realm(kz_json:object(), kz_term:ne_binary()) -> kz_term:api_binary().
get_sip_realm(SIPJObj, AccountId) -> (fallback_module()):get_sip_realm(SIPJObj, AccountId).

-spec get_sip_realm(kz_json:object(), kz_term:ne_binary(), Default) -> Default | kz_term:ne_binary().
get_sip_realm(SIPJObj, AccountId, Default) -> (fallback_module()):get_sip_realm(SIPJObj, AccountId, Default).

%%%=============================================================================
%%% Builds
%%%=============================================================================

-spec build(kz_term:api_ne_binary() | kz_json:object(), kapps_call:call()) -> build_return().
build(EndpointId, Call) ->
    build(EndpointId, kz_json:new(), Call).

%%------------------------------------------------------------------------------
%% @doc Build the endpoints of a device, user or group id, as `kz_endpoint:build/3'.
%% An inline JSON endpoint and an `undefined' id are always built locally.
%% @end
%%------------------------------------------------------------------------------
-spec build(kz_term:api_ne_binary() | kz_json:object(), kz_term:api_object(), kapps_call:call()) ->
          build_return().
build(EndpointId, 'undefined', Call) ->
    build(EndpointId, kz_json:new(), Call);
build(<<EndpointId/binary>>, Properties, Call) when EndpointId =/= <<>> ->
    build(EndpointId, Properties, Call, mode());
build(Endpoint, Properties, Call) ->
    kz_endpoint_amqp_stats:bump('local_builds'),
    local_build(fallback_module(), Endpoint, Properties, Call).

build(EndpointId, Properties, Call, 'off') ->
    kz_endpoint_amqp_stats:bump('local_builds'),
    local_build(fallback_module(), EndpointId, Properties, Call);
build(EndpointId, Properties, Call, 'shadow') ->
    Local = local_build(fallback_module(), EndpointId, Properties, Call),
    start_shadow('build', EndpointId, Properties, Call),
    Local;
build(EndpointId, Properties, Call, 'on') ->
    case remote_build(EndpointId, Properties, Call) of
        {'ok', Endpoints}=OK ->
            maybe_start_metaflows(Call, Endpoints),
            OK;
        {'error', _Code}=Error -> Error;
        {'fallback', Why} ->
            log_fallback(Why, EndpointId, Call),
            local_build(fallback_module(), EndpointId, Properties, Call)
    end.

%%------------------------------------------------------------------------------
%% @doc The endpoints of a user (`kz_endpoints:by_owner_id/3'): one build with
%% the user id, so the worker applies the user's forward, failover and
%% substitute rules. Locally (off, shadow, fallback) it does what the local
%% module's clause of `kz_endpoints:by_owner_id/4' does.
%% @end
%%------------------------------------------------------------------------------
-spec by_owner_id(kz_term:ne_binary(), kz_json:object(), kapps_call:call()) -> kz_json:objects().
by_owner_id(OwnerId, Data, Call) ->
    by_owner_id(OwnerId, Data, Call, mode()).

by_owner_id(OwnerId, Data, Call, 'off') ->
    kz_endpoint_amqp_stats:bump('local_builds'),
    local_by_owner_id(fallback_module(), OwnerId, Data, Call);
by_owner_id(OwnerId, Data, Call, 'shadow') ->
    Local = local_by_owner_id(fallback_module(), OwnerId, Data, Call),
    start_shadow('by_owner_id', OwnerId, Data, Call),
    Local;
by_owner_id(OwnerId, Data, Call, 'on') ->
    case remote_build(OwnerId, Data, Call) of
        {'ok', Endpoints} ->
            maybe_start_metaflows(Call, Endpoints),
            Endpoints;
        {'error', _Code} -> [];
        {'fallback', Why} ->
            log_fallback(Why, OwnerId, Call),
            local_by_owner_id(fallback_module(), OwnerId, Data, Call)
    end.

%%------------------------------------------------------------------------------
%% @doc Ask the worker, with no fallback: `{ok, Legs}', `{error, Code}' from a
%% `build_error', or `{fallback, Why}' when it gave no usable answer.
%% @end
%%------------------------------------------------------------------------------
-spec remote_build(kz_term:ne_binary(), kz_term:api_object(), kapps_call:call()) -> remote_return().
remote_build(EndpointId, Properties, Call) ->
    case remote_build(EndpointId, Properties, Call, []) of
        {'ok', Legs, _Explain} -> {'ok', Legs};
        {'error', Code, _Explain} -> {'error', Code};
        Fallback -> Fallback
    end.

%%------------------------------------------------------------------------------
%% @doc `remote_build/3' with extra request headers (shadow mode adds
%% `{<<"Explain">>, true}'), keeping the reply's `Explain' lines:
%% `{ok, Legs, Explain}', `{error, Code, Explain}' or `{fallback, Why}'.
%% @end
%%------------------------------------------------------------------------------
-spec remote_build(kz_term:ne_binary(), kz_term:api_object(), kapps_call:call(), kz_term:proplist()) ->
          {'ok', kz_json:objects(), kz_term:ne_binaries()} | {'error', atom(), kz_term:ne_binaries()}
              | {'fallback', atom() | tuple()}.
remote_build(EndpointId, Properties, Call, Extra) ->
    case build_request(EndpointId, Properties, Call) of
        {'error', Why} -> {'fallback', Why};
        {'ok', Req} ->
            kz_endpoint_amqp_stats:bump('remote_requests'),
            Start = erlang:monotonic_time('microsecond'),
            Result = kz_amqp_worker:call(Extra ++ Req
                                        ,fun kapi_endpoint:publish_build_req/1
                                        ,fun is_build_reply/1
                                        ,timeout_ms()
                                        ),
            handle_result(Result, erlang:monotonic_time('microsecond') - Start)
    end.

-spec build_request(kz_term:ne_binary(), kz_term:api_object(), kapps_call:call()) ->
          {'ok', kz_term:proplist()} | {'error', atom()}.
build_request(EndpointId, 'undefined', Call) ->
    build_request(EndpointId, kz_json:new(), Call);
build_request(EndpointId, Properties, Call) ->
    AccountId = kapps_call:account_id(Call),
    CallId = kapps_call:call_id_direct(Call),
    case is_binary(AccountId) andalso is_binary(CallId) of
        'false' -> {'error', 'no_account_or_call_id'};
        'true' ->
            {'ok', [{<<"Account-ID">>, AccountId}
                   ,{<<"Call-ID">>, CallId}
                   ,{<<"Endpoint-ID">>, EndpointId}
                   ,{<<"Properties">>, Properties}
                   ,{<<"Call">>, kapps_call:to_json(Call)}
                    %% Unix seconds: the worker dates endpoint recordings (their MODB) by it.
                   ,{<<"Timestamp">>, erlang:system_time('second')}
                    | kz_api:default_headers(?KZE_APP_NAME, ?KZE_APP_VERSION)
                   ]}
    end.

-spec is_build_reply(kz_json:object()) -> boolean().
is_build_reply(JObj) ->
    kapi_endpoint:build_resp_v(JObj)
        orelse kapi_endpoint:build_error_v(JObj).

handle_result({'ok', Reply}, Micros) ->
    kz_endpoint_amqp_stats:bump('remote_us', Micros),
    case kz_json:get_ne_binary_value(<<"Event-Name">>, Reply) of
        <<"build_resp">> ->
            kz_endpoint_amqp_stats:bump('remote_ok'),
            {'ok', kz_json:get_list_value(<<"Endpoints">>, Reply), explain(Reply)};
        <<"build_error">> ->
            Code = kz_json:get_ne_binary_value(<<"Error-Code">>, Reply),
            ?KZE_INFO("endpoint worker answered ~s for ~s: ~s"
                     ,[Code
                      ,kz_json:get_ne_binary_value(<<"Endpoint-ID">>, Reply, <<"?">>)
                      ,kz_json:get_ne_binary_value(<<"Error-Message">>, Reply, <<>>)
                      ]),
            case handle_error_code(error_code(Code)) of
                {'error', Atom} -> {'error', Atom, explain(Reply)};
                Fallback -> Fallback
            end
    end;
handle_result({'returned', _JObj, _Return}, _Micros) ->
    {'fallback', 'returned'};
handle_result({'error', 'timeout'}, _Micros) ->
    {'fallback', 'timeout'};
handle_result({'timeout', _}, _Micros) ->
    {'fallback', 'timeout'};
handle_result({'error', Reason}, _Micros) ->
    {'fallback', {'pool', Reason}};
handle_result(Other, _Micros) ->
    {'fallback', {'pool', Other}}.

explain(Reply) ->
    [Line || Line <- kz_json:get_list_value(<<"Explain">>, Reply, []), is_binary(Line)].

handle_error_code(Code) ->
    case lists:member(atom_to_binary(Code, 'utf8'), fallback_error_codes()) of
        'true' -> {'fallback', {'error_code', Code}};
        'false' ->
            kz_endpoint_amqp_stats:bump('remote_error'),
            {'error', Code}
    end.

%%------------------------------------------------------------------------------
%% @doc The atom of a build_error's `Error-Code' (validated against
%% `kapi_endpoint:error_codes/0' before it gets here).
%% @end
%%------------------------------------------------------------------------------
-spec error_code(kz_term:api_binary()) -> atom().
error_code(Code) ->
    case [Atom || Atom <- ?ERROR_ATOMS, atom_to_binary(Atom, 'utf8') =:= Code] of
        [Atom] -> Atom;
        [] -> 'internal'
    end.

log_fallback(Why, EndpointId, Call) ->
    Counter = case Why of
                  'timeout' -> 'fallback_timeout';
                  'returned' -> 'fallback_returned';
                  {'error_code', _} -> 'fallback_error_code';
                  _ -> 'fallback_pool'
              end,
    kz_endpoint_amqp_stats:bump(Counter),
    ?KZE_WARNING("endpoint worker gave no answer (~p) for ~s in call ~s: building with ~s"
                ,[Why, EndpointId, kapps_call:call_id_direct(Call), fallback_module()]
                ).

%%%=============================================================================
%%% Local builds
%%%=============================================================================

%% 4.3: the patched kz_endpoint keeps its own builder as build_local/3
local_build('kz_endpoint', EndpointId, Properties, Call) ->
    kz_endpoint:build_local(EndpointId, Properties, Call);
local_build(Module, EndpointId, Properties, Call) ->
    Module:build(EndpointId, Properties, Call).

local_by_owner_id('kz_endpoint_v5', OwnerId, Data, Call) ->
    case kz_endpoint_v5:build(OwnerId, Data, Call) of
        {'ok', Endpoints} -> Endpoints;
        {'error', _E} -> []
    end;
local_by_owner_id(Module, OwnerId, Data, Call) ->
    lists:foldr(fun(EndpointId, Acc) ->
                        case local_build(Module, EndpointId, Data, Call) of
                            {'ok', Endpoints} -> Endpoints ++ Acc;
                            {'error', _E} -> Acc
                        end
                end
               ,[]
               ,kz_attributes:owned_by(OwnerId, <<"device">>, Call)
               ).

%% As the local builders do after a build: not for SMS, not when the call
%% already runs a metaflow app, not without a call id.
maybe_start_metaflows(Call, Endpoints) ->
    case kapps_call:call_id_direct(Call) =/= 'undefined'
        andalso kapps_call:resource_type(Call) =/= <<"sms">>
        andalso kapps_call:custom_channel_var(<<"Metaflow-App">>, Call) =:= 'undefined'
    of
        'false' -> 'ok';
        'true' ->
            Module = fallback_module(),
            lists:foreach(fun(Endpoint) -> start_metaflow(Module, Call, Endpoint) end, Endpoints)
    end.

start_metaflow(Module, Call, Endpoint) ->
    try Module:maybe_start_metaflow(Call, Endpoint)
    catch
        _E:_R -> ?KZE_WARNING("failed to start metaflow: ~s: ~p", [_E, _R])
    end.

%%%=============================================================================
%%% Shadow
%%%=============================================================================

%% The worker's answer and the compare module's build, in a process of their
%% own: the call has its answer already and never waits for these.
start_shadow(What, Id, Properties, Call) ->
    kz_endpoint_amqp_stats:bump('shadow_requests'),
    Compare = compare_module(),
    Ignore = shadow_ignore_fields(),
    LogId = kapps_call:call_id_direct(Call),
    _ = erlang:spawn(fun() ->
                             _ = lager:md([{'callid', LogId}]),
                             shadow(What, Id, Properties, Call, Compare, Ignore)
                     end),
    'ok'.

shadow(What, Id, Properties, Call, Compare, Ignore) ->
    %% with the worker's Explain lines: they say which device-table row built
    %% each device (kz_endpoint_amqp_shadow classifies differences with them)
    Remote = try remote_build(Id, Properties, Call, [{<<"Explain">>, 'true'}])
             catch _E:_R -> {'fallback', {'exception', _R}}
             end,
    %% no second metaflow start from the compare build
    QuietCall = kapps_call:insert_custom_channel_var(<<"Metaflow-App">>, <<"kz_endpoint_amqp_shadow">>, Call),
    Local = try compare_build(What, Compare, Id, Properties, QuietCall)
            catch _E2:_R2 -> {'error', 'exception'}
            end,
    kz_endpoint_amqp_shadow:report(kapps_call:call_id_direct(Call), Id, What, Compare, Local, Remote, Ignore).

compare_build('build', Module, Id, Properties, Call) ->
    local_build(Module, Id, Properties, Call);
compare_build('by_owner_id', Module, Id, Properties, Call) ->
    {'ok', local_by_owner_id(Module, Id, Properties, Call)}.

%%%=============================================================================
%%% Settings
%%%=============================================================================

-spec mode() -> 'off' | 'shadow' | 'on'.
mode() ->
    case kapps_config:get_ne_binary(?KZE_CONFIG_CAT, <<"amqp_mode">>, ?KZE_DEFAULT_MODE) of
        <<"on">> -> 'on';
        <<"shadow">> -> 'shadow';
        <<"off">> -> 'off';
        _Other ->
            ?KZE_WARNING("unknown kazoo_endpoint.amqp_mode ~p: off", [_Other]),
            'off'
    end.

-spec timeout_ms() -> pos_integer().
timeout_ms() ->
    case kapps_config:get_integer(?KZE_CONFIG_CAT, <<"amqp_timeout_ms">>, ?KZE_DEFAULT_TIMEOUT_MS) of
        N when is_integer(N), N > 0 -> N;
        _ -> ?KZE_DEFAULT_TIMEOUT_MS
    end.

%%------------------------------------------------------------------------------
%% @doc The local builder: `amqp_fallback_module', else `kz_endpoint_v5' on
%% master, or 4.3's own (patched) `kz_endpoint'. Never this module, and never
%% master's facade (both would call back here).
%% @end
%%------------------------------------------------------------------------------
-spec fallback_module() -> module().
fallback_module() ->
    Configured = kapps_config:get_atom(?KZE_CONFIG_CAT, <<"amqp_fallback_module">>, 'undefined'),
    case usable_local_module(Configured) of
        'true' -> Configured;
        'false' -> default_local_module()
    end.

-spec compare_module() -> module().
compare_module() ->
    Configured = kapps_config:get_atom(?KZE_CONFIG_CAT, <<"amqp_shadow_compare_module">>, 'undefined'),
    case usable_local_module(Configured) of
        'true' -> Configured;
        'false' ->
            case usable_local_module(?KZE_DEFAULT_COMPARE_MODULE) of
                'true' -> ?KZE_DEFAULT_COMPARE_MODULE;
                'false' -> default_local_module()
            end
    end.

default_local_module() ->
    case usable_local_module('kz_endpoint_v5') of
        'true' -> 'kz_endpoint_v5';
        'false' -> 'kz_endpoint'
    end.

usable_local_module('undefined') -> 'false';
usable_local_module(?MODULE) -> 'false';
usable_local_module('kz_endpoint') ->
    is_loaded('kz_endpoint')
        andalso erlang:function_exported('kz_endpoint', 'build_local', 3);
usable_local_module(Module) when is_atom(Module) ->
    is_loaded(Module)
        andalso erlang:function_exported(Module, 'build', 3);
usable_local_module(_) -> 'false'.

is_loaded(Module) ->
    case code:ensure_loaded(Module) of
        {'module', Module} -> 'true';
        {'error', _} -> 'false'
    end.

shadow_ignore_fields() ->
    case kapps_config:get_ne_binaries(?KZE_CONFIG_CAT, <<"amqp_shadow_ignore_fields">>, ?KZE_DEFAULT_SHADOW_IGNORE) of
        Fields when is_list(Fields) -> Fields;
        _ -> ?KZE_DEFAULT_SHADOW_IGNORE
    end.

fallback_error_codes() ->
    case kapps_config:get_ne_binaries(?KZE_CONFIG_CAT, <<"amqp_fallback_error_codes">>, []) of
        Codes when is_list(Codes) -> Codes;
        _ -> []
    end.
