"""`for each`: its compilation (ForEachCompiler.s_ForEach), sequential and parallel loops, --limit, the
flush of batched sends when a loop ends, and the loop entries `flowlang retry` re-enters.

The unit of work is the record of the outermost loop (OPERATIONS.md 1): an unhandled error anywhere
inside its iteration (inner loops included) fails that record, which is kept with the scope at the
start of its iteration, its loop's identity and its trace key (OPERATIONS.md 2, 3). Inner loops do
not isolate their items."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import field
from decimal import Decimal
from typing import Any

from flowlang import ast
from flowlang.compile.batching import Answer, RunAhead, TailSend, outcome_of
from flowlang.compile.errors import Where
from flowlang.compile.expressions import iterate
from flowlang.compile.io import IoCompiler
from flowlang.compile.ledger_send import blank_key, record_key
from flowlang.compile.reads import WRITES_STATE, globals_named, reads
from flowlang.compile.resume import LoopProgress, assigned_slots, progress_of, restore_scope, resume_point
from flowlang.compile.statements import DECLARATIONS
from flowlang.compile.steps import NOTHING, Eval, Step, block, plan_of
from flowlang.errors import FlowRuntimeError, LimitError, OutOfMemory, keep_memory_reserve
from flowlang.errors import internal_error as unexpected
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.frame import Frame, Out, SkipSignal, StopSignal
from flowlang.runtime.keys import canonical_key, key_json
from flowlang.runtime.limits import RECORD_DEADLINE, RECORD_WRITES, check_time, record_limit_message
from flowlang.runtime.masking import debug_exception
from flowlang.runtime.operators import NeedsMaterialization
from flowlang.runtime.run import PICKUP_FILE, READ_FAILED, SAVED_INPUT, SAVED_STATE, SAVED_STREAMS, RecordFailure
from flowlang.runtime.sharing import as_it_was, undone
from flowlang.runtime.slots import Slots
from flowlang.runtime.tape import set_draw_place
from flowlang.runtime.values import BadRecord, RecordStream, Secret, shown_number, type_name

log = logging.getLogger("flowlang.loops")
STORABLE = (type(None), bool, int, str, list, dict, Secret)
# what an iteration of run_tail waits for: its record's answer, its records' answers, the task sending a
# stream, or nothing
Waiting = Answer | list[Answer] | asyncio.Task[None] | None


@dataclass
class LoopInfo:
    """What a loop knows about itself: identity for the error store, and its batched sends."""

    loop_id: str  # "line:col", for people
    line: int
    location: str
    names_slots: tuple[int, ...]
    visible: tuple[tuple[str, int], ...]
    flushers: list[Callable[[Frame], Awaitable[None]]] = field(default_factory=list)
    kickers: list[Callable[[Frame], None]] = field(default_factory=list)  # its batched sends' idle buffers out
    abandoners: list[Callable[[Frame], None]] = field(default_factory=list)  # its batches cancelled
    tail_sends: dict[ast.Send, TailSend] = field(default_factory=dict)  # its batched sends a loop may run inline
    identity: str | None = None  # set on outermost loops: what the error store and retry know it by
    key: Eval | None = None  # `key expr`; without it an object's non-null `id`
    batch_sizes: list[Eval] = field(default_factory=list)  # of the batched sends in its body: it runs ahead
    read: frozenset[int] | None = None  # the visible slots the iteration reads (None: all); compile/reads.py
    assigned: tuple[tuple[str, int], ...] = ()  # enclosing variables its body assigns (kept in checkpoints)
    reads_state: bool = False  # its body names `state`: a failed record keeps it as its iteration started
    writes_state: bool = False  # ... and changes it: each iteration notes what it replaces (start())
    names: tuple[str, ...] = ()  # its variables
    listed: str = ""  # the text of its list expression (spaces collapsed): "rows"
    keeps_input: bool = False  # an outermost loop whose iteration reads `input`: a failure keeps it (SAVED_INPUT)
    key_written: str | None = None  # the text of its `key expr`, for a message
    nth: int | None = None  # an outermost loop's place among those of its variables and list (1 for the first)
    same: int | None = None  # how many outermost loops of the flow have its variables and list (set at its end)
    can_stop: bool = False  # its body has a `stop` of its own (not one of an inner loop's)

    @property
    def outermost(self) -> bool:
        return self.identity is not None

    @property
    def keeps_start(self) -> bool:
        """Whether an iteration's start is kept (start()): the body assigns an enclosing variable, or
        changes `state` (a failed record is saved with the state as its iteration started)."""
        return bool(self.assigned) or self.writes_state

    def start(self, f: Frame, alone: bool = True) -> list[Any]:
        """The values of the visible variables at the start of an iteration (saved if it fails) when the
        body assigns one; the run knows them, so that `let xs = xs + [...]` can grow such a list in place
        (compile/statements.py). Of a loop that changes `state`, last: where the notes of what its changes
        replace start for this iteration (snapshot undoes them); `alone` false in a loop whose iterations
        overlap (parallel, filling batches): the notes since the ones before it began are kept."""
        values = self.now(f) if self.assigned else []
        run = f.run
        if self.writes_state:
            values.append(run.state_notes_from(alone))
        elif run.state_undo is not None:
            run.state_undo = None
        run.iteration_start = values
        if run.grown:
            run.grown.clear()
        if run.replaced:
            run.replaced.clear()
        return values

    def now(self, f: Frame) -> list[Any]:
        slots = f.slots
        return [slots[slot] if slot < len(slots) else None for _, slot in self.visible]

    def snapshot(self, f: Frame, start: list[Any] | None = None) -> dict[str, Any]:
        run = f.run
        begun = -1  # where the notes of this iteration's changes of the state begin (start())
        if start is not None and self.writes_state:
            begun, start = start[-1], start[:-1]
        values = start if start is not None and self.assigned else self.now(f)
        # lists and objects of the start changed in place since: saved as they were at the start
        changed = start is not None and bool(run.grown or run.replaced)
        out: dict[str, Any] = {}
        read = self.read
        if self.reads_state:  # as the iteration started: what its changes replaced given back
            notes = run.state_undo
            out[SAVED_STATE] = undone(run.state, notes[max(0, begun - run.state_undo_base):]) \
                if begun >= 0 and notes else run.state
        for (name, slot), value in zip(self.visible, values, strict=True):
            if read is not None and slot not in read:
                continue  # the iteration never reads it: a replay does not need it
            if changed and (type(value) is list or type(value) is dict):
                value = as_it_was(value, run.grown, run.replaced)
            if isinstance(value, STORABLE) or type(value).__name__ in ("Decimal", "datetime", "date", "timedelta"):
                out[name] = value
            elif type(value) is RecordStream:  # not kept: a retry says so rather than read it as null
                out.setdefault(SAVED_STREAMS, []).append(name)
        return out

    def record_of(self, item: Any) -> Any:
        return item.record if type(item) is BadRecord else item

    def key_value(self, f: Frame, item: Any, where: Where) -> Any:
        """The value of the record's key (`key expr`, else an object's `id`), or None when it has none."""
        if self.key is None:
            return record_key(self.record_of(item), f.run)  # within its file for a pick-up's record
        if type(item) is BadRecord:
            return None
        saved = [f.slots[s] for s in self.names_slots]
        try:
            set_vars(f.slots, self.names_slots, item, where)
            value = self.key(f)
            if blank_key(value):  # "" for every record without an email: they would share one open error
                self.no_key(f, "it is empty")
                return None
            return value
        except FlowRuntimeError as e:
            self.no_key(f, e.message)
            return None
        finally:
            for slot, old in zip(self.names_slots, saved, strict=True):
                f.slots[slot] = old

    def no_key(self, f: Frame, why: str) -> None:
        """A record whose `key` cannot be worked out has none: its failures are kept one by one, never
        replaced nor resolved by a later success, and a retry sends each, so a night's failures of it
        rerun three times are sent three times. Said once a run per loop, at the key."""
        if self.loop_id in f.run.key_problems:
            return
        f.run.key_problems.add(self.loop_id)
        f.run.log("warn", f"the key {self.key_written} of the loop at {self.location} could not be worked out for "
                  f"a record ({why}), so it has no key: each failure of it is kept apart, one more each run, "
                  "and a retry sends each of them; write a key that every record can give",
                  self.location)

    def trace_key(self, f: Frame, item: Any, where: Where) -> str | None:
        """The record's trace key as JSON text, or None when it has none; in a retry without `key`, the
        key stored with the error replayed (the saved record no longer knows the file it came from)."""
        if self.key is None and f.run.replaying is not None:
            return f.run.replay_key
        return self.key_text(f, self.key_value(f, item, where))

    def key_text(self, f: Frame, value: Any) -> str | None:
        if value is None:
            return None
        try:
            return key_json(value, f.run.mask)  # canonical (1.0 is 1), masked as the saved record is
        except (TypeError, ValueError):
            return None

    def same_key(self, f: Frame, item: Any, where: Where) -> Any:
        """What tells the records of one key apart in a parallel loop (OPERATIONS.md 2): a text or a whole
        number as it is (a whole decimal, 1.0, as the number 1: one key, runtime/keys.py), another key as
        its trace key's text; None for a record without a key."""
        if self.key is None and type(item) is not dict and type(item) is not BadRecord:
            return None  # the default key is an object's id (record_key): no other value has one
        value = self.key_value(f, item, where)
        t = type(value)
        if t is str or t is int:
            return value
        if t is Decimal:
            value = canonical_key(value)
            if type(value) is int:
                return value
        return self.key_text(f, value)

    def failure(self, f: Frame, item: Any, err: FlowRuntimeError, start: list[Any] | None = None,
                key: str | None = None) -> RecordFailure:
        scope = self.snapshot(f, start)
        if type(item) is BadRecord:
            scope[READ_FAILED] = True
        if self.keeps_input:
            scope[SAVED_INPUT] = f.run.input
        picked_from = f.run.record_files.get(id(self.record_of(item))) if f.run.record_files else None
        if picked_from is not None:
            scope[PICKUP_FILE] = picked_from
        return RecordFailure(
            flow=f.run.flow, loop=self.loop_id, location=err.location or self.location, line=err.line,
            message=err.message, kind=err.kind, status=err.status, record=self.record_of(item),
            scope=scope, loop_id=self.identity, key=key, loop_nth=self.nth, loop_same=self.same,
        )

    async def flush(self, f: Frame) -> None:
        for flush in self.flushers:
            await flush(f)

    def kick(self, f: Frame) -> None:
        for kick in self.kickers:
            kick(f)

    def abandon(self, f: Frame) -> None:
        for abandon in self.abandoners:
            abandon(f)


