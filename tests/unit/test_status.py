"""flowlang.status: every exit status and the one mapping to it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from flowlang.diagnostics import Diagnostic
from flowlang.errors import (
    CheckError,
    FlowError,
    FlowRuntimeError,
    FlowSyntaxError,
    InternalError,
    Interrupted,
    LimitError,
    LockedError,
    StoreError,
    UsageError,
)
from flowlang.source import Source, Span
from flowlang.status import RUN_STATUSES, ExitStatus, exit_status


def test_the_numbers_are_the_documented_ones() -> None:
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 3, 75, 130, 141]
    assert ExitStatus.LOCKED is ExitStatus.INTERRUPTED


@dataclass
class Outcome:
    status: str


@pytest.mark.parametrize(("status", "code"), [("ok", 0), ("partial", 3), ("failed", 1), ("interrupted", 75)])
def test_a_run_outcome(status: str, code: int) -> None:
    assert exit_status(Outcome(status)) == code


def test_every_run_status_has_its_exit_status() -> None:
    assert set(RUN_STATUSES) == {"ok", "partial", "failed", "interrupted"}


def diagnostic() -> Diagnostic:
    return Diagnostic("name", "unknown name 'x'", Source("f.flow", "emit x\n"), Span(5, 6))


@pytest.mark.parametrize(("error", "code"), [
    (CheckError([diagnostic()]), 2),
    (FlowSyntaxError([diagnostic()]), 2),
    (UsageError("missing param since"), 2),
    (LockedError("another run of f is in progress"), 75),
    (Interrupted(), 75),
    (FlowRuntimeError("boom"), 1),
    (LimitError("too deep"), 1),
    (StoreError("cannot use the state folder"), 1),
    (InternalError("a bug"), 1),
    (FlowError("plain"), 1),
    (KeyboardInterrupt(), 130),
    (BrokenPipeError(), 141),
    (ValueError("a bug in flowlang"), 1),
])
def test_an_error(error: BaseException, code: int) -> None:
    assert exit_status(error) == code
