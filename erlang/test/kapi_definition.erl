%%% Test stand-in for master's kapi_definition (kazoo_amqp): the record, its
%%% setters and getters, build_message/2 and validate/2. Never shipped.
-module(kapi_definition).
-export([setters/1, build_message/2, validate/2
        ,set_name/2, set_friendly_name/2, set_description/2, set_category/2
        ,set_build_fun/2, set_validate_fun/2, set_publish_fun/2, set_binding/2
        ,set_required_headers/2, set_optional_headers/2, set_values/2, set_types/2
        ,name/1, values/1, build_fun/1, binding/1, required_headers/1, optional_headers/1, types/1
        ]).

-record(kapi_definition, {name, friendly_name, description, category
                         ,build_fun, validate_fun, publish_fun, binding
                         ,required_headers = [], optional_headers = [], values = [], types = []
                         }).

setters(Setters) ->
    lists:foldl(fun({Fun, Value}, Def) -> Fun(Def, Value) end, #kapi_definition{}, Setters).

set_name(D, V) -> D#kapi_definition{name = V}.
set_friendly_name(D, V) -> D#kapi_definition{friendly_name = V}.
set_description(D, V) -> D#kapi_definition{description = V}.
set_category(D, V) -> D#kapi_definition{category = V}.
set_build_fun(D, V) -> D#kapi_definition{build_fun = V}.
set_validate_fun(D, V) -> D#kapi_definition{validate_fun = V}.
set_publish_fun(D, V) -> D#kapi_definition{publish_fun = V}.
set_binding(D, V) -> D#kapi_definition{binding = V}.
set_required_headers(D, V) -> D#kapi_definition{required_headers = V}.
set_optional_headers(D, V) -> D#kapi_definition{optional_headers = V}.
set_values(D, V) -> D#kapi_definition{values = V}.
set_types(D, V) -> D#kapi_definition{types = V}.

name(#kapi_definition{name = V}) -> V.
values(#kapi_definition{values = V}) -> V.
build_fun(#kapi_definition{build_fun = V}) -> V.
binding(#kapi_definition{binding = V}) -> V.
required_headers(#kapi_definition{required_headers = V}) -> V.
optional_headers(#kapi_definition{optional_headers = V}) -> V.
types(#kapi_definition{types = V}) -> V.

build_message(Prop, #kapi_definition{validate_fun = VFun, required_headers = ReqH
                                    ,optional_headers = OptH, name = Name
                                    }) when is_list(Prop) ->
    case VFun(Prop) of
        'true' -> kz_api:build_message(Prop, ReqH, OptH);
        'false' -> {'error', "Proplist failed validation for " ++ binary_to_list(Name)}
    end;
build_message(JObj, Def) -> build_message(kz_json:to_proplist(JObj), Def).

validate(Prop, #kapi_definition{required_headers = ReqH, values = Vals, types = Types}) ->
    kz_api:validate(Prop, ReqH, Vals, Types).
