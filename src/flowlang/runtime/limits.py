"""Run limits: defaults, the stop flag, the value-size limit that builtins check before they build
a string or a list (the run sets VALUE_ITEMS), and the checks that make deadlines and stops real
inside CPU-bound work (loops, comprehensions, function calls call `check_time`; builtins that walk a
long list, `check_busy`).

A graceful stop (the first SIGTERM or Ctrl-C, or `max_seconds` reached) starts no new record and lets
those in flight finish. A hard stop (a second signal, or `max_seconds` passed by `grace_seconds`)
makes the next check raise `HardStop`, which no record isolation catches; runtime/watchdog.py ends
the process when even that does not come (code stuck in C)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from flowlang.errors import LimitError
from flowlang.lazy_dataclass import dataclass

T = TypeVar("T")


class StopFlag:
    """Set by a signal handler (or a deadline): loops start no new record, the run then ends. `hard`
    set: stop at once, at the next check."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""
        self.hard = ""
        self.failure = False  # the run cannot go on (its stdout cannot be written): it ends failed, not interrupted

    def request(self, reason: str, *, failure: bool = False) -> None:
        if not self.requested:
            self.requested = True
            self.reason = reason
            self.failure = failure

    def request_hard(self, reason: str) -> None:
        self.request(reason)
        if not self.hard:
            self.hard = reason


class HardStop(BaseException):
    """Raised by check_time on a hard stop: not an Exception, so no record's isolation keeps it; the
    runner records the job (interrupted, or failed for max_seconds)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# (monotonic deadline, its seconds) of the record the running task works on (max_record_seconds)
RECORD_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "record_deadline", default=None)
# the connections whose writes the record (under max_record_seconds) had in flight when it was stopped: a write
# that may do its work twice (a POST without an idempotency key, a batch the record is in) is noted while it is
# awaited and left noted when the record is stopped during it, so that its error says the write may have arrived
RECORD_WRITES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("record_writes", default=None)
# (the record's RECORD_WRITES, the connection) of an HTTP write that may do its work twice, while it is awaited:
# the transport notes it there once the request goes out (after its waits for a connection and the rate limit)
WRITE_NOTE: contextvars.ContextVar[tuple[list[str], str] | None] = contextvars.ContextVar("write_note", default=None)
CHECK_EVERY = 1024  # items of a long comprehension between two checks


async def noted_write(writes: list[str], name: str, pending: Awaitable[T]) -> T:
    """`pending`, awaited with `name` in the record's RECORD_WRITES; still there if the record is stopped during it."""
    writes.append(name)
    try:
        result = await pending
    except asyncio.CancelledError:
        raise  # stopped in flight: it stays noted
    except BaseException:
        writes.remove(name)
        raise
    writes.remove(name)
    return result


def check_time(stop: StopFlag) -> None:
    """Between items of loops and comprehensions and at each function call: a hard stop raises
    HardStop, a record past max_record_seconds fails that record (LimitError)."""
    if stop.hard:
        raise HardStop(stop.hard)
    deadline = RECORD_DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        raise LimitError(record_limit_message(deadline[1]))


def paced(items: Any, stop: StopFlag) -> Any:
    """A comprehension's items, with check_time every CHECK_EVERY items when there are that many, and
    once before a shorter list (a comprehension of comprehensions of short lists checks at each inner
    one, so no nesting of them runs past the limits)."""
    if type(items) in (list, tuple) and len(items) < CHECK_EVERY:
        check_time(stop)
        return items
    return _paced(items, stop)


def checked(items: list[Any], stop: StopFlag) -> list[Any]:
    """A short list a comprehension walks as it is, after one check_time (as paced does)."""
    check_time(stop)
    return items


def _paced(items: Iterable[Any], stop: StopFlag) -> Iterator[Any]:
    for i, item in enumerate(items):
        if not i % CHECK_EVERY:
            check_time(stop)
        yield item


# the running job's stop flag, for builtins that work long on one value (they have no frame to read
# it from): set by the runner for the job's tasks, like VALUE_ITEMS
RUN_STOP: ContextVar[StopFlag | None] = ContextVar("flowlang_run_stop", default=None)


def check_busy() -> None:
    """check_time inside a builtin's long work (a sort or unique() of millions of items): the job's
    hard stop, and the record's max_record_seconds; nothing outside a run."""
    stop = RUN_STOP.get()
    if stop is not None and stop.hard:
        raise HardStop(stop.hard)
    deadline = RECORD_DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        raise LimitError(record_limit_message(deadline[1]))


def within_record(seconds: float) -> float:
    """`seconds`, or less when the record's max_record_seconds runs out sooner (a regex's timeout);
    check_busy then says which limit it was."""
    deadline = RECORD_DEADLINE.get()
    if deadline is None:
        return seconds
    return max(0.001, min(seconds, deadline[0] - time.monotonic()))


def busy(items: list[Any]) -> Iterable[Any]:
    """A builtin's walk of a list, with check_busy every CHECK_EVERY items when there are that many."""
    if len(items) < CHECK_EVERY:
        return items
    return _busy(items)


def _busy(items: list[Any]) -> Iterator[Any]:
    for i, item in enumerate(items):
        if not i % CHECK_EVERY:
            check_busy()
        yield item


def record_limit_message(seconds: float, in_flight: list[str] | None = None) -> str:
    """A record past max_record_seconds; `in_flight`: the connections it was writing to when it was stopped."""
    said = f"the record took longer than {seconds:g}s (max_record_seconds)"
    if not in_flight:
        return said
    names = ", ".join(dict.fromkeys(in_flight))
    return (f"{said}, and was stopped while its send to {names} was in flight: the request may have reached "
            f"{names} (no answer said it did not), so a retry may send it twice: check there first, and resolve the "
            "error if it arrived (send ... once keeps such a send pending instead)")


@dataclass(frozen=True)
class Limits:
    """What one run may use. Every limit can be set from the CLI (--max-...) or when embedding."""

    max_call_depth: int = 100  # nested user-function calls
    max_value_items: int = 5_000_000  # items of one list, characters of one string
    max_seconds: float | None = None  # whole run; None means no deadline
    max_record_seconds: float | None = None  # one loop iteration; None means no deadline
    # after max_seconds (or a stop signal) records in flight have this long to finish; then they are
    # stopped at once (and from the CLI the process ends after as long again if code is stuck in C)
    grace_seconds: float = 2.0
    # one failed record in the error store: its record and the scope values it reads (the largest are
    # left out past it, with a note in the error; the record is kept whole); None means no cap
    max_error_bytes: int | None = 1_000_000


# the running job's max_value_items, for builtins (set by the runner for the job's tasks)
VALUE_ITEMS: ContextVar[int] = ContextVar("flowlang_max_value_items", default=Limits.max_value_items)


class ValueTooLarge(ValueError):
    """Text past max_value_items would be built (the caller adds the position); like a builtin's error,
    it has a message and a kind."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = "limit"
