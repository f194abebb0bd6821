"""Running from cron: graceful SIGTERM, limits, crashed jobs, huge inputs, and the exit status table."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import flowlang
from conftest import cli, run_cli
from fakeapi import FakeApi, Request
from flowlang.errors import FlowSyntaxError
from flowlang.source import Source
from flowlang.syntax import parse


def env_without_flowlang(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP])  # SIGHUP: its terminal or SSH session closed
def test_sigterm_finishes_in_flight_sends_and_exits_75(tmp_path: Path, stop_signal: signal.Signals) -> None:
    received: list[tuple[float, int]] = []
    with FakeApi() as api:
        def slow_send(req: Request) -> tuple[int, dict[str, str], Any]:
            received.append((time.monotonic(), req.body["n"]))
            time.sleep(0.5)
            return 201, {}, {"ok": True}
        api.route("POST", "/sink", slow_send)
        (tmp_path / "f.flow").write_text(
            "use api = http(base_url: env.API)\n"
            "for each n in range(0, 40) parallel 4\n  send {n: n} to api.post(\"/sink\")\n  emit n\nend\n"
            "let state.done = true\n")
        proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow"], cwd=tmp_path,
                                env=env_without_flowlang(API=api.url), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        while len(received) < 4:
            time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, err
    assert f"{stop_signal.name}: finishing the records in flight" in err
    emitted = [json.loads(x) for x in out.split()]
    started_after = [n for t, n in received if t > signalled + 0.05]
    assert started_after == []  # no new record after the signal
    assert sorted(emitted) == sorted(n for _, n in received)  # every send in flight finished
    assert "finishing the records in flight" in err
    db = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
    assert db.execute("select status from jobs").fetchall() == [("interrupted",)]
    assert db.execute("select count(*) from state").fetchone() == (0,)  # state did not move


def test_a_run_started_under_nohup_runs_on_after_sighup(tmp_path: Path) -> None:
    with FakeApi() as api:
        api.route("POST", "/sink", lambda req: (time.sleep(0.05), (201, {}, {"ok": True}))[1])
        (tmp_path / "f.flow").write_text("use api = http(base_url: env.API)\nfor each n in range(0, 20)\n"
                                         "  send {n: n} to api.post(\"/sink\")\n  emit n\nend\n")
        proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow"], cwd=tmp_path,
                                env=env_without_flowlang(API=api.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # nohup
        while api.count("POST", "/sink") < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGHUP)
        out, err = proc.communicate(timeout=60)
        assert api.count("POST", "/sink") == 20
    assert proc.returncode == 0, err
    assert len(out.split()) == 20 and "SIGHUP" not in err


def test_max_seconds_stops_the_run(tmp_path: Path) -> None:
    with FakeApi() as api:
        api.route("GET", "/slow", lambda req: (time.sleep(0.3), (200, {}, {"ok": True}))[1])
        (tmp_path / "f.flow").write_text("use api = http(base_url: env.API)\nfor each n in range(0, 100)\n"
                                         "  call api.get(\"/slow\")\nend\n")
        proc = cli("run", "f.flow", "--max-seconds", "1", cwd=tmp_path, env={"API": api.url})
    assert proc.status == 1
    assert "max_seconds" in proc.stderr
    assert api.count("GET", "/slow") < 10


def test_max_record_seconds_fails_that_record_only(tmp_path: Path) -> None:
    with FakeApi() as api:
        api.route("GET", r"/item/(\d+)", lambda req: (time.sleep(5 if req.match[1] == "2" else 0),
                                                      (200, {}, {"n": int(req.match[1])}))[1])
        (tmp_path / "f.flow").write_text("use api = http(base_url: env.API)\nfor each n in [1, 2, 3]\n"
                                         "  call api.get('/item/{n}', n: n) as r\n  emit r.n\nend\n")
        proc = cli("run", "f.flow", "--max-record-seconds", "2", cwd=tmp_path, env={"API": api.url})
    assert proc.status == 3
    assert [json.loads(x) for x in proc.stdout.split()] == [1, 3]
    errors = cli("errors", "f.flow", cwd=tmp_path)
    assert "max_record_seconds" in errors.stdout


def test_a_record_stopped_by_max_record_seconds_in_a_send_says_the_send_may_have_arrived(tmp_path: Path) -> None:
    """A POST (and a batch) in flight when --max-record-seconds stopped its record reached the API, which took it,
    but the record's error said only 'the record took longer than 1s', and the retry it was kept for sent it twice
    (found by an operator's trial against a local API that answers after 2 s; the sink counts what it took). The
    error says that the request may have reached the API, as a timeout's does; a lookup that was stopped (a read)
    or a PUT (idempotent) says nothing of it."""
    taken: list[Any] = []

    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        items = req.body["items"] if isinstance(req.body, dict) and "items" in req.body else [req.body]
        taken.extend(item["n"] for item in items if req.method != "GET")  # taken; the answer comes too late
        time.sleep(3)
        return 200, {}, {"results": [{"ok": True} for _ in items]} if len(items) > 1 or "items" in req.body else {}

    with FakeApi() as api:
        api.route("POST", "/one", slow)
        api.route("POST", "/batch", slow)
        api.route("PUT", "/one", slow)
        api.route("GET", "/one", slow)
        (tmp_path / "connectors").mkdir()
        (tmp_path / "connectors" / "sink.toml").write_text(
            'name = "sink"\nbase_url = "{url}"\n[config]\nurl = { required = true }\n'
            '[operations.create_items]\nmethod = "POST"\npath = "/batch"\n'
            'batch = { max = 10, body = "items", results = "results", ok = "ok" }\n')
        (tmp_path / "f.flow").write_text(
            'use api = http(base_url: env.API)\nuse sink = sink(url: env.API)\nfor each r in input\n'
            '  if r.how == "post"\n    send {n: r.n} to api.post("/one")\n  end\n'
            '  if r.how == "batch"\n    send {n: r.n} to sink.create_items batch 2\n  end\n'
            '  if r.how == "put"\n    send {n: r.n} to api.put("/one")\n  end\n'
            '  if r.how == "get"\n    lookup api.get("/one") as x\n  end\nend\n')
        (tmp_path / "in.json").write_text(json.dumps([{"n": 1, "how": "post"}, {"n": 2, "how": "batch"},
                                                      {"n": 3, "how": "put"}, {"n": 4, "how": "get"}]))
        proc = cli("run", "f.flow", "--input", "in.json", "--max-record-seconds", "2", cwd=tmp_path,
                   env={"API": api.url})
        assert proc.status == 3, proc.stderr
    assert sorted(taken) == [1, 2, 3]  # each write reached the API
    errors = {e["record"]["n"]: e["message"] for e in map(json.loads, cli(
        "errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines())}
    assert sorted(errors) == [1, 2, 3, 4]
    for n, name in ((1, "api"), (2, "sink")):
        assert errors[n].startswith("the record took longer than 2s (max_record_seconds), and was stopped while "
                                    f"its send to {name} was in flight: the request may have reached {name} "
                                    "(no answer said it did not), so a retry may send it twice"), errors[n]
    assert errors[3] == errors[4] == "the record took longer than 2s (max_record_seconds)"


def test_huge_values_hit_a_limit_that_names_the_line() -> None:
    flow = flowlang.compile('let s = "x"\nfor each i in range(0, 40)\n  let s = s + s\nend\nemit len(s)\n')
    result = flow.run(limits=flowlang.Limits(max_value_items=1_000_000))
    assert result.status == "partial"
    first = result.errors[0]
    assert first.kind == "limit" and "max_value_items" in first.message and first.line == 3


BUILDERS = {
    "pad_left": 'pad_left("x", 5000)',
    "replace": 'replace(pad_left("", 100, "a"), "a", pad_left("", 100, "b"))',
    "regex_replace": 'regex_replace(pad_left("", 100, "a"), "", pad_left("", 50, "b"))',
    "join": 'join([pad_left("", 600, "a"), pad_left("", 600, "a")], "-")',
    "split": 'split(pad_left("", 1000, ","), ",")',
    "flatten": "flatten([range(0, 600), range(0, 600)])",
    "range": "range(0, 1500)",
    "base64_encode": 'base64_encode(pad_left("", 900, "a"))',
    "url_encode": 'url_encode(pad_left("", 400, " "))',
    "json_string": 'json_string([pad_left("", 600, "a"), pad_left("", 600, "a")])',
    "str": 'str([pad_left("", 600, "a"), pad_left("", 600, "a")])',
}


@pytest.mark.parametrize("fn", BUILDERS)
def test_every_builtin_that_builds_text_or_a_list_checks_the_limit(fn: str) -> None:
    flow = flowlang.compile(f"for each i in [1]\n  emit len({BUILDERS[fn]})\nend\n")
    result = flow.run(limits=flowlang.Limits(max_value_items=1000))
    assert result.status == "partial", (fn, result.outputs)
    first = result.errors[0]
    assert first.kind == "limit" and "max_value_items" in first.message and f"{fn}()" in first.message
    assert first.line == 2
    assert flow.run(limits=flowlang.Limits(max_value_items=100_000)).ok  # under the limit: the same call works


def test_a_builtin_is_stopped_before_it_builds_a_huge_value() -> None:
    flow = flowlang.compile("emit len(pad_left(\"x\", 2000000000))\n")  # 2 GB if it were built
    started = time.monotonic()
    result = flow.run()
    assert result.error is not None and "5000000 (max_value_items)" in result.error.message
    assert time.monotonic() - started < 5


def test_recursion_limit_is_settable() -> None:
    flow = flowlang.compile("function down(n)\n  return if n == 0 then 0 else down(n - 1)\nend\nemit down(50)\n")
    assert flow.run().outputs == [0]
    result = flow.run(limits=flowlang.Limits(max_call_depth=10))
    assert result.error is not None and "max_call_depth" in result.error.message


def test_a_killed_run_is_marked_crashed_by_the_next(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "f.flow").write_text('use src = file(path: "pipe.jsonl")\nemit "go"\ncall src.read() as rows\n'
                                     "for each r in rows\n  emit r\nend\n")
    proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow"], cwd=tmp_path,
                            env=env_without_flowlang(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == '"go"'
    proc.kill()
    proc.wait()
    (tmp_path / "pipe.jsonl").unlink()
    (tmp_path / "pipe.jsonl").write_text('{"a": 1}\n')
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    db = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
    assert [r[0] for r in db.execute("select status from jobs order by id")] == ["crashed", "ok"]
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)


def test_a_killed_run_not_yet_reaped_is_crashed_too(tmp_path: Path) -> None:
    """A job's row names its process, and a running job is crashed only when that process is gone: a
    process killed and not yet waited for by its parent (a zombie, its pid still taken) is gone."""
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "f.flow").write_text('use src = file(path: "pipe.jsonl")\nemit "go"\ncall src.read() as rows\n'
                                     "for each r in rows\n  emit r\nend\n")
    proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow"], cwd=tmp_path,
                            env=env_without_flowlang(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == '"go"'
    proc.kill()  # not waited for yet
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{proc.pid}/stat").exists() and \
            Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    (tmp_path / "pipe.jsonl").unlink()
    (tmp_path / "pipe.jsonl").write_text('{"a": 1}\n')
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    proc.wait()
    db = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
    assert [r[0] for r in db.execute("select status from jobs order by id")] == ["crashed", "ok"]


def test_a_10_mb_file_is_refused_quickly() -> None:
    """Refused before any work that grows with the text: the line index is scanned only near the error."""
    source = Source("big.flow", "emit 1\n" * 1_500_000)
    with pytest.raises(FlowSyntaxError) as refused:
        parse(source)
    diagnostic = refused.value.diagnostics[0]
    assert "more than the 2,000,000" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (1, 1)
    assert source.lines.scanned < 10_000


def test_exit_status_table(tmp_path: Path) -> None:
    cases = {
        0: "emit 1\n",
        1: 'fail "run error"\n',
        2: "emit undefined_name\n",
        3: 'for each n in [1]\n  fail "record error"\nend\n',
    }
    for status, text in cases.items():
        (tmp_path / f"s{status}.flow").write_text(text)
        assert run_cli("run", f"s{status}.flow", cwd=tmp_path).returncode == status
    assert run_cli("check", "s2.flow", cwd=tmp_path).returncode == 2
    assert run_cli("run", "s0.flow", "--limit", "x", cwd=tmp_path).returncode == 2
