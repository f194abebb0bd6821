"""The send ledger (TESTING.md section 3) against a real server on 127.0.0.1 that has no idempotency
keys: `send ... once` under kill -9 at 10 points gives 0 duplicates counted at the sink (a send cut
off in flight is kept as a failed record until someone checks), `send ... if changed` sends only
changed payloads, and `flowlang ledger` shows and forgets keys."""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import flowlang
from conftest import cli, run_cli
from fakeapi import FakeApi, Request

RECORDS = 300
POINTS = int(os.environ.get("FLOWLANG_CRASH_POINTS", "10"))

ONCE = """flow "orders once"
use src = file(path: "orders.jsonl")
use sink = http(base_url: env.API)
call src.read() as orders
for each o in orders
  send {number: o.number, total: o.total} to sink.post("/orders") key o.number once as created
  emit {number: o.number, at_sink: created.seq}
end
"""


class Sink:
    """Counts what arrives, per order number; kills the client at a planned request."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.plan: tuple[str, int] | None = None
        self.count = 0

    def post(self, req: Request) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.count += 1
            plan, pid, n = self.plan, self.pid, self.count
        if plan is not None and pid is not None and n == plan[1] and plan[0] == "before":
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
            return 500, {}, {"error": "gone"}
        with self.lock:
            self.received[req.body["number"]] += 1
            seq = sum(self.received.values())
        if plan is not None and pid is not None and n == plan[1] and plan[0] == "after":
            os.kill(pid, signal.SIGKILL)  # stored here, the answer never reaches the client
            time.sleep(0.05)
        return 201, {}, {"seq": seq}


def plans(seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    fixed = [("before", 3), ("after", 10), ("before", 25), ("after", 1), ("after", 40), ("before", 2),
             ("after", 7), ("before", 30), ("after", 18), ("before", 12)]
    extra = [(rng.choice(["before", "after"]), rng.randint(1, 40)) for _ in range(max(0, POINTS - len(fixed)))]
    return (fixed + extra)[:POINTS]


def run_flow(folder: Path, api: FakeApi, sink: Sink, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    env["API"] = api.url
    proc = subprocess.Popen([sys.executable, "-m", "flowlang", *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sink.pid = proc.pid
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def ledger(folder: Path) -> list[dict[str, Any]]:
    shown = cli("ledger", "orders.flow", "--json", cwd=folder)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


@pytest.mark.parametrize("mode", ["once", "if changed"])
def test_once_under_kill_9_sends_no_duplicate(tmp_path: Path, mode: str) -> None:
    """`if changed` so too: a send in flight at the kill was not claimed, and the next run sent it again
    (a second POST at the sink for the kills after it stored the record)."""
    (tmp_path / "orders.flow").write_text(ONCE.replace(" once as created", f" {mode} as created"))
    (tmp_path / "orders.jsonl").write_text("".join(
        json.dumps({"number": f"SO-{i:04d}", "total": i}) + "\n" for i in range(1, RECORDS + 1)))
    sink = Sink()
    killed = 0
    with FakeApi() as api:
        api.route("POST", "/orders", sink.post)
        for plan in plans(20261201):
            sink.plan, sink.count = plan, 0
            proc = run_flow(tmp_path, api, sink, "run", "orders.flow")
            killed += proc.returncode == -signal.SIGKILL
        sink.plan = None
        final = run_flow(tmp_path, api, sink, "run", "orders.flow")
        assert final.returncode in (0, 3), final.stderr
        entries = {e["key"]: e for e in ledger(tmp_path)}
        pending = sorted(k for k, e in entries.items() if e["status"] == "pending")
        # a send cut off in flight is not sent again: it is a failed record that says why
        errors = cli("errors", "orders.flow", "--json", cwd=tmp_path)
        maybe = sorted({json.loads(line)["record"]["number"] for line in errors.stdout.splitlines()})
        assert maybe == pending  # (each rerun fails them again: one open error per key comes with trace keys)
        assert all("may have reached sink" in json.loads(line)["message"] for line in errors.stdout.splitlines())
        # check at the sink, as the message asks: forget those that did not arrive, retry sends them
        for key in pending:
            if sink.received[key] == 0:
                assert cli("ledger", "orders.flow", "--forget", key, cwd=tmp_path).returncode == 0
        run_flow(tmp_path, api, sink, "retry", "orders.flow")
    duplicates = sum(n - 1 for n in sink.received.values() if n > 1)
    lost = [f"SO-{i:04d}" for i in range(1, RECORDS + 1) if sink.received[f"SO-{i:04d}"] == 0]
    print(f"kill points: {len(plans(20261201))}, killed: {killed}, in flight when killed: {len(pending)}, "
          f"duplicates at the sink: {duplicates}, lost: {len(lost)}")
    assert killed == len(plans(20261201))
    assert duplicates == 0
    assert lost == []
    assert pending  # some sends were cut off in flight, and none of them was sent twice


CHANGED = """flow "catalogue"
use src = file(path: "products.jsonl")
use shop = http(base_url: env.API)
call src.read() as products
for each p in products
  send {sku: p.sku, price: p.price} to shop.put('/products/{sku}', sku: p.sku) key p.sku if changed
