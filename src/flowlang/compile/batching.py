"""`send ... batch N`: records collected per send statement and sent N at a time; each record's
outcome is mapped back, so a rejected record fails alone with its own loop context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowlang.connectors.base import Connection, SendOutcome
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.frame import Frame
from flowlang.runtime.run import RecordFailure


@dataclass
class Pending:
    record: Any
    failure: RecordFailure | None  # the loop context to save if this record fails
    stats_line: int | None


@dataclass
class BatchBuffer:
    connection: Connection
    op: str
    args: list[Any]
    kwargs: dict[str, Any]
    size: int
    items: list[Pending] = field(default_factory=list)

    def same_target(self, connection: Connection, op: str, args: list[Any], kwargs: dict[str, Any]) -> bool:
        return connection is self.connection and op == self.op and args == self.args and kwargs == self.kwargs


async def flush(buffer: BatchBuffer, f: Frame, send_line: int) -> None:
    """Send what the buffer holds; record a failure for each record the destination refused."""
    items, buffer.items = buffer.items, []
    if not items:
        return
    records = [p.record for p in items]
    try:
        outcomes = await buffer.connection.send_batch(buffer.op, records, buffer.args, buffer.kwargs)
    except FlowRuntimeError as e:
        outcomes = [SendOutcome(False, error=e.message, status=e.status) for _ in items]
    if len(outcomes) != len(items):
        message = f"the destination answered {len(outcomes)} results for a batch of {len(items)} records"
        outcomes = [SendOutcome(False, error=message) for _ in items]
    stats = f.run.stats.at(send_line, "send")
    for pending, outcome in zip(items, outcomes, strict=True):
        if outcome.ok:
            stats.sent += 1
            continue
        failure = pending.failure
        if failure is None:
            raise FlowRuntimeError(outcome.error or "the destination refused a record", "connector",
                                   status=outcome.status)
        failure.message = outcome.error or "the destination refused the record"
        failure.kind = "connector"
        failure.status = outcome.status
        if pending.stats_line is not None:
            f.run.stats.at(pending.stats_line, "for each").failed += 1
        f.run.record_failure(failure)
