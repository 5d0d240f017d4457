%%% A local builder for the tests, in place of kz_endpoint_v5 / kz_endpoint_v4:
%%% canned results (set per id, else one marker leg), every call recorded.
%%% Never shipped.
-module(kz_endpoint_test_local).
-export([build/3, get/2, flush/2, maybe_start_metaflow/2
        ,set_result/2, calls/0, reset/0, marker_leg/1
        ]).

-define(APP, 'kz_endpoint_test_local').

set_result(Id, Result) -> application:set_env(?APP, {'result', Id}, Result).

calls() -> lists:reverse(application:get_env(?APP, 'calls', [])).

reset() -> [application:unset_env(?APP, K) || {K, _} <- application:get_all_env(?APP)], 'ok'.

record(Call) -> application:set_env(?APP, 'calls', [Call | application:get_env(?APP, 'calls', [])]).

marker_leg(Id) ->
    kz_json:from_list([{<<"Invite-Format">>, <<"username">>}
                      ,{<<"To-User">>, <<"local-", Id/binary>>}
                      ,{<<"Local-Build">>, 'true'}
                      ]).

build(Id, _Properties, _Call) ->
    record({'build', Id}),
    case application:get_env(?APP, {'result', Id}) of
        {'ok', Result} -> Result;
        'undefined' when is_binary(Id) -> {'ok', [marker_leg(Id)]};
        'undefined' -> {'ok', [marker_leg(<<"inline">>)]}
    end.

get(Id, _Call) -> record({'get', Id}), {'ok', kz_json:from_list([{<<"_id">>, Id}])}.

flush(Db, Id) -> record({'flush', Db, Id}), 'ok'.

maybe_start_metaflow(_Call, Endpoint) ->
    record({'metaflow', kz_json:get_value(<<"Endpoint-ID">>, Endpoint)}), 'ok'.
