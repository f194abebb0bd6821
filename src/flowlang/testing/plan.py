"""`flowlang plan`: run a flow with live reads and no writes, and say what the real run would write
(per destination: how many records, the first payloads) and what it would cost (per connection:
requests, and how long they take at least under the connection's rate limit).

The Planner is a Tape: every connection a `use` opens is wrapped so that reads reach the real
source and writes are kept here instead of being sent (the run is also a dry run, so nothing
that slips past is sent either, and no state is committed)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, SendOutcome
from flowlang.runtime.jsoncodec import dumps, loads
from flowlang.runtime.stats import Stats, Traffic
from flowlang.runtime.values import Value
from flowlang.testing.recorder import writes

SHOWN_PAYLOADS = 3
MAX_TARGETS = 10_000  # distinct paths counted per destination (a plan of a million records stays small)
DEFAULT_BATCH = 100


@dataclass
class Destination:
    """What the run would write with one operation of one connection."""

    connection: str
    op: str
    label: str  # "POST /invoices", or the operation's name
    records: int = 0
    single_requests: int = 0  # one a record (or a batch sent as one request a record)
    batched: int = 0  # records of batches that go out as one request each
    largest_batch: int = 0
    payloads: list[Any] = field(default_factory=list)
    batch_size: int | None = None  # the operation's own batch limit, when it takes batches
    targets: set[str] = field(default_factory=set)  # the paths met, up to MAX_TARGETS
    more_targets: bool = False

    @property
    def requests(self) -> int:
        """The least the real run makes: its batches full (a planned batch is "sent" at once, so the
        plan flushes partial ones at page ends that the run, waiting for an answer, fills)."""
        full = math.ceil(self.batched / self.largest_batch) if self.batched else 0
        return self.single_requests + full

    def aim(self, label: str) -> None:
        """Count a path this destination's records went to; the label becomes their shared pattern."""
        if label in self.targets:
            return
        if len(self.targets) >= MAX_TARGETS:
            self.more_targets = True
        else:
            self.targets.add(label)
        self.label = pattern(self.label, label)

    @property
    def paths_text(self) -> str:
        """'' for one path; else how many different paths the pattern stands for."""
        if len(self.targets) <= 1:
            return ""
        return f"{len(self.targets):,}{'+' if self.more_targets else ''} different paths"

    def add(self, record: Any, keep_all: bool) -> None:
        self.records += 1
        if keep_all or len(self.payloads) < SHOWN_PAYLOADS:
            self.payloads.append(loads(dumps(record)))  # as sent: a time as its text, a secret as ***


def group_of(label: str) -> str:
    """Labels of one group differ only in the path's segments after the first (an interpolated
    `"/products/{p.sku}"` gives one path per record): method, first segment and segment count."""
    method, _, path = label.partition(" ")
    segments = path.split("?", 1)[0].split("/")
    return f"{method} /{segments[1] if len(segments) > 1 else ''} {len(segments)}" if path else label


def pattern(seen: str, label: str) -> str:
    """The pattern of two labels of one group: the segments that differ become `{...}`."""
    if seen == label:
        return seen
    method, _, path = seen.partition(" ")
    ours, theirs = path.split("/"), label.partition(" ")[2].split("/")
    merged = [a if a == b else "{...}" for a, b in zip(ours, theirs, strict=False)]
    return f"{method} {'/'.join(merged)}"


def label_of(spec: ConnectorSpec, op: str, args: list[Value]) -> str:
    found = spec.operations.get(op)
    if spec.name == "http" and args and isinstance(args[0], str):
        return f"{op.upper()} {args[0]}"
    if found is not None and found.method and found.path:
        return f"{found.method} {found.path}"
    return op


def batches_natively(connection: Connection) -> bool:
    """Whether a batch goes out as one request (the connection has its own send_batch)."""
    inner = getattr(connection, "inner", connection)
    return type(inner).send_batch is not Connection.send_batch


