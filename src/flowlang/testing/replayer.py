"""`flowlang test`: a Tape that answers every read from a cassette (no network, no files, no
database), sends nothing, and keeps what the run would have written and emitted for comparison."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, SendOutcome
from flowlang.errors import FlowRuntimeError, HttpError
from flowlang.runtime.jsoncodec import dumps, loads
from flowlang.runtime.tape import BATCH_PLACES, DRAW_PLACE
from flowlang.runtime.values import RecordStream, Value
from flowlang.testing.cassette import Cassette, canonical, masked, page_from_stored, request_key
from flowlang.testing.cassette_values import restored, stored
from flowlang.testing.destinations import operation_of, write_names
from flowlang.testing.diff import compare_sequences, render_diff, similarity
from flowlang.testing.pairing import Leaves, leaves, nearest, outward
from flowlang.testing.recorder import writes

# values drawn with what they are for, matched on it in a replay (not in the order they were drawn)
KEYED_VALUES = {"ledger": ("connection", "operation", "key")}


def recorded_error(error: dict[str, Any], what: str) -> FlowRuntimeError:
    message = str(error.get("message") or "recorded error")
    status = error.get("status")
    kind = str(error.get("kind") or "connector")
    body = restored(error.get("body"))
    if kind == "http":
        return HttpError(message, status=status if isinstance(status, int) else None, method="", url=what,
                         body=body)
    return FlowRuntimeError(message, kind, status=status if isinstance(status, int) else None, body=body)


class ReplayMiss(FlowRuntimeError):
    """A read the cassette has no answer for."""


def located(error: FlowRuntimeError) -> str:
    """' at FILE:LINE:COL' of the statement an error came from, when it has one."""
    return f" at {error.location}" if error.location else ""


class ReplayConnection(Connection):
    """Stands in for a connection: reads from the cassette, writes kept, never sent."""

    def __init__(self, name: str, spec: ConnectorSpec, replayer: Replayer, default_write: str | None) -> None:
        super().__init__(name, spec)
        self.replayer = replayer
        self._default_write = default_write

    def default_write_op(self) -> str | None:
        return self._default_write

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if writes(self.spec, op) and not self.spec.any_operation:
            return self.replayer.write(self, op, args, kwargs, None, as_record=False)
        entry = self.replayer.read(self.name, op, args, kwargs)
        if "pages" in entry:
            return self._stream(entry, f"{self.name}.{op}()")
        if "error" in entry:
            raise recorded_error(entry["error"], f"{self.name}.{op}()")
        if "result" not in entry and self.replayer.stopped():  # in flight when the recording was killed
            raise self.replayer.miss(f"{self.name}.{op}() has no answer in the cassette: it was in flight when "
                                     f"the recording stopped ({STOPPED})")
        return restored(entry.get("result"))

    def _stream(self, entry: dict[str, Any], label: str) -> RecordStream:
        pages = [page_from_stored(p) for p in entry["pages"]]
        complete = bool(entry.get("complete"))
        replayer = self.replayer

        async def replayed() -> AsyncIterator[list[Value]]:
            for page in pages:
                yield page
            if "error" in entry:
                raise recorded_error(entry["error"], label)
            if not complete:
                why = ("it was recorded with --limit?" if replayer.cassette.of_type("result") else STOPPED)
                raise replayer.miss(f"{label} needs more than the {len(pages)} pages the cassette holds ({why})")
        return RecordStream(replayed, label)

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        return self.replayer.write(self, op, args, kwargs, record, place=DRAW_PLACE.get())

    async def send_batch(self, op: str, records: list[Value], args: list[Value],
                         kwargs: dict[str, Value]) -> list[SendOutcome]:
        out = []
        places = BATCH_PLACES.get() or []
        for n, record in enumerate(records):
            place = places[n] if n < len(places) else None
            try:
                out.append(SendOutcome(True, self.replayer.write(self, op, args, kwargs, record, place=place)))
            except FlowRuntimeError as e:
                out.append(SendOutcome(False, error=e.message, status=e.status))
        return out


STOPPED = "its recording was stopped before the run ended, the cassette has no result line: record a whole run"


class Replayer:
    """A Tape that replays `cassette`; `problems()` after the run says how it differed."""

    replaying = True

    def __init__(self, cassette: Cassette, mask: Callable[[str], str]) -> None:
        self.cassette = cassette
        self.mask = mask
        self.reads: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        for entry in cassette.of_type("read"):
            key = request_key(entry["connection"], entry["op"], entry.get("args", []), entry.get("kwargs", {}))
            self.reads[key].append(entry)
        self.expected_writes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        # a recorded write's place in its destination's list, by what it sent: a write made in another
        # order (a parallel loop whose lookups took their time) gets its own answer, not its neighbour's
        self.by_payload: dict[str, deque[int]] = defaultdict(deque)
        self.taken: dict[str, set[int]] = defaultdict(set)  # places whose answer a write of the replay got
        # a recorded write's place by the record it was for ("at"), in a loop that reorders its writes
        self.by_record: dict[tuple[str, str], deque[int]] = defaultdict(deque)
        # the fields of recorded writes weighed by nearest_write
        self.weighed: dict[tuple[str, int], Leaves] = {}
        # per destination, where the last changed write's old form was from its place, and how much it differed
        self.shift: dict[str, tuple[int, int]] = {}
        for entry in cassette.of_type("write"):
            destination = operation_of(entry)
            self.by_payload[self.payload_key(destination, entry)].append(len(self.expected_writes[destination]))
            if type(entry.get("at")) is str:
                self.by_record[(destination, entry["at"])].append(len(self.expected_writes[destination]))
            self.expected_writes[destination].append(entry)
        self.values: dict[str, deque[Any]] = defaultdict(deque)
        # drawn by a record of a loop running iterations at once: by kind and the record's place, so that
        # each record gets its own, in whatever order the iterations draw them this time
        self.placed: dict[tuple[str, str], deque[Any]] = defaultdict(deque)
        for entry in cassette.of_type("value"):
            at = entry.get("at")
            if type(at) is str:
                self.placed[(entry["kind"], at)].append(entry.get("value"))
            else:
                self.values[entry["kind"]].append(entry.get("value"))
        self.made = Cassette([dict(cassette.run)] if cassette.run else [])
        self.written: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.outputs: list[Any] = []
        self.misses: list[ReplayMiss] = []  # located by the run as they pass the statement that asked

    def normal(self, value: Any) -> Any:
        """A live value as the cassette would hold it (tagged, masked, read back)."""
        return loads(dumps(masked(stored(value), self.mask)))

    # ---- the Tape -----------------------------------------------------------------------------
    async def connection(self, name: str, spec: ConnectorSpec,
                         open_real: Callable[[], Awaitable[Connection]]) -> Connection:
        return ReplayConnection(name, spec, self, spec.default_write)

    def wrap(self, connection: Connection) -> Connection:
        return ReplayConnection(connection.name, connection.spec, self, connection.default_write_op())

    def value(self, kind: str, make: Callable[[], Any]) -> Any:
        place = DRAW_PLACE.get()
        queue = self.placed.get((kind, place)) if place is not None else None
        if not queue:  # not drawn in such a loop, or a cassette recorded before places were kept
            queue = self.values.get(kind)
        if kind in KEYED_VALUES:
            value = self.keyed_value(queue, make())
        else:
            value = restored(queue.popleft()) if queue else make()
        entry: dict[str, Any] = {"type": "value", "kind": kind, "value": stored(value)}
        if place is not None:
            entry["at"] = place
        self.made.entries.append(entry)
        return value

    @staticmethod
    def keyed_value(queue: deque[Any] | None, asked: Any) -> Any:
        """The first recorded value for what `asked` names (what the ledger held for this connection,
        operation and key), whatever the order: a parallel loop asks in another order than it recorded."""
        if queue and type(asked) is dict:
            names = {k: v for k, v in asked.items() if k in KEYED_VALUES["ledger"]}
            for i, recorded in enumerate(queue):
                if type(recorded) is dict and all(recorded.get(k) == v for k, v in names.items()):
                    del queue[i]
                    return restored(recorded)
        return asked

    def output(self, value: Any) -> None:
        normal = self.normal(value)
        self.outputs.append(normal)
        self.made.entries.append({"type": "output", "value": normal})

    # ---- reads and writes -----------------------------------------------------------------------
    def miss(self, message: str) -> ReplayMiss:
        error = ReplayMiss(message, "connector")
        self.misses.append(error)
        return error

    def read(self, connection: str, op: str, args: list[Value], kwargs: dict[str, Value]) -> dict[str, Any]:
        shown_args, shown_kwargs = self.normal(args), self.normal(kwargs)
        key = request_key(connection, op, shown_args, shown_kwargs)
        queue = self.reads.get(key)
        if queue:
            entry = queue.popleft() if len(queue) > 1 else queue[0]  # the last answer stands for repeats
            self.made.entries.append(entry)
            return entry
        raise self.miss(self.nearest(connection, op, shown_args, shown_kwargs, key))

    def stopped(self) -> bool:
        """Whether the cassette is that of a recording stopped before its run ended (killed: no result line)."""
        return not self.cassette.of_type("result")

    def nearest(self, connection: str, op: str, args: Any, kwargs: Any, key: str) -> str:
        """Why a read is not in the cassette. A recording killed while a read was in flight, or before it,
        looked like a flow that changed since ('the nearest recorded one differs in: args[0]: "/two" ->
        "/items"'): the message says the recording stopped."""
        asked = f"{connection}.{op}({dumps(args)[1:-1]}{', ' if args and kwargs else ''}" \
                f"{dumps(kwargs)[1:-1] if kwargs else ''})"
        candidates = [e for e in self.cassette.of_type("read") if e["connection"] == connection] \
            or self.cassette.of_type("read")
        if not candidates:
            return f"the cassette has no recorded request for {asked} (it holds no reads" + \
                (f"; {STOPPED})" if self.stopped() else ")")
        if self.stopped():
            asked += f" ({STOPPED})"
        best = max(candidates, key=lambda e: similarity(
            key, request_key(e["connection"], e["op"], e.get("args", []), e.get("kwargs", {}))))
        old = {"connection": best["connection"], "op": best["op"], "args": best.get("args", []),
               "kwargs": best.get("kwargs", {})}
        new = {"connection": connection, "op": op, "args": args, "kwargs": kwargs}
        lines = render_diff(old, new)
        return (f"the cassette has no recorded request for {asked}; the nearest recorded one differs in:\n"
                + "\n".join(lines))

    def write(self, connection: Connection, op: str, args: list[Value], kwargs: dict[str, Value], record: Value,
              as_record: bool = True, place: str | None = None) -> Value:
        # the fields of a recorded write line, in its order: --update rewrites only what changed
        entry: dict[str, Any] = {"type": "write", "connection": connection.name, "connector": connection.spec.name,
                                 "op": op, "args": self.normal(args), "kwargs": self.normal(kwargs)}
        destination = operation_of(entry)
        if as_record:
            entry["record"] = self.normal(record)
        if place is not None:
            entry["at"] = place
        position = len(self.written[destination])
        self.written[destination].append(entry)
        recorded = self.expected_writes.get(destination, [])
        same = self.by_payload.get(self.payload_key(destination, entry))
        # the same payload gets its own answer; a changed one that of its record's recorded write, else that
        # of its old form near its place
        at = same.popleft() if same else self.own_write(destination, place)
        if at is None:
            at = self.nearest_write(destination, entry, position)
        self.taken[destination].add(at)
        self.weighed.pop((destination, at), None)
        answer = recorded[at] if at < len(recorded) else None
        if answer is not None:
            for key in ("result", "error"):
                if key in answer:
                    entry[key] = answer[key]
        self.made.entries.append(entry)
        if answer is None:
            return None
        if "error" in answer:
            raise recorded_error(answer["error"], f"{connection.name}.{op}")
        return restored(answer.get("result"))

    def own_write(self, destination: str, place: str | None) -> int | None:
        """The place of the recorded write of the same record (its "at") whose answer no write got yet."""
        queue = self.by_record.get((destination, place)) if place is not None else None
        while queue:
            at = queue.popleft()
            if at not in self.taken[destination]:
                return at
        return None

    def nearest_write(self, destination: str, entry: dict[str, Any], position: int) -> int:
        """Of the recorded writes to `destination` whose answer no write got yet, within NEAR places of
        `position` (a parallel loop, or one filling batches, reorders its writes that much; looked for from
        where the last one's was, when records were left out), the one that differs from `entry` in the
        fewest fields, the nearer first: a changed payload gets its own old answer, not its recorded
        neighbour's when the run made them in another order. `position` itself when none is left there."""
        recorded, taken = self.expected_writes.get(destination, []), self.taken[destination]

        def theirs(i: int) -> Leaves:
            if (destination, i) not in self.weighed:
                self.weighed[(destination, i)] = leaves(self.sent(recorded[i]))
            return self.weighed[(destination, i)]
        shift, enough = self.shift.get(destination, (0, 2))  # records left out or added before this one
        center = min(max(position + shift, 0), len(recorded))
        best, fewest = nearest(leaves(self.sent(entry)), outward(center, len(recorded), lambda i: i not in taken),
                               theirs, enough)
        if best is None:
            return position
        self.shift[destination] = (best - position, fewest)
        return best

    # ---- after the run --------------------------------------------------------------------------
    def finish(self, status: str, failed: int) -> None:
        self.status, self.failed = status, failed
        self.made.entries.append({"type": "result", "status": status, "failed": failed})

    def problems(self) -> list[str]:
        """Every way the replay differed from the cassette (empty: the test passes)."""
        out = [f"request not in the cassette{located(m)}: {m.message}" for m in self.misses]
        for destination in sorted(set(self.expected_writes) | set(self.written)):
            recorded, made = self.expected_writes.get(destination, []), self.written.get(destination, [])
            out += compare_sequences(f"write to {destination}: record", [self.sent(e) for e in recorded],
                                     [self.sent(e) for e in made], ([e.get("at") for e in recorded],
                                                                    [e.get("at") for e in made]),
                                     write_names(recorded, made))
        old_outputs = [e.get("value") for e in self.cassette.of_type("output")]
        out += compare_sequences("output", old_outputs, self.outputs)
        recorded = self.cassette.of_type("result")
        if recorded:
            was = recorded[-1]
            if (was.get("status"), was.get("failed")) != (self.status, self.failed):
                out.append(f"the run finished {self.status} with {self.failed} failed records; the cassette "
                           f"says {was.get('status')} with {was.get('failed')}")
        return out

    @classmethod
    def payload_key(cls, destination: str, entry: dict[str, Any]) -> str:
        return destination + "\n" + dumps(canonical(cls.sent(entry)))

    @staticmethod
    def sent(entry: dict[str, Any]) -> Any:
        """What a write sent, as compared: the record, and its arguments when it has any."""
        if entry.get("args") or entry.get("kwargs"):
            return {"record": entry.get("record"), "args": entry.get("args"), "kwargs": entry.get("kwargs")}
        return entry.get("record")
