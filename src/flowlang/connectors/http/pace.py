"""A connection's pace, learnt from the API's rate-limit refusals (a 429, or a 403 that says it is one)
and shared by every request of the connection, the iterations of `parallel` loops included.

Until the first refusal requests go unpaced (or at the connection's rate_limit). A refusal cuts the
pace to CUT times the rate the API took requests at in the last second (or the pace, if lower), so
the next requests go a little slower than the API's limit. Refusals of requests sent before the cut,
and those in the second after it (the API still counts what it took before), cut no more. Each
request taken then adds RECOVERY to the pace (a fifth more each second), which climbs back towards
the API's limit and is cut again when it gets there. After a cut that knew little of the API's rate
(it took fewer than KNOWN requests in the last second: the run's first request was refused), each
adds START (about 7 times more each second, as TCP's slow start) and the next refusal, which
measures the API's rate, cuts at once. Starts are spaced 1/rate apart, first come first served: the
refused requests of a parallel loop do not come back together."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from flowlang.runtime.stats import Traffic

CUT = 0.8  # a refusal sets the pace to this share of the rate the API took requests at in the last second
RECOVERY = 0.2  # each request taken adds this to the pace (requests a second): a fifth more each second
START = 2.0  # ...or this, after a cut that knew little of the API's rate: about 7 times more each second
KNOWN = 2  # requests taken in the last second from which a cut knows the API's rate
MIN_RATE = 0.1  # requests a second: the slowest pace (one request every 10 s)
SETTLE = 1.0  # seconds after a cut (or two requests at the new pace, if longer) whose refusals cut no more:
# an API counts the requests of its last second (or minute) and refuses for a while after a burst
MEASURED = 1.0  # seconds of requests taken a cut measures the API's rate from
SEEN = 1024  # requests taken kept for that measure


class Pace:
    """Requests a second the API takes now (None: not paced, no refusal yet), at most `ceiling` (the
    rate_limit's, when the connection has one). `clock` is monotonic seconds, as asyncio.sleep's."""

    def __init__(self, ceiling: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate: float | None = None
        self.ceiling = ceiling
        self.clock = clock
        self.cut_at = -math.inf  # when the pace was last cut
        self.starting = False  # the last cut knew little of the API's rate: the pace grows by START
        self.refusing_since: float | None = None  # the first refusal since the API last took a request
        self._last = -math.inf  # the last start the pace let go
        self._probed = -math.inf  # the last request let go while the API refuses every one (wait)
        self._taken: deque[float] = deque(maxlen=SEEN)  # when the last requests were taken
        self._turn: asyncio.Lock | None = None

    def refused(self, started: float) -> float | None:
        """The API refused a request sent at `started` for its rate limit: the new pace, or None when the
        request went out before the last cut or the cut is still settling (the pace already answers it)."""
        now = self.clock()
        if self.refusing_since is None:
            self.refusing_since = now
        if started < self.cut_at or (self.rate is not None and not self.starting and
                                     now - self.cut_at < max(SETTLE, 2 / self.rate)):
            return None
        taken = sum(1 for t in self._taken if now - t <= MEASURED)
        measured = max(1, taken) / MEASURED
        self.rate = max(MIN_RATE, (measured if self.rate is None else min(self.rate, measured)) * CUT)
        self.starting = taken < KNOWN  # a refused first request: 0.8/s, soon faster
        self.cut_at = now
        return self.rate

    def accepted(self) -> None:
        """The API answered a request without refusing it: the pace grows back, a little."""
        self.refusing_since = None
        rate = self.rate
        self._taken.append(self.clock())
        if rate is not None:
            rate += START if self.starting else RECOVERY
            self.rate = rate if self.ceiling is None else min(rate, self.ceiling)

    def refusing_for(self) -> float:
        """Seconds the API has refused every request of the connection for (0: it took the last one)."""
        return 0.0 if self.refusing_since is None else self.clock() - self.refusing_since

    async def wait(self, limit: float, watcher: Traffic | None = None) -> float:
        """Wait for this request's turn under the pace (`watcher.waiting_until` shows when it may go); the
        seconds waited. Once the API has refused every request for `limit` seconds, one request every
        1/MIN_RATE seconds goes (to see whether it takes them again) and the others raise Refusing."""
        if self.rate is None:
            return 0.0
        if self._turn is None:
            self._turn = asyncio.Lock()
        began = self.clock()
        async with self._turn:
            while True:  # the pace may be cut while this request waits: its slot moves
                now = self.clock()
                refusing = self.refusing_for()
                if refusing > limit:
                    if now - self._probed < 1 / MIN_RATE:
                        raise Refusing(refusing)
                    self._probed = now
                    break
                rate = self.rate
                slot = self._last + 1 / rate if rate is not None else now
                if slot <= now:
                    break
                if watcher is not None:
                    watcher.waiting_until = max(watcher.waiting_until, slot)
                await asyncio.sleep(min(slot - now, limit - refusing + 0.001))
            self._last = now
        return now - began


class Refusing(Exception):
    """The API has refused every request of the connection for its rate limit for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds
