"""`send ... batch N` as the last statement of a loop (compile/loops.py run_tail: no task per record,
the next batch collected while one is written), counted at the receiving side: a SQLite table without
a primary key, so a record written twice would show."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import flowlang
from conftest import cli

SETUP = """
use db = sql(url: "sqlite:///b.db")
call db.execute("create table if not exists t (id integer, name text not null)")
"""


def run(tmp_path: Path, text: str, **kw: object) -> flowlang.Result:
    path = tmp_path / "f.flow"
    path.write_text(SETUP + text)
    return flowlang.load(path).run(state_dir=tmp_path / ".state", **kw)  # type: ignore[arg-type]


def written(tmp_path: Path) -> list[int]:
    con = sqlite3.connect(tmp_path / "b.db")
    ids = [row[0] for row in con.execute("select id from t order by rowid")]
    con.close()
    return ids


ROWS = [{"id": i, "name": None if i % 97 == 5 else f"n{i}"} for i in range(2500)]
BAD = {i for i in range(2500) if i % 97 == 5}


def test_every_record_is_written_once_in_order_and_a_refused_one_fails_alone(tmp_path: Path) -> None:
    result = run(tmp_path, """
for each r in input
  if r.id % 500 == 7
    skip
  end
  emit r.id
  send r to db.insert(table: "t") batch 100
end
""", input=ROWS)
    skipped = {i for i in range(2500) if i % 500 == 7}
    assert result.status == "partial"
    assert written(tmp_path) == [i for i in range(2500) if i not in BAD and i not in skipped]
    assert result.outputs == [i for i in range(2500) if i not in skipped]  # emitted before the send, in order
    assert sorted(e.record["id"] for e in result.errors) == sorted(BAD)
    assert all("NOT NULL" in e.message and e.line == 10 for e in result.errors)
    stats = result.stats.per_line
    assert stats[10].sent == 2500 - len(BAD) - len(skipped)
    assert (stats[5].read, stats[5].failed, stats[5].skipped) == (2500, len(BAD), len(skipped))


def test_limit_and_stop_end_the_loop_after_the_records_taken_are_written(tmp_path: Path) -> None:
    result = run(tmp_path, """
for each r in input
  send r to db.insert(table: "t") batch 100
end
""", input=ROWS, limit=250)
    assert result.stats.read == 250 and len(result.errors) == len([i for i in BAD if i < 250])
    assert written(tmp_path) == [i for i in range(250) if i not in BAD]
    result = run(tmp_path, """
call db.execute("delete from t")
for each r in input
  if r.id == 1234
    stop
  end
  send r to db.insert(table: "t") batch 100
end
""", input=ROWS)
    assert result.status == "partial" and len(result.errors) == len([i for i in BAD if i < 1234])
    assert written(tmp_path) == [i for i in range(1234) if i not in BAD]


def test_a_stream_is_sent_page_by_page_and_a_sent_list_gives_each_item_its_row(tmp_path: Path) -> None:
    result = run(tmp_path, """
use source = sql(url: "sqlite:///source.db")
call source.execute("create table src (id integer)")
send [{id: i} for i in range(1700)] to source.insert(table: "src")
call source.query("select id from src order by id") as rows
for each r in rows
  send [{id: r.id, name: "a"}, {id: r.id, name: "b"}] to db.insert(table: "t") batch 300
end
call db.query("select count(*) as n, count(distinct id) as ids from t") as counts
emit list(counts)[0]
""")
    assert result.ok, result.error
    assert result.outputs == [{"n": 3400, "ids": 1700}]
    assert written(tmp_path) == [i for i in range(1700) for _ in range(2)]


def test_a_stream_sent_from_the_loop_is_sent_whole_for_each_iteration(tmp_path: Path) -> None:
    """A stream is sent by the send's own step (a task per iteration, as in a parallel loop: the two
    iterations' records may interleave), every record once per iteration."""
    result = run(tmp_path, """
use source = sql(url: "sqlite:///source.db")
call source.execute("create table src (id integer, name text)")
send [{id: i, name: "s"} for i in range(700)] to source.insert(table: "src")
call source.query("select id, name from src order by id") as rows
for each k in [1, 2]
  send rows to db.insert(table: "t") batch 300
end
""")
    assert result.ok, result.error
    assert sorted(written(tmp_path)) == sorted(list(range(700)) * 2)


def test_a_query_read_from_a_file_while_writing_into_the_same_file(tmp_path: Path) -> None:
    # the query's open read held the file's lock and every write waited on it (the run hung); in WAL mode
    # a reader does not block a writer, batched or not
    result = run(tmp_path, """
call db.execute("create table src (id integer)")
send [{id: i} for i in range(2500)] to db.insert(table: "src")
call db.query("select id from src order by id") as rows
for each r in rows
  send {id: r.id, name: "batched"} to db.insert(table: "t") batch 100
end
for each r in rows
  send {id: r.id, name: "one by one"} to db.insert(table: "t")
end
""")
    assert result.ok, result.error
    assert written(tmp_path) == list(range(2500)) * 2
    con = sqlite3.connect(tmp_path / "b.db")
    assert con.execute("pragma journal_mode").fetchone() == ("wal",)
    con.close()


