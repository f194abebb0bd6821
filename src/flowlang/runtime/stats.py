"""Run statistics: records read, sent, failed, skipped and emitted, per statement line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class StatementStats:
    kind: str = ""
    read: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    emitted: int = 0


@dataclass
class Stats:
    """Counters of one run; `per_line` is keyed by the statement's line in the flow file."""

    per_line: dict[int, StatementStats] = field(default_factory=dict)
    duration: float = 0.0

    def at(self, line: int, kind: str) -> StatementStats:
        s = self.per_line.get(line)
        if s is None:
            s = self.per_line[line] = StatementStats(kind)
        return s

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.per_line.values())

    @property
    def read(self) -> int:
        """Records the loops took (a lookup's or a call's answers are counted on their own line only)."""
        return sum(s.read for s in self.per_line.values() if s.kind == "for each")

    @property
    def sent(self) -> int:
        return self.total("sent")

    @property
    def failed(self) -> int:
        return self.total("failed")

    @property
    def skipped(self) -> int:
        return self.total("skipped")

    @property
    def emitted(self) -> int:
        return self.total("emitted")

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read, "sent": self.sent, "failed": self.failed, "skipped": self.skipped,
            "emitted": self.emitted, "duration": round(self.duration, 3),
            "statements": {str(k): asdict(v) for k, v in sorted(self.per_line.items())},
        }
