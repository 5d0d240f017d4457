%%%-----------------------------------------------------------------------------
%%% @doc Counters of the AMQP endpoint backend, per node (kz-endpoint).
%%%
%%% `sup kz_endpoint_amqp_stats print' shows them; `stats/0' returns them.
%%% The counters live in an OTP `counters' array kept in `persistent_term', so
%%% no process owns them and a callflow process never waits to count.
%%% @end
%%%-----------------------------------------------------------------------------
-module(kz_endpoint_amqp_stats).

-export([bump/1, bump/2
        ,stats/0
        ,print/0
        ,reset/0
        ,names/0
        ]).

-define(KEY, {?MODULE, 'counters'}).
-define(NAMES, ['remote_requests'       %% builds asked of the worker (mode on)
               ,'remote_ok'             %% build_resp received
               ,'remote_error'          %% build_error received, returned as {error, Code}
               ,'fallback_timeout'      %% no reply in amqp_timeout_ms: built locally
               ,'fallback_returned'     %% nothing bound (mandatory publish returned): built locally
               ,'fallback_pool'         %% kz_amqp_worker pool or publish error: built locally
               ,'fallback_error_code'   %% a build_error listed in amqp_fallback_error_codes: built locally
               ,'local_builds'          %% built locally without asking (off, inline JSON, no id)
               ,'remote_us'             %% total round-trip time of answered requests, microseconds
               ,'shadow_requests'       %% shadow comparisons started
               ,'shadow_match'          %% no difference beyond those docs/compatibility.md lists
               ,'shadow_different'      %% comparisons with at least one unlisted difference
               ,'shadow_fields_different' %% unlisted differences (fields, missing or extra legs, outcomes), summed
               ,'shadow_listed'         %% differences docs/compatibility.md lists, summed (logged at debug)
               ,'shadow_unanswered'     %% worker did not answer in shadow (timeout, returned, pool)
               ]).

-spec names() -> [atom()].
names() -> ?NAMES.

-spec bump(atom()) -> 'ok'.
bump(Name) -> bump(Name, 1).

-spec bump(atom(), integer()) -> 'ok'.
bump(Name, N) ->
    counters:add(ref(), index(Name, ?NAMES, 1), N).

-spec stats() -> [{atom(), integer()}].
stats() ->
    Ref = ref(),
    [{Name, counters:get(Ref, I)}
     || {Name, I} <- lists:zip(?NAMES, lists:seq(1, length(?NAMES)))
    ].

-spec print() -> 'ok'.
print() ->
    lists:foreach(fun({Name, Value}) -> io:format("~-26s ~b~n", [Name, Value]) end, stats()).

-spec reset() -> 'ok'.
reset() ->
    Ref = ref(),
    lists:foreach(fun(I) -> counters:put(Ref, I, 0) end, lists:seq(1, length(?NAMES))).

ref() ->
    try persistent_term:get(?KEY)
    catch
        'error':'badarg' ->
            %% two first callers may race: the one stored last wins, and the
            %% other's increment is lost once; never more than that.
            Ref = counters:new(length(?NAMES), ['write_concurrency']),
            persistent_term:put(?KEY, Ref),
            Ref
    end.

index(Name, [Name | _], I) -> I;
index(Name, [_ | Names], I) -> index(Name, Names, I + 1).