class PlanningConnection(Connection):
    """Reads go to the real connection; writes are planned, never sent."""

    def __init__(self, inner: Connection, planner: Planner) -> None:
        super().__init__(inner.name, inner.spec)
        self.inner = inner
        self.planner = planner

    def default_write_op(self) -> str | None:
        return self.inner.default_write_op()

    def sends_read(self, op: str) -> bool:
        return self.inner.sends_read(op)

    def write_count(self) -> int:
        """The real connection's writes and the plan's: a lookup that found nothing is asked again after
        a write to the same connection, planned or made, as the real run asks it again."""
        return self.inner.write_count() + self.writes

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if writes(self.spec, op) and not self.spec.any_operation:
            self.planner.plan(self, op, args, [args[0] if args else None], 1)
            self.writes += 1
            return None
        return await self.inner.invoke(op, args, kwargs)

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if self.inner.sends_read(op):  # a read (a safe operation): made for real, as a dry run makes it
            return await self.inner.send(op, record, args, kwargs)
        self.planner.plan(self, op, args, [record], 1)
        self.writes += 1
        return None

    async def send_batch(self, op: str, records: list[Value], args: list[Value],
                         kwargs: dict[str, Value]) -> list[SendOutcome]:
        if self.inner.sends_read(op):
            return await self.inner.send_batch(op, records, args, kwargs)
        self.planner.plan(self, op, args, records, len(records), batch=batches_natively(self.inner))
        self.writes += 1
        return [SendOutcome(True, None) for _ in records]

    async def close(self) -> None:
        await self.inner.close()


class Planner:
    """A Tape that lets reads through and keeps the writes as the plan."""

    replaying = False

    def __init__(self, keep_all: bool = False) -> None:
        self.keep_all = keep_all
        self.destinations: dict[tuple[str, str, str], Destination] = {}
        self.outputs: list[Any] = []
        self.status = ""
        # the stats of the `run "child.flow"` jobs of the plan: their reads and the sends their ledger
        # skips are the plan's too (their writes are planned here, as the parent's)
        self.children: list[Stats] = []

    async def connection(self, name: str, spec: ConnectorSpec,
                         open_real: Callable[[], Awaitable[Connection]]) -> Connection:
        return PlanningConnection(await open_real(), self)

    def wrap(self, connection: Connection) -> Connection:
        return PlanningConnection(connection, self)

    def value(self, kind: str, make: Callable[[], Any]) -> Any:
        return make()

    def output(self, value: Any) -> None:
        self.outputs.append(value)

    def finish(self, status: str, failed: int) -> None:
        self.status = status

    def child_ran(self, stats: Stats) -> None:
        """A `run "child.flow"` of the plan ended: its requests and skips count in the plan."""
        self.children.append(stats)

    def plan(self, connection: Connection, op: str, args: list[Value], records: list[Value], requests: int,
             batch: bool = False) -> None:
        """Plan records sent in `requests` requests, or with `batch` in one request (of a batch)."""
        label = label_of(connection.spec, op, args)
        key = (connection.name, op, group_of(label))
        found = self.destinations.get(key)
        if found is None:
            spec = connection.spec.operations.get(op)
            size = (spec.max_batch or DEFAULT_BATCH) if spec is not None and spec.takes_batch else None
            found = self.destinations[key] = Destination(connection.name, op, label, batch_size=size)
        found.aim(label)
        for record in records:
            found.add(record, self.keep_all)
        if batch:
            found.batched += len(records)
            found.largest_batch = max(found.largest_batch, len(records))
        else:
            found.single_requests += requests


