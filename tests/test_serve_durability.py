"""The inbox against a running `flowlang serve`: kill -9 right after a 202, then a restart runs the
delivery once; 1,000 deliveries posted 50 at a time while the flow is slow (and while it burns CPU):
none lost, none run twice (counted at the receiving server), back-pressure (503 + Retry-After) seen;
SIGTERM leaves waiting deliveries in the inbox and exits 0; `flowlang inbox` lists and replays."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import cli, run_cli
from fakeapi import FakeApi, Request
from serving import ServeProcess, wait_for

TOKEN = 'tok-"quoted"-\\back\\-' + "x" * 520
HEADERS = {"X-Token": TOKEN}


def hook_flow(extra: str = "", concurrency: int = 1, before: str = "") -> str:
    return (f'flow "orders"\ntrigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"), '
            f'concurrency: {concurrency})\nuse api = http(base_url: env.API)\n{before}'
            f'send {{n: input.n{extra}}} to api.post("/got")\n')


def got(api: FakeApi) -> Counter[int]:
    return Counter(r.body["n"] for r in list(api.requests) if r.method == "POST" and r.path == "/got")


def test_kill_9_right_after_202_then_restart_runs_each_delivery_once(tmp_path: Path) -> None:
    slow = threading.Event()
    slow.set()

    def maybe_slow(req: Request) -> tuple[int, dict[str, str], Any]:
        if slow.is_set():
            time.sleep(3)
        return 200, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow(before='call api.get("/slow") as s\n'))
    with FakeApi() as api:
        api.route("GET", r"^/slow$", maybe_slow)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        serve = ServeProcess(tmp_path, env=env).start()
        answers = [serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] for n in range(20)]
        serve.kill()  # SIGKILL: no chance to clean up
        assert answers == [202] * 20
        assert got(api) == Counter()  # nothing was sent before the kill: the first run waited on /slow
        slow.clear()
        with ServeProcess(tmp_path, env=env) as again:
            wait_for(lambda: sum(got(api).values()) >= 20, what="the 20 deliveries after the restart")
            time.sleep(1)
            assert got(api) == Counter(range(20))
            assert again.terminate() == 0
    listing = cli("inbox", str(tmp_path), "--json")
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(rows) == 20 and {r["status"] for r in rows} == {"done"}


def post_all(serve: ServeProcess, count: int, workers: int) -> tuple[Counter[int], int, set[str]]:
    """Post deliveries 0..count-1 from `workers` threads; a 503 is tried again after a short pause."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for n in range(count):
        todo.put(n)
    accepted: Counter[int] = Counter()
    refused = [0]
    retry_after: set[str] = set()
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                n = todo.get_nowait()
            except queue.Empty:
                return
            while True:
                status, headers, _ = serve.post("/hooks/orders", json.dumps({"n": n}).encode(),
                                                {**HEADERS, "X-Id": str(n)})
                if status == 202:
                    with lock:
                        accepted[n] += 1
                    break
                assert status == 503, status
                with lock:
                    refused[0] += 1
                    retry_after.add(headers.get("Retry-After", ""))
                time.sleep(0.2)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted, refused[0], retry_after


def test_1000_deliveries_50_at_a_time_while_the_flow_is_slow(tmp_path: Path) -> None:
    def slow_receiver(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(0.01)
        return 201, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow(concurrency=4))
    with FakeApi() as api:
        api.route("POST", r"^/got$", slow_receiver)
        with ServeProcess(tmp_path, "--max-pending", "100", env={"API": api.url, "HOOK_TOKEN": TOKEN}) as serve:
            accepted, refused, retry_after = post_all(serve, 1000, 50)
            assert accepted == Counter(range(1000))
            assert refused > 0 and retry_after == {"5"}  # back-pressure was seen, with Retry-After
            wait_for(lambda: sum(got(api).values()) >= 1000, timeout=300, what="1,000 runs")
            time.sleep(1)
            assert got(api) == Counter(range(1000))  # none lost, none twice
            assert serve.terminate() == 0


