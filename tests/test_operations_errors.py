"""OPERATIONS.md 1-4 against the local API: the outermost record is the unit of work, trace keys keep
one open error per record and a later success resolves it, errors survive edits, retry appends to
files and exits 0/3/1. Duplicates are counted from what the API received."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flowlang
from conftest import cli
from fakeapi import FakeApi, paged

ORDERS = """use api = http(base_url: env.API)
for each order in orders
  let lines = []
  for each line in order.lines
    lookup api.get("/products", query: {sku: line.sku}) as product
    if product == null
      fail "order {order.id}: unknown product {line.sku}"
    end
    let lines = lines + [{product: product.id, qty: line.qty}]
  end
  send {order: order.id, lines: lines} to api.post("/salesorders")
end
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run(path: Path, api: FakeApi, **kw: Any) -> flowlang.Result:
    return flowlang.load(path).run(env={"API": api.url}, state_dir=path.parent / "state", **kw)


def retry(path: Path, api: FakeApi, **kw: Any) -> flowlang.Result:
    return flowlang.load(path).retry(env={"API": api.url}, state_dir=path.parent / "state", **kw)


def open_errors(path: Path) -> list[Any]:
    store = flowlang.load(path).store(path.parent / "state")
    try:
        return store.open_errors(flowlang.load(path).key)
    finally:
        store.close()


def sent(api: FakeApi, path: str) -> list[Any]:
    return [r.body for r in api.requests if r.method == "POST" and r.path == path]


# ---- 1. the outermost record ------------------------------------------------------------------
def test_an_inner_failure_fails_the_whole_order_and_retry_sends_it_whole(tmp_path: Path) -> None:
    orders = [{"id": 10, "lines": [{"sku": "A", "qty": 1}]},
              {"id": 11, "lines": [{"sku": "A", "qty": 1}, {"sku": "NOPE", "qty": 5}, {"sku": "B", "qty": 1}]}]
    flow = write(tmp_path, "orders.flow", "let orders = " + json.dumps(orders) + "\n" + ORDERS)
    products = [{"id": 1, "sku": "A"}, {"id": 2, "sku": "B"}]
    with FakeApi({"products": products}) as api:
        result = run(flow, api)
        assert result.status == "partial"
        assert [b["order"] for b in sent(api, "/salesorders")] == [10]  # order 11 not sent with half its lines
        [error] = open_errors(flow)
        assert error.record["id"] == 11 and error.line == 8  # the innermost statement that failed
        assert error.scope.get("lines") is None or error.scope["lines"] == []  # the scope at the iteration's start
        api.state.collections["products"].append({"id": 3, "sku": "NOPE"})
        again = retry(flow, api)
        assert again.ok and again.resolved == [error.id]
    [_, retried] = sent(api, "/salesorders")
    assert retried == {"order": 11, "lines": [{"product": 1, "qty": 1}, {"product": 3, "qty": 5},
                                              {"product": 2, "qty": 1}]}


def test_try_around_an_inner_item_lets_it_fail_alone(tmp_path: Path) -> None:
    flow = write(tmp_path, "f.flow", """for each o in [{id: 1, xs: [1, 0, 2]}]
  let total = 0
  for each x in o.xs
    try
      let total = total + 10 / x
    on error
      skip
    end
  end
  emit total
end
""")
    result = flowlang.load(flow).run(state_dir=tmp_path / "state")
    assert result.ok and result.outputs == [15]


# ---- 2. trace keys ----------------------------------------------------------------------------
ITEMS = """use api = http(base_url: env.API)
for each it in items key it.sku
  send {sku: it.sku, price: number(it.price)} to api.post("/items")
end
"""


def test_a_key_keeps_one_open_error_and_a_later_success_resolves_it(tmp_path: Path) -> None:
    bad = [{"sku": "A", "price": "1"}, {"sku": "B", "price": "abc"}]
    flow = write(tmp_path, "items.flow", "param items\n" + ITEMS)
    with FakeApi() as api:
        for _ in range(3):
            assert run(flow, api, params={"items": bad}).status == "partial"
        [error] = open_errors(flow)
        assert error.attempts == 3 and error.key == '"B"'
        good = [{"sku": "B", "price": "2"}]
        fixed = run(flow, api, params={"items": good})
        assert fixed.ok and fixed.resolved == [error.id]
        assert open_errors(flow) == []
        nothing = retry(flow, api, params={"items": []})
        assert nothing.ok and nothing.resolved == []
    skus = [b["sku"] for b in sent(api, "/items")]
    assert skus.count("B") == 1  # the stale record was never sent over the corrected one
    assert skus.count("A") == 3


WATERMARK = """use api = http(base_url: env.API)
use out = file(path: "out.jsonl", mode: "append")
param items = [{id: 1}, {id: 2}, {id: 3}, {id: 4}]
param sink = "api"
for each it in items
  if it.id <= (state.max ?? 0)
    skip
  end
  if sink == "api"
    send it to api.post("/items")
  else
    send {id: it.id, n: number(it.n ?? "x")} to out
  end
  let state.max = it.id
end
"""


