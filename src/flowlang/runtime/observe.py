"""What a run reports to monitoring while it runs: the run itself, each HTTP attempt, each retry
pause, each wait imposed by a rate limit, each loop iteration and each send. The base class does
nothing (and costs nothing); telemetry/otel.py turns the events into OpenTelemetry spans and
metrics. Every text an observer gets is masked already."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any


class RunObserver:
    """Events of one run. `active` is false for the no-op observer, so hot paths can skip the call."""

    active = False

    def run_started(self, flow: str, job_id: int | None, kind: str) -> None:
        """Before the first statement."""

    def run_finished(self, status: str, stats: Any, error: str | None) -> None:
        """After the last statement (stats: runtime.stats.Stats)."""

    def request(self, connection: str, method: str, url: str, status: int | None, seconds: float,
                error: str | None = None) -> None:
        """One HTTP attempt that ended `seconds` after it started (status None: no answer)."""

    def retry(self, connection: str, method: str, url: str, delay: float, why: str) -> None:
        """A pause before the next attempt."""

    def rate_limited(self, connection: str, seconds: float) -> None:
        """A request waited this long for its slot under the connection's rate limit."""

    def iteration(self, loop: str, index: int) -> AbstractContextManager[Any]:
        """Around one iteration of an outermost loop (a span, where sampled)."""
        return nullcontext()

    def send(self, connection: str, operation: str, ok: bool, seconds: float) -> None:
        """One record (or batch) written by a send."""


NO_OBSERVER = RunObserver()