def test_back_pressure_while_the_flow_burns_cpu(tmp_path: Path) -> None:
    burn = "let total = 0\nfor each i in range(20000)\n  let total = total + i * i % 7\nend\n"
    (tmp_path / "orders.flow").write_text(hook_flow(before=burn, extra=", total: total"))
    with FakeApi() as api, ServeProcess(tmp_path, "--max-pending", "10",
                                        env={"API": api.url, "HOOK_TOKEN": TOKEN}) as serve:
        accepted, refused, _ = post_all(serve, 150, 50)
        assert accepted == Counter(range(150)) and refused > 0
        wait_for(lambda: sum(got(api).values()) >= 150, timeout=300, what="150 runs")
        time.sleep(0.5)
        assert got(api) == Counter(range(150))
        assert serve.terminate() == 0


def test_sigterm_leaves_waiting_deliveries_and_replay_runs_a_failed_one(tmp_path: Path) -> None:
    gate = threading.Event()
    fixed = threading.Event()
    succeeded: list[int] = []

    def gated(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(30)
        if req.body["n"] == 2 and not fixed.is_set():
            return 500, {}, {"error": "refused"}
        succeeded.append(req.body["n"])
        return 201, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow())
    with FakeApi() as api:
        api.route("POST", r"^/got$", gated)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        serve = ServeProcess(tmp_path, env=env).start()
        for n in range(1, 6):
            assert serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] == 202
        wait_for(lambda: api.count("POST", "/got") >= 1, what="the first run to reach the receiver")
        stopper = threading.Thread(target=serve.terminate)
        stopper.start()
        wait_for(lambda: "stopping" in serve.logs(), what="serve to begin stopping")
        assert serve.post("/hooks/orders", b'{"n": 9}', HEADERS)[0] == 503
        gate.set()
        stopper.join(60)
        assert serve.proc is not None and serve.proc.returncode == 0
        assert succeeded == [1]  # the running job finished; the others wait in the inbox
        waiting = [json.loads(x) for x in cli("inbox", str(tmp_path), "--json").stdout.splitlines()]
        assert sorted(r["status"] for r in waiting) == ["done", "waiting", "waiting", "waiting", "waiting"]
        with ServeProcess(tmp_path, env=env) as again:
            wait_for(lambda: len(succeeded) >= 4, what="the waiting deliveries after the restart")
            wait_for(lambda: "failed" in cli("inbox", str(tmp_path), "--failed").stdout, what="a failed run")
            assert again.terminate() == 0
        assert sorted(succeeded) == [1, 3, 4, 5]  # in arrival order, each once; 2 was refused
        assert succeeded == [1, 3, 4, 5]
        failed = cli("inbox", str(tmp_path), "--failed")
        assert "orders" in failed.stdout and "--replay" in failed.stdout
        failed_id = next(json.loads(x)["id"] for x in cli("inbox", str(tmp_path), "--json").stdout.splitlines()
                         if json.loads(x)["status"] == "failed")
        fixed.set()
        replay = cli("inbox", str(tmp_path), "--replay", str(failed_id), env=env)
        assert replay.returncode == 0, replay.stderr + replay.stdout
        assert succeeded == [1, 3, 4, 5, 2]
        assert "no deliveries whose run failed" in cli("inbox", str(tmp_path), "--failed").stdout


COUNTING = ('trigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"){concurrency})\n'
            'use api = http(base_url: env.API)\n'
            'let n = (state.count ?? 0) + 1\n'
            'call api.get("/slow") as answer\n'
            'let state.count = n\n')


def test_runs_that_keep_state_do_not_overlap(tmp_path: Path) -> None:
    """`state` is loaded as a run starts and saved as it ends: two deliveries at once that each add 1 end
    at 2 (runs of a flow go one at a time), and a flow that asks for concurrency above 1 and uses `state`
    is refused with its place (with concurrency 2 the old code ran both at once and saved 1)."""
    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(0.5)  # the second delivery arrives while the first run is between its read and its save
        return 200, {}, {}

    (tmp_path / "count.flow").write_text(COUNTING.format(concurrency=", concurrency: 2"))
    refused = run_cli("serve", str(tmp_path), "--port", "0", env={"HOOK_TOKEN": TOKEN, "API": "http://127.0.0.1:9"},
                      timeout=30)  # the old code started serving
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    said = [json.loads(line) for line in refused.stderr.splitlines()]  # JSON: stderr is no terminal
    assert any(str(e.get("location")).endswith("count.flow:3:10") and e["level"] == "error" and e["message"].startswith(
        "this flow uses `state`, but its webhook runs 2 deliveries at once (concurrency: 2, line 1)") for e in said)
    (tmp_path / "count.flow").write_text(COUNTING.format(concurrency=""))
    with FakeApi() as api:
        api.route("GET", r"^/slow$", slow)
        with ServeProcess(tmp_path, env={"HOOK_TOKEN": TOKEN, "API": api.url}) as serve:
            answers: queue.Queue[int] = queue.Queue()
            posts = [threading.Thread(target=lambda: answers.put(serve.post("/hooks/count", b"{}", HEADERS)[0]))
                     for _ in range(2)]
            for t in posts:
                t.start()
            for t in posts:
                t.join()
            assert [answers.get(), answers.get()] == [202, 202]
            wait_for(lambda: serve.logs().count("(webhook ") == 2, what="both runs")
            assert serve.terminate() == 0
        assert api.count("GET", "/slow") == 2
    state = json.loads(cli("state", str(tmp_path / "count.flow")).stdout)
    assert state["state"] == {"count": 2}


