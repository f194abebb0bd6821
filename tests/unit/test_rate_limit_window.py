"""The HTTP rate limit on a virtual clock: "N per T" never lets N + 1 requests into any window of T
seconds, whatever each request's latency and however many wait at once, and it does not hold
requests back for longer than the rule needs. Time is an event loop whose clock jumps to the next
timer instead of sleeping, so the figures are exact and the test takes no wall-clock time."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from itertools import pairwise
from typing import Any

import pytest

from flowlang.connectors.http.ratelimit import RateLimiter, parse_rate


class JumpingSelector(selectors.DefaultSelector):
    """Never blocks: a wait for the next timer moves the loop's virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            self.now += timeout
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.jumping = JumpingSelector()
        super().__init__(self.jumping)

    def time(self) -> float:
        return self.jumping.now


def on_virtual_time(main: Callable[[VirtualLoop], Coroutine[Any, Any, Any]]) -> Any:
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


Span = tuple[float, float]  # (start, finish) of one request, on the virtual clock


def run_requests(rate: str, latencies: list[float], parallel: int) -> list[Span]:
    """`len(latencies)` requests through one limiter, `parallel` at a time; request i takes
    latencies[i] seconds on the wire. Returns each request's span."""
    async def main(loop: VirtualLoop) -> list[Span]:
        limiter = RateLimiter(*parse_rate(rate), clock=loop.time)
        spans: list[Span] = []
        queue = list(enumerate(latencies))

        async def worker() -> None:
            while queue:
                _, latency = queue.pop(0)
                ticket, _ = await limiter.acquire()
                start = loop.time()
                try:
                    await asyncio.sleep(latency)
                finally:
                    limiter.release(ticket)
                spans.append((start, loop.time()))

        await asyncio.gather(*(worker() for _ in range(parallel)))
        return spans
    result: list[Span] = on_virtual_time(main)
    return result


def most_in_any_window(spans: list[Span], window: float) -> int:
    """The most requests the server can have seen arrive within one window of `window` seconds
    ([a, a + window)), when each request may reach it at any moment of its span. A window meets a
    span when a <= finish and a + window > start; sliding a window right until its left edge meets
    some span's finish loses no span, so checking the window that opens at every request's finish
    checks every window there is."""
    return max(sum(1 for start, finish in spans if finish >= edge and start < edge + window)
               for _, edge in spans)


def most_starts_in_any_window(spans: list[Span], window: float) -> int:
    starts = sorted(start for start, _ in spans)
    return max(sum(1 for t in starts if edge <= t < edge + window) for edge in starts)


@pytest.mark.parametrize("parallel", [1, 8, 50])
def test_sixty_a_minute_never_lets_sixty_one_into_a_minute(parallel: int) -> None:
    latencies = [0.05 + (i * 7919 % 13) * 0.3 for i in range(200)]  # 50 ms to 3.65 s, mixed
    spans = run_requests("60/minute", latencies, parallel)
    assert len(spans) == 200
    assert most_in_any_window(spans, 60.0) <= 60
    if parallel > 1:  # one at a time, 50 ms to 3.65 s each, cannot reach 60 a minute anyway
        assert most_in_any_window(spans, 60.0) >= 55  # the rule, not a much slower one
    assert most_starts_in_any_window(spans, 60.0) <= 60
    # no burst: starts at least a second apart
    starts = sorted(start for start, _ in spans)
    assert min(b - a for a, b in pairwise(starts)) >= 1.0


def test_instant_requests_go_one_a_second_and_no_window_holds_more_than_sixty() -> None:
    spans = run_requests("60/minute", [0.0] * 181, 20)
    starts = sorted(start for start, _ in spans)
    assert starts == [float(i) for i in range(181)]  # exactly the schedule: not slower than needed
    # [0, 60) holds 60; the closed [0, 60] would hold 61, so every 61st start is a minute after the first
    assert most_in_any_window(spans, 60.0) == 60
    assert all(starts[i + 60] - starts[i] >= 60.0 for i in range(len(starts) - 60))


def test_a_slow_request_holds_back_the_one_sixty_after_it() -> None:
    # request 0 is on the wire for 100 s: the server may see it arrive at t=99.9, so request 60
    # (which would start at t=60 on the schedule) must wait until a minute after it finished
    spans = run_requests("60/minute", [100.0] + [0.0] * 80, 60)
    first = next(span for span in spans if span[1] - span[0] == 100.0)
    starts = sorted(start for start, _ in spans)
    assert starts[60] >= first[1] + 60.0
    assert most_in_any_window(spans, 60.0) <= 60


@pytest.mark.parametrize(("rate", "count", "window"), [("5/10s", 5, 10.0), ("20/second", 20, 1.0),
                                                        ("1.5/second", 1, 2 / 3)])
def test_other_rates(rate: str, count: int, window: float) -> None:
    spans = run_requests(rate, [0.01 * (i % 5) for i in range(60)], 10)
    assert most_in_any_window(spans, window) <= count
    starts = sorted(start for start, _ in spans)
    spacing = window / count
    assert min(b - a for a, b in pairwise(starts)) >= spacing - 1e-9


def test_a_failed_or_cancelled_request_frees_its_place() -> None:
    async def main(loop: VirtualLoop) -> list[float]:
        limiter = RateLimiter(*parse_rate("2/second"), clock=loop.time)
        starts: list[float] = []

        async def request(fail: bool) -> None:
            ticket, _ = await limiter.acquire()
            starts.append(loop.time())
            try:
                await asyncio.sleep(0.1)
                if fail:
                    raise OSError("connection reset")
            finally:
                limiter.release(ticket)

        stuck = asyncio.ensure_future(request(False))
        await asyncio.sleep(0.05)
        stuck.cancel()
        results = await asyncio.gather(*(request(i % 2 == 0) for i in range(5)), return_exceptions=True)
        assert sum(isinstance(r, OSError) for r in results) == 3
        return starts
    starts = on_virtual_time(main)
    assert len(starts) == 6
    assert starts[-1] < 4.0  # nothing waits forever for the cancelled request


def test_waiting_until_shows_the_slot() -> None:
    class Watcher:
        waiting_until = 0.0

    async def main(loop: VirtualLoop) -> tuple[float, float]:
        limiter = RateLimiter(*parse_rate("1/second"), clock=loop.time)
        watcher = Watcher()
        first, _ = await limiter.acquire(watcher)
        limiter.release(first)
        second, waited = await limiter.acquire(watcher)
        limiter.release(second)
        return waited, watcher.waiting_until
    waited, until = on_virtual_time(main)
    assert waited == pytest.approx(1.0) and until == pytest.approx(1.0)
