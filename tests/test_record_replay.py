"""Record a run against a real server on 127.0.0.1, stop the server, replay it offline
(TESTING.md section 2): a mapping change fails with a field-level diff, --update accepts it, a
request the cassette lacks names the nearest recorded one, and no secret reaches a cassette."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import flowlang
from conftest import ROOT, cli, copy_example
from fakeapi import FakeApi, Request, paged, slow
from flowlang.testing.cassette import Cassette
from flowlang.testing.suite import discover, replay, run_case
from flowlang.testing.suite import record as flowlang_record

CANARY = ('canary-"quoted"-\\back\\slash-ÆØÅ-ñ-日本-' + "x" * 520 + '-end"\\')

FLOW = """flow "Sync orders"
param min_total = 0
use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
use out = file(path: "out/invoices.jsonl")
call api.get("/orders", pages: {style: "cursor", cursor: "next_cursor", records: "results", size: 2}) as orders
for each o in orders
  if o.total < min_total
    skip
  end
  lookup api.get("/customers", query: {email: o.email}) as c
  map o to invoice
    order = o.id
    customer = c.id
    amount = o.total
    stamped = now()
  end
  send invoice to api.post("/invoices") as created
  send {order: o.id, invoice: created.id} to out
  emit {order: o.id, invoice: created.id, token_seen: o.note}
