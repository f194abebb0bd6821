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

from flowlang.compile.ledger_send import (
    KeyBy,
    claim_in_flight,
    in_flight_place,
    kept_pending,
    may_have_arrived,
    release_in_flight,
)
from flowlang.connectors.base import Connection, SendOutcome
from flowlang.errors import FlowRuntimeError, internal_error
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.frame import Frame
from flowlang.runtime.ledger import LedgerEntry, ledger_operation
from flowlang.runtime.slots import Slots
from flowlang.runtime.stats import count_sent
from flowlang.runtime.store import now_text
from flowlang.runtime.tape import BATCH_PLACES, DRAW_PLACE

# A record's answer: its batch's answer (one future for every record of the batch: the outcomes in the
# batch's order) and the record's place in it
Answer = tuple["asyncio.Future[list[SendOutcome]]", int]


def outcome_of(answer: Answer) -> SendOutcome:
    """The outcome of one record whose batch was answered."""
    return answer[0].result()[answer[1]]


def answered(outcome: SendOutcome) -> Answer:
    """The answer of a record answered without being sent (the ledger knew it)."""
    future: asyncio.Future[list[SendOutcome]] = asyncio.get_running_loop().create_future()
    future.set_result([outcome])
    return future, 0


@dataclass
class BatchBuffer:
    connection: Connection
    op: str
    args: list[Any]
    kwargs: dict[str, Any]
    size: int
    items: list[Any] = field(default_factory=list)  # the records of the batch being collected
    places: list[str | None] = field(default_factory=list)  # each item's record (tape.BATCH_PLACES)
    mode: str | None = None  # "once" or "changed": each record goes through the ledger
    key_by: KeyBy | None = None  # ... and what makes its keys (compile/ledger_send.py, key_changed)
    ledgers: list[tuple[str, str]] = field(default_factory=list)  # with a mode: each item's key and payload hash
    answer: asyncio.Future[list[SendOutcome]] | None = None  # the answer of the batch being collected
    keys: dict[str, Answer] = field(default_factory=dict)  # ledger keys in this batch
    writing: asyncio.Task[None] | None = None  # the last batch taken: each write waits for the one before
    writes: set[asyncio.Task[None]] = field(default_factory=set)  # the batches taken and not answered yet
    in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # ledger keys of those batches

    def add(self, record: Any) -> Answer:
        """A record put in the batch being collected (without a ledger entry), and its answer."""
        answer = self.answer
        if answer is None:
            answer = self.answer = asyncio.get_running_loop().create_future()
        self.items.append(record)
        self.places.append(DRAW_PLACE.get())
        return answer, len(self.items) - 1

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

    enqueue: Callable[[Frame], Answer | list[Answer] | None]
    refusal: Callable[[list[SendOutcome]], FlowRuntimeError | None]


@dataclass
class RunAhead:
    """A loop running ahead to fill its batches: its live iterations and those waiting for an answer.
    `kick` sends what the loop's idle buffers hold."""

    kick: Callable[[Frame], None]
    active: int = 0
    waiters: list[list[asyncio.Future[list[SendOutcome]]]] = field(default_factory=list)  # batches' answers
    gate: Slots | None = None  # a `parallel N` loop's slots: given back while an iteration waits for an answer
    # the loop is reading its next page: the records it brings fill the batches that wait, so a batch
    # is not sent short at a page's end (pages of 3 and batch 4 sent 3, 4, 3 records)
    pulling: bool = False
    # the loop waits for a `parallel` slot, which an iteration waiting for its batch gives back right
    # after it looks whether the loop is stalled: the loop starts another iteration then
    taking: bool = False

    async def wait(self, futures: list[asyncio.Future[list[SendOutcome]]]) -> None:
        """Wait for the answers of an iteration's batches, without its `parallel` slot meanwhile."""
        gate = self.gate
        if gate is not None:
            gate.release()
        try:
            for x in futures:
                if not x.done():
                    await x
        except BaseException:  # cut off: the iteration's own release balances the slot
            if gate is not None:
                gate.owe()
            raise
        if gate is not None and not gate.take_now():
            try:
                await gate.take()
            except BaseException:
                gate.owe()
                raise

    def settle(self) -> None:
        """Forget the waiters whose answers all arrived."""
        self.waiters = [w for w in self.waiters if not all(a.done() for a in w)]

    def stalled(self) -> bool:
        """Every live iteration waits for a batch and no page is being read: send what the buffers hold."""
        return bool(self.waiters) and len(self.waiters) >= self.active and not self.pulling and not self.taking

    def pulled(self, f: Frame) -> None:
        """The page read ended (a page came, or the stream ended): send what waits if nothing else will."""
        self.pulling = False
        if self.stalled():
            self.kick(f)

    def iteration_done(self, f: Frame) -> None:
        self.active -= 1
        if self.stalled():
            self.kick(f)