RUN_GLOBALS = frozenset({"input", "state"})  # what a failed record keeps as its iteration saw it (LoopInfo)


def internal_error(err: Exception) -> FlowRuntimeError:
    debug_exception(log, "internal error in an iteration", err)
    return unexpected(err)


def set_vars(s: list[Any], slots: tuple[int, ...], item: Any, where: Where) -> None:
    """Bind the loop variables to an item; a record its source could not read fails here."""
    if type(item) is BadRecord:
        raise where.error(item.message, "data")
    if len(slots) == 1:
        s[slots[0]] = item
        return
    if type(item) is list and len(item) == 2:
        s[slots[0]], s[slots[1]] = item
        return
    raise where.error(f"two loop variables need [key, value] pairs or an object, got {type_name(item)}")


async def items_of(value: Any, pairs: bool, where: Where) -> AsyncGenerator[list[Any], None]:
    """The loop's items, a page at a time (record streams are read lazily; closed when the loop ends)."""
    if type(value) is RecordStream:
        pages = value.pages(keep_bad=True)
        try:
            async for page in pages:
                yield page
        finally:
            close = getattr(pages, "aclose", None)
            if close is not None:
                await close()
        return
    if type(value) is list:
        yield value  # pairs are checked item by item, so a bad item fails alone
        return
    yield iterate(value, pairs, where)


async def located_pages(pages: AsyncGenerator[list[Any], None], where: Where) -> AsyncGenerator[list[Any], None]:
    """A stream's pages, an error fetching one placed at the loop's `in ...` (a page after the first
    is fetched while the loop reads, long after the `call` that made the stream returned)."""
    async with contextlib.aclosing(pages):
        try:
            async for page in pages:
                yield page
        except FlowRuntimeError as e:
            raise where.locate(e) from None