end
"""

ORDERS = [{"id": i, "email": f"c{i % 2}@x.test", "total": i * 10, "note": "none"} for i in range(1, 6)]
CUSTOMERS = [{"id": 70, "email": "c0@x.test"}, {"id": 71, "email": "c1@x.test"}]


def server() -> FakeApi:
    api = FakeApi({"customers": CUSTOMERS, "invoices": []})
    api.route("GET", r"^/orders$", lambda req: paged(ORDERS, req, "cursor", api.url))
    return api


def project(tmp_path: Path, text: str = FLOW) -> Path:
    flow = tmp_path / "sync.flow"
    flow.write_text(text)
    (tmp_path / "secrets.toml").write_text(f"API_TOKEN = {json.dumps(CANARY)}\n")
    return flow


def record(tmp_path: Path, flow: Path, api: FakeApi, *extra: str) -> Any:
    return cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--secrets",
                   str(tmp_path / "secrets.toml"), "--state-dir", str(tmp_path / "state"), *extra,
                   env={"API": api.url})


def test_record_then_replay_offline_passes(tmp_path: Path) -> None:
    flow = project(tmp_path)
    with server() as api:
        done = record(tmp_path, flow, api)
        assert done.returncode == 0, done.stderr
        sent = [r.body for r in api.requests if r.method == "POST"]
    assert len(sent) == 5
    lines = (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds[0] == "run" and kinds[-1] == "result"
    assert kinds.count("write") == 10 and kinds.count("output") == 5
    # the server is gone: the replay talks to no one, and no file is written
    (tmp_path / "out" / "invoices.jsonl").unlink()
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), env={"API": "http://127.0.0.1:9"})
    assert test.returncode == 0, test.stdout + test.stderr
    assert "PASS" in test.stdout
    assert not (tmp_path / "out" / "invoices.jsonl").exists()


def test_mapping_change_fails_with_a_field_diff_and_update_accepts_it(tmp_path: Path) -> None:
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    flow.write_text(FLOW.replace("amount = o.total", "amount = o.total * 2"))
    cassette = str(tmp_path / "cassette")
    failed = cli("test", str(flow), "--cassette", cassette)
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout
    assert "write to api.post /invoices: record 1 differs" in failed.stdout
    assert "amount: 10 -> 20" in failed.stdout
    assert "amount: 50 -> 100" in failed.stdout
    updated = cli("test", str(flow), "--cassette", cassette, "--update")
    assert updated.returncode == 0, updated.stderr
    assert "UPDATED" in updated.stdout
    again = cli("test", str(flow), "--cassette", cassette)
    assert again.returncode == 0, again.stderr
    # and the old mapping now fails against the accepted cassette
    flow.write_text(FLOW)
    assert cli("test", str(flow), "--cassette", cassette).returncode == 1


def test_a_change_to_every_record_shows_the_first_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    """A mapping change over 500 records printed 1,000 lines of diff (one block a record); the report
    now shows the first 20 of each destination and says how many more differ."""
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "v": i}) + "\n" for i in range(500)))
    flow = tmp_path / "big.flow"
    text = ('use src = file(path: "in.jsonl")\nuse out = file(path: "out.jsonl")\ncall src.read() as rows\n'
            "for each r in rows\n  send {id: r.id, w: r.v} to out\nend\n")
    flow.write_text(text)
    done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir", str(tmp_path / "state"))
    assert done.returncode == 0, done.stderr
    flow.write_text(text.replace("w: r.v}", "w: r.v + 1}"))
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 1
    assert "write to out.write: record 20 differs:\n      w: 19 -> 20" in test.stdout
    assert "record 21 differs" not in test.stdout
    assert "... and 480 more records of write to out.write differ (500 in all; --update accepts them" in test.stdout
    assert len(test.stdout.splitlines()) < 50


def test_update_rewrites_only_the_writes_that_changed(tmp_path: Path) -> None:
    """--update is reviewed as a diff: it rewrote every write line of the cassette (their "connector"
    field dropped), so a change to one field of one destination showed as every write changed."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    before = (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()
    flow.write_text(FLOW.replace("amount = o.total", "amount = o.total * 2"))
    updated = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), "--update")
    assert updated.returncode == 0 and "UPDATED" in updated.stdout, updated.stdout + updated.stderr
    after = (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()
    assert len(after) == len(before)
    changed = [(json.loads(old), json.loads(new)) for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == 5, changed  # the five invoices posted, nothing else
    for old, new in changed:
        assert (old["connection"], old["op"], new["connector"]) == ("api", "post", "http")
        assert new["record"]["amount"] == old["record"]["amount"] * 2
        assert {**new, "record": old["record"]} == old
    assert cli("test", str(flow), "--cassette", str(tmp_path / "cassette")).returncode == 0


def test_update_with_a_param_keeps_the_param_in_the_cassette(tmp_path: Path) -> None:
    """`flowlang test --param min_total=30 --update` rewrote the expectations for min_total 30 but kept
    the recorded params ({}) in the cassette's run line, so the next plain `flowlang test` replayed with
    min_total 0 against the new expectations and failed. The run line now holds the params the
    accepted replay ran with."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    cassette = str(tmp_path / "cassette")
    updated = cli("test", str(flow), "--cassette", cassette, "--param", "min_total=30", "--update")
    assert updated.returncode == 0 and "UPDATED" in updated.stdout, updated.stdout + updated.stderr
    lines = [json.loads(line) for line in (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()]
    assert lines[0]["params"] == {"min_total": 30}
    assert sum(1 for e in lines if e["type"] == "output") == 3  # orders 3, 4, 5
    again = cli("test", str(flow), "--cassette", cassette)
    assert again.returncode == 0 and "PASS" in again.stdout, again.stdout + again.stderr


def test_a_rerun_whose_sends_the_ledger_skipped_replays_as_it_ran(tmp_path: Path) -> None:
    """`send ... once`: a recording of a rerun (every key already sent, so nothing was sent and `as
    created` was the ledger's answer) held no write, and its replay, which has no ledger, sent every
    record and gave created null: the unchanged flow failed ("new, not in the cassette", "invoice:
    1001 -> null"). What the ledger said is now kept in the cassette (a `value` line of kind `ledger`)
    and said again in the replay."""
    once = FLOW.replace('send invoice to api.post("/invoices") as created',
                        'send invoice to api.post("/invoices") key o.id once as created')
    flow = project(tmp_path, once)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
        forgot = cli("ledger", str(flow), "--forget", "4", "--state-dir", str(tmp_path / "state"))
        assert forgot.returncode == 0, forgot.stderr
        again = cli("run", str(flow), "--record", str(tmp_path / "rerun"), "--secrets",
                        str(tmp_path / "secrets.toml"), "--state-dir", str(tmp_path / "state"), env={"API": api.url})
        assert again.returncode == 0, again.stderr
        assert api.count("POST", "/invoices") == 6  # 5, then key 4 again
    outputs = [json.loads(line) for line in again.stdout.splitlines()]
    assert [o["invoice"] for o in outputs] == [1001, 1002, 1003, 1006, 1005]
    test = cli("test", str(flow), "--cassette", str(tmp_path / "rerun"), env={"API": "http://127.0.0.1:9"})
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr
    # a mapping change shows the one record the rerun sent, not the four the ledger skipped
    flow.write_text(once.replace("amount = o.total", "amount = o.total + 1"))
    changed = cli("test", str(flow), "--cassette", str(tmp_path / "rerun"))
    assert changed.returncode == 1
    assert "write to api.post /invoices: record 1 differs" in changed.stdout and "amount: 40 -> 41" in changed.stdout
    assert "record 2" not in changed.stdout, changed.stdout
    # what the ledger held is matched on the key, not on the order: with orders 1 and 2 left out, the
    # sends of 3, 5 still are the ledger's (skipped), not new ones
    flow.write_text(once)
    fewer = cli("test", str(flow), "--cassette", str(tmp_path / "rerun"), "--param", "min_total=30")
    assert fewer.returncode == 1
    assert "new, not in the cassette" not in fewer.stdout, fewer.stdout
    # orders 3 and 5 wrote and emitted what they recorded: the ledger's answers for their keys (1003 and
    # 1005); what differs is orders 1 and 2, left out (compared by place, order 3's write showed as
    # order 1's changed: 'order: 1 -> 3, invoice: 1001 -> 1003')
    missing = [line.strip() for line in fewer.stdout.splitlines() if "not made by this run" in line]
    gone = ["write to out.write: record 1: in the cassette, not made by this run: {\"order\":1,\"invoice\":1001}",
            "write to out.write: record 2: in the cassette, not made by this run: {\"order\":2,\"invoice\":1002}",
            "output 1: in the cassette, not made by this run: {\"order\":1,\"invoice\":1001,\"token_seen\":\"none\"}",
            "output 2: in the cassette, not made by this run: {\"order\":2,\"invoice\":1002,\"token_seen\":\"none\"}"]
    assert missing == gone, fewer.stdout
    assert "write to out.write: record 1 differs" not in fewer.stdout and "invoice:" not in fewer.stdout


def test_a_parallel_loop_that_sent_in_another_order_gets_each_records_answer(tmp_path: Path) -> None:
    """The writes of a parallel loop may come in another order than recorded (docs/testing.md), but
    each got the recorded answer at its place: record 1's lookup was slow, so the recording sent 2, 3,
    4, then 1, the instant replay sent 1 first and got record 2's answer ('id: 5001 -> 5002'), and the
    unchanged flow failed. A write now gets the answer recorded for the same payload."""
    flow = tmp_path / "par.flow"
    flow.write_text("use api = http(base_url: env.API)\nfor each i in range(1, 5) parallel 4\n"
                    "  lookup api.get('/look/{i}', i: i) as seen\n"
                    '  send {n: i} to api.post("/made") as made\n  emit {n: i, id: made.id}\nend\n')

    def look(req: Request) -> tuple[int, dict[str, str], Any]:
        if req.path == "/look/1":
            time.sleep(0.4)
        return 200, {}, {"ok": True}
    with FakeApi() as api:
        api.route("GET", r"/look/\d+", look)
        api.route("POST", "/made", lambda req: (201, {}, {"id": 5000 + req.body["n"]}))
        done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir",
                       str(tmp_path / "state"), env={"API": api.url})
        assert done.returncode == 0, done.stderr
        assert [r.body["n"] for r in api.requests if r.method == "POST"][-1] == 1  # sent last
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr
    # a mapping change: each write shows its own change and gets its own old answer, not its recorded
    # neighbour's ('record.n: 2 -> 1' and 'output 1 differs: id: 5001 -> 5002' before); so too from a
    # cassette whose writes do not say which record each was for (recorded before they did: by the fields)
    flow.write_text(flow.read_text().replace("{n: i}", "{n: i, v: 2}"))
    cassette = tmp_path / "cassette" / "cassette.jsonl"
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert sorted(e["at"] for e in lines if e["type"] == "write") == ["0", "1", "2", "3"]
    for keep in (True, False):
        if not keep:
            cassette.write_text("".join(json.dumps({k: v for k, v in e.items() if k != "at" or e["type"] != "write"})
                                        + "\n" for e in lines))
        changed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
        assert changed.returncode == 1, changed.stdout + changed.stderr
        diffs = [line.strip() for line in changed.stdout.splitlines() if line.startswith("      ")]
        assert diffs == ["record.v: (missing) -> 2"] * 4, changed.stdout  # and each output its own answer
        assert all(f"write to api.post /made: record {n} differs" in changed.stdout for n in range(1, 5))



BATCH_CONNECTOR = """name = "shop"
base_url = "{url}"

[operations.create_items]
method = "POST"
path   = "/items/batch"
batch  = {{ max = 100, body = "items", results = "results", ok = "ok" }}
"""


def test_a_batched_loop_whose_records_joined_in_another_order_shows_each_records_change(tmp_path: Path) -> None:
    """A parallel loop filling batches: records join a batch as their lookups come back (6, 5, 4, then 3, 2,
    1 at the API), the replay makes them 1 to 6. A mapping change was paired by place: 'sku: "S6"
    -> "S1"', six records whose every field differed, and each record got its neighbour's answer (output
    'id: 901 -> 906'). Each write now shows its own change and gets its own recorded answer."""
    flow = tmp_path / "batched.flow"
    flow.write_text('use api = http(base_url: env.API)\nuse shop = shop()\nfor each i in range(1, 7) parallel 6\n'
                    '  lookup api.get("/look/{i}") as seen\n'
                    '  send {sku: "S{i}", qty: i} to shop.create_items batch 3 as made\n'
                    '  emit {sku: "S{i}", id: made.id}\nend\n')
    batches: list[list[str]] = []

    def look(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(0.15 * (7 - int(req.path.rsplit("/", 1)[1])))  # 6 first, 1 last
        return 200, {}, {"ok": True}

    def batch(req: Request) -> tuple[int, dict[str, str], Any]:
        batches.append([item["sku"] for item in req.body["items"]])
        return 200, {}, {"results": [{"ok": True, "id": 900 + item["qty"]} for item in req.body["items"]]}
    with FakeApi() as api:
        api.route("GET", r"/look/\d+", look)
        api.route("POST", "/items/batch", batch)
        (tmp_path / "connectors").mkdir()
        (tmp_path / "connectors" / "shop.toml").write_text(BATCH_CONNECTOR.format(url=api.url))
        done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir",
                       str(tmp_path / "state"), env={"API": api.url})
        assert done.returncode == 0, done.stderr
    assert batches == [["S6", "S5", "S4"], ["S3", "S2", "S1"]]
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr
    flow.write_text(flow.read_text().replace("qty: i}", "qty: i * 2}"))
    changed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    diffs = [line.strip() for line in changed.stdout.splitlines() if line.startswith("      ")]
    assert diffs == [f"qty: {i} -> {i * 2}" for i in range(1, 7)], changed.stdout
    assert "output" not in changed.stdout, changed.stdout  # each record's id its own: 901 for S1, ...
    # (qty 2 is S1's now and was S2's: the record each write was for is in the cassette, "at")
    lines = [json.loads(line) for line in (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()]
    assert [(e["record"]["sku"], e["at"]) for e in lines if e["type"] == "write"][:2] == [("S6", "5"), ("S5", "4")]

def test_a_recorded_error_keeps_its_body_for_on_error(tmp_path: Path) -> None:
    """A refused send was recorded with its message and status but not the answer's body, so a flow
    that handles it (`on error as e` ... `e.body`) got null in the replay and its unchanged replay
    failed ('body: {"error":"sku taken"} -> null')."""
    flow = tmp_path / "refused.flow"
    flow.write_text('use api = http(base_url: env.API)\nfor each i in [1, 2]\n  try\n'
                    '    send {i: i} to api.post("/items")\n  on error as e\n'
                    "    emit {i: i, status: e.status, why: e.body.error}\n  end\nend\n")
    with FakeApi() as api:
        api.route("POST", "/items", lambda req: (422, {}, {"error": "sku taken"}))
        done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir",
                       str(tmp_path / "state"), env={"API": api.url})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0]) == {"i": 1, "status": 422, "why": "sku taken"}
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr


def test_a_run_recorded_with_limit_replays_the_same_records(tmp_path: Path) -> None:
    """`flowlang run --limit 3 --record DIR` (a small cassette of a big flow): the replay did not know
    the limit, read on past the pages the cassette holds and failed ("needs more than the 2 pages the
    cassette holds"). The run line keeps the limit, and the replay takes as many records."""
    flow = project(tmp_path)
    with server() as api:
        done = record(tmp_path, flow, api, "--limit", "3")
        assert done.returncode == 0, done.stderr
        assert api.count("POST", "/invoices") == 3
    assert "replay with: flowlang test" in done.stderr
    first = json.loads((tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()[0])
    assert first["limit"] == 3
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), env={"API": "http://127.0.0.1:9"})
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr


def test_a_recording_stopped_before_its_end_says_it_cannot_replay(tmp_path: Path) -> None:
    """A recorded run stopped mid-read (--max-seconds, SIGTERM) told the user to replay it, and the
    replay could only fail (it reads on past what the cassette holds); the recorder now says so."""
    flow = project(tmp_path)
    with server() as api:
        api.route("POST", "/invoices", slow(0.4, lambda req: (201, {}, {"id": 1})))
        done = record(tmp_path, flow, api, "--max-seconds", "1")
    assert done.returncode != 0
    assert "but the run was stopped before its end, so a replay of it cannot pass: record a whole run" in done.stderr
    assert "replay with:" not in done.stderr


def test_a_finished_run_whose_lookups_and_stop_left_reads_unfinished_is_replayable(tmp_path: Path) -> None:
    """A lookup of a paginated read takes its first record, and a loop left by `stop` its first pages: a run
    that finished so was told 'recorded ..., but the run was stopped before its end, so a replay of it cannot
    pass' (a newcomer's CSV-to-REST import with a paged customer lookup), and the replay passed."""
    flow = project(tmp_path, """use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
call api.get("/orders", pages: {style: "cursor", cursor: "next_cursor", records: "results", size: 2}) as orders
for each o in orders
  if o.id > 3
    stop
  end
  lookup api.get("/orders", pages: {style: "cursor", cursor: "next_cursor", records: "results", size: 2}) as first
  send {order: o.id, first: first.id} to api.post("/invoices")
end
""")
    with server() as api:
        done = record(tmp_path, flow, api)
        assert done.returncode == 0, done.stderr
        assert api.count("POST", "/invoices") == 3
    assert "stopped before its end" not in done.stderr
    assert "replay with: flowlang test" in done.stderr
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), env={"API": "http://127.0.0.1:9"})
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr


def test_a_cassette_folder_that_cannot_be_written_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    """`--record DIR` where DIR is a file or cannot be made ran the flow for real (its writes sent, the
    job recorded) and then ended in 'internal error: FileExistsError ... a bug in flowlang' (exit 1),
    the cassette lost. The folder is made and checked first now: exit 2, nothing run, nothing sent."""
    flow = project(tmp_path)
    (tmp_path / "a_file").write_text("")
    for where in (tmp_path / "a_file", tmp_path / "a_file" / "below", Path("/proc/no/such/folder")):
        with server() as api:
            done = record_into(tmp_path, flow, api, where)
            posted = [r for r in api.requests if r.method == "POST"]
        assert done.returncode == 2, done.stderr
        assert f"cannot record into {where}: " in done.stderr and "internal error" not in done.stderr, done.stderr
        assert posted == [] and done.stdout == ""
    assert "no jobs yet" in cli("jobs", str(flow), "--state-dir", str(tmp_path / "state")).stdout


def test_a_dry_run_is_not_recorded_over_a_real_cassette(tmp_path: Path) -> None:
    """`run --dry-run --record DIR` wrote a cassette of writes never sent (answers null) over the real one,
    and its replay passed. A recording runs for real (TESTING.md 2): the two are refused together, in the
    CLI and in record(), before anything runs; the cassette recorded before is left byte for byte."""
    flow = project(tmp_path)
    with server() as api:
        assert record_into(tmp_path, flow, api, tmp_path / "cas").returncode == 0
    before = (tmp_path / "cas" / "cassette.jsonl").read_bytes()
    with server() as api:
        done = cli("run", str(flow), "--dry-run", "--record", str(tmp_path / "cas"), "--secrets",
                   str(tmp_path / "secrets.toml"), "--state-dir", str(tmp_path / "state"), "--log-format", "text",
                   env={"API": api.url})
        asked = list(api.requests)
    assert done.returncode == 2 and "a dry run sends no write" in done.stderr and "leave out --dry-run" in done.stderr
    assert asked == [] and (tmp_path / "cas" / "cassette.jsonl").read_bytes() == before
    with pytest.raises(flowlang.UsageError, match=r"record\(\) runs for real .* leave out dry_run=True"):
        flowlang_record(flowlang.compile("emit 1\n"), tmp_path / "cas", dry_run=True)
    assert (tmp_path / "cas" / "cassette.jsonl").read_bytes() == before


def record_into(tmp_path: Path, flow: Path, api: FakeApi, folder: Path) -> Any:
    return cli("run", str(flow), "--record", str(folder), "--secrets", str(tmp_path / "secrets.toml"),
                   "--state-dir", str(tmp_path / "state"), "--log-format", "text", env={"API": api.url})


def test_a_request_the_cassette_lacks_names_the_nearest(tmp_path: Path) -> None:
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    flow.write_text(FLOW.replace("query: {email: o.email}", "query: {email: upper(o.email)}"))
    failed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert failed.returncode == 1
    assert "request not in the cassette" in failed.stdout
    assert "nearest recorded one differs in" in failed.stdout
    assert 'kwargs.query.email: "c1@x.test" -> "C1@X.TEST"' in failed.stdout
    # the lookup's place in the flow, once per miss (before: no place at all)
    assert f"request not in the cassette at {flow}:10:10: the cassette has no recorded request" in failed.stdout


def test_update_says_why_it_cannot_accept_a_replay_that_made_a_new_request(tmp_path: Path) -> None:
    """--update of a replay that asked for a request the cassette lacks printed FAIL and the miss, and
    left the cassette as it was without saying that it did not update it, or why."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    before = (tmp_path / "cassette" / "cassette.jsonl").read_text()
    flow.write_text(FLOW.replace("size: 2", "size: 3"))
    updated = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), "--update")
    assert updated.returncode == 1
    assert "FAIL" in updated.stdout and "request not in the cassette" in updated.stdout
    assert "not updated: the replay made a request the cassette does not hold" in updated.stdout
    assert (tmp_path / "cassette" / "cassette.jsonl").read_text() == before


def test_the_cassette_of_another_flow_is_named_as_such(tmp_path: Path) -> None:
    """`flowlang test other.flow --cassette DIR` of another flow's cassette listed only misses and
    writes; it now says first whose cassette it is (a flow renamed alone still passes)."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    other = tmp_path / "other.flow"
    other.write_text('flow "Other"\nuse out = file(path: "o.jsonl")\nsend {a: 1} to out\n')
    test = cli("test", str(other), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 1
    first = test.stdout.splitlines()[1]
    assert first == ("  the cassette was recorded from the flow 'Sync orders', and this flow is 'Other': is it "
                     "this flow's cassette?"), test.stdout
    flow.write_text(FLOW.replace('flow "Sync orders"', 'flow "Orders to invoices"'))
    renamed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert renamed.returncode == 0 and "PASS" in renamed.stdout, renamed.stdout


def test_a_new_call_outside_a_loop_names_its_line_once(tmp_path: Path) -> None:
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    flow.write_text(FLOW.replace("for each o in orders", 'call api.get("/settings") as settings\nfor each o in orders'))
    failed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert failed.returncode == 1, failed.stderr
    said = failed.stdout.splitlines()
    misses = [line for line in said if "no recorded request for api.get(\"/settings\")" in line]
    # one line, at the call (before: twice, as 'the run failed: ...' and as the miss, neither located)
    assert misses == [f"  request not in the cassette at {flow}:6:6: the cassette has no recorded request for "
                      'api.get("/settings"); the nearest recorded one differs in:'], failed.stdout
    assert "Traceback" not in failed.stdout + failed.stderr


def test_no_secret_in_a_cassette(tmp_path: Path) -> None:
    flow = project(tmp_path)

    def echo_token(req: Request) -> tuple[int, dict[str, str], Any]:
        status, headers, body = paged(ORDERS, req, "cursor", "")
        token = req.headers.get("authorization", "")  # echoed back in a field, as some APIs do
        body["results"] = [{**o, "note": token} for o in body["results"]]
        return status, headers, body

    api = FakeApi({"customers": CUSTOMERS, "invoices": []})
    api.route("GET", r"^/orders$", echo_token)
    with api:
        done = record(tmp_path, flow, api)
        assert done.returncode == 0, done.stderr
        assert any("x" * 500 in r.headers.get("authorization", "") for r in api.requests)
    raw = (tmp_path / "cassette" / "cassette.jsonl").read_bytes()
    text = raw.decode()
    for form in (CANARY, json.dumps(CANARY)[1:-1], CANARY[:40], CANARY[-40:], "x" * 200):
        assert form not in text
    assert CANARY.encode() not in raw
    assert '"note":"Bearer ***"' in text
    assert cli("test", str(flow), "--cassette", str(tmp_path / "cassette")).returncode == 0


def test_a_secret_split_into_common_words_keeps_the_cassette_whole(tmp_path: Path) -> None:
    """A token split into parts ("prod", "key", "secret", "2024", ...): every part was masked as text
    anywhere, in the cassette's own JSON too, so the recording held {"$***": "TOK"} for a secret's
    reference, "***": "id" for the key: argument, "mon***" and "***board" for data, and
    {"year":***}, which is not JSON: flowlang test refused the cassette, or failed the unchanged flow.
    A part is masked where it stands alone, and the cassette's structure is never masked."""
    token = "prod-key-secret-2024-Zq9xK7pLmW"
    flow = tmp_path / "parts.flow"
    flow.write_text(
        'flow "Parts"\n'
        "use api = http(base_url: env.API)\n"
        'use db = sql(url: "sqlite:///parts.db")\n'
        'let tenant = split(secret.TOK, "-")[0]\n'
        'send {year: 2024, keyboard: "monkey", tenant: tenant, token: secret.TOK} to api.post("/echo") as r\n'
        'send {id: 1, v: "monkey"} to db.upsert(table: "t", key: "id")\n'
        "emit {year: r.year, keyboard: r.keyboard, tenant: r.tenant}\n")
    sqlite3.connect(tmp_path / "parts.db").execute("create table t (id integer primary key, v text)")
    with FakeApi() as api:
        api.route("POST", "/echo", lambda req: (200, {}, req.body))  # echoes the part: masked where it shows
        done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir",
                       str(tmp_path / "state"), env={"API": api.url, "TOK": token})
        assert done.returncode == 0, done.stderr
        assert api.requests[0].body["tenant"] == "prod"  # the API got the real value
    assert json.loads(done.stdout) == {"year": 2024, "keyboard": "monkey", "tenant": "***"}
    text = (tmp_path / "cassette" / "cassette.jsonl").read_text()
    assert "Zq9xK7pLmW" not in text and "prod" not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    sent = [e for e in lines if e["type"] == "write"]
    assert sent[0]["record"] == {"year": 2024, "keyboard": "monkey", "tenant": {"$secret": None},
                                 "token": {"$secret": "TOK"}}
    assert sent[0]["result"]["tenant"] == "***"
    assert sent[1]["kwargs"] == {"table": "t", "key": "id"} and sent[1]["record"] == {"id": 1, "v": "monkey"}
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr


def test_replay_in_python_and_test_folders(tmp_path: Path) -> None:
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    outcome = replay(flowlang.load(flow), tmp_path / "cassette")
    assert outcome.ok, outcome.problems
    assert [w["record"]["amount"] for w in outcome.writes["api.post"]] == [10, 20, 30, 40, 50]
    case = tmp_path / "tests" / "sync_all"
    case.mkdir(parents=True)
    (case / "flow.toml").write_text('flow = "../../sync.flow"\ncassette = "../../cassette"\n')
    found = discover(tmp_path / "tests")
    assert [c.name for c in found] == ["sync_all"]
    assert run_case(found[0]).ok
    # a param that changes what is sent fails the folder's test
    (case / "flow.toml").write_text('flow = "../../sync.flow"\ncassette = "../../cassette"\n'
                                    "[params]\nmin_total = 25\n")
    folder_run = cli("test", str(tmp_path / "tests"))
    assert folder_run.returncode == 1
    assert "FAIL sync_all" in folder_run.stdout
    assert "in the cassette, not made by this run" in folder_run.stdout


def test_bad_test_folders_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "flow.toml").write_text("flow = 3\n")
    bad = cli("test", str(tmp_path))
    assert bad.returncode == 1 and "needs flow =" in bad.stdout and "Traceback" not in bad.stderr
    none = cli("test", str(tmp_path / "missing.flow"))
    assert none.returncode == 2 and "no such flow file" in none.stderr
    flow = project(tmp_path)
    lacking = cli("test", str(flow), "--cassette", str(tmp_path / "nowhere"))
    assert lacking.returncode == 2 and "no cassette in" in lacking.stderr


def test_a_cassette_line_of_an_unknown_type_is_refused_at_its_line(tmp_path: Path) -> None:
    """A hand-edited cassette with a typo in a type ("wrte") was accepted and the line ignored, so the
    replay went on without that exchange; now `flowlang test` names the file and line."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    path = tmp_path / "cassette" / "cassette.jsonl"
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "write")
    lines[at] = lines[at].replace('"type": "write"', '"type": "wrte"').replace('"type":"write"', '"type":"wrte"')
    assert '"wrte"' in lines[at]
    path.write_text("\n".join(lines) + "\n")
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), env={"API": "http://127.0.0.1:9"})
    assert test.returncode == 2, test.stdout + test.stderr
    message = json.loads(test.stderr.splitlines()[-1])["message"]
    assert f"{path}:{at + 1}: a cassette line of an unknown type \"wrte\"" in message
    assert "did you mean 'write'?" in message and "Traceback" not in test.stderr


@pytest.mark.parametrize(("kind", "change", "said"), [
    ("run", {"params": [1, 2]}, '"params" is an object'),
    ("value", {"kind": None}, 'needs "kind" (a text)'),
    ("value", {"value": 5}, 'the value of "job" is an object'),
    ("read", {"pages": 5}, '"pages" is a list of pages, each a list of records'),
    ("read", {"error": "x"}, '"error" is an object with a "message" text'),
    ("write", {"connection": None}, 'needs "connection" (a text)'),
    ("write", {"result": {"$seconds": "NaN"}}, '"$seconds" takes a finite number of seconds'),
])
def test_a_damaged_cassette_line_is_refused_at_its_line(tmp_path: Path, kind: str, change: dict[str, Any],
                                                        said: str) -> None:
    """A line of a known type with a field of the wrong kind ("pages": 5, a write without its
    connection, params as a list, a bad tag) failed the replay with "internal error (TypeError ...); this
    is a bug in flowlang", or stopped `flowlang test` with "internal error: KeyError: 'connection'"; it
    now stops it at the cassette's file and line (exit 2), as a line of an unknown type does."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    path = tmp_path / "cassette" / "cassette.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    at = next(i for i, e in enumerate(lines) if e["type"] == kind and (kind != "read" or "pages" in e))
    for name, value in change.items():
        if value is None:
            del lines[at][name]
        else:
            lines[at][name] = value
    path.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), env={"API": "http://127.0.0.1:9"})
    assert test.returncode == 2, test.stdout + test.stderr
    message = json.loads(test.stderr.splitlines()[-1])["message"]
    assert f"{path}:{at + 1}: a {kind} line that cannot be replayed: " in message and said in message, message
    assert "internal error" not in test.stderr + test.stdout


