"""The fast paths of builtins and of generated comprehensions (issue 15, mapping speed) give what the
general paths give: round()'s quantize of a small decimal against its exact general path, lower()
and upper() of text, and generated comprehensions (items' `is dict` test made once per item, a short
list walked without pacing, variables read once beside a comprehension) against closures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowlang
from flowlang.runtime.builtins import Builtin, default_registry
from flowlang.runtime.builtins.numbers import _round, round_
from flowlang.runtime.builtins.text import lower, upper
from test_engine_differential import outcome


def result_of(fn: Any, *args: Any) -> tuple[Any, ...]:
    """What a call gives, in a form where 1.0 and 1.00, 0 and -0, int and Decimal differ."""
    try:
        value = fn(*args)
    except Exception as e:  # the error is what is compared
        return ("error", type(e).__name__, str(e))
    return ("value", type(value).__name__, str(value))


DECIMALS = st.one_of(
    st.decimals(min_value=-10**6, max_value=10**6, places=4),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(lambda digits, exp, sign: Decimal((sign, digits, exp)),
              st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple), st.integers(-40, 40), st.integers(0, 1)),
)
PLACES = st.one_of(st.integers(-8, 14),
                   st.sampled_from([Decimal("2"), Decimal("2.0"), Decimal("2.5"), True, "2", None]))


@settings(max_examples=3000)
@given(DECIMALS, PLACES)
def test_round_fast_path_gives_the_general_paths_result_or_error(value: Decimal, places: Any) -> None:
    assert result_of(round_, value, places) == result_of(_round, value, places)


@given(st.one_of(st.integers(-10**40, 10**40), st.none(), st.text(max_size=5), st.booleans()), PLACES)
def test_round_of_other_values_is_the_general_path(value: Any, places: Any) -> None:
    assert result_of(round_, value, places) == result_of(_round, value, places)


@pytest.mark.parametrize(("value", "places", "shown"), [
    ("-0.001", 2, "0.00"), ("-0.004", 0, "0"), ("2.675", 2, "2.68"), ("-2.5", 0, "-3"), ("0.005", 2, "0.01"),
    ("1234.5", -2, "1200"), ("9" * 27 + ".5", 0, "1" + "0" * 27), ("9" * 30 + ".5", 2, "9" * 30 + ".50"),
])
def test_round_is_exact_half_away_from_zero_and_never_negative_zero(value: str, places: int, shown: str) -> None:
    assert str(round_(Decimal(value), places)) == shown


def test_round_of_a_huge_decimal_still_fails_with_its_limit() -> None:
    with pytest.raises(Exception, match="too large for round"):
        round_(Decimal("1E+999999999"))


@given(st.one_of(st.text(max_size=8), st.none(), st.integers(), st.lists(st.none(), max_size=1)))
def test_lower_and_upper_fast_paths_agree_with_str_methods_and_refuse_the_rest(value: Any) -> None:
    for fn, method in ((lower, str.lower), (upper, str.upper)):
        got = result_of(fn, value)
        if type(value) is str:
            assert got == ("value", "str", method(value))
        elif value is None:
            assert got == ("value", "NoneType", "None")
        else:
            assert got[0] == "error" and "needs a string" in got[2]


def test_a_bad_argument_of_round_in_a_mapping_names_its_line_and_column() -> None:
    flow = flowlang.compile('for each o in input\n  map o to out\n    t = round(o.x, 2)\n    n = 1\n  end\n'
                            '  emit out\nend\n', name="m.flow")
    result = flow.run(input=[{"x": Decimal("1.005")}, {"x": "1.5"}, {"x": None}])
    assert result.outputs == [{"t": Decimal("1.01"), "n": 1}, {"t": None, "n": 1}]
    (failed,) = result.errors
    assert "round() needs a number, got string that looks like a number" in failed.message
    assert failed.line == 3 and failed.location.endswith(":3:9"), failed.location


COMPREHENSIONS = [
    # items of every kind: a field of a non-dict item fails at its place, null items give null fields
    "let xs = [{q: 2, p: 1.5}, null, {q: 1}]\nemit [i.q * (i.p ?? 1) for i in xs]\n",
    "let xs = [{q: 2}, 3]\nemit [i.q for i in xs]\n",
    "let xs = [{q: 2}, {q: null}, {}]\nemit [i.q for i in xs if i.q != null]\n",
    # a variable read beside a comprehension (read once at the start) and inside it
    "let o = {items: [{q: 1}, {q: 2}], k: 10}\nemit {n: o.k, t: sum([i.q * o.k for i in o.items]), m: len(o.items)}\n",
    # nested comprehensions: the inner one reads the outer item's fields
    "let o = {rows: [{xs: [1, 2], m: 3}, {xs: [], m: 1}, {xs: null, m: 2}]}\n"
    "emit [[x * r.m for x in r.xs] for r in o.rows]\n",
    # a long list (paced), an object's keys, null, text (an error) as the iterable
    "emit len([i * 2 for i in range(0, 3000)])\n",
    "let o = {a: 1, b: 2}\nemit [k for k in o]\n",
    "let o = null\nemit {r: [k for k in o]}\n",
    'let o = "ab"\nemit [k for k in o]\n',
    # the comprehension's variable has the name of an outer one
    "let i = {q: 7}\nemit {a: i.q, b: [i.q for i in [{q: 1}]], c: i.q}\n",
]


@pytest.mark.parametrize("text", COMPREHENSIONS)
def test_generated_comprehensions_agree_with_closures(text: str) -> None:
    generated = outcome(text, codegen=True)
    assert generated == outcome(text, codegen=False)
    assert generated["outputs"] or generated["error"] or generated["failed"]


DIRECT = [b for b in default_registry().all().values() if b.direct is not None]
VALUES = st.one_of(st.text(max_size=6), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=3), st.none(), st.integers(),
                   st.binary(max_size=3), st.booleans())


def test_the_mapping_builtins_have_direct_calls() -> None:
    assert {b.name for b in DIRECT} >= {"len", "lower", "upper"}


@pytest.mark.parametrize("builtin", DIRECT, ids=lambda b: b.name)
@given(value=VALUES)
def test_a_direct_call_gives_what_the_builtin_gives_for_its_types(builtin: Builtin, value: Any) -> None:
    types, direct = builtin.direct  # type: ignore[misc]
    if type(value) in types:
        assert result_of(direct, value) == result_of(builtin.fn, value)


@pytest.mark.parametrize("text", [
    # the direct call's types and the rest (null, bytes, a secret, a number: the builtin's own answer)
    'let o = {s: "AbC", l: [1, 2], d: {a: 1}, n: null}\n'
    "emit {a: lower(o.s), b: upper(o.s), c: len(o.l), d: len(o.d), e: len(o.s), f: len(o.n), g: lower(o.n)}\n",
    'let o = {b: base64_decode("AAEC")}\nemit {n: len(o.b), m: len([x for x in [o.b]])}\n',
    'let o = {s: secret.KEY}\nemit {s: str(lower(o.s)), n: len(o.s ?? "")}\n',
    "let o = {n: 5}\nemit {a: len(o.n) + 1}\n",
    "let o = {n: 5}\nemit {a: lower(o.n), b: 1}\n",
    # an index: an object's key inline, the rest (lists, null, a bad key) as before
    'let m = {p: "paid"}\nlet o = {s: "p", t: "x", l: [1, 2], n: null}\n'
    'emit {a: m[o.s] ?? "?", b: m[o.t] ?? "?", c: o.l[1], d: o.l[-3], e: o.n[0], f: m[o.n], g: len(o.l)}\n',
    "let m = {p: 1}\nlet o = {i: 2}\nemit {a: m[o.i], b: len(o)}\n",
])
def test_direct_calls_in_generated_code_agree_with_closures(text: str) -> None:
    generated = outcome(text, codegen=True)
    assert generated == outcome(text, codegen=False)
    assert generated["outputs"] or generated["error"] or generated["failed"]
