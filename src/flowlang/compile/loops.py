"""`for each`: its compilation (ForEachCompiler.s_ForEach), sequential and parallel loops, error isolation
per record, --limit, the flush of batched sends when a loop ends, and the loop entries `flowlang retry`
re-enters."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from flowlang import ast
from flowlang.compile.errors import Where
from flowlang.compile.expressions import iterate
from flowlang.compile.io import IoCompiler
from flowlang.compile.steps import Eval, Step
from flowlang.errors import FlowRuntimeError, LimitError
from flowlang.runtime.frame import Frame, SkipSignal, StopSignal
from flowlang.runtime.operators import NeedsMaterialization
from flowlang.runtime.run import RecordFailure
from flowlang.runtime.values import RecordStream, Secret, type_name

log = logging.getLogger("flowlang.loops")
STORABLE = (type(None), bool, int, str, list, dict, Secret)


@dataclass
class LoopInfo:
    """What a loop knows about itself: identity for the error store, and its batched sends."""

    loop_id: str  # "line:col"
    line: int
    location: str
    names_slots: tuple[int, ...]
    visible: tuple[tuple[str, int], ...]
    flushers: list[Callable[[Frame], Awaitable[None]]] = field(default_factory=list)
    outermost: bool = False  # not inside another loop: its records are the run's unit of work

    def snapshot(self, f: Frame) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, slot in self.visible:
            value = f.slots[slot] if slot < len(f.slots) else None
            if isinstance(value, STORABLE) or type(value).__name__ in ("Decimal", "datetime", "date", "timedelta"):
                out[name] = value
        return out

    def record_of(self, item: Any) -> Any:
        return item

    def failure(self, f: Frame, item: Any, err: FlowRuntimeError) -> RecordFailure:
        return RecordFailure(
            flow=f.run.flow, loop=self.loop_id, location=err.location or self.location, line=err.line,
            message=err.message, kind=err.kind, status=err.status, record=self.record_of(item),
            scope=self.snapshot(f),
        )

    async def flush(self, f: Frame) -> None:
        for flush in self.flushers:
            await flush(f)


def internal_error(err: Exception) -> FlowRuntimeError:
    log.debug("internal error in an iteration", exc_info=err)
    return FlowRuntimeError(f"internal error ({type(err).__name__}: {err}); please report it", "internal")


def set_vars(s: list[Any], slots: tuple[int, ...], item: Any, where: Where) -> None:
    if len(slots) == 1:
        s[slots[0]] = item
        return
    if type(item) is list and len(item) == 2:
        s[slots[0]], s[slots[1]] = item
        return
    raise where.error(f"two loop variables need [key, value] pairs or an object, got {type_name(item)}")


async def items_of(value: Any, pairs: bool, where: Where) -> AsyncIterator[list[Any]]:
    """The loop's items, a page at a time (record streams are read lazily)."""
    if type(value) is RecordStream:
        async for page in value.pages():
            yield page
        return
    if type(value) is list:
        yield value  # pairs are checked item by item, so a bad item fails alone
        return
    yield iterate(value, pairs, where)


