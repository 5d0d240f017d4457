%%% Test stand-in for Kazoo's kz_attributes (kazoo_endpoint): owned_by/3 from a
%%% list the test sets. Never shipped.
-module(kz_attributes).
-export([owned_by/3, set_owned/2]).

set_owned(OwnerId, Ids) -> application:set_env('kz_attributes_standin', OwnerId, Ids).

owned_by(OwnerId, <<"device">>, _Call) ->
    application:get_env('kz_attributes_standin', OwnerId, []).
