"""Run statistics: records read, sent, failed, skipped and emitted, per statement line; and each
connection's traffic (requests, retries, time waiting for answers and for the rate limit)."""

from __future__ import annotations

from dataclasses import asdict, field

from flowlang.lazy_dataclass import dataclass


@dataclass
class StatementStats:
    kind: str = ""
    read: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    emitted: int = 0


def count_sent(stats: StatementStats, n: int, read: bool) -> None:
    """`n` records a send's line sent; `read`: those sends were reads (a connector file's `safe = true`
    operation, a POST that is a search), which a dry run makes too: counted as read on the line, so a
    dry run's 'would send' is what it did not send, and the run's 'sent' the same count."""
    if read:
        stats.read += n
    else:
        stats.sent += n


@dataclass
class Traffic:
    """One connection's requests in one run (HTTP-backed connections count them)."""

    requests: int = 0
    retries: int = 0
    latency: float = 0.0  # seconds spent waiting for answers
    waited: float = 0.0  # seconds spent waiting for the rate limit
    interval: float | None = None  # seconds between requests under the connection's rate limit
    waiting_until: float = 0.0  # time.monotonic() at which the request now waiting for its slot may go
    paced: float | None = None  # requests a second the API's rate-limit refusals set (http/pace.py), if any

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"requests": self.requests, "retries": self.retries,
                                  "latency": round(self.latency, 3), "waited": round(self.waited, 3)}
        if self.interval is not None:
            out["interval"] = self.interval
        return out


@dataclass
class Stats:
    """Counters of one run; `per_line` is keyed by the statement's line in the flow file."""

    per_line: dict[int, StatementStats] = field(default_factory=dict)
    duration: float = 0.0
    traffic: dict[str, Traffic] = field(default_factory=dict)
    total: int | None = None  # how many records the outermost loop will take, when its list says so

    def traffic_for(self, connection: str) -> Traffic:
        found = self.traffic.get(connection)
        if found is None:
            found = self.traffic[connection] = Traffic()
        return found

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.traffic.values())

    @property
    def retries(self) -> int:
        return sum(t.retries for t in self.traffic.values())

    def at(self, line: int, kind: str) -> StatementStats:
        s = self.per_line.get(line)
        if s is None:
            s = self.per_line[line] = StatementStats(kind)
        return s

    def summed(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.per_line.values())

    @property
    def read(self) -> int:
        """Records the loops took (a lookup's or a call's answers are counted on their own line only)."""
        return sum(s.read for s in self.per_line.values() if s.kind == "for each")

    @property
    def sent(self) -> int:
        return self.summed("sent")

    @property
    def failed(self) -> int:
        return self.summed("failed")

    @property
    def skipped(self) -> int:
        return self.summed("skipped")

    @property
    def emitted(self) -> int:
        return self.summed("emitted")

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read, "sent": self.sent, "failed": self.failed, "skipped": self.skipped,
            "emitted": self.emitted, "duration": round(self.duration, 3),
            "statements": {str(k): asdict(v) for k, v in sorted(self.per_line.items())},
            "connections": {name: t.as_dict() for name, t in sorted(self.traffic.items())},
        }
