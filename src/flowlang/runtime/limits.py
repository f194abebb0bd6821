"""Run limits: defaults, the errors that name them, and the value-size limit that builtins check
before they build a string or a list (the run sets VALUE_ITEMS)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


class StopFlag:
    """Set by a signal handler (or a deadline): loops start no new record, the run then ends."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""

    def request(self, reason: str) -> None:
        if not self.requested:
            self.requested = True
            self.reason = reason


@dataclass(frozen=True)
class Limits:
    """What one run may use. Every limit can be set from the CLI (--max-...) or when embedding."""

    max_call_depth: int = 100  # nested user-function calls
    max_value_items: int = 5_000_000  # items of one list, characters of one string
    max_seconds: float | None = None  # whole run; None means no deadline
    max_record_seconds: float | None = None  # one loop iteration; None means no deadline
    # one failed record in the error store: its record and the scope values it reads (the largest are
    # left out past it, with a note in the error; the record is kept whole); None means no cap
    max_error_bytes: int | None = 1_000_000


# the running job's max_value_items, for builtins (set by the runner for the job's tasks)
VALUE_ITEMS: ContextVar[int] = ContextVar("flowlang_max_value_items", default=Limits.max_value_items)

