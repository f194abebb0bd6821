"""Frames and control signals: what compiled closures read and raise while a flow runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowlang.runtime.run import RunContext

# where an `emit` goes: the value and the line of its emit statement. The run's frames count it there,
# as it goes out (counted()); an iteration that runs ahead holds its outputs with their lines, and one
# dropped with its failed record is never counted
Out = Callable[[Any, int], None]


def counted(run: RunContext, sink: Callable[[Any], None]) -> Out:
    """The out of a run's own frames: each value to sink, then counted as emitted at its line."""
    at = run.stats.at
    per_line = run.stats.per_line

    def out(value: Any, line: int) -> None:
        sink(value)
        try:  # the line's counters, made by the first emit there
            per_line[line].emitted += 1
        except KeyError:
            at(line, "emit").emitted += 1
    return out


class Frame:
    """The variables of one module run or one function call, plus where `emit` goes."""

    __slots__ = ("out", "parent", "run", "run_ahead", "slots")

    def __init__(
        self, slots: list[Any], parent: Frame | None, run: RunContext, out: Out,
        run_ahead: Any = None,
    ) -> None:
        self.slots = slots
        self.parent = parent
        self.run = run
        self.out = out
        self.run_ahead = run_ahead  # a compile.batching.RunAhead: an iteration of a loop that runs ahead

    def ensure(self, size: int) -> None:
        """Grow to `size` slots (the REPL adds variables as it goes)."""
        if len(self.slots) < size:
            self.slots.extend([None] * (size - len(self.slots)))


class SkipSignal(Exception):
    """`skip`: go on with the next iteration."""


class StopSignal(Exception):
    """`stop`: leave the loop."""


class ReturnSignal(Exception):
    """`return value` out of a function body."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value
