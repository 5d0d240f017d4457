%%% Test stand-in for lager: each log call is kept (level and text) so the
%%% suite can read it, and written to the console when KZE_VERBOSE is set.
%%% Never shipped.
-module(lager).
-export([debug/2, info/2, notice/2, warning/2, error/2, critical/2, md/1
        ,messages/0, clear/0
        ]).

-define(TABLE, 'kze_test_log').

debug(F, A) -> log('debug', F, A).
info(F, A) -> log('info', F, A).
notice(F, A) -> log('notice', F, A).
warning(F, A) -> log('warning', F, A).
error(F, A) -> log('error', F, A).
critical(F, A) -> log('critical', F, A).

md(_) -> 'ok'.

log(Level, F, A) ->
    Text = iolist_to_binary(io_lib:format(F, A)),
    table(),
    ets:insert(?TABLE, {erlang:unique_integer(['monotonic']), Level, Text}),
    case os:getenv("KZE_VERBOSE") of
        'false' -> 'ok';
        _ -> io:format('user', "[~s] ~s~n", [Level, Text])
    end.

messages() ->
    table(),
    [{Level, Text} || {_, Level, Text} <- lists:keysort(1, ets:tab2list(?TABLE))].

clear() ->
    table(),
    ets:delete_all_objects(?TABLE),
    'ok'.

table() ->
    case ets:info(?TABLE) of
        'undefined' ->
            Self = self(),
            Pid = spawn(fun() ->
                                try ets:new(?TABLE, ['named_table', 'public', 'ordered_set'])
                                catch 'error':'badarg' -> 'ok'
                                end,
                                Self ! {?TABLE, 'ready'},
                                receive 'never' -> 'ok' end
                        end),
            receive {?TABLE, 'ready'} -> 'ok' after 1000 -> exit({'no_log_table', Pid}) end;
        _ -> 'ok'
    end.
