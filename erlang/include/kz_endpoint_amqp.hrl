%%%-----------------------------------------------------------------------------
%%% @doc kz_endpoint_amqp's settings and logging (kz-endpoint).
%%% @end
%%%-----------------------------------------------------------------------------
-ifndef(KZ_ENDPOINT_AMQP_HRL).

-define(KZE_APP_NAME, <<"kazoo_endpoint">>).
-define(KZE_APP_VERSION, <<"5.0.0-kz_endpoint_amqp">>).
-define(KZE_CONFIG_CAT, <<"kazoo_endpoint">>).

-define(KZE_DEFAULT_MODE, <<"off">>).
-define(KZE_DEFAULT_TIMEOUT_MS, 1500).
-define(KZE_DEFAULT_COMPARE_MODULE, 'kz_endpoint_v4').

%% Leg fields whose differences docs/compatibility.md lists (the worker's
%% registration-aware failover, always-true Is-Failover, no endpoint recording).
-define(KZE_DEFAULT_SHADOW_IGNORE, [<<"Failover">>
                                   ,<<"Custom-Channel-Vars.Is-Failover">>
                                   ,<<"Endpoint-Actions">>
                                   ]).

%% Kazoo compiles with lager's parse transform; these are the calls kz_log.hrl
%% makes outside TEST.
-define(KZE_DEBUG(F, A), lager:debug(F, A)).
-define(KZE_INFO(F, A), lager:info(F, A)).
-define(KZE_NOTICE(F, A), lager:notice(F, A)).
-define(KZE_WARNING(F, A), lager:warning(F, A)).
-define(KZE_ERROR(F, A), lager:error(F, A)).

-define(KZ_ENDPOINT_AMQP_HRL, 'true').
-endif.