ONCE = """use api = http(base_url: env.API)
for each o in [{id: 1}, {id: 2}]
  send o to api.post("/orders") key o.id once
end
"""


@pytest.mark.parametrize(("kind", "change", "said"), [
    ("job", {"id": []}, 'the job\'s "id" is a whole number (or null)'),
    ("ledger", {"entry": {}}, 'the ledger entry\'s "status" is "sent" or "pending"'),
    ("ledger", {"entry": 5}, 'the ledger\'s "entry" is an object (or null: the ledger held none)'),
    ("ledger", {"entry": {"status": "sent", "job_id": "1", "hash": "ab"}},
     'the ledger entry\'s "job_id" is a whole number (or null)'),
    ("ledger", {"entry": {"status": "sent", "job_id": 1}}, 'the ledger entry\'s "hash" is a text (or null)'),
    ("ledger", {"key": 1}, 'the ledger\'s "key" is a text'),
])
def test_a_damaged_job_or_ledger_value_is_refused_at_its_line(tmp_path: Path, kind: str, change: dict[str, Any],
                                                             said: str) -> None:
    """A hand-edited `value` line of kind `job` whose id was no number (`"id": []`) failed the replay's
    records with `internal error (ProgrammingError: Error binding parameter 6: type 'list' is not
    supported); this is a bug in flowlang`, and one of kind `ledger` whose entry lacked its status (`"entry":
    {}`) with `internal error (KeyError: 'status')`: `flowlang test` now stops at the cassette's file and
    line (exit 2), as for other damaged lines."""
    flow = tmp_path / "once.flow"
    flow.write_text(ONCE)
    with FakeApi() as api:
        done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir", str(tmp_path / "state"),
                   env={"API": api.url})
        assert done.returncode == 0, done.stderr
    path = tmp_path / "cassette" / "cassette.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert cli("test", str(flow), "--cassette", str(tmp_path / "cassette")).returncode == 0
    at = next(i for i, e in enumerate(lines) if e["type"] == "value" and e["kind"] == kind)
    lines[at]["value"].update(change)
    path.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 2, test.stdout + test.stderr
    message = json.loads(test.stderr.splitlines()[-1])["message"]
    assert f"{path}:{at + 1}: a value line that cannot be replayed: {said}" in message, message
    assert "internal error" not in test.stderr + test.stdout


