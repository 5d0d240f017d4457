%%% Test stand-in for Kazoo's kz_amqp_util (kazoo_amqp): exchange declarations
%%% as Kazoo makes them (durable=false, auto_delete=false, no arguments),
%%% publishes with content type application/json and `mandatory' when asked,
%%% routing-key escaping, binds. Publishes go through the calling process's
%%% channel (a kz_amqp_worker stand-in sets it), as Kazoo's channel
%%% assignments do. Never shipped.
-module(kz_amqp_util).
-export([kapps_publish/4, targeted_publish/3, bind_q_to_kapps/2, unbind_q_from_kapps/2
        ,kapps_exchange/0, targeted_exchange/0, encode/1
        ,set_channel/1, channel/0
        ]).

-include_lib("amqp_client/include/amqp_client.hrl").

set_channel(Channel) -> put('$kz_amqp_channel', Channel).

channel() ->
    case get('$kz_amqp_channel') of
        'undefined' -> persistent_term:get({?MODULE, 'channel'});
        Channel -> Channel
    end.

kapps_publish(Routing, Payload, ContentType, Options) ->
    basic_publish(<<"kapps">>, Routing, Payload, ContentType, Options).

targeted_publish(Queue, Payload, ContentType) ->
    basic_publish(<<"targeted">>, Queue, Payload, ContentType, []).

basic_publish(Exchange, Routing, Payload, ContentType, Options) ->
    Publish = #'basic.publish'{exchange = Exchange
                              ,routing_key = Routing
                              ,mandatory = proplists:get_value('mandatory', Options, 'false')
                              },
    Msg = #amqp_msg{props = #'P_basic'{content_type = ContentType
                                      ,timestamp = os:system_time('microsecond')
                                      }
                   ,payload = iolist_to_binary(Payload)
                   },
    'ok' = amqp_channel:call(channel(), Publish, Msg).

kapps_exchange() -> declare_exchange(<<"kapps">>, <<"topic">>).
targeted_exchange() -> declare_exchange(<<"targeted">>, <<"direct">>).

declare_exchange(Name, Type) ->
    #'exchange.declare_ok'{} =
        amqp_channel:call(channel(), #'exchange.declare'{exchange = Name, type = Type
                                                        ,durable = 'false', auto_delete = 'false'
                                                        }),
    'ok'.

bind_q_to_kapps(Queue, Routing) ->
    #'queue.bind_ok'{} =
        amqp_channel:call(channel(), #'queue.bind'{queue = Queue, exchange = <<"kapps">>, routing_key = Routing}),
    'ok'.

unbind_q_from_kapps(Queue, Routing) ->
    #'queue.unbind_ok'{} =
        amqp_channel:call(channel(), #'queue.unbind'{queue = Queue, exchange = <<"kapps">>, routing_key = Routing}),
    'ok'.

encode(<<"*">>) -> <<"*">>;
encode(<<"#">>) -> <<"#">>;
encode(Bin) -> << <<(encode_char(C))/binary>> || <<C>> <= Bin >>.

encode_char($.) -> <<"%2E">>;
encode_char($\s) -> <<"+">>;
encode_char(C) when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9;
                    C =:= $-; C =:= $~; C =:= $_ -> <<C>>;
encode_char(C) -> iolist_to_binary(io_lib:format("%~2.16.0B", [C])).
