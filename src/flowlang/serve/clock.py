"""The time schedules run by: the real clock, or (for tests and rehearsals, FLOWLANG_CLOCK) a clock that
starts at a given moment and runs N times faster (`2026-03-29T00:58:00+01:00@60`), or stands still
until it is moved (`...@0`, for tests in-process)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from flowlang.errors import UsageError

CLOCK_ENV = "FLOWLANG_CLOCK"
MAX_SPEED = 1_000_000  # a day of real time is 2,700 years of the clock
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


class Clock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def seconds_until(self, moment: datetime) -> float:
        """Real seconds until the clock shows `moment`."""
        return max(0.0, (moment - self.now()).total_seconds())

    async def sleep_until(self, moment: datetime, step: float = 60.0) -> None:
        """Sleep until `moment`, at most `step` real seconds at a time (the caller looks again)."""
        await asyncio.sleep(min(step, self.seconds_until(moment)))


class ScaledClock(Clock):
    """Starts at `start` and runs `speed` times faster than real time (0: frozen until advanced)."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start = start
        self.speed = speed
        self.began = time.monotonic()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self.began) * self.speed
        return self.start + timedelta(seconds=elapsed) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def seconds_until(self, moment: datetime) -> float:
        left = (moment - self.now()).total_seconds()
        if left <= 0:
            return 0.0
        return left / self.speed if self.speed > 0 else 0.05  # frozen: look again soon


def clock_from(text: str | None) -> Clock:
    """The clock FLOWLANG_CLOCK describes (`ISO-MOMENT@SPEED`), else real time."""
    if not text:
        return Clock()
    moment_text, _, speed = text.partition("@")
    try:
        start = datetime.fromisoformat(moment_text.replace("Z", "+00:00"))
        factor = float(speed or "1")
    except ValueError:
        raise UsageError(f"{CLOCK_ENV}={text!r} is not MOMENT@SPEED, like 2026-01-01T00:00:00Z@60") from None
    if start.tzinfo is None:
        raise UsageError(f"{CLOCK_ENV}: give the moment with its offset, like 2026-01-01T00:00:00Z")
    if not 0 <= factor <= MAX_SPEED:  # not NaN; an infinite, huge or NaN speed was an internal error
        raise UsageError(f"{CLOCK_ENV}: the speed is a number from 0 to {MAX_SPEED:,}, got {speed!r}")
    if not EARLIEST <= start < LATEST:  # a clock near the year 9999 overflowed at its first tick
        raise UsageError(f"{CLOCK_ENV}: the moment is from {EARLIEST.year} to {LATEST.year - 1}, got {moment_text!r}")
    return ScaledClock(start.astimezone(UTC), factor)
