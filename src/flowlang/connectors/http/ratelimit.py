"""A per-connection rate limit shared by all concurrent iterations. Each request reserves the next
slot on a fixed schedule, so there is no burst: "60/minute" is one request a second."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from flowlang.errors import FlowRuntimeError

UNITS = {"second": 1.0, "sec": 1.0, "s": 1.0, "minute": 60.0, "min": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0,
         "day": 86400.0, "d": 86400.0}
SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


def parse_rate(text: str) -> float:
    """'60/minute', '10/second', '1000/hour', '5/10s' -> seconds between requests."""
    m = SPEC.match(text.lower())
    if not m or m.group(3) not in UNITS:
        raise FlowRuntimeError(f'rate_limit must look like "60/minute" or "10/second", got {text!r}', "connector")
    count = float(m.group(1))
    per = float(m.group(2) or 1) * UNITS[m.group(3)]
    if count <= 0:
        raise FlowRuntimeError("rate_limit needs a positive number of requests", "connector")
    return per / count


class RateLimiter:
    """Reserves start times `interval` apart; callers sleep until their slot."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0

    async def wait(self, watcher: Any = None) -> float:
        """Sleep until this request's slot; returns the seconds waited (`watcher.waiting_until` shows it)."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            if watcher is not None:
                watcher.waiting_until = max(watcher.waiting_until, slot)
            await asyncio.sleep(slot - now)
        return slot - now
