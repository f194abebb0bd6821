"""Odd arguments given to the embedding API, and values at the edges of their ranges: each is a
UsageError (or a failed record) saying what is wrong, never a Python exception from inside the run
nor 'internal error ... a bug in flowlang' (found by a new-user trial of the API)."""

from __future__ import annotations

import functools
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import flowlang

SRC = str(Path(flowlang.__file__).resolve().parents[1])

EARLY = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # 0000-12-31T23:00Z: before year 1 in UTC
LATE = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))  # 10000-01-01T04:00Z


@pytest.mark.parametrize("moment", [EARLY, LATE])
def test_a_datetime_past_the_years_1_to_9999_in_utc_is_refused_as_a_param(moment: datetime) -> None:
    flow = flowlang.compile("param p\nemit p < now()")
    with pytest.raises(flowlang.UsageError, match=r"out of the range of dates \(years 1 to 9999 in UTC\)"):
        flow.run(params={"p": moment})
    with pytest.raises(flowlang.UsageError, match="out of the range of dates"):
        flowlang.compile("emit input").run(input={"at": moment})


def test_a_binding_that_returns_such_a_datetime_fails_its_call_not_the_interpreter() -> None:
    class Source:
        def at(self) -> datetime:
            return EARLY

    result = flowlang.compile("call src.at() as t\nemit t - now()").run(bindings={"src": Source()})
    assert result.status == "failed"
    assert result.error is not None
    assert "src.at() returned a value flowlang cannot use" in result.error.message
    assert "internal error" not in result.error.message


def test_datetimes_at_the_edges_that_are_in_range_still_pass() -> None:
    edge = datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))  # 0001-01-01T00:00Z exactly
    result = flowlang.compile("param p\nemit p").run(params={"p": edge})
    assert result.outputs == [edge]


def test_negating_a_duration_past_the_smallest_is_out_of_range() -> None:
    result = flowlang.compile("emit -(days(999999999) + hours(1))").run()
    assert result.error is not None
    assert result.error.message == "the result is out of range: a duration is at most 999,999,999 days"
    assert flowlang.compile("param p\nemit -p").run(params={"p": timedelta.max}).error is not None
    assert flowlang.compile("emit -days(2)").run().outputs == [timedelta(days=-2)]


@pytest.mark.parametrize(("call", "message"), [
    (lambda f: f.run(params={1: 2}), "params= takes names as text for its keys, got 1"),
    (lambda f: f.run(params={"p": 1}, bindings=[1]), "bindings= takes a mapping of names to objects"),
    (lambda f: f.run(params={"p": 1}, bindings={2: object()}), "bindings= takes names as text for its keys, got 2"),
    (lambda f: f.run(params={"p": 1}, dry_run="no"), "dry_run= takes True or False, not 'no'"),
    (lambda f: f.run(params={"p": 1}, state_dir=5), r"state_dir= takes a folder's path \(str or Path\), not int"),
    (lambda f: f.run(params={"p": 1}, env={"A": 1}), "env: the value of 'A' must be a string, got int"),
    (lambda f: f.run(params={"p": 1}, on_output=5), "on_output= takes a function"),
    (lambda f: f.run(params={"p": 1}, collect="no"), "collect= takes True or False"),
])
def test_odd_run_arguments_are_usage_errors(call: Any, message: str) -> None:
    flow = flowlang.compile("param p\nemit p")
    with pytest.raises(flowlang.UsageError, match=message):
        call(flow)


def test_odd_compile_arguments_are_usage_errors() -> None:
    with pytest.raises(flowlang.UsageError, match="compile\\(\\) takes name= as text"):
        flowlang.compile("emit 1", name=5)  # type: ignore[arg-type]
    with pytest.raises(flowlang.UsageError, match="compile\\(\\) takes base_dir= as a folder's path"):
        flowlang.compile("emit 1", base_dir=3)  # type: ignore[arg-type]


def test_a_dry_run_given_as_true_still_sends_nothing() -> None:
    sent: list[Any] = []

    class Sink:
        def write(self, record: Any) -> None:
            sent.append(record)

    result = flowlang.compile("send {a: 1} to out").run(bindings={"out": Sink()}, dry_run=True)
    assert result.ok and sent == []


def deep(levels: int) -> Any:
    return functools.reduce(lambda inner, _: [inner], range(levels), [])


def test_a_param_nested_hundreds_of_levels_runs_and_is_kept_cut() -> None:
    result = flowlang.compile("param p\nemit len(p)").run(params={"p": deep(5000)})
    assert result.ok, result.error
    assert result.outputs == [1]


def test_a_deep_param_from_the_command_line_runs(tmp_path: Path) -> None:
    (tmp_path / "e.flow").write_text("param p\nemit len(p)\n")
    text = "[" * 600 + "]" * 600
    done = subprocess.run([sys.executable, "-m", "flowlang", "run", "e.flow", "--param", f"p={text}"],
                          cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": SRC}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\n"
    assert "internal error" not in done.stderr


def test_a_state_that_cannot_be_kept_fails_the_run_saying_so(tmp_path: Path) -> None:
    flow = flowlang.compile("param p\nlet state.tree = p\nemit 1")
    result = flow.run(params={"p": deep(2000)}, state_dir=tmp_path)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.message.startswith("the state cannot be kept: a value in it nests")
    assert result.stats.emitted == 1  # the run's counts are kept with its job
    store = flow.store(tmp_path)
    try:
        assert store.load_state(flow.key) == {}
        job = store.jobs(flow.key)[0]
        assert job["status"] == "failed" and job["stats"]["emitted"] == 1
    finally:
        store.close()
    assert flow.run(params={"p": deep(3)}, state_dir=tmp_path).ok  # a state that can be kept is kept


@pytest.mark.parametrize("error_id", ["12", -1, 0, True, 1.5, ["a"], 10**30])
def test_retry_takes_error_ids_only(error_id: Any, tmp_path: Path) -> None:
    # "12" replayed nothing and said ok, 1.5 raised TypeError, True was error 1, 10**30 an internal error
    flow = flowlang.compile('for each x in [1, 2]\n  fail "no"\nend\n')
    assert flow.run(state_dir=tmp_path).status == "partial"
    with pytest.raises(flowlang.UsageError, match="error_id= takes"):
        flow.retry(error_id, state_dir=tmp_path)


def test_retry_of_an_id_that_is_no_error_says_so(tmp_path: Path) -> None:
    flow = flowlang.compile('for each x in [1, 2]\n  fail "no"\nend\n')
    assert flow.run(state_dir=tmp_path).status == "partial"
    with pytest.raises(flowlang.UsageError, match="no open error 999 of <flow>"):
        flow.retry(999, state_dir=tmp_path)  # before: status ok, nothing replayed
    assert flow.retry([1], state_dir=tmp_path).status == "partial"  # it fails again, and stays open
