%%%-----------------------------------------------------------------------------
%%% @doc Endpoint build requests, responses and errors (kz-endpoint), for
%%% Kazoo 4.3.
%%%
%%% The same API as `erlang/src/kapi_endpoint.erl' (the master variant), in
%%% 4.3's style: 4.3's `kapi_definition' only has getters, so the headers,
%%% values and types are macros (`kapi_endpoint.hrl') handed to `kz_api'.
%%% @end
%%%-----------------------------------------------------------------------------
-module(kapi_endpoint).

-export([build_req/1, build_req_v/1]).
-export([build_resp/1, build_resp_v/1]).
-export([build_error/1, build_error_v/1]).
-export([error_codes/0, routing_key/1]).

-export([bind_q/2, unbind_q/2]).
-export([declare_exchanges/0]).

-export([publish_build_req/1, publish_build_req/2]).
-export([publish_build_resp/2, publish_build_resp/3]).
-export([publish_build_error/2, publish_build_error/3]).

-include("kapi_endpoint.hrl").

%%------------------------------------------------------------------------------
%% @doc Build request.
%% @end
%%------------------------------------------------------------------------------
-spec build_req(kz_term:api_terms()) -> {'ok', iolist()} | {'error', string()}.
build_req(Prop) when is_list(Prop) ->
    case build_req_v(Prop) of
        'true' -> kz_api:build_message(Prop, ?BUILD_REQ_HEADERS, ?OPTIONAL_BUILD_REQ_HEADERS);
        'false' -> {'error', "Proplist failed validation for endpoint build_req"}
    end;
build_req(JObj) -> build_req(kz_json:to_proplist(JObj)).

-spec build_req_v(kz_term:api_terms()) -> boolean().
build_req_v(Prop) when is_list(Prop) ->
    kz_api:validate(Prop, ?BUILD_REQ_HEADERS, ?BUILD_REQ_VALUES, ?BUILD_REQ_TYPES);
build_req_v(JObj) -> build_req_v(kz_json:to_proplist(JObj)).

%%------------------------------------------------------------------------------
%% @doc Build response.
%% @end
%%------------------------------------------------------------------------------
-spec build_resp(kz_term:api_terms()) -> {'ok', iolist()} | {'error', string()}.
build_resp(Prop) when is_list(Prop) ->
    case build_resp_v(Prop) of
        'true' -> kz_api:build_message(Prop, ?BUILD_RESP_HEADERS, ?OPTIONAL_BUILD_RESP_HEADERS);
        'false' -> {'error', "Proplist failed validation for endpoint build_resp"}
    end;
build_resp(JObj) -> build_resp(kz_json:to_proplist(JObj)).

-spec build_resp_v(kz_term:api_terms()) -> boolean().
build_resp_v(Prop) when is_list(Prop) ->
    kz_api:validate(Prop, ?BUILD_RESP_HEADERS, ?BUILD_RESP_VALUES, ?BUILD_RESP_TYPES);
build_resp_v(JObj) -> build_resp_v(kz_json:to_proplist(JObj)).

%%------------------------------------------------------------------------------
%% @doc Build error.
%% @end
%%------------------------------------------------------------------------------
-spec build_error(kz_term:api_terms()) -> {'ok', iolist()} | {'error', string()}.
build_error(Prop) when is_list(Prop) ->
    case build_error_v(Prop) of
        'true' -> kz_api:build_message(Prop, ?BUILD_ERROR_HEADERS, ?OPTIONAL_BUILD_ERROR_HEADERS);
        'false' -> {'error', "Proplist failed validation for endpoint build_error"}
    end;
build_error(JObj) -> build_error(kz_json:to_proplist(JObj)).

-spec build_error_v(kz_term:api_terms()) -> boolean().
build_error_v(Prop) when is_list(Prop) ->
    kz_api:validate(Prop, ?BUILD_ERROR_HEADERS, ?BUILD_ERROR_VALUES, ?BUILD_ERROR_TYPES);
build_error_v(JObj) -> build_error_v(kz_json:to_proplist(JObj)).

-spec error_codes() -> kz_term:ne_binaries().
error_codes() -> ?BUILD_ERROR_CODES.

-spec routing_key(kz_term:api_terms() | kz_term:ne_binary()) -> kz_term:ne_binary().
routing_key(AccountId) when is_binary(AccountId) ->
    <<?BUILD_REQ_ROUTING_PREFIX, (kz_amqp_util:encode(AccountId))/binary>>;
routing_key(Props) when is_list(Props) ->
    routing_key(props:get_value(<<"Account-ID">>, Props, <<"*">>));
routing_key(JObj) ->
    routing_key(kz_json:get_ne_binary_value(<<"Account-ID">>, JObj, <<"*">>)).

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

-spec publish_build_req(kz_term:api_terms()) -> 'ok'.
publish_build_req(JObj) ->
    publish_build_req(JObj, ?DEFAULT_CONTENT_TYPE).

-spec publish_build_req(kz_term:api_terms(), kz_term:ne_binary()) -> 'ok'.
publish_build_req(Req, ContentType) ->
    {'ok', Payload} = kz_api:prepare_api_payload(Req, ?BUILD_REQ_VALUES, fun build_req/1),
    kz_amqp_util:kapps_publish(routing_key(Req), Payload, ContentType, [{'mandatory', 'true'}]).

-spec publish_build_resp(kz_term:ne_binary(), kz_term:api_terms()) -> 'ok'.
publish_build_resp(Queue, JObj) ->
    publish_build_resp(Queue, JObj, ?DEFAULT_CONTENT_TYPE).

-spec publish_build_resp(kz_term:ne_binary(), kz_term:api_terms(), kz_term:ne_binary()) -> 'ok'.
publish_build_resp(Queue, Resp, ContentType) ->
    {'ok', Payload} = kz_api:prepare_api_payload(Resp, ?BUILD_RESP_VALUES, fun build_resp/1),
    kz_amqp_util:targeted_publish(Queue, Payload, ContentType).

-spec publish_build_error(kz_term:ne_binary(), kz_term:api_terms()) -> 'ok'.
publish_build_error(Queue, JObj) ->
    publish_build_error(Queue, JObj, ?DEFAULT_CONTENT_TYPE).

-spec publish_build_error(kz_term:ne_binary(), kz_term:api_terms(), kz_term:ne_binary()) -> 'ok'.
publish_build_error(Queue, Error, ContentType) ->
    {'ok', Payload} = kz_api:prepare_api_payload(Error, ?BUILD_ERROR_VALUES, fun build_error/1),
    kz_amqp_util:targeted_publish(Queue, Payload, ContentType).
