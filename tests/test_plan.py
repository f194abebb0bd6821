"""`flowlang plan` against a real server on 127.0.0.1 (TESTING.md section 1): live reads, no
writes, no state; the plan lists exactly what the real run then sends, and what the requests cost
under the rate limit."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import cli
from fakeapi import FakeApi, paged

FLOW = """flow "Customers and invoices"
use shop = http(base_url: env.API, rate_limit: "1200/minute")
call shop.get("/orders", pages: {style: "cursor", cursor: "next_cursor", records: "results", size: 3}) as orders
for each o in orders
  lookup shop.get("/customers", query: {email: o.email}) as c
  if c == null
    send {email: o.email, name: o.name} to shop.post("/customers") as made
  else
    send {name: o.name} to shop.put('/customers/{id}', id: c.id)
  end
  send {order: o.id, total: o.total * 2} to shop.post("/invoices")
  let state.last = o.id
end
"""

# c2 and c0 (orders 2 and 4) are new, the others are known: a new customer seen twice would be created
# once by the run (its second lookup finds it) but twice in the plan, whose writes are not made
ORDERS = [{"id": i, "email": f"c{i % 4}@x.test" if i <= 4 else f"c{1 + 2 * (i % 2)}@x.test", "name": f"Name {i}",
           "total": Decimal(f"{i}.25")} for i in range(1, 11)]


def server() -> FakeApi:
    api = FakeApi({"customers": [{"id": 1, "email": "c1@x.test"}, {"id": 3, "email": "c3@x.test"}],
                   "invoices": []})
    api.route("GET", r"^/orders$", lambda req: paged(ORDERS, req, "cursor", api.url))
    return api


def writes_at(api: FakeApi) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in api.requests:
        if r.method != "GET":
            out.setdefault(f"{r.method} {r.path}", []).append(r.body)
    return out


def test_the_plan_lists_exactly_what_the_run_then_sends(tmp_path: Path) -> None:
    flow = tmp_path / "sync.flow"
    flow.write_text(FLOW)
    state = str(tmp_path / "state")
    with server() as api:
        planned = cli("plan", str(flow), "--json", "--state-dir", state, env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        assert writes_at(api) == {}  # the plan sent nothing
        reads_in_plan = sum(1 for r in api.requests if r.method == "GET")
        plan = json.loads(planned.stdout, parse_float=Decimal)
        api.state.requests.clear()
        done = cli("run", str(flow), "--state-dir", state, env={"API": api.url})
        assert done.returncode == 0, done.stderr
        sent = writes_at(api)
        put_bodies = [r.body for r in api.requests if r.method == "PUT"]
    planned_writes: dict[str, list[Any]] = {}
    for w in plan["writes"]:
        target = w["target"]
        if target == "PUT /customers/{id}":
            continue
        planned_writes[target] = w["payloads"]
        assert w["records"] == len(w["payloads"])
    puts = {k: v for k, v in sent.items() if k.startswith("PUT")}
    assert planned_writes == {k: v for k, v in sent.items() if not k.startswith("PUT")}
    put_plan = next(w for w in plan["writes"] if w["target"] == "PUT /customers/{id}")
    assert put_plan["payloads"] == put_bodies and len(puts) == 2  # /customers/1 and /customers/3
    # the branch each record took: new customers created, known ones updated
    assert len(planned_writes["POST /customers"]) == 2 and put_plan["records"] == 8
    assert planned_writes["POST /invoices"][0] == {"order": 1, "total": Decimal("2.50")}
    shop = next(c for c in plan["connections"] if c["connection"] == "shop")
    assert shop["reads"] == reads_in_plan == 4 + 4  # 4 pages, 4 distinct customer lookups (cached)
    assert shop["writes"] == 20 and shop["requests"] == 28
    assert shop["rate_interval"] == Decimal("0.05")


def test_the_plan_has_no_effect_on_state_or_the_delta(tmp_path: Path) -> None:
    flow = tmp_path / "sync.flow"
    flow.write_text(FLOW + 'emit {last: state.last, plan: job.plan}\n')
    state = str(tmp_path / "state")
    with server() as api:
        planned = cli("plan", str(flow), "--state-dir", state, env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        done = cli("run", str(flow), "--state-dir", state, env={"API": api.url})
    assert json.loads(done.stdout.splitlines()[-1]) == {"last": 10, "plan": False}
    text = planned.stdout
    assert "plan of Customers and invoices: read 10 records, nothing was written" in text
    assert "shop.post  POST /customers: 2 records" in text
    assert "shop.put  PUT /customers/{id}: 8 records" in text
    assert '1. {"email":"c1@x.test","name":"Name 1"}' not in text  # c1 exists: updated, not created
    assert '1. {"email":"c2@x.test","name":"Name 2"}' in text
    assert "... and 7 more (--json shows all)" in text
    assert "shop: 28 requests in all, rate 20/second: at least 2 s" in text


def test_the_cost_under_a_rate_limit(tmp_path: Path) -> None:
    flow = tmp_path / "bulk.flow"
    flow.write_text('use api = http(base_url: env.API, rate_limit: "60/minute")\n'
                    "for each i in range(0, 1000)\n  send {n: i} to api.post(\"/products\")\nend\n")
    with FakeApi() as api:
        planned = cli("plan", str(flow), env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        assert api.requests == []
    assert "api: 1,000 POST /products, rate 60/minute: at least 16 min 40 s" in planned.stdout


def test_a_short_run_without_a_rate_limit_is_not_said_to_take_a_second(tmp_path: Path) -> None:
    """Without a rate limit the least time is the requests at the reads' latency: a few milliseconds
    were rounded up and shown as 'at least 1 s'; a file destination, of which nothing is measured, was
    'at least 0 s'; one read was '1 reads'. Now 'at least 12 ms', no time for the file, '1 read'."""
    flow = tmp_path / "small.flow"
    flow.write_text('use api = http(base_url: env.API)\nuse out = file(path: "out.jsonl")\n'
                    'call api.get("/customers") as cs\n'
                    'for each c in cs\n  send {n: c.id} to api.post("/invoices")\n  send c to out\nend\n')
    with server() as api:
        planned = cli("plan", str(flow), env={"API": api.url})
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert "  api: 1 read, " in "\n".join(lines)
    total = next(line for line in lines if line.startswith("  api: 3 requests in all: at least "))
    assert total.endswith(" ms"), total
    assert "  out: 2 requests in all" in lines
    assert "at least 0 s" not in planned.stdout and "at least 1 s" not in planned.stdout


def test_paths_built_from_records_are_one_destination(tmp_path: Path) -> None:
    flow = tmp_path / "prices.flow"
    flow.write_text('use api = http(base_url: env.API, rate_limit: "60/minute")\n'
                    'for each i in range(0, 600)\n  send {price: i} to api.patch("/products/SKU-{i}")\nend\n'
                    'send {done: true} to api.post("/runs")\n')
    with FakeApi() as api:
        planned = cli("plan", str(flow), env={"API": api.url})
        as_json = cli("plan", str(flow), "--json", env={"API": api.url})
        assert api.requests == []
    assert planned.returncode == 0, planned.stderr
    assert "api.patch  PATCH /products/{...}: 600 records to 600 different paths" in planned.stdout
    assert "api.post  POST /runs: 1 record\n" in planned.stdout
    assert "api: 600 PATCH /products/{...}, rate 60/minute: at least 10 min" in planned.stdout
    writes = {w["target"]: w for w in json.loads(as_json.stdout)["writes"]}
    assert writes["PATCH /products/{...}"]["paths"] == 600 and writes["POST /runs"]["paths"] == 1
    assert writes["PATCH /products/{...}"]["payloads"][:2] == [{"price": 0}, {"price": 1}]


def test_the_plan_says_which_sends_the_ledger_would_skip(tmp_path: Path) -> None:
    """testing.md: a plan consults the ledger and shows what would be skipped. It listed only the
    records it would send: nothing said that the others were left out because they were sent before
    (`once`) or had not changed (`if changed`)."""
    flow = tmp_path / "sync.flow"
    flow.write_text('use api = http(base_url: env.API)\nfor each n in input\n'
                    '  send {n: n} to api.post("/orders") key n once\nend\n')
    (tmp_path / "three.json").write_text("[1, 2, 3]")
    (tmp_path / "four.json").write_text("[1, 2, 3, 4]")
    with FakeApi() as api:
        done = cli("run", str(flow), "--input", str(tmp_path / "three.json"), env={"API": api.url})
        assert done.returncode == 0, done.stderr
        planned = cli("plan", str(flow), "--input", str(tmp_path / "four.json"), env={"API": api.url})
        as_json = cli("plan", str(flow), "--input", str(tmp_path / "four.json"), "--json", env={"API": api.url})
        assert len(writes_at(api)["POST /orders"]) == 3
    assert planned.returncode == 0, planned.stderr
    assert ("plan of sync: read 4 records, nothing was written; 3 sends skipped: the ledger has them "
            "(sent before with once, or unchanged with if changed)") in planned.stdout
    assert "api.post  POST /orders: 1 record" in planned.stdout
    plan = json.loads(as_json.stdout)
    assert plan["skipped"] == 3 and plan["writes"][0]["payloads"] == [{"n": 4}]


BATCHING = """name = "shop"
base_url = "{base_url}"

