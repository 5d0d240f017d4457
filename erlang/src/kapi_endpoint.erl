%%%-----------------------------------------------------------------------------
%%% @doc Endpoint build requests, responses and errors (kz-endpoint).
%%%
%%% `endpoint' / `build_req' is published on the `kapps' exchange with the
%%% routing key `endpoint.build.{Account-ID}' and `mandatory' set, so a request
%%% that no builder is bound for comes back at once as `{returned, ...}'.
%%% `build_resp' and `build_error' go to the requester's `Server-ID' on the
%%% `targeted' exchange and carry the request's `Msg-ID'.
%%%
%%% This is the master (5.x) variant, written with `kapi_definition' setters.
%%% Kazoo 4.3's `kapi_definition' has no setters: use
%%% `erlang/variants/4.3/kapi_endpoint.erl' there.
%%% @end
%%%-----------------------------------------------------------------------------
-module(kapi_endpoint).

-export([api_definitions/0, api_definition/1]).

-export([build_req/1
        ,build_req_v/1
        ,publish_build_req/1
        ,publish_build_req/2
        ]).
-export([build_resp/1
        ,build_resp_v/1
        ,publish_build_resp/2
        ,publish_build_resp/3
        ]).
-export([build_error/1
        ,build_error_v/1
        ,publish_build_error/2
        ,publish_build_error/3
        ]).
-export([error_codes/0
        ,routing_key/1
        ]).

-export([bind_q/2, unbind_q/2]).
-export([declare_exchanges/0]).

-include("kapi_endpoint.hrl").

%%------------------------------------------------------------------------------
%% @doc All API definitions of this module.
%% @end
%%------------------------------------------------------------------------------
-spec api_definitions() -> kapi_definition:apis().
api_definitions() ->
    [build_req_definition()
    ,build_resp_definition()
    ,build_error_definition()
    ].

-spec api_definition(kz_term:text()) -> kapi_definition:api().
api_definition(Name) when not is_binary(Name) ->
    api_definition(kz_term:to_binary(Name));
api_definition(<<"build_req">>) ->
    build_req_definition();
api_definition(<<"build_resp">>) ->
    build_resp_definition();
api_definition(<<"build_error">>) ->
    build_error_definition().

-spec build_req_definition() -> kapi_definition:api().
build_req_definition() ->
    EventName = ?BUILD_REQ_EVENT,
    Category = ?ENDPOINT_CATEGORY,
    Setters = [{fun kapi_definition:set_name/2, EventName}
              ,{fun kapi_definition:set_friendly_name/2, <<"Endpoint Build Request">>}
              ,{fun kapi_definition:set_description/2
               ,<<"Ask an endpoint builder for the bridge endpoints of a device, user or group">>
               }
              ,{fun kapi_definition:set_category/2, Category}
              ,{fun kapi_definition:set_build_fun/2, fun build_req/1}
              ,{fun kapi_definition:set_validate_fun/2, fun build_req_v/1}
              ,{fun kapi_definition:set_publish_fun/2, fun publish_build_req/1}
              ,{fun kapi_definition:set_binding/2, fun routing_key/1}
              ,{fun kapi_definition:set_required_headers/2, ?BUILD_REQ_HEADERS}
              ,{fun kapi_definition:set_optional_headers/2, ?OPTIONAL_BUILD_REQ_HEADERS}
              ,{fun kapi_definition:set_values/2, ?BUILD_REQ_VALUES}
              ,{fun kapi_definition:set_types/2, ?BUILD_REQ_TYPES}
              ],
    kapi_definition:setters(Setters).

-spec build_resp_definition() -> kapi_definition:api().
build_resp_definition() ->
    EventName = ?BUILD_RESP_EVENT,
    Category = ?ENDPOINT_CATEGORY,
    Setters = [{fun kapi_definition:set_name/2, EventName}
              ,{fun kapi_definition:set_friendly_name/2, <<"Endpoint Build Response">>}
              ,{fun kapi_definition:set_description/2, <<"The bridge endpoints of a build request">>}
              ,{fun kapi_definition:set_category/2, Category}
              ,{fun kapi_definition:set_build_fun/2, fun build_resp/1}
              ,{fun kapi_definition:set_validate_fun/2, fun build_resp_v/1}
              ,{fun kapi_definition:set_publish_fun/2, fun publish_build_resp/2}
              ,{fun kapi_definition:set_required_headers/2, ?BUILD_RESP_HEADERS}
              ,{fun kapi_definition:set_optional_headers/2, ?OPTIONAL_BUILD_RESP_HEADERS}
              ,{fun kapi_definition:set_values/2, ?BUILD_RESP_VALUES}
              ,{fun kapi_definition:set_types/2, ?BUILD_RESP_TYPES}
              ],
    kapi_definition:setters(Setters).

-spec build_error_definition() -> kapi_definition:api().
build_error_definition() ->
    EventName = ?BUILD_ERROR_EVENT,
    Category = ?ENDPOINT_CATEGORY,
    Setters = [{fun kapi_definition:set_name/2, EventName}
              ,{fun kapi_definition:set_friendly_name/2, <<"Endpoint Build Error">>}
              ,{fun kapi_definition:set_description/2, <<"Why a build request produced no endpoints">>}
              ,{fun kapi_definition:set_category/2, Category}
              ,{fun kapi_definition:set_build_fun/2, fun build_error/1}
              ,{fun kapi_definition:set_validate_fun/2, fun build_error_v/1}
              ,{fun kapi_definition:set_publish_fun/2, fun publish_build_error/2}
              ,{fun kapi_definition:set_required_headers/2, ?BUILD_ERROR_HEADERS}
              ,{fun kapi_definition:set_optional_headers/2, ?OPTIONAL_BUILD_ERROR_HEADERS}
              ,{fun kapi_definition:set_values/2, ?BUILD_ERROR_VALUES}
              ,{fun kapi_definition:set_types/2, ?BUILD_ERROR_TYPES}
              ],
    kapi_definition:setters(Setters).

%%------------------------------------------------------------------------------
%% @doc The error codes a `build_error' may carry (Kazoo's build errors and
%% `invalid_request').
%% @end
%%------------------------------------------------------------------------------
-spec error_codes() -> kz_term:ne_binaries().
error_codes() -> ?BUILD_ERROR_CODES.

%%------------------------------------------------------------------------------
%% @doc `endpoint.build.{Account-ID}', the account id escaped as Kazoo escapes
%% routing-key segments.
%% @end
%%------------------------------------------------------------------------------
-spec routing_key(kz_term:api_terms() | kz_term:ne_binary()) -> kz_term:ne_binary().
routing_key(AccountId) when is_binary(AccountId) ->
    <<?BUILD_REQ_ROUTING_PREFIX, (kz_amqp_util:encode(AccountId))/binary>>;
