"""Schedules of a running `flowlang serve` on an accelerated clock (FLOWLANG_CLOCK, 60x: a
every-minute cron ticks every real second): each tick is one scheduled job; a tick while the previous run
still runs is skipped and logged; catch_up runs a missed tick once at start. Time zones from IANA."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from fakeapi import FakeApi, Request
from flowlang.check.triggers import ScheduleTrigger
from flowlang.runtime.store import Store
from flowlang.serve.clock import ScaledClock
from flowlang.serve.schedule import latest_tick, next_tick
from flowlang.serve.service import ServeOptions, Service
from serving import ServeProcess, wait_for

TICKS = 'use api = http(base_url: env.API)\nsend {at: job.trigger.scheduled_at, kind: job.trigger.kind} to ' \
        'api.post("/ticks")\n'


def moments(api: FakeApi, path: str = "/ticks") -> list[datetime]:
    return [datetime.fromisoformat(r.body["at"].replace("Z", "+00:00")) for r in list(api.requests) if r.path == path]


def test_an_every_minute_schedule_ticks_every_second_on_a_60x_clock(tmp_path: Path) -> None:
    (tmp_path / "tick.flow").write_text('trigger schedule("* * * * *")\n' + TICKS)
    with FakeApi() as api, ServeProcess(tmp_path, env={"API": api.url,
                                                       "FLOWLANG_CLOCK": "2026-01-01T00:00:30Z@60"}) as serve:
        wait_for(lambda: len(moments(api)) >= 4, what="four ticks")
        assert serve.terminate() == 0
    seen = moments(api)
    first = seen[0]
    assert first == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert seen == [first.replace(minute=first.minute + i) for i in range(len(seen))]  # each minute once, in order
    assert {r.body["kind"] for r in api.requests} == {"scheduled"}
    assert 'schedule \\"* * * * *\\" (UTC), next tick 2026-01-01T00:01:00Z' in serve.logs()


def test_a_tick_while_the_previous_run_still_runs_is_skipped_and_logged(tmp_path: Path) -> None:
    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(2.5)
        return 201, {}, {}

    (tmp_path / "tick.flow").write_text('trigger schedule("* * * * *")\n' + TICKS)
    with FakeApi() as api:
        api.route("POST", r"^/ticks$", slow)
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T00:00:30Z@60"}) as serve:
            wait_for(lambda: len(moments(api)) >= 3, what="three runs")
            wait_for(lambda: serve.logs().count("skipped: the previous run still runs") >= 2, what="skipped ticks")
            assert serve.terminate() == 0
    seen = moments(api)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(seen)]
    assert all(g >= 120 for g in gaps)  # the ticks in between were skipped, none queued up
    assert len(set(seen)) == len(seen)


def test_catch_up_runs_a_missed_tick_once_at_start(tmp_path: Path) -> None:
    (tmp_path / "hourly.flow").write_text('trigger schedule("0 * * * *", catch_up: true)\n' + TICKS)
    (tmp_path / "other.flow").write_text('trigger schedule("0 * * * *")\n' + TICKS.replace("/ticks", "/other"))
    with FakeApi() as api:
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T00:10:00Z@1"}) as serve:
            assert serve.terminate() == 0
        assert moments(api) == []
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T03:20:00Z@1"}) as serve:
            wait_for(lambda: moments(api), what="the caught-up tick")
            time.sleep(1)
            assert serve.terminate() == 0
        assert moments(api) == [datetime(2026, 1, 1, 1, 0, tzinfo=UTC)]  # once, not three times
        assert moments(api, "/other") == []
        assert "catching up the tick of 2026-01-01T01:00:00Z missed while serve was down (and the later ones " \
               "to 2026-01-01T03:00:00Z, run once)" in serve.logs()
        # the next start, after a stop in which no tick was due, catches nothing up: the old code kept only
        # the 01:00 tick as done, so this start ran the 02:00 one (and the start after it the 03:00 one)
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T03:40:00Z@1"}) as serve:
            time.sleep(1.5)
            assert serve.terminate() == 0
        assert moments(api) == [datetime(2026, 1, 1, 1, 0, tzinfo=UTC)]
        assert "catching up" not in serve.logs()


def test_the_latest_missed_tick_is_found_without_walking_every_one() -> None:
    every_minute = ScheduleTrigger("* * * * *", "UTC")
    now = datetime(2026, 6, 1, 12, 30, 30, tzinfo=UTC)
    started = time.monotonic()
    assert latest_tick(every_minute, datetime(2025, 6, 1, tzinfo=UTC), now) == datetime(2026, 6, 1, 12, 30,
                                                                                      tzinfo=UTC)
    assert time.monotonic() - started < 1  # a year of minutes is not walked one by one
    yearly = ScheduleTrigger("0 0 1 1 *", "Europe/Oslo")
    assert latest_tick(yearly, datetime(2020, 1, 1, tzinfo=UTC), now) == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert latest_tick(yearly, datetime(2026, 1, 1, tzinfo=UTC), now) is None
    hourly = ScheduleTrigger("0 * * * *", "UTC")
    exactly = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert latest_tick(hourly, datetime(2026, 6, 1, 9, 0, tzinfo=UTC), exactly) == exactly


def test_ticks_follow_the_time_zone_and_its_daylight_saving() -> None:
    oslo = ScheduleTrigger("0 6 * * *", "Europe/Oslo")
    assert next_tick(oslo, datetime(2026, 1, 10, 12, tzinfo=UTC)) == datetime(2026, 1, 11, 5, tzinfo=UTC)
    assert next_tick(oslo, datetime(2026, 7, 10, 12, tzinfo=UTC)) == datetime(2026, 7, 11, 4, tzinfo=UTC)
    fixed = ScheduleTrigger("0 2 * * *", "+05:30")  # an offset, as to_zone() takes it: no daylight saving
    assert next_tick(fixed, datetime(2026, 7, 10, 12, tzinfo=UTC)) == datetime(2026, 7, 10, 20, 30, tzinfo=UTC)
    assert next_tick(ScheduleTrigger("0 2 * * *", "utc"), datetime(2026, 7, 10, tzinfo=UTC)) == datetime(
        2026, 7, 10, 2, tzinfo=UTC)
    weekdays = ScheduleTrigger("30 9 * * 1-5", "America/New_York")
    friday_evening = datetime(2026, 1, 9, 23, tzinfo=UTC)
    assert next_tick(weekdays, friday_evening) == datetime(2026, 1, 12, 14, 30, tzinfo=UTC)  # Monday


def test_a_time_the_clocks_show_twice_ticks_once_and_a_skipped_time_ticks_once() -> None:
    """Daylight saving as cron does it: on the day the clocks go back, a 01:30 job runs at the first 01:30
    only; on the day they jump, a 02:30 job runs once, when they jump (03:00); a wildcard schedule (its
    minute or hour field starting with *) ticks in both passes of the repeated hour, by real time."""
    def ticks(cron: str, tz: str, start: datetime, n: int) -> list[datetime]:
        found, after = [], start
        for _ in range(n):
            after = next_tick(ScheduleTrigger(cron, tz), after)
            found.append(after)
        return found

    fall = datetime(2024, 11, 2, 12, tzinfo=UTC)
    assert ticks("30 1 * * *", "America/New_York", fall, 3) == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 4, 6, 30, tzinfo=UTC),
        datetime(2024, 11, 5, 6, 30, tzinfo=UTC)]
    assert ticks("0,20,40 1 * * *", "America/New_York", fall, 4)[2:] == [
        datetime(2024, 11, 3, 5, 40, tzinfo=UTC), datetime(2024, 11, 4, 6, 0, tzinfo=UTC)]
    # a wildcard minute (or hour) ticks through both passes, by the real time that passes, as cron does
    assert ticks("*/20 1 * * *", "America/New_York", fall, 7)[3:] == [
        datetime(2024, 11, 3, 6, 0, tzinfo=UTC), datetime(2024, 11, 3, 6, 20, tzinfo=UTC),
        datetime(2024, 11, 3, 6, 40, tzinfo=UTC), datetime(2024, 11, 4, 6, 0, tzinfo=UTC)]
    assert ticks("30 2 * * *", "Europe/Oslo", datetime(2026, 10, 24, 12, tzinfo=UTC), 2) == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]
    # Chatham goes back from +13:45 to +12:45 at 03:45: 03:00 is shown twice
    assert ticks("0 3 * * *", "Pacific/Chatham", datetime(2024, 4, 6, 12, tzinfo=UTC), 2) == [
        datetime(2024, 4, 6, 13, 15, tzinfo=UTC), datetime(2024, 4, 7, 14, 15, tzinfo=UTC)]
    # a schedule that starts inside the second pass does not run it either
    assert next_tick(ScheduleTrigger("30 1 * * *", "America/New_York"),
                     datetime(2024, 11, 3, 6, 10, tzinfo=UTC)) == datetime(2024, 11, 4, 6, 30, tzinfo=UTC)
    assert ticks("0 * * * *", "America/New_York", datetime(2024, 11, 3, 4, 30, tzinfo=UTC), 3) == [
        datetime(2024, 11, 3, 5, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC),
        datetime(2024, 11, 3, 7, tzinfo=UTC)]
    spring = datetime(2024, 3, 9, 12, tzinfo=UTC)
    assert ticks("30 2 * * *", "America/New_York", spring, 2) == [
        datetime(2024, 3, 10, 7, 0, tzinfo=UTC), datetime(2024, 3, 11, 6, 30, tzinfo=UTC)]
    assert ticks("*/15 2 * * *", "America/New_York", spring, 2) == [
        datetime(2024, 3, 10, 7, 0, tzinfo=UTC), datetime(2024, 3, 11, 6, 0, tzinfo=UTC)]


def test_serve_in_new_york_runs_the_0130_job_once_on_the_night_the_clocks_go_back(tmp_path: Path) -> None:
    (tmp_path / "nightly.flow").write_text('trigger schedule("30 1 * * *", tz: "America/New_York")\n' + TICKS)
    (tmp_path / "later.flow").write_text('trigger schedule("0 2 * * *", tz: "America/New_York")\n'
                                         + TICKS.replace("/ticks", "/later"))
    with FakeApi() as api, ServeProcess(tmp_path, env={"API": api.url, "TZ": "America/New_York",
                                                       "FLOWLANG_CLOCK": "2024-11-03T01:20:00-04:00@1200"}) as serve:
        wait_for(lambda: moments(api, "/later"), what="the 02:00 tick, after both passes of 01:30")
        assert serve.terminate() == 0
    assert moments(api, "/later") == [datetime(2024, 11, 3, 7, tzinfo=UTC)]
    assert moments(api) == [datetime(2024, 11, 3, 5, 30, tzinfo=UTC)]  # 01:30-04:00 only, not 01:30-05:00 too


@pytest.mark.parametrize(("clock", "message"), [
    ("2026-01-01T00:00:00Z@nan", "the speed is a number from 0 to 1,000,000, got 'nan'"),
    ("2026-01-01T00:00:00Z@inf", "the speed is a number from 0 to 1,000,000, got 'inf'"),
    ("2026-01-01T00:00:00Z@1e300", "the speed is a number from 0 to 1,000,000"),
    ("9999-12-31T23:59:00Z@60", "the moment is from 1970 to 8999, got '9999-12-31T23:59:00Z'"),
])
def test_a_clock_serve_cannot_follow_is_refused_at_start(clock: str, message: str, tmp_path: Path) -> None:
    """Each was 'internal error: ValueError: cannot convert float NaN to integer' (OverflowError for the
    others): serve died a bug's death at start."""
    (tmp_path / "tick.flow").write_text('trigger schedule("* * * * *")\nemit 1\n')
    done = run_cli("serve", str(tmp_path), "--port", "0", env={"FLOWLANG_CLOCK": clock}, timeout=30)
    assert done.returncode == 2, done.stderr
    assert f"FLOWLANG_CLOCK: {message}" in done.stderr and "internal error" not in done.stderr


