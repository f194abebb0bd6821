"""The live progress display of `flowlang run` and `flowlang retry` on a terminal: records read,
sent and failed, requests and retries, the rate, the ETA when the total is known, and the wait a
rate limit imposes. Off when stderr is not a terminal, and with --quiet. Before a run that the
last run of the flow suggests will take over a minute, the estimate is printed first."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when the display is on (a terminal): a piped run starts faster
    from flowlang.cli.console import Terminal
    from flowlang.runtime.run import RunContext
    from flowlang.runtime.store import Store

ESTIMATE_SHOWN_OVER = 60.0
ESTIMATED_FROM = frozenset(("run", "scheduled"))  # the kinds of job a run will do as they did


class RunProgress:
    """Renders one run's counters; rich's Live calls `__rich__` a few times a second."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ctx: RunContext | None = None
        self.started = time.monotonic()

    def watch(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.started = time.monotonic()

    def line(self) -> str:
        from flowlang.testing.plan import duration_text, rate_text  # (the plan's module: not loaded by a run)

        ctx = self.ctx
        if ctx is None:
            return f"{self.name}: starting"
        s = ctx.stats
        elapsed = max(time.monotonic() - self.started, 1e-6)
        read = s.read
        total = s.total
        parts = [f"read {read:,}" + (f"/{total:,}" if total is not None else ""), f"sent {s.sent:,}",
                 f"failed {s.failed:,}", f"requests {s.requests:,}", f"retries {s.retries:,}"]
        rate = read / elapsed
        parts.append(f"{rate:,.1f} records/s")
        if total is not None and rate > 0 and read < total:
            parts.append(f"ETA {duration_text((total - read) / rate)}")
        now = time.monotonic()
        for name, traffic in sorted(s.traffic.items()):
            if traffic.waiting_until <= now:
                continue
            paced, interval = traffic.paced, traffic.interval
            if paced is not None and (interval is None or paced < 1 / interval):  # slower than its rate_limit
                parts.append(f"waiting {traffic.waiting_until - now:.1f} s for {name}'s pace after a 429 "
                             f"({paced:.3g} a second)")
            elif interval is not None:
                parts.append(f"waiting {traffic.waiting_until - now:.1f} s for {name}'s rate limit "
                             f"({rate_text(interval)})")
        return f"{self.name}: " + " · ".join(parts)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        ctx = self.ctx
        text = Text(self.line())
        if ctx is not None and ctx.stats.total:
            bar = ProgressBar(total=ctx.stats.total, completed=min(ctx.stats.read, ctx.stats.total), width=40)
            return Group(bar, text)
        return text


def estimate(store: Store, flow: str) -> str | None:
    """What the last finished run of this flow suggests the next one takes, when over a minute."""
    from flowlang.testing.plan import duration_text, rate_text

    for job in store.jobs(flow, 50):
        stats = job.get("stats")
        # a plan, a dry run, a --limit run (kind test), a retry, a ledger edit: not what a run will do
        if not stats or job.get("status") == "running" or job.get("recorded") or job.get("kind") not in ESTIMATED_FROM:
            continue
        from flowlang.runtime.jsoncodec import loads

        data = loads(stats) if isinstance(stats, str) else stats
        connections = data.get("connections") or {}
        lines = []
        longest = 0.0
        for name, traffic in sorted(connections.items()):
            interval = traffic.get("interval")
            requests = int(traffic.get("requests") or 0)
            if interval is None or not requests:
                continue
            seconds = float(interval) * requests
            longest = max(longest, seconds)
            plural = "s" if requests != 1 else ""
            lines.append(f"{name}: {requests:,} request{plural} at {rate_text(float(interval))}: at least "
                         f"{duration_text(seconds)}")
        if longest > ESTIMATE_SHOWN_OVER:
            return f"estimate from job {job['id']}: " + "; ".join(lines)
        return None
    return None


@contextmanager
def progress_display(terminal: Terminal, name: str, enabled: bool) -> Iterator[RunProgress | None]:
    """A live display on stderr while the body runs (None when it is off)."""
    if not enabled or not terminal.rich:
        yield None
        return
    from rich.live import Live

    progress = RunProgress(name)
    with Live(progress, console=terminal.err, refresh_per_second=4, transient=True) as live:
        terminal.live = live  # records written to stdout on the same screen erase it first (console.Terminal.out)
        try:
            yield progress
        finally:
            terminal.live = None