def test_a_skipped_record_leaves_its_open_error_open(tmp_path: Path) -> None:
    """A record skipped by a later run sent nothing, so it does not resolve its key's open error. A loop
    that skips what is done (`if it.id <= (state.max ?? 0) skip`, as examples/delta_sync does) failed
    record 3, record 4 moved state.max to 4, and the next run skipped record 3: in a loop whose body
    does I/O that skip resolved error 1 ('resolved: the record went through') and record 3 was never
    sent nor kept, where a loop without I/O (a file's sends) left it open. Both leave it open now, and
    `flowlang retry` sends it (against the state its iteration began with)."""
    flow = write(tmp_path, "f.flow", WATERMARK)
    refused = {3}

    def items(req: Any) -> tuple[int, dict[str, str], Any]:
        if req.body["id"] in refused:
            return 422, {}, {"error": "not now"}
        return 201, {}, req.body

    with FakeApi() as api:
        api.route("POST", "/items", items)
        assert run(flow, api).status == "partial"
        [error] = open_errors(flow)
        refused.clear()
        again = run(flow, api)
        assert again.ok and again.resolved == []  # every record skipped: nothing went through
        assert [e.id for e in open_errors(flow)] == [error.id]
        retried = retry(flow, api)
        assert retried.ok and retried.resolved == [error.id]
    assert [b["id"] for b in sent(api, "/items")] == [1, 2, 3, 4, 3]  # 3 refused, then sent by the retry
    assert open_errors(flow) == []
    # a body without I/O (the file's send) runs its records another way: the same
    files = write(tmp_path / "files", "f.flow", WATERMARK)
    with FakeApi() as api:
        items_n = '[{"id": 1, "n": "1"}, {"id": 2, "n": "bad"}, {"id": 3, "n": "3"}]'
        assert run(files, api, params={"sink": "file", "items": json.loads(items_n)}).status == "partial"
        fixed = '[{"id": 1, "n": "1"}, {"id": 2, "n": "2"}, {"id": 3, "n": "3"}]'
        assert run(files, api, params={"sink": "file", "items": json.loads(fixed)}).ok
        assert len(open_errors(files)) == 1


def test_two_records_of_one_run_with_one_key_are_told_of(tmp_path: Path) -> None:
    """Records are keyed by their `id` without `key`, and one open error is kept per key. Sales rows that
    each carry their customer's id are different records with one key: of two that failed in one run,
    the second's error replaced the first's, and a first that failed and a second that went through
    resolved the first's error; either way the first row was never sent and nothing said so (exit 3 and
    one open error for two failed rows). The run now warns, once per loop, at the loop."""
    rows = '[{id: 7, amount: 5}, {id: 7, amount: 6}, {id: 8, amount: 1}, {id: 8, amount: 2}]'
    write(tmp_path, "f.flow", f"use api = http(base_url: env.API)\nparam down = [5, 6, 1]\n"
                              f"for each r in {rows}\n  if r.amount in down\n    fail \"down\"\n  end\n"
                              '  send r to api.post("/sales")\nend\n')
    with FakeApi() as api:
        env = {"API": api.url}
        proc = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env=env)
        assert proc.returncode == 3, proc.stderr
        told = [json.loads(x) for x in proc.stderr.splitlines() if "two records of the loop" in x]
        assert [(e["level"], e["location"]) for e in told] == [("warning", "f.flow:3:1")], proc.stderr
        assert "have the key 7: the second failed too, and its error replaced the first's" in told[0]["message"]
        again = cli("run", "f.flow", "--param", "down=[5]", "--log-format", "text", cwd=tmp_path, env=env)
        assert again.returncode == 3, again.stderr
        assert ("two records of the loop at f.flow:3:1 in this run have the key 7: the first failed, and the "
                "second went through and resolved its error, so the first was not sent") in again.stderr
        assert "give the loop a key that tells them apart" in again.stderr
        once = cli("run", "f.flow", "--param", "down=[]", "--log-format", "text", cwd=tmp_path, env=env)
        assert once.returncode == 0 and "two records" not in once.stderr  # nothing failed: nothing to say
    assert [b["amount"] for b in sent(api, "/sales")] == [2, 6, 1, 2, 5, 6, 1, 2]


