%%%-----------------------------------------------------------------------------
%%% @doc Shadow mode's comparison (kz-endpoint): the worker's legs against a
%%% local build of the compare module (`kz_endpoint_v4' by default: v5's one
%%% opaque `endpoint' leg cannot be compared leg by leg).
%%%
%%% Legs are paired by destination (`Invite-Format' with `Route', `To-User'@`To-Realm',
%%% `To-IP' or `To-DID'), then a SIP leg left over with the worker's SIP leg of
%%% the same `Endpoint-ID'; every field of a pair is compared, nested objects
%%% field by field (`Custom-Channel-Vars.Owner-ID').
%%%
%%% Each difference is then classified: `listed' when it is one of the
%%% deliberate differences of docs/compatibility.md (the row is named with it:
%%% `row/1'), `unlisted' otherwise. Listed ones are counted (`shadow_listed')
%%% and logged at debug; unlisted ones are counted (`shadow_different',
%%% `shadow_fields_different') and logged at warning, one line each, with the
%%% call id and endpoint id. The classes, and which facts each needs (the
%%% leg's shape, the worker's `Explain' lines saying which device-table row
%%% built each device), are in docs/kazoo-integration.md ("Shadow: what is
%%% listed"). Fields named in `amqp_shadow_ignore_fields' are listed too.
%%% @end
%%%-----------------------------------------------------------------------------
-module(kz_endpoint_amqp_shadow).

-export([report/7
        ,compare/4
        ,classify/5
        ,row/1
        ]).

-include("kz_endpoint_amqp.hrl").

-type what() :: 'build' | 'by_owner_id'.
-type difference() :: {'outcome', term(), term()}
                    | {'missing_leg', binary()}
                    | {'extra_leg', binary()}
                    | {'field', binary(), binary(), term(), term()}.
-type class() :: 'unlisted' | {'listed', atom()}.
-export_type([what/0, difference/0, class/0]).

%% Kazoo 4.3's Invite-Format values (kapi_dialplan); master adds endpoint,
%% forward and strip_plus
-define(INVITE_FORMATS_43, [<<"username">>, <<"e164">>, <<"npan">>, <<"1npan">>
                           ,<<"route">>, <<"loopback">>, <<"contact">>
                           ]).

%%------------------------------------------------------------------------------
%% @doc Compare, classify, log and count. `Local' is the compare module's
%% result, `Remote' the worker's (`kz_endpoint_amqp:remote_build/4':
%% `{ok, Legs, Explain}', `{error, Code, Explain}' or `{fallback, Why}'; the
%% two-element forms of `remote_build/3' are accepted, without Explain lines).
%% @end
%%------------------------------------------------------------------------------
-spec report(kz_term:api_binary(), kz_term:ne_binary(), what(), module(), term(), term(), kz_term:ne_binaries()) ->
          'match' | 'unanswered' | {'different', [{class(), difference()}]}.
report(CallId, EndpointId, _What, _Compare, _Local, {'fallback', Why}, _Ignore) ->
    kz_endpoint_amqp_stats:bump('shadow_unanswered'),
    ?KZE_WARNING("shadow: call ~s endpoint ~s: worker gave no answer (~p)", [CallId, EndpointId, Why]),
    'unanswered';
report(CallId, EndpointId, What, Compare, Local, Remote, Ignore) ->
    Classified = compare(What, Local, Remote, Ignore),
    Listed = [D || {{'listed', _}, _}=D <- Classified],
    Unlisted = [D || {'unlisted', D} <- Classified],
    kz_endpoint_amqp_stats:bump('shadow_listed', length(Listed)),
    lists:foreach(fun({{'listed', Row}, Diff}) -> log_listed(CallId, EndpointId, Row, Diff) end, Listed),
    case Unlisted of
        [] ->
            kz_endpoint_amqp_stats:bump('shadow_match'),
            ?KZE_DEBUG("shadow: call ~s endpoint ~s: worker agrees with ~s (~b listed difference(s))"
                      ,[CallId, EndpointId, Compare, length(Listed)]
                      ),
            'match';
        _ ->
            kz_endpoint_amqp_stats:bump('shadow_different'),
            kz_endpoint_amqp_stats:bump('shadow_fields_different', length(Unlisted)),
            ?KZE_WARNING("shadow: call ~s endpoint ~s: ~b unlisted difference(s) between worker and ~s"
                        ,[CallId, EndpointId, length(Unlisted), Compare]
                        ),
            lists:foreach(fun(Diff) -> log_difference(CallId, EndpointId, Diff) end, Unlisted),
            {'different', Classified}
    end.

log_difference(CallId, EndpointId, Diff) ->
    ?KZE_WARNING("shadow difference: call ~s endpoint ~s ~s", [CallId, EndpointId, describe(Diff)]).

log_listed(CallId, EndpointId, Row, Diff) ->
    ?KZE_DEBUG("shadow listed difference: call ~s endpoint ~s ~s (docs/compatibility.md: ~s)"
              ,[CallId, EndpointId, describe(Diff), row(Row)]
              ).

describe({'outcome', Local, Remote}) ->
    io_lib:format("outcome: local ~0p worker ~0p", [Local, Remote]);
describe({'missing_leg', Key}) ->
    io_lib:format("leg ~s: only in the local build", [Key]);
describe({'extra_leg', Key}) ->
    io_lib:format("leg ~s: only in the worker's", [Key]);
describe({'field', Key, Field, Local, Remote}) ->
    io_lib:format("leg ~s field ~s: local ~s worker ~s", [Key, Field, show(Local), show(Remote)]).

show('undefined') -> <<"(absent)">>;
show(Value) -> kz_json:encode(Value).

%%------------------------------------------------------------------------------
%% @doc The docs/compatibility.md row (section: topic) a listed class stands for.
%% @end
%%------------------------------------------------------------------------------
-spec row(atom()) -> binary().
row('ignored_field') -> <<"amqp_shadow_ignore_fields (Registered device / Unknown state: nested Failover; Is-Failover CCV; Endpoint recording)">>;
row('invite_format_43') -> <<"Output form: Invite-Format outside Kazoo 4.3's list">>;
row('unregistered_device') -> <<"Registration and failover: Unregistered device">>;
row('user_failover') -> <<"Users: User failover">>;
row('missing_substitute') -> <<"Forwarding: Missing call_forward.substitute">>;
row('owner_forward') -> <<"Forwarding: Owner's call_forward / call_failover">>;
row('same_route') -> <<"Forwarding: Same route twice in one build">>;
row('user_forward') -> <<"Users: User forward">>;
row('forward_entity') -> <<"Users: User and group forward legs">>;
row('group_forward') -> <<"Groups and ring groups: Group call_forward">>;
row('user_gating') -> <<"Users: User gating">>.

%%------------------------------------------------------------------------------
%% @doc The differences between two build results, each classified.
%% `What' is `build' (a device, `kz_endpoint:build/3') or `by_owner_id' (a
%% user, `kz_endpoints:by_owner_id/3').
%% @end
%%------------------------------------------------------------------------------
-spec compare(what(), term(), term(), kz_term:ne_binaries()) -> [{class(), difference()}].
compare(What, Local, Remote, Ignore) ->
    {RemoteResult, Explain} = remote_result(Remote),
    Rows = device_rows(Explain),
    [{classify(What, Diff, Ignore, Rows, {Local, RemoteResult}), Diff}
     || Diff <- differences(What, Local, RemoteResult)
    ].

remote_result({'ok', Legs, Explain}) -> {{'ok', Legs}, Explain};
remote_result({'error', Code, Explain}) -> {{'error', Code}, Explain};
remote_result(Other) -> {Other, []}.

%% a user's build_error is no legs for the call (kz_endpoints returns [])
differences('by_owner_id', {'ok', []}, {'error', _}) -> [];
differences(_What, {'ok', LocalLegs}, {'ok', RemoteLegs}) ->
    leg_differences(LocalLegs, RemoteLegs);
differences(_What, {'error', Same}, {'error', Same}) -> [];
differences(_What, {'ok', LocalLegs}, {'error', 'no_endpoints'}) ->
    leg_differences(LocalLegs, []);
differences(_What, {'error', 'no_endpoints'}, {'ok', RemoteLegs}) ->
    leg_differences([], RemoteLegs);
differences(_What, Local, Remote) ->
    [{'outcome', outcome(Local), outcome(Remote)}].

outcome({'ok', Legs}) -> {'legs', [Key || {Key, _} <- keyed(Legs)]};
outcome(Other) -> Other.

leg_differences(LocalLegs, RemoteLegs) ->
    {Pairs, Missing, Extra} = pair(keyed(LocalLegs), keyed(RemoteLegs)),
    lists:append([[{'field', Key, Field, L, R} || {Field, L, R} <- compare_fields(Local, Remote)]
                  || {Key, Local, Remote} <- Pairs
                 ])
        ++ [{'missing_leg', Key} || {Key, _} <- Missing]
        ++ [{'extra_leg', Key} || {Key, _} <- Extra].

%% by destination, then a SIP leg left over with the worker's SIP leg of the
%% same device (an Invite-Format fallback changes the key, not the leg)
pair(Locals, Remotes) ->
    {Pairs, Missing, Extra} = pair_by(fun({Key, _}) -> Key end, Locals, Remotes),
    {Pairs2, Missing2, Extra2} = pair_by(fun({_, Leg}) -> sip_device(Leg) end, Missing, Extra),
    {Pairs ++ Pairs2, Missing2, Extra2}.

pair_by(KeyFun, Locals, Remotes) ->
    lists:foldl(fun({Key, Local}=L, {Pairs, Missing, Rest}) ->
                        case KeyFun(L) of
                            'undefined' -> {Pairs, Missing ++ [L], Rest};
                            K ->
                                case take(fun(R) -> KeyFun(R) =:= K end, Rest) of
                                    'false' -> {Pairs, Missing ++ [L], Rest};
                                    {{_, Remote}, Rest1} -> {Pairs ++ [{Key, Local, Remote}], Missing, Rest1}
                                end
                        end
                end
               ,{[], [], Remotes}
               ,Locals
               ).

take(Pred, List) -> take(Pred, List, []).
take(_Pred, [], _Acc) -> 'false';
take(Pred, [H | T], Acc) ->
    case Pred(H) of
        'true' -> {H, lists:reverse(Acc, T)};
        'false' -> take(Pred, T, [H | Acc])
    end.

%%%=============================================================================
%%% Classification: each clause names the docs/compatibility.md row it stands
%%% for; anything else is unlisted
%%%=============================================================================

%% Results is {Local, Remote}, both `{ok, Legs}' or `{error, Code}';
%% Rows the worker's device-table row per device id (from Explain)
-spec classify(what(), difference(), kz_term:ne_binaries(), [{binary(), integer()}], {term(), term()}) -> class().
classify(What, {'field', Key, Field, L, R}, Ignore, _Rows, Results) ->
    case is_ignored(Field, Ignore) of
        'true' -> {'listed', 'ignored_field'};
        'false' -> classify_field(What, Field, L, R, pair_of(Key, Results))
    end;
classify('by_owner_id', {'outcome', _, {'error', Code}}, _Ignore, _Rows, {{'ok', [_ | _]}, _})
  when Code =:= 'endpoint_disabled'; Code =:= 'do_not_disturb'; Code =:= 'owner_called_self' ->
    %% the user is gated before its devices; v4 builds each owned device
    {'listed', 'user_gating'};
classify(_What, {'outcome', _, _}, _Ignore, _Rows, _Results) ->
    'unlisted';
classify(_What, {'extra_leg', Key}, _Ignore, Rows, {_, Remote}) ->
    classify_extra(leg(Key, Remote), Rows);
classify(What, {'missing_leg', Key}, _Ignore, Rows, {Local, Remote}) ->
    classify_missing(What, leg(Key, Local), legs(Remote), Rows).

%% Invite-Format: the worker falls back to username where 4.3 has no such format
classify_field(_What, <<"Invite-Format">>, L, <<"username">>, _Pair) when is_binary(L) ->
    case lists:member(L, ?INVITE_FORMATS_43) of
        'true' -> 'unlisted';
        'false' -> {'listed', 'invite_format_43'}
    end;
%% a forward leg the worker built from the user (or group) document, paired
%% with v4's leg of one of the user's devices to the same number: the
%% entity's fields differ
classify_field(_What, <<"Custom-Channel-Vars.", CCV/binary>>, _L, _R, {LocalLeg, RemoteLeg})
  when CCV =:= <<"Authorizing-Type">>; CCV =:= <<"Authorizing-ID">>; CCV =:= <<"Owner-ID">> ->
    case is_forward(LocalLeg)
        andalso is_forward(RemoteLeg)
        andalso lists:member(authorizing_type(RemoteLeg), [<<"user">>, <<"group">>])
        andalso authorizing_type(LocalLeg) =:= <<"device">>
    of
        'true' -> {'listed', 'forward_entity'};
        'false' -> 'unlisted'
    end;
classify_field(_What, _Field, _L, _R, _Pair) ->
    'unlisted'.

%% a leg only the worker built
classify_extra('undefined', _Rows) -> 'unlisted';
classify_extra(Leg, Rows) ->
    case {is_failover(Leg), is_forward(Leg), authorizing_type(Leg)} of
        {'true', _, <<"device">>} ->
            %% a separate FAILOVER leg for an unregistered device (rows 4-5)
            case proplists:get_value(authorizing_id(Leg), Rows) of
                Row when Row =:= 4; Row =:= 5 -> {'listed', 'unregistered_device'};
                _ -> 'unlisted'
            end;
        {'true', _, <<"user">>} ->
            %% all of the user's devices unregistered: some in row 4-5, none in 2-3
            Seen = [Row || {_, Row} <- Rows],
            case lists:any(fun(R) -> R =:= 4 orelse R =:= 5 end, Seen)
                andalso not lists:any(fun(R) -> R =:= 2 orelse R =:= 3 end, Seen)
            of
                'true' -> {'listed', 'user_failover'};
                'false' -> 'unlisted'
            end;
        {'false', 'true', <<"user">>} -> {'listed', 'user_forward'};
        {'false', 'true', <<"group">>} -> {'listed', 'group_forward'};
        _ -> 'unlisted'
    end.

%% a leg only the local build has
classify_missing(_What, 'undefined', _RemoteLegs, _Rows) -> 'unlisted';
classify_missing(What, Leg, RemoteLegs, Rows) ->
    case is_loopback(Leg) of
        'false' -> classify_missing_sip(What, Leg, RemoteLegs, Rows);
        'true' -> classify_missing_loopback(What, Leg, RemoteLegs, Rows)
    end.

classify_missing_sip(What, Leg, RemoteLegs, Rows) ->
    case {user_substitutes(What, RemoteLegs), proplists:get_value(sip_device(Leg), Rows)} of
        %% the user's forward substitutes: its devices are not built
        {'true', _} -> {'listed', 'user_forward'};
        %% unregistered: a FAILOVER leg or no leg instead of the SIP leg
        {_, Row} when Row =:= 4; Row =:= 5 -> {'listed', 'unregistered_device'};
        %% the worker's forward substitutes (substitute missing: true, v4: false)
        {_, 1} -> {'listed', 'missing_substitute'};
        _ -> 'unlisted'
    end.

classify_missing_loopback(What, Leg, RemoteLegs, Rows) ->
    Route = kz_json:get_ne_binary_value(<<"Route">>, Leg),
    Routes = [kz_json:get_ne_binary_value(<<"Route">>, R) || R <- RemoteLegs, is_loopback(R)],
    Row = proplists:get_value(authorizing_id(Leg), Rows),
    case {user_substitutes(What, RemoteLegs), is_binary(Route) andalso lists:member(Route, Routes)} of
        {'true', _} -> {'listed', 'user_forward'};
        %% the worker keeps one loopback leg per route
        {_, 'true'} -> {'listed', 'same_route'};
        _ when Row =:= 3; Row =:= 4; Row =:= 6; Row =:= 9 ->
            %% a forward for a device whose own forward is not active: v4 merged
            %% the owner's call_forward into it
            case is_forward(Leg) andalso not is_failover(Leg) andalso authorizing_type(Leg) =:= <<"device">> of
                'true' -> {'listed', 'owner_forward'};
                'false' -> 'unlisted'
            end;
        _ -> 'unlisted'
    end.

%% the worker's whole answer for a user is the user's own forward leg
user_substitutes('by_owner_id', [Leg]) ->
    is_forward(Leg) andalso not is_failover(Leg) andalso authorizing_type(Leg) =:= <<"user">>;
user_substitutes(_What, _Legs) -> 'false'.

%%%=============================================================================
%%% Legs
%%%=============================================================================

legs({'ok', Legs}) -> Legs;
legs(_) -> [].

leg(Key, Result) ->
    case [Leg || {K, Leg} <- keyed(legs(Result)), K =:= Key] of
        [Leg | _] -> Leg;
        [] -> 'undefined'
    end.

pair_of(Key, {Local, Remote}) -> {leg(Key, Local), paired_remote(Key, Local, Remote)}.

paired_remote(Key, Local, Remote) ->
    {Pairs, _, _} = pair(keyed(legs(Local)), keyed(legs(Remote))),
    case [R || {K, _, R} <- Pairs, K =:= Key] of
        [R | _] -> R;
        [] -> 'undefined'
    end.

is_loopback('undefined') -> 'false';
is_loopback(Leg) ->
    kz_json:get_ne_binary_value(<<"Invite-Format">>, Leg) =:= <<"loopback">>.

%% a loopback leg for a forward or failover: Call-Forward in its CCVs
is_forward('undefined') -> 'false';
is_forward(Leg) ->
    is_loopback(Leg) andalso kz_json:is_true([<<"Custom-Channel-Vars">>, <<"Call-Forward">>], Leg).

is_failover(Leg) ->
    is_loopback(Leg) andalso kz_json:is_true([<<"Custom-Channel-Vars">>, <<"Is-Failover">>], Leg).

authorizing_type('undefined') -> 'undefined';
authorizing_type(Leg) -> kz_json:get_ne_binary_value([<<"Custom-Channel-Vars">>, <<"Authorizing-Type">>], Leg).

authorizing_id(Leg) -> kz_json:get_ne_binary_value([<<"Custom-Channel-Vars">>, <<"Authorizing-ID">>], Leg).

%% the device a SIP (not loopback) leg rings
sip_device({_Key, Leg}) -> sip_device(Leg);
sip_device(Leg) ->
    case is_loopback(Leg) of
        'true' -> 'undefined';
        'false' ->
            case kz_json:get_ne_binary_value(<<"Endpoint-ID">>, Leg) of
                'undefined' -> authorizing_id(Leg);
                Id -> Id
            end
    end.

%% the worker's Explain lines: `device <id> ...: ... (docs/device-table.md row N)' (older
%% workers: `(device table row N)')
device_rows(Explain) ->
    lists:flatmap(fun(Line) ->
                          case re:run(Line, <<"^device ([0-9a-z]{32})[ :].*\\((?:device table|docs/device-table\\.md) row ([1-9])\\)$">>
                                     ,[{'capture', 'all_but_first', 'binary'}]
                                     )
                          of
                              {'match', [Id, Row]} -> [{Id, binary_to_integer(Row)}];
                              'nomatch' -> []
                          end
                  end
                 ,Explain
                 ).

%% the destination of a leg
keyed(Legs) ->
    [{leg_key(Leg), Leg} || Leg <- Legs].

leg_key(Leg) ->
    Format = kz_json:get_ne_binary_value(<<"Invite-Format">>, Leg, <<"username">>),
    Dest = case [V || K <- [<<"Route">>, <<"To-User">>, <<"To-IP">>, <<"To-DID">>, <<"Endpoint-ID">>],
                      V <- [kz_json:get_ne_binary_value(K, Leg)],
                      V =/= 'undefined'
                ]
           of
               [] -> <<"?">>;
               [D | _] -> D
           end,
    Realm = case kz_json:get_ne_binary_value(<<"To-Realm">>, Leg) of
                'undefined' -> <<>>;
                R -> <<"@", R/binary>>
            end,
    <<Format/binary, ":", Dest/binary, Realm/binary>>.

compare_fields(Local, Remote) ->
    L = flatten(Local),
    R = flatten(Remote),
    Fields = lists:usort([F || {F, _} <- L] ++ [F || {F, _} <- R]),
    [{F, LV, RV}
     || F <- Fields,
        LV <- [proplists:get_value(F, L)],
        RV <- [proplists:get_value(F, R)],
        LV =/= RV
    ].

flatten(JObj) -> flatten(JObj, <<>>).

flatten(JObj, Prefix) ->
    lists:flatmap(fun({K, V}) ->
                          Path = case Prefix of
                                     <<>> -> K;
                                     _ -> <<Prefix/binary, ".", K/binary>>
                                 end,
                          case kz_json:is_json_object(V) andalso not kz_json:is_empty(V) of
                              'true' -> flatten(V, Path);
                              'false' -> [{Path, V}]
                          end
                  end
                 ,kz_json:to_proplist(JObj)
                 ).

is_ignored(Field, Ignore) ->
    lists:any(fun(I) ->
                      Field =:= I
                          orelse binary:longest_common_prefix([Field, <<I/binary, ".">>]) =:= byte_size(I) + 1
              end
             ,Ignore
             ).
