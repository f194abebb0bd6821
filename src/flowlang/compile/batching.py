"""`send ... batch N`: records collected per send statement and sent N at a time, each record getting
its own result (OPERATIONS.md 7). The iteration that sent a record waits for its batch's answer: the
loop runs up to 2N iterations ahead (RunAhead), so the next batch is collected while one is written.
A batch goes out when it is full, or when every live iteration of the loop waits for one and none of
its buffers is being written. The batches of one send statement are written one after another, in
order (each write waits for the one before); a `once` / `if changed` record whose key is in a batch
still being written waits for that batch's answer before the ledger decides. A record the API
rejects fails its own iteration; the statements after the send run only for accepted records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import field
from typing import Any

from flowlang.connectors.base import Connection, SendOutcome
from flowlang.errors import FlowRuntimeError, internal_error
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.frame import Frame
from flowlang.runtime.store import now_text


@dataclass(slots=True)
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
    writing: asyncio.Task[None] | None = None  # the last batch taken: each write waits for the one before
    writes: set[asyncio.Task[None]] = field(default_factory=set)  # the batches taken and not answered yet
    in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # ledger keys of those batches

    def same_target(self, connection: Connection, op: str, args: list[Any], kwargs: dict[str, Any]) -> bool:
        return connection is self.connection and op == self.op and args == self.args and kwargs == self.kwargs

    def busy(self) -> bool:
        """A batch of this buffer is being written (its answer will wake the records waiting for it)."""
        return self.writing is not None and not self.writing.done()

    def succeed(self, previous: BatchBuffer) -> None:
        """This buffer takes over from one for another target: its writes come after that one's."""
        self.writing, self.writes, self.in_flight = previous.writing, previous.writes, previous.in_flight


@dataclass(frozen=True)
class TailSend:
    """A batched send without `once`, `if changed` or `as`, as a loop runs it when it is the last
    statement of its body (compile/loops.py, run_tail): `enqueue(frame)` puts the records in the buffer
    and gives their answers (one record's answer, or a list's; None for a stream: run the send's step
    instead), `refusal(outcomes)` the error of a refused record."""

    enqueue: Callable[[Frame], asyncio.Future[SendOutcome] | list[asyncio.Future[SendOutcome]] | None]
    refusal: Callable[[list[SendOutcome]], FlowRuntimeError | None]


@dataclass
class RunAhead:
    """A loop running ahead to fill its batches: its live iterations and those waiting for an answer.
    `kick` sends what the loop's idle buffers hold."""

    kick: Callable[[Frame], None]
    active: int = 0
    waiters: list[list[asyncio.Future[SendOutcome]]] = field(default_factory=list)

    def settle(self) -> None:
        """Forget the waiters whose answers all arrived."""
        self.waiters = [w for w in self.waiters if not all(a.done() for a in w)]

    def stalled(self) -> bool:
        """Every live iteration waits for a batch: send what the buffers hold."""
        return bool(self.waiters) and len(self.waiters) >= self.active

    def iteration_done(self, f: Frame) -> None:
        self.active -= 1
        if self.stalled():
            self.kick(f)


def start_flush(buffer: BatchBuffer, f: Frame, send_line: int) -> None:
    """Take what the buffer holds as one batch, written after the batches taken before it."""
    items, buffer.items = buffer.items, []
    buffer.keys = {}
    if not items:
        return
    task = asyncio.ensure_future(write(buffer, items, f, send_line, buffer.writing))
    buffer.writing = task
    buffer.writes.add(task)
    if buffer.mode is not None:
        for p in items:
            if p.ledger is not None:
                buffer.in_flight[p.ledger[0]] = task


async def written(buffer: BatchBuffer) -> None:
    """Wait until every batch taken from the buffer is answered."""
    while buffer.busy():
        assert buffer.writing is not None
        await asyncio.wait([buffer.writing])


async def flush(buffer: BatchBuffer, f: Frame, send_line: int) -> None:
    """Send what the buffer holds and wait for the answers of all its batches."""
    start_flush(buffer, f, send_line)
    await written(buffer)


def abandon(buffer: BatchBuffer) -> None:
    """The loop failed: cancel the batches not written yet (their records' answers are cancelled)."""
    for task in list(buffer.writes):
        task.cancel()


async def write(buffer: BatchBuffer, items: list[Pending], f: Frame, send_line: int,
                previous: asyncio.Task[None] | None) -> None:
    """Send one batch (after the one before it) and give each record its outcome."""
    task = asyncio.current_task()
    try:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        await send(buffer, items, f, send_line)
    except BaseException:  # cut off (a cancel; a kill does not get here): `once` keys stay pending
        for p in items:
            if not p.answer.done():
                p.answer.cancel()
        raise
    finally:
        buffer.writes.discard(task)
        for p in items:
            if p.ledger is not None and buffer.in_flight.get(p.ledger[0]) is task:
                del buffer.in_flight[p.ledger[0]]
    ahead = f.run_ahead
    if ahead is not None:
        ahead.settle()
        if ahead.stalled():  # the records left wait for a buffer that was busy until now
            ahead.kick(f)


async def send(buffer: BatchBuffer, items: list[Pending], f: Frame, send_line: int) -> None:
    records = [p.record for p in items]
    run = f.run
    observer = run.observer
    started = time.monotonic() if observer.active else 0.0
    ledgered = buffer.mode is not None and run.ledger is not None and not run.dry_run
    conn, op = buffer.connection, buffer.op
    job_id = run.job.get("id")
    if ledgered and buffer.mode == "once" and run.ledger is not None:  # claimed before the request goes out
        run.ledger.pending_many(run.flow, conn.name, op, [p.ledger for p in items if p.ledger], job_id, now_text())
    try:
        outcomes = await buffer.connection.send_batch(buffer.op, records, buffer.args, buffer.kwargs)
    except FlowRuntimeError as e:
        outcomes = [SendOutcome(False, error=e.message, status=e.status) for _ in items]
    except Exception as e:  # a bug must not lose the records: each fails with it
        error = internal_error(e)
        outcomes = [SendOutcome(False, error=error.message) for _ in items]
    if len(outcomes) != len(items):
        message = f"the destination answered {len(outcomes)} results for a batch of {len(items)} records"
        outcomes = [SendOutcome(False, error=message) for _ in items]
    if ledgered and run.ledger is not None:
        run.flush_writes()  # what the ledger records as sent has reached the destination
        sent = [(p.ledger[0], p.ledger[1], o.result) for p, o in zip(items, outcomes, strict=True) if p.ledger and o.ok]
        refused = [p.ledger[0] for p, o in zip(items, outcomes, strict=True) if p.ledger and not o.ok]
        run.ledger.settle_many(run.flow, conn.name, op, sent, refused, job_id, now_text(), run.mask)
    if observer.active:
        observer.send(buffer.connection.name, buffer.op, all(o.ok for o in outcomes), time.monotonic() - started)
    stats = run.stats.at(send_line, "send")
    for pending, outcome in zip(items, outcomes, strict=True):
        if outcome.ok:
            stats.sent += 1
        if not pending.answer.done():
            pending.answer.set_result(outcome)
