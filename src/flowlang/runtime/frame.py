"""Frames and control signals: what compiled closures read and raise while a flow runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowlang.runtime.run import RunContext


class Frame:
    """The variables of one module run or one function call, plus where `emit` goes."""

    __slots__ = ("out", "parent", "run", "run_ahead", "slots")

    def __init__(
        self, slots: list[Any], parent: Frame | None, run: RunContext, out: Callable[[Any], None],
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