class LoopCompiler:
    """Builds the Step of one `for each` (used by ModuleCompiler)."""

    def __init__(self, node: ast.ForEach, info: LoopInfo, iterable: Eval, body: Step, where: Where,
                 parallel: Eval | None) -> None:
        self.node = node
        self.info = info
        self.iterable = iterable
        self.body = body
        self.where = where
        self.parallel = parallel
        self.pairs = len(node.names) == 2

    def step(self) -> Step:
        if self.parallel is not None:
            return Step.coroutine(self.run_parallel)
        return Step.coroutine(self.run_sequential)

    # ---- one iteration ----------------------------------------------------------------------
    def fail(self, f: Frame, item: Any, err: FlowRuntimeError) -> None:
        f.run.stats.at(self.info.line, "for each").failed += 1
        f.run.record_failure(self.info.failure(f, item, err))

    def one_sync(self, f: Frame, item: Any) -> None:
        try:
            set_vars(f.slots, self.info.names_slots, item, self.where)
            self.body.run(f)
        except SkipSignal:
            f.run.stats.at(self.info.line, "for each").skipped += 1
        except (StopSignal, NeedsMaterialization):
            raise
        except FlowRuntimeError as e:
            self.fail(f, item, e)
        except Exception as e:  # a bug must not lose the record: it is kept like any failure
            self.fail(f, item, internal_error(e))

    async def one_async(self, f: Frame, item: Any) -> None:
        try:
            set_vars(f.slots, self.info.names_slots, item, self.where)
            if self.body.is_async:
                await self.body.run(f)
            else:
                self.body.run(f)
        except SkipSignal:
            f.run.stats.at(self.info.line, "for each").skipped += 1
        except (StopSignal, NeedsMaterialization, asyncio.CancelledError):
            raise
        except FlowRuntimeError as e:
            self.fail(f, item, e)
        except Exception as e:
            self.fail(f, item, internal_error(e))

    # ---- sequential ---------------------------------------------------------------------------
    def note_total(self, f: Frame, source: Any) -> None:
        """The outermost loop over a list says how many records the run will take (progress, ETA)."""
        if self.info.outermost and type(source) is list:
            limit = f.run.limit
            f.run.stats.total = len(source) if limit is None else min(limit, len(source))

    async def run_sequential(self, f: Frame) -> None:
        source = self.iterable(f)
        self.note_total(f, source)
        counter = f.run.stats.at(self.info.line, "for each")
        limit = f.run.limit
        count = 0
        one_sync = self.one_sync if not self.body.is_async else None
        stop = f.run.stop
        record_limit = f.run.limits.max_record_seconds
        try:
            async for page in items_of(source, self.pairs, self.where):
                for item in page:
                    if (limit is not None and count >= limit) or stop.requested:
                        raise StopSignal()
                    count += 1
                    counter.read += 1  # counted as taken, so a progress display sees it move
                    if one_sync is not None:
                        one_sync(f, item)
                    elif record_limit is None:
                        await self.one_async(f, item)
                    else:
                        await self.one_timed(f, item, record_limit)
        except StopSignal:
            pass
        await self.info.flush(f)
        f.run.check_stop()

    async def one_timed(self, f: Frame, item: Any, seconds: float) -> None:
        """One iteration under max_record_seconds: a record that takes longer fails alone."""
        try:
            await asyncio.wait_for(self.one_async(f, item), seconds)
        except TimeoutError:
            self.fail(f, item, LimitError(f"the record took longer than {seconds:g}s (max_record_seconds)",
                                          source=self.where.source, span=self.where.span))

    # ---- parallel ----------------------------------------------------------------------------
    def width(self, f: Frame) -> int:
        assert self.parallel is not None
        n = self.parallel(f)
        if type(n) is not int or n < 1:
            raise self.where.error(f"parallel needs a whole number of at least 1, got {n!r}", "value")
        return n

    async def run_parallel(self, f: Frame) -> None:
        width = self.width(f)
        source = self.iterable(f)
        self.note_total(f, source)
        counter = f.run.stats.at(self.info.line, "for each")
        limit = f.run.limit
        gate = asyncio.Semaphore(width)
        pending: deque[tuple[asyncio.Task[None], list[Any]]] = deque()
        stopped = False
        count = 0

        record_limit = f.run.limits.max_record_seconds
        stop = f.run.stop

        async def iteration(item: Any, out: list[Any]) -> None:
            nonlocal stopped
            frame = Frame(list(f.slots), f.parent, f.run, out.append)
            try:
                if record_limit is None:
                    await self.one_async(frame, item)
                else:
                    await self.one_timed(frame, item, record_limit)
            except StopSignal:
                stopped = True
            finally:
                gate.release()

        def drain_done() -> None:
            while pending and pending[0][0].done():
                task, out = pending.popleft()
                task.result()
                for value in out:
                    f.out(value)

        try:
            async for page in items_of(source, self.pairs, self.where):
                for item in page:
                    if stopped or stop.requested or (limit is not None and count >= limit):
                        raise StopSignal()
                    await gate.acquire()
                    if stopped or stop.requested:
                        gate.release()
                        raise StopSignal()
                    count += 1
                    counter.read += 1  # counted as taken, so a progress display sees it move
                    out: list[Any] = []
                    pending.append((asyncio.ensure_future(iteration(item, out)), out))
                    drain_done()
                    while len(pending) > width * 4:  # bound the results waiting for a slow first one
                        await asyncio.wait([pending[0][0]])
                        drain_done()
        except StopSignal:
            pass
        except BaseException:
            for task, _ in pending:
                task.cancel()
            raise
        while pending:
            await asyncio.wait([pending[0][0]])
            drain_done()
        await self.info.flush(f)
        f.run.check_stop()


@dataclass
class LoopEntry:
    """A loop that `flowlang retry` can re-enter: its body, and the names its failures saved."""

    loop: LoopCompiler

    @property
    def info(self) -> LoopInfo:
        return self.loop.info


class ForEachCompiler(IoCompiler):
    """Compiles `for each`: a job's loop at the top of a module or in an `if`/`try` (error isolation,
    parallel, retry entries), or a plain loop inside a function body."""

    loop_entries: dict[str, LoopEntry]  # of the module being compiled, by "line:col"
    in_function = False

    def s_ForEach(self, node: ast.ForEach) -> Step:
        res = self.checked.resolution
        slots = tuple(res.slots[(node, i)] for i in range(len(node.names)))
        iterable = self.expr(node.iterable)
        where = self.where(node.iterable.span)
        if self.in_function:
            return sync_loop(node, slots, iterable, self.body(node.body), where)
        line, col = self.checked.source.line_col(node.span.start)
        info = LoopInfo(f"{line}:{col}", line, self.checked.source.location(node.span), slots,
                        res.loop_scopes.get(node, ()), outermost=not self.loop_stack)
        self.loop_stack.append(info)
        try:
            body = self.body(node.body)
        finally:
            self.loop_stack.pop()
        parallel = None
        if node.parallel is not None:
            value = node.parallel.value
            parallel = (lambda f: value) if isinstance(value, int) else self.read_ref(
                self.checked.resolution.refs.get(node.parallel), ast.Name(value, node.parallel.span))
        loop = LoopCompiler(node, info, iterable, body, where, parallel)
        self.loop_entries[info.loop_id] = LoopEntry(loop)
        return loop.step()


def sync_loop(node: ast.ForEach, slots: tuple[int, ...], iterable: Eval, body: Step, where: Where) -> Step:
    """A loop inside a function: no I/O, and errors go to the caller."""
    pairs = len(node.names) == 2

    def loop(f: Frame) -> None:
        try:
            for item in iterate(iterable(f), pairs, where):
                set_vars(f.slots, slots, item, where)
                try:
                    body.run(f)
                except SkipSignal:
                    continue
        except StopSignal:
            return

    return Step.sync(loop)
