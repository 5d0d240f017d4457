%%% Test stand-in for Kazoo's kz_binary (kazoo_stdlib): rand_hex/1, N random
%%% bytes as 2N lowercase hex digits. Never shipped.
-module(kz_binary).
-export([rand_hex/1]).

rand_hex(N) ->
    << <<(hex(H)), (hex(L))>> || <<H:4, L:4>> <= crypto:strong_rand_bytes(N) >>.

hex(D) when D < 10 -> $0 + D;
hex(D) -> $a + D - 10.