def test_a_tick_that_comes_as_serve_stops_starts_no_job(tmp_path: Path, monkeypatch: Any) -> None:
    """SIGTERM as a tick comes: the old code, which wrote the tick to the inbox before it ran it, started
    the tick's job anyway when the stop came during that write (seen in kill trials: the stop then
    cancelled the job half-run, leaving it `running` in the store, later `crashed`, its sends cut off).
    A tick that finds serve stopping starts no job, and is not kept as the schedule's last tick (a tick is
    kept once its run has ended), so `catch_up` runs it at the next start. In-process, on a frozen clock."""
    (tmp_path / "tick.flow").write_text('trigger schedule("* * * * *")\n' + TICKS)
    with FakeApi() as api:
        monkeypatch.setenv("API", api.url)
        clock = ScaledClock(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC), 0)
        service = Service(ServeOptions(folder=tmp_path, clock=clock))
        service.runs.start()
        service.runs.stopping = True  # SIGTERM arrives as the tick comes
        service.runs.call(service.scheduler._tick("tick", "tick", datetime(2026, 1, 1, 0, 1, tzinfo=UTC))).result(10)
        time.sleep(0.5)  # the old code's job starts here
        assert service.inbox.last_tick("tick") is None
        service.runs.stop(10)
        service.inbox.close()
    store = Store(tmp_path / ".flowlang")
    try:
        assert store.jobs("tick") == []
    finally:
        store.close()
    assert moments(api) == []


