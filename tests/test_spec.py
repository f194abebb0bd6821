"""Runs every case of the tests/spec corpus (see spec_cases.py for the format)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import flowlang
from flowlang.runtime.jsoncodec import dumps, loads
from spec_cases import SpecCase, all_cases, same

CASES = all_cases()


def test_corpus_is_large() -> None:
    assert len(CASES) >= 150


def plain(value: Any) -> Any:
    """Outputs as the CLI would print them (datetimes as text, secrets as ***)."""
    return loads(dumps(value))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spec(case: SpecCase, caplog: pytest.LogCaptureFixture) -> None:
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
