%%% Test stand-in for Kazoo's kapps_call (kazoo_call): a call held as the JSON
%%% object that Kazoo's to_json/1 produces. from_json/1 keeps what it is given
%%% and to_json/1 returns it, so the suite sends exactly the keys it builds (the
%%% ones real to_json/1 emits, see kz_endpoint_amqp_e2e_tests:call_json/2).
%%% Never shipped.
-module(kapps_call).
-export([from_json/1, to_json/1, account_id/1, call_id/1, call_id_direct/1
        ,resource_type/1, custom_channel_var/2, insert_custom_channel_var/3
        ]).

from_json(JObj) -> {'kapps_call_standin', JObj}.
to_json({'kapps_call_standin', JObj}) -> JObj.

account_id(Call) -> kz_json:get_ne_binary_value(<<"Account-ID">>, to_json(Call)).
call_id(Call) -> call_id_direct(Call).
call_id_direct(Call) -> kz_json:get_ne_binary_value(<<"Call-ID">>, to_json(Call)).
resource_type(Call) -> kz_json:get_ne_binary_value(<<"Resource-Type">>, to_json(Call)).

custom_channel_var(Key, Call) ->
    kz_json:get_value([<<"Custom-Channel-Vars">>, Key], to_json(Call)).

insert_custom_channel_var(Key, Value, {'kapps_call_standin', JObj}) ->
    {'kapps_call_standin', kz_json:set_value([<<"Custom-Channel-Vars">>, Key], Value, JObj)}.