class PageFailure:
    """The error that ended a stream's pages under a parallel loop or one that fills batches, held
    while the records already taken finish (and are checkpointed), so that --resume sends none of
    them again."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: FlowRuntimeError | None = None

    async def pages(self, pages: AsyncGenerator[list[Any], None]) -> AsyncGenerator[list[Any], None]:
        async with contextlib.aclosing(pages):
            try:
                async for page in pages:
                    yield page
            except FlowRuntimeError as e:
                self.error = e


class LoopCompiler:
    """Builds the Step of one `for each` (used by ModuleCompiler)."""

    def __init__(self, node: ast.ForEach, info: LoopInfo, iterable: Eval, body: Step, where: Where,
                 parallel: Eval | None, tail: tuple[Step, Step, TailSend] | None = None) -> None:
        self.node = node
        self.info = info
        self.iterable = iterable
        self.body = body
        self.where = where
        self.parallel = parallel
        self.pairs = len(node.names) == 2
        self.tail = tail  # (the statements before it, the send, the send inline) when the body ends with one

    def step(self) -> Step:
        if self.tail is not None:
            return Step.coroutine(self.run_tail)
        if self.parallel is not None or self.info.batch_sizes:
            return Step.coroutine(self.run_parallel)
        return Step.coroutine(self.run_sequential)

    # ---- one iteration ----------------------------------------------------------------------
    def fail(self, f: Frame, item: Any, err: FlowRuntimeError, start: list[Any] | None = None,
             index: int | None = None) -> None:
        f.run.stats.at(self.info.line, "for each").failed += 1
        key = self.info.trace_key(f, item, self.where)
        failure = self.info.failure(f, item, err, start, key)
        failure.index = index
        f.run.record_failure(failure)
        if type(err) is OutOfMemory and not keep_memory_reserve():  # what the record took did not come back
            raise OutOfMemory("out of memory: the memory did not come back after a record ran out of it "
                              "(a variable around the loop holds it), so the run ends; no state is "
                              "committed") from None

    def output_failed(self, f: Frame, item: Any, err: FlowRuntimeError, index: int) -> None:
        """An iteration that ran ahead succeeded, but its outputs could not be taken when they went out in its
        turn (stdout cannot be written): its record fails, kept with its variables as its iteration began.
        Before, the error ended the run there, and the record was not kept."""
        frame = Frame(list(f.slots), f.parent, f.run, held([]))
        try:
            set_vars(frame.slots, self.info.names_slots, item, self.where)
        except FlowRuntimeError:  # a record its loop could not take apart failed in its iteration already
            pass
        self.fail(frame, item, err, None, index)

    def succeeded(self, f: Frame, item: Any) -> None:
        """A keyed record whose key has an open error went through: that error is resolved."""
        identity = self.info.identity
        if identity is not None and f.run.open_keys.get(identity):
            key = self.info.trace_key(f, item, self.where)
            if key is not None:
                f.run.record_success(identity, key)

    def one_sync(self, f: Frame, item: Any, index: int | None = None,
                 body: Callable[[Frame], None] | None = None) -> None:
        """One iteration without I/O; `index` is the record's place in the loop (1 for the first);
        `body` the body's synchronous form, when the body itself is async (sends to files)."""
        run = body if body is not None else self.body.run
        info = self.info
        if info.identity is None:  # an inner loop: its errors fail the outermost record
            try:
                set_vars(f.slots, info.names_slots, item, self.where)
                run(f)
            except SkipSignal:
                f.run.stats.at(info.line, "for each").skipped += 1
            return
        start = info.start(f) if info.keeps_start else None  # see page_sync
        try:
            set_vars(f.slots, info.names_slots, item, self.where)
            run(f)
        except SkipSignal:  # sent nothing: an open error of its key stays open (see skipped)
            f.run.stats.at(info.line, "for each").skipped += 1
            return
        except (StopSignal, NeedsMaterialization):
            raise
        except Exception as e:
            self.failed(f, item, e, start, index)
            return
        if f.run.open_keys.get(info.identity):
            self.succeeded(f, item)

    def failed(self, f: Frame, item: Any, error: Exception, start: list[Any] | None, index: int | None) -> None:
        """An outermost record's iteration raised: the record fails and is kept (a bug in flowlang too:
        it must not lose the record); a full disk also ends the run (every later record would fail alike)."""
        if not isinstance(error, FlowRuntimeError):
            self.fail(f, item, internal_error(error), start, index)
            return
        self.fail(f, item, error, start, index)
        if error.ends_run:
            raise error

    def page_sync(self, f: Frame, page: list[Any], count: int, run: Callable[[Frame], None], counter: Any,
                  limit: int | None) -> int:
        """A page's records through a synchronous body, each as one_sync runs it, in one frame (an
        outermost loop with no record time limit and no observer); returns the records taken so far."""
        info = self.info
        stop = f.run.stop
        slots = f.slots
        names = info.names_slots
        single = names[0] if len(names) == 1 else -1
        # the scope a failed record is kept with: taken at the start of its iteration when the body
        # assigns a variable the iteration sees, else when it fails (the same values then)
        keep_start = info.keeps_start
        open_keys = f.run.open_keys
        identity = info.identity or ""  # set on an outermost loop
        deadline = RECORD_DEADLINE.get()  # not set for this loop's records: one the run is under, if any
        for item in page:
            if stop.hard or deadline is not None:  # what check_time looks at
                check_time(stop)
            if stop.requested:  # a graceful stop starts no new outermost record
                raise StopSignal()
            count += 1
            counter.read += 1  # counted as taken, so a progress display sees it move
            start = info.start(f) if keep_start else None
            try:
                if single >= 0 and type(item) is not BadRecord:
                    slots[single] = item
                else:
                    set_vars(slots, names, item, self.where)
                run(f)
            except SkipSignal:
                counter.skipped += 1
            except (StopSignal, NeedsMaterialization):
                raise
            except Exception as e:
                self.failed(f, item, e, start, count)
            else:
                if open_keys.get(identity):
                    self.succeeded(f, item)
            if limit is not None and count >= limit:  # N taken: no further page is fetched
                raise StopSignal()
        return count

    async def one_async(self, f: Frame, item: Any, index: int | None = None) -> None:
        if not self.info.outermost:
            try:
                set_vars(f.slots, self.info.names_slots, item, self.where)
                if self.body.is_async:
                    await self.body.run(f)
                else:
                    self.body.run(f)
            except SkipSignal:
                f.run.stats.at(self.info.line, "for each").skipped += 1
            return
        start = self.info.start(f) if self.info.keeps_start else None  # see page_sync
        try:
            set_vars(f.slots, self.info.names_slots, item, self.where)
            if self.body.is_async:
                await self.body.run(f)
            else:
                self.body.run(f)
        except SkipSignal:  # sent nothing: an open error of its key stays open, as in page_sync
            f.run.stats.at(self.info.line, "for each").skipped += 1
            return
        except (StopSignal, NeedsMaterialization, asyncio.CancelledError):
            raise
        except FlowRuntimeError as e:
            self.fail(f, item, e, start, index)
            if e.ends_run:  # every later record would fail alike: the run ends
                raise
            return
        except Exception as e:
            self.fail(f, item, internal_error(e), start, index)
            return
        self.succeeded(f, item)

    # ---- sequential ---------------------------------------------------------------------------
    def note_total(self, f: Frame, source: Any) -> None:
        """The outermost loop over a list says how many records the run will take (progress, ETA)."""
        if self.info.outermost and type(source) is list:
            limit = f.run.limit
            f.run.stats.total = len(source) if limit is None else min(limit, len(source))

    def limit_of(self, f: Frame, source: Any) -> int | None:
        """--limit N: N records of an outermost loop and of a loop that pulls them from a source (a paginated
        call, a file, a query). An inner loop over a list in memory (an order's lines) runs whole: a --limit
        run's writes are real, and an order sent with one of its three lines is a wrong order (OPERATIONS.md
        1, 6)."""
        limit = f.run.limit
        if limit is None or self.info.outermost or type(source) is RecordStream:
            return limit
        return None

    def begin(self, f: Frame) -> tuple[Any, LoopProgress | None] | None:
        """The loop's list and its checkpointing; None when a --resume run finds the loop finished."""
        point = resume_point(f, self.info.identity) if self.info.identity is not None else None
        if point is not None:
            restore_scope(f, point, self.info.visible)
            if point.finished:
                f.run.log("info", f"--resume: the loop at {self.info.location} finished in job {point.job_id}; "
                          "not run again")
                return None
        source = self.iterable(f)
        progress = progress_of(f, self.info.identity, source, point, self.info.assigned, self.where)
        if point is not None:
            f.run.log("info", f"--resume: the loop at {self.info.location} continues from job {point.job_id}'s "
                      f"checkpoint, {point.where()}")
        return source, progress

    def pages(self, source: Any, progress: LoopProgress | None) -> AsyncGenerator[list[Any], None]:
        pages = items_of(source, self.pairs, self.where) if progress is None else progress.pages()
        return located_pages(pages, self.where) if type(source) is RecordStream else pages

    def ended(self, f: Frame, progress: LoopProgress | None, done: int) -> None:
        """The loop ended (its records done, batches flushed): checkpoint a graceful stop, or the end."""
        if progress is None:
            return
        if f.run.stop.requested:
            progress.stopped(done)
        else:
            progress.finished()

    async def run_sequential(self, f: Frame) -> None:
        begun = self.begin(f)
        if begun is None:
            return
        source, progress = begun
        self.note_total(f, source)
        counter = f.run.stats.at(self.info.line, "for each")
        limit = self.limit_of(f, source)
        count = 0
        one_sync = self.one_sync if not self.body.is_async else None
        stop = f.run.stop
        graceful = self.info.outermost  # a graceful stop starts no new outermost record
        record_limit = f.run.limits.max_record_seconds if self.info.outermost else None
        observed = self.info.outermost and f.run.observer.active
        body_now = None  # the body's synchronous form, when it has one for this run (sends to files)
        if one_sync is None and record_limit is None and not observed:
            body_now = self.body.sync_run(f)
        # an outermost loop whose body runs without awaiting, untimed and unobserved: a page at a time
        page_body = None
        if graceful and record_limit is None and not observed:
            page_body = body_now if body_now is not None else self.body.run if one_sync is not None else None
        try:
            if limit is not None and limit <= 0:
                raise StopSignal()
            async with contextlib.aclosing(self.pages(source, progress)) as pages:
                async for page in pages:
                    if page_body is not None:
                        count = self.page_sync(f, page, count, page_body, counter, limit)
                        if progress is not None:
                            progress.done(count)
                        f.run.flush_writes()  # once a page: a file's records reach it
                        continue
                    for item in page:
                        check_time(stop)
                        if graceful and stop.requested:  # records in flight finish their inner loops
                            raise StopSignal()
                        count += 1
                        counter.read += 1  # counted as taken, so a progress display sees it move
                        if observed:
                            await self.one_observed(f, item, count - 1, record_limit)
                        elif one_sync is not None:
                            if record_limit is None:
                                one_sync(f, item, count)
                            else:
                                self.one_sync_timed(f, item, record_limit, count)
                        elif body_now is not None:
                            self.one_sync(f, item, count, body_now)
                        elif record_limit is None:
                            await self.one_async(f, item, count)
                        else:
                            await self.one_timed(f, item, record_limit, count)
                        if limit is not None and count >= limit:  # N taken: no further page is fetched
                            raise StopSignal()
                    if progress is not None:  # the page's records are all done (one at a time, in order)
                        progress.done(count)
                    if graceful:
                        f.run.flush_writes()  # once a page: a file's records reach it
        except StopSignal:
            pass
        await self.info.flush(f)
        if graceful:
            f.run.flush_writes()
        self.ended(f, progress, count)
        if graceful:
            f.run.check_stop()

    async def one_observed(self, f: Frame, item: Any, index: int, record_limit: float | None) -> None:
        """One record of an outermost loop inside the run observer's iteration span (telemetry)."""
        with f.run.observer.iteration(self.info.identity or "for each", index):
            if not self.body.is_async:
                self.one_sync(f, item, index + 1)
            elif record_limit is None:
                await self.one_async(f, item, index + 1)
            else:
                await self.one_timed(f, item, record_limit, index + 1)

    def one_sync_timed(self, f: Frame, item: Any, seconds: float, index: int | None = None) -> None:
        """One iteration without I/O under max_record_seconds: check_time fails it when it runs over."""
        token = RECORD_DEADLINE.set((time.monotonic() + seconds, seconds))
        try:
            self.one_sync(f, item, index)
        finally:
            RECORD_DEADLINE.reset(token)

    async def one_timed(self, f: Frame, item: Any, seconds: float, index: int | None = None) -> None:
        """One iteration under max_record_seconds: a record that takes longer fails alone (waiting on
        I/O, by the timeout; CPU-bound, by check_time)."""
        writes: list[str] = []  # the writes in flight when it is stopped (RECORD_WRITES)

        async def timed() -> None:
            RECORD_DEADLINE.set((time.monotonic() + seconds, seconds))  # this task's own context
            RECORD_WRITES.set(writes)
            await self.one_async(f, item, index)
        try:
            await asyncio.wait_for(timed(), seconds)
        except TimeoutError:
            self.fail(f, item, LimitError(record_limit_message(seconds, writes), source=self.where.source,
                                          span=self.where.span), index=index)

    # ---- parallel ----------------------------------------------------------------------------
    def ahead_width(self, f: Frame) -> int:
        """A loop with batched sends runs up to 2N iterations ahead: the next batch is collected while
        one is written."""
        sizes = [size(f) for size in self.info.batch_sizes]
        return 2 * max([n for n in sizes if type(n) is int and n >= 1] or [1])

    def width(self, f: Frame) -> int:
        if self.parallel is None:
            # a loop that can `stop` does not run ahead: the records after the one that stops would be
            # in its batch, sent and emitted before the stop is known (each batch is of one record then)
            return 1 if self.info.can_stop else self.ahead_width(f)
        n = self.parallel(f)
        if type(n) is not int or n < 1:
            count = self.node.parallel  # the error is at the N (a param's value), not at the loop's list
            at = Where(self.where.source, count.span) if count is not None else self.where
            raise at.error(f"parallel needs a whole number of at least 1, got {shown_number(n)}", "value")
        return n

    async def run_parallel(self, f: Frame) -> None:
        width = self.width(f)
        begun = self.begin(f)
        if begun is None:
            return
        source, progress = begun
        self.note_total(f, source)
        drained = 0
        counter = f.run.stats.at(self.info.line, "for each")
        limit = self.limit_of(f, source)
        gate = Slots(width)  # an iteration takes one before it starts, gives it back when it ends
        loop = asyncio.get_running_loop()
        # (iteration, its outputs, its key, its record, its place)
        pending: deque[tuple[asyncio.Task[None], list[Any], Any, Any, int]] = deque()
        # records of one key run one after another, in order (OPERATIONS.md 2): the last iteration started
        # of each key still pending
        keyed: dict[Any, asyncio.Task[None]] = {}
        same_key = self.info.same_key if self.info.outermost and width > 1 else None
        stopped = False
        count = 0

        record_limit = f.run.limits.max_record_seconds if self.info.outermost else None
        stop = f.run.stop
        graceful = self.info.outermost

        ahead = RunAhead(self.info.kick) if self.info.batch_sizes else None
        queued = width * 4  # iterations started before the first one's results went out
        if ahead is not None and self.parallel is not None:
            # `parallel N` with batched sends: an iteration waiting for its batch's answer gives its
            # slot back (it does no work), so a batch can fill past N records
            ahead.gate = gate
            queued = max(queued, self.ahead_width(f))

        observed = self.info.outermost and f.run.observer.active

        info = self.info
        plan = plan_of(self.body)
        inline = info.outermost and not observed and record_limit is None
        single = info.names_slots[0] if len(info.names_slots) == 1 else -1
        keep_start = info.keeps_start  # as page_sync: else the frame holds the same values when it fails
        tape_on = f.run.tape is not None
        open_keys = f.run.open_keys
        identity = info.identity or ""  # set on an outermost loop
        deadline = RECORD_DEADLINE.get()  # not set for this loop's records (each task's own): one the loop is under

        async def iteration(item: Any, out: list[Any], index: int, before: asyncio.Task[None] | None) -> None:
            nonlocal stopped
            if tape_on:
                set_draw_place(index)  # this task's own context: now(), uuid() are this record's in a replay
            frame = Frame(list(f.slots), f.parent, f.run, held(out), ahead)
            try:
                if before is not None and not before.done():
                    await after_same_key(before, gate, ahead, frame)
                if inline:  # one_async's outermost iteration, the body's statements run from here:
                    # each coroutine level costs every await of a request
                    start = info.start(frame, alone=False) if keep_start else None
                    try:
                        if single >= 0 and type(item) is not BadRecord:  # what set_vars does for one name
                            frame.slots[single] = item
                        else:
                            set_vars(frame.slots, info.names_slots, item, self.where)
                        for is_async, fn in plan:
                            if is_async:
                                await fn(frame)
                            else:
                                fn(frame)
                    except SkipSignal:
                        counter.skipped += 1
                    except (StopSignal, NeedsMaterialization, asyncio.CancelledError):
                        raise
                    except Exception as e:
                        self.failed(frame, item, e, start, index + 1)
                    else:
                        if open_keys.get(identity):  # what succeeded looks at first
                            self.succeeded(frame, item)
                elif observed:
                    await self.one_observed(frame, item, index, record_limit)
                elif record_limit is None:
                    await self.one_async(frame, item, index + 1)
                else:
                    await self.one_timed(frame, item, record_limit, index + 1)
            except StopSignal:
                stopped = True
            finally:
                try:
                    if ahead is not None:
                        ahead.iteration_done(frame)
                finally:
                    gate.release()

        def drain_done() -> None:
            nonlocal drained
            while pending and pending[0][0].done():
                task, out, key, item, index = pending.popleft()
                if key is not None and keyed.get(key) is task:
                    del keyed[key]
                task.result()
                try:
                    for value, line in out:
                        f.out(value, line)
                except FlowRuntimeError as e:  # the output cannot be taken (stdout cannot be written): the
                    self.output_failed(f, item, e, index + 1)  # record is kept, as an unbatched loop keeps it
                drained += 1
            if progress is not None:
                progress.done(drained)

        failure = PageFailure()
        try:
            if limit is not None and limit <= 0:
                raise StopSignal()
            async with contextlib.aclosing(failure.pages(self.pages(source, progress))) as pages:
                async for page in pages:
                    if ahead is not None:  # the page's records fill what waits; an empty page brings none
                        ahead.pulling = False
                        if not page and ahead.stalled():
                            ahead.kick(f)
                    if graceful:
                        f.run.flush_writes()  # once a page: a file's records reach it
                    if not page:
                        drain_done()
                    for item in page:
                        if stop.hard or deadline is not None:  # what check_time looks at
                            check_time(stop)
                        if stopped or (graceful and stop.requested):
                            raise StopSignal()
                        if not gate.take_now():
                            await take_slot(gate, ahead)
                        if stopped or (graceful and stop.requested):
                            gate.release()
                            raise StopSignal()
                        count += 1
                        counter.read += 1  # counted as taken, so a progress display sees it move
                        out: list[Any] = []
                        if ahead is not None:
                            ahead.active += 1
                        key = same_key(f, item, self.where) if same_key is not None else None
                        task = loop.create_task(iteration(item, out, count - 1,
                                                          keyed.get(key) if key is not None else None))
                        if key is not None:
                            keyed[key] = task
                        pending.append((task, out, key, item, count - 1))
                        drain_done()
                        while len(pending) > queued:  # bound the results waiting for a slow first one
                            await asyncio.wait([pending[0][0]])
                            drain_done()
                        if limit is not None and count >= limit:  # N taken: no further page is fetched
                            raise StopSignal()
                    if ahead is not None:
                        ahead.pulling = True
        except StopSignal:
            pass
        except BaseException:
            self.info.abandon(f)
            await cancel_all(pending)
            raise
        if ahead is not None:  # the stream ended (or the loop stopped): no page will fill what waits
            ahead.pulled(f)
        try:
            while pending:
                await asyncio.wait([pending[0][0]])
                drain_done()
            await self.info.flush(f)
        except BaseException:
            self.info.abandon(f)
            await cancel_all(pending)
            raise
        if graceful:
            f.run.flush_writes()
        if failure.error is not None:  # the records taken are done and checkpointed: now the run fails
            raise failure.error
        self.ended(f, progress, drained)
        if graceful:
            f.run.check_stop()


    # ---- a body that ends with a batched send ------------------------------------------------
    async def run_tail(self, f: Frame) -> None:
        """An outermost loop whose body is statements that do no I/O and then a batched send: each
        iteration runs up to the send without a task of its own and leaves its records in the buffer,
        and the loop goes on while up to 2N iterations wait for answers (the next batch is collected
        while one is written). An iteration ends when its answer arrives, in order: it fails (a record
        refused) or succeeds, and its outputs go out then, as in run_parallel."""
        run = f.run
        if run.observer.active or run.limits.max_record_seconds is not None:
            await self.run_parallel(f)  # telemetry spans and deadlines per iteration need a task each
            return
        assert self.tail is not None
        prefix, send_step, tail = self.tail
        width = self.width(f)
        begun = self.begin(f)
        if begun is None:
            return
        source, progress = begun
        self.note_total(f, source)
        info = self.info
        counter = run.stats.at(info.line, "for each")
        limit = run.limit
        stop = run.stop
        pending: deque[tuple[Waiting, Frame, Any, list[Any], int]] = deque()
        drained = 0
        count = 0
        stopped = False
        run_prefix, enqueue, refusal = prefix.run, tail.enqueue, tail.refusal
        names_slots, where = info.names_slots, self.where
        # the loop's enclosing variables are read-only (a batch loop's rule), so the scope at the start of
        # every iteration is the loop's own: taken once, saved with a record that fails
        start = info.start(f, alone=False)
        # a body that is only the send: one frame serves every iteration (it runs nothing but the send,
        # which reads the record when it is enqueued) and nothing is emitted
        shared = Frame(list(f.slots), f.parent, run, f.out) if prefix is NOTHING else None
        nothing_out: list[Any] = []

        open_keys, identity = run.open_keys, info.identity

        def land() -> None:
            """The iterations whose answers arrived, in order: each fails or succeeds, its outputs go out.
            Answers arrive only while the loop awaits, so it runs after each wait (and once a page). The
            checkpoint moves with what landed: it returned at the first record still waiting before it
            told the checkpoint, so a batched loop wrote none before its end, and a --resume after a
            kill sent every record again."""
            nonlocal drained
            batch: Any = None  # the batch answer last read, and its outcomes
            outcomes: list[Any] = []
            while pending:
                waiting, frame, item, out, index = pending[0]
                error: FlowRuntimeError | None = None
                if isinstance(waiting, tuple):  # one record's answer: its batch's future and its place in it
                    future, place = waiting
                    if future is not batch:
                        if not future.done():
                            break
                        batch, outcomes = future, future.result()
                    outcome = outcomes[place]
                    if not outcome.ok:
                        error = refusal([outcome])
                elif isinstance(waiting, list):
                    if waiting and not waiting[-1][0].done():  # batches are answered in order: the last is enough
                        break
                    error = refusal([outcome_of(a) for a in waiting])
                elif waiting is not None:  # a stream, sent by the send's own step
                    if not waiting.done():
                        break
                    problem = waiting.exception()
                    if problem is not None:
                        error = problem if isinstance(problem, FlowRuntimeError) else unexpected(problem)
                pending.popleft()
                if waiting is not None:
                    if error is not None:
                        self.fail(frame, item, error, start, index)
                        if error.ends_run:
                            raise error
                    elif open_keys.get(identity):  # type: ignore[arg-type]
                        self.succeeded(frame, item)
                try:
                    for value, line in out:
                        f.out(value, line)
                except FlowRuntimeError as e:  # the output cannot be taken: the record is kept
                    self.fail(frame, item, e, start, index)
                drained += 1
            if progress is not None:
                progress.done(drained)

        async def first_answered() -> None:
            waiting = pending[0][0]
            future: asyncio.Future[Any] | None
            if isinstance(waiting, list):
                future = waiting[-1][0] if waiting else None
            elif isinstance(waiting, tuple):
                future = waiting[0]
            else:
                future = waiting
            if future is not None and not future.done():
                await asyncio.wait([future])

        failure = PageFailure()
        try:
            if limit is not None and limit <= 0:
                raise StopSignal()
            async with contextlib.aclosing(failure.pages(self.pages(source, progress))) as pages:
                async for page in pages:
                    run.flush_writes()  # once a page: a file's records reach it
                    for item in page:
                        check_time(stop)
                        if stopped or stop.requested:  # records in flight are answered first
                            raise StopSignal()
                        count += 1
                        counter.read += 1
                        if shared is None:
                            out: list[Any] = []
                            frame = Frame(list(f.slots), f.parent, run, held(out))
                        else:
                            out, frame = nothing_out, shared
                        waiting: Waiting = None
                        try:
                            set_vars(frame.slots, names_slots, item, where)
                            run_prefix(frame)
                            waiting = enqueue(frame)
                            if waiting is None:
                                waiting = asyncio.ensure_future(send_step.run(frame))
                        except SkipSignal:
                            counter.skipped += 1
                        except StopSignal:
                            stopped = True
                        except NeedsMaterialization:
                            raise
                        except FlowRuntimeError as e:
                            self.fail(frame, item, e, start, count)
                        except Exception as e:
                            self.fail(frame, item, internal_error(e), start, count)
                        pending.append((waiting, frame, item, out, count))
                        while len(pending) > width:
                            info.kick(f)
                            await first_answered()
                            land()
                        if limit is not None and count >= limit:
                            raise StopSignal()
                    land()  # what waits is sent when its batch is full or the loop ends: the next page fills it
        except StopSignal:
            pass
        except BaseException:
            info.abandon(f)
            await cancel_waiting(pending)
            raise
        try:
            await info.flush(f)
            while pending:
                await first_answered()
                land()
        except BaseException:
            info.abandon(f)
            await cancel_waiting(pending)
            raise
        run.flush_writes()
        if failure.error is not None:  # the records taken are sent and checkpointed: now the run fails
            raise failure.error
        self.ended(f, progress, drained)
        run.check_stop()