end
"""


def test_if_changed_sends_only_changed_payloads(tmp_path: Path) -> None:
    (tmp_path / "catalogue.flow").write_text(CHANGED)
    products = [{"sku": f"P-{i}", "price": i * 10} for i in range(1, 21)]

    def write(items: list[dict[str, Any]]) -> None:
        (tmp_path / "products.jsonl").write_text("".join(json.dumps(p) + "\n" for p in items))

    write(products)
    with FakeApi() as api:
        got: list[Any] = []
        api.route("PUT", r"^/products/.*$", lambda req: (got.append(req.body), (200, {}, {"ok": True}))[1])
        first = cli("run", "catalogue.flow", cwd=tmp_path, env={"API": api.url})
        assert first.returncode == 0, first.stderr
        assert len(got) == 20
        again = cli("run", "catalogue.flow", cwd=tmp_path, env={"API": api.url})
        assert again.returncode == 0 and len(got) == 20  # nothing changed, nothing sent
        products[4]["price"] = 55
        products[17]["price"] = 1
        write(products)
        got.clear()
        third = cli("run", "catalogue.flow", cwd=tmp_path, env={"API": api.url})
        assert third.returncode == 0, third.stderr
        assert got == [{"sku": "P-5", "price": 55}, {"sku": "P-18", "price": 1}]
        summary = [json.loads(line) for line in third.stderr.splitlines() if "summary" in line][-1]
        assert summary["summary"]["sent"] == 2 and summary["summary"]["skipped"] == 18
        shown = cli("ledger", "catalogue.flow", "--key", "P-5", cwd=tmp_path)
        assert "P-5  shop.put /products/{sku}  sent in job 3" in shown.stdout
        assert cli("ledger", "catalogue.flow", "--all", cwd=tmp_path).returncode == 0
        got.clear()
        assert cli("run", "catalogue.flow", cwd=tmp_path, env={"API": api.url}).returncode == 0
        assert len(got) == 20  # a forgotten ledger sends everything again


def test_once_gives_the_recorded_answer_and_needs_a_key(tmp_path: Path) -> None:
    class Erp:
        def __init__(self) -> None:
            self.made: list[Any] = []

        def create_order(self, order: Any) -> dict[str, Any]:
            self.made.append(order)
            return {"id": f"ERP-{len(self.made)}"}

    flow = flowlang.compile('for each o in input\n  send o to erp.create_order once as created\n'
                            '  emit created.id\nend\n', name="erp.flow")
    erp = Erp()
    first = flow.run(bindings={"erp": erp}, input=[{"id": 1}, {"id": 2}], state_dir=tmp_path)
    again = flow.run(bindings={"erp": erp}, input=[{"id": 1}, {"id": 2}, {"id": 3}], state_dir=tmp_path)
    assert first.outputs == ["ERP-1", "ERP-2"] and again.outputs == ["ERP-1", "ERP-2", "ERP-3"]
    assert len(erp.made) == 3
    assert again.stats.skipped == 2
    keyless = flow.run(bindings={"erp": erp}, input=[{"name": "no id"}], state_dir=tmp_path)
    assert "needs the record's key" in keyless.errors[0].message



def test_a_key_written_that_is_null_for_a_record_is_named_not_asked_for(tmp_path: Path) -> None:
    """`send r to out key r.sku once` for a record without a sku said 'needs the record's key: write `key
    EXPR` after the destination', which the flow had done. It names the key that was null; a send without
    a key of its own keeps the old words (write one)."""
    said = "send ... once needs the record's key, and its key ({}) is null for this record: give every record " \
           "one (key r.sku ?? r.email)"
    for send, key in (("send r to m key r.sku once", "key r.sku"), ("send r to m key r.sku once batch 5", "key r.sku"),
                      ("send r to m if changed", "the loop's key r.sku")):
        loop = "for each r in input key r.sku" if "loop" in key else "for each r in input"
        flow = flowlang.compile(f"use m = memory()\n{loop}\n  {send}\nend\n", name="k.flow")
        result = flow.run(input=[{"sku": "A"}, {"name": "no sku"}], state_dir=tmp_path / send.replace(" ", "_"))
        assert [(e.record, e.message) for e in result.errors] == [
            ({"name": "no sku"}, said.format(key).replace("once", "if changed" if "changed" in send else "once"))]
        assert result.stats.sent == 1

def test_key_and_mode_words_are_names_elsewhere(tmp_path: Path) -> None:
    flow = flowlang.compile('let key = 1\nlet once = 2\nlet changed = 3\nemit key + once + changed\n', name="w.flow")
    assert flow.run().outputs == [6]
    wrong = tmp_path / "w.flow"
    wrong.write_text('use out = file(path: "o.jsonl")\nsend {a: 1} to out key 1 batch 2\n')
    checked = cli("check", str(wrong))
    assert checked.returncode == 2
    assert "goes with `once` or `if changed`" in checked.stderr


def test_the_ledger_key_defaults_to_the_loops_trace_key(tmp_path: Path) -> None:
    """Without `key EXPR` on the send, the key is the loop's trace key (`for each ... key EXPR`), else the
    record's id (TESTING.md 3); in a nested loop, the innermost loop's."""
    class Erp:
        def __init__(self) -> None:
            self.made: list[Any] = []

        def create_order(self, order: Any) -> dict[str, Any]:
            self.made.append(order)
            return {"id": f"ERP-{len(self.made)}"}

        def add_line(self, line: Any) -> dict[str, Any]:
            self.made.append(line)
            return {"ok": True}

    flow = flowlang.compile('for each o in input key o.number\n  send o to erp.create_order once as created\n'
                            '  for each l in o.lines key [o.number, l.sku]\n    send l to erp.add_line once\n  end\n'
                            '  emit created.id\nend\n', name="erp.flow")
    erp = Erp()
    orders = [{"number": "SO-1", "lines": [{"sku": "A"}, {"sku": "B"}]}, {"number": "SO-2", "lines": [{"sku": "A"}]}]
    first = flow.run(bindings={"erp": erp}, input=orders, state_dir=tmp_path)
    assert first.ok, first.errors
    assert first.outputs == ["ERP-1", "ERP-4"] and len(erp.made) == 5
    again = flow.run(bindings={"erp": erp}, input=[*orders, {"number": "SO-3", "lines": []}], state_dir=tmp_path)
    assert again.ok, again.errors
    assert again.outputs == ["ERP-1", "ERP-4", "ERP-6"] and len(erp.made) == 6
    assert again.stats.skipped == 5
    keys = sorted(e.key for e in flowlang_store_entries(tmp_path, "erp"))
    assert keys == sorted(['["SO-1","A"]', '["SO-1","B"]', '["SO-2","A"]', "SO-1", "SO-2", "SO-3"])


def flowlang_store_entries(folder: Path, flow: str) -> list[Any]:
    from flowlang.runtime.store import Store
    store = Store(folder)
    try:
        return store.ledger.entries(flow)
    finally:
        store.close()


BATCH_CONNECTOR = """
name = "dest"
base_url = "{base_url}"
[config]
base_url = { required = true }
[operations.create_items]
method = "POST"
path = "/items/batch"
batch = { max = 50, body = "items", results = "results", ok = "ok", error = "error" }
"""

BATCH_ONCE = """flow "orders once"
use src = file(path: "orders.jsonl")
use dest = dest(base_url: env.API)
call src.read() as orders
for each o in orders key o.number
  send {number: o.number, total: o.total} to dest.create_items once batch 20 as created
  emit {number: o.number, ok: created.ok}