routing_key(Props) when is_list(Props) ->
    routing_key(props:get_value(<<"Account-ID">>, Props, <<"*">>));
routing_key(JObj) ->
    routing_key(kz_json:get_ne_binary_value(<<"Account-ID">>, JObj, <<"*">>)).

%%------------------------------------------------------------------------------
%% @doc Build request.
%% @end
%%------------------------------------------------------------------------------
-spec build_req(kz_term:api_terms()) -> kz_api:api_formatter_return().
build_req(Req) ->
    kapi_definition:build_message(Req, build_req_definition()).

-spec build_req_v(kz_term:api_terms()) -> boolean().
build_req_v(Req) ->
    kapi_definition:validate(Req, build_req_definition()).

-spec publish_build_req(kz_term:api_terms()) -> 'ok'.
publish_build_req(JObj) ->
    publish_build_req(JObj, ?DEFAULT_CONTENT_TYPE).

-spec publish_build_req(kz_term:api_terms(), kz_term:ne_binary()) -> 'ok'.
publish_build_req(Req, ContentType) ->
    Definition = build_req_definition(),
    {'ok', Payload} = kz_api:prepare_api_payload(Req
                                                ,kapi_definition:values(Definition)
                                                ,kapi_definition:build_fun(Definition)
                                                ),
    kz_amqp_util:kapps_publish(routing_key(Req), Payload, ContentType, [{'mandatory', 'true'}]).

