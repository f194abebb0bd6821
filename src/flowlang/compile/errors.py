"""Turning operator and builtin errors into positioned FlowRuntimeErrors."""

from __future__ import annotations

from flowlang.errors import FlowRuntimeError
from flowlang.source import Source, Span


class Where:
    """A position in a flow, carried by each closure that can fail."""

    __slots__ = ("source", "span")

    def __init__(self, source: Source, span: Span) -> None:
        self.source = source
        self.span = span

    def error(self, message: str, kind: str = "type") -> FlowRuntimeError:
        return FlowRuntimeError(message, kind, source=self.source, span=self.span)

    def locate(self, err: FlowRuntimeError) -> FlowRuntimeError:
        return err.located(self.source, self.span)