def held(out: list[tuple[Any, int]]) -> Out:
    """The out of an iteration that runs ahead: its outputs wait in `out` with the lines of their emits, and
    are counted when they go out in its turn (dropped with a failed outermost record, they never are)."""
    add = out.append

    def hold(value: Any, line: int) -> None:
        add((value, line))
    return hold


async def take_slot(gate: Slots, ahead: RunAhead | None) -> None:
    """Wait for a `parallel` slot. Meanwhile the loop is not stalled: an iteration that waits for its
    batch gives its slot back right after it looks (batching.RunAhead.taking). Without `parallel` a
    waiting iteration keeps its slot, so the loop waiting for one may be stalled."""
    if ahead is None or ahead.gate is not gate:
        await gate.take()
        return
    ahead.taking = True
    try:
        await gate.take()
    finally:
        ahead.taking = False


async def cancel_waiting(pending: deque[tuple[Any, ...]]) -> None:
    """Cancel the sends of streams still running and wait for them (no task is left behind)."""
    tasks = [entry[0] for entry in pending if isinstance(entry[0], asyncio.Task)]
    pending.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def after_same_key(before: asyncio.Task[None], gate: Slots, ahead: RunAhead | None, frame: Frame) -> None:
    """Wait for the iteration of the same key started before this one, without this iteration's
    `parallel` slot meanwhile, and not counted as live by a loop filling batches (the one before may
    wait for its batch: a loop where every other iteration waits sends what its buffers hold)."""
    if ahead is not None:
        ahead.active -= 1
        if ahead.stalled():
            ahead.kick(frame)
    gate.release()
    try:
        await asyncio.wait([before])
        if not gate.take_now():
            await gate.take()
    except BaseException:  # cut off: the iteration's own release balances the slot
        gate.owe()
        raise
    finally:
        if ahead is not None:
            ahead.active += 1


