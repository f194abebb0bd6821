"""The seam through which a run is recorded or replayed (TESTING.md section 2).

A run may carry a `Tape`: every connection a `use` opens passes through it (so it can be recorded,
or answered from a cassette without opening the real one), and the values that make a run
reproducible (now(), today(), uuid(), the job, the state, what the ledger holds for a
`send ... once` or `if changed`) are drawn through it. The run's tape is
also reachable from builtins through a context variable, set for the run's task and inherited by
the tasks and threads it starts. The implementations live in `flowlang.testing`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flowlang.connectors.base import Connection, ConnectorSpec


class Tape(Protocol):
    """What a recorder and a replayer both offer the runtime."""

    replaying: bool

    async def connection(self, name: str, spec: ConnectorSpec,
                         open_real: Callable[[], Awaitable[Connection]]) -> Connection:
        """The connection a `use` gets: the real one (recorded), or one answered from a cassette."""

    def wrap(self, connection: Connection) -> Connection:
        """A connection opened elsewhere (a host binding) as the tape sees it."""

    def value(self, kind: str, make: Callable[[], Any]) -> Any:
        """A value that differs between runs (now, today, uuid, job, state): recorded, or replayed."""

    def output(self, value: Any) -> None:
        """An emitted value."""

    def finish(self, status: str, failed: int) -> None:
        """The run ended with this status and this many failed records."""


CURRENT: ContextVar[Tape | None] = ContextVar("flowlang_tape", default=None)
# the record a value is drawn for in a loop that runs iterations at once (parallel N, or running ahead to
# fill batches): "3" for its fourth record, "3/0" in a loop of the same kind inside it. Its iterations
# draw now(), uuid() ... in another order in each run; a replay gives each record the values recorded
# for it, not those of whichever record drew first
DRAW_PLACE: ContextVar[str | None] = ContextVar("flowlang_draw_place", default=None)


# the places of the records of the batch being sent (DRAW_PLACE where each joined it; None outside such a
# loop), set in the batch's own task: a recording keeps each write's, so a replay pairs a record changed in
# a loop that reorders its writes with its own recorded write
BATCH_PLACES: ContextVar[list[str | None] | None] = ContextVar("flowlang_batch_places", default=None)


def set_draw_place(index: int) -> None:
    """In an iteration's own task: the values it draws are those of record `index` (0 for the first)."""
    outer = DRAW_PLACE.get()
    DRAW_PLACE.set(str(index) if outer is None else f"{outer}/{index}")


def drawn(kind: str, make: Callable[[], Any]) -> Any:
    """`make()`, through the current run's tape when there is one."""
    tape = CURRENT.get()
    return make() if tape is None else tape.value(kind, make)
