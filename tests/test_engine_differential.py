"""The two engines agree: every generated program (the generator of test_generated_programs.py, without
connections) gives the same outputs, failed records and logs, or the same error at the same line and
column, with generated code (compile/codegen.py) and with closures only.

FLOWLANG_DIFF_EXAMPLES raises the number of programs (CI runs a few hundred; try 3000)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import flowlang
from flowlang.compile.expressions import ExpressionCompiler
from flowlang.runtime.jsoncodec import dumps
from test_generated_programs import atoms, compound, statements

EXAMPLES = int(os.environ.get("FLOWLANG_DIFF_EXAMPLES", "200"))

# every name the generator uses, holding values of many kinds (each engine has fast paths per type)
PRELUDE = (
    'let a = 1\nlet b = "b"\nlet order = {b: 2, end: [1, 2], value: 1.5, to: null, in: {if: true}}\n'
    'let x1 = [0, 1, "x", [2], {b: 3}]\nlet _y = null\nlet items = [{b: 1, value: ""}, {b: "s", error: {}}]\n'
    "let k = 0\nlet v = 0.0\nlet e = false\n"
    # a user function: generated code embeds its call as a closure, whose errors carry their own position
    "function f(x)\n  return x.b + 1\nend\nfunction g(x)\n  fail \"g of {x}\"\nend\n"
)


def with_calls(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(compound(inner), st.tuples(st.sampled_from("fg"), inner).map(lambda t: f"{t[0]}({t[1]})"))


EXPRESSIONS = st.recursive(atoms, with_calls, max_leaves=12)


def guarded(block: list[str], guard: bool) -> list[str]:
    """Most generated statements fail on some value; inside `try` the run goes on to the next one, and
    the error's message and line are emitted, so both engines are compared on every statement."""
    if not guard:
        return block
    return ["try", *("  " + line for line in block), "on error as problem", "  emit [problem.message, problem.line]",
            "end"]


BLOCKS = st.tuples(statements(2, io=False, expressions=EXPRESSIONS), st.booleans())
PROGRAMS = st.lists(BLOCKS, min_size=1, max_size=8).map(
    lambda blocks: PRELUDE + "\n".join(line for block, guard in blocks for line in guarded(block, guard)) + "\n")


@contextmanager
def generated_code(enabled: bool) -> Iterator[None]:
    saved = ExpressionCompiler.codegen
    ExpressionCompiler.codegen = enabled
    try:
        yield
    finally:
        ExpressionCompiler.codegen = saved


class Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("flowlang.flow") or record.levelno >= logging.INFO:
            self.messages.append(f"{record.levelname} {record.getMessage()}")


def position(error: Exception) -> tuple[int, int] | None:
    source, span = getattr(error, "source", None), getattr(error, "span", None)
    return source.line_col(span.start) if source is not None and span is not None else None


def outcome(text: str, codegen: bool) -> dict[str, Any]:
    """Everything a run shows, in a comparable form (durations left out)."""
    with generated_code(codegen):
        flow = flowlang.compile(text, name="generated.flow", bindings=())
        logger = logging.getLogger("flowlang")
        handler = Logs()
        logger.addHandler(handler)
        saved_level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            result = flow.run()
        finally:
            logger.removeHandler(handler)
            logger.setLevel(saved_level)
    error = result.error
    return {
        "outputs": [dumps(o) for o in result.outputs],
        "error": None if error is None else (type(error).__name__, str(error), position(error)),
        "failed": [(f.message, f.line, f.location) for f in result.errors],
        "logs": [m for m in handler.messages if "run finished" not in m],
    }


def check_same(text: str) -> None:
    try:
        flowlang.compile(text, name="generated.flow", bindings=())
    except flowlang.ScriptError:
        assume(False)  # refused before running: the engines never see it
    closures = outcome(text, codegen=False)
    generated = outcome(text, codegen=True)
    assert generated == closures, text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(PROGRAMS)
@example(PRELUDE + 'let d = seconds(0)\nemit [if d then "yes" else "no", not d, d and true, [x for x in x1 if d]]\n')
@example(PRELUDE + "emit (order.zz.q in (1 + b))\nemit (len(a) in [1 / 0, 2])\n")
def test_generated_code_and_closures_agree(program: str) -> None:
    check_same(program)


@pytest.mark.parametrize("text", [
    'let d = seconds(0)\nemit if d then "yes" else "no"\n',
    "function bad(x)\n  fail x\nend\nemit bad(\"left\") in [bad(\"right\"), 1]\n",
    "emit [x for x in [0, 1, {}, [], '', 'a'] if x]\n",
])
def test_known_divergences_stay_fixed(text: str) -> None:
    assert outcome(text, codegen=True) == outcome(text, codegen=False)