# ---- the cost -------------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """`16 min 40 s`; under a second in milliseconds (`12 ms`), not rounded up to a second."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000)) if seconds > 0 else 0} ms"
    seconds = math.ceil(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def rate_text(interval: float) -> str:
    per_second = round(1 / interval, 6)
    if per_second >= 2 and per_second.is_integer():
        return f"{int(per_second)}/second"
    per_minute = round(60 / interval, 6)
    if per_minute >= 1:
        return f"{per_minute:g}/minute"
    return f"{round(3600 / interval, 6):g}/hour"


@dataclass
class ConnectionCost:
    """What one connection's part of the real run would take."""

    connection: str
    reads: int  # requests made by the plan (the real run makes them again)
    writes: int  # write requests the real run would make
    interval: float | None
    latency: float | None  # the reads' measured average, in seconds
    lines: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return self.reads + self.writes

    @property
    def at_least(self) -> float:
        """Seconds the requests take at least: the rate limit's schedule, else their measured latency."""
        if self.interval is not None:
            return self.requests * self.interval
        return self.requests * (self.latency or 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"connection": self.connection, "reads": self.reads, "writes": self.writes,
                "requests": self.requests, "rate_interval": number(self.interval),
                "read_latency": number(self.latency), "at_least_seconds": number(self.at_least),
                "summary": self.lines}


def number(value: float | None) -> Decimal | None:
    """A float as an exact JSON number, to the millisecond-ish."""
    return None if value is None else Decimal(str(round(value, 4)))


def traffic_of(planner: Planner, stats: Stats) -> dict[str, Traffic]:
    """Each connection's reads in the plan: the flow's, and those of the flows it ran (`run "child.flow"`),
    by the connection's name, as their writes are planned by it."""
    out: dict[str, Traffic] = {}
    for one in (stats, *planner.children):
        for name, traffic in one.traffic.items():
            found = out.get(name)
            if found is None:
                out[name] = Traffic(traffic.requests, traffic.retries, traffic.latency, traffic.waited,
                                    traffic.interval)
                continue
            found.requests += traffic.requests
            found.retries += traffic.retries
            found.latency += traffic.latency
            found.waited += traffic.waited
            if traffic.interval is not None:
                found.interval = max(found.interval or 0.0, traffic.interval)
    return out


def costs(planner: Planner, stats: Stats) -> list[ConnectionCost]:
    all_traffic = traffic_of(planner, stats)
    names = sorted(set(all_traffic) | {d.connection for d in planner.destinations.values()})
    out = []
    for name in names:
        traffic = all_traffic.get(name)
        reads = traffic.requests if traffic is not None else 0
        mine = [d for d in planner.destinations.values() if d.connection == name]
        interval = traffic.interval if traffic is not None else None
        latency = traffic.latency / traffic.requests if traffic is not None and traffic.requests else None
        cost = ConnectionCost(name, reads, sum(d.requests for d in mine), interval, latency)
        cost.lines = cost_lines(cost, mine)
        out.append(cost)
    return out


def cost_lines(cost: ConnectionCost, destinations: list[Destination]) -> list[str]:
    lines = []
    limit = f", rate {rate_text(cost.interval)}" if cost.interval is not None else ""
    for d in destinations:
        text = f"{cost.connection}: {d.requests:,} {d.label}"
        if d.requests != d.records:
            text += f" ({d.records:,} records)"
        if cost.interval is not None:
            text += f"{limit}: at least {duration_text(d.requests * cost.interval)}"
            if d.batch_size and d.requests == d.records and d.records > 1:
                batched = math.ceil(d.records / d.batch_size)
                text += (f" (with batch {d.batch_size}: {batched:,} request{'s' if batched != 1 else ''}, "
                         f"{duration_text(batched * cost.interval)})")
        lines.append(text)
    if cost.reads:
        latency = f", {cost.latency * 1000:.0f} ms each" if cost.latency is not None else ""
        lines.append(f"{cost.connection}: {cost.reads:,} read{'s' if cost.reads != 1 else ''}{latency}")
    if cost.requests:
        # no rate limit and no read measured (a file, a database written only): no time to say
        known = cost.interval is not None or cost.latency is not None
        lines.append(f"{cost.connection}: {cost.requests:,} request{'s' if cost.requests != 1 else ''} in all"
                     f"{limit}" + (f": at least {duration_text(cost.at_least)}" if known else ""))
    return lines


def ledger_skips(planner: Planner, stats: Stats) -> int:
    """The sends the plan left out because the ledger has them (`once`: sent before; `if changed`: the
    same payload as last time), the flow's and those of the flows it ran: a send statement skips for no
    other reason."""
    return sum(s.skipped for one in (stats, *planner.children) for s in one.per_line.values() if s.kind == "send")


def plan_dict(planner: Planner, stats: Stats) -> dict[str, Any]:
    return {
        "status": planner.status,
        "read": stats.read,
        "skipped": ledger_skips(planner, stats),
        "writes": [{"connection": d.connection, "operation": d.op, "target": d.label, "records": d.records,
                    "requests": d.requests, "paths": len(d.targets), "payloads": d.payloads}
                   for d in planner.destinations.values()],
        "connections": [c.as_dict() for c in costs(planner, stats)],
    }
