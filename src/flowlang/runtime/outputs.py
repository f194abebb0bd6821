"""The values a run collects for `result.outputs`, kept without copying (issue 15: copying every
output cost more than the mapping that built it).

One rule keeps them safe: a flow changes a value in place only by a path assignment
(`let o.a = 1`, `let state.x = 1`) or by assigning `state`, and each of those calls
`before_change()` first, which copies the outputs emitted since the last change. So a change the flow
makes after an `emit` never reaches an output already given out, and a flow that never changes a
value in place (a mapping) copies nothing."""

from __future__ import annotations

from typing import Any

from flowlang.runtime.values import to_python


class Outputs:
    __slots__ = ("_copied", "values")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._copied = 0  # values[:_copied] are copies, or plain values no change can reach

    def add(self, value: Any) -> None:
        self.values.append(value)

    def before_change(self) -> None:
        """The flow is about to change a list or object in place: copy what it could reach."""
        values = self.values
        for i in range(self._copied, len(values)):
            v = values[i]
            if type(v) is dict or type(v) is list:
                values[i] = to_python(v)
        self._copied = len(values)