def test_a_key_that_cannot_be_worked_out_is_told_of(tmp_path: Path) -> None:
    """`key o.customer.id` of a record whose customer is a text ('cannot read field id of string') gave
    the record no key without a word: each night's failure of it became one more open error, and the
    retry after a fix sent the record once for each (three runs, three copies at the API). The run
    warns, once per loop, at the loop, with the reason."""
    write(tmp_path, "f.flow", "use api = http(base_url: env.API)\n"
                              'for each o in [{id: 1, customer: "C-1"}, {id: 2, customer: {id: 9}}] key o.customer.id\n'
                              '  if env.BAD != null\n    fail "down"\n  end\n  send o to api.post("/orders")\nend\n')
    with FakeApi() as api:
        env = {"API": api.url, "BAD": "1"}
        for _ in range(2):
            proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env=env)
            assert proc.returncode == 3, proc.stderr
            assert proc.stderr.count("could not be worked out") == 1, proc.stderr
            assert ("warning: the key o.customer.id of the loop at f.flow:2:1 could not be worked out for a record "
                    "(cannot read field 'id' of string \"C-1\"), so it has no key") in proc.stderr
        assert len(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()) == 3  # 1 twice, 2 once


def test_records_are_keyed_by_id_without_key(tmp_path: Path) -> None:
    flow = write(tmp_path, "f.flow", "param rows\nfor each r in rows\n  emit 10 / r.n\nend\n")
    loaded = flowlang.load(flow)
    for _ in range(2):
        loaded.run(params={"rows": [{"id": 7, "n": 0}, {"n": 0}]}, state_dir=tmp_path / "state")
    errors = open_errors(flow)
    assert sorted(e.key or "" for e in errors) == ["", "", "7"]  # no id: no key, one error per failure
    loaded.run(params={"rows": [{"id": 7, "n": 5}]}, state_dir=tmp_path / "state")
    assert [e.key for e in open_errors(flow)] == [None, None]


def test_key_is_a_keyword_only_in_for_each() -> None:
    flow = flowlang.compile('let key = {key: 1}\nfor each k in [key] key k.key\n  emit k.key + key.key\nend\n')
    assert flow.run().outputs == [2]


def test_errors_shows_and_filters_by_key(tmp_path: Path) -> None:
    flow = write(tmp_path, "f.flow", 'for each r in [{id: "x-1"}, {id: 2}]\n  fail "bad {r.id}"\nend\n')
    cli("run", "f.flow", cwd=tmp_path)
    text = cli("errors", "f.flow", cwd=tmp_path).stdout
    assert 'key "x-1"' in text and "key 2" in text
    only = cli("errors", "f.flow", "--key", "x-1", "--json", cwd=tmp_path).stdout.splitlines()
    assert [json.loads(line)["key"] for line in only] == ["x-1"]
    assert flow.exists()