def test_catch_up_runs_again_a_tick_whose_run_a_kill_cut_off(tmp_path: Path) -> None:
    """serve killed outright (kill -9) while the run of the 01:00 tick of an hourly `catch_up: true`
    schedule was sending: the tick had been written as the schedule's last one when it began, so the
    restart at 01:20 found nothing missed and the tick's run was never done (its job left crashed; the
    next run at 02:00). A tick counts as done once its run has ended, so the restart catches it up."""
    arrived: list[str] = []
    killed = threading.Event()

    def hang_first(req: Request) -> tuple[int, dict[str, str], Any]:
        arrived.append(req.body["at"])
        if len(arrived) == 1:
            killed.wait(30)  # until serve is killed under it
        return 201, {}, {}

    (tmp_path / "hourly.flow").write_text('trigger schedule("0 * * * *", catch_up: true)\n' + TICKS)
    with FakeApi() as api:
        api.route("POST", r"^/ticks$", hang_first)
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T00:59:59Z@1"}) as serve:
            wait_for(lambda: arrived, what="the 01:00 tick's request")
            serve.kill()
            killed.set()
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T01:20:00Z@1"}) as serve:
            wait_for(lambda: len(arrived) >= 2, timeout=10, what="the cut-off tick caught up")
            assert serve.terminate() == 0
        assert "catching up the tick of 2026-01-01T01:00:00Z" in serve.logs()
    assert arrived == ["2026-01-01T01:00:00Z", "2026-01-01T01:00:00Z"]


