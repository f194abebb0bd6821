"""Prometheus metrics of a serve process (prometheus-client, one registry per process): deliveries by
answer, runs by flow and status, records read/sent/failed, inbox depth, delivery latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from flowlang.runner import Result

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter("flowlang_deliveries", "Webhook deliveries by flow and answer",
                                  ["flow", "answer"], registry=r)
        self.runs = Counter("flowlang_runs", "Runs by flow and status", ["flow", "status"], registry=r)
        self.records = Counter("flowlang_records", "Records by flow and what happened to them",
                               ["flow", "kind"], registry=r)
        self.depth = Gauge("flowlang_inbox_depth", "Deliveries accepted and not yet run", registry=r)
        self.latency = Histogram("flowlang_delivery_latency_seconds", "From a delivery's arrival to the end of "
                                 "its run", ["flow"], registry=r,
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))

    def watch_depth(self, read: Callable[[], int]) -> None:
        self.depth.set_function(lambda: float(read()))

    def answered(self, flow: str, status: int) -> None:
        self.deliveries.labels(flow, str(status)).inc()

    def run_done(self, flow: str, status: str, result: Result | None) -> None:
        self.runs.labels(flow, status).inc()
        if result is not None:
            s = result.stats
            for kind, n in (("read", s.read), ("sent", s.sent), ("failed", s.failed)):
                if n:
                    self.records.labels(flow, kind).inc(n)

    def delivered(self, flow: str, received_at: str) -> None:
        try:
            when = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
        except ValueError:
            return
        self.latency.labels(flow).observe(max(0.0, time.time() - when.astimezone(UTC).timestamp()))

    def text(self) -> bytes:
        return generate_latest(self.registry)