def test_the_inbox_names_a_running_deliverys_job(tmp_path: Path) -> None:
    """While a delivery runs, `flowlang inbox` names its job (the one the 202 answered with); before, it
    said 'no job yet' until the run ended, as the job was written to the inbox only then."""
    gate = threading.Event()

    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(30)
        return 201, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow())
    with FakeApi() as api:
        api.route("POST", r"^/got$", slow)
        with ServeProcess(tmp_path, env={"API": api.url, "HOOK_TOKEN": TOKEN}) as serve:
            status, _, answer = serve.post("/hooks/orders", b'{"n": 1}', HEADERS)
            assert status == 202
            wait_for(lambda: api.count("POST", "/got") >= 1, what="the run to reach the receiver")
            job = answer["job"] if answer["job"] is not None else 1
            rows = [json.loads(x) for x in cli("inbox", str(tmp_path), "--json").stdout.splitlines()]
            assert [(r["status"], r["job_id"]) for r in rows] == [("running", job)], rows
            assert f"job {job}" in cli("inbox", str(tmp_path)).stdout
            gate.set()
            wait_for(lambda: "done" in cli("inbox", str(tmp_path)).stdout, what="the run to end")
        rows = [json.loads(x) for x in cli("inbox", str(tmp_path), "--json").stdout.splitlines()]
        assert [(r["status"], r["job_id"]) for r in rows] == [("done", job)]


def test_runs_at_once_are_running_not_crashed_and_a_killed_serves_are_crashed(tmp_path: Path) -> None:
    """concurrency 2: the second delivery's job used to mark the first, still running beside it, as
    `crashed` (a job marked every running job of its flow so, as if it held the flow's lock). A job's row
    now names its process: while serve runs them both, `flowlang jobs` shows both running and both end ok;
    after serve is killed outright in the middle of two runs, the next job marks those two crashed."""
    release = threading.Event()

    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        release.wait(20)
        return 200, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow(concurrency=2, before='call api.get("/slow") as s\n'))

    def statuses() -> list[str]:
        listing = cli("jobs", str(tmp_path / "orders.flow"), "--json")
        return [json.loads(line)["status"] for line in reversed(listing.stdout.splitlines())]

    with FakeApi() as api:
        api.route("GET", r"^/slow$", slow)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        with ServeProcess(tmp_path, env=env) as serve:
            for n in range(2):
                assert serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] == 202
            wait_for(lambda: api.count("GET", "/slow") == 2, what="both runs under way")
            assert statuses() == ["running", "running"]
            release.set()
            wait_for(lambda: sum(got(api).values()) == 2, what="both runs done")
            wait_for(lambda: statuses() == ["ok", "ok"], what="both jobs ended ok")
            release.clear()
            for n in range(2, 4):
                assert serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] == 202
            wait_for(lambda: api.count("GET", "/slow") == 4, what="two more runs under way")
            serve.kill()
        release.set()
        with ServeProcess(tmp_path, env=env) as again:  # the two cut short run again
            wait_for(lambda: sum(got(api).values()) == 4, what="the two deliveries run again")
            wait_for(lambda: statuses()[2:4] == ["crashed", "crashed"], what="the killed serve's jobs crashed")
            assert again.terminate() == 0
    assert statuses() == ["ok", "ok", "crashed", "crashed", "ok", "ok"]


