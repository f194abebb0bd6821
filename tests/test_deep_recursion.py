"""A user function that recurses without end under a raised max_call_depth runs out of Python's stack
before the limit: that was "internal error (RecursionError ...); this is a bug in flowlang", or, when
the call sat in `==`, a builtin's argument or a string, "the value nests too deeply". Now it is a
limit error at the call, like max_call_depth's: it fails the record (a `try` does not catch limit
errors), the store keeps it, and no traceback is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowlang
from conftest import cli

DEEP = flowlang.Limits(max_call_depth=1_000_000)


@pytest.mark.parametrize("body", [
    "f(n + 1)", "f(n + 1) == 1", "[f(n + 1)] == [1]", "f(n + 1) in [1]", "str(f(n + 1))",
    "max(f(n + 1), 2)", "round(f(n + 1), 2)", '"x{f(n + 1)}"', "{a: f(n + 1)}",
])
def test_a_recursion_past_pythons_stack_is_a_limit_error_at_the_call(body: str) -> None:
    result = flowlang.compile(f"function f(n)\n  return {body}\nend\nemit f(0)\n").run(limits=DEEP)
    assert result.status == "failed" and result.error is not None
    message = result.error.message
    assert "f() calls itself too deeply" in message and "max_call_depth (1000000)" in message, message
    assert "internal" not in message and "nests too deeply" not in message
    assert result.error.kind == "limit" and result.error.line == 2


def test_in_a_loop_the_record_fails_is_kept_and_the_cli_shows_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text(
        "function walk(n)\n  let m = n + 1\n  if m > 0\n    return walk(m)\n  end\n  return 0\nend\n"
        "for each o in [{id: 1}, {id: 2}]\n  try\n    emit walk(o.id)\n"
        "  on error as e\n    emit e.message\n  end\nend\n"
        'emit "after"\n')
    ran = cli("run", "f.flow", "--max-call-depth", "1000000", cwd=tmp_path)
    assert ran.status == 3, ran.stderr
    assert ran.stdout == '"after"\n'  # the try did not catch it (a limit error), the run went on
    assert "f.flow:4:12" in ran.stderr and "walk() calls itself too deeply" in ran.stderr
    assert "Traceback" not in ran.stderr and "internal" not in ran.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    errors = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["record"] for e in errors] == [{"id": 1}, {"id": 2}]
    assert all(e["kind"] == "limit" and "calls itself too deeply" in e["message"] for e in errors)


def test_the_default_depth_still_stops_first_and_a_finite_recursion_still_runs() -> None:
    flow = flowlang.compile("function down(n)\n  return if n == 0 then 0 else down(n - 1)\nend\n"
                            "emit down(90)\nemit down(100000)\n")
    result = flow.run()
    assert result.outputs == [0] and result.error is not None
    assert "more than 100 deep (max_call_depth)" in result.error.message
