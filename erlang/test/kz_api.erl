%%% Test stand-in for Kazoo's kz_api (kazoo_amqp/src/api/kz_api.erl): the
%%% envelope defaults, payload preparation, message building and validation,
%%% with Kazoo's rules (see ../shared/docs/kazoo-wire-format.md 1.2 to 1.4).
%%% Left out: the federation helpers, pid plumbing, the generic error message.
%%% Never shipped.
-module(kz_api).
-export([default_headers/2, prepare_api_payload/3, build_message/3, validate/4
        ,remove_empty_values/1
        ]).

-define(DEFAULT_HEADERS, [<<"App-Name">>, <<"App-Version">>, <<"Event-Category">>
                         ,<<"Event-Name">>, <<"Msg-ID">>
                         ]).
-define(OPTIONAL_DEFAULT_HEADERS, [<<"Access-Group">>, <<"Defer-Response">>, <<"Destination-Server">>
                                  ,<<"Geo-Location">>, <<"System-Log-ID">>, <<"Account-ID">>
                                  ,<<"Call-ID">>, <<"Node">>, <<"Server-Queue-ID">>, <<"Raw-Headers">>
                                  ,<<"Server-ID">>, <<"Request-From-PID">>, <<"Reply-To-PID">>
                                  ,<<"Msg-Reply-ID">>
                                  ]).

default_headers(AppName, AppVsn) ->
    [{<<"Server-ID">>, 'undefined'}
    ,{<<"App-Name">>, AppName}
    ,{<<"App-Version">>, AppVsn}
    ,{<<"Node">>, atom_to_binary(node(), 'utf8')}
    ].

prepare_api_payload(Prop, HeaderValues, FormatterFun) when is_list(Prop) ->
    P1 = set_missing_values(Prop, HeaderValues),
    P2 = set_missing_values(P1, [{<<"Node">>, atom_to_binary(node(), 'utf8')}
                                ,{<<"Msg-ID">>, rand_hex(16)}
                                ]),
    FormatterFun(remove_empty_values(P2));
prepare_api_payload(JObj, HeaderValues, FormatterFun) ->
    prepare_api_payload(kz_json:to_proplist(JObj), HeaderValues, FormatterFun).

set_missing_values(Prop, HeaderValues) ->
    lists:foldl(fun({_, V}, Acc) when is_list(V) -> Acc;
                   ({K, _} = KV, Acc) ->
                        case is_strippable(props:get_value(K, Prop)) of
                            'true' -> [KV | lists:keydelete(K, 1, Acc)];
                            'false' -> Acc
                        end
                end
               ,Prop
               ,HeaderValues
               ).

remove_empty_values(Prop) when is_list(Prop) ->
    [case kz_json:is_json_object(V) of
         'true' -> {K, kz_json:from_list(remove_empty_values(kz_json:to_proplist(V)))};
         'false' -> KV
     end
     || {K, V} = KV <- Prop,
        K =:= <<"Server-ID">> orelse K =:= <<"Msg-ID">> orelse not is_strippable(V)
    ].

is_strippable('undefined') -> 'true';
is_strippable(<<>>) -> 'true';
is_strippable(_) -> 'false'.

build_message(Prop, ReqH, OptH) when is_list(Prop) ->
    case lists:all(fun(H) -> is_defined(H, Prop) end, ?DEFAULT_HEADERS) of
        'false' -> {'error', "missing default headers"};
        'true' ->
            case lists:all(fun(H) -> has_header(H, Prop) end, ReqH) of
                'false' -> {'error', "missing required headers"};
                'true' ->
                    Keys = ?DEFAULT_HEADERS ++ ?OPTIONAL_DEFAULT_HEADERS
                        ++ lists:flatten(ReqH) ++ OptH,
                    Kept = [{K, V} || {K, V} <- Prop, lists:member(K, Keys), V =/= 'undefined'],
                    {'ok', kz_json:encode(kz_json:from_list(lists:reverse(Kept)))}
            end
    end;
build_message(JObj, ReqH, OptH) ->
    build_message(kz_json:to_proplist(JObj), ReqH, OptH).

validate(Prop, ReqH, Vals, Types) when is_list(Prop) ->
    lists:all(fun(H) -> is_defined(H, Prop) end, ?DEFAULT_HEADERS)
        andalso lists:all(fun(H) -> has_header(H, Prop) end, ReqH)
        andalso lists:all(fun(V) -> value_ok(V, Prop) end, Vals)
        andalso lists:all(fun(T) -> type_ok(T, Prop) end, Types);
validate(JObj, ReqH, Vals, Types) ->
    validate(kz_json:to_proplist(JObj), ReqH, Vals, Types).

has_header(Group, Prop) when is_list(Group) -> lists:any(fun(H) -> is_defined(H, Prop) end, Group);
has_header(H, Prop) -> is_defined(H, Prop).

is_defined(K, Prop) -> props:get_value(K, Prop) =/= 'undefined'.

value_ok({K, Vs}, Prop) when is_list(Vs) ->
    case props:get_value(K, Prop) of
        'undefined' -> 'true';
        V -> lists:member(V, Vs)
    end;
value_ok({K, V}, Prop) ->
    case props:get_value(K, Prop) of
        'undefined' -> 'true';
        V -> 'true';
        _ -> 'false'
    end.

type_ok({K, Fun}, Prop) ->
    case props:get_value(K, Prop) of
        'undefined' -> 'true';
        V -> try Fun(V) =:= 'true' catch _:_ -> 'false' end
    end.

rand_hex(N) -> kz_binary:rand_hex(N).