end
"""


class BatchSink(Sink):
    """A batch endpoint without idempotency keys; the client is killed before a batch is stored, with
    half of it stored, or after storing it (the answer never arrives)."""

    def batch(self, req: Request) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.count += 1
            plan, pid, n = self.plan, self.pid, self.count
        hit = plan is not None and pid is not None and n == plan[1]
        items = req.body["items"]
        for i, item in enumerate(items):
            if hit and pid is not None and plan is not None and (
                    (plan[0] == "before" and i == 0) or (plan[0] == "half" and i == len(items) // 2)):
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
                return 500, {}, {"error": "gone"}
            with self.lock:
                self.received[item["number"]] += 1
        if hit and pid is not None and plan is not None and plan[0] == "after":
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        return 200, {}, {"results": [{"ok": True} for _ in items]}


@pytest.mark.parametrize("mode", ["once", "if changed"])
def test_batched_once_under_kill_9_sends_no_duplicate(tmp_path: Path, mode: str) -> None:
    (tmp_path / "orders.flow").write_text(BATCH_ONCE.replace(" once batch", f" {mode} batch"))
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "dest.toml").write_text(BATCH_CONNECTOR)
    count = 200
    (tmp_path / "orders.jsonl").write_text("".join(
        json.dumps({"number": f"SO-{i:04d}", "total": i}) + "\n" for i in range(1, count + 1)))
    sink = BatchSink()
    points = [("half", 2), ("after", 1), ("before", 3), ("after", 2), ("half", 1)]
    if mode == "if changed":  # the same path as once's (ledger_send): three of the kinds of kill
        points = points[:3]
    killed = 0
    with FakeApi() as api:
        api.route("POST", "/items/batch", sink.batch)
        for plan in points:
            sink.plan, sink.count = plan, 0
            proc = run_flow(tmp_path, api, sink, "run", "orders.flow")
            killed += proc.returncode == -signal.SIGKILL
        sink.plan = None
        final = run_flow(tmp_path, api, sink, "run", "orders.flow")
        assert final.returncode in (0, 3), final.stderr
        entries = {e["key"]: e for e in ledger(tmp_path)}
        pending = sorted(k for k, e in entries.items() if e["status"] == "pending")
        errors = cli("errors", "orders.flow", "--json", cwd=tmp_path)
        failed = sorted({json.loads(line)["record"]["number"] for line in errors.stdout.splitlines()})
        assert failed == pending  # every record of a batch cut off in flight: refused, kept, never sent twice
        for key in pending:
            if sink.received[key] == 0:
                assert cli("ledger", "orders.flow", "--forget", key, cwd=tmp_path).returncode == 0
        # those that did arrive stay open until someone resolves them (flowlang resolve): retry exits 3
        assert run_flow(tmp_path, api, sink, "retry", "orders.flow").returncode in (0, 3)
    duplicates = sum(n - 1 for n in sink.received.values() if n > 1)
    lost = [f"SO-{i:04d}" for i in range(1, count + 1) if sink.received[f"SO-{i:04d}"] == 0]
    print(f"batched once: kill points {len(points)}, killed {killed}, in flight when killed: {len(pending)}, "
          f"duplicates at the sink: {duplicates}, lost: {len(lost)}")
    assert killed == len(points)
    assert duplicates == 0 and lost == []
    assert len(pending) >= 20  # whole batches were cut off, and none of their records was sent twice
    assert all(entries[f"SO-{i:04d}"]["status"] == "sent" or f"SO-{i:04d}" in pending for i in range(1, count + 1))


def test_once_to_two_paths_of_one_connection_sends_to_each(tmp_path: Path) -> None:
    """`api.post("/invoices")` and `api.post("/shipments")` with the same key are two sends: each path gets
    every order once. Before, both were the ledger's operation `post`, so the second send of each key was
    skipped as already sent (the shipments never went out). A key built from a secret keeps the rest of
    its text (before, every such key was {"$secret": null}: one record sent, the others skipped) and a key
    holding a secret's text is kept masked. An entry an earlier version kept under the bare operation
    still counts, so an upgrade sends nothing twice. Counted at the server."""
    (tmp_path / "orders.jsonl").write_text("".join(json.dumps({"number": f"SO-{i}"}) + "\n" for i in range(1, 5)))
    (tmp_path / "s.toml").write_text('K = "canary-4714-secret"\n')
    (tmp_path / "f.flow").write_text(
        'use src = file(path: "orders.jsonl")\nuse api = http(base_url: env.API, headers: {"X-Key": secret.K})\n'
        'call src.read() as orders\nfor each o in orders\n'
        '  send {n: o.number} to api.post("/invoices") key o.number once\n'
        '  send {n: o.number} to api.post("/shipments") key o.number once\n'
        '  send {n: o.number} to api.post("/notes") key secret.K + o.number once\n'
        '  send {n: o.number} to api.post("/tags") key "canary-4714-secret/" + o.number once\nend\n')
    with FakeApi() as api:
        env = {"API": api.url}
        first = cli("run", "f.flow", "--secrets", "s.toml", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        again = cli("run", "f.flow", "--secrets", "s.toml", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
        store = flowlang.load(tmp_path / "f.flow").store()
        try:  # as an earlier version kept it: under `post`, for a key no path has sent yet
            store.ledger.sent("f", "api", "post", "SO-9", "0" * 64, {"ok": True}, 1, "2026-01-01T00:00:00Z",
                              lambda text: text)
        finally:
            store.close()
        (tmp_path / "orders.jsonl").write_text(json.dumps({"number": "SO-9"}) + "\n")
        assert cli("run", "f.flow", "--secrets", "s.toml", cwd=tmp_path, env=env).returncode == 0
        shown = cli("ledger", "f.flow", "--key", "SO-1", cwd=tmp_path).stdout
    every = {f"SO-{i}": 1 for i in range(1, 5)}
    for path, expected in [("/invoices", every), ("/shipments", every),  # SO-9: in the ledger of before
                           ("/notes", {**every, "SO-9": 1}), ("/tags", {**every, "SO-9": 1})]:
        got = Counter(r.body["n"] for r in api.requests if r.method == "POST" and r.path == path)
        assert got == expected, (path, got)
    assert "api.post /invoices" in shown and "api.post /shipments" in shown
    listed = cli("ledger", "f.flow", "--json", cwd=tmp_path).stdout
    assert "canary-4714-secret" not in listed and "***/SO-1" in listed and "***SO-1" in listed


def test_once_ignores_a_query_string_that_changes_between_runs(tmp_path: Path) -> None:
    """`api.post("/invoices?run={job.id}") key o.number once`: the query carries the run, the destination
    is the same, so a second run sends nothing again. Counted at the server."""
    (tmp_path / "orders.jsonl").write_text("".join(json.dumps({"number": f"SO-{i}"}) + "\n" for i in range(1, 4)))
    (tmp_path / "f.flow").write_text(
        'use src = file(path: "orders.jsonl")\nuse api = http(base_url: env.API)\ncall src.read() as orders\n'
        'for each o in orders\n  send {n: o.number} to api.post("/invoices?run={job.id}") key o.number once\nend\n')
    with FakeApi() as api:
        for _ in range(2):
            done = cli("run", "f.flow", cwd=tmp_path, env={"API": api.url})
            assert done.returncode == 0, done.stderr
    got = Counter(r.body["n"] for r in api.requests if r.method == "POST" and r.path == "/invoices")
    assert got == {"SO-1": 1, "SO-2": 1, "SO-3": 1}


def test_forgetting_keys_waits_for_no_run_and_is_a_job(tmp_path: Path) -> None:
    """`flowlang ledger --forget K` / `--all` changed the ledger while a run of the flow was going on
    (that run's `once` sends read and write those very entries), where resolve, edit and state wait
    for the flow's lock (exit 75); and nothing in `flowlang jobs` said that keys had been forgotten.
    It takes the lock now, and each forget is a job of kind `ledger`."""
    from flowlang.runtime.lock import FlowLock

    (tmp_path / "orders.jsonl").write_text("".join(json.dumps({"number": f"SO-{i}", "total": i}) + "\n"
                                                   for i in range(1, 4)))
    (tmp_path / "orders.flow").write_text(ONCE)
    with FakeApi() as api:
        api.route("POST", "/orders", lambda req: (201, {}, {"seq": 1}))
        done = cli("run", "orders.flow", cwd=tmp_path, env={"API": api.url})
        assert done.returncode == 0, done.stderr
    assert len(ledger(tmp_path)) == 3
    held = FlowLock(tmp_path / ".flowlang", "orders once")
    held.acquire()  # a run of the flow is going on
    try:
        for args in (("--forget", "SO-1"), ("--all",)):
            refused = run_cli("ledger", "orders.flow", *args, cwd=tmp_path)
            assert refused.returncode == 75, refused.stderr
            assert "another run of 'orders once' is in progress" in refused.stderr
        assert len(ledger(tmp_path)) == 3
        assert run_cli("ledger", "orders.flow", cwd=tmp_path).returncode == 0  # reading needs no lock
    finally:
        held.release()
    forgot = cli("ledger", "orders.flow", "--forget", "SO-1", cwd=tmp_path)
    assert forgot.returncode == 0 and "forgot key SO-1 (1 entry); the next run sends it again" in forgot.stderr
    every = cli("ledger", "orders.flow", "--all", cwd=tmp_path)
    assert every.returncode == 0 and "forgot every key (2 entries); the next run sends them again" in every.stderr
    assert ledger(tmp_path) == []
    jobs = [json.loads(line) for line in cli("jobs", "orders.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [(j["kind"], j["message"]) for j in jobs] == [
        ("ledger", "forgot every key (2 entries)"), ("ledger", "forgot key SO-1 (1 entry)"), ("run", None)]
    assert "forgot key SO-1 (1 entry)" in cli("jobs", "orders.flow", cwd=tmp_path).stdout


def test_a_send_cut_off_in_flight_that_arrived_is_marked_sent_and_retry_finishes_its_record(tmp_path: Path) -> None:
    """kill -9 after the sink stored order 3 and before its answer: the rerun keeps order 3 as a failed
    record (in flight). The sink has it, so, as the message says, `flowlang ledger --sent 3`, then
    `flowlang retry`: the send is skipped as sent and the rest of the record's iteration (its line in the
    file, `state`) runs. Before, the only ways on were --forget (order 3 sent twice) or resolving it by hand
    (its line never written)."""
    (tmp_path / "orders.flow").write_text(
        'flow "two destinations"\nuse sink = http(base_url: env.API)\nuse out = file(path: "out.jsonl")\n'
        'for each n in range(1, 6)\n  send {number: n} to sink.post("/orders") key n once\n'
        '  send {number: n} to out\nend\n')
    received: Counter[int] = Counter()
    pid: list[int] = []

    def post(req: Request) -> tuple[int, dict[str, str], Any]:
        received[req.body["number"]] += 1
        if req.body["number"] == 3 and pid:
            os.kill(pid.pop(), signal.SIGKILL)  # stored here, the answer never reaches the client
            time.sleep(0.05)
        return 201, {}, {"ok": True}

    with FakeApi() as api:
        api.route("POST", "/orders", post)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}, "API": api.url}
        proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "orders.flow"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pid.append(proc.pid)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        rerun = cli("run", "orders.flow", cwd=tmp_path, env={"API": api.url})
        assert rerun.returncode == 3
        assert "or, if it arrived, flowlang ledger orders.flow --sent 3 --to 'sink.post /orders'" in rerun.stderr
        assert "run flowlang ledger orders.flow --forget 3 --to 'sink.post /orders' to send it again" in rerun.stderr
        nothing = cli("ledger", "orders.flow", "--sent", "4", cwd=tmp_path)
        assert nothing.returncode == 2 and "no pending ledger entry for key 4" in nothing.stderr
        marked = cli("ledger", "orders.flow", "--sent", "3", cwd=tmp_path)
        assert marked.returncode == 0, marked.stderr
        assert "marked key 3 as sent (1 entry)" in marked.stderr
        marked_by = json.loads(cli("jobs", "orders.flow", "--json", cwd=tmp_path).stdout.splitlines()[0])["id"]
        entry = json.loads(cli("ledger", "orders.flow", "--key", "3", "--json", cwd=tmp_path).stdout)
        assert (entry["status"], entry["job_id"]) == ("sent", marked_by)  # the ledger job that marked it, not null
        retried = cli("retry", "orders.flow", cwd=tmp_path, env={"API": api.url})
        assert retried.returncode == 0, retried.stderr
        assert f"1 send skipped, already sent in job {marked_by} (send ... once)" in retried.stderr  # not 'job None'
    assert received == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1})  # order 3 once: it had arrived
    lines = [json.loads(line)["number"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(lines) == [1, 2, 3, 4, 5]  # its line too, written by the retry
    jobs = cli("jobs", "orders.flow", cwd=tmp_path).stdout
    assert "marked key 3 as sent (1 entry)" in jobs


def test_forget_and_sent_say_what_changed_in_json_and_key_with_them_is_refused(tmp_path: Path) -> None:
    """`ledger --forget K --json` (and --all, --sent) printed nothing on stdout, where the listing and the
    other store commands print JSON; and `--key K --forget K2` forgot K2 without a word about --key.
    Now each prints one JSON object saying what changed, and --key with them is a usage error (exit 2)."""
    (tmp_path / "orders.jsonl").write_text("".join(json.dumps({"number": f"SO-{i}", "total": i}) + "\n"
                                                   for i in range(1, 4)))
    (tmp_path / "orders.flow").write_text(ONCE)
    with FakeApi() as api:
        api.route("POST", "/orders", lambda req: (201, {}, {"seq": 1}))
        done = cli("run", "orders.flow", cwd=tmp_path, env={"API": api.url})
        assert done.status == 0, done.stderr
    for args in (("--key", "SO-1", "--forget", "SO-2"), ("--key", "SO-1", "--all"),
                 ("--key", "SO-1", "--sent", "SO-1")):
        refused = cli("ledger", "orders.flow", *args, "--json", cwd=tmp_path)
        assert refused.status == 2 and refused.stdout == "", refused
        assert "--key only narrows the listing" in refused.stderr and "Traceback" not in refused.stderr
    assert len(ledger(tmp_path)) == 3  # nothing was forgotten by the refused commands
    forgot = cli("ledger", "orders.flow", "--forget", "SO-2", "--json", cwd=tmp_path)
    assert forgot.status == 0, forgot.stderr
    shown = json.loads(forgot.stdout)
    assert (shown["flow"], shown["key"], shown["forgotten"]) == ("orders once", "SO-2", 1)
    assert [(e["key"], e["operation"], e["status"]) for e in shown["entries"]] == [("SO-2", "post /orders", "sent")]
    assert isinstance(shown["job_id"], int)
    none = json.loads(cli("ledger", "orders.flow", "--forget", "SO-9", "--json", cwd=tmp_path).stdout)
    assert (none["forgotten"], none["job_id"], none["entries"]) == (0, None, [])
    every = json.loads(cli("ledger", "orders.flow", "--all", "--json", cwd=tmp_path).stdout)
    assert every["key"] is None and every["forgotten"] == 2
    assert sorted(e["key"] for e in every["entries"]) == ["SO-1", "SO-3"]
    assert ledger(tmp_path) == []


def test_a_once_send_whose_answer_never_came_stays_pending_so_a_retry_sends_it_not_twice(tmp_path: Path) -> None:
    """A `once` send that timed out after the sink stored it, a POST a gateway answered 503 after the
    sink stored it, and a batch whose answer held no result per record (the sink took them): each may
    have arrived, so its key stays pending and the record fails saying so, as after a kill. Before, the
    key was released as if refused, and `flowlang retry` sent orders 2 and 3 and the whole batch a second
    time (the sink counted 2 of each). A 422 (refused with an answer) still releases its key."""
    (tmp_path / "orders.flow").write_text(
        'use sink = http(base_url: env.API, timeout: 0.5)\nuse dest = dest(base_url: env.API)\n'
        'for each n in range(1, 6)\n  send {number: n} to sink.post("/orders") key n once\nend\n'
        'for each b in range(10, 13)\n  send {number: b} to dest.create_items key b once batch 3\nend\n')
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "dest.toml").write_text(BATCH_CONNECTOR)
    received: Counter[int] = Counter()
    broken = {2, 3, 4, 10}

    def post(req: Request) -> tuple[int, dict[str, str], Any]:
        number = req.body["number"]
        if number == 4 and number in broken:
            return 422, {}, {"error": "not now"}  # refused: not stored
        received[number] += 1
        if number == 2 and number in broken:
            time.sleep(1.0)  # stored, and the answer comes after the client's timeout
        if number == 3 and number in broken:
            return 503, {}, {"error": "upstream timed out"}
        return 201, {}, {"ok": True}

    def batch(req: Request) -> tuple[int, dict[str, str], Any]:
        items = req.body["items"]
        for item in items:
            received[item["number"]] += 1
        if 10 in broken:
            return 200, {}, {"status": "accepted"}  # no results: the sink took them, but says nothing
        return 200, {}, {"results": [{"ok": True} for _ in items]}

    with FakeApi() as api:
        api.route("POST", "/orders", post)
        api.route("POST", "/items/batch", batch)
        env = {"API": api.url}
        first = cli("run", "orders.flow", cwd=tmp_path, env=env)
        assert first.status == 3, first.stderr
        assert "key 2 stays pending in the ledger, since the request may have reached sink" in first.stderr
        assert "key 3 stays pending in the ledger" in first.stderr and "key 11 stays pending" in first.stderr
        assert "key 4 stays pending" not in first.stderr
        pending = sorted(e.key for e in flowlang_store_entries(tmp_path / ".flowlang", "orders")
                         if e.status == "pending")
        assert pending == ["10", "11", "12", "2", "3"]
        broken.clear()
        time.sleep(0.6)  # the late answer of order 2 is written
        retried = cli("retry", "orders.flow", cwd=tmp_path, env=env)
        assert retried.status == 3, retried.stderr  # order 4 is sent; the others wait for someone to check
        assert "the send of key 2 to sink.post /orders in job 1 got no answer that says whether it arrived" \
            in retried.stderr
        assert received == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 10: 1, 11: 1, 12: 1})  # none twice
        for key in ("2", "3", "10", "11", "12"):  # they arrived: as the message says
            assert cli("ledger", "orders.flow", "--sent", key, cwd=tmp_path).status == 0
        assert cli("retry", "orders.flow", cwd=tmp_path, env=env).status == 0
    assert received == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 10: 1, 11: 1, 12: 1})


def test_a_batch_over_the_operations_max_keeps_what_its_first_requests_sent(tmp_path: Path) -> None:
    """`batch size` with size 4 over an operation that takes 2 a request is two requests. When the second
    was refused, every record of both failed and the first request's keys were released, so a retry sent
    orders 1 and 2 again (the sink counted 2 of each). Now each request's records get its own outcome."""
    (tmp_path / "orders.flow").write_text(
        'use dest = dest(base_url: env.API)\nlet size = 4\n'
        'for each b in range(1, 5)\n  send {number: b} to dest.create_items key b once batch size\nend\n')
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "dest.toml").write_text(BATCH_CONNECTOR.replace("max = 50", "max = 2"))
    received: Counter[int] = Counter()
    refuse = [True]

    def batch(req: Request) -> tuple[int, dict[str, str], Any]:
        items = req.body["items"]
        if refuse[0] and items[0]["number"] == 3:
            return 400, {}, {"error": "bad batch"}
        for item in items:
            received[item["number"]] += 1
        return 200, {}, {"results": [{"ok": True} for _ in items]}

    with FakeApi() as api:
        api.route("POST", "/items/batch", batch)
        first = cli("run", "orders.flow", cwd=tmp_path, env={"API": api.url})
        assert first.status == 3, first.stderr
        errors = [json.loads(line) for line in cli("errors", "orders.flow", "--json", cwd=tmp_path).stdout.splitlines()]
        assert [e["record"] for e in errors] == [3, 4]
        refuse[0] = False
        assert cli("retry", "orders.flow", cwd=tmp_path, env={"API": api.url}).status == 0
    assert received == Counter({1: 1, 2: 1, 3: 1, 4: 1})