def test_a_flow_that_is_a_folder_or_not_utf8_is_named_without_errno(tmp_path: Path) -> None:
    """A flow.toml whose flow is a folder said 'cannot read ...: [Errno 21] Is a directory: ...', and a
    flow file that is not UTF-8 Python's codec message; `flowlang run FOLDER` the same."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "flow.toml").write_text('flow = "../sub"\n')
    (tmp_path / "bad.flow").write_bytes(b"flow \"x\"\n\xff\n")
    test = cli("test", str(tmp_path / "case"))
    assert test.returncode == 1
    assert f"{tmp_path / 'sub'} is a folder: give the .flow file in it" in test.stdout
    ran = cli("run", str(tmp_path / "sub"))
    assert ran.returncode == 2 and "is a folder: give the .flow file in it" in ran.stderr
    bad = cli("run", str(tmp_path / "bad.flow"))
    assert bad.returncode == 2 and "it is not UTF-8 text: the byte 0xff at " in bad.stderr
    assert "bad.flow:2:1 (invalid start byte; save the file as UTF-8)" in bad.stderr
    assert "Errno" not in test.stdout + ran.stderr and "codec" not in bad.stderr


def test_env_reads_the_environment_in_a_replay_and_a_test_folder_may_set_it(tmp_path: Path) -> None:
    """A flow reading env.REGION in a mapping got null in every replay, whatever the environment held
    ('record.region: "eu" -> null'): the replay ran with an empty environment. env.NAME now reads the
    environment as a run does, and a test folder's flow.toml may set it in [env]."""
    flow = tmp_path / "env.flow"
    flow.write_text('use api = http(base_url: env.API)\nsend {region: env.REGION} to api.post("/orders")\n')
    with FakeApi() as api:
        done = cli("run", str(flow), "--record", str(tmp_path / "case"), "--state-dir", str(tmp_path / "state"),
                       env={"API": api.url, "REGION": "eu"})
        assert done.returncode == 0, done.stderr
        assert api.requests[0].body == {"region": "eu"}
    cassette = str(tmp_path / "case")
    assert cli("test", str(flow), "--cassette", cassette, env={"REGION": "eu"}).returncode == 0
    other = cli("test", str(flow), "--cassette", cassette, env={"REGION": "us"})
    assert other.returncode == 1 and 'record.region: "eu" -> "us"' in other.stdout, other.stdout
    (tmp_path / "case" / "flow.toml").write_text('flow = "../env.flow"\n[env]\nREGION = "eu"\n')
    folder = cli("test", cassette, env={"REGION": "us"})
    assert folder.returncode == 0 and "PASS" in folder.stdout, folder.stdout + folder.stderr
    (tmp_path / "case" / "flow.toml").write_text('flow = "../env.flow"\n[env]\nREGION = 5\n')
    bad = cli("test", cassette)
    assert bad.returncode == 1 and '[env] is a table of texts (REGION = "eu")' in bad.stdout


