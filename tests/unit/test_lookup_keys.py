"""A lookup's cache key (compile/io.cache_key) never gives one key to two sets of arguments whose
stored JSON differs (a lookup is never answered with another's value): 1, 1.0, "1" and true are four
keys; objects with the same pairs in another order are two; equal arguments always give one key. (A
whole number and a decimal of the same value, 1 and 1.0, are two keys even where their JSON is one: a
second request, never a wrong answer.)"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowlang.compile.io import cache_key
from flowlang.runtime.jsoncodec import dumps_stored

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "1", "a", "true", "x,y"]),
                    st.sampled_from([Decimal("1"), Decimal("1.0"), Decimal("-0.5")]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "id", "1"]), inner, max_size=3)),
    max_leaves=8)


@given(VALUES, VALUES)
def test_two_values_share_a_key_only_when_their_stored_json_is_the_same(a: Any, b: Any) -> None:
    if cache_key(a) == cache_key(b):
        assert dumps_stored(a) == dumps_stored(b)
    hash(cache_key(a))


@given(VALUES.filter(lambda v: "Decimal" not in repr(v)), VALUES.filter(lambda v: "Decimal" not in repr(v)))
def test_without_decimals_the_same_stored_json_is_the_same_key(a: Any, b: Any) -> None:
    assert (cache_key(a) == cache_key(b)) is (dumps_stored(a) == dumps_stored(b))


@given(VALUES)
def test_a_value_always_gives_the_same_key(a: Any) -> None:
    assert cache_key(a) == cache_key(a)


def test_objects_keep_their_order_and_their_nesting() -> None:
    assert cache_key({"a": 1, "b": 2}) != cache_key({"b": 2, "a": 1})
    assert cache_key({"a": {"b": 1}}) != cache_key({"a": "b", "1": None})
    assert cache_key([{"a": 1}]) != cache_key([["a", 1]])
    assert cache_key({"a": [1]}) != cache_key({"a": 1})
