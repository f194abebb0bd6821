"""The progress display of `flowlang run` on a real pseudo-terminal (pexpect), read through a VT100
emulator (pyte): counts, requests, the rate, the ETA and the rate limit's wait while it runs; the
estimate before a run expected to take over a minute; nothing of it off a terminal or with --quiet."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pexpect
import pyte
import pytest

from conftest import run_cli
from fakeapi import FakeApi, RateLimited
from flowlang.runtime.store import Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pexpect needs a POSIX pseudo-terminal")

FLOW = """flow "Slow sync"
use api = http(base_url: env.API, rate_limit: "10/second")
for each i in range(0, 30)
  send {n: i} to api.post("/items")
end
"""


class Terminal:
    """`flowlang ARGS` on a pseudo-terminal, every screen it showed kept."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        full = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "30", **env}
        full.pop("FLOWLANG_STATE_DIR", None)
        self.child = pexpect.spawn(sys.executable, ["-m", "flowlang", *args], env=full, encoding="utf-8",
                                   timeout=60, dimensions=(30, 200))
        self.screen = pyte.Screen(200, 30)
        self.stream = pyte.Stream(self.screen)
        self.seen: list[str] = []

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def run_to_end(self, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.1))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                self.child.close()
                return self.text()
            self.seen.append(self.text())
        raise AssertionError("the run did not end:\n" + self.text())


def test_progress_while_running_on_a_terminal(tmp_path: Path) -> None:
    flow = tmp_path / "slow.flow"
    flow.write_text(FLOW)
    with FakeApi() as api:
        term = Terminal(["run", str(flow)], {"API": api.url})
        final = term.run_to_end()
        assert api.count("POST", "/items") == 30
    assert term.child.exitstatus == 0, final
    live = [screen for screen in term.seen if "records/s" in screen]
    assert live, "no progress line was ever shown:\n" + final
    middle = next(s for s in live if "read 1" in s and "/30" in s and "ETA" in s)
    assert "Slow sync: read " in middle and "sent " in middle and "requests " in middle and "retries 0" in middle
    assert any("waiting" in s and "for api's rate limit (10/second)" in s for s in live)
    counts = [int(s.split("sent ")[1].split(" ")[0].replace(",", "")) for s in live]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # it moved while the run went on
    assert "finished in" in final and "read 30, sent 30" in final
    assert "records/s" not in final  # the live line goes away; the summary stays


def test_progress_says_the_wait_for_the_pace_a_429_set(tmp_path: Path) -> None:
    """A connection without a rate_limit slowed by the API's 429s (http/pace.py) waited without a word on the
    live line; it says the wait and the pace."""
    flow = tmp_path / "paced.flow"
    flow.write_text('use api = http(base_url: env.API)\nfor each n in range(0, 30) parallel 10\n'
                    '  send {n: n} to api.post("/items")\nend\n')
    limited = RateLimited(5)
    with FakeApi() as api:
        api.route("POST", "/items", limited)
        term = Terminal(["run", str(flow)], {"API": api.url})
        final = term.run_to_end()
    assert term.child.exitstatus == 0, final
    assert limited.taken == {n: 1 for n in range(30)}
    assert any("waiting" in s and "for api's pace after a 429 (" in s and " a second)" in s for s in term.seen), final


def test_the_estimate_before_a_long_run(tmp_path: Path) -> None:
    flow = tmp_path / "slow.flow"
    flow.write_text(FLOW.replace("range(0, 30)", "range(0, 3)"))
    store = Store(tmp_path / ".flowlang")
    job, _ = store.start_job("Slow sync", {}, False)
    store.finish_job(job, "ok", {"read": 900, "connections": {"api": {"requests": 900, "interval": 0.1}}},
                     None, "Slow sync", {})
    store.close()
    with FakeApi() as api:
        term = Terminal(["run", str(flow)], {"API": api.url})
        final = term.run_to_end()
    assert term.child.exitstatus == 0, final
    assert f"estimate from job {job}: api: 900 requests at 10/second: at least 1 min 30 s" in final


def test_the_estimate_is_that_of_the_last_real_run_not_of_a_plan_or_a_test_run(tmp_path: Path) -> None:
    """`flowlang plan` (the first thing a user runs), a dry run or a --limit run after a long run took the
    estimate away: the last finished job of any kind was read, and these send nothing (or a few records),
    so the next run on a terminal said nothing of its 1 min 30 s. The estimate is that of the last run or
    scheduled job now; and one request is '1 request'."""
    flow = tmp_path / "slow.flow"
    flow.write_text(FLOW.replace("range(0, 30)", "range(0, 3)"))
    store = Store(tmp_path / ".flowlang")
    job, _ = store.start_job("Slow sync", {}, False)
    store.finish_job(job, "ok", {"read": 900, "connections": {"api": {"requests": 900, "interval": 0.1}}},
                     None, "Slow sync", {})
    store.close()
    with FakeApi() as api:
        for args in (["plan", str(flow)], ["run", str(flow), "--dry-run"], ["run", str(flow), "--limit", "1"]):
            done = run_cli(*args, env={"API": api.url})
            assert done.returncode == 0, done.stderr
        term = Terminal(["run", str(flow)], {"API": api.url})
        final = term.run_to_end()
    assert term.child.exitstatus == 0, final
    assert f"estimate from job {job}: api: 900 requests at 10/second: at least 1 min 30 s" in final
    store = Store(tmp_path / ".flowlang")
    one, _ = store.start_job("Slow sync", {}, False)
    store.finish_job(one, "ok", {"read": 1, "connections": {"api": {"requests": 1, "interval": 3600}}},
                     None, "Slow sync", {})
    from flowlang.cli.progress import estimate
    assert estimate(store, "Slow sync") == f"estimate from job {one}: api: 1 request at 1/hour: at least 1 h"
    store.close()


def test_no_progress_off_a_terminal_or_with_quiet(tmp_path: Path) -> None:
    flow = tmp_path / "slow.flow"
    flow.write_text(FLOW.replace("range(0, 30)", "range(0, 8)"))
    with FakeApi() as api:
        piped = run_cli("run", str(flow), env={"API": api.url})
        assert piped.returncode == 0, piped.stderr
        assert "records/s" not in piped.stderr
        assert all(json.loads(line) for line in piped.stderr.splitlines())  # JSON lines only
        term = Terminal(["run", str(flow), "--quiet"], {"API": api.url})
        final = term.run_to_end()
    assert term.child.exitstatus == 0, final
    assert not any("records/s" in screen for screen in term.seen)


def test_records_on_the_terminal_start_their_own_lines_under_the_live_line(tmp_path: Path) -> None:
    """The README's Quickstart (`flowlang run examples/clean_orders/clean_orders.flow` on a terminal)
    showed 'Clean orders: starting{"id":1001,"total":19.99}': a record written to stdout landed at the
    end of the live line on stderr. Each record is now a line of its own, the live line drawn below."""
    flow = tmp_path / "emits.flow"
    flow.write_text('flow "Emits"\nuse api = http(base_url: env.API, rate_limit: "20/second")\n'
                    'for each i in range(0, 6)\n  send {n: i} to api.post("/items")\n  emit {n: i}\nend\n')
    with FakeApi() as api:
        term = Terminal(["run", str(flow)], {"API": api.url})
        final = term.run_to_end()
    assert term.child.exitstatus == 0, final
    for screen in term.seen:
        records = [line for line in screen.splitlines() if '{"n":' in line]
        assert all(line.startswith('{"n":') for line in records), screen
    assert [line for line in final.splitlines() if line.startswith('{"n":')] == [f'{{"n":{i}}}' for i in range(6)]