def test_a_cassette_saved_with_a_bom_and_crlf_replays(tmp_path: Path) -> None:
    """A cassette or flow.toml edited on Windows (a BOM first, CRLF line ends) was refused at line 1
    ('Unexpected UTF-8 BOM'), where a .flow file with a BOM is read."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    path = tmp_path / "cassette" / "cassette.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr
    # and a test folder's flow.toml saved so ('not valid TOML: Invalid statement' at 1:1)
    (tmp_path / "cassette" / "flow.toml").write_bytes(b'\xef\xbb\xbfflow = "../sync.flow"\r\n')
    folder = cli("test", str(tmp_path / "cassette"))
    assert folder.returncode == 0 and "PASS" in folder.stdout, folder.stdout + folder.stderr


def test_record_into_an_empty_folder_name_is_refused_before_the_run(tmp_path: Path) -> None:
    """`--record ""` (an unset variable in a script) ran the flow for real and recorded nothing, without
    a word; it is now a usage error before anything runs."""
    flow = project(tmp_path)
    with server() as api:
        done = record(tmp_path, flow, api)  # a first run: the folder name is made below
        ran = cli("run", str(flow), "--record", "", "--secrets", str(tmp_path / "secrets.toml"),
                      "--state-dir", str(tmp_path / "state"), env={"API": api.url})
        assert done.returncode == 0
        posts = api.count("POST", "/invoices")
    assert ran.returncode == 2 and "--record needs the folder to write the cassette into" in ran.stderr
    assert posts == 5  # the first run's only


def test_a_cassette_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    flow = project(tmp_path)
    (tmp_path / "cassette").write_text("not a folder")
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 2
    assert f"{tmp_path / 'cassette'} is a file: --cassette takes the folder that holds cassette.jsonl" in test.stderr
    assert "Errno" not in test.stderr


def test_a_test_folder_that_cannot_run_fails_alone_naming_its_flow_toml(tmp_path: Path) -> None:
    """`flowlang test DIR`: a folder whose [params] names a param its flow lacks, or whose flow does not
    check, is a FAIL naming its flow.toml (or the flow's line), and the other folders still run: exit 1
    with the summary. Before, the first such folder ended the command (exit 2, no summary, no file named),
    and a folder that had failed before it no longer made the exit 1."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    (tmp_path / "bad.flow").write_text("emit {a: nope}\n")
    for name, toml in [("a_good", ""), ("b_param", "[params]\nzz = 1\n"), ("c_flow", None)]:
        (tmp_path / "tests" / name).mkdir(parents=True)
        text = 'flow = "../../sync.flow"\ncassette = "../../cassette"\n' + (toml or "") if toml is not None \
            else 'flow = "../../bad.flow"\ncassette = "../../cassette"\n'
        (tmp_path / "tests" / name / "flow.toml").write_text(text)
    folder_run = cli("test", "tests", cwd=tmp_path)
    assert folder_run.returncode == 1, folder_run.stderr
    out = folder_run.stdout
    assert "PASS a_good" in out and "FAIL b_param" in out and "FAIL c_flow" in out
    assert "tests/b_param/flow.toml: unknown param 'zz'" in out
    assert "bad.flow:1:10: error: unknown name 'nope'" in out
    assert "1 passed, 2 failed" in out and "Traceback" not in folder_run.stderr


def test_a_flow_toml_that_cannot_be_read_fails_alone_at_its_line(tmp_path: Path) -> None:
    """A flow.toml that is not TOML, has an unknown key or no flow ended the whole `flowlang test DIR`
    (exit 2: no other folder ran, no summary), and bad TOML said '(at line 1, column 24)' without the
    file's place. Now each is a FAIL of its own folder (the TOML mistake at flow.toml:LINE:COL, with
    the line and a caret) and the other folders still run: exit 1 with the summary."""
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    good = 'flow = "../../sync.flow"\ncassette = "../../cassette"\n'
    for name, text in [("a_good", good), ("b_toml", 'cassette = "../../cassette"\nflow = "../../sync.flow\n'),
                       ("c_key", good + "bogus = 1\n"), ("d_flow", "flow = 3\n")]:
        (tmp_path / "tests" / name).mkdir(parents=True)
        (tmp_path / "tests" / name / "flow.toml").write_text(text)
    done = cli("test", "tests", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "PASS a_good" in out and "FAIL b_toml" in out and "FAIL c_key" in out and "FAIL d_flow" in out
    assert "tests/b_toml/flow.toml:2:24: not valid TOML: Illegal character" in out and " 2 | flow = " in out
    assert "tests/c_key/flow.toml: unknown key bogus (keys: flow, cassette, params, env)" in out
    assert "tests/d_flow/flow.toml: needs flow = " in out
    assert "1 passed, 3 failed" in out and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["fake"])
def test_a_host_binding_replaces_a_use_connection(name: str, caplog: pytest.LogCaptureFixture) -> None:
    class FakeCrm:
        def __init__(self) -> None:
            self.sent: list[Any] = []

        def get(self, path: str) -> list[dict[str, Any]]:
            return [{"id": 1}, {"id": 2}]

        def post(self, record: Any, path: str) -> dict[str, Any]:
            self.sent.append(record)
            return {"ok": True}

    flow = flowlang.compile('use crm = http(base_url: "http://127.0.0.1:9")\ncall crm.get("/people") as people\n'
                            'for each p in people\n  send {n: p.id} to crm.post("/x")\nend\n', name="t.flow")
    fake = FakeCrm()
    with caplog.at_level("INFO", logger="flowlang"):
        result = flow.run(bindings={"crm": fake})
    assert result.ok, result.error
    assert fake.sent == [{"n": 1}, {"n": 2}]
    assert "the host binding 'crm' replaces `use crm = http(...)`" in caplog.text


EXAMPLE = ROOT / "examples" / "recorded_sync"


def test_example_runs_for_real_and_its_recorded_test_replays(tmp_path: Path) -> None:
    import os
    import shutil

    from recorded_example import shop

    folder = copy_example("recorded_sync", tmp_path)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f"SHOP_TOKEN = {json.dumps(CANARY)}\n")
    with shop() as api:
        done = cli("run", "sync_invoices.flow", "--record", "fresh", "--secrets", str(secrets), cwd=folder,
                       env={"SHOP_URL": api.url})
        assert done.returncode == 0, done.stderr
        invoices = [r.body for r in api.requests if r.method == "POST"]
    assert invoices == [
        {"reference": "INV-101", "customer_id": 7, "currency": "EUR", "total": Decimal("19.99")},
        {"reference": "INV-103", "customer_id": 8, "currency": "EUR", "total": Decimal("120.01")},
        {"reference": "INV-104", "customer_id": 7, "currency": "EUR", "total": 42}]
    assert CANARY[-60:] not in (folder / "fresh" / "cassette.jsonl").read_text()
    if os.environ.get("FLOWLANG_RERECORD"):
        shutil.copy(folder / "fresh" / "cassette.jsonl", EXAMPLE / "tests" / "paid_orders" / "cassette.jsonl")
    # the committed cassette replays offline, with flowlang test and with pytest's plugin
    replayed = cli("test", "tests", cwd=EXAMPLE)
    assert replayed.returncode == 0, replayed.stderr
    assert "PASS paid_orders" in replayed.stdout and "1 passed, 0 failed" in replayed.stdout
    collected = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
                                str(EXAMPLE / "tests")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "1 passed" in collected.stdout, collected.stdout + collected.stderr
    assert not (EXAMPLE / "out").exists() and not (EXAMPLE / ".flowlang").exists()


def test_a_broken_mapping_fails_the_pytest_item_with_its_diff(tmp_path: Path) -> None:
    folder = copy_example("recorded_sync", tmp_path)
    flow = folder / "sync_invoices.flow"
    flow.write_text(flow.read_text().replace("round(order.total, 2)", "order.total"))
    collected = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
                                str(folder / "tests")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "1 failed" in collected.stdout, collected.stdout
    assert "write to books.post /invoices: record 1 differs" in collected.stdout
    assert "record.total: 19.99 -> 19.990" in collected.stdout
    (folder / "tests" / "test_custom.py").write_text(
        "def test_custom(flowlang_replay):\n"
        "    outcome = flowlang_replay('../sync_invoices.flow', cassette='paid_orders')\n"
        "    assert [w['record']['reference'] for w in outcome.writes['books.post']] == "
        "['INV-101', 'INV-103', 'INV-104']\n")
    custom = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
                             str(folder / "tests" / "test_custom.py")], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert "1 passed" in custom.stdout, custom.stdout + custom.stderr


def test_a_test_folder_that_cannot_run_fails_its_pytest_item_without_a_traceback(tmp_path: Path) -> None:
    """A pytest item whose flow.toml names a param the flow lacks says so naming its flow.toml; one whose
    flow does not check shows the flow's file:line:col. Before, each showed flowlang's Python traceback."""
    folder = copy_example("recorded_sync", tmp_path)
    (folder / "bad.flow").write_text("emit {a: nope}\n")
    for name, text in [("bad_param", 'flow = "../../sync_invoices.flow"\ncassette = "../paid_orders"\n'
                                     "[params]\nzz = 1\n"),
                       ("bad_flow", 'flow = "../../bad.flow"\ncassette = "../paid_orders"\n'),
                       # a flow.toml that cannot be read: before, a collection error that stopped the session
                       # ("Interrupted: 1 error during collection", no test run) with flowlang's traceback
                       ("bad_key", 'flow = "../../sync_invoices.flow"\ncasette = "../paid_orders"\n'),
                       ("bad_toml", 'flow = "../../sync_invoices.flow\n')]:
        (folder / "tests" / name).mkdir()
        (folder / "tests" / name / "flow.toml").write_text(text)
    collected = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
                                str(folder / "tests")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = collected.stdout
    assert "4 failed, 1 passed" in out, out
    assert f"{folder / 'tests' / 'bad_param' / 'flow.toml'}: unknown param 'zz'" in out
    assert "bad.flow:1:10: error: unknown name 'nope'" in out
    assert f"{folder / 'tests' / 'bad_key' / 'flow.toml'}: unknown key casette" in out
    assert f"{folder / 'tests' / 'bad_toml' / 'flow.toml'}:1:" in out
    assert "error during collection" not in out and "suite.py" not in out
    assert "raise UsageError" not in out and "runner.py" not in out and "check_command" not in out