def start_flush(buffer: BatchBuffer, f: Frame, send_line: int) -> None:
    """Take what the buffer holds as one batch, written after the batches taken before it."""
    items, buffer.items = buffer.items, []
    places, buffer.places = buffer.places, []
    ledgers, buffer.ledgers = buffer.ledgers, []
    answer, buffer.answer = buffer.answer, None
    buffer.keys = {}
    if not items or answer is None:
        return
    task = asyncio.ensure_future(write(buffer, items, ledgers, answer, f, send_line, buffer.writing, places))
    buffer.writing = task
    buffer.writes.add(task)
    for key, _ in ledgers:
        buffer.in_flight[key] = task


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


async def write(buffer: BatchBuffer, items: list[Any], ledgers: list[tuple[str, str]],
                answer: asyncio.Future[list[SendOutcome]], f: Frame, send_line: int,
                previous: asyncio.Task[None] | None, places: list[str | None]) -> None:
    """Send one batch (after the one before it) and give its records their outcomes."""
    task = asyncio.current_task()
    BATCH_PLACES.set(places)  # this task's own context
    try:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        await send(buffer, items, ledgers, answer, f, send_line)
    except BaseException:  # cut off (a cancel; a kill does not get here): `once` keys stay pending
        if not answer.done():
            answer.cancel()
        raise
    finally:
        buffer.writes.discard(task)
        for key, _ in ledgers:
            if buffer.in_flight.get(key) is task:
                del buffer.in_flight[key]
    ahead = f.run_ahead
    if ahead is not None:
        ahead.settle()
        if ahead.stalled():  # the records left wait for a buffer that was busy until now
            ahead.kick(f)


async def send(buffer: BatchBuffer, records: list[Any], ledgers: list[tuple[str, str]],
               answer: asyncio.Future[list[SendOutcome]], f: Frame, send_line: int) -> None:
    run = f.run
    observer = run.observer
    started = time.monotonic() if observer.active else 0.0
    ledgered = buffer.mode is not None and run.ledger is not None and not run.dry_run
    conn, op = buffer.connection, ledger_operation(buffer.op, buffer.args)  # op: the ledger's name
    job_id = run.job.get("id")
    before: dict[str, LedgerEntry | None] = {}  # `if changed`: the last payload sent for each key
    if ledgered and run.ledger is not None:  # claimed before the request goes out (a kill leaves them pending)
        if buffer.mode == "changed":
            before = {k: run.ledger.get(run.flow, conn.name, op, k) for k, _ in ledgers}
        run.ledger.pending_many(run.flow, conn.name, op, ledgers, job_id, now_text(),
                                buffer.key_by[0] if buffer.key_by is not None else None)
    places = [in_flight_place(run, conn.name, op, k) for k, _ in ledgers] if ledgered else []
    done = claim_in_flight(places)  # another run's send of these keys waits for this batch's answer
    try:
        try:
            outcomes = await buffer.connection.send_batch(buffer.op, records, buffer.args, buffer.kwargs)
        except FlowRuntimeError as e:
            outcomes = [SendOutcome(False, error=e.message, status=e.status, uncertain=e.uncertain)
                        for _ in records]
        except Exception as e:  # a bug must not lose the records: each fails with it
            error = internal_error(e)
            outcomes = [SendOutcome(False, error=error.message) for _ in records]
        if len(outcomes) != len(records):
            message = f"the destination answered {len(outcomes)} results for a batch of {len(records)} records"
            outcomes = [SendOutcome(False, error=message) for _ in records]
        if ledgered and run.ledger is not None:
            run.flush_writes()  # what the ledger records as sent has reached the destination
            sent = [(k, digest, o.result) for (k, digest), o in zip(ledgers, outcomes, strict=True) if o.ok]
            refused = [k for (k, _), o in zip(ledgers, outcomes, strict=True) if not o.ok and not o.uncertain]
            # `if changed`: a refused key that was sent before gets back its last payload sent
            restored = {k for k in refused if (was := before.get(k)) is not None and was.status == "sent"}
            run.ledger.settle_many(run.flow, conn.name, op, sent, [k for k in refused if k not in restored],
                                   job_id, now_text(), run.mask)
            for k in restored:
                run.ledger.restore(run.flow, conn.name, op, k, before[k])
            for (k, _), o in zip(ledgers, outcomes, strict=True):  # may have arrived: stays pending, said so
                if not o.ok and o.uncertain:
                    o.error = (o.error or "the destination did not say whether it took the record") + \
                        kept_pending(run, conn.name, op, k, buffer.mode or "once")
    finally:  # answered, or cut off (its keys stay pending): the sends of its keys that wait ask the ledger now
        release_in_flight(places, done)
    if not ledgered:  # a record that may have arrived: a retry may send it twice, said so
        for o in outcomes:
            if not o.ok and o.uncertain:
                o.error = (o.error or "the destination did not say whether it took the record") + \
                    may_have_arrived(conn.name)
    if observer.active:
        observer.send(buffer.connection.name, buffer.op, all(o.ok for o in outcomes), time.monotonic() - started)
    count_sent(run.stats.at(send_line, "send"), sum(1 for o in outcomes if o.ok),
               buffer.connection.sends_read(buffer.op))
    if not answer.done():
        answer.set_result(outcomes)
