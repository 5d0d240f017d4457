%%% Test stand-in for Kazoo's kapps_config (kazoo_apps): typed getters with a
%%% default, over values the test sets (no node, zone or default layers, no
%%% database). Never shipped.
-module(kapps_config).
-export([get_ne_binary/3, get_integer/3, get_atom/3, get_ne_binaries/3
        ,get/3, get_binary/3, get_boolean/3, get_is_true/3, get_json/3
        ,get_pos_integer/3, get_non_neg_integer/3
        ,set/3, unset/2, reset/0
        ]).

-define(APP, 'kapps_config_standin').

set(Category, Key, Value) -> application:set_env(?APP, {Category, Key}, Value).
unset(Category, Key) -> application:unset_env(?APP, {Category, Key}).
reset() -> [application:unset_env(?APP, K) || {K, _} <- application:get_all_env(?APP)], 'ok'.

raw(Category, Key) ->
    case application:get_env(?APP, {Category, Key}) of
        {'ok', V} -> V;
        'undefined' -> 'undefined'
    end.

get_ne_binary(Category, Key, Default) ->
    case raw(Category, Key) of
        <<_, _/binary>> = V -> V;
        A when is_atom(A), A =/= 'undefined' -> atom_to_binary(A, 'utf8');
        _ -> Default
    end.

get_integer(Category, Key, Default) ->
    case raw(Category, Key) of
        I when is_integer(I) -> I;
        B when is_binary(B) -> binary_to_integer(B);
        _ -> Default
    end.

get_atom(Category, Key, Default) ->
    case raw(Category, Key) of
        A when is_atom(A), A =/= 'undefined' -> A;
        B when is_binary(B) -> binary_to_atom(B, 'utf8');
        _ -> Default
    end.

get_ne_binaries(Category, Key, Default) ->
    case raw(Category, Key) of
        L when is_list(L) -> L;
        _ -> Default
    end.

%% the other getters Kazoo's own modules use (kapps_call:from_json/1, ...)
get(Category, Key, Default) ->
    case raw(Category, Key) of
        'undefined' -> Default;
        V -> V
    end.

get_binary(Category, Key, Default) ->
    case raw(Category, Key) of
        B when is_binary(B) -> B;
        _ -> Default
    end.

get_boolean(Category, Key, Default) ->
    case raw(Category, Key) of
        B when is_boolean(B) -> B;
        _ -> Default
    end.

get_is_true(Category, Key, Default) ->
    case raw(Category, Key) of
        'true' -> 'true';
        <<"true">> -> 'true';
        'undefined' -> Default =:= 'true';
        _ -> 'false'
    end.

get_json(Category, Key, Default) ->
    case raw(Category, Key) of
        {_} = J -> J;
        _ -> Default
    end.

get_pos_integer(Category, Key, Default) -> get_integer(Category, Key, Default).

get_non_neg_integer(Category, Key, Default) -> get_integer(Category, Key, Default).