def test_summary_read_counts_loop_records_only() -> None:
    flow = flowlang.compile('use m = memory(records: [{"id": 1}, {"id": 2}, {"id": 3}])\ncall m.read() as rows\n'
                            'for each r in rows\n  lookup m.find(id: r.id) as same\nend\n', name="t.flow")
    result = flow.run()
    assert result.ok, result.error
    assert result.stats.read == 3
    assert result.stats.as_dict()["read"] == 3
    assert result.stats.per_line[4].read == 3  # the lookups, on their own line


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as a JSON object (OPERATIONS.md 10); a line that is not one fails the test."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) and "flow" in o and "job_id" in o for o in objects), stderr
    return objects


def test_test_and_plan_keep_stderr_to_json_lines_and_report_on_stdout(tmp_path: Path) -> None:
    # `flowlang test` in CI (stderr not a terminal): the report (PASS/FAIL and the diff) is the
    # command's output, on stdout; stderr holds only JSON log lines carrying flow and job_id
    flow = project(tmp_path)
    with server() as api:
        assert record(tmp_path, flow, api).returncode == 0
    flow.write_text(FLOW.replace("amount = o.total", "amount = o.total * 2"))
    failed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert failed.returncode == 1
    assert "FAIL sync.flow" in failed.stdout and "amount: 10 -> 20" in failed.stdout
    assert "0 passed, 1 failed" in failed.stdout
    json_lines(failed.stderr)
    # a plan that cannot start (a secret no provider has) says so as a JSON line naming the flow
    planned = cli("plan", str(flow), "--state-dir", str(tmp_path / "state"), env={"API": "http://127.0.0.1:9"})
    assert planned.returncode == 2
    logged = json_lines(planned.stderr)
    assert any("secret 'API_TOKEN' is not set" in o["message"] and o["flow"] == "Sync orders" for o in logged)
    assert "Traceback" not in planned.stderr


BINARY_FLOW = """flow "Copy scans"
use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
use scans = file(path: "scan.bin", format: "bytes")
use out = file(path: "out/copy.bin", format: "bytes")
call api.get("/invoice.pdf") as pdf
call scans.read() as files
for each b in files
  emit {kind: type_of(b), size: len(b), pdf: len(pdf), pdf_kind: type_of(pdf), same: b == pdf}
  send b to out
end
"""


