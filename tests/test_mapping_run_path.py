"""The run path of a mapping (issue 15: benchmarks/transform.py): a `map` then `emit` of its variable is
one step, the collected outputs are appended without a call of the run's emit, round() of a constant
number of places is compiled for it, and what each gives is what the general paths give."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowlang
from flowlang.runtime.builtins.numbers import round_, round_to, sum_
from flowlang.runtime.builtins.time import date_
from test_builtin_fast_paths import DECIMALS, result_of

MAPPING = """
let statuses = {p: "paid", s: "shipped"}
for each o in input
  map o to out
    id     = o.id
    email  = lower(o.customer.email)
    total  = round(sum([i.qty * i.price for i in o.items]), 2)
    n      = len(o.items)
    status = statuses[o.status] ?? "unknown"
    day    = date(o.created_at)
  end
  emit out
end
"""


def records(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "customer": {"email": f"A{i}@X.COM"}, "status": "ps?"[i % 3],
             "items": [{"qty": 2, "price": Decimal("1.25")}, {"qty": 1, "price": Decimal("0.10")}],
             "created_at": "2024-05-01T10:00:00Z"} for i in range(n)]


def python_calls(fn: Any) -> int:
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_a_mapping_record_costs_few_python_calls() -> None:
    """Each record of the mapping ran 15 Python functions (the map's step, its store, the block between
    the map and the emit, the emit, its variable's read, the run's emit, the counter's lookup, round's
    and date's checks...); now 7: the loop, map+emit, the generated mapping, sum, round's compiled form,
    date, the output's counter."""
    flow = flowlang.compile(MAPPING, name="m.flow")
    small, big = records(100), records(300)
    assert flow.run(input=small).ok
    per_record = (python_calls(lambda: flow.run(input=big)) - python_calls(lambda: flow.run(input=small))) / 200
    assert per_record <= 8, per_record
    result = flow.run(input=records(3))
    assert result.outputs[0] == {"id": 0, "email": "a0@x.com", "total": Decimal("2.60"), "n": 2,
                                 "status": "paid", "day": date(2024, 5, 1)}
    assert [o["status"] for o in result.outputs] == ["paid", "shipped", "unknown"]
    assert result.stats.emitted == 3


def test_on_output_failing_at_a_map_and_its_emit_fails_the_record_at_the_emit() -> None:
    flow = flowlang.compile("for each o in input\n  map o to out\n    v = o.v\n  end\n  emit out\nend\n",
                            name="m.flow")
    seen: list[Any] = []

    def callback(value: Any) -> None:
        if value["v"] == 2:
            raise RuntimeError("full")
        seen.append(value)
    result = flow.run(input=[{"v": 1}, {"v": 2}, {"v": 3}], on_output=callback)
    assert seen == [{"v": 1}, {"v": 3}]
    [failure] = result.errors
    assert failure.message == "on_output raised RuntimeError: full"
    assert failure.line == 5 and failure.location.endswith(":5:3"), failure.location
    assert result.stats.emitted == 2


@pytest.mark.parametrize(("body", "outputs"), [
    # a variable holding a list of objects emits each; another value is one output
    ("let xs = [{a: o}, {a: o + 1}]\n  emit xs", [{"a": 1}, {"a": 2}, {"a": 2}, {"a": 3}]),
    ("let xs = []\n  emit xs", [[], []]),
    ("let x = o * 10\n  emit x", [10, 20]),
    # the map's variable changed between the map and the emit: what the emit sees is emitted
    ("let r = {v: o}\n  map r to out\n    v = r.v\n  end\n  let out.w = 1\n  emit out",
     [{"v": 1, "w": 1}, {"v": 2, "w": 1}]),
])
def test_emit_of_a_variable_emits_what_it_holds(body: str, outputs: list[Any]) -> None:
    flow = flowlang.compile(f"for each o in input\n  {body}\nend\n", name="m.flow")
    for collect in (True, False):
        streamed: list[Any] = []
        result = flow.run(input=[1, 2], collect=collect, on_output=None if collect else streamed.append)
        assert result.ok, result.error
        assert (result.outputs if collect else streamed) == outputs


@given(DECIMALS | st.integers(-10**40, 10**40) | st.none() | st.text(max_size=3) | st.booleans(),
       st.integers(-8, 14) | st.sampled_from([Decimal("2"), True, "2", None]))
def test_round_of_constant_places_gives_what_round_gives(value: Any, places: Any) -> None:
    form = round_to(places)
    if form is None:
        assert not (type(places) is int and 1 <= places <= 12)
        return
    assert result_of(form, value) == result_of(round_, value, places)


def test_round_of_constant_places_in_a_flow_fails_at_its_place() -> None:
    flow = flowlang.compile("for each o in input\n  emit {t: round(o.x, 2), u: 1}\nend\n", name="m.flow")
    result = flow.run(input=[{"x": Decimal("-0.001")}, {"x": "a"}, {"x": 7}])
    assert [str(o["t"]) for o in result.outputs] == ["0.00", "7"]
    [failure] = result.errors
    assert "round() needs a number" in failure.message and failure.location.endswith(":2:12")


@given(st.lists(st.one_of(st.integers(-10**30, 10**30), DECIMALS.filter(lambda d: d.is_finite()), st.none()),
                max_size=5))
def test_sum_gives_the_exact_total_and_keeps_whole_numbers_whole(items: list[Any]) -> None:
    numbers = [x for x in items if x is not None]
    got = result_of(sum_, items)
    if got[0] == "error":
        assert "too large" in got[2] or "digits" in got[2], got
        return
    exact = sum((Decimal(x) for x in numbers), Decimal(0)) if numbers else 0
    if all(type(x) is int for x in numbers):
        assert got == ("value", "int", str(sum(numbers)))
    else:
        from decimal import localcontext
        with localcontext() as ctx:
            ctx.prec = 10**6
            exact = sum((Decimal(x) for x in numbers), Decimal(0))
        assert got[1] == "Decimal" and Decimal(got[2]) == exact


@pytest.mark.parametrize(("value", "want"), [
    ("2024-05-01T10:00:00Z", date(2024, 5, 1)), ("2024-05-01T23:30:00-02:00", date(2024, 5, 1)),
    ("2024-05-01", date(2024, 5, 1)), ("", None), (" " * 20, None), ("\t", None), (None, None),
    (date(2024, 1, 2), date(2024, 1, 2)), ("2024-05-01T10:00:00z", date(2024, 5, 1)),
])
def test_date_of_text_blank_null_and_dates(value: Any, want: Any) -> None:
    assert date_(value) == want


GENERATED = [
    # a field read in several places (`o.c`, `o.items`: read once at the start) of objects, null, text and
    # objects without it: each value, each error at its place, each miss counted at its read
    "for each o in [{c: {e: \"A\", v: true}, items: [{q: 1, p: 1.5}]}, {c: null, items: null}, {items: [1]},\n"
    "    null, \"text\", {c: \"x\", items: \"ab\"}, {c: {e: null}, items: []}]\n"
    "  map o to out\n    e = lower(o.c.e)\n    v = o.c.v == true\n    n = len(o.items)\n"
    "    t = sum([i.q * i.p for i in o.items])\n    m = len(o.items) > 0\n    x = o.c\n  end\n  emit out\nend\n",
    # a misspelt field read twice: the typo warning of each read
    "for each o in [{items: [1], id: 1}, {items: [2, 3], id: 2}]\n"
    "  emit {a: len(o.itmes ?? []), b: o.itmes, c: o.id, d: o.id + 1}\nend\n",
    "for each o in [{a: {b: 1}}, {a: {b: 2}}]\n  emit {x: o.a.b, y: o.a.c, z: o.a}\nend\n",
    # a whole number written on the right of arithmetic and comparisons, of every kind of value
    "for each o in [1, 2.5, true, \"a\", null, 99999999999999999999999999999, 1e30, [1]]\n"
    "  emit {a: o * 3, b: o + 1, c: o - 2, d: o > 3, e: o <= 1, f: 2 * 1}\nend\n",
    "let big = 10\nfor each o in [1, 2]\n  emit {a: o * big, b: o * 0, c: 9999999999999999999999999999 * 9 + o}\nend\n",
    # comprehensions walked by functions of their own: fields named as generated names are, nested ones
    # reading the outer item and a variable beside them, conditions, null and text as the list
    "let o = {_h1: 2, xs: [{_v2: 3}, {_v2: 4}], _c3: [1]}\n"
    "emit {a: [x._v2 * o._h1 for x in o.xs], b: o._h1, c: [y for y in o._c3], d: len(o._c3)}\n",
    "let o = {rows: [{xs: [1, 2, null], m: 3}, {xs: [], m: 1}, {xs: null, m: 2}], k: 2}\n"
    "emit [[x * r.m * o.k for x in r.xs if x != null and x * o.k > 2] for r in o.rows if len(r.xs ?? []) >= 0]\n",
    "for each o in [{xs: [1, 2]}, {xs: \"ab\"}, {xs: null}, {xs: [{a: 1}, 3]}]\n"
    "  emit {n: [x.a ?? x for x in o.xs], m: sum([1 for x in o.xs]), k: len(o.xs ?? [])}\nend\n",
    # sum() of a comprehension, added up as the items come: whole numbers stay whole, decimals exact past 28
    # digits, nulls left out, a text or a boolean its error, a total past the digits allowed its error
    "for each o in [[1, 2], [1.5, 2], [], null, [null, 1], [\"a\"], [true], [0.1, 0.2],\n"
    "    [1234567890123456789012345678.9, 0.01], [99999999999999999999999999999999, 1]]\n"
    "  emit {t: sum([x for x in o]), u: sum([x * 2 for x in o if x != null]), v: 1}\nend\n",
    "for each o in [{l: [{q: 1, p: 2.5}, {q: 2, p: null}]}, {l: [{q: 1, p: \"x\"}]}]\n"
    "  emit {t: round(sum([i.q * (i.p ?? 0) for i in o.l]), 2), n: sum([sum([1 for y in o.l]) for x in o.l])}\n"
    "end\n",
    "let n = " + "9" * 4300 + "\nemit {a: len(str(sum([n for x in [1]]))), b: sum([n for x in [1, 2]])}\n",
    # a map of a variable that is not an object, and of an expression
    "for each o in [1, null, \"x\", {a: 2}]\n  map o to out\n    a = 1\n    b = o\n  end\n  emit out\nend\n",
    "for each o in [{a: 1}, 2]\n  map o.a to out\n    a = o.a\n    b = 2\n  end\n  emit out\nend\n",
]


@pytest.mark.parametrize("text", GENERATED)
def test_generated_mappings_agree_with_closures(text: str) -> None:
    from test_engine_differential import outcome
    generated = outcome(text, codegen=True)
    assert generated == outcome(text, codegen=False)
    assert generated["outputs"] or generated["error"] or generated["failed"]


def test_a_misspelt_field_read_in_several_fields_warns_at_each() -> None:
    from test_engine_differential import outcome
    got = outcome("for each o in [{items: [1], id: 1}, {items: [], id: 2}]\n  map o to out\n"
                  "    a = len(o.itmes ?? [])\n    b = o.itmes\n    c = o.id\n  end\n  emit out\nend\n", codegen=True)
    assert len(got["outputs"]) == 2
    warned = [m for m in got["logs"] if "'itmes' was missing in all 2 records" in m]
    assert len(warned) == 2 and all("did you mean 'items'?" in m for m in warned), got["logs"]
