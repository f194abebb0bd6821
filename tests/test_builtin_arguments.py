"""A null or a wrong value given to a builtin is a located error, never taken for an argument not
given: range(1, null) was range(1), [0]. At run level the run fails at the call; in a loop, with the
value from the data, the record fails at its line and is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

import flowlang


def run_text(text: str, tmp_path: Path) -> flowlang.Result:
    (tmp_path / "f.flow").write_text(text)
    return flowlang.load(tmp_path / "f.flow").run(state_dir=tmp_path / "state")


@pytest.mark.parametrize(("expr", "message"), [
    ("range(1, null)", "range()'s stop must be a whole number, got null"),
    ("range(1, stop: null)", "range()'s stop must be a whole number, got null"),
    ("range(null)", "range()'s n must be a whole number, got null"),
    ("range(null, 3)", "range()'s start must be a whole number, got null"),
    ("range(1, 5, null)", "range()'s step must be a whole number, got null"),
    ("range(1, 5, step: null)", "range()'s step must be a whole number, got null"),
])
def test_a_null_in_range_is_an_error_not_a_missing_argument(expr: str, message: str, tmp_path: Path) -> None:
    result = run_text(f"emit {expr}\n", tmp_path)
    assert result.status == "failed" and result.error is not None
    assert message in result.error.message and (result.error.location or "").endswith("f.flow:1:6")
    # in a loop (the compiled fast path), the null from the data: that record fails and is kept
    result = run_text(f"for each o in [{{n: null}}, {{n: 3}}]\n  emit {expr.replace('null', 'o.n')}\nend\n",
                      tmp_path)
    assert result.status == "partial" and len(result.errors) == 1
    [failure] = result.errors
    assert message in failure.message and failure.record == {"n": None}
    assert (failure.location or "").endswith("f.flow:2:8")


def test_a_range_step_of_zero_is_a_located_error(tmp_path: Path) -> None:
    result = run_text("emit range(1, 5, 0)\n", tmp_path)
    assert result.status == "failed" and result.error is not None
    assert "range() step cannot be 0" in result.error.message and result.error.line == 1


def test_range_without_a_stop_still_counts_from_zero(tmp_path: Path) -> None:
    result = run_text("emit [range(3), range(1, 4), range(10, 0, -5), range(0), range(2, step: 2)]\n", tmp_path)
    assert result.ok, result.error
    assert result.outputs == [[[0, 1, 2], [1, 2, 3], [10, 5], [], [0]]]
