%%% Test stand-in for Kazoo's kz_json (kazoo_stdlib): the `{Proplist}' term and
%%% the functions the project's modules and tests use. Never shipped.
-module(kz_json).
-export([new/0, from_list/1, to_proplist/1, is_json_object/1, are_json_objects/1
        ,is_empty/1, get_value/2, get_value/3, get_ne_binary_value/2, get_ne_binary_value/3
        ,get_list_value/2, get_list_value/3, get_json_value/2, set_value/3, delete_key/2
        ,is_true/2, encode/1, decode/1, get_keys/1
        ]).

new() -> {[]}.

from_list(Props) -> {[{K, V} || {K, V} <- Props, V =/= 'undefined']}.

to_proplist({Props}) when is_list(Props) -> Props.

is_json_object({Props}) when is_list(Props) -> 'true';
is_json_object(_) -> 'false'.

are_json_objects(L) when is_list(L) -> lists:all(fun is_json_object/1, L);
are_json_objects(_) -> 'false'.

is_empty({[]}) -> 'true';
is_empty(_) -> 'false'.

get_keys({Props}) -> [K || {K, _} <- Props].

get_value(Key, JObj) -> get_value(Key, JObj, 'undefined').
get_value([], JObj, _Default) -> JObj;
get_value([Key | Rest], {Props}, Default) when is_list(Props) ->
    case lists:keyfind(Key, 1, Props) of
        {Key, V} -> get_value(Rest, V, Default);
        'false' -> Default
    end;
get_value([_ | _], _, Default) -> Default;
get_value(Key, JObj, Default) -> get_value([Key], JObj, Default).

get_ne_binary_value(Key, JObj) -> get_ne_binary_value(Key, JObj, 'undefined').
get_ne_binary_value(Key, JObj, Default) ->
    case get_value(Key, JObj) of
        <<_, _/binary>> = V -> V;
        _ -> Default
    end.

get_list_value(Key, JObj) -> get_list_value(Key, JObj, 'undefined').
get_list_value(Key, JObj, Default) ->
    case get_value(Key, JObj) of
        L when is_list(L) -> L;
        _ -> Default
    end.

get_json_value(Key, JObj) ->
    case get_value(Key, JObj) of
        {_} = V -> V;
        _ -> 'undefined'
    end.

set_value([Key], Value, JObj) -> set_value(Key, Value, JObj);
set_value([Key | Rest], Value, {Props}) ->
    Inner = case lists:keyfind(Key, 1, Props) of
                {Key, {_} = V} -> V;
                _ -> new()
            end,
    {lists:keystore(Key, 1, Props, {Key, set_value(Rest, Value, Inner)})};
set_value(Key, Value, {Props}) ->
    {lists:keystore(Key, 1, Props, {Key, Value})}.

delete_key(Key, {Props}) -> {lists:keydelete(Key, 1, Props)}.

is_true(Key, JObj) ->
    case get_value(Key, JObj) of
        'true' -> 'true';
        <<"true">> -> 'true';
        _ -> 'false'
    end.

encode(Term) -> iolist_to_binary(jiffy:encode(Term, ['force_utf8'])).

decode(Bin) ->
    try jiffy:decode(Bin)
    catch _:_ -> new()
    end.