[config]
base_url = { required = true }

[operations.list_items]
method = "GET"
path = "/source"
pagination = { style = "page", size = 10, records = "data", total_pages = "total_pages" }

[operations.create_items]
method = "POST"
path = "/items/batch"
batch = { max = 100, body = "items", results = "results", ok = "ok", error = "error" }
"""


def test_a_batched_send_over_pages_is_planned_as_its_least_number_of_requests(tmp_path: Path) -> None:
    """100 records read in pages of 10 and sent `batch 7`: the plan counted 17 batch requests (each
    page's remainder planned as a batch of its own, since a planned batch is "sent" at once) and its
    least duration from them, while the run made 15. A plan counts ceil(records / batch) now: the
    least the run makes, as the plan's durations are."""
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(BATCHING)
    flow = tmp_path / "bulk.flow"
    flow.write_text('use shop = shop(base_url: env.API, rate_limit: env.RATE)\ncall shop.list_items() as items\n'
                    "for each it in items\n  send {n: it.n} to shop.create_items batch 7\nend\n")
    source = [{"n": n} for n in range(1, 101)]
    with FakeApi({"items": []}) as api:
        api.route("GET", r"^/source$", lambda req: paged(source, req, "page", api.url))
        planned = cli("plan", str(flow), "--json", env={"API": api.url, "RATE": "600/minute"})
        assert planned.returncode == 0, planned.stderr
        text = cli("plan", str(flow), env={"API": api.url, "RATE": "600/minute"})
        done = cli("run", str(flow), env={"API": api.url, "RATE": "100/second"})
        assert done.returncode == 0, done.stderr
        sent = [len(r.body["items"]) for r in api.requests if r.path == "/items/batch"]
    [write] = json.loads(planned.stdout)["writes"]
    assert write["records"] == 100 == sum(sent)
    assert write["requests"] == 15 <= len(sent), sent
    assert "shop: 15 POST /items/batch (100 records), rate 10/second: at least 2 s" in text.stdout


def test_a_send_to_an_operation_that_takes_batches_says_what_batching_would_give(tmp_path: Path) -> None:
    """A send without `batch N` to an operation that takes batches: the plan adds the requests and the
    least time of the largest batch the operation takes (`with batch 100: 1 request, 100 ms`; it said
    '1 requests')."""
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(BATCHING)
    flow = tmp_path / "bulk.flow"
    flow.write_text('use shop = shop(base_url: env.API, rate_limit: env.RATE)\ncall shop.list_items() as items\n'
                    "for each it in items\n  send {n: it.n} to shop.create_items\nend\n")
    for count, said in [(100, "(with batch 100: 1 request, 100 ms)"), (250, "(with batch 100: 3 requests, 300 ms)")]:
        source = [{"n": n} for n in range(1, count + 1)]
        with FakeApi({"items": []}) as api:
            api.route("GET", r"^/source$", lambda req, source=source: paged(source, req, "page", api.url))
            text = cli("plan", str(flow), env={"API": api.url, "RATE": "600/minute"})
            assert text.returncode == 0, text.stderr
            assert not [r for r in api.requests if r.method == "POST"]
        assert f"shop: {count} POST /items/batch, rate 10/second: at least " in text.stdout, text.stdout
        assert said in text.stdout, text.stdout


def test_a_lookup_that_found_nothing_is_asked_again_after_a_planned_write_as_the_run_asks_it(
        tmp_path: Path) -> None:
    """A lookup that found nothing is asked again after a write to the same connection (docs/language.md):
    the plan makes no write, so it took its cached miss and counted 1 read of /customers where the run
    makes 3 (each record's log line is a write between them): 'shop: 1 read' and '4 requests in all'."""
    flow = tmp_path / "again.flow"
    flow.write_text('use shop = http(base_url: env.API)\n'
                    'for each e in ["c9@x.test", "c9@x.test", "c9@x.test"]\n'
                    '  lookup shop.get("/customers", query: {email: e}) as c\n'
                    '  send {email: e, found: c != null} to shop.post("/log")\n'
                    'end\n')
    with FakeApi() as api:
        api.route("GET", r"^/customers$", lambda req: (200, {}, []))
        api.route("POST", r"^/log$", lambda req: (201, {}, req.body))
        planned = cli("plan", str(flow), "--json", env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        assert api.count("POST", "/log") == 0
        shop = next(c for c in json.loads(planned.stdout)["connections"] if c["connection"] == "shop")
        planned_reads = api.count("GET", "/customers")
        api.state.requests.clear()
        done = cli("run", str(flow), env={"API": api.url})
        assert done.returncode == 0, done.stderr
        assert api.count("GET", "/customers") == planned_reads == shop["reads"] == 3  # was 1 in the plan
        assert api.count("POST", "/log") == shop["writes"] == 3 and shop["requests"] == 6


def test_a_plan_shows_payloads_as_sent_not_as_the_store_keeps_them(tmp_path: Path) -> None:
    """A payload with a date or a secret was shown in the store's tagged form: {"t": {"$date": "2024-01-02"},
    "k": {"$secret": "K"}}, which no destination receives (the API got "t": "2024-01-02"). The plan shows it as
    the run sends it, a secret as ***, as flowlang run's output shows one."""
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API)\n'
                                     'send {t: date("2024-01-02"), x: 1.50, k: secret.K} to api.post("/x")\n')
    with FakeApi() as api:
        env = {"API": api.url, "K": "key-" + "k" * 20}
        plan = cli("plan", "f.flow", "--json", cwd=tmp_path, env=env)
        assert plan.status == 0, plan.stderr
        assert cli("run", "f.flow", cwd=tmp_path, env=env).status == 0
        sent = api.requests[0].raw
    payload = json.loads(plan.stdout, parse_float=Decimal)["writes"][0]["payloads"][0]
    assert payload == {"t": "2024-01-02", "x": Decimal("1.50"), "k": "***"}, payload
    assert json.loads(sent, parse_float=Decimal) == {**payload, "k": env["K"]}
    shown = cli("plan", "f.flow", cwd=tmp_path, env=env).stdout
    assert '1. {"t":"2024-01-02","x":1.50,"k":"***"}' in shown, shown