def test_binary_data_is_recorded_as_base64_and_replayed_as_bytes(tmp_path: Path) -> None:
    """A file read with format "bytes" and an HTTP answer that is not text were recorded as their label
    ("<9 bytes>"), so the replay of a fresh recording gave the flow that text and failed (size 9 -> 10,
    kind "bytes" -> "string"). They are {"$bytes": base64} in the cassette now, read back as the bytes; a
    secret inside them is masked there as in text."""
    data = b"%PDF-1.4\xff\x00" + ("token " + CANARY + " end").encode() + b"\x80"
    (tmp_path / "scan.bin").write_bytes(data)
    flow = project(tmp_path, BINARY_FLOW)
    with FakeApi({}) as api:
        api.route("GET", "^/invoice.pdf$", lambda req: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\xff"))
        done = record(tmp_path, flow, api)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "copy.bin").read_bytes() == data
    text = (tmp_path / "cassette" / "cassette.jsonl").read_text(encoding="utf-8")
    assert "bytes>" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    pdf = next(e for e in lines if e["type"] == "read" and e["connection"] == "api")
    assert pdf["result"] == {"$bytes": "JVBERi0xLjT/"}
    scan = next(e for e in lines if e["type"] == "read" and e["connection"] == "scans")
    import base64
    kept = base64.b64decode(scan["pages"][0][0]["$bytes"])
    assert kept == b"%PDF-1.4\xff\x00token *** end\x80"  # the secret masked, the other bytes as they were
    for form in (CANARY[-60:], base64.b64encode(data).decode()[:60], json.dumps(CANARY)[1:60]):
        assert form not in text
    # without the secret in it, the replay gives the flow the same bytes and passes
    (tmp_path / "scan.bin").write_bytes(b"%PDF-1.4\xff")
    with FakeApi({}) as api:
        api.route("GET", "^/invoice.pdf$", lambda req: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\xff"))
        assert record(tmp_path, flow, api).returncode == 0
    outputs = [json.loads(line)["value"] for line in
               (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines() if '"output"' in line]
    assert outputs == [{"kind": "bytes", "size": 9, "pdf": 9, "pdf_kind": "bytes", "same": True}]
    (tmp_path / "scan.bin").unlink()  # a replay touches no file
    replayed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "PASS" in replayed.stdout
    # a hand-edited $bytes that is not base64 is named at its line
    cassette = tmp_path / "cassette" / "cassette.jsonl"
    cassette.write_text(cassette.read_text().replace('{"$bytes":"JVBERi0xLjT/"}', '{"$bytes":"not base64!"}', 1))
    broken = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert broken.returncode == 2
    assert "cassette.jsonl:" in broken.stderr and "base64" in broken.stderr, broken.stderr


BOUND = '''flow "Bound"
call crm.customers() as people
for each c in people
  lookup crm.find(email: c.email) as found
  send {id: c.id, n: found.n, token: secret.CRM_TOKEN} to crm.save(tag: "x") as saved
  emit {id: c.id, saved: saved.id}
end
'''


class Crm:
    """A real client stand-in for an embedder's own API object (a host binding with no `use` line)."""

    def __init__(self) -> None:
        self.saved: list[Any] = []

    def customers(self) -> list[dict[str, Any]]:
        return [{"id": 1, "email": "a@x.test"}, {"id": 2, "email": "bb@x.test"}]

    def find(self, email: str) -> dict[str, Any]:
        return {"email": email, "n": len(email), "echo": "seen " + CANARY}

    def save(self, record: Any, tag: str = "") -> dict[str, Any]:
        self.saved.append(record)
        return {"ok": True, "id": record["id"] * 10}


def test_a_recording_of_host_binding_calls_replays_from_the_cassette(tmp_path: Path) -> None:
    """A flow calling a host binding (no `use`), recorded from Python, could not be replayed: replay()
    raised CheckError "unknown connection 'crm'" (a replay gives no bindings), though the cassette held
    every call. The replay now stands a binding in for each, answered from the cassette;
    flowlang.testing.suite.record() records such a run (as flowlang run --record does)."""
    from flowlang.testing.suite import record

    flow = flowlang.compile(BOUND, name="bound.flow", bindings=["crm"])
    crm = Crm()
    result = record(flow, tmp_path / "cas", bindings={"crm": crm}, secrets={"CRM_TOKEN": CANARY})
    assert result.ok, result.error
    assert [r["id"] for r in crm.saved] == [1, 2]
    text = (tmp_path / "cas" / "cassette.jsonl").read_text(encoding="utf-8")
    assert CANARY[-60:] not in text and json.dumps(CANARY)[1:60] not in text
    kinds = [(e["type"], e.get("op")) for e in map(json.loads, text.splitlines()) if e["type"] in ("read", "write")]
    assert kinds == [("read", "customers"), ("read", "find"), ("write", "save"), ("read", "find"), ("write", "save")]
    replayed = replay(flow, tmp_path / "cas")
    assert replayed.ok, replayed.problems
    assert [o["saved"] for o in replayed.outputs] == [10, 20]
    assert len(crm.saved) == 2  # the replay called nothing
    changed = flowlang.compile(BOUND.replace("n: found.n", "n: found.n + 1"), name="bound.flow", bindings=["crm"])
    differs = replay(changed, tmp_path / "cas")
    assert not differs.ok
    assert "write to crm.save: record 1 differs:" in differs.problems[0]
    assert "record.n: 8 -> 9" in differs.problems[0]
    other = flowlang.compile(BOUND.replace("email: c.email", "email: upper(c.email)"), name="bound.flow",
                             bindings=["crm"])
    missed = replay(other, tmp_path / "cas")
    assert any("the cassette has no recorded request for crm.find" in p and 'kwargs.email: "a@x.test" -> "A@X.TEST"'
               in p for p in missed.problems), missed.problems


PARENT = """flow "Parent"
use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
send {ref: "P1"} to api.post("/invoices")
run "child.flow" with {n: 3}
"""
CHILD = """flow "Child"
param n = 1
use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
call api.get("/customers") as people
for each i in range(0, n)
  send {ref: "C" + str(i), who: len(people)} to api.post("/invoices")
end
"""


def test_a_child_flow_is_recorded_and_replayed_with_its_parent(tmp_path: Path) -> None:
    """`run "child.flow"` ran the child without the run's tape: the cassette lacked the child's
    exchanges, and flowlang test ran the child for real, sending its 3 invoices to the API (the replay
    promises no network) and recording a job in the child's store; a plan did not list its writes. The
    child now runs on its parent's tape: recorded, replayed from the cassette (its jobs in memory), planned."""
    flow = project(tmp_path, PARENT)
    (tmp_path / "child.flow").write_text(CHILD)
    with server() as api:
        done = record(tmp_path, flow, api)
        assert done.returncode == 0, done.stderr
        assert api.count("POST", "/invoices") == 4
        text = (tmp_path / "cassette" / "cassette.jsonl").read_text()
        writes = [json.loads(line)["record"]["ref"] for line in text.splitlines() if '"type":"write"' in line]
        assert writes == ["P1", "C0", "C1", "C2"]
        assert CANARY[-60:] not in text
        replayed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), env={"API": api.url})
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "PASS" in replayed.stdout
        assert api.count("POST", "/invoices") == 4 and api.count("GET", "/customers") == 1  # nothing in the replay
        assert not (tmp_path / ".flowlang").exists()  # no store of the child's beside it
        planned = cli("plan", str(flow), "--json", "--state-dir", str(tmp_path / "state"),
                          "--secrets", str(tmp_path / "secrets.toml"), env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        assert api.count("POST", "/invoices") == 4
    [write] = json.loads(planned.stdout)["writes"]
    assert [p["ref"] for p in write["payloads"]] == ["P1", "C0", "C1", "C2"]
    (tmp_path / "child.flow").write_text(CHILD.replace('"C" + str(i)', '"K" + str(i)'))
    changed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert changed.returncode == 1
    assert 'record.ref: "C0" -> "K0"' in changed.stdout, changed.stdout


PARALLEL_DRAWS = """flow "Stamped"
use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
for each i in range(1, 13) parallel 6
  lookup api.get('/people/{n}', n: i) as who
  send {n: i, who: who.n, u: uuid(), at: now()} to api.post("/invoices")
end
"""


def test_values_drawn_in_a_parallel_loop_replay_to_their_own_records(tmp_path: Path) -> None:
    """In a parallel loop the iterations draw now() and uuid() in the order their lookups come back,
    which differs from run to run: the cassette kept the values in the order drawn and the replay gave
    them out in its own order, so a fresh recording did not replay (11 of 12 writes differed, u: and at:
    swapped between records). Each value is kept with the record that drew it now ("at": "3") and
    replayed to it."""
    flow = project(tmp_path, PARALLEL_DRAWS)

    def person(req: Request) -> tuple[int, dict[str, str], Any]:
        n = int(req.path.rsplit("/", 1)[1])
        time.sleep(0.01 * (13 - n))  # the last records answer first
        return 200, {}, {"n": n}

    with FakeApi({"invoices": []}) as api:
        api.route("GET", r"^/people/\d+$", person)
        done = record(tmp_path, flow, api)
        assert done.returncode == 0, done.stderr
        sent = [r.body["n"] for r in api.requests if r.method == "POST"]
    assert sent != sorted(sent)  # drawn out of order
    replayed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "PASS" in replayed.stdout
    lines = [json.loads(line) for line in (tmp_path / "cassette" / "cassette.jsonl").read_text().splitlines()]
    assert sorted(e["at"] for e in lines if e.get("kind") == "uuid") == sorted(str(i) for i in range(12))


KILLED = """flow "Killed"
use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))
call api.get("/items", pages: {style: "page", size: 5, records: "data", total_pages: "total_pages"}) as items
for each i in items
  send {n: i.n, at: now()} to api.post("/sink") as got
  emit {n: i.n, seq: got.seq}
end
"""


def killed_recording(tmp_path: Path, kill_at: int) -> tuple[Path, list[int]]:
    """A --record run of 60 pages, killed with SIGKILL by the server as record kill_at arrives (stored there,
    its answer never sent); the records the server received."""
    flow = project(tmp_path, KILLED)
    records = [{"n": n} for n in range(1, 301)]
    received: list[int] = []
    proc: list[subprocess.Popen[str]] = []

    def sink(req: Request) -> tuple[int, dict[str, str], Any]:
        received.append(req.body["n"])
        if req.body["n"] == kill_at:
            proc[0].kill()
            proc[0].wait()
        return 201, {}, {"seq": len(received)}

    with FakeApi() as api:
        api.route("GET", r"^/items$", lambda req: paged(records, req, "page", ""))
        api.route("POST", r"^/sink$", sink)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}, "API": api.url}
        proc.append(subprocess.Popen(
            [sys.executable, "-m", "flowlang", "run", str(flow), "--record", str(tmp_path / "cassette"),
             "--secrets", str(tmp_path / "secrets.toml"), "--state-dir", str(tmp_path / "state")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))
        assert proc[0].wait(timeout=60) == -signal.SIGKILL
    return flow, received


def test_a_recording_killed_with_sigkill_keeps_every_exchange_it_made(tmp_path: Path) -> None:
    """A `run --record` killed (SIGKILL, or a SIGTERM before the handlers are set, or the watchdog's end of a
    run stuck after a second signal) left no cassette at all: 117 records had reached the API and nothing said
    which. The cassette is appended to as the run records: after the kill it holds the 24 pages read, every
    write that reached the server (the last one sent with no answer), their answers and the outputs, and it
    replays up to where the recording stopped, saying so; no secret in it."""
    flow, received = killed_recording(tmp_path, kill_at=117)
    assert received == list(range(1, 118))
    text = (tmp_path / "cassette" / "cassette.jsonl").read_text()
    assert CANARY not in text and json.dumps(CANARY)[1:-1] not in text
    cassette = Cassette.load(tmp_path / "cassette")
    writes = cassette.of_type("write")
    assert [w["record"]["n"] for w in writes] == received  # each one that reached the server
    assert [w["result"]["seq"] for w in writes[:-1]] == list(range(1, 117))
    assert "result" not in writes[-1] and "error" not in writes[-1]  # sent; its answer never came
    (read,) = cassette.of_type("read")
    assert len(read["pages"]) == 24 and read["complete"] is False
    assert [o["value"]["n"] for o in cassette.of_type("output")] == list(range(1, 117))
    assert cassette.of_type("result") == []
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 1 and "Traceback" not in test.stderr, test.stdout + test.stderr
    assert ("needs more than the 24 pages the cassette holds (its recording was stopped before the run ended, "
            "the cassette has no result line: record a whole run)") in test.stdout, test.stdout


def test_a_recording_killed_while_a_read_was_in_flight_says_so_at_replay(tmp_path: Path) -> None:
    """A `run --record` killed (kill -9) while a call waited for its answer left that read in the cassette with
    no answer, and `flowlang test` replayed it as null, then failed the next read as if the flow had changed
    since: 'the cassette has no recorded request for api.get("/items", ...); the nearest recorded one differs
    in: args[0]: "/two" -> "/items"' (found by killing recordings at random moments; a kill before a read
    said '(it holds no reads)' alike). In a cassette whose recording stopped before its run ended (no result
    line), a read with no answer, or one that is not there, says so."""
    flow = project(tmp_path, KILLED.replace('call api.get("/items"', 'call api.get("/hello") as hello\n'
                                                                     'call api.get("/two") as two\n'
                                                                     'call api.get("/items"'))
    proc: list[subprocess.Popen[str]] = []

    def killed(req: Request) -> tuple[int, dict[str, str], Any]:
        proc[0].kill()
        proc[0].wait()
        return 200, {}, {"two": 2}

    with FakeApi() as api:
        api.route("GET", r"^/hello$", lambda req: (200, {}, {"hi": 1}))
        api.route("GET", r"^/two$", killed)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}, "API": api.url}
        proc.append(subprocess.Popen(
            [sys.executable, "-m", "flowlang", "run", str(flow), "--record", str(tmp_path / "cassette"),
             "--secrets", str(tmp_path / "secrets.toml"), "--state-dir", str(tmp_path / "state")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))
        assert proc[0].wait(timeout=60) == -signal.SIGKILL
    path = tmp_path / "cassette" / "cassette.jsonl"
    reads = Cassette.load(tmp_path / "cassette").of_type("read")
    assert [(r["args"], "result" in r) for r in reads] == [(["/hello"], True), (["/two"], False)]
    stopped = "(its recording was stopped before the run ended, the cassette has no result line: record a whole run)"
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 1 and "Traceback" not in test.stderr, test.stdout + test.stderr
    assert f"api.get() has no answer in the cassette: it was in flight when the recording stopped {stopped}" \
        in test.stdout, test.stdout
    lines = path.read_text().splitlines(keepends=True)  # killed before /two was sent
    path.write_text("".join(line for line in lines if '"/two"' not in line))
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 1 and "Traceback" not in test.stderr, test.stdout + test.stderr
    assert f'the cassette has no recorded request for api.get("/two") {stopped}' in test.stdout, test.stdout
    assert 'args[0]: "/hello" -> "/two"' in test.stdout  # the nearest recorded one, as before


def test_a_cassette_cut_in_the_middle_of_its_last_line_replays_without_it(tmp_path: Path) -> None:
    """A kill inside the write of a line leaves the line cut short: the replay leaves it out with a warning
    naming the line, and reads every line before it."""
    flow = project(tmp_path, KILLED)
    records = [{"n": n} for n in range(1, 8)]
    with FakeApi({"sink": []}) as api:
        api.route("GET", r"^/items$", lambda req: paged(records, req, "page", ""))
        assert record(tmp_path, flow, api).returncode == 0
    path = tmp_path / "cassette" / "cassette.jsonl"
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    assert cli("test", str(flow), "--cassette", str(tmp_path / "cassette")).returncode == 0
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:9])  # the result line, cut
    cut = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"), "--log-format", "text")
    assert f"{path}:{len(lines)}: the last line is cut short (the recording was stopped while writing it): " \
           "left out" in cut.stderr, cut.stderr
    assert cut.returncode == 0 and "PASS" in cut.stdout, cut.stdout + cut.stderr  # no result line to compare
    path.write_bytes(whole[:-1])  # whole, without its line break (an editor's save): read as it is
    assert Cassette.load(tmp_path / "cassette").of_type("result")
    path.write_bytes(b"".join(lines[:-2]) + "{\"type\": \"output\", \"value\": \"caf\u00e9".encode()[:-1])
    assert len(Cassette.load(tmp_path / "cassette").of_type("output")) == 6  # a character cut in two