@pytest.mark.parametrize(("text", "where", "got"), [
    ('use out = file(path: "b.jsonl")\nfor each i in [1]\n  send {id: i} to out batch null\nend\n', "3:29", "null"),
    ("for each i in [1] parallel true\n  emit i\nend\n", "1:28", "true"),
])
def test_a_constant_that_is_no_count_is_said_so(tmp_path: Path, text: str, where: str, got: str) -> None:
    """`batch null` or `parallel true` said "unknown name 'null'": they are constants, and the message
    says what the count takes."""
    from conftest import cli

    (tmp_path / "f.flow").write_text(text)
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert f"f.flow:{where}: error: " in result.stderr and "needs a whole number of at least 1" in result.stderr
    assert f"got {got}" in result.stderr and "unknown name" not in result.stderr


def test_a_record_a_binding_or_a_file_refuses_in_a_batch_fails_alone(tmp_path: Path) -> None:
    """A destination written one record at a time (a host binding, a file) took a batch as one: when
    record 2 was refused, record 1, already written, failed too with record 2's message, so the error
    store held it and a retry wrote it a second time."""
    class Crm:
        def __init__(self) -> None:
            self.saved: list[int] = []

        def save(self, record: dict[str, int]) -> dict[str, bool]:
            if record["a"] == 2 and not self.saved.count(0):
                raise ValueError("no 2 today")
            self.saved.append(record["a"])
            return {"ok": True}

    crm = Crm()
    path = tmp_path / "f.flow"
    path.write_text("for each r in input\n  send r to crm.save batch 2\nend\n")
    flow = flowlang.load(path, bindings=["crm"])
    result = flow.run(input=[{"id": i, "a": i} for i in (1, 2, 3, 4)], bindings={"crm": crm})
    assert result.status == "partial"
    assert [(e.record, e.message) for e in result.errors] == [({"id": 2, "a": 2}, "crm.save() raised ValueError: "
                                                                                  "no 2 today")]
    assert crm.saved == [1, 3, 4]
    crm.saved.append(0)  # the cause is fixed: the retry sends record 2 only
    again = flow.retry(bindings={"crm": crm})
    assert again.ok and crm.saved == [1, 3, 4, 0, 2]

    (tmp_path / "g.flow").write_text('use out = file(path: "out.csv")\n'
                                     "for each r in [{a: 1}, {a: 2, b: 1}, {a: 3}, {a: 4}]\n"
                                     "  send r to out batch 2\nend\n")
    ran = cli("run", "g.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 3 and "1 record failed" in ran.stderr, ran.stderr
    assert (tmp_path / "out.csv").read_text().splitlines() == ["a", "1", "3", "4"]


PAGED_BATCH_CONNECTOR = """name = "shop"
base_url = "{url}"

[operations.create_items]
method = "POST"
path   = "/batch"
batch  = {{ max = 100, body = "items", results = "results", ok = "ok" }}
"""


@pytest.mark.parametrize("body", [
    "  send r to shop.create_items batch 4\n",  # the loop's tail: no task per record
    '  lookup src.get("/one", query: {id: r.id}) as same\n  send same to shop.create_items batch 4\n',
    '  lookup src.get("/one", query: {id: r.id}) as same\n  send same to shop.create_items batch 4\n',
], ids=["tail", "lookup", "parallel"])
def test_batches_fill_across_pages(tmp_path: Path, body: str, request: pytest.FixtureRequest) -> None:
    """Pages of 3 records and `batch 4`: the records of the next page fill a batch (4, 4, 2 records in
    three requests), not a batch sent short at each page's end (3, 4, 3 before)."""
    from fakeapi import FakeApi

    records = [{"id": i} for i in range(10)]
    sizes: list[list[int]] = []
    with FakeApi() as api:
        def page(req: Any) -> tuple[int, dict[str, str], Any]:
            offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 3))
            return 200, {}, records[offset:offset + limit]

        def batch(req: Any) -> tuple[int, dict[str, str], Any]:
            sizes.append([item["id"] for item in req.body["items"]])
            return 200, {}, {"results": [{"ok": True} for _ in req.body["items"]]}

        api.route("GET", r"/items", page)
        api.route("GET", r"/one", lambda req: (200, {}, [{"id": int(req.query["id"])}]))
        api.route("POST", r"/batch", batch)
        (tmp_path / "connectors").mkdir()
        (tmp_path / "connectors" / "shop.toml").write_text(PAGED_BATCH_CONNECTOR.format(url=api.url))
        parallel = " parallel 2" if request.node.callspec.id == "parallel" else ""
        (tmp_path / "f.flow").write_text(
            f'use src = http(base_url: "{api.url}")\nuse shop = shop()\n'
            'call src.get("/items", pages: {style: "offset", size: 3}) as rows\n'
            f"for each r in rows{parallel}\n{body}end\n")
        result = flowlang.load(tmp_path / "f.flow").run(state_dir=tmp_path / ".state")
    assert result.ok, result.error
    assert [len(s) for s in sizes] == [4, 4, 2]
    assert sorted(i for s in sizes for i in s) == list(range(10))  # each record once, at the server


