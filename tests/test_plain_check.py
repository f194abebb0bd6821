"""The input check's walk (is_plain): the C speed-up (flowlang._plain, built at install where a C
compiler is) and the same walk in Python give the same answer for every value, and from_python, which
uses it, refuses and converts as before whichever walk runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.runtime import values
from flowlang.runtime.values import _BIG_BITS, _PLAIN, Secret, from_python, is_plain_in_python

try:
    from flowlang import _plain
except ImportError:  # not built here: the Python walk is what runs (checked below)
    _plain = None  # type: ignore[assignment]


def c_walk(value: Any) -> bool:
    assert _plain is not None
    return _plain.is_plain(value, _PLAIN, Decimal, _BIG_BITS)


def test_the_c_walk_is_built_in_ci_and_used_where_built() -> None:
    if os.environ.get("CI") == "true":
        assert _plain is not None, "flowlang._plain was not built: pip install -e . shows why (a C compiler?)"
    if _plain is None:
        assert values.is_plain is is_plain_in_python
    else:
        assert values.is_plain is not is_plain_in_python
        assert values.is_plain([{"a": 1.5}]) is False and values.is_plain([{"a": Decimal("1.5")}]) is True


class Text(str):
    pass


BIG = [10**4299, -(10**4299), 10**4300, 2**_BIG_BITS, 2**_BIG_BITS - 1, -(2**_BIG_BITS)]


def big(index: int) -> int:  # by index: hypothesis shows a strategy's values, and these have no repr
    return BIG[index]


scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.integers(), st.integers(min_value=2**60, max_value=2**70),
    st.sampled_from(range(len(BIG))).map(big),
    st.decimals(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True), st.dates(),
    st.timedeltas(), st.binary(max_size=3), st.just(datetime(2024, 1, 1, tzinfo=UTC)), st.just(Secret("s")),
    st.just((1, 2)), st.just(Text("t")),
)
keys = st.one_of(st.text(max_size=3), st.integers(0, 3), st.just(Text("k")), st.none())
nested = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@pytest.mark.skipif(_plain is None, reason="flowlang._plain is not built here (the test above checks which walk runs)")
@settings(max_examples=600, deadline=None)
@given(st.one_of(st.lists(nested, max_size=4), st.dictionaries(keys, nested, max_size=4)))
def test_the_two_walks_agree(value: Any) -> None:
    assert c_walk(value) is is_plain_in_python(value)


@pytest.mark.skipif(_plain is None, reason="flowlang._plain is not built here (the test above checks which walk runs)")
def test_the_c_walk_on_the_edges() -> None:
    plain = [{"id": 1, "n": Decimal("1.50"), "when": date(2024, 1, 2), "gap": timedelta(1), "b": b"x",
              "ok": True, "none": None, "s": Secret("k"), "deep": {"a": [[{"b": [2**63 - 1, -(2**63)]}]]}}]
    assert c_walk(plain) is True
    for bad in ([1.5], [{"a": Decimal("NaN")}], [{"a": [Decimal("-Infinity")]}], [{1: "a"}], [{Text("a"): 1}],
                [{"a": Text("b")}], [(1,)], [{"a": {"b": {"c": datetime(2024, 1, 1)}}}], [10**4300],
                [{"a": 2**_BIG_BITS}]):
        assert c_walk(bad) is False, bad
        assert is_plain_in_python(bad) is False, bad
    assert c_walk([10**4299, 2**64, -(2**100)]) is True  # big, but below the bound: used as they are
    assert c_walk("text") is False and c_walk(5) is False  # only a dict or a list is walked
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert c_walk(cyclic) is False  # ends (budget of containers), and from_python refuses it
    deep: list[Any] = []
    for _ in range(200_000):  # nested far past C recursion: the walk keeps its own stack
        deep = [deep]
    assert c_walk(deep) is True
    with pytest.raises(TypeError):
        _plain.is_plain(plain, {str}, Decimal, _BIG_BITS)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "message"), [
    ([{"a": Decimal("NaN")}], "no NaN or Infinity"),
    ([{"a": [float("inf")]}], "no NaN or Infinity"),
    ([{"a": 10**4300}], "more than 4,300 digits"),
    ([{1: "a", "1": "b"}], "both '1' as text"),
])
def test_from_python_refuses_what_the_walk_sends_it(given: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_python(given)


def test_from_python_converts_what_the_walk_sends_it() -> None:
    records = [{"price": 1.5, "tags": ("a", "b"), 7: Text("x"), "at": datetime(2024, 1, 1)}, {"ok": Decimal("2")}]
    assert from_python(records) == [{"price": Decimal("1.5"), "tags": ["a", "b"], "7": "x",
                                     "at": datetime(2024, 1, 1, tzinfo=UTC)}, {"ok": Decimal("2")}]
    plain = [{"a": [1, {"b": Decimal("2.5")}]}]
    assert from_python(plain) is plain  # used as it is, not copied


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """code in a Python of its own (a crash there fails the test instead of ending the test run)."""
    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(_plain is None, reason="flowlang._plain is not built here (the test above checks which walk runs)")
def test_the_c_walk_runs_no_python_code_of_a_metaclass() -> None:
    # a class whose metaclass has its own __eq__ (here one that empties the list being walked): the
    # frozenset lookup of the class ran it in the middle of the walk, which then read the emptied list
    # (a segmentation fault); such a value is now sent to from_python, as any value not plain is
    code = """if True:
        from flowlang import _plain
        from decimal import Decimal
        from flowlang.runtime.values import _PLAIN, _BIG_BITS, from_python
        walked = []
        class Meta(type):
            def __hash__(cls):
                return hash(str)
            def __eq__(cls, other):
                walked.clear()
                return True
        class Odd(metaclass=Meta):
            pass
        walked.extend([Odd()] + [[{"x": 1}] for _ in range(100_000)])
        print(_plain.is_plain(walked, _PLAIN, Decimal, _BIG_BITS))
        class Plain(type):
            pass
        class Fine(metaclass=Plain):  # a metaclass of type's own __hash__ and __eq__: asked as before
            pass
        print(_plain.is_plain([Fine(), {"a": 1}], _PLAIN, Decimal, _BIG_BITS))
        """
    proc = run_python(code)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("walk", ["flowlang._plain", "is_plain_in_python"])
def test_a_wide_cycle_ends_the_walk_in_bounded_memory(walk: str) -> None:
    # a list holding itself 100 times: the walk's budget counted containers taken off its stack, each of
    # which put 100 back, so the stack grew past the memory (MemoryError under 1 GB; tens of GB unbounded)
    # before the budget ended it; it now counts the containers put on the stack
    if walk == "flowlang._plain" and _plain is None:
        pytest.skip("flowlang._plain is not built here")
    code = f"""if True:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1_000_000_000, resource.getrlimit(resource.RLIMIT_AS)[1]))
        from decimal import Decimal
        from flowlang.runtime import values
        wide = []
        wide.extend([wide] * 100)
        if {walk!r} == "flowlang._plain":
            from flowlang import _plain
            print(_plain.is_plain(wide, values._PLAIN, Decimal, values._BIG_BITS))
        else:
            print(values.is_plain_in_python(wide))
        try:
            values.from_python(wide)
        except ValueError as error:
            print(error)
        """
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["False", "the value nests too deeply"]