REPEATS = """flow "repeats"
use api = http(base_url: env.API)
use out = file(path: "sent.jsonl")
for each o in [{n: "A", v: 1}, {n: "B", v: 1}, {n: "A", v: 1}, {n: "A", v: 2}, {n: "C", v: 1}, {n: "B", v: 1}] key o.n
  send {n: o.n} to api.post("/orders") once
  send {n: o.n, v: o.v} to api.put('/orders/{n}', n: o.n) if changed
  send {n: o.n} to out once batch 2
end
"""


def test_a_plan_and_a_dry_run_skip_a_key_that_comes_again_as_the_run_does(tmp_path: Path) -> None:
    """A key that comes twice in one run is sent once (`once`; `if changed`: again only with another
    payload), since the run's first send put it in the ledger. A plan and a dry run write nothing to the
    ledger, so they planned every occurrence (plan: 6 POST, 6 PUT and 6 file writes where the run
    made 3, 4 and 3), and the dry run counted none of its ledger sends ('would send 0'). They skip such a
    key now as the run does, and count what they would send."""
    flow = tmp_path / "repeats.flow"
    flow.write_text(REPEATS)
    with FakeApi({"orders": []}) as api:
        api.route("PUT", r"^/orders/\w+$", lambda req: (200, {}, {"ok": True}))
        planned = cli("plan", str(flow), "--json", env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        dry = cli("run", str(flow), "--dry-run", env={"API": api.url})
        assert dry.returncode == 0, dry.stderr
        assert not [r for r in api.requests if r.method != "GET"]
        done = cli("run", str(flow), env={"API": api.url})
        assert done.returncode == 0, done.stderr
        posts = [r.body["n"] for r in api.requests if r.method == "POST"]
        puts = [(r.body["n"], r.body["v"]) for r in api.requests if r.method == "PUT"]
    assert sorted(posts) == ["A", "B", "C"]  # the batched send runs iterations ahead: in any order
    assert sorted(puts) == [("A", 1), ("A", 2), ("B", 1), ("C", 1)]
    written = [json.loads(line)["n"] for line in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert sorted(written) == ["A", "B", "C"]
    plan = json.loads(planned.stdout)
    by_target = {w["target"]: [p for p in w["payloads"]] for w in plan["writes"]}
    assert sorted(p["n"] for p in by_target["POST /orders"]) == ["A", "B", "C"]
    assert sorted((p["n"], p["v"]) for p in by_target["PUT /orders/{n}"]) == sorted(puts)
    assert sorted(p["n"] for p in next(w for w in plan["writes"] if w["connection"] == "out")["payloads"]) == \
        ["A", "B", "C"]
    assert plan["skipped"] == 3 + 2 + 3
    summary = [json.loads(line) for line in dry.stderr.splitlines() if line.startswith("{")][-1]["summary"]
    assert (summary["sent"], summary["skipped"]) == (3 + 4 + 3, 3 + 2 + 3)


def test_a_once_send_with_an_idempotency_key_cut_off_by_a_kill_is_sent_again(tmp_path: Path) -> None:
    """A `once` send killed in flight leaves its key pending, and the next run refused to send it until
    someone checked (`ledger --forget` or `--sent`), also when the request carried an idempotency key (or
    was a PUT), which the docs say may be repeated: a record the API would have taken twice harmlessly
    waited for a person. Such a key is kept pending as repeatable now, and the next run sends it again,
    under the same Idempotency-Key; a POST without one stays pending, as before. Real kill of a real
    child process, while the local API holds order 2's request."""
    (tmp_path / "orders.flow").write_text(
        'use api = http(base_url: env.API)\n'
        'for each n in range(1, 4)\n'
        '  send {number: n} to api.put("/orders/{n}") key n once\n'
        '  send {number: n} to api.post("/payments", idempotency_key: "pay-{n}") key n once\n'
        '  send {number: n} to api.post("/notes") key n once\n'
        'end\n')
    seen: list[tuple[str, str | None]] = []
    pid: list[int] = []
    kill_at = ["/payments 2", "/notes 2", "/orders/3 3"]  # where each run dies

    def answer(req: Request) -> tuple[int, dict[str, str], Any]:
        seen.append((f"{req.path} {req.body['number']}", req.headers.get("idempotency-key")))
        if pid and kill_at and seen[-1][0] == kill_at[0]:
            kill_at.pop(0)
            os.kill(pid.pop(), signal.SIGKILL)  # the process dies with this request in flight
            time.sleep(0.05)
        return 201, {}, {"ok": True}

    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    with FakeApi() as api:
        for method, path in (("PUT", r"^/orders/\d+$"), ("POST", "/payments"), ("POST", "/notes")):
            api.route(method, path, answer)
        env["API"] = api.url
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "orders.flow"], cwd=tmp_path, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            pid.append(proc.pid)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == -signal.SIGKILL, err
        assert seen.count(("/payments 2", "pay-2")) == 2  # sent again after the first kill, under its key
        last = cli("run", "orders.flow", cwd=tmp_path, env=env)
    assert last.returncode == 3, last.stderr  # note 2 (a POST without a key) waits for someone to check
    assert "the send of key 2 to api.post /notes in job 2 got no answer" in last.stderr
    assert "api.post /payments: key 2 was in flight" not in last.stderr
    sent = Counter(s for s, _ in seen)
    assert sent == Counter({"/orders/1 1": 1, "/payments 1": 1, "/notes 1": 1, "/orders/2 2": 1, "/payments 2": 2,
                            "/notes 2": 1, "/orders/3 3": 2, "/payments 3": 1, "/notes 3": 1}), sent
    assert seen.count(("/payments 2", "pay-2")) == 2  # both times under its key: the API takes it once


def test_the_ledger_of_a_flow_on_stdin_and_its_json_log_lines(tmp_path: Path) -> None:
    """`flowlang ledger - < f.flow` said 'no such flow file: -', while docs/cli.md says that the
    store's commands (ledger among them) take `-` with the flow on stdin, as errors and jobs do; and the
    JSON log lines of `ledger --forget` (and of `state --set`, `resolve`, `edit`) carried `flow` and
    `job_id` null though the change was a job of the flow (OPERATIONS.md 10: every line carries both).
    They read the flow from stdin, and their lines carry the flow and the job they made."""
    # a flow on stdin is kept under its name in the working folder's store (an unnamed one cannot use
    # `once`: every such flow is <stdin>); named as the file's stem, it is the flow f.flow is
    text = 'flow "f"\nuse m = memory()\nfor each r in input key r.sku\n  send r to m once\nend\n'
    (tmp_path / "f.flow").write_text(text.split("\n", 1)[1])
    (tmp_path / "in.json").write_text('[{"sku": "A"}, {"sku": "B"}]')
    for file in ("-", "f.flow"):
        ran = run_cli("run", file, "--input", "in.json", cwd=tmp_path, stdin=text)
        assert ran.returncode == 0, ran.stderr
    shown = run_cli("ledger", "-", "--json", cwd=tmp_path, stdin=text)
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["key"] for line in shown.stdout.splitlines()] == ["A", "B"]
    forgot = run_cli("ledger", "-", "--forget", "A", "--log-format", "json", cwd=tmp_path, stdin=text)
    assert forgot.returncode == 0, forgot.stderr
    assert [(e["flow"], e["job_id"]) for e in map(json.loads, forgot.stderr.splitlines())] == [("f", 3)]
    forgot = cli("ledger", "f.flow", "--forget", "B", "--log-format", "json", cwd=tmp_path)
    assert [(e["flow"], e["job_id"]) for e in map(json.loads, forgot.stderr.splitlines())] == [("f", 4)]
    for args, job in ((("state", "f.flow", "--set", "n=1"), 5), (("resolve", "f.flow", "7"), None),
                      (("edit", "f.flow", "7", "--set", "a=1"), None)):
        said = cli(*args, "--log-format", "json", cwd=tmp_path)
        entries = [json.loads(line) for line in said.stderr.splitlines()]
        assert entries and all((e["flow"], e["job_id"]) == ("f", job) for e in entries), (args, said.stderr)