def test_inbox_flow_names_a_flow_of_the_folder(tmp_path: Path) -> None:
    """`flowlang inbox DIR --flow ordrs` (misspelt) said 'no deliveries' with exit 0, as an empty inbox does,
    hiding the deliveries of `orders`. A name that is no flow of the folder (nor one the inbox has deliveries
    of) is an error with the flows' names; `--flow orders.flow` is taken as `orders`."""
    (tmp_path / "orders.flow").write_text(hook_flow())
    (tmp_path / "refunds.flow").write_text(hook_flow().replace('flow "orders"', 'flow "refunds"'))
    with FakeApi() as api, ServeProcess(tmp_path, env={"API": api.url, "HOOK_TOKEN": TOKEN}) as serve:
        assert serve.post("/hooks/orders", b'{"n": 1}', HEADERS)[0] == 202
        wait_for(lambda: api.count("POST", "/got") == 1, what="the run")
        assert serve.terminate() == 0
    wrong = cli("inbox", str(tmp_path), "--flow", "ordrs")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert (f"error: no flow 'ordrs' in {tmp_path} (--flow takes a flow's file stem: orders, refunds); "
            "did you mean 'orders'?") in wrong.stderr
    assert "#1  orders  done" in cli("inbox", str(tmp_path), "--flow", "orders.flow").stdout
    none = cli("inbox", str(tmp_path), "--flow", "refunds")
    assert (none.returncode, none.stdout) == (0, "no deliveries\n")
    (tmp_path / "orders.flow").unlink()  # its deliveries are still in the inbox
    assert "#1  orders  done" in cli("inbox", str(tmp_path), "--flow", "orders").stdout


def test_a_duplicate_is_answered_200_while_the_inbox_is_full(tmp_path: Path) -> None:
    """A provider's retry of a delivery already in the inbox got 503 while --max-pending deliveries waited
    (the back-pressure check came before the duplicate one), which the provider counts as a failed delivery
    (Shopify removes a webhook after enough); SERVE.md answers a duplicate 200 before any back-pressure.
    And SERVE.md's limit counts the deliveries waiting: with --max-pending 2, one running and one waiting
    refused the next delivery (the running one was counted); two wait now, and the fourth is refused."""
    gate = threading.Event()

    def gated(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(30)
        return 201, {}, {"ok": True}

    with_ids = hook_flow().replace('header: "X-Token"', 'header: "X-Token", id_header: "X-Id"')
    (tmp_path / "orders.flow").write_text(with_ids)
    with FakeApi() as api:
        api.route("POST", r"^/got$", gated)
        with ServeProcess(tmp_path, "--max-pending", "2", env={"API": api.url, "HOOK_TOKEN": TOKEN}) as serve:
            def post(n: int) -> tuple[int, Any]:
                status, _, body = serve.post("/hooks/orders", json.dumps({"n": n}).encode(),
                                             {**HEADERS, "X-Id": f"d-{n}"})
                return status, body
            assert post(1)[0] == 202
            wait_for(lambda: api.count("POST", "/got") >= 1, what="the first run to reach the receiver")
            assert post(2)[0] == 202 and post(3)[0] == 202  # two wait: 1 runs (it does not count)
            assert post(4)[0] == 503  # full: a new delivery waits for room
            assert post(2) == (200, {"duplicate": True, "delivery": 2, "job": None})
            assert post(1)[0] == 200
            gate.set()
            wait_for(lambda: api.count("POST", "/got") == 3, what="the three runs")
            time.sleep(0.5)
            assert serve.terminate() == 0
    assert got(api) == Counter([1, 2, 3])  # each once


def test_deliveries_of_a_flow_no_longer_in_the_folder_are_kept_and_said(tmp_path: Path) -> None:
    """Deliveries left waiting (a stop) for a flow whose file was then removed: the next serve ran the other
    flows and said nothing of them, as if the inbox were empty. They are kept, and serve says so at start."""
    gate = threading.Event()

    def gated(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(30)
        return 201, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow())
    (tmp_path / "other.flow").write_text(hook_flow().replace('flow "orders"', 'flow "other"'))
    with FakeApi() as api:
        api.route("POST", r"^/got$", gated)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        serve = ServeProcess(tmp_path, env=env).start()
        for n in range(3):
            assert serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] == 202
        stopper = threading.Thread(target=serve.terminate)
        stopper.start()
        wait_for(lambda: "stopping" in serve.logs(), what="serve to begin stopping")
        gate.set()
        stopper.join(60)
        (tmp_path / "orders.flow").unlink()
        with ServeProcess(tmp_path, "--log-format", "text", env=env) as again:
            wait_for(lambda: "wait in the inbox" in again.logs(), timeout=10, what="the warning")
            assert again.terminate() == 0
        assert ("warning: 2 deliveries of 'orders' wait in the inbox, but orders.flow is no longer in the folder: "
                "kept, not run") in again.logs()
    rows = [json.loads(x) for x in cli("inbox", str(tmp_path), "--json").stdout.splitlines()]
    assert sorted(r["status"] for r in rows) == ["done", "waiting", "waiting"]


