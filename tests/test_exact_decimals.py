"""+ - * and sum() of decimals are exact, however many digits (Python's default context rounds them to
28 significant digits): checked against fractions for decimals of up to 60 digits, either side of the
point, and for whole numbers mixed in."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import flowlang

Number = Decimal | int
FLOW = flowlang.compile("for each p in input\n  emit [p.a + p.b, p.a - p.b, p.a * p.b, sum([p.a, p.b, p.a])]\nend\n",
                        name="exact.flow")


@st.composite
def long_decimals(draw: st.DrawFn) -> Number:
    digits = draw(st.integers(min_value=1, max_value=60))
    coefficient = draw(st.integers(min_value=-(10 ** digits - 1), max_value=10 ** digits - 1))
    if draw(st.booleans()) and digits < 30:
        return coefficient  # a whole number among them
    return Decimal(coefficient).scaleb(-draw(st.integers(min_value=0, max_value=digits + 10)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(long_decimals(), long_decimals()), min_size=1, max_size=20))
def test_sums_differences_and_products_of_long_decimals_are_exact(pairs: list[tuple[Number, Number]]) -> None:
    with tempfile.TemporaryDirectory() as state:
        result = FLOW.run(input=[{"a": a, "b": b} for a, b in pairs], state_dir=Path(state))
    assert result.ok, result.errors
    for (a, b), got in zip(pairs, result.outputs, strict=True):
        x, y = Fraction(a), Fraction(b)
        assert [Fraction(v) for v in got] == [x + y, x - y, x * y, x + y + x], (a, b, got)