def test_the_commands_a_message_gives_name_the_flow_file_as_it_can_be_run_from_where_the_user_is(
        tmp_path: Path) -> None:
    """`flowlang run flows/orders.flow` from the project folder: a `send ... once` answered 502 (it may have
    arrived) said 'run flowlang ledger orders.flow --forget 3', the file's bare name, which from there names no
    file (so did the rerun's in-flight message, and a child flow's 'see flowlang errors child.flow'). They
    name the path from the working folder, or the absolute path outside it, quoted where a shell needs it."""
    flows = tmp_path / "my flows"
    flows.mkdir()
    (flows / "orders.flow").write_text(
        'use sink = http(base_url: env.API)\n'
        'for each n in range(1, 5)\n  send {number: n} to sink.post("/orders") key n once\nend\n')
    (flows / "parent.flow").write_text('run "sub/child.flow"\n')
    (flows / "sub").mkdir()
    (flows / "sub" / "child.flow").write_text('for each n in [1]\n  fail "no {n}"\nend\n')

    def post(req: Request) -> tuple[int, dict[str, str], Any]:
        return (502, {}, {"error": "gateway"}) if req.body["number"] == 3 else (201, {}, {"ok": True})

    with FakeApi() as api:
        api.route("POST", "/orders", post)
        env = {"API": api.url}
        ran = cli("run", "my flows/orders.flow", cwd=tmp_path, env=env)
        assert ran.returncode == 3, ran.stderr
        assert "run flowlang ledger 'my flows/orders.flow' --forget 3 --to 'sink.post /orders' to send it again" \
            in ran.stderr
        assert "flowlang ledger 'my flows/orders.flow' --sent 3 --to 'sink.post /orders'" in ran.stderr
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        again = cli("retry", str(flows / "orders.flow"), cwd=elsewhere, env=env)
        absolute = f"'{flows / 'orders.flow'}'"
        assert f"run flowlang ledger {absolute} --forget 3 --to 'sink.post /orders' to send it again" in again.stderr
        forgot = cli("ledger", "my flows/orders.flow", "--forget", "3", "--to", "sink.post /orders",
                     cwd=tmp_path)  # pasted: it works
        assert forgot.returncode == 0, forgot.stderr
    child = cli("run", "my flows/parent.flow", cwd=tmp_path)
    assert child.returncode == 3
    assert "(see flowlang errors 'my flows/sub/child.flow')" in child.stderr, child.stderr


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_if_changed_send_cut_off_in_flight_is_not_sent_again_by_the_resume(tmp_path: Path, method: str) -> None:
    """kill -9 after the receiver stored record 3 and before its answer: `if changed` kept nothing before
    the request, so 'flowlang run --resume' sent record 3 again (a second POST at the receiver). It is
    claimed pending before its request now, as a `once` send is: the resume keeps the record as failed,
    saying it may have arrived, `flowlang ledger --sent 3` and `flowlang retry` finish it, and a later run
    of the same records sends nothing. A PUT may be repeated: it is sent again, saying so."""
    verb = method.lower()
    (tmp_path / "orders.flow").write_text(
        'flow "catalogue"\nuse sink = http(base_url: env.API)\nfor each n in range(1, 6)\n'
        f'  send {{number: n, v: 1}} to sink.{verb}("/items") key n if changed\nend\n')
    received: Counter[int] = Counter()
    pid: list[int] = []

    def store(req: Request) -> tuple[int, dict[str, str], Any]:
        received[req.body["number"]] += 1
        if req.body["number"] == 3 and pid:
            os.kill(pid.pop(), signal.SIGKILL)  # stored here, the answer never reaches the client
            time.sleep(0.05)
        return 200, {}, {"ok": True}

    with FakeApi() as api:
        api.route(method, "/items", store)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}, "API": api.url}
        proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "orders.flow"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pid.append(proc.pid)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        resumed = cli("run", "orders.flow", "--resume", cwd=tmp_path, env={"API": api.url})
        if method == "PUT":
            assert resumed.returncode == 0, resumed.stderr
            assert "key 3 was in flight when job 1 stopped; sending it again cannot do its work twice" in resumed.stderr
            assert received == Counter({1: 1, 2: 1, 3: 2, 4: 1, 5: 1})
        else:
            assert resumed.returncode == 3, resumed.stderr
            assert "send ... if changed: the send of key 3 to sink.post /items in job 1 got no answer" in resumed.stderr
            assert "or, if it arrived, flowlang ledger orders.flow --sent 3" in resumed.stderr
            assert received == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1})  # 3 once: the receiver has it
            assert cli("ledger", "orders.flow", "--sent", "3", cwd=tmp_path).returncode == 0
            retried = cli("retry", "orders.flow", cwd=tmp_path, env={"API": api.url})
            assert retried.returncode == 0, retried.stderr
        again = cli("run", "orders.flow", cwd=tmp_path, env={"API": api.url})
        assert again.returncode == 0, again.stderr
    assert received[3] == (2 if method == "PUT" else 1) and sum(received.values()) == 5 + (method == "PUT")