async def cancel_all(pending: deque[tuple[asyncio.Task[None], list[Any], Any, Any, int]]) -> None:
    """Cancel the iterations still running and wait for them (no task is left behind)."""
    tasks = [entry[0] for entry in pending]
    pending.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class LoopEntry:
    """A loop that `flowlang retry` can re-enter: its body, and the names its failures saved."""

    loop: LoopCompiler

    @property
    def info(self) -> LoopInfo:
        return self.loop.info


def loop_identity(node: ast.ForEach, text: str, place: int) -> str:
    """What identifies an outermost loop across edits (OPERATIONS.md 3): its variables, the text of its
    list expression (spaces collapsed) and its place among the outermost loops: `o in orders #1`."""
    listed = " ".join(text[node.iterable.span.start:node.iterable.span.end].split())
    return f"{', '.join(node.names)} in {listed} #{place}"


def loop_stem(identity: str) -> str:
    """An identity without its place: the loop's variables and list, `o in orders`."""
    return identity.rsplit(" #", 1)[0]


def same_loops(loops: dict[str, LoopEntry], identity: str) -> list[LoopEntry]:
    """The outermost loops with the variables and list of `identity`, in their order."""
    stem = loop_stem(identity)
    return [entry for name, entry in loops.items() if loop_stem(name) == stem]


