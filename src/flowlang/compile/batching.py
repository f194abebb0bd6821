"""`send ... batch N`: records collected per send statement and sent N at a time, each record getting
its own result (OPERATIONS.md 7). The iteration that sent a record waits for its batch's answer: the
loop runs up to N iterations ahead to fill a batch (RunAhead), and a batch goes out when it is full
or when every live iteration of the loop is waiting for one. A record the API rejects fails its own
iteration; the statements after the send run only for accepted records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from flowlang.connectors.base import Connection, SendOutcome
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.frame import Frame


@dataclass
class Pending:
    record: Any
    answer: asyncio.Future[SendOutcome]


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


@dataclass
class RunAhead:
    """A loop running ahead to fill its batches: its live iterations and those waiting for an answer."""

    flush_all: Callable[[Frame], Awaitable[None]]
    active: int = 0
    waiters: list[list[asyncio.Future[SendOutcome]]] = field(default_factory=list)

    def settle(self) -> None:
        """Forget the waiters whose answers all arrived."""
        self.waiters = [w for w in self.waiters if not all(a.done() for a in w)]

    def stalled(self) -> bool:
        """Every live iteration waits for a batch: send what the buffers hold."""
        return bool(self.waiters) and len(self.waiters) >= self.active

    async def iteration_done(self, f: Frame) -> None:
        self.active -= 1
        if self.stalled():
            await self.flush_all(f)


async def flush(buffer: BatchBuffer, f: Frame, send_line: int) -> None:
    """Send what the buffer holds and give each record its outcome."""
    items, buffer.items = buffer.items, []
    if not items:
        return
    records = [p.record for p in items]
    observer = f.run.observer
    started = time.monotonic() if observer.active else 0.0
    try:
        try:
            outcomes = await buffer.connection.send_batch(buffer.op, records, buffer.args, buffer.kwargs)
        except FlowRuntimeError as e:
            outcomes = [SendOutcome(False, error=e.message, status=e.status) for _ in items]
        if len(outcomes) != len(items):
            message = f"the destination answered {len(outcomes)} results for a batch of {len(items)} records"
            outcomes = [SendOutcome(False, error=message) for _ in items]
    except BaseException:
        for p in items:
            if not p.answer.done():
                p.answer.cancel()
        raise
    if observer.active:
        observer.send(buffer.connection.name, buffer.op, all(o.ok for o in outcomes), time.monotonic() - started)
    stats = f.run.stats.at(send_line, "send")
    for pending, outcome in zip(items, outcomes, strict=True):
        if outcome.ok:
            stats.sent += 1
        if not pending.answer.done():
            pending.answer.set_result(outcome)
    ahead = f.run_ahead
    if ahead is not None:
        ahead.settle()
