%%%-----------------------------------------------------------------------------
%%% @doc Shadow mode's comparison (kz-endpoint): the worker's legs against a
%%% local build of the compare module (`kz_endpoint_v4' by default: v5's one
%%% opaque `endpoint' leg cannot be compared leg by leg).
%%%
%%% Legs are paired by destination (`Invite-Format' with `Route', `To-User'@`To-Realm',
%%% `To-IP' or `To-DID'); every field of a pair is compared, nested
%%% objects field by field (`Custom-Channel-Vars.Owner-ID'). Fields listed in
%%% `amqp_shadow_ignore_fields' (the differences docs/compatibility.md lists)
%%% are skipped. Each remaining difference is logged on its own line with the
%%% call id and endpoint id, and counted (`kz_endpoint_amqp_stats').
%%% @end
%%%-----------------------------------------------------------------------------
-module(kz_endpoint_amqp_shadow).

-export([report/6
        ,compare/3
        ]).

-include("kz_endpoint_amqp.hrl").

-type difference() :: {'outcome', term(), term()}
                    | {'missing_leg', binary()}
                    | {'extra_leg', binary()}
                    | {'field', binary(), binary(), term(), term()}.
-export_type([difference/0]).

%%------------------------------------------------------------------------------
%% @doc Compare, log and count. `Local' is the compare module's result,
%% `Remote' the worker's (`kz_endpoint_amqp:remote_build/3').
%% @end
%%------------------------------------------------------------------------------
-spec report(kz_term:api_binary(), kz_term:ne_binary(), module(), term(), term(), kz_term:ne_binaries()) ->
          'match' | 'unanswered' | {'different', [difference()]}.
report(CallId, EndpointId, _Compare, _Local, {'fallback', Why}, _Ignore) ->
    kz_endpoint_amqp_stats:bump('shadow_unanswered'),
    ?KZE_WARNING("shadow: call ~s endpoint ~s: worker gave no answer (~p)", [CallId, EndpointId, Why]),
    'unanswered';
report(CallId, EndpointId, Compare, Local, Remote, Ignore) ->
    case compare(Local, Remote, Ignore) of
        [] ->
            kz_endpoint_amqp_stats:bump('shadow_match'),
            ?KZE_DEBUG("shadow: call ~s endpoint ~s: worker agrees with ~s", [CallId, EndpointId, Compare]),
            'match';
        Diffs ->
            kz_endpoint_amqp_stats:bump('shadow_different'),
            kz_endpoint_amqp_stats:bump('shadow_fields_different', length(Diffs)),
            ?KZE_NOTICE("shadow: call ~s endpoint ~s: ~b difference(s) between worker and ~s"
                       ,[CallId, EndpointId, length(Diffs), Compare]
                       ),
            lists:foreach(fun(Diff) -> log_difference(CallId, EndpointId, Diff) end, Diffs),
            {'different', Diffs}
    end.

log_difference(CallId, EndpointId, {'outcome', Local, Remote}) ->
    ?KZE_NOTICE("shadow difference: call ~s endpoint ~s outcome: local ~0p worker ~0p"
               ,[CallId, EndpointId, Local, Remote]);
log_difference(CallId, EndpointId, {'missing_leg', Key}) ->
    ?KZE_NOTICE("shadow difference: call ~s endpoint ~s leg ~s: only in the local build"
               ,[CallId, EndpointId, Key]);
log_difference(CallId, EndpointId, {'extra_leg', Key}) ->
    ?KZE_NOTICE("shadow difference: call ~s endpoint ~s leg ~s: only in the worker's"
               ,[CallId, EndpointId, Key]);
log_difference(CallId, EndpointId, {'field', Key, Field, Local, Remote}) ->
    ?KZE_NOTICE("shadow difference: call ~s endpoint ~s leg ~s field ~s: local ~s worker ~s"
               ,[CallId, EndpointId, Key, Field, show(Local), show(Remote)]).

show('undefined') -> <<"(absent)">>;
show(Value) -> kz_json:encode(Value).

%%------------------------------------------------------------------------------
%% @doc The differences between two build results (`{ok, Legs}' or
%% `{error, Code}'), known ones left out.
%% @end
%%------------------------------------------------------------------------------
-spec compare(term(), term(), kz_term:ne_binaries()) -> [difference()].
compare({'ok', LocalLegs}, {'ok', RemoteLegs}, Ignore) ->
    compare_legs(keyed(LocalLegs), keyed(RemoteLegs), Ignore, []);
compare({'error', Same}, {'error', Same}, _Ignore) -> [];
compare({'ok', []}, {'error', 'no_endpoints'}, _Ignore) -> [];
compare(Local, Remote, _Ignore) ->
    [{'outcome', outcome(Local), outcome(Remote)}].

outcome({'ok', Legs}) -> {'legs', [Key || {Key, _} <- keyed(Legs)]};
outcome(Other) -> Other.

compare_legs([], Remote, _Ignore, Acc) ->
    lists:reverse(Acc, [{'extra_leg', Key} || {Key, _} <- Remote]);
compare_legs([{Key, Local} | Locals], Remotes, Ignore, Acc) ->
    case lists:keytake(Key, 1, Remotes) of
        'false' ->
            compare_legs(Locals, Remotes, Ignore, [{'missing_leg', Key} | Acc]);
        {'value', {Key, Remote}, Rest} ->
            Diffs = [{'field', Key, Field, L, R}
                     || {Field, L, R} <- compare_fields(Local, Remote),
                        not is_ignored(Field, Ignore)
                    ],
            compare_legs(Locals, Rest, Ignore, lists:reverse(Diffs, Acc))
    end.

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