def test_a_second_serve_of_one_state_folder_is_refused(tmp_path: Path) -> None:
    """Two serves of one folder both started, and both ran the deliveries waiting in its inbox at start:
    deliveries 3 and 4 of a trial ran (and were sent) twice, the flow's run lock only putting the second run
    after the first. A second serve of a state folder is refused while the first runs; once it has
    stopped (or been killed), a new one starts."""
    (tmp_path / "orders.flow").write_text(hook_flow())
    with FakeApi() as api:
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        with ServeProcess(tmp_path, env=env) as first:
            second = run_cli("serve", str(tmp_path), "--port", "0", "--log-format", "text", env=env, timeout=60)
            assert second.returncode == 2, second.stderr
            assert (f"another flowlang serve (pid {first.proc.pid if first.proc else '?'}, lock "
                    f"{tmp_path / '.flowlang' / 'serve.lock'}) serves the state folder") in second.stderr
            assert first.post("/hooks/orders", b'{"n": 1}', HEADERS)[0] == 202  # the first goes on
            wait_for(lambda: got(api) == Counter([1]), what="the run")
            first.kill()  # the kernel lets go of a killed serve's lock
        with ServeProcess(tmp_path, env=env) as again:
            assert again.terminate() == 0
        with ServeProcess(tmp_path, env=env) as third:  # and of one stopped
            assert third.terminate() == 0


def test_replay_of_a_delivery_serve_will_run_or_while_the_flow_is_locked(tmp_path: Path) -> None:
    """`flowlang inbox --replay 3` while serve held delivery 3 waiting ran it at once, and serve ran it again
    after (two runs of one delivery). It is refused while a serve serves the folder and the delivery waits or
    runs. A replay that finds the flow's run lock taken (a `flowlang run` of it) left the delivery 'running',
    which the next serve start ran as cut short; it is left as it was."""
    from flowlang.runtime.lock import FlowLock

    gate = threading.Event()

    def gated(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(30)
        return 201, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow())
    with FakeApi() as api:
        api.route("POST", r"^/got$", gated)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        with ServeProcess(tmp_path, env=env) as serve:
            for n in range(1, 4):
                assert serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] == 202
            refused = cli("inbox", str(tmp_path), "--replay", "3", "--log-format", "text", env=env)
            assert refused.returncode == 2, refused.stderr
            assert "delivery 3 is waiting in the inbox of the flowlang serve that serves" in refused.stderr
            gate.set()
            wait_for(lambda: sum(got(api).values()) == 3, what="the three runs")
            assert serve.terminate() == 0
        assert got(api) == Counter([1, 2, 3])  # none twice
        lock = FlowLock(tmp_path / ".flowlang", "orders")
        lock.acquire()  # a run of the flow goes on
        try:
            locked = cli("inbox", str(tmp_path), "--replay", "2", env=env)
            assert locked.returncode == 75 and "another run of 'orders' is in progress" in locked.stderr
        finally:
            lock.release()
        listing = cli("inbox", str(tmp_path), "--json").stdout.splitlines()
        rows = {json.loads(x)["id"]: json.loads(x) for x in listing}
        assert rows[2]["status"] == "done" and rows[2]["job_id"] is not None
        replayed = cli("inbox", str(tmp_path), "--replay", "3", env=env)
        assert replayed.returncode == 0, replayed.stderr
    assert got(api) == Counter([1, 2, 3, 3])


