"""Runs every case of the tests/spec corpus (see spec_cases.py for the format), with generated code and
with closures only. FLOWLANG_SPEC=loops.flow (or `loops`, or several, comma-separated) runs only those
files; a failing case shows its parsed tree (ast.dump) below the assertion."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import flowlang
from flowlang import ast
from flowlang.errors import FlowSyntaxError
from flowlang.runtime.jsoncodec import dumps, loads
from flowlang.source import Source
from flowlang.syntax import parse
from spec_cases import SpecCase, all_cases, focused, same

FOCUS = os.environ.get("FLOWLANG_SPEC", "")
CASES = focused(all_cases(), FOCUS)


def test_corpus_is_large() -> None:
    if FOCUS:
        pytest.skip(f"FLOWLANG_SPEC={FOCUS} runs {len(CASES)} case(s) of the corpus")
    assert len(CASES) >= 150


def parsed_tree(case: SpecCase) -> str:
    source = Source("case.flow", case.text)
    try:
        return ast.dump(parse(source), source)
    except FlowSyntaxError as e:
        return e.render()


@contextmanager
def tree_on_failure(case: SpecCase) -> Iterator[None]:
    """A failing case shows what the parser made of it."""
    try:
        yield
    except AssertionError as e:
        raise AssertionError(f"{e}\n\nparsed tree of {case.id}:\n{parsed_tree(case)}") from None


def plain(value: Any) -> Any:
    """Outputs as the CLI would print them (datetimes as text, secrets as ***)."""
    return loads(dumps(value))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spec(case: SpecCase, caplog: pytest.LogCaptureFixture) -> None:
    with tree_on_failure(case):
        run_case(case, caplog)


def run_case(case: SpecCase, caplog: pytest.LogCaptureFixture) -> None:
    try:
        flow = flowlang.compile(case.text, name="case.flow", bindings=())
    except flowlang.ScriptError as e:
        got = [(d.line, d.column, d.message + (f" ({d.hint})" if d.hint else "")) for d in e.diagnostics]
        assert case.check_errors, f"unexpected script error:\n{e.render()}"
        for line, col, text in case.check_errors:
            assert any(g[0] == line and g[1] == col and text in g[2] for g in got), \
                f"expected {line}:{col} {text!r}, got:\n{e.render()}"
        return
    assert not case.check_errors, "expected a check error, but the flow compiled"
    with caplog.at_level(logging.DEBUG, logger="flowlang"):
        result = flow.run(params=case.params, input=case.input)
    if case.run_error is not None:
        line, col, text = case.run_error
        err = result.error
        assert err is not None, f"expected a run error {text!r}; outputs {result.outputs}"
        assert isinstance(err, flowlang.FlowRuntimeError)
        assert (err.line, err.source.line_col(err.span.start)[1] if err.source and err.span else None) == \
            (line, col), err.render()
        assert text in err.message, err.render()
    else:
        assert result.error is None, result.error.render()
    outputs = [plain(o) for o in result.outputs]
    assert same(case.outputs, outputs), f"expected {case.outputs}\n     got {outputs}"
    assert len(result.errors) == case.failed, [e.message for e in result.errors]
    for text in case.logs:
        assert any(text in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("case", [c for c in CASES if not c.check_errors], ids=[c.id for c in CASES
                                                                                 if not c.check_errors])
def test_spec_with_closures_only(case: SpecCase, caplog: pytest.LogCaptureFixture,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The same cases without generated code: both evaluators must agree."""
    from flowlang.compile.expressions import ExpressionCompiler

    monkeypatch.setattr(ExpressionCompiler, "codegen", False)
    test_spec(case, caplog)