%%------------------------------------------------------------------------------
%% @doc Build response.
%% @end
%%------------------------------------------------------------------------------
-spec build_resp(kz_term:api_terms()) -> kz_api:api_formatter_return().
build_resp(Resp) ->
    kapi_definition:build_message(Resp, build_resp_definition()).

-spec build_resp_v(kz_term:api_terms()) -> boolean().
build_resp_v(Resp) ->
    kapi_definition:validate(Resp, build_resp_definition()).

-spec publish_build_resp(kz_term:ne_binary(), kz_term:api_terms()) -> 'ok'.
publish_build_resp(Queue, JObj) ->
    publish_build_resp(Queue, JObj, ?DEFAULT_CONTENT_TYPE).

-spec publish_build_resp(kz_term:ne_binary(), kz_term:api_terms(), kz_term:ne_binary()) -> 'ok'.
publish_build_resp(Queue, Resp, ContentType) ->
    Definition = build_resp_definition(),
    {'ok', Payload} = kz_api:prepare_api_payload(Resp
                                                ,kapi_definition:values(Definition)
                                                ,kapi_definition:build_fun(Definition)
                                                ),
    kz_amqp_util:targeted_publish(Queue, Payload, ContentType).

%%------------------------------------------------------------------------------
%% @doc Build error.
%% @end
%%------------------------------------------------------------------------------
-spec build_error(kz_term:api_terms()) -> kz_api:api_formatter_return().
build_error(Error) ->
    kapi_definition:build_message(Error, build_error_definition()).

-spec build_error_v(kz_term:api_terms()) -> boolean().
build_error_v(Error) ->
    kapi_definition:validate(Error, build_error_definition()).

-spec publish_build_error(kz_term:ne_binary(), kz_term:api_terms()) -> 'ok'.
publish_build_error(Queue, JObj) ->
    publish_build_error(Queue, JObj, ?DEFAULT_CONTENT_TYPE).

-spec publish_build_error(kz_term:ne_binary(), kz_term:api_terms(), kz_term:ne_binary()) -> 'ok'.
publish_build_error(Queue, Error, ContentType) ->
    Definition = build_error_definition(),
    {'ok', Payload} = kz_api:prepare_api_payload(Error
                                                ,kapi_definition:values(Definition)
                                                ,kapi_definition:build_fun(Definition)
                                                ),
    kz_amqp_util:targeted_publish(Queue, Payload, ContentType).

%%------------------------------------------------------------------------------
%% @doc Bind a builder's queue: `{account_id, Id}' for one account, else all.
%% @end
%%------------------------------------------------------------------------------
-spec bind_q(kz_term:ne_binary(), kz_term:proplist()) -> 'ok'.
bind_q(Queue, Props) ->
    kz_amqp_util:bind_q_to_kapps(Queue, routing_key(props:get_value('account_id', Props, <<"*">>))).

-spec unbind_q(kz_term:ne_binary(), kz_term:proplist()) -> 'ok'.
unbind_q(Queue, Props) ->
    kz_amqp_util:unbind_q_from_kapps(Queue, routing_key(props:get_value('account_id', Props, <<"*">>))).

%%------------------------------------------------------------------------------
%% @doc Declare the exchanges used by this API.
%% @end
%%------------------------------------------------------------------------------
-spec declare_exchanges() -> 'ok'.
declare_exchanges() ->
    kz_amqp_util:kapps_exchange(),
    kz_amqp_util:targeted_exchange().