def test_inbox_of_a_folder_never_served_says_so_and_makes_nothing(tmp_path: Path) -> None:
    """`flowlang inbox DIR` of a folder no serve had served made DIR/.flowlang/inbox.db (an inbox where there
    was none) and said 'no deliveries' with exit 0; so --json, --flow and --replay. It says there is no inbox
    (exit 2) and makes nothing, also where the state folder holds a `flowlang run`'s store but no inbox."""
    (tmp_path / "orders.flow").write_text(hook_flow())
    for args in ((), ("--json",), ("--flow", "orders"), ("--failed",), ("--replay", "1")):
        proc = cli("inbox", str(tmp_path), *args)
        assert (proc.returncode, proc.stdout) == (2, ""), (args, proc)
        assert (f"error: no inbox in {tmp_path}/.flowlang: no flowlang serve has served {tmp_path} with this "
                "state folder") in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / ".flowlang").exists(), args
    # a flow's file for DIR said 'no such folder: orders.flow', as if nothing were there
    as_file = cli("inbox", "orders.flow", cwd=tmp_path)
    assert (as_file.returncode, as_file.stderr.strip()) == (2, "error: orders.flow is a file: inbox takes the "
                                                             "folder serve serves (flowlang inbox . --flow orders)")
    other = tmp_path / "elsewhere"
    assert "no inbox in " + str(other) in cli("inbox", str(tmp_path), "--state-dir", str(other)).stderr
    assert not other.exists()
    (tmp_path / "plain.flow").write_text("emit 1\n")
    assert cli("run", str(tmp_path / "plain.flow")).returncode == 0  # the store, and no inbox
    assert cli("inbox", str(tmp_path)).returncode == 2
    assert not (tmp_path / ".flowlang" / "inbox.db").exists()