def test_a_text_holding_unicode_line_separators_replays(tmp_path: Path) -> None:
    """A record whose text held U+2028, U+0085 or \\x1c (JSON leaves them as they are) was written into the
    cassette whole, and `flowlang test` split its line there: 'cassette.jsonl:4: not a cassette line: not
    valid JSON'. A cassette's lines end at a line feed alone."""
    flow = tmp_path / "f.flow"
    flow.write_text('use out = file(path: "out.jsonl")\nfor each k in range(2)\n'
                    '  send {k: k, t: "a\\u2028b\\u2029c\\u0085d\\u001ce\\u000bf"} to out\n  emit k\nend\n')
    done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir", str(tmp_path / "st"))
    assert done.returncode == 0, done.stderr
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr


def test_test_folders_are_named_by_their_place_under_the_folder_given(tmp_path: Path) -> None:
    """`flowlang test tests/` named each test folder by its last part: tests/orders/smoke and
    tests/invoices/smoke were both 'FAIL smoke' (and 'PASS smoke'), so the report did not say which one
    failed. Each is named by its path under the folder given ('FAIL invoices/smoke')."""
    for group in ("orders", "invoices"):
        (tmp_path / "tests" / group / "smoke").mkdir(parents=True)
        (tmp_path / "tests" / group / "smoke" / "flow.toml").write_text("cassette = 1\n")  # no flow: fails alone
    assert [c.name for c in discover(tmp_path / "tests")] == ["invoices/smoke", "orders/smoke"]
    assert [c.name for c in discover(tmp_path / "tests" / "orders" / "smoke")] == ["smoke"]
    shown = cli("test", str(tmp_path / "tests"))
    assert shown.returncode == 1
    assert [line for line in shown.stdout.splitlines() if line.startswith("FAIL")] == [
        "FAIL invoices/smoke", "FAIL orders/smoke"], shown.stdout
    # a test folder's flow.toml given for it was taken for a flow: 'say which cassette to replay: ...'
    one = cli("test", str(tmp_path / "tests" / "orders" / "smoke" / "flow.toml"))
    assert (one.returncode, one.stdout.splitlines()[0]) == (1, "FAIL smoke"), one.stdout + one.stderr


def test_a_later_part_of_a_split_secret_replays_as_recorded(tmp_path: Path) -> None:
    """The replay's stand-in secret is one word, so `split(secret.CREDS, ":")[1]` is null in a replay where
    the recording had a part of the secret ({"$secret": null} in the cassette): the unchanged flow, sending
    the user and password parts to a login and emitting them, failed its own replay ('record.password:
    {"$secret":null} -> null', 'output 1 differs: q: {"$secret":null} -> null'). That null is no difference;
    a change elsewhere in the same write still is."""
    creds = 'ann:p"a\\ss-ø-' + "w" * 80
    flow = tmp_path / "login.flow"
    text = ('flow "Login"\nuse api = http(base_url: env.API)\nlet parts = split(secret.CREDS, ":")\n'
            'send {user: parts[0], password: parts[1], n: 1} to api.post("/login") as made\n'
            "emit {id: made.id, p: parts[1]}\n")
    flow.write_text(text)
    with FakeApi() as api:
        api.route("POST", "/login", lambda req: (200, {}, {"id": 7}))
        done = cli("run", str(flow), "--record", str(tmp_path / "cassette"), "--state-dir",
                       str(tmp_path / "state"), env={"API": api.url, "CREDS": creds})
        assert done.returncode == 0, done.stderr
        assert api.requests[0].body["password"] == creds.split(":")[1]
    cassette = (tmp_path / "cassette" / "cassette.jsonl").read_text()
    assert creds.split(":")[1] not in cassette and '"password":{"$secret":null}' in cassette
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr
    flow.write_text(text.replace("n: 1}", "n: 2}"))
    changed = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert changed.returncode == 1 and "record.n: 1 -> 2" in changed.stdout, changed.stdout
    assert "password" not in changed.stdout and "output" not in changed.stdout, changed.stdout


def test_a_recording_of_a_run_that_failed_leaves_the_cassette_it_would_replace(tmp_path: Path) -> None:
    """`--record` of a run that failed partway (an API down at page 2) wrote its cassette over a good one,
    and `flowlang test` then passed, replaying the failure (both runs failed the same way): the cassette of
    the run that passed was lost. A run that does not finish replaces no cassette: the old one stays and the
    recording goes beside it, with the writes it sent; with no cassette there, it is the cassette, saying
    that it failed."""
    flow = project(tmp_path)
    folder = tmp_path / "cassette"
    down = [False]

    def orders(req: Request) -> tuple[int, dict[str, str], Any]:
        if down[0] and req.query.get("cursor") == "2":
            return 500, {}, {"error": "down"}
        return paged(ORDERS, req, "cursor", "")

    def failing_server() -> FakeApi:
        api = FakeApi({"customers": CUSTOMERS, "invoices": []})
        api.route("GET", r"^/orders$", orders)
        return api

    with failing_server() as api:
        assert record(tmp_path, flow, api).returncode == 0
        good = (folder / "cassette.jsonl").read_bytes()
        down[0] = True
        failed = record(tmp_path, flow, api, "--log-format", "text")
    assert failed.returncode == 1, failed.stderr
    assert (folder / "cassette.jsonl").read_bytes() == good
    assert (f"the run failed, so {folder / 'cassette.jsonl'} was left as it was (a recording of a run that did "
            "not finish replaces no cassette: its replay would pass by failing the same way); this run's ") \
        in failed.stderr, failed.stderr
    assert f"entries are in {folder / 'cassette.failed.jsonl'} (move it to cassette.jsonl to replay it)" \
        in failed.stderr
    lines = [json.loads(line) for line in (folder / "cassette.failed.jsonl").read_text().splitlines()]
    assert [w["record"]["order"] for w in lines if w["type"] == "write" and w["op"] == "post"] == [1, 2]
    assert lines[-1] == {"type": "result", "status": "failed", "failed": 0}
    assert not (folder / "cassette.previous.jsonl").exists()
    test = cli("test", str(flow), "--cassette", str(folder))
    assert test.returncode == 0 and "PASS" in test.stdout, test.stdout + test.stderr
    # a folder without a cassette takes the failed run's, saying so
    with failing_server() as api:
        first = cli("run", str(flow), "--record", str(tmp_path / "new"), "--secrets", str(tmp_path / "secrets.toml"),
                    "--state-dir", str(tmp_path / "state"), "--log-format", "text", env={"API": api.url})
    assert first.returncode == 1
    assert (f"the run recorded into {tmp_path / 'new' / 'cassette.jsonl'} failed: its replay passes when the flow "
            "fails the same way (record again once the run passes)") in first.stderr, first.stderr
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["cassette.jsonl"]
    # a run that passes replaces the cassette, as before
    with server() as api:
        again = record(tmp_path, flow, api)
    assert again.returncode == 0 and "replay with:" in again.stderr
    assert not (folder / "cassette.previous.jsonl").exists()


def test_writes_are_numbered_and_compared_per_path(tmp_path: Path) -> None:
    """`flowlang test` counted writes per operation: a loop sending each order to api.post("/invoices")
    and api.post("/orders") reported a change to the second as 'write to api.post: record 2, 4, 6 ...
    differs', numbering the two paths' writes as one list and naming neither (found by a new-user trial).
    Each path is a destination of its own, as in the ledger and the plan, and a path built from the
    records is one, named as the plan names it; two paths written in the flow under one prefix (/v1/) stay
    two."""
    flow = project(tmp_path, """use api = http(base_url: env.API)
call api.get("/orders", pages: {style: "cursor", cursor: "next_cursor", records: "results", size: 2}) as orders
for each o in orders
  send {ref: o.id, amount: o.total} to api.post("/v1/invoices")
  send {ref: o.id, qty: 1} to api.post("/v1/shipments?notify=1")
  send {price: o.total} to api.put("/v1/customers/{o.id}")
end
""")
    with server() as api:
        api.route("POST", r"^/v1/(invoices|shipments)$", lambda req: (201, {}, {"id": 1}))
        api.route("PUT", r"^/v1/customers/\d+$", lambda req: (200, {}, {"ok": True}))
        assert record(tmp_path, flow, api).returncode == 0
    flow.write_text(flow.read_text().replace("qty: 1", "qty: 2").replace("price: o.total", "price: o.total + 1"))
    test = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert test.returncode == 1
    report = [line.strip() for line in test.stdout.splitlines()[1:-1]]
    assert report[:2] == ["write to api.post /v1/shipments: record 1 differs:", "record.qty: 1 -> 2"], test.stdout
    assert [line for line in report if line.startswith("write to")] == (
        [f"write to api.post /v1/shipments: record {n} differs:" for n in range(1, 6)]
        + [f"write to api.put /v1/customers/{{...}}: record {n} differs:" for n in range(1, 6)]), test.stdout
    assert "/v1/invoices" not in test.stdout
    outcome = replay(flowlang.load(flow), tmp_path / "cassette")  # outcome.writes stays per operation
    assert [w["record"].get("ref") for w in outcome.writes["api.post"]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # a path changed in the flow is still paired with the write it replaces: its diff says so
    flow.write_text(flow.read_text().replace('"/v1/invoices"', '"/v1/bills"'))
    moved = cli("test", str(flow), "--cassette", str(tmp_path / "cassette"))
    assert 'write to api.post /v1/bills: record 1 differs:\n      args[0]: "/v1/invoices" -> "/v1/bills"' \
        in moved.stdout, moved.stdout