def test_errors_group_json_gives_one_object_per_group_with_its_count(tmp_path: Path) -> None:
    # the view of a bad night, for a script: --group --json is grouped too, not the errors one by one
    write(tmp_path, "f.flow", 'for each r in range(0, 9)\n  if r < 7\n    fail "no price"\n  end\n'
          '  fail "no stock"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    grouped = cli("errors", "f.flow", "--group", "--json", cwd=tmp_path)
    assert grouped.returncode == 0, grouped.stderr
    groups = [json.loads(line) for line in grouped.stdout.splitlines()]
    assert groups == [{"message": "no price", "pattern": "no price", "count": 7, "location": "f.flow:3:5",
                       "first_ids": [1, 2, 3, 4, 5]},
                      {"message": "no stock", "pattern": "no stock", "count": 2, "location": "f.flow:5:3",
                       "first_ids": [8, 9]}]
    empty = tmp_path / "ok.flow"
    empty.write_text("emit 1\n")
    assert cli("errors", str(empty), "--group", "--json", cwd=tmp_path).stdout == ""


def test_errors_group_pages_by_group_with_limit_and_offset(tmp_path: Path) -> None:
    """--limit and --offset were ignored with --group (every group was listed); they now count groups."""
    write(tmp_path, "f.flow", 'for each r in range(0, 6)\n  if r < 3\n    fail "order {r} not found"\n'
          '  else if r < 5\n    fail "no stock"\n  end\n  fail "boom"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    first = cli("errors", "f.flow", "--group", "--limit", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "6 errors in 3 groups (showing groups 1-1)" in first.stdout
    assert "order 0 not found" in first.stdout and "no stock" not in first.stdout and "boom" not in first.stdout
    rest = [json.loads(x)["message"] for x in cli("errors", "f.flow", "--group", "--offset", "1", "--json",
                                                      cwd=tmp_path).stdout.splitlines()]
    assert rest == ["no stock", "boom"]


def test_errors_group_puts_messages_that_differ_only_in_their_values_together(tmp_path: Path) -> None:
    """"order 17 not found" and "order 18 not found" are one group (before: one group per message); an id,
    a quoted value and an HTTP error's path and id too; different kinds of error stay apart."""
    orders = [{"id": 17}, {"id": 18}, {"id": 19, "ref": "A-1"}, {"id": 20, "ref": "B-22"},
              {"id": 21, "cus": "cus_9fX2QwZ1"}, {"id": 22, "cus": "cus_Ab77Kq0Z"}, {"id": 23, "why": "no stock"},
              {"id": 24, "why": "no price"}, {"id": 25, "url": "/orders/25"}, {"id": 26, "url": "/orders/26"},
              {"id": 27, "url": "/customers/7"}]
    write(tmp_path, "in.json", json.dumps(orders))
    write(tmp_path, "f.flow", """use api = http(base_url: env.API)
for each o in input
  if o.url != null
    call api.get(o.url)
  else if o.why != null
    fail "order {o.id}: '{o.why}'"
  else if o.cus != null
    fail "customer {o.cus} not found"
  else if o.ref != null
    fail "bad ref '{o.ref}' for order {o.id}"
  end
  fail "order {o.id} not found"
end
""")
    with FakeApi() as api:
        api.route("GET", "/orders/25", lambda req: (404, {}, {"error": "no such order"}))
        api.route("GET", "/orders/26", lambda req: (404, {}, {"error": "no such order"}))
        api.route("GET", "/customers/7", lambda req: (404, {}, {"error": "no such customer"}))
        ran = cli("run", "f.flow", "--input", "in.json", cwd=tmp_path, env={"API": api.url})
        assert ran.returncode == 3, ran.stderr
        assert api.count("GET", "/orders/25") == 1
    grouped = cli("errors", "f.flow", "--group", "--json", cwd=tmp_path)
    assert grouped.returncode == 0, grouped.stderr
    groups = [json.loads(line) for line in grouped.stdout.splitlines()]
    found = {(g["count"], g["pattern"], tuple(g["first_ids"])) for g in groups}
    assert {(c, i) for c, _, i in found} == {(2, (1, 2)), (2, (3, 4)), (2, (5, 6)), (1, (7,)), (1, (8,)),
                                             (2, (9, 10)), (1, (11,))}, found
    by_ids = {tuple(g["first_ids"]): g for g in groups}
    assert by_ids[(1, 2)]["message"] == "order 17 not found"  # the first message is the example
    assert by_ids[(1, 2)]["pattern"] == "order <n> not found"
    assert by_ids[(3, 4)]["pattern"] == "bad ref '<value>' for order <n>"
    assert by_ids[(5, 6)]["pattern"] == "customer <id> not found"
    assert "/orders/<n> answered <n> Not Found" in by_ids[(9, 10)]["pattern"]
    assert "/customers/<n>" in by_ids[(11,)]["pattern"]  # another path: another group
    text = cli("errors", "f.flow", "--group", cwd=tmp_path).stdout
    assert "11 errors in 7 groups" in text
    assert "     2  order 17 not found\n        all like: order <n> not found\n        at f.flow:12:3; #1, #2" in text
    assert "all like" not in text.split("order 23")[1].split("\n")[1]  # a group of one message says nothing more


# ---- 3. errors survive edits ------------------------------------------------------------------
def test_errors_survive_comments_lines_and_new_loops_but_not_a_changed_loop(tmp_path: Path) -> None:
    body = 'for each r in rows\n  if r.n == 0\n    fail "zero"\n  end\n  send r to api.post("/got")\nend\n'
    head = "use api = http(base_url: env.API)\nparam rows = [{id: 1, n: 0}, {id: 2, n: 0}]\n"
    flow = write(tmp_path, "f.flow", head + body)
    with FakeApi() as api:
        assert run(flow, api).status == "partial"
        # an edit elsewhere: comments, a new loop before it, other statements
        flow.write_text(head + "# nightly\n\nfor each x in [1]\n  log info \"first\"\nend\nlet unused = 1\n"
                        + body.replace('fail "zero"', 'log warn "zero, sent anyway"'))
        [one, two] = open_errors(flow)
        assert retry(flow, api, error_id=one.id).ok
        flow.write_text(head + body.replace("for each r in rows", "for each row in rows").replace("r.", "row.")
                        .replace("send r", "send row"))
        env = {"API": api.url, "FLOWLANG_STATE_DIR": str(tmp_path / "state")}
        proc = cli("retry", "f.flow", cwd=tmp_path, env=env)
        again = retry(flow, api)  # embedded: what the CLI exits with, and the job as the store keeps it
    assert proc.returncode == 1, proc.stderr
    assert "cannot be replayed" in proc.stderr
    # what to do: it said only 'left open'
    assert f"then resolve the error by hand: flowlang resolve f.flow {two.id})" in proc.stderr, proc.stderr
    assert [e.id for e in open_errors(flow)] == [two.id]  # left open
    assert [b["id"] for b in sent(api, "/got")] == [1]
    assert (again.status, int(again.exit_status), again.ok) == ("failed", 1, False)
    assert again.left_open == f"error {two.id} cannot be replayed; left open" and again.error is None
    jobs = cli("jobs", "f.flow", "--json", "--last", "2", cwd=tmp_path, env=env)
    # before: both retries were recorded as ok (so no alert, and a metrics file said ok) though the CLI exited 1
    assert [(j["kind"], j["status"], j["message"]) for j in map(json.loads, jobs.stdout.splitlines())] == [
        ("retry", "failed", f"error {two.id} cannot be replayed; left open")] * 2


def test_after_a_loop_is_added_before_it_a_later_success_resolves_and_retry_sends_no_old_copy(
        tmp_path: Path) -> None:
    """An error points at its loop as 'o in rows #1' (its variables, its list, its place among all the
    outermost loops). A loop added before it made it 'o in rows #2': retry still found it (the only loop
    over rows), but a later run that sent the record again (v2) did not resolve the error, a new failure
    of its key made a second open error, and `flowlang retry` then sent the old copy (v1) over the new
    one. Open errors follow their loop to its identity now, when a run starts."""
    body = ('for each o in rows\n  if o.id == 2 and version == 1\n    fail "not yet"\n  end\n'
            '  send o + {v: version} to api.post("/got")\nend\n')
    head = "use api = http(base_url: env.API)\nparam version = 1\nparam rows = [{id: 1}, {id: 2}]\n"
    flow = write(tmp_path, "f.flow", head + body)
    with FakeApi() as api:
        assert run(flow, api).status == "partial"
        [error] = open_errors(flow)
        flow.write_text(head + 'for each c in ["a"]\n  log info "checks {c}"\nend\n' + body)
        assert run(flow, api, params={"version": 1}).status == "partial"  # fails again: the same error
        [again] = open_errors(flow)
        assert (again.id, again.attempts) == (error.id, 2)
        fixed = run(flow, api, params={"version": 2})
        assert fixed.ok and fixed.resolved == [error.id]
        assert open_errors(flow) == []
        assert retry(flow, api).resolved == []
    assert [(b["id"], b["v"]) for b in sent(api, "/got")] == [(1, 1), (1, 1), (1, 2), (2, 2)]


def test_a_retry_replays_into_its_own_loop_of_two_over_the_same_list(tmp_path: Path) -> None:
    """Two loops over the same list (one posts to /a, the next to /b) are 'o in rows #1' and '#2'. A loop
    added before them made the /a loop '#2': the retry of an error of the /b loop replayed it in the /a
    loop, so record 2 went to /a twice and never to /b, and its error was resolved. An error keeps its
    loop's place among the loops of its variables and list, which other loops do not change."""
    loops = ('for each o in rows\n  send o to api.post("/a")\nend\n'
             'for each o in rows\n  if o.id == 2 and env.BAD != null\n    fail "not yet"\n  end\n'
             '  send o to api.post("/b")\nend\n')
    head = "use api = http(base_url: env.API)\nparam rows = [{id: 1}, {id: 2}]\n"
    flow = write(tmp_path, "f.flow", head + loops)
    with FakeApi() as api:
        env = {"API": api.url, "BAD": "1"}
        assert flowlang.load(flow).run(env=env, state_dir=tmp_path / "state").status == "partial"
        flow.write_text(head + 'for each c in ["a"]\n  log info "checks {c}"\nend\n' + loops)
        done = retry(flow, api)
        assert done.ok and len(done.resolved) == 1
    assert [b["id"] for b in sent(api, "/a")] == [1, 2]
    assert [b["id"] for b in sent(api, "/b")] == [1, 2]


def test_a_loop_over_the_same_list_added_before_leaves_the_error_open(tmp_path: Path) -> None:
    """Of two loops over `rows` (to /a, then to /b), an error of the /b loop, after a third loop over `rows`
    was added before them, was replayed in the loop that now had its place (the /a one), and a run's
    success in that loop resolved it: record 2 reached /a again and never /b. Which loop it is cannot be
    told now: retry leaves it open saying why (exit 1), and no success resolves it by that identity."""
    loops = ('for each o in rows\n  send o to api.post("/a")\nend\n'
             'for each o in rows\n  if o.id == 2 and env.BAD != null\n    fail "not yet"\n  end\n'
             '  send o to api.post("/b")\nend\n')
    head = "use api = http(base_url: env.API)\nparam rows = [{id: 1}, {id: 2}]\n"
    flow = write(tmp_path, "f.flow", head + loops)
    with FakeApi() as api:
        env = {"API": api.url, "BAD": "1"}
        assert flowlang.load(flow).run(env=env, state_dir=tmp_path / "state").status == "partial"
        flow.write_text(head + 'for each o in rows\n  log info "checks {o.id}"\nend\n' + loops)
        state = {"API": api.url, "FLOWLANG_STATE_DIR": str(tmp_path / "state")}
        proc = cli("retry", "f.flow", cwd=tmp_path, env=state)
        assert proc.returncode == 1, proc.stderr
        assert "the flow has 3 loops over `o in rows` now, 2 when it failed, so which one is its loop cannot be " \
            "told; left open" in proc.stderr, proc.stderr
        assert run(flow, api).resolved == []
        assert len(open_errors(flow)) == 1
    assert [b["id"] for b in sent(api, "/a")] == [1, 2, 1, 2]
    assert [b["id"] for b in sent(api, "/b")] == [1, 1, 2]


# ---- 4. retry ---------------------------------------------------------------------------------
PRODUCTS = """use api = http(base_url: env.API)
use out = file(path: "out.jsonl", mode: "append")
call api.get("/products", pages: {style: "page", size: 2, records: "data"}) as products
for each o in [{id: 1, sku: "A", qty: "1"}, {id: 2, sku: "C", qty: "x"}]
  for each p in products
    if p.sku == o.sku
      send {order: o.id, product: p.id, qty: number(o.qty)} to out
    end
  end
end
"""


def test_a_retry_leaves_open_an_error_whose_iteration_read_a_record_stream(tmp_path: Path) -> None:
    """The error keeps the values its iteration reads, but a record stream (a paginated `call`, read page by
    page) cannot be kept, and a retry runs no `call`: the replay's inner loop over `products` read nothing
    (no request was made), sent nothing, and the retry resolved the error ('resolved 1'): order 2 was never
    written. The retry now says so and leaves the error open (exit 1); a run sends it."""
    flow = write(tmp_path, "f.flow", PRODUCTS)
    products = [{"id": 10, "sku": "A"}, {"id": 11, "sku": "B"}, {"id": 12, "sku": "C"}]
    with FakeApi({"products": products}) as api:
        api.route("GET", "/products", lambda req: paged(products, req, "page", api.url))
        assert run(flow, api).status == "partial"
        [error] = open_errors(flow)
        assert cli("edit", "f.flow", str(error.id), "--set", 'qty="2"', "--state-dir", "state",
                   cwd=tmp_path).status == 0
        asked = api.count("GET", "/products?page=1&per_page=2")
        done = cli("retry", "f.flow", "--state-dir", "state", "--log-format", "text", cwd=tmp_path,
                   env={"API": api.url})
        assert done.status == 1, done.stderr
        assert (f"error {error.id}: its iteration reads `products` (a record stream, read page by page and never "
                "kept with an error)") in done.stderr
        assert "so a replay would read it as null; left open" in done.stderr
        assert [e.id for e in open_errors(flow)] == [error.id]
        assert api.count("GET", "/products?page=1&per_page=2") == asked
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(x)["order"] for x in lines] == [1]


INDEXED = """use src = file(path: "products.json")
use out = file(path: "out.jsonl", mode: "append")
call src.read() as products
let by_sku = index_by(products, "sku")
for each o in [{id: 1, sku: "s5", qty: "1"}, {id: 2, sku: "s7", qty: "x"}]
  let p = by_sku[o.sku]
  send {order: o.id, price: p.price, qty: number(o.qty)} to out
end
"""


def test_a_retry_does_not_work_out_a_let_from_a_calls_answer_as_null(tmp_path: Path) -> None:
    """A top-level `let` built from a `call`'s answer was worked out again by the retry from a null:
    `index_by(products, "sku")` of null is {}, so when the error had left `by_sku` out (over
    max_error_bytes) the replay sent order 2 with the price null and resolved its error. Such a `let` is
    left to the saved scope: replayed when the error kept it, left open (exit 1) when it did not."""
    products = [{"sku": f"s{i}", "price": i, "pad": "x" * 100} for i in range(100)]
    (tmp_path / "products.json").write_text(json.dumps(products))
    write(tmp_path, "f.flow", INDEXED)
    state = ["--state-dir", "state"]
    assert cli("run", "f.flow", *state, "--max-error-bytes", "5000", cwd=tmp_path).status == 3
    [error] = open_errors_in(tmp_path)
    assert error.note is not None and "the value of by_sku not kept" in error.note
    cli("edit", "f.flow", str(error.id), "--set", 'qty="2"', *state, cwd=tmp_path)
    done = cli("retry", "f.flow", *state, "--log-format", "text", cwd=tmp_path)
    assert done.status == 1, done.stderr
    assert "its iteration reads `by_sku` (not kept with the error: see its note)" in done.stderr
    assert [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()] == \
        [{"order": 1, "price": 5, "qty": 1}]
    # kept with the error (no cap), the saved index is the one replayed
    cli("resolve", "f.flow", "--all", *state, cwd=tmp_path)
    assert cli("run", "f.flow", *state, "--max-error-bytes", "0", cwd=tmp_path).status == 3
    [error] = open_errors_in(tmp_path)
    cli("edit", "f.flow", str(error.id), "--set", 'qty="2"', *state, cwd=tmp_path)
    assert cli("retry", "f.flow", *state, cwd=tmp_path).status == 0
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[-1]) == {"order": 2, "price": 7, "qty": 2}


