%%% Test stand-in for Kazoo's kz_term (kazoo_stdlib). Never shipped.
-module(kz_term).
-export([to_binary/1, is_boolean/1, is_empty/1, is_ne_binary/1]).

to_binary(B) when is_binary(B) -> B;
to_binary(A) when is_atom(A) -> atom_to_binary(A, 'utf8');
to_binary(I) when is_integer(I) -> integer_to_binary(I);
to_binary(L) when is_list(L) -> iolist_to_binary(L).

is_boolean('true') -> 'true';
is_boolean('false') -> 'true';
is_boolean(<<"true">>) -> 'true';
is_boolean(<<"false">>) -> 'true';
is_boolean(_) -> 'false'.

is_empty('undefined') -> 'true';
is_empty(<<>>) -> 'true';
is_empty([]) -> 'true';
is_empty({[]}) -> 'true';
is_empty(_) -> 'false'.

is_ne_binary(<<_, _/binary>>) -> 'true';
is_ne_binary(_) -> 'false'.