def test_an_if_changed_send_refused_leaves_the_last_payload_sent(tmp_path: Path) -> None:
    """An `if changed` send is pending while in flight; one the destination refused (422) gives the key back
    the payload sent before it, so the next run of that payload skips it as unchanged."""
    flow = tmp_path / "orders.flow"
    text = ('flow "catalogue"\nuse sink = http(base_url: env.API)\nfor each n in [1]\n'
            '  send {number: n, v: V} to sink.post("/items") key n if changed\nend\n')
    got: list[int] = []

    def store(req: Request) -> tuple[int, dict[str, str], Any]:
        got.append(req.body["v"])
        return (422, {}, {"error": "no"}) if req.body["v"] == 2 else (201, {}, {"ok": True})
    with FakeApi() as api:
        api.route("POST", "/items", store)
        for v, status in ((1, 0), (2, 3), (1, 0)):
            flow.write_text(text.replace("V", str(v)))
            done = cli("run", "orders.flow", cwd=tmp_path, env={"API": api.url})
            assert done.returncode == status, done.stderr
    assert got == [1, 2]  # the third run's v 1 is what the destination has
    assert [(e["status"], e["job_id"]) for e in ledger(tmp_path)] == [("sent", 1)]


def test_a_pending_key_of_a_send_outside_a_loop_says_to_run_again_not_to_retry(tmp_path: Path) -> None:
    """A `send ... once` outside any loop whose answer never came fails the run, not a record, so no error
    waits for `flowlang retry`; its message still said '..., and flowlang retry finishes the record without
    sending it' (and 'before a retry'), where retry then says there is nothing to retry (found by a new-user
    trial of kill -9 under serve). It says the next run goes on (a webhook delivery's: its replay)."""
    flow = tmp_path / "one.flow"
    flow.write_text('use api = http(base_url: env.API)\n'
                    'send {n: 1} to api.post("/slow", timeout: 0.3) key "k1" once\n')

    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(1)
        return 200, {}, {"ok": True}

    with FakeApi() as api:
        api.route("POST", r"^/slow$", slow)
        first = run_cli("run", "one.flow", cwd=tmp_path, env={"API": api.url})
        second = run_cli("run", "one.flow", cwd=tmp_path, env={"API": api.url})
    assert first.returncode == second.returncode == 1
    assert ("key k1 stays pending in the ledger, since the request may have reached api: check there, then run "
            "flowlang ledger one.flow --forget k1 --to 'api.post /slow' to send it again (or, if it arrived, "
            "flowlang ledger one.flow --sent k1 --to 'api.post /slow') before the next run") in first.stderr
    assert ("(or, if it arrived, flowlang ledger one.flow --sent k1 --to 'api.post /slow', and the next run goes on "
            "without sending "
            "it)") in second.stderr, second.stderr
    assert "retry" not in first.stderr + second.stderr


def test_a_key_left_pending_by_a_503_is_said_to_be_so(tmp_path: Path) -> None:
    """A send ... once answered 503 keeps its key pending; the next run refused it saying the send 'got no
    answer ... (the job stopped while it was in flight, or it timed out or lost its connection)', none of
    which happened: it was answered 503. The message names such answers too."""
    from fakeapi import FakeApi

    with FakeApi() as api:
        api.route("POST", "/orders", lambda req: (503, {}, {"error": "busy"}))
        (tmp_path / "f.flow").write_text(f'use api = http(base_url: "{api.url}")\n'
                                         'for each r in [{"id": 1}]\n  send r to api.post("/orders") once\nend\n')
        assert cli("run", "f.flow", cwd=tmp_path).status == 3
        again = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
        assert "or it was answered 502, 503 or 504" in again.stderr, again.stderr
        assert api.count("POST", "/orders") == 1


def test_settling_a_key_cut_off_at_one_destination_leaves_its_other_destinations_alone(tmp_path: Path) -> None:
    """A record sent `once` to a database and then to an API answered 503 (it may have arrived): the message
    said 'run flowlang ledger two.flow --forget 5 to send it again', and --forget forgot key 5 at every
    destination, so the retry that followed inserted row 5 into the database a second time (2 rows of
    20 records, found by an attack of kill -9 and 503s). The commands it gives name the destination
    (`--forget 5 --to 'api.post /sink'`), and --to narrows --forget, --sent and the listing to it."""
    import shlex
    import sqlite3

    arrived: Counter[int] = Counter()
    refused = {5}

    def sink(req: Request) -> tuple[int, dict[str, str], Any]:
        if req.body["id"] in refused:
            refused.discard(req.body["id"])
            return 503, {}, {"error": "busy"}
        arrived[req.body["id"]] += 1
        return 201, {}, {"ok": True}

    (tmp_path / "two.flow").write_text(
        'use api = http(base_url: env.API)\nuse db = sql(url: "sqlite:///sink.db")\n'
        'call db.execute("create table if not exists t (id integer, name text)")\n'
        "for each i in range(1, 8)\n"
        '  send {id: i, name: "n{i}"} to db.insert(table: "t") key i once\n'
        '  send {id: i, name: "n{i}"} to api.post("/sink") key i once\n'
        "end\n")
    with FakeApi() as api:
        api.route("POST", "/sink", sink)
        env = {"API": api.url}
        first = cli("run", "two.flow", "--log-format", "text", cwd=tmp_path, env=env)
        assert first.status == 3, first.stderr
        told = "check there, then run flowlang ledger two.flow --forget 5 --to 'api.post /sink' to send it again"
        assert told in first.stderr, first.stderr
        assert "(or, if it arrived, flowlang ledger two.flow --sent 5 --to 'api.post /sink')" in first.stderr
        listed = cli("ledger", "two.flow", "--key", "5", "--to", "db.insert", "--json", cwd=tmp_path)
        assert [json.loads(line)["status"] for line in listed.stdout.splitlines()] == ["sent"]
        # it did not arrive: as the message says (its command, pasted)
        command = first.stderr.split("check there, then run flowlang ", 1)[1].split(" to send it again", 1)[0]
        forgot = cli(*shlex.split(command), cwd=tmp_path)
        assert forgot.status == 0 and "forgot key 5 at api.post /sink (1 entry)" in forgot.stderr, forgot.stderr
        retried = cli("retry", "two.flow", cwd=tmp_path, env=env)
        assert retried.status == 0, retried.stderr
    rows = Counter(r[0] for r in sqlite3.connect(tmp_path / "sink.db").execute("select id from t"))
    assert rows == Counter(range(1, 8))  # before: row 5 twice
    assert arrived == Counter(range(1, 8))