def test_the_reads_and_skips_of_a_flow_it_runs_are_in_the_plan(tmp_path: Path) -> None:
    """A parent that runs `run "child.flow"` for 2 records, the child looking a customer up and sending
    it `once`: the plan listed the child's 2 POSTs but said `api: 2 requests in all`, leaving out its 2
    lookups, which the run then made (4 requests); and once sent, the plan said nothing of the 2 sends the
    ledger would skip. The child's reads and skips count in the plan, as its writes do."""
    (tmp_path / "child.flow").write_text(
        'param n = 1\nuse api = http(base_url: env.API)\n'
        'lookup api.get("/customers", query: {email: "c" + str(n)}) as c\n'
        'send {n: n} to api.post("/orders") key n once\n')
    flow = tmp_path / "parent.flow"
    flow.write_text('for each i in [1, 2]\n  run "child.flow" with {n: i}\nend\n')
    state = str(tmp_path / "state")
    with FakeApi({"customers": [{"id": 1, "email": "c1"}]}) as api:
        planned = cli("plan", str(flow), "--json", "--state-dir", state, env={"API": api.url})
        assert planned.returncode == 0, planned.stderr
        plan_reads = sum(1 for r in api.requests if r.method == "GET")
        api.state.requests.clear()
        done = cli("run", str(flow), "--state-dir", state, env={"API": api.url})
        assert done.returncode == 0, done.stderr
        made = len(api.requests)
        again = cli("plan", str(flow), "--state-dir", state, env={"API": api.url})
    plan = json.loads(planned.stdout)
    cost = next(c for c in plan["connections"] if c["connection"] == "api")
    assert (cost["reads"], cost["writes"], cost["requests"]) == (plan_reads, 2, 4) and made == 4
    assert plan["skipped"] == 0
    assert again.returncode == 0, again.stderr
    assert "nothing was written; 2 sends skipped: the ledger has them" in again.stdout
    assert "api: 2 reads" in again.stdout and "api: 2 requests in all" in again.stdout