ITEMS_CONNECTOR = """name = "shop"
base_url = "{url}"

[operations.create_items]
method = "POST"
path   = "/items/batch"
batch  = {{ max = 100, body = "items", results = "results", ok = "ok" }}
"""

ORDERS_OF_LINES = """use shop = shop()
let orders = [{id: 1, lines: [{sku: "A"}, {sku: "B"}]}, {id: 2, lines: [{sku: "C", fail: true}, {sku: "D"}]},
  {id: 3, lines: [{sku: "E"}]}]
for each o in orders
  for each l in o.lines
    send l to shop.create_items batch 10
    BODY
  end
end
"""


@pytest.mark.parametrize("body", ["emit l.sku", "emit [{sku: l.sku}]"], ids=["one", "a list of records"])
def test_the_emit_of_a_record_dropped_with_its_failed_batch_is_not_counted(tmp_path: Path, body: str) -> None:
    """Order 2's line C is refused; line D, run ahead into the same batch, was accepted and emitted, and its
    output dropped with the failed order: stdout had A, B, E and the summary said 'emitted 4'. An output is
    counted as it goes out: emitted 3, as many as the lines on stdout (sent 4: D did reach the API)."""
    from fakeapi import FakeApi

    with FakeApi({"items": []}) as api:
        (tmp_path / "connectors").mkdir()
        (tmp_path / "connectors" / "shop.toml").write_text(ITEMS_CONNECTOR.format(url=api.url))
        (tmp_path / "f.flow").write_text(ORDERS_OF_LINES.replace("BODY", body))
        ran = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path)
        arrived = [i["sku"] for i in api.state.collections["items"]]
    assert ran.status == 3, ran.stderr
    shown = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [v if type(v) is str else v["sku"] for v in shown] == ["A", "B", "E"]
    assert arrived == ["A", "B", "D", "E"]
    summary = [json.loads(line) for line in ran.stderr.splitlines() if '"summary"' in line][-1]["summary"]
    assert (summary["emitted"], summary["sent"], summary["failed"]) == (3, 4, 1)
    emits = [s for s in summary["statements"].values() if s["kind"] == "emit"]
    assert [s["emitted"] for s in emits] == [3]


LINES = '[{sku: "A"}, {sku: "B"}, {sku: "C"}, {sku: "D"}, {sku: "E"}]'
STOP_AT_C = '  if l.sku == "C"\n    stop\n  end\n'


@pytest.mark.parametrize("flow", [
    # the stop after the send: C is sent, then the loop is left
    f"for each l in {LINES}\n  send l to shop.create_items batch 10\n{STOP_AT_C}  emit l.sku\nend\n",
    # the stop before it, after a lookup (a task per record): C is not sent
    f'for each l in {LINES}\n  lookup src.get("/one", query: {{sku: l.sku}}) as same\n{STOP_AT_C}'
    "  send l to shop.create_items batch 10\n  emit l.sku\nend\n",
    # an inner loop over an order's lines
    f"for each o in [{{id: 1, lines: {LINES}}}]\n  for each l in o.lines\n    send l to shop.create_items batch 10\n"
    '    if l.sku == "C"\n      stop\n    end\n    emit l.sku\n  end\nend\n',
], ids=["after the send", "after a lookup", "inner loop"])
def test_stop_in_a_batched_loop_sends_and_emits_no_record_after_it(tmp_path: Path, flow: str) -> None:
    """Over A-E, `send l ... batch 10` then `if l.sku == "C"` / `stop`: the loop ran D and E ahead to fill
    C's batch, so they reached the API and were emitted (sent 5, emitted 4) though the loop stopped at C;
    so with the stop before the send after a lookup (D and E ran while C waited for its lookup), and in an
    inner loop. A loop that can `stop` does not run ahead: A, B (and C, sent before its stop) arrive, A and
    B are emitted."""
    from fakeapi import FakeApi

    with FakeApi({"items": []}) as api:
        api.route("GET", r"/one", lambda req: (200, {}, {"sku": req.query["sku"]}))
        (tmp_path / "connectors").mkdir()
        (tmp_path / "connectors" / "shop.toml").write_text(ITEMS_CONNECTOR.format(url=api.url))
        (tmp_path / "f.flow").write_text(f'use shop = shop()\nuse src = http(base_url: "{api.url}")\n' + flow)
        ran = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path)
        arrived = [i["sku"] for i in api.state.collections["items"]]
    assert ran.status == 0, ran.stderr
    sent = ["A", "B"] if "lookup" in flow else ["A", "B", "C"]
    assert arrived == sent
    assert [json.loads(line) for line in ran.stdout.splitlines()] == ["A", "B"]
    summary = [json.loads(line) for line in ran.stderr.splitlines() if '"summary"' in line][-1]["summary"]
    assert (summary["sent"], summary["emitted"]) == (len(sent), 2)