def find_loop(loops: dict[str, LoopEntry], identity: str | None, nth: int | None = None,
              count: int | None = None) -> LoopEntry | None:
    """The loop an error belongs to. With `nth` (its place among the loops of the same variables and list
    expression, kept with errors since it was added): that one, wherever other loops were added or taken
    away; but when `count`, how many such loops the flow had then, is not how many it has now (one over
    the same list was added or taken away), which one it is cannot be told: None. Without `nth` (an error
    stored before): the same identity, else the only loop with the same variables and list expression (it
    moved among the loops). None when the loop itself changed."""
    if identity is None:
        return None
    same = same_loops(loops, identity)
    if nth is not None:
        if count is not None and count != len(same):
            return None
        return same[nth - 1] if 0 < nth <= len(same) else None
    found = loops.get(identity)
    if found is not None:
        return found
    return same[0] if len(same) == 1 else None


# an open error's loop: (identity, nth, count) then, and now
Move = tuple[tuple[str, int | None, int | None], tuple[str, int | None, int | None]]


def moved_errors(loops: dict[str, LoopEntry], stored: list[tuple[str, int | None, int | None]]) -> list[Move]:
    """The loops of open errors (identity, nth) that an edit moved: each (from, to) with the loop's
    identity and nth now, so that a later success of a key resolves its error and a new failure of it
    replaces the error, as before the edit (OPERATIONS.md 2, 3)."""
    moves = []
    for identity, nth, count in stored:
        entry = find_loop(loops, identity, nth, count)
        if entry is not None and entry.info.identity is not None and \
                (entry.info.identity, entry.info.nth, entry.info.same) != (identity, nth, count):
            moves.append(((identity, nth, count), (entry.info.identity, entry.info.nth, entry.info.same)))
    return moves