def test_ledger_to_names_a_destination_as_the_listing_does(tmp_path: Path) -> None:
    """--to takes CONNECTION.OPERATION; anything else is refused before the store is opened, and --sent of
    a key with no pending entry at that destination says which."""
    (tmp_path / "f.flow").write_text("for each r in [1]\n  emit r\nend\n")
    bad = cli("ledger", "f.flow", "--forget", "1", "--to", "insert", cwd=tmp_path)
    assert bad.status == 2 and "--to insert: name a destination as flowlang ledger lists it" in bad.stderr
    none = cli("ledger", "f.flow", "--sent", "1", "--to", "db.insert", cwd=tmp_path)
    assert none.status == 2 and "no pending ledger entry for key 1 at db.insert" in none.stderr, none.stderr
    empty = cli("ledger", "f.flow", "--to", "db.insert", cwd=tmp_path)
    assert "the ledger is empty at db.insert" in empty.stdout, empty.stdout


def test_a_to_that_names_no_destination_of_the_ledger_says_which_it_has(tmp_path: Path) -> None:
    """A --to with a typo ('sink.create_item' for 'sink.create_items', the operator's pasting) said only 'no
    ledger entry for key 1 at sink.create_item', exit 0, so the key meant stayed pending and the retry failed
    again on it (found by an operator's trial of --forget/--sent --to after a batch cut off by a timeout). It
    says that the ledger has no such destination, with a did-you-mean and the ones it has."""
    (tmp_path / "f.flow").write_text('flow "f"\nuse out = file(path: "out.jsonl")\nfor each r in [1, 2]\n'
                                     '  send {n: r} to out key r once\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    said = "the ledger has no destination out.writ (did you mean 'out.write'?): its destinations are out.write"
    for command in (("--forget", "1"), ("--all",), ("--sent", "1"), ()):
        proc = cli("ledger", "f.flow", *command, "--to", "out.writ", cwd=tmp_path)
        assert said in proc.stderr + proc.stdout, (command, proc.stderr, proc.stdout)
    right = cli("ledger", "f.flow", "--forget", "3", "--to", "out.write", cwd=tmp_path)
    assert right.stderr.strip() == "f: no ledger entry for key 3 at out.write"  # a destination it has: as before
    assert len(cli("ledger", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()) == 2  # nothing forgotten


NUMBER_KEYS = """use src = file(path: "in.jsonl")
use out = file(path: "out.jsonl", mode: "append")
use pairs = file(path: "pairs.jsonl", mode: "append")
use db = sql(url: "sqlite:///b.db")
call db.execute("create table if not exists t (n integer)")
call src.read() as rows
for each r in rows
  send {n: r.n} to out key r.id once
  send {n: r.n} to pairs key [r.id, {b: r.id, a: "x"}] once
  send {n: r.n} to db.insert(table: "t") key r.id once batch 10
end
"""


def written_ns(tmp_path: Path) -> tuple[list[int], list[int], list[int]]:
    """What reached the two files and the SQLite table (no primary key: a row written twice shows)."""
    def of(name: str) -> list[int]:
        path = tmp_path / name
        return [json.loads(x)["n"] for x in path.read_text().splitlines()] if path.exists() else []
    con = sqlite3.connect(tmp_path / "b.db")
    try:
        table = [row[0] for row in con.execute("select n from t order by rowid")]
    finally:
        con.close()
    return of("out.jsonl"), of("pairs.jsonl"), table


def night(tmp_path: Path, rows: str) -> flowlang.Result:
    (tmp_path / "in.jsonl").write_text(rows)
    return flowlang.load(tmp_path / "f.flow").run(state_dir=tmp_path / "state")


def test_a_number_key_is_one_key_however_its_decimals_are_written(tmp_path: Path) -> None:
    """`send ... key r.id once` with the ids 1 and 1.0 sent both: flowlang finds them equal, the ledger
    kept "1" and "1.0" as two keys; an id that came as 1 one night and 1.00 (a NUMERIC column) the next
    was sent again. A key's numbers are written canonically (runtime/keys.py: 1.0 as 1, 2.50 as 2.5),
    inside a list or an object key too (whose fields' order does not count), in a batched send too.
    Counted at the receiving side: two files and a SQLite table."""
    (tmp_path / "f.flow").write_text(NUMBER_KEYS)
    first = night(tmp_path, '{"id": 1, "n": 1}\n{"id": 1.0, "n": 2}\n{"id": 2.50, "n": 3}\n{"id": 2.5, "n": 4}\n')
    assert first.ok, first.errors
    assert written_ns(tmp_path) == ([1, 3], [1, 3], [1, 3])
    second = night(tmp_path, '{"id": 1.00, "n": 5}\n{"id": 2.500, "n": 6}\n{"id": 3, "n": 7}\n')
    assert second.ok, second.errors
    assert written_ns(tmp_path) == ([1, 3, 7], [1, 3, 7], [1, 3, 7])
    shown = cli("ledger", "f.flow", "--state-dir", "state", "--json", cwd=tmp_path).stdout
    keys = {json.loads(line)["key"] for line in shown.splitlines()}
    assert keys == {"1", "2.5", "3", '[1,{"a":"x","b":1}]', '[2.5,{"a":"x","b":2.5}]', '[3,{"a":"x","b":3}]'}


def test_a_ledger_an_earlier_version_wrote_under_1_0_is_honoured(tmp_path: Path) -> None:
    """Entries an earlier version kept under a key's old text ("1.0", "[2.50]") are found when there is none
    under its canonical text ("1"), so the upgrade sends nothing twice; one it left pending is refused, and
    the command the message gives (--forget 2.50, the text it is kept under) lets it be sent again."""
    (tmp_path / "f.flow").write_text(NUMBER_KEYS)
    rows = '{"id": 1.0, "n": 1}\n{"id": 2.50, "n": 2}\n'
    assert night(tmp_path, rows).ok
    assert written_ns(tmp_path) == ([1, 2], [1, 2], [1, 2])
    store = flowlang.load(tmp_path / "f.flow").store(tmp_path / "state")
    try:  # the rows as the version before wrote them: numbers as they came, fields in their order
        with store.db:
            for new, old in [("1", "1.0"), ("2.5", "2.50"), ('[1,{"a":"x","b":1}]', '[1.0,{"b":1.0,"a":"x"}]'),
                             ('[2.5,{"a":"x","b":2.5}]', '[2.50,{"b":2.50,"a":"x"}]')]:
                changed = store.db.execute("update ledger set key = ? where key = ?", (old, new)).rowcount
                assert changed == (1 if new.startswith("[") else 2)  # the file's and the table's; the pairs'
            store.db.execute("update ledger set status = 'pending' where key = '2.50'")
    finally:
        store.close()
    again = night(tmp_path, rows)
    assert written_ns(tmp_path) == ([1, 2], [1, 2], [1, 2])  # nothing sent twice
    assert again.status == "partial"
    [message] = {e.message for e in again.errors}
    assert "the send of key 2.50 to out.write" in message and "--forget 2.50 " in message, message
    assert cli("ledger", "f.flow", "--state-dir", "state", "--forget", "2.50", cwd=tmp_path).returncode == 0
    retried = flowlang.load(tmp_path / "f.flow").retry(state_dir=tmp_path / "state")
    assert retried.ok, retried.errors
    out, _, table = written_ns(tmp_path)
    assert out == [1, 2, 2] and table == [1, 2, 2]  # forgotten, so sent again: once


REKEYED = """flow "orders rekeyed"
use sink = http(base_url: env.API)
use shop = shop(base_url: env.API)
param orders = [{id: 1, number: "SO-1"}, {id: 2, number: "SO-2"}, {id: 3, number: "SO-3"}]
for each o in orders
  send {number: o.number} to {to} once{batch}
end
"""
SHOP = """name = "shop"
base_url = "http://127.0.0.1:9"
[operations.create_orders]
method = "POST"
path = "/orders/batch"
batch = { max = 100, body = "items", results = "results", ok = "ok", error = "error" }
"""


@pytest.mark.parametrize(("to", "batch", "shown"), [('sink.post("/orders")', "", "sink.post /orders"),
                                                    ("shop.create_orders", " batch 2", "shop.create_orders")])
def test_a_loop_key_changed_under_a_ledger_send_sends_nothing_twice(tmp_path: Path, to: str, batch: str,
                                                                   shown: str) -> None:
    """The ledger keys a `once` send by the loop's trace key when the send has no key of its own: adding
    `key o.number` to the loop (as the warning of two records with one key advises) made every key new,
    and the next run sent the 3 orders again (6 at the sink). The ledger keeps what made each entry's key:
    a send whose key is made by another expression than its destination's entries fails its record and
    ends the run before anything is sent, saying what to do; a renamed loop variable, or `key o.id` for
    the record's id, is the same key; forgetting the entries sends them again, as asked."""
    flow = tmp_path / "f.flow"
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(SHOP)
    text = REKEYED.replace("{to}", to).replace("{batch}", batch)
    flow.write_text(text)
    with FakeApi() as api:
        env = {"API": api.url}

        def at_sink() -> list[str]:
            return [r["number"] for r in api.state.collections.get("orders", [])]

        assert cli("run", "f.flow", cwd=tmp_path, env=env).status == 0
        assert at_sink() == ["SO-1", "SO-2", "SO-3"]
        flow.write_text(text.replace("in orders\n", "in orders key o.number\n"))
        done = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env=env)
        assert done.status == 1, done.stderr
        assert at_sink() == ["SO-1", "SO-2", "SO-3"]  # nothing sent again
        assert (f"send ... once to {shown}: its key is the loop's key o.number now, and the ledger's "
                f"entries for {shown} were keyed by the record's id (o.id), so none of them would "
                "match") in done.stderr, done.stderr
        assert ("would be sent again; this send sent nothing. Give the send the key they were keyed by "
                "(send ... key o.id once") in done.stderr
        assert f"flowlang ledger f.flow --all --to {shlex.quote(shown)}" in done.stderr
        # the same key written another way: a renamed variable, the record's id written out
        four = '"SO-3"}, {id: 4, number: "SO-4"}]'
        flow.write_text(text.replace("o.", "order.").replace("each o ", "each order ")
                        .replace(" once", " key order.id once").replace('"SO-3"}]', four))
        done = cli("run", "f.flow", cwd=tmp_path, env=env)
        assert done.status == 0, done.stderr
        assert at_sink() == ["SO-1", "SO-2", "SO-3", "SO-4"]
        # asked for: forget, then the new key sends each once more
        flow.write_text(text.replace("in orders\n", "in orders key o.number\n"))
        assert cli("ledger", "f.flow", "--all", "--to", shown, cwd=tmp_path).status == 0
        assert cli("run", "f.flow", cwd=tmp_path, env=env).status == 0
        assert len(at_sink()) == 7
        assert cli("run", "f.flow", cwd=tmp_path, env=env).status == 0
        assert len(at_sink()) == 7


def test_a_second_send_with_its_own_key_beside_another_to_one_destination_is_not_a_changed_key(
        tmp_path: Path) -> None:
    """A `send ... key l.sku once` added to a flow whose loop already sent its orders once to the same
    destination was refused as the key changed (the other send's entries were keyed by the record's id),
    and there was nothing to do but forget the first send's entries: a send naming its own key is a new
    send. Each record reaches the sink once, over two runs each."""
    flow = tmp_path / "f.flow"
    first = ('flow "two sends"\nuse sink = http(base_url: env.API)\n'
             'for each o in [{id: 1, lines: [{sku: "A"}]}, {id: 2, lines: [{sku: "B"}]}]\n'
             '  send {order: o.id} to sink.post("/events") once\n{more}end\n')
    flow.write_text(first.replace("{more}", ""))
    with FakeApi() as api:
        env = {"API": api.url}
        assert cli("run", "f.flow", cwd=tmp_path, env=env).status == 0
        flow.write_text(first.replace("{more}", '  for each l in o.lines\n'
                                      '    send {sku: l.sku} to sink.post("/events") key l.sku once\n  end\n'))
        for _ in range(2):
            done = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env=env)
            assert done.status == 0, done.stderr
        events = api.state.collections.get("events", [])
    sent = sorted(json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True) for e in events)
    assert sent == ['{"order": 1}', '{"order": 2}', '{"sku": "A"}', '{"sku": "B"}']  # the API's id left out


