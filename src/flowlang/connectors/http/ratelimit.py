"""A per-connection rate limit shared by all concurrent iterations.

"N per T" holds exactly, whatever the server's clock sees: a request may start only once the
request N before it has *finished* at least T seconds ago (a sliding log of the last N requests), so
no window of T seconds can hold N + 1 arrivals at the server, however long each request took on the
way. On top of that, starts are spaced T/N apart, so there is no burst: "60/minute" is one request
a second. Waiters go one at a time, first come first served.

The limit is the API's, not one run's: connections of the same rate to the same base URL with the same
credentials share one limiter while their event loop runs (`shared`), so the runs of `flowlang serve`
(each delivery and tick opens its connections anew, on serve's one loop of runs) keep to it together, as
two such connections of one run do."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flowlang.errors import FlowRuntimeError

UNITS = {"second": 1.0, "sec": 1.0, "s": 1.0, "minute": 60.0, "min": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0,
         "day": 86400.0, "d": 86400.0}
SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


MAX_RATE_COUNT = 1_000_000


def parse_rate(text: str) -> tuple[float, float]:
    """'60/minute', '10/second', '1000/hour', '5/10s' -> (requests, seconds)."""
    m = SPEC.match(text.lower())
    if not m or m.group(3) not in UNITS:
        raise FlowRuntimeError(f'rate_limit must look like "60/minute" or "10/second", got {text!r}', "connector")
    count = float(m.group(1))
    per = float(m.group(2) or 1) * UNITS[m.group(3)]
    if count <= 0:
        raise FlowRuntimeError("rate_limit needs a positive number of requests", "connector")
    if count > MAX_RATE_COUNT:  # the limiter keeps the last `count` requests: 1e20 was an OverflowError
        raise FlowRuntimeError(f"rate_limit allows at most {MAX_RATE_COUNT:,} requests in its window, got "
                               f"{m.group(1)} (for no limit, leave rate_limit out)", "connector")
    if per <= 0:  # "1/0s": a window of no time
        raise FlowRuntimeError(f"rate_limit needs a window longer than 0 seconds, got {text!r}", "connector")
    return count, per


class Ticket:
    """One request let through: when it started, and when it finished (None while in flight)."""

    __slots__ = ("_done", "finished", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.finished: float | None = None
        self._done: asyncio.Event | None = None

    async def wait_finished(self) -> None:
        if self.finished is None:
            if self._done is None:
                self._done = asyncio.Event()
            await self._done.wait()

    def finish(self, now: float) -> None:
        if self.finished is None:
            self.finished = now
            if self._done is not None:
                self._done.set()


class RateLimiter:
    """At most `count` requests in any `per` seconds (a whole number of them: "1.5/second" is 1 per
    2/3 s), starts at least `per / count` apart. `clock` is a monotonic clock in seconds, the same
    one `asyncio.sleep` waits on (the default is the event loop's: `time.monotonic`)."""

    def __init__(self, count: float, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = per / count  # seconds between starts
        self.count = max(1, math.floor(count))
        self.window = per if self.count == count else self.count * self.interval
        self.clock = clock
        self._next = -math.inf  # earliest start the spacing allows
        self._log: deque[Ticket] = deque(maxlen=self.count)  # the last `count` requests let through
        self._turn: asyncio.Lock | None = None

    async def acquire(self, watcher: Any = None, not_before: Callable[[], float] | None = None) -> tuple[Ticket, float]:
        """Wait for this request's turn; returns its ticket (pass it to `release` when the request
        has finished, failed or been cancelled) and the seconds waited (`watcher.waiting_until`
        shows when it may go). `not_before` gives a time no request starts before (a Retry-After's
        hold, which may come while this request waits): the starts after it are spaced as ever."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        began = self.clock()
        async with self._turn:
            while True:
                now = self.clock()
                slot = max(now, self._next) if not_before is None else max(now, self._next, not_before())
                if len(self._log) == self.count:
                    oldest = self._log[0]
                    if oldest.finished is None:
                        await oldest.wait_finished()
                        continue
                    slot = max(slot, oldest.finished + self.window)
                if slot <= now:
                    break
                if watcher is not None:
                    watcher.waiting_until = max(watcher.waiting_until, slot)
                await asyncio.sleep(slot - now)
            ticket = Ticket(now)
            self._log.append(ticket)
            self._next = now + self.interval
        return ticket, now - began

    def release(self, ticket: Ticket) -> None:
        """The request has finished (answered, failed or cancelled)."""
        ticket.finish(self.clock())


    def idle(self, now: float) -> bool:
        """No request of it is in flight, and none it let through counts in a window ending now."""
        return self._next <= now and all(t.finished is not None and t.finished + self.window <= now
                                         for t in self._log)


# (count, window, interval, base URL, credentials' digest) -> (the loop it runs on, the limiter)
_SHARED: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, RateLimiter]] = {}


def shared(limiter: RateLimiter | None, base_url: str | None, credentials: list[str]) -> RateLimiter | None:
    """The limiter a new connection takes: the one of an earlier connection of this event loop with the
    same rate, base URL and credentials while any request it let through still counts, else `limiter`.
    Before, each run of `flowlang serve` opened a limiter of its own: four deliveries of a flow whose
    `rate_limit: "1/5s"` sent their four requests within 0.1 s."""
    if limiter is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return limiter
    import hashlib

    digest = hashlib.sha256("\0".join(sorted(credentials)).encode("utf-8", "surrogatepass")).hexdigest()
    key = (limiter.count, limiter.window, limiter.interval, base_url, digest)
    now = limiter.clock()
    for old, (its_loop, its) in list(_SHARED.items()):  # a closed loop's, and those nothing counts in any more
        if its_loop.is_closed() or (old != key and its.clock is limiter.clock and its.idle(now)):
            del _SHARED[old]
    found = _SHARED.get(key)
    if found is not None and found[0] is loop and found[1].clock is limiter.clock:
        return found[1]
    _SHARED[key] = (loop, limiter)
    return limiter