class ForEachCompiler(IoCompiler):
    """Compiles `for each`: a job's loop at the top of a module or in an `if`/`try` (error isolation,
    parallel, retry entries), or a plain loop inside a function body."""

    loop_entries: dict[str, LoopEntry]  # of the module being compiled, by loop identity
    in_function = False
    outermost_loops = 0  # how many outermost loops were compiled so far: the next one's place

    def kept_at_iteration_start(self) -> frozenset[int]:
        if not self.loop_stack or self.in_function:
            return frozenset()
        return frozenset(slot for _, slot in self.loop_stack[0].assigned)

    def kept_position(self, slot: int) -> int | None:
        if slot not in self.kept_at_iteration_start():
            return None
        slots = [visible for _, visible in self.loop_stack[0].visible]
        return slots.index(slot) if slot in slots else None

    def watched_loop(self) -> LoopInfo | None:
        return self.loop_stack[-1] if self.loop_stack and not self.in_function else None

    def s_ForEach(self, node: ast.ForEach) -> Step:
        res = self.checked.resolution
        slots = tuple(res.slots[(node, i)] for i in range(len(node.names)))
        iterable = self.expr(node.iterable)
        where = self.where(node.iterable.span)
        if self.in_function:
            return sync_loop(node, slots, iterable, self.body(node.body), where)
        line, col = self.checked.source.line_col(node.span.start)
        identity = None
        nth = None
        if not self.loop_stack:
            self.outermost_loops += 1
            identity = loop_identity(node, self.checked.source.text, self.outermost_loops)
            nth = 1 + sum(1 for name in self.loop_entries if loop_stem(name) == loop_stem(identity))
        read_slots, read_names = reads((node.body, node.key), self.checked) if identity else (set(), set())
        named = globals_named((node.body, node.key), self.checked, RUN_GLOBALS) if identity else set()
        read = frozenset(read_slots - set(slots)) if identity else None
        visible = res.loop_scopes.get(node, ())
        assigned: tuple[tuple[str, int], ...] = ()
        if identity is not None:
            changed = assigned_slots(node, res.slots, res.refs) - set(slots)
            assigned = tuple((name, slot) for name, slot in visible if slot in changed)
        text = self.checked.source.text
        info = LoopInfo(f"{line}:{col}", line, self.checked.source.location(node.span), slots,
                        visible, identity=identity,
                        key=self.repeated_expr(node.key) if node.key is not None else None,
                        key_written=text[node.key.span.start:node.key.span.end] if node.key is not None else None,
                        read=read,
                        assigned=assigned, names=tuple(node.names),
                        reads_state="state" in named, writes_state=WRITES_STATE in read_names,
                        keeps_input="input" in named, nth=nth, can_stop=stops(node.body),
                        listed=" ".join(text[node.iterable.span.start:node.iterable.span.end].split()))
        self.loop_stack.append(info)
        outer = self.branch_depth, self.reach
        self.branch_depth, self.reach = 0, None  # its body's statements, as its own records reach them
        try:
            stmts = [s for s in node.body if not isinstance(s, DECLARATIONS)]
            steps = self.steps(stmts)
        finally:
            self.loop_stack.pop()
            self.branch_depth, self.reach = outer
        body = block(steps)
        tail = None
        last = stmts[-1] if stmts else None
        if identity is not None and node.parallel is None and isinstance(last, ast.Send) and \
                last in info.tail_sends and len(info.batch_sizes) == 1 and not any(s.is_async for s in steps[:-1]):
            tail = (block(steps[:-1]), steps[-1], info.tail_sends[last])
        parallel = None
        if node.parallel is not None:
            value = node.parallel.value
            parallel = (lambda f: value) if isinstance(value, int) else self.read_ref(
                self.checked.resolution.refs.get(node.parallel), ast.Name(value, node.parallel.span))
        loop = LoopCompiler(node, info, iterable, body, where, parallel, tail)
        if identity is not None:
            self.loop_entries[identity] = LoopEntry(loop)
        return loop.step()


def stops(body: tuple[ast.Stmt, ...]) -> bool:
    """Whether a loop's body has a `stop` that leaves it: one of an inner loop leaves that loop."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif isinstance(item, ast.Stop):
            return True
        elif isinstance(item, ast.Node) and not isinstance(item, ast.ForEach | ast.Function):
            stack.extend(getattr(item, name) for name in ast.fields(item))
    return False


def sync_loop(node: ast.ForEach, slots: tuple[int, ...], iterable: Eval, body: Step, where: Where) -> Step:
    """A loop inside a function: no I/O, and errors go to the caller."""
    pairs = len(node.names) == 2

    def loop(f: Frame) -> None:
        try:
            stop = f.run.stop
            for item in iterate(iterable(f), pairs, where):
                check_time(stop)
                set_vars(f.slots, slots, item, where)
                try:
                    body.run(f)
                except SkipSignal:
                    continue
        except StopSignal:
            return

    return Step.sync(loop)