def test_a_rerun_says_why_the_ledger_skipped_its_sends(tmp_path: Path) -> None:
    """A rerun whose sends the ledger skipped ended 'sent 0, ..., skipped 6' and said nothing of why (the
    'already sent in job N' TESTING.md gives was a debug line; found by a new-user trial of the ledger).
    It ends with a line per operation and job: 'api.post: 3 sends skipped, already sent in job 1 (send ...
    once)', and 'unchanged since job 1 (send ... if changed)'."""
    flow = tmp_path / "orders.flow"
    flow.write_text('flow "Orders"\nuse api = http(base_url: env.API)\n'
                    "for each o in [{n: 1}, {n: 2}, {n: 3}] key o.n\n"
                    '  send o to api.post("/invoices") once\n'
                    '  send o to api.put("/products/{o.n}") if changed\nend\n')
    with FakeApi({"invoices": []}) as api:
        api.route("PUT", r"^/products/\d+$", lambda req: (200, {}, {"ok": True}))
        args = ("run", str(flow), "--state-dir", str(tmp_path / "state"), "--log-format", "text")
        first = cli(*args, env={"API": api.url})
        assert first.returncode == 0 and "skipped, " not in first.stderr, first.stderr
        again = cli(*args, env={"API": api.url})
    assert again.returncode == 0, again.stderr
    assert "api.post: 3 sends skipped, already sent in job 1 (send ... once)" in again.stderr, again.stderr
    assert "api.put: 3 sends skipped, unchanged since job 1 (send ... if changed)" in again.stderr
    assert "sent 0, failed 0, skipped 6" in again.stderr


def test_forgetting_every_key_of_an_empty_ledger_says_so(tmp_path: Path) -> None:
    """`flowlang ledger f.flow --all` with nothing in the ledger said 'f: no ledger entry for every key'."""
    (tmp_path / "f.flow").write_text('for each r in [{id: 1}]\n  emit r\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 0
    done = cli("ledger", "f.flow", "--all", "--log-format", "text", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "f: the ledger holds no entry: nothing to forget\n", done.stderr
    at = cli("ledger", "f.flow", "--all", "--to", "api.post /x", "--log-format", "text", cwd=tmp_path)
    assert at.stderr == "f: the ledger holds no entry at api.post /x: nothing to forget\n", at.stderr


def test_what_made_a_destinations_keys_is_found_without_reading_an_upgraded_stores_old_entries() -> None:
    """key_bys runs once a run per destination, so once per record for `api.put("/orders/{o.id}")`; in a
    store upgraded with 20,000 entries under the bare `put` (key_by null) each look-up read through all of
    them (3.4 ms each: 68 s for 20,000 records). The look-up is an index's, which leaves those out."""
    from flowlang.runtime.ledger import Ledger

    db = sqlite3.connect(":memory:")
    Ledger(db)
    plan = " ".join(str(row) for row in db.execute(
        "explain query plan select distinct key_by from ledger where flow = 'f' and connection = 'api' and "
        "operation in ('put /orders/5', 'put') and key_by is not null"))
    assert "ledger_key_by" in plan, plan


def test_a_key_sent_by_another_record_of_a_parallel_loop_waits_for_its_answer_and_is_skipped(
        tmp_path: Path) -> None:
    """Two records of one key in a `parallel 2` loop, each `send ... key r.k once` to a sink that takes
    a second to answer: the second found the key pending while the first was in flight and failed, saying
    `the send of key 5 ... in job 1 got no answer that says whether it arrived (the job stopped while it
    was in flight ...)` of its own running job, and advising `--forget 5`, whose retry would have sent the
    key twice. It now waits for the first send's answer and is skipped as sent (`as NAME` its answer)."""
    from fakeapi import slow

    flow = tmp_path / "pk.flow"
    flow.write_text('use api = http(base_url: env.API, timeout: 30)\n'
                    'for each r in [{id: 1, k: 5}, {id: 2, k: 5}, {id: 3, k: 6}] parallel 3\n'
                    '  send r to api.post("/orders") key r.k once as made\n'
                    '  emit {id: r.id, made: made.n}\n'
                    'end\n')
    with FakeApi() as api:
        api.route("POST", r"^/orders$", slow(1.0, lambda req: (201, {}, {"n": req.body["id"]})))
        done = cli("run", str(flow), "--state-dir", str(tmp_path / "state"), env={"API": api.url})
        posted = sorted(r.body["id"] for r in api.requests if r.method == "POST")
    assert done.returncode == 0, done.stdout + done.stderr
    assert posted == [1, 3]
    assert sorted(json.loads(line)["id"] for line in done.stdout.splitlines()) == [1, 2, 3]
    assert {"id": 2, "made": 1} in [json.loads(line) for line in done.stdout.splitlines()]
    assert "got no answer" not in done.stderr
    assert "1 send skipped, already sent in job 1 (send ... once)" in done.stderr