def test_a_serve_starting_while_replay_asks_whether_one_serves_still_starts(tmp_path: Path) -> None:
    """`flowlang inbox --replay` asked whether a serve held the state folder by taking serve.lock for a
    moment: a serve starting in that moment was refused ('another flowlang serve ... serves the state
    folder'), and the asker wrote its own pid into the lock file. It asks with a shared lock and writes
    nothing; a starting serve waits out such a moment (held 0.3 s here), and is still refused beside a
    serve that holds the lock."""
    import fcntl
    import os

    from flowlang.cli.serve_commands import serve_holds
    from flowlang.errors import UsageError
    from flowlang.serve.service import serve_lock

    folder = tmp_path / ".flowlang"
    assert serve_holds(folder) is False and not folder.exists()  # asking makes nothing
    folder.mkdir()
    (folder / "serve.lock").write_text("12345")  # a serve that has stopped
    assert serve_holds(folder) is False
    assert (folder / "serve.lock").read_text() == "12345"  # the asker's pid was written here
    fd = os.open(folder / "serve.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what the question holds, for its moment
    threading.Timer(0.3, os.close, (fd,)).start()
    lock = serve_lock(folder)  # was: UsageError at once
    try:
        assert (folder / "serve.lock").read_text() == str(os.getpid())
        assert serve_holds(folder) is True
        started = time.monotonic()
        try:
            serve_lock(folder)
        except UsageError as e:
            assert "serves the state folder" in e.message
        else:
            raise AssertionError("a second serve took the lock")
        assert time.monotonic() - started < 5
    finally:
        lock.release()
    assert serve_holds(folder) is False


def test_a_serve_starting_while_a_replay_runs_waits_and_runs_it_not_again(tmp_path: Path) -> None:
    """`flowlang inbox --replay 3` of a delivery left waiting by a stopped serve, and a serve started while
    the replay ran: the replay had marked it 'running', which serve took for a run cut short, so it ran it
    again once the flow's lock was free (delivery 3 at the receiver twice). A starting serve waits for the
    replays going on to end (saying so), then runs what still waits."""
    import os
    import subprocess
    import sys

    gate = threading.Event()
    gate.set()

    def gated(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(60)
        time.sleep(0.5 if req.body["n"] == 1 else 0)
        return 201, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow())
    with FakeApi() as api:
        api.route("POST", r"^/got$", gated)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        with ServeProcess(tmp_path, env=env) as serve:
            gate.clear()
            for n in range(1, 4):
                assert serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0] == 202
            wait_for(lambda: sum(got(api).values()) == 1, what="the first run's send")
            stopping = threading.Thread(target=serve.terminate)
            stopping.start()
            wait_for(lambda: "stopping:" in serve.logs(), what="the stop")
            gate.set()
            stopping.join(60)
        waiting = [json.loads(x) for x in cli("inbox", str(tmp_path), "--json").stdout.splitlines()]
        assert sorted(d["id"] for d in waiting if d["status"] == "waiting") == [2, 3], waiting
        gate.clear()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
        replay = subprocess.Popen([sys.executable, "-m", "flowlang", "inbox", str(tmp_path), "--replay", "3"],
                                  env={**full_env, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: got(api)[3] == 1, what="the replay's send")
            second = ServeProcess(tmp_path, env=env)
            starting = threading.Thread(target=second.start)
            starting.start()
            wait_for(lambda: "waiting for the flowlang inbox --replay" in second.logs(), what="serve waiting")
            gate.set()
            assert replay.wait(60) == 0
            starting.join(60)
            wait_for(lambda: got(api)[2] == 1, what="delivery 2's run by serve")
            time.sleep(1)
            assert second.terminate() == 0
        finally:
            gate.set()
            if replay.poll() is None:
                replay.kill()
    assert got(api) == Counter([1, 2, 3]), got(api)


def test_replay_needs_neither_the_folders_other_flows_nor_a_webhook_secret(tmp_path: Path) -> None:
    """`flowlang inbox DIR --replay 1` of a delivery of orders.flow loaded and checked every flow of DIR, as
    serve's start does, and read each one's verify secrets: it was refused for another flow's secret ('error:
    github.flow: the webhook's secret.GH_SECRET is not set') and for another flow's check error, and needed
    the replayed flow's own webhook secret, though a replay checks no signature. It loads the replayed flow
    alone, without its verify secrets (the delivery's headers were masked when it came)."""
    from flowlang.serve.inbox import Delivery, Inbox

    with FakeApi() as api:
        (tmp_path / "orders.flow").write_text(hook_flow())
        (tmp_path / "github.flow").write_text('flow "gh"\ntrigger webhook(verify: github(secret.GH_SECRET))\n'
                                              'emit unknown_name\n')
        inbox = Inbox(tmp_path / ".flowlang")
        try:
            inbox.accept(Delivery(0, "orders", None, "2026-01-01T00:00:00Z", "application/json",
                                  {"x-token": "***"}, b'{"n": 7}'), lambda _id, _dup: None).result()
        finally:
            inbox.close()
        replay = cli("inbox", str(tmp_path), "--replay", "1", env={"API": api.url})
        assert replay.returncode == 0, replay.stderr
        assert "orders: delivery 1 ran again as job 1: ok" in replay.stderr + replay.stdout
        assert got(api) == Counter({7: 1})


def test_a_delivery_whose_run_kills_serve_is_given_up_after_three_starts(tmp_path: Path) -> None:
    """Before: a delivery whose run killed serve (the OOM killer, a crash; here the API kills it at /boom)
    was run again at every start, for ever under systemd's Restart=, its send before the kill sent again each
    time, and the flow's deliveries behind it never ran."""
    serves: list[ServeProcess] = []
    posted = threading.Event()

    def boom(req: Request) -> tuple[int, dict[str, str], Any]:
        posted.wait(30)  # both deliveries answered before the first start is killed
        proc = serves[-1].proc
        assert proc is not None
        proc.kill()  # as the OOM killer would, in the middle of the run
        return 200, {}, {"ok": True}

    (tmp_path / "orders.flow").write_text(hook_flow(before='if input.n == 1\n  send {n: 0} to api.post("/got")\n'
                                                           '  call api.get("/boom") as b\nend\n'))
    with FakeApi() as api:
        api.route("GET", r"^/boom$", boom)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        for start in range(3):
            serve = ServeProcess(tmp_path, env=env)
            serves.append(serve)
            serve.start()
            if start == 0:
                assert [serve.post("/hooks/orders", json.dumps({"n": n}).encode(), HEADERS)[0]
                        for n in (1, 2)] == [202, 202]
                posted.set()
            assert serve.proc is not None
            serve.proc.wait(60)
            serve.log_file.close()
        assert got(api) == Counter({0: 3})  # three runs of delivery 1, each cut off at /boom
        with ServeProcess(tmp_path, env=env) as again:
            wait_for(lambda: got(api)[2] == 1, what="delivery 2, behind the one that kills serve")
            assert again.terminate() == 0
        assert got(api) == Counter({0: 3, 2: 1})
    logs = again.logs()
    assert ("orders: delivery 1: its run was cut short 3 times in a row (serve ended while it ran: killed, out of "
            "memory or crashed), so serve does not run it again at start: kept as failed (`flowlang inbox DIR "
            "--replay 1` runs it again)") in logs, logs
    rows = {r["id"]: r for r in map(json.loads, cli("inbox", str(tmp_path), "--json").stdout.splitlines())}
    assert rows[1]["status"] == "failed" and "cut short 3 times" in rows[1]["message"]
    assert rows[2]["status"] == "done"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_waiting_deliveries_keep_their_bodies_in_the_inbox_not_in_memory(tmp_path: Path) -> None:
    """Every waiting delivery's body was held in serve's memory as well as in the inbox: 2,000 deliveries of
    1MB behind a slow run took serve to 2GB of RSS (10GB at --max-pending's default 10,000), and a restart
    read them all into memory again. Now a waiting delivery's body stays in the inbox until its run starts."""
    gate = threading.Event()

    def held(req: Request) -> tuple[int, dict[str, str], Any]:
        gate.wait(120)
        return 200, {}, {"ok": True}

    pad = "p" * 900_000
    (tmp_path / "orders.flow").write_text(
        'flow "orders"\ntrigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"), max_body: "1MB")\n'
        'use api = http(base_url: env.API)\ncall api.get("/gate") as g\n'
        'send {n: input.n, size: len(input.pad)} to api.post("/got")\n')
    with FakeApi() as api:
        api.route("GET", r"^/gate$", held)
        env = {"API": api.url, "HOOK_TOKEN": TOKEN}
        count = 150  # 135MB of bodies waiting
        with ServeProcess(tmp_path, env=env) as serve:
            assert serve.proc is not None
            assert serve.post("/hooks/orders", json.dumps({"n": 0, "pad": pad}).encode(), HEADERS)[0] == 202
            before = rss_bytes(serve.proc.pid)
            for n in range(1, count):
                assert serve.post("/hooks/orders", json.dumps({"n": n, "pad": pad}).encode(), HEADERS)[0] == 202
            grown = rss_bytes(serve.proc.pid) - before
            assert grown < 60_000_000, f"serve's RSS grew by {grown:,} bytes with {count} deliveries waiting"
            serve.kill()
        gate.set()
        with ServeProcess(tmp_path, env=env) as again:  # the restart runs them, with their bodies
            wait_for(lambda: sum(got(api).values()) >= count, timeout=120, what="the deliveries after the restart")
            sizes = {r.body["size"] for r in list(api.requests) if r.path == "/got"}
            assert sizes == {len(pad)}
            assert again.terminate() == 0
    assert got(api) >= Counter(range(count))


def test_bodies_being_read_at_once_are_bounded(tmp_path: Path) -> None:
    """Nothing bounded the bytes of bodies serve held while they arrived, before any signature was checked:
    1,000 clients each sending half of a 1MB body and waiting took serve's RSS to 630MB (20,000 could take
    20GB). Past 256MB of them a delivery is a 503 with Retry-After and its connection is closed."""
    import socket

    (tmp_path / "orders.flow").write_text(
        'flow "orders"\ntrigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"), max_body: "1MB")\n'
        'emit input\n')
    head = (b"POST /hooks/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 900000\r\n\r\n")
    part = b"{" + b" " * 600_000
    with ServeProcess(tmp_path, env={"HOOK_TOKEN": TOKEN}) as serve:
        assert serve.proc is not None
        before = rss_bytes(serve.proc.pid)
        socks = []
        try:
            for _ in range(700):  # 420MB of bodies under way
                s = socket.create_connection(("127.0.0.1", serve.port), timeout=30)
                s.sendall(head + part)
                socks.append(s)
            time.sleep(1)
            grown = rss_bytes(serve.proc.pid) - before
            status, _, body = serve.request("GET", "/healthz")
            assert status == 200, body
            refused = 0
            for s in socks:
                s.settimeout(0.05)
                try:
                    got_back = s.recv(200)
                except OSError:
                    continue
                if got_back.startswith(b"HTTP/1.1 503"):
                    assert b"Retry-After: 5" in got_back
                    refused += 1
        finally:
            for s in socks:
                s.close()
        # the code before grew 503MB here (the 420MB of bodies, and more); bounded, 330-383MB (the 256MB
        # budget, the connections' buffers and what the allocator keeps): 380MB was too close (CI: 383MB)
        assert grown < 450_000_000, f"serve's RSS grew by {grown:,} bytes"
        assert refused > 0
        assert "more than 268,435,456 bytes of bodies at once" in serve.logs()
        assert serve.post("/hooks/orders", b'{"n": 1}', HEADERS)[0] == 202  # once they are gone, served again
        assert serve.terminate() == 0
