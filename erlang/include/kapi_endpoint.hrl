%%%-----------------------------------------------------------------------------
%%% @doc The `endpoint' API's headers, values and types (kz-endpoint).
%%% Shared by the master and the 4.3 variants of `kapi_endpoint'.
%%% @end
%%%-----------------------------------------------------------------------------
-ifndef(KAPI_ENDPOINT_HRL).

-ifndef(DEFAULT_CONTENT_TYPE).
-define(DEFAULT_CONTENT_TYPE, <<"application/json">>).
-endif.

-define(ENDPOINT_CATEGORY, <<"endpoint">>).
-define(BUILD_REQ_EVENT, <<"build_req">>).
-define(BUILD_RESP_EVENT, <<"build_resp">>).
-define(BUILD_ERROR_EVENT, <<"build_error">>).
-define(BUILD_REQ_ROUTING_PREFIX, "endpoint.build.").

%% Kazoo's build errors (kz_endpoint's build_errors() and what v5's get/2
%% returns) plus `invalid_request'.
-define(BUILD_ERROR_CODES, [<<"endpoint_id_undefined">>
                           ,<<"invalid_endpoint_id">>
                           ,<<"not_found">>
                           ,<<"endpoint_deleted">>
                           ,<<"endpoint_disabled">>
                           ,<<"not_device_nor_user">>
                           ,<<"endpoint_called_self">>
                           ,<<"owner_called_self">>
                           ,<<"do_not_disturb">>
                           ,<<"exclude_from_queues">>
                           ,<<"no_resource_type">>
                           ,<<"no_endpoints">>
                           ,<<"db_not_reachable">>
                           ,<<"exception">>
                           ,<<"internal">>
                           ,<<"invalid_request">>
                           ]).

%% Build request
-define(BUILD_REQ_HEADERS, [<<"Account-ID">>
                           ,<<"Call-ID">>
                           ,[<<"Endpoint-ID">>, <<"Endpoint">>]
                           ]).
-define(OPTIONAL_BUILD_REQ_HEADERS, [<<"Properties">>
                                    ,<<"Call">>
                                    ,<<"Target-Type">>
                                    ,<<"Resource-Type">>
                                    ,<<"Authorizing-ID">>
                                    ,<<"Owner-ID">>
                                    ,<<"Caller-ID-Name">>
                                    ,<<"Caller-ID-Number">>
                                    ,<<"Inception">>
                                    ,<<"Custom-Channel-Vars">>
                                    ,<<"Explain">>
                                    ,<<"Timestamp">>
                                    ]).
-define(BUILD_REQ_VALUES, [{<<"Event-Category">>, ?ENDPOINT_CATEGORY}
                          ,{<<"Event-Name">>, ?BUILD_REQ_EVENT}
                          ,{<<"Target-Type">>, [<<"device">>, <<"user">>]}
                          ,{<<"Resource-Type">>, [<<"audio">>, <<"video">>, <<"sms">>]}
                          ]).
-define(BUILD_REQ_TYPES, [{<<"Account-ID">>, fun erlang:is_binary/1}
                         ,{<<"Call-ID">>, fun erlang:is_binary/1}
                         ,{<<"Endpoint-ID">>, fun erlang:is_binary/1}
                         ,{<<"Endpoint">>, fun kz_json:is_json_object/1}
                         ,{<<"Properties">>, fun kz_json:is_json_object/1}
                         ,{<<"Call">>, fun kz_json:is_json_object/1}
                         ,{<<"Custom-Channel-Vars">>, fun kz_json:is_json_object/1}
                         ,{<<"Timestamp">>, fun erlang:is_integer/1}
                         ]).

%% Build response
-define(BUILD_RESP_HEADERS, [<<"Endpoints">>]).
-define(OPTIONAL_BUILD_RESP_HEADERS, [<<"Endpoint-ID">>
                                     ,<<"Account-ID">>
                                     ,<<"Call-ID">>
                                     ,<<"Explain">>
                                     ]).
-define(BUILD_RESP_VALUES, [{<<"Event-Category">>, ?ENDPOINT_CATEGORY}
                           ,{<<"Event-Name">>, ?BUILD_RESP_EVENT}
                           ]).
-define(BUILD_RESP_TYPES, [{<<"Endpoints">>, fun(Es) -> is_list(Es)
                                                        andalso Es =/= []
                                                        andalso kz_json:are_json_objects(Es)
                                             end}
                          ]).

%% Build error
-define(BUILD_ERROR_HEADERS, [<<"Error-Code">>]).
-define(OPTIONAL_BUILD_ERROR_HEADERS, [<<"Error-Message">>
                                      ,<<"Endpoint-ID">>
                                      ,<<"Account-ID">>
                                      ,<<"Call-ID">>
                                      ,<<"Explain">>
                                      ]).
-define(BUILD_ERROR_VALUES, [{<<"Event-Category">>, ?ENDPOINT_CATEGORY}
                            ,{<<"Event-Name">>, ?BUILD_ERROR_EVENT}
                            ,{<<"Error-Code">>, ?BUILD_ERROR_CODES}
                            ]).
-define(BUILD_ERROR_TYPES, [{<<"Error-Message">>, fun erlang:is_binary/1}]).

-define(KAPI_ENDPOINT_HRL, 'true').
-endif.
