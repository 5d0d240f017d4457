%%% Test stand-in for Kazoo's props (kazoo_stdlib). Never shipped.
-module(props).
-export([get_value/2, get_value/3, set_value/3, filter_undefined/1, delete/2]).

get_value(K, Props) -> get_value(K, Props, 'undefined').
get_value(K, Props, Default) ->
    case lists:keyfind(K, 1, Props) of
        {K, V} -> V;
        'false' -> Default
    end.

set_value(K, V, Props) -> [{K, V} | lists:keydelete(K, 1, Props)].

filter_undefined(Props) -> [KV || {_, V} = KV <- Props, V =/= 'undefined'].

delete(K, Props) -> lists:keydelete(K, 1, Props).