def open_errors_in(folder: Path) -> list[Any]:
    flow = flowlang.load(folder / "f.flow")
    store = flow.store(folder / "state")
    try:
        return store.open_errors(flow.key)
    finally:
        store.close()


RATES = """use api = http(base_url: env.API)
use out = file(path: "out/amounts.jsonl")
param rows = [{id: 1, cur: "EUR"}, {id: 2, cur: "SEK"}, {id: 3, cur: "EUR"}]
for each r in rows
  lookup api.get("/rates", query: {cur: r.cur}) as rate
  if rate == null
    fail "no rate for {r.cur}"
  end
  send {id: r.id, rate: rate.rate} to out
end
"""


def test_retry_appends_to_an_overwrite_file_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    flow = write(tmp_path, "f.flow", RATES)
    out = tmp_path / "out" / "amounts.jsonl"
    with FakeApi({"rates": [{"cur": "EUR", "rate": 2}]}) as api:
        assert run(flow, api).status == "partial"
        api.state.collections["rates"].append({"cur": "SEK", "rate": 3})
        env = {"API": api.url, "FLOWLANG_STATE_DIR": str(tmp_path / "state")}
        dry = cli("retry", "f.flow", "--dry-run", cwd=tmp_path, env=env)
        assert dry.returncode == 0, dry.stderr
        assert "would resolve 1" in dry.stderr and "dry run" in dry.stderr
        assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [1, 3]
        assert len(open_errors(flow)) == 1
        done = cli("retry", "f.flow", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [1, 3, 2]
    jobs = [j["kind"] for j in flowlang.load(flow).store(tmp_path / "state").jobs(flowlang.load(flow).key)]
    assert jobs[:2] == ["retry", "retry"]


def test_a_send_that_may_have_arrived_says_a_retry_may_send_it_twice(tmp_path: Path) -> None:
    """A POST that timed out after it was sent (the API took the order and answered late) failed its
    record with 'no complete answer within 1s (timeout)', and `flowlang retry` sent it again: the API
    had the order twice, with nothing to tell the user to look first. Such a record's error (a plain
    send, and a batched one answered by a gateway's 502) now says the request may have reached the API
    and that a retry may send it twice; `send ... once` kept its key pending and said so already."""
    from fakeapi import slow

    write(tmp_path, "connectors/shop.toml", 'name = "shop"\nbase_url = "{base_url}"\n[config]\n'
                                            'base_url = { required = true }\n[operations.create_items]\n'
                                            'method = "POST"\npath = "/items/batch"\n'
                                            'batch = { max = 10, body = "items", results = "results" }\n')
    flow = write(tmp_path, "f.flow", 'use api = http(base_url: env.API, timeout: 0.5)\n'
                                     'use shop = shop(base_url: env.API)\n'
                                     'for each o in [{id: 1}]\n  send o to api.post("/orders")\nend\n'
                                     'for each i in [{sku: "A"}]\n  send i to shop.create_items batch 10\nend\n')
    with FakeApi() as api:
        api.route("POST", "/orders", slow(1.0, lambda req: (201, {}, {"id": 1})))
        api.route("POST", "/items/batch", lambda req: (502, {}, {"error": "bad gateway"}))
        result = run(flow, api)
        assert result.status == "partial"
        [timed_out, gateway] = open_errors(flow)
    assert "no complete answer within 0.5s (timeout); the request may have reached api (no answer said it did " \
        "not), so a retry may send it twice: check there first" in timed_out.message, timed_out.message
    assert "answered 502" in gateway.message and "the request may have reached shop" in gateway.message, \
        gateway.message


def test_retry_exits_3_when_an_error_stays_open(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", RATES)
    with FakeApi({"rates": [{"cur": "EUR", "rate": 2}]}) as api:
        env = {"API": api.url}
        assert cli("run", "f.flow", cwd=tmp_path, env=env).returncode == 3
        proc = cli("retry", "f.flow", cwd=tmp_path, env=env)
        assert proc.returncode == 3
        assert "still failing 1" in proc.stderr
        errors = [json.loads(x) for x in cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [e["attempts"] for e in errors] == [2]


def test_retry_of_several_ids_skips_one_resolved_meanwhile(tmp_path: Path) -> None:
    """`flowlang retry f.flow --id 1 --id 2` when error 1 had been resolved meanwhile (by hand, or by a
    later run) said 'error 1 is already resolved' and exited 2 without retrying error 2; with one id
    it exited 0. A resolved one is skipped, saying so, and the others are retried; an id that is no
    error at all still stops the command (exit 2, nothing retried)."""
    write(tmp_path, "f.flow", 'use api = http(base_url: env.API)\nparam rows = [{id: 1}, {id: 2}]\n'
                              'for each r in rows\n  send r to api.post("/got")\nend\n')
    broken = [True]
    got: list[Any] = []

    def receive(req: Any) -> tuple[int, dict[str, str], Any]:
        if broken[0]:
            return 422, {}, {"error": "not today"}
        got.append(req.body)
        return 201, {}, {}

    with FakeApi() as api:
        api.route("POST", "/got", receive)
        env = {"API": api.url}
        assert cli("run", "f.flow", cwd=tmp_path, env=env).returncode == 3
        listed = cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()
        [one, two] = [json.loads(line)["id"] for line in listed]
        assert cli("resolve", "f.flow", str(one), cwd=tmp_path).returncode == 0
        broken[0] = False
        missing = cli("retry", "f.flow", "--id", str(two), "--id", "999", cwd=tmp_path, env=env)
        assert missing.returncode == 2 and "no open error 999" in missing.stderr
        assert got == []
        both = cli("retry", "f.flow", "--id", str(one), "--id", str(two), "--log-format", "text",
                       cwd=tmp_path, env=env)
        assert both.returncode == 0, both.stderr
        assert f"error {one} is already resolved" in both.stderr
        assert [b["id"] for b in got] == [2]
    assert "no open errors" in cli("errors", "f.flow", cwd=tmp_path).stdout


def test_a_retry_takes_a_param_without_default_from_the_saved_scope(tmp_path: Path) -> None:
    """flowlang retry of a flow with `param since` (no default) refused with 'missing param since: give
    it with --param since=VALUE', though each failed iteration's saved scope holds it (LANGUAGE.md 5:
    the iterations run again from their saved record and scope). Given with --param, that value wins."""
    (tmp_path / "f.flow").write_text('param since\nfor each n in [1, 2]\n  if n == 2 and env.FIXED == null\n'
                                     '    fail "record {n} failed"\n  end\n  emit {n: n, since: since}\nend\n')
    run = cli("run", "f.flow", "--param", "since=2024-05-01", "--log-format", "text", cwd=tmp_path)
    assert run.status == 3, run.stderr
    retry = cli("retry", "f.flow", "--log-format", "text", cwd=tmp_path, env={"FIXED": "1"})
    assert retry.status == 0, retry.stderr
    assert retry.stdout == '{"n":2,"since":"2024-05-01"}\n'
    assert "missing param" not in retry.stderr


def test_an_error_kept_under_1_0_is_resolved_by_a_run_whose_key_is_1(tmp_path: Path) -> None:
    """Trace keys write a key's numbers canonically (runtime/keys.py): a record keyed 1.0 and one keyed 1
    are one key, so a later success of either resolves the other's error, and a failure of it replaces
    it (one open error per key). An error an earlier version kept under "1.0" (or `[2.50]`) is read under
    its canonical text: before, the run whose key was 1 left it open, and a retry sent it once more."""
    flow = write(tmp_path, "f.flow", 'use out = file(path: "out.jsonl", mode: "append")\nparam rows\n'
                 "for each r in rows key r.id\n  if r.ok == false\n    fail \"bad {r.n}\"\n  end\n"
                 "  send {n: r.n} to out\nend\n")

    def night(rows: list[dict[str, Any]]) -> flowlang.Result:
        return flowlang.load(flow).run(params={"rows": rows}, state_dir=tmp_path / "state")

    from decimal import Decimal
    first = night([{"id": Decimal("1.0"), "n": 1, "ok": False}, {"id": [Decimal("2.50")], "n": 2, "ok": False}])
    assert first.status == "partial"
    assert sorted(e.key for e in open_errors(flow)) == ["1", "[2.5]"]
    store = flowlang.load(flow).store(tmp_path / "state")
    try:  # as the version before kept them: the numbers as they came
        with store.db:
            store.db.execute("update errors set trace_key = '1.0' where trace_key = '1'")
            store.db.execute("update errors set trace_key = '[2.50]' where trace_key = '[2.5]'")
    finally:
        store.close()
    by_key = {e.key: e for e in open_errors(flow)}
    assert set(by_key) == {"1.0", "[2.50]"}
    listed = cli("errors", "f.flow", "--state-dir", "state", "--key", "1", "--json", cwd=tmp_path).stdout
    assert [json.loads(line)["id"] for line in listed.splitlines()] == [by_key["1.0"].id]
    failed = night([{"id": [Decimal("2.5")], "n": 3, "ok": False}])  # replaces the open error of its key
    assert failed.status == "partial"
    [again] = [e for e in open_errors(flow) if e.id == by_key["[2.50]"].id]
    assert again.attempts == 2 and len(open_errors(flow)) == 2
    fixed = night([{"id": 1, "n": 4, "ok": True}, {"id": [Decimal("2.5000")], "n": 5, "ok": True}])
    assert fixed.ok and sorted(fixed.resolved) == sorted(e.id for e in by_key.values())
    assert open_errors(flow) == []
    assert [json.loads(x)["n"] for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [4, 5]
