"""Statements that reach outside the flow: use, call, lookup, send (with batches), import, run."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flowlang import ast
from flowlang.check.scopes import HostBinding, Local, Outer
from flowlang.compile.batching import Answer, BatchBuffer, TailSend, abandon, answered, flush, start_flush
from flowlang.compile.errors import Where
from flowlang.compile.ledger_send import (
    KeyBy,
    already_sent,
    in_flight_place,
    ledger_send,
    may_have_arrived,
    needs_key,
    record_key,
    replayed_file_key,
    wait_in_flight,
)
from flowlang.compile.statements import StatementCompiler
from flowlang.compile.steps import Eval, Step, run_step
from flowlang.connectors.base import Connection, SendOutcome
from flowlang.errors import FlowRuntimeError, HttpError
from flowlang.runtime.frame import Frame
from flowlang.runtime.jsoncodec import dumps_stored
from flowlang.runtime.keys import ledger_keys
from flowlang.runtime.ledger import ledger_operation, payload_hash
from flowlang.runtime.limits import RECORD_WRITES, noted_write
from flowlang.runtime.stats import count_sent
from flowlang.runtime.values import RecordStream, shown_number, type_name

if TYPE_CHECKING:
    from flowlang.compile.loops import LoopInfo


def connection_getter(ref: Any, name: str, where: Where) -> Callable[[Frame], Connection]:
    if isinstance(ref, HostBinding):
        def host(f: Frame) -> Connection:
            conn: Connection | None = f.run.bindings.get(name)
            if conn is None:
                raise where.error(f"no host binding named '{name}' was given", "name")
            return conn
        return host
    if isinstance(ref, Local):
        slot = ref.slot
        return lambda f: f.slots[slot]
    assert isinstance(ref, Outer)
    outer = ref.slot
    return lambda f: f.parent.slots[outer]  # type: ignore[union-attr]


def plain_copy(value: Any) -> Any:
    """A copy of a looked-up value's objects and lists (a flow that assigns into its copy leaves the
    cached value alone); everything else in a value is immutable and shared."""
    t = type(value)
    if t is dict:  # copied whole, then its objects and lists copied in turn (no comprehension's call)
        copy = value.copy()
        for k, v in copy.items():
            if type(v) in CONTAINERS:
                copy[k] = plain_copy(v)  # a value replaced, no key added: the walk goes on
        return copy
    if t is list:
        return [plain_copy(v) if type(v) in CONTAINERS else v for v in value]
    return value


CONTAINERS = frozenset({dict, list})
KEYS_ITSELF = frozenset({str, int, type(None)})  # values that are their own cache_key
MISSING = object()


def cache_key(value: Any) -> Any:
    """A lookup's arguments as a hashable key that tells apart exactly what their stored JSON would
    (1, true, "1" and 1.0 are four keys; objects keep their order), without writing the JSON: text
    and whole numbers stand for themselves, an object is one tuple led by its type and then its keys
    and values in turn, a list a tuple led by its type, anything else its type and stored form."""
    t = type(value)
    if t is str or t is int or value is None:
        return value
    if t is dict:  # a text or whole number stands for itself here too, without a call
        if len(value) == 1:  # `query: {id: i}`: without a loop
            (k, v), = value.items()
            if type(v) is dict and len(v) == 1:  # the options of a lookup, `{query: {id: i}}`: without a call
                (k2, v2), = v.items()
                return (dict, k, (dict, k2, v2 if type(v2) in KEYS_ITSELF else cache_key(v2)))
            return (dict, k, v if type(v) in KEYS_ITSELF else cache_key(v))
        parts: list[Any] = [dict]
        for k, v in value.items():
            parts.append(k)
            parts.append(v if type(v) in KEYS_ITSELF else cache_key(v))
        return tuple(parts)
    if t is list:
        return (list, *[v if type(v) in KEYS_ITSELF else cache_key(v) for v in value])
    if t is Decimal:
        return (Decimal, str(value))
    return (t, dumps_stored(value))


def evaluated(kwargs: dict[str, Eval], f: Frame) -> dict[str, Any]:
    """Keyword arguments' values (here, not in the step: a comprehension there would make its frame
    variable a cell at every call)."""
    return {k: v(f) for k, v in kwargs.items()}


class IoCompiler(StatementCompiler):
    """Compiles use, call, lookup, send, import and run (async steps)."""

    loop_stack: list[LoopInfo]
    in_function: bool

    def operation_parts(self, op: ast.Operation) -> tuple[Callable[[Frame], Connection], list[Eval], dict[str, Eval]]:
        ref = self.checked.resolution.refs[op]
        getter = connection_getter(ref, op.connection, self.where(op.connection_span))
        spec = self.checked.resolution.op_specs.get(op)
        args = [self.expr(a) for a in op.args]
        if spec is not None and spec.encode_interpolated is not None and op.args and \
                isinstance(op.args[0], ast.Interpolated):
            args[0] = self.encoded_interpolation(op.args[0], spec.encode_interpolated)
        kwargs = {k.name: self.expr(k.value) for k in op.kwargs}
        return getter, args, kwargs

    def encoded_interpolation(self, node: ast.Interpolated, encode: Callable[[Any], str]) -> Eval:
        """A double-quoted first argument whose values the connector writes its own way (an http path:
        one percent-encoded segment each; the rule is the connector's, see OperationSpec)."""
        parts: list[tuple[bool, Any]] = [
            (True, p) if isinstance(p, str) else (False, self.expr(p)) for p in node.parts]
        where = self.where(node.span)

        def encoded(f: Frame) -> str:
            try:
                return "".join(part if const else encode(part(f)) for const, part in parts)
            except FlowRuntimeError as e:  # a value the connector cannot write (bytes): at the path, not nowhere
                raise where.locate(e) from None
        return encoded

    def located_call(self, where: Where, coro: Awaitable[Any]) -> Awaitable[Any]:
        async def run() -> Any:
            try:
                return await coro
            except FlowRuntimeError as e:
                raise where.locate(e) from None
        return run()

    # ---- use ----------------------------------------------------------------------------------
    def s_Use(self, node: ast.Use) -> Step:
        spec = self.checked.specs[node]
        config = {k.name: self.expr(k.value) for k in node.kwargs}
        slot = self.checked.resolution.slots[(node, 0)]
        where = self.where(node.span)
        at_value = {k.name: self.where(k.value.span) for k in node.kwargs}
        name = node.name

        async def use(f: Frame) -> None:
            run = f.run
            replaced = run.bindings.get(name)
            if replaced is not None:  # a host binding of the same name stands in (tests, fakes)
                run.log("info", f"the host binding '{name}' replaces `use {name} = {spec.name}(...)`")
                f.slots[slot] = replaced
                return

            async def open_real() -> Connection:  # a replay opens nothing, so reads no configuration
                return await spec.open(name, {k: v(f) for k, v in config.items()}, run)
            try:
                conn = await (open_real() if run.tape is None else run.tape.connection(name, spec, open_real))
            except FlowRuntimeError as e:
                raise (value_place(e.message, at_value) or where).locate(e) from None
            run.connections.append(conn)
            f.slots[slot] = conn
        return Step.coroutine(use)

    # ---- call ----------------------------------------------------------------------------------
    def s_CallStmt(self, node: ast.CallStmt) -> Step:
        getter, args, kwargs = self.operation_parts(node.operation)
        op = node.operation.op
        store = self.assigner(node, self.where(node.span)) if node.as_name else None
        materialize = node in self.checked.resolution.materialize
        where = self.where(node.operation.span)
        line = self.line(node)

        async def call(f: Frame) -> None:
            conn = getter(f)
            a = [x(f) for x in args]
            kw = {k: v(f) for k, v in kwargs.items()}
            try:
                result = await conn.invoke(op, a, kw)
                if materialize and type(result) is RecordStream:
                    result = await result.materialize()
            except FlowRuntimeError as e:
                raise where.locate(e) from None
            stats = f.run.stats.at(line, "call")
            if type(result) is not RecordStream:  # a stream's records are counted by the loop that reads them
                stats.read += len(result) if type(result) is list else (0 if result is None else 1)
            if store is not None:
                store(f, result)
        return Step.coroutine(call)

    # ---- lookup ---------------------------------------------------------------------------------
    def s_LookupStmt(self, node: ast.LookupStmt) -> Step:
        getter, args, kwargs = self.operation_parts(node.operation)
        op = node.operation.op
        store = self.assigner(node, self.where(node.span))
        where = self.where(node.operation.span)
        line = self.line(node)

        def answered(run: Any, key: Any, value: Any) -> None:
            waiters = run.lookup_inflight.pop(key)
            run.lookup_cache[key] = value
            if waiters is not None:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(value)
            stats = run.stats.per_line.get(line)
            if stats is None:
                stats = run.stats.at(line, "lookup")
            stats.read += 1

        def failed(run: Any, key: Any, e: BaseException) -> None:
            waiters = run.lookup_inflight.pop(key)
            if waiters is None:
                return
            failure = e if isinstance(e, Exception) else asyncio.CancelledError()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(failure)
                    waiter.exception()  # retrieved here: a waiter cancelled meanwhile logs nothing

        first = args[0] if len(args) == 1 else None  # the usual lookup: one argument, its path
        only_name, only = next(iter(kwargs.items())) if len(kwargs) == 1 else ("", None)  # one option (query:)

        ref = self.checked.resolution.refs.get(node.operation)
        conn_slot = ref.slot if isinstance(ref, Local) else -1  # the connection's slot in the frame

        async def lookup(f: Frame) -> None:
            conn = f.slots[conn_slot] if conn_slot >= 0 else getter(f)
            if first is not None:
                a0 = first(f)
                a = [a0]
                # a text, whole number or null stands for itself: never a tuple, as cache_key's lists are
                args_key = a0 if type(a0) in KEYS_ITSELF else cache_key(a)
            else:
                a = [x(f) for x in args]
                args_key = cache_key(a)
            kw = {only_name: only(f)} if only is not None else evaluated(kwargs, f)
            key = (id(conn), op, args_key, cache_key(kw))
            run = f.run
            value = run.lookup_cache.get(key, MISSING)
            if value is None and run.lookup_nulls.get(key) != conn.write_count():
                value = MISSING  # found nothing before a write to the connection since: it may be there now
            if value is MISSING:
                inflight = run.lookup_inflight
                if key in inflight:  # the same lookup is on its way: wait for its answer
                    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                    waiters = inflight[key]
                    if waiters is None:
                        inflight[key] = [future]
                    else:
                        waiters.append(future)
                    value = await future
                else:  # this iteration asks, and answers the ones that ask meanwhile (a future each)
                    inflight[key] = None  # no one else waits yet
                    asked_at = conn.write_count()
                    try:
                        try:
                            value = await conn.invoke(op, a, kw)
                            if type(value) is RecordStream:
                                value = await value.first()
                            elif type(value) is list:
                                value = value[0] if value else None
                        except HttpError as e:
                            if e.status != 404:
                                raise
                            value = None  # a lookup that finds nothing is null
                    except BaseException as e:
                        failed(run, key, e)
                        if isinstance(e, FlowRuntimeError):
                            raise where.locate(e) from None
                        raise
                    if value is None:
                        run.lookup_nulls[key] = asked_at
                    answered(run, key, value)
            store(f, plain_copy(value))
        return Step.coroutine(lookup)

    # ---- send ----------------------------------------------------------------------------------
    def send_op(self, node: ast.Send) -> str:
        """The operation a send runs: the one named, or the connector's default write (`send r to out`)."""
        if node.destination.op:
            return node.destination.op
        spec = self.checked.resolution.op_specs.get(node.destination)
        return spec.name if spec is not None else ""

    def s_Send(self, node: ast.Send) -> Step:
        getter, args, kwargs = self.operation_parts(node.destination)
        value = self.expr(node.value)
        op = self.send_op(node)
        where = self.where(node.destination.span)
        line = self.line(node)
        store = self.assigner(node, self.where(node.span)) if node.as_name else None
        if node.batch is not None:
            return self.batched_send(node, getter, args, kwargs, value, op, where, line, store)
        mode = node.mode
        key_of = self.send_key(node)
        written = self.key_written(node)
        key_by = self.key_by(node)
        outside = not self.loop_stack and not self.in_function  # its failure fails the run: no record to retry

        async def send_one(f: Frame, conn: Connection, record: Any, a: list[Any], kw: dict[str, Any],
                           stats: Any, observer: Any) -> Any:
            if not observer.active:
                if mode is not None:
                    return await ledger_send(f.run, conn, op, record, a, kw, key_of(f), mode, stats, where,
                                             written, outside, key_by)
                result = await conn.send(op, record, a, kw)
                count_sent(stats, 1, conn.sends_read(op))
                return result
            started = time.monotonic()
            try:
                if mode is not None:
                    result = await ledger_send(f.run, conn, op, record, a, kw, key_of(f), mode, stats, where,
                                               written, outside, key_by)
                else:
                    result = await conn.send(op, record, a, kw)
                    count_sent(stats, 1, conn.sends_read(op))
            except FlowRuntimeError:
                observer.send(conn.name, op, False, time.monotonic() - started)
                raise
            observer.send(conn.name, op, True, time.monotonic() - started)
            return result

        async def send(f: Frame) -> None:
            v = value(f)
            conn = getter(f)
            a = [x(f) for x in args] if args else []
            kw = {k: e(f) for k, e in kwargs.items()} if kwargs else {}
            stats = f.run.stats.at(line, "send")
            observer = f.run.observer
            try:
                if type(v) is list or type(v) is RecordStream:
                    results = [await send_one(f, conn, record, a, kw, stats, observer)
                               async for record in records_of(v)]
                    if store is not None:
                        store(f, results)
                    return
                if mode is None and not observer.active:  # the usual send: one record, no generator
                    result = await conn.send(op, v, a, kw)
                    if conn.sends_read(op):
                        stats.read += 1  # a read (a connector file's safe operation), which a dry run makes too
                    else:
                        stats.sent += 1
                else:
                    result = await send_one(f, conn, v, a, kw, stats, observer)
            except FlowRuntimeError as e:
                if mode is None and e.uncertain:
                    e.message += may_have_arrived(conn.name)
                    e.args = (e.message, *e.args[1:])
                raise where.locate(e) from None
            if store is not None:
                store(f, result)

        if mode is not None or not self.never_a_stream(node.value):
            return Step.coroutine(send)

        def sends_now(f: Frame) -> bool:
            try:
                return getter(f).sends_now
            except FlowRuntimeError:
                return False

        ref = self.checked.resolution.refs.get(node.destination)
        conn_slot = ref.slot if isinstance(ref, Local) else -1  # the connection's slot in the frame

        def send_now(f: Frame) -> None:
            """The same send to a connection whose writes never wait (a file), without awaiting."""
            v = value(f)
            run = f.run
            if type(v) is not list and not run.observer.active:  # the usual send: one record, nobody watching
                conn = f.slots[conn_slot] if conn_slot >= 0 else getter(f)
                a = [x(f) for x in args] if args else []
                kw = {k: e(f) for k, e in kwargs.items()} if kwargs else {}
                try:
                    result = conn.send_now(op, v, a, kw)
                except FlowRuntimeError as e:
                    raise where.locate(e) from None
                stats = run.stats.per_line.get(line)
                if stats is None:
                    stats = run.stats.at(line, "send")
                stats.sent += 1
                if store is not None:
                    store(f, result)
                return
            send_each_now(f, v)

        def send_each_now(f: Frame, v: Any) -> None:
            """A list sent record by record, or a send the run observer times."""
            conn = getter(f)
            a = [x(f) for x in args] if args else []
            kw = {k: e(f) for k, e in kwargs.items()} if kwargs else {}
            stats = f.run.stats.at(line, "send")
            observer = f.run.observer
            records = v if type(v) is list else (v,)
            results = []
            try:
                for record in records:
                    started = time.monotonic() if observer.active else 0.0
                    try:
                        results.append(conn.send_now(op, record, a, kw))
                    except FlowRuntimeError:
                        if observer.active:
                            observer.send(conn.name, op, False, time.monotonic() - started)
                        raise
                    stats.sent += 1
                    if observer.active:
                        observer.send(conn.name, op, True, time.monotonic() - started)
            except FlowRuntimeError as e:
                raise where.locate(e) from None
            if store is not None:
                store(f, results if type(v) is list else results[0])
        return Step.maybe_sync(send, send_now, sends_now)

    @staticmethod
    def never_a_stream(node: ast.Node) -> bool:
        """A sent value that is never a record stream (whose records only an await can read): an object
        or a list written out. (A variable may hold a stream: its send keeps the async form.)"""
        return isinstance(node, ast.ObjectLit | ast.ListLit)

    def send_key(self, node: ast.Send) -> Eval:
        """The record key of a ledger send (TESTING.md 3): its `key EXPR`, else the trace key of the loop
        it is in (the innermost one: `for each ... key EXPR`, else its record's id)."""
        if node.key is not None:
            return self.expr(node.key)
        loop = self.loop_stack[-1] if self.loop_stack else None
        if loop is not None and loop.key is not None:
            return loop.key
        if loop is None or len(loop.names_slots) != 1:
            return lambda f: None
        slot = loop.names_slots[0]
        outermost = loop.outermost

        def key_of(f: Frame) -> Any:
            key = record_key(f.slots[slot], f.run)  # as the trace key is: within its file for a pick-up
            if outermost and f.run.replaying is not None and type(key) is not list:
                return replayed_file_key(f.run.replay_key, key)  # a retry: the record no longer knows its file
            return key
        return key_of

    def key_written(self, node: ast.Send) -> str | None:
        """The text of the key expression a ledger send takes (its own `key EXPR`, else its loop's), or None
        when it takes the record's id."""
        if node.key is not None:
            return f"key {self.checked.source.text[node.key.span.start:node.key.span.end]}"
        loop = self.loop_stack[-1] if self.loop_stack else None
        return f"the loop's key {loop.key_written}" if loop is not None and loop.key_written is not None else None

    def key_by(self, node: ast.Send) -> KeyBy:
        """What makes a ledger send's keys (ledger_send.KeyBy): as the ledger keeps it beside each entry, its
        own `key EXPR`, else its loop's, else `id` (the record's), spaces collapsed and the loops' variables
        written `_`, so that renaming a loop variable changes nothing (`o.number` and `order.number` are
        `_.number`); as the flow writes it; and its loop's variable."""
        text = self.checked.source.text
        loop = self.loop_stack[-1] if self.loop_stack else None
        if node.key is not None:
            written = text[node.key.span.start:node.key.span.end]
        else:
            written = loop.key_written if loop is not None and loop.key_written is not None else "id"
        made_by = " ".join(written.split())
        for name in {name for outer in self.loop_stack for name in outer.names}:
            made_by = re.sub(rf"(?<![\w.]){re.escape(name)}(?!\w)", "_", made_by)
        if made_by == "_.id":  # `key o.id` keys as the record's id does
            made_by = "id"
        elif node.key is not None:  # its own key, as the flow names it: never compared (ledger_send.key_changed)
            made_by = f"key {made_by}"
        return made_by, self.key_written(node), loop.names[0] if loop is not None and loop.names else None

    def batched_send(self, node: ast.Send, getter: Callable[[Frame], Connection], args: list[Eval],
                     kwargs: dict[str, Eval], value: Eval, op: str, where: Where, line: int,
                     store: Callable[[Frame, Any], None] | None) -> Step:
        """A batched send works like a plain one for the script (OPERATIONS.md 7): the iteration waits
        for its batch's answer, `as` gets this record's own result, a rejected record fails here."""
        assert node.batch is not None
        count = node.batch.value
        size_of: Eval = (lambda f: count) if isinstance(count, int) else self.read_ref(
            self.checked.resolution.refs.get(node.batch), ast.Name(count, node.batch.span))
        loop = self.loop_stack[-1] if self.loop_stack else None
        mode = node.mode
        key_of = self.send_key(node) if mode is not None else None
        written = self.key_written(node)
        key_by = self.key_by(node)
        fixed = fixed_arguments(node.destination)  # literal arguments: evaluated once, here

        async def ledger_answer(f: Frame, buffer: BatchBuffer, record: Any, conn: Connection, a: list[Any],
                                kw: dict[str, Any]) -> tuple[Answer | None, tuple[str, str] | None]:
            """The ledger decides, record by record: the answer of a record answered without being sent
            (the ledger knew it, or the same key is in this batch), else the ledger entry to send it with."""
            assert key_of is not None and mode is not None
            key = key_of(f)
            try:
                needs_key(key, mode, where, written)
                (k, old), digest = ledger_keys(key, f.run.mask), payload_hash(record, a, kw)
                writing = buffer.in_flight.get(k)
                if writing is not None:  # its key is in a batch being written: the ledger decides after it
                    await asyncio.wait([writing])
                entry_op = ledger_operation(op, a)
                if f.run.ledger is not None:  # or in a send of another run of this process (IN_FLIGHT)
                    await wait_in_flight(in_flight_place(f.run, conn.name, entry_op, k))
                stats = f.run.stats.at(line, "send")
                skip, recorded = already_sent(f.run, conn, entry_op, k, digest, mode, stats, old=old, key_by=key_by)
            except FlowRuntimeError as e:
                raise where.locate(e) from None
            if skip:
                return answered(SendOutcome(True, recorded)), None
            if k in buffer.keys:  # the same key twice in one batch: sent once, both get its answer
                stats.skipped += 1
                return buffer.keys[k], None
            return None, (k, digest)

        def buffer_for(f: Frame) -> tuple[Connection, BatchBuffer, list[Any], dict[str, Any]]:
            """The send's connection, its buffer for this target (a new one when the target changed:
            what the old one holds goes first) and its arguments."""
            conn = getter(f)
            if fixed is not None:
                a, kw = fixed
            else:
                a = [x(f) for x in args]
                kw = {k: e(f) for k, e in kwargs.items()}
            size = size_of(f)
            if type(size) is not int or size < 1:
                raise where.error(f"batch needs a whole number of at least 1, got {shown_number(size)}", "value")
            buffers: dict[Any, BatchBuffer] = f.run.batches
            buffer = buffers.get(node)
            if buffer is None or not buffer.same_target(conn, op, a, kw):
                fresh = BatchBuffer(conn, op, a, kw, size, mode=mode, key_by=key_by)
                if buffer is not None:
                    start_flush(buffer, f, line)
                    fresh.succeed(buffer)
                buffer = buffers[node] = fresh
            return conn, buffer, a, kw

        def refusal(outcomes: list[SendOutcome]) -> FlowRuntimeError | None:
            """The error of the first record the destination refused, at the send."""
            refused = next((o for o in outcomes if not o.ok), None)
            if refused is None:
                return None
            return FlowRuntimeError(refused.error or "the destination refused the record", "connector",
                                    status=refused.status, source=where.source, span=where.span)

        # literal arguments and size: the same target for every record with the same connection, so the
        # buffer found is the right one without comparing arguments
        steady_args = fixed[0] if fixed is not None and isinstance(count, int) else None

        def enqueue(f: Frame) -> Answer | list[Answer] | None:
            """The records put in the buffer and their answers (one record's, or a list's), without
            waiting (a loop that runs this send as its last statement without a task per record:
            compile/loops.py); None when the value is a stream (sent by send_batched instead)."""
            v = value(f)
            kind = type(v)
            if kind is RecordStream:
                return None
            buffer = f.run.batches.get(node)
            if steady_args is None or buffer is None or buffer.connection is not getter(f) or \
                    buffer.args is not steady_args:
                _, buffer, _, _ = buffer_for(f)
            if kind is not list:
                items = buffer.items
                answer = buffer.answer
                if answer is None:
                    answer = buffer.answer = asyncio.get_running_loop().create_future()
                items.append(v)
                index = len(items) - 1
                if index + 1 >= buffer.size:
                    start_flush(buffer, f, line)
                return answer, index
            answers: list[Answer] = []
            for record in v:
                answers.append(buffer.add(record))
                if len(buffer.items) >= buffer.size:
                    start_flush(buffer, f, line)
            return answers

        async def batch_answers(f: Frame, buffer: BatchBuffer, futures: list[Any]) -> None:
            """Wait for the answers of the batches a record's items are in."""
            ahead = f.run_ahead
            if ahead is None:  # nothing runs ahead (a retry, a send outside loops): send now
                await flush(buffer, f, line)
            elif not all(x.done() for x in futures):
                ahead.waiters.append(futures)
                if ahead.stalled():
                    ahead.kick(f)
                if ahead.gate is not None:  # a `parallel N` loop: without its slot meanwhile
                    await ahead.wait(futures)
            for x in futures:
                if not x.done():
                    await x

        async def send_batched(f: Frame) -> None:
            v = value(f)
            conn, buffer, a, kw = buffer_for(f)
            many = type(v) is list or type(v) is RecordStream
            answers: list[Answer] = []
            if many or mode is not None:
                async for record in (records_of(v) if many else one(v)):
                    if mode is not None:
                        known, ledger = await ledger_answer(f, buffer, record, conn, a, kw)
                        if ledger is None:  # answered without being sent
                            assert known is not None
                            answers.append(known)
                            continue
                        answer = buffer.add(record)
                        buffer.ledgers.append(ledger)
                        buffer.keys[ledger[0]] = answer
                    else:
                        answer = buffer.add(record)
                    answers.append(answer)
                    if len(buffer.items) >= buffer.size:
                        start_flush(buffer, f, line)
            else:  # one record, no ledger: the common case, kept short
                answers.append(buffer.add(v))
                if len(buffer.items) >= buffer.size:
                    start_flush(buffer, f, line)
            futures = list(dict.fromkeys(x[0] for x in answers))  # the batches they are in
            noting = RECORD_WRITES.get()  # under max_record_seconds: stopped now, its records may still go out
            if noting is None:
                await batch_answers(f, buffer, futures)
            else:
                await noted_write(noting, conn.name, batch_answers(f, buffer, futures))
            outcomes = [x.result()[i] for x, i in answers]
            error = refusal(outcomes)
            if error is not None:
                raise error
            if store is not None:
                results = [o.result for o in outcomes]
                store(f, results if many else (results[0] if results else None))

        async def flush_at_loop_end(f: Frame) -> None:
            buffers: dict[Any, BatchBuffer] = f.run.batches
            buffer = buffers.get(node)
            if buffer is not None:
                await flush(buffer, f, line)

        def kick(f: Frame) -> None:
            """Every iteration waits: send what the buffer holds, unless a batch of it is being written
            (when that one is answered, the loop checks again)."""
            buffers: dict[Any, BatchBuffer] = f.run.batches
            buffer = buffers.get(node)
            if buffer is not None and buffer.items and not buffer.busy():
                start_flush(buffer, f, line)

        def abandon_at_loop_end(f: Frame) -> None:
            buffers: dict[Any, BatchBuffer] = f.run.batches
            buffer = buffers.get(node)
            if buffer is not None:
                abandon(buffer)

        if loop is not None:
            if mode is None and store is None:
                loop.tail_sends[node] = TailSend(enqueue, refusal)
            loop.flushers.append(flush_at_loop_end)
            loop.kickers.append(kick)
            loop.abandoners.append(abandon_at_loop_end)
            loop.batch_sizes.append(size_of)
        return Step.coroutine(send_batched)

    # ---- import and run -----------------------------------------------------------------------
    def s_Import(self, node: ast.Import) -> Step:
        lib = self.checked.imports.get(node)
        if lib is None:
            return Step.sync(lambda f: None)
        compiled = self.program.module(lib)
        pairs = [(mine.slot, theirs.slot) for mine, theirs in self.checked.imported_connections.get(node, [])]

        async def import_(f: Frame) -> None:
            lib_frame = f.run.frames[compiled.index]
            if compiled.index not in f.run.imported:
                f.run.imported.add(compiled.index)
                await run_step(compiled.body, lib_frame)
            for mine, theirs in pairs:
                f.slots[mine] = lib_frame.slots[theirs]
        return Step.coroutine(import_)

    def s_RunFlow(self, node: ast.RunFlow) -> Step:
        path = self.checked.runs.get(node)
        params = self.expr(node.params) if node.params is not None else (lambda f: {})
        where = self.where(node.span)

        async def run_flow(f: Frame) -> None:
            given = params(f)
            if type(given) is not dict:
                raise where.error(f"run ... with needs an object of params, got {type_name(given)}", "value")
            runner = getattr(f.run, "run_child", None)
            if runner is None or path is None:
                raise where.error("this environment cannot run other flows", "value")
            try:
                await runner(path, given)
            except FlowRuntimeError as e:
                raise where.locate(e) from None
        return Step.coroutine(run_flow)


async def one(value: Any) -> Any:
    """A sent value that is one record."""
    yield value


async def records_of(value: Any) -> Any:
    """A sent value as records: a list sends each item, a stream each record."""
    if type(value) is list:
        for item in value:
            yield item
    elif type(value) is RecordStream:
        async for page in value.pages():
            for item in page:
                yield item
    else:
        yield value


def fixed_arguments(op: ast.Operation) -> tuple[list[Any], dict[str, Any]] | None:
    """The arguments of an operation when every one is a literal (a string, number, true/false, null or
    a list of those): the same for every record, so evaluated once."""
    def fixed(node: ast.Expr) -> tuple[Any] | None:
        if isinstance(node, ast.Literal):
            return (node.value,)
        if isinstance(node, ast.ListLit):
            items = [fixed(item) for item in node.items]
            return None if any(i is None for i in items) else ([i[0] for i in items if i is not None],)
        return None
    values = [fixed(a) for a in op.args]
    named = {k.name: fixed(k.value) for k in op.kwargs}
    if any(v is None for v in values) or any(v is None for v in named.values()):
        return None
    return [v[0] for v in values if v is not None], {k: v[0] for k, v in named.items() if v is not None}


def value_place(message: str, at_value: dict[str, Where]) -> Where | None:
    """The value of the `use` key a connection's refusal names first ("verify: the CA bundle ...",
    "base_url must start with ...", "file mode must ...", "memory needs records: ..."), so the error is
    shown there, not under the whole statement."""
    for word in re.findall(r"[a-z_]+", message[:40])[:3]:
        if word in at_value:
            return at_value[word]
    needed = re.search(r"needs the configuration key '(\w+)'", message)  # a connector file's {placeholder}
    return at_value.get(needed.group(1)) if needed else None