def test_a_tick_whose_run_kills_serve_is_not_caught_up_a_fourth_time(tmp_path: Path) -> None:
    """A `catch_up: true` tick whose run killed serve (the OOM killer, a crash; here the API kills it) was
    caught up at every start, for ever under systemd's Restart=, each time cutting off every other run of the
    folder with it. After three runs of it cut short in a row, the next start says so and goes on."""
    arrived: list[str] = []
    serves: list[ServeProcess] = []

    def kill_serve(req: Request) -> tuple[int, dict[str, str], Any]:
        arrived.append(req.body["at"])
        proc = serves[-1].proc
        assert proc is not None
        proc.kill()
        return 201, {}, {}

    (tmp_path / "hourly.flow").write_text('trigger schedule("0 * * * *", catch_up: true)\n' + TICKS)
    with FakeApi() as api:
        api.route("POST", r"^/ticks$", kill_serve)
        for clock in ("2026-01-01T00:59:59Z@1", "2026-01-01T01:20:00Z@1", "2026-01-01T01:30:00Z@1"):
            serve = ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": clock})
            serves.append(serve)
            serve.start()
            assert serve.proc is not None
            serve.proc.wait(60)
            serve.log_file.close()
        assert arrived == ["2026-01-01T01:00:00Z"] * 3
        with ServeProcess(tmp_path, env={"API": api.url, "FLOWLANG_CLOCK": "2026-01-01T01:40:00Z@1"}) as serve:
            wait_for(lambda: "is not caught up" in serve.logs(), what="the tick given up")
            time.sleep(1)
            assert serve.terminate() == 0
        assert arrived == ["2026-01-01T01:00:00Z"] * 3
    assert ("hourly: the tick of 2026-01-01T01:00:00Z is not caught up: its run was cut short 3 times in a row "
            "(serve ended while it ran: killed, out of memory or crashed); the schedule goes on from its next tick"
            ) in serve.logs()
