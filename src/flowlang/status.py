"""Exit statuses: the one list of them (LANGUAGE.md section 8, OPERATIONS.md section 9) and the one
mapping from what happened (a run's outcome, or an error that ended a command) to a status.

The CLI exits with these; `Result.exit_status` tells an embedding program what the CLI would exit with.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from flowlang.errors import Interrupted, LockedError, MissingSecretError, ScriptError, UsageError


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1  # the run failed: an error outside any loop (or a bug in flowlang)
    INVALID = 2  # invalid script or usage: nothing ran
    PARTIAL = 3  # finished, some records failed
    INTERRUPTED = 75  # stopped on request (SIGTERM, Ctrl-C), or another run holds the lock: EX_TEMPFAIL
    LOCKED = 75  # an alias of INTERRUPTED: try again later
    CTRL_C = 130  # Ctrl-C outside a run (128 + SIGINT)
    CLOSED_STDOUT = 141  # stdout went away (`| head`): 128 + SIGPIPE


class RunOutcome(Protocol):
    """A run's Result, as far as its exit status goes."""

    @property
    def status(self) -> str: ...


RUN_STATUSES = {"ok": ExitStatus.OK, "partial": ExitStatus.PARTIAL, "failed": ExitStatus.FAILED,
                "interrupted": ExitStatus.INTERRUPTED}
"""Result.status -> exit status: every value Result.status can take."""


def exit_status(outcome: RunOutcome | BaseException) -> ExitStatus:
    """The exit status of a finished run (its Result) or of an error that ended a command."""
    if not isinstance(outcome, BaseException):
        if isinstance(getattr(outcome, "error", None), MissingSecretError):
            return ExitStatus.INVALID  # a run-level missing secret: set it and run again
        return RUN_STATUSES.get(outcome.status, ExitStatus.FAILED)
    if isinstance(outcome, ScriptError | UsageError):
        return ExitStatus.INVALID
    if isinstance(outcome, LockedError | Interrupted):
        return ExitStatus.INTERRUPTED
    if isinstance(outcome, KeyboardInterrupt):
        return ExitStatus.CTRL_C
    if isinstance(outcome, BrokenPipeError):
        return ExitStatus.CLOSED_STDOUT
    return ExitStatus.FAILED  # any other FlowError: the run failed; anything else: a bug in flowlang


def resumed_failed_text(count: int, job: int | None) -> str:
    """What a resumed run says of the records the job it resumed kept as failed (still open)."""
    return (f"{count:,} record{'s' if count != 1 else ''} that job {job} kept as failed before its checkpoint "
            f"{'are' if count != 1 else 'is'} still open")
