"""Cron schedules (croniter, five fields, an IANA time zone): each tick is a `scheduled` job; a tick while
a run of the flow still goes is skipped and logged; with catch_up, a tick missed while serve was down
runs once at start. Ticks follow the serve clock (real, or FLOWLANG_CLOCK in tests). Daylight saving, as
cron does it: a time the clocks skip ticks once when they jump; a time of day the clocks show twice
ticks the first time only, unless the schedule is a wildcard one (its minute or hour field starts with `*`:
`*/15 * * * *`, `* 1 * * *`), which keeps ticking by the real time that passes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from croniter import croniter

from flowlang.check.triggers import ScheduleTrigger
from flowlang.errors import FlowError, LockedError
from flowlang.runtime.builtins.time import time_zone
from flowlang.runtime.values import format_datetime
from flowlang.serve.clock import Clock
from flowlang.serve.inbox import Inbox
from flowlang.serve.runs import MAX_CUT_SHORT, Runs

log = logging.getLogger("flowlang.serve")


def next_tick(trigger: ScheduleTrigger, after: datetime) -> datetime:
    """The first tick strictly after `after`, in UTC (wall-clock times of the trigger's zone)."""
    zone = time_zone(trigger.tz)
    ticks = croniter(trigger.cron, after.astimezone(zone))
    minute, hour = trigger.cron.split()[:2]
    wildcard = minute.startswith("*") or hour.startswith("*")  # as Vixie cron and cronie tell them apart
    while True:
        found = ticks.get_next(datetime)
        assert isinstance(found, datetime)
        moment = found.astimezone(UTC)
        if wildcard or not _shown_again(moment.astimezone(zone)):
            return moment


def latest_tick(trigger: ScheduleTrigger, after: datetime, now: datetime) -> datetime | None:
    """The last tick later than `after` and no later than `now`, or None. Walked forward from a window that
    grows back from `now` (an hour, a day, ...), so an every-minute schedule down for a year is not
    walked minute by minute, and a yearly one still finds its tick."""
    for back in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367), None):
        start = after if back is None or now - back <= after else now - back
        found, tick = None, next_tick(trigger, start)
        while tick <= now:
            found, tick = tick, next_tick(trigger, tick)
        if found is not None or start == after:
            return found
    return None


def _shown_again(local: datetime) -> bool:
    """Whether the clock showed this time of day already, an hour (or so) before: the second pass through
    the hour repeated when daylight saving time ends (01:30 in New York on the first Sunday of November)."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


class Scheduler:
    """The ticks of every scheduled flow (tasks on the runs loop)."""

    def __init__(self, runs: Runs, inbox: Inbox, clock: Clock) -> None:
        self.runs = runs
        self.inbox = inbox
        self.clock = clock
        self.upcoming: dict[tuple[str, int], datetime] = {}
        self.skipped: dict[str, int] = {}

    def key(self, route: str, index: int) -> str:
        return route if index == 0 else f"{route}#{index}"

    def start(self) -> None:
        now = self.clock.now()
        for route, served in self.runs.flows.items():
            for i, trigger in enumerate(served.schedules):
                self.upcoming[(route, i)] = next_tick(trigger, now)
                log.info(f"{route}: schedule \"{trigger.cron}\" ({trigger.tz}), next tick "
                         f"{format_datetime(self.upcoming[(route, i)].astimezone(time_zone(trigger.tz)))}")
                self.runs.call(self._loop(route, i, trigger))

    def next_ticks(self, route: str) -> list[datetime]:
        return [when for (r, _), when in sorted(self.upcoming.items()) if r == route]

    async def _loop(self, route: str, index: int, trigger: ScheduleTrigger) -> None:
        key = self.key(route, index)
        last = self.inbox.last_tick(key)
        if last is None:
            await asyncio.wrap_future(self.inbox.set_tick(key, format_datetime(self.clock.now())))
        else:
            cut_short = await asyncio.wrap_future(self.inbox.tick_cut_short(key))
            now = self.clock.now()
            since = datetime.fromisoformat(last.replace("Z", "+00:00"))
            missed = next_tick(trigger, since)
            if trigger.catch_up and missed <= now:
                # once for the whole time serve was down: the run is kept as the last of the ticks missed,
                # so the next start does not catch up the second one (nor the next start the third)
                latest = latest_tick(trigger, since, now) or missed
                many = "" if latest == missed else f" (and the later ones to {format_datetime(latest)}, run once)"
                if cut_short >= MAX_CUT_SHORT:
                    # a tick whose run kills serve (the OOM killer, a crash) was caught up at every start, for
                    # ever under systemd's Restart=, cutting off every other flow's runs with it each time
                    log.error(f"{route}: the tick of {format_datetime(missed)} is not caught up: its run was cut "
                              f"short {cut_short} times in a row (serve ended while it ran: killed, out of memory "
                              f"or crashed); the schedule goes on from its next tick")
                    await asyncio.wrap_future(self.inbox.set_tick(key, format_datetime(latest), ended=""))
                else:
                    log.info(f"{route}: catching up the tick of {format_datetime(missed)} missed while serve was "
                             f"down{many}")
                    await self._tick(route, key, missed, kept_as=latest)
        while not self.runs.stopping:
            when = self.upcoming[(route, index)]
            while self.clock.now() < when and not self.runs.stopping:
                await self.clock.sleep_until(when, step=0.5)
            if self.runs.stopping:
                return
            self.upcoming[(route, index)] = next_tick(trigger, max(when, self.clock.now()))
            await self._tick(route, key, when)

    async def _tick(self, route: str, key: str, when: datetime, kept_as: datetime | None = None) -> None:
        """A tick is kept as the schedule's last one once it is done with: skipped, or its run ended. One
        whose run a kill cut off (or that a stop kept from starting) is not, so catch_up runs it at start.
        `kept_as`: the tick kept instead (a catch-up's run stands for every tick missed, the latest kept)."""
        kept = format_datetime(kept_as or when)
        if self.runs.stopping:  # SIGTERM came as the tick came: a job started now would be cut off
            log.info(f"{route}: tick of {format_datetime(when)} not run: serve is stopping")
            return
        if self.runs.busy(route):
            self.skipped[route] = self.skipped.get(route, 0) + 1
            log.warning(f"{route}: tick of {format_datetime(when)} skipped: the previous run still runs")
            await asyncio.wrap_future(self.inbox.set_tick(key, kept))
            return
        self.runs.spawn(self._run(route, key, when, kept))

    async def _run(self, route: str, key: str, when: datetime, kept: str) -> None:
        await asyncio.wrap_future(self.inbox.tick_started(key, kept))
        try:
            await self.runs.run_job(route, "scheduled", {"kind": "scheduled", "scheduled_at": when})
        except LockedError as e:
            self.skipped[route] = self.skipped.get(route, 0) + 1
            log.warning(f"{route}: tick of {format_datetime(when)} skipped: {e.message}")
        except FlowError as e:
            log.error(f"{route}: the scheduled run cannot start: {e.message}")
        await asyncio.wrap_future(self.inbox.set_tick(key, kept, ended=kept))
