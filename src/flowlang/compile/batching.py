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
from flowlang.runtime.store import now_text


@dataclass
class Pending:
    record: Any
    answer: asyncio.Future[SendOutcome]
    ledger: tuple[str, str] | None = None  # a `once` / `if changed` send: its key and payload hash


@dataclass
class BatchBuffer:
    connection: Connection
    op: str
    args: list[Any]
    kwargs: dict[str, Any]
    size: int
    items: list[Pending] = field(default_factory=list)
    mode: str | None = None  # "once" or "changed": each record goes through the ledger
    keys: dict[str, asyncio.Future[SendOutcome]] = field(default_factory=dict)  # ledger keys in this batch

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
    buffer.keys = {}
    if not items:
        return
    records = [p.record for p in items]
    observer = f.run.observer
    started = time.monotonic() if observer.active else 0.0
    run = f.run
    ledgered = buffer.mode is not None and run.ledger is not None and not run.dry_run
    conn, op = buffer.connection, buffer.op
    job_id = run.job.get("id")
    if ledgered and buffer.mode == "once" and run.ledger is not None:  # claimed before the request goes out
        run.ledger.pending_many(run.flow, conn.name, op, [p.ledger for p in items if p.ledger], job_id, now_text())
    try:
        try:
            outcomes = await buffer.connection.send_batch(buffer.op, records, buffer.args, buffer.kwargs)
        except FlowRuntimeError as e:
            outcomes = [SendOutcome(False, error=e.message, status=e.status) for _ in items]
        if len(outcomes) != len(items):
            message = f"the destination answered {len(outcomes)} results for a batch of {len(items)} records"
            outcomes = [SendOutcome(False, error=message) for _ in items]
    except BaseException:  # cut off (a cancel; a kill does not get here): `once` keys stay pending
        for p in items:
            if not p.answer.done():
                p.answer.cancel()
        raise
    if ledgered and run.ledger is not None:
        run.flush_writes()  # what the ledger records as sent has reached the destination
        sent = [(p.ledger[0], p.ledger[1], o.result) for p, o in zip(items, outcomes, strict=True) if p.ledger and o.ok]
        refused = [p.ledger[0] for p, o in zip(items, outcomes, strict=True) if p.ledger and not o.ok]
        run.ledger.settle_many(run.flow, conn.name, op, sent, refused, job_id, now_text(), run.mask)
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
