"""The whole flows of docs/cookbook.md, docs/migrating.md and docs/connectors-authoring.md run as the
pages say, against tests/fakeapi.py on 127.0.0.1 (test_docs_snippets only checks them). Each flow is
taken from its page by its `flow "Name"` line, so an edit of the page is what runs; a connector from
the stdlib (or the page's connector file) is pointed at the fake API by adding `base_url:` to its
`use` line. Writes are counted at the receiving side.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, cli
from fakeapi import FakeApi, Request

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


def block(page: str, info: str, first_line: str | None = None) -> str:
    """The last block of docs/PAGE with this info string (and this first line)."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    found = [m.group(2) for m in FENCE.finditer(text)
             if m.group(1).strip() == info and (first_line is None or m.group(2).startswith(first_line))]
    assert found, f"docs/{page} has no ```{info} block starting {first_line!r}"
    return found[-1]


def flow(page: str, name: str, folder: Path, file: str, replace: tuple[str, str] | None = None) -> Path:
    text = block(page, "flow", f'flow "{name}"')
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    (folder / file).write_text(text, encoding="utf-8")
    return folder / file


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def posted(api: FakeApi, method: str, path: str) -> list[Any]:
    return [r.body for r in api.requests if r.method == method and r.path == path]


# ---- cookbook.md ---------------------------------------------------------------------------------


def test_export_lookup_import(tmp_path: Path) -> None:
    orders = [{"number": f"SO-{i}", "email": f" Ann{i % 2}@X.com", "status": "paid",
               "created_at": "2026-05-01T10:00:00Z", "lines": [{"sku": "A", "quantity": "2", "price": "9.95"}]}
              for i in range(1, 4)]
    orders.append({"number": "SO-9", "email": "nobody@x.com", "status": "paid", "created_at": "2026-05-01T10:00:00Z",
                   "lines": []})
    with FakeApi({"customers": [{"id": 10, "email": "ann0@x.com"}, {"id": 11, "email": "ann1@x.com"}],
                  "invoices": []}) as api:
        api.route("GET", "/orders", lambda req: (200, {}, {"data": orders if req.query.get("page") == "1" else []}))
        flow("cookbook.md", "Orders to ERP", tmp_path, "orders_to_erp.flow")
        env = {"SHOP_URL": api.url, "ERP_URL": api.url, "ERP_USER": "u", "SHOP_TOKEN": "t", "ERP_PASSWORD": "p"}
        first = cli("run", "orders_to_erp.flow", cwd=tmp_path, env=env)
        assert first.status == 3, first.stderr
        assert [json.loads(line) for line in first.stdout.splitlines()] == [
            {"order": "SO-1", "invoice": 1001}, {"order": "SO-2", "invoice": 1002}, {"order": "SO-3", "invoice": 1003}]
        assert "order SO-9: no ERP customer has the email nobody@x.com" in first.stderr
        assert posted(api, "GET", "/customers").__len__() == 3  # one lookup per distinct email: cached
        assert posted(api, "POST", "/invoices")[0] == {
            "customer_id": 11, "reference": "SO-1", "date": "2026-05-01",
            "lines": [{"sku": "A", "qty": 2, "price": Decimal("9.95")}], "total": Decimal("19.90")}
        second = cli("run", "orders_to_erp.flow", cwd=tmp_path, env=env)
        assert second.status == 3 and "skipped 3" in second.stderr
        assert second.stdout == first.stdout  # `created` is the recorded answer
        assert len(posted(api, "POST", "/invoices")) == 3  # never invoiced twice
        since = [r.query["updated_since"] for r in api.requests if r.path == "/orders"]
        assert since[0] == "2026-01-01T00:00:00Z" and since[-1] > "2026-05"  # the second run asks from the first


def test_one_to_many_by_a_request_per_record(tmp_path: Path) -> None:
    with FakeApi() as api:
        first_page = [{"id": 1}, {"id": 2}]
        api.route("GET", "/orders", lambda req: (200, {}, {"data": first_page if req.query.get("page") == "1" else []}))

        def lines(req: Request) -> tuple[int, dict[str, str], Any]:
            order = req.match.group(1) if req.match else ""
            return 200, {}, [{"sku": "A", "quantity": "2"}, {"sku": f"B{order}", "quantity": "1"}]

        api.route("GET", r"/orders/(\d+)/lines", lines)
        flow("cookbook.md", "Orders and their lines from the API", tmp_path, "lines.flow")
        result = cli("run", "lines.flow", cwd=tmp_path, env={"SHOP_URL": api.url, "SHOP_TOKEN": "t"})
        assert result.status == 0, result.stderr
    assert rows(tmp_path / "orders.db", "select * from order_lines order by id") == [
        ("1-A", 1, "A", 2), ("1-B1", 1, "B1", 1), ("2-A", 2, "A", 2), ("2-B2", 2, "B2", 1)]


def test_one_to_many_joined_in_memory(tmp_path: Path) -> None:
    write(tmp_path, {"data/orders.csv": "id,email\n1,a@x\n2,b@x\n3,c@x\n",
                     "data/order_lines.csv": "order_id,sku,qty\n1,A,2\n1,B,1\n2,C,5\n"})
    flow("cookbook.md", "Orders with their lines", tmp_path, "join.flow")
    result = cli("run", "join.flow", cwd=tmp_path)
    assert result.status == 3 and "order 3 has no lines" in result.stderr
    assert (tmp_path / "out/orders.jsonl").read_text().splitlines() == [
        '{"id":1,"lines":[{"sku":"A","qty":2},{"sku":"B","qty":1}],"items":3}',
        '{"id":2,"lines":[{"sku":"C","qty":5}],"items":5}']


def test_two_destinations(tmp_path: Path) -> None:
    write(tmp_path, {"data/customers.csv": "id,email,name,country\n1,Ann@X.com,Ann ,no\n2,bob@x.com,Bob,se\n"})
    with FakeApi({"contacts": []}) as api:
        flow("cookbook.md", "Customers to CRM and warehouse", tmp_path, "two.flow")
        env = {"CRM_URL": api.url, "CRM_TOKEN": "t"}
        assert cli("run", "two.flow", cwd=tmp_path, env=env).status == 0
        again = cli("run", "two.flow", cwd=tmp_path, env=env)
        assert again.status == 0 and "sent 2, failed 0, skipped 2" in again.stderr
        assert posted(api, "POST", "/contacts") == [{"email": "ann@x.com", "name": "Ann", "external_id": 1},
                                                    {"email": "bob@x.com", "name": "Bob", "external_id": 2}]
    assert rows(tmp_path / "warehouse.db", "select * from customers") == [(1, "ann@x.com", "Ann", "NO"),
                                                                         (2, "bob@x.com", "Bob", "SE")]


def test_delta_with_a_lag_window(tmp_path: Path) -> None:
    products = [{"id": i, "sku": f"S{i}", "price": "1.50", "updated_at": "2026-05-01T10:00:00Z"} for i in range(5)]

    def page(req: Request) -> tuple[int, dict[str, str], Any]:
        start = int(req.query.get("cursor") or 0)
        nxt = str(start + 2) if start + 2 < len(products) else None
        return 200, {}, {"results": products[start:start + 2], "next_cursor": nxt}

    with FakeApi() as api:
        api.route("GET", "/products", page)
        flow("cookbook.md", "Changed products", tmp_path, "delta.flow")
        env = {"SHOP_URL": api.url, "SHOP_TOKEN": "t"}
        assert cli("run", "delta.flow", cwd=tmp_path, env=env).status == 0
        state = json.loads(cli("state", "delta.flow", cwd=tmp_path).stdout)
        assert cli("run", "delta.flow", cwd=tmp_path, env=env).status == 0
        since = [r.query["updated_since"] for r in api.requests if "cursor" not in r.query]
    assert since[0] == "1969-12-31T23:50:00Z"
    first_start = datetime.fromisoformat(state["last_success_at"].replace("Z", "+00:00"))
    assert since[1] == (first_start - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(rows(tmp_path / "catalog.db", "select * from products")) == 5


def test_batching_to_a_batch_endpoint(tmp_path: Path) -> None:
    csv = "sku,name,price\n" + "".join(f"S{i},Thing {i},{i}.555\n" for i in range(250))
    write(tmp_path, {"data/products.csv": csv})
    with FakeApi({"products": []}) as api:
        flow("cookbook.md", "Products to inFlow", tmp_path, "batch.flow",
             ("token: secret.INFLOW_TOKEN)", "token: secret.INFLOW_TOKEN, base_url: env.INFLOW_URL)"))
        env = {"INFLOW_URL": api.url, "INFLOW_TOKEN": "t", "INFLOW_COMPANY_ID": "c"}
        assert cli("run", "batch.flow", cwd=tmp_path, env=env).status == 0
        again = cli("run", "batch.flow", cwd=tmp_path, env=env)
        assert again.status == 0 and "skipped 250" in again.stderr
        batches = posted(api, "POST", "/products/batch")
    assert [len(b["items"]) for b in batches] == [100, 100, 50]
    assert batches[0]["items"][1] == {"sku": "S1", "name": "Thing 1", "price": Decimal("1.56")}


def test_parallel_sends_under_a_rate_limit_only_what_changed(tmp_path: Path) -> None:
    write(tmp_path, {"data/prices.csv": "sku,price\nA,1\nB,2\nC,3\n"})
    with FakeApi() as api:
        api.route("PATCH", r"/products/.*", lambda req: (200, {}, {"ok": True}))
        flow("cookbook.md", "Prices to the shop", tmp_path, "prices.flow")
        env = {"SHOP_URL": api.url, "SHOP_TOKEN": "t"}
        assert cli("run", "prices.flow", cwd=tmp_path, env=env).status == 0
        write(tmp_path, {"data/prices.csv": "sku,price\nA,1\nB,2.50\nC,3\n"})
        again = cli("run", "prices.flow", cwd=tmp_path, env=env)
        assert again.status == 0 and "sent 1, failed 0, skipped 2" in again.stderr
        patches = sorted((r.path, json.dumps(r.body, default=str)) for r in api.requests)
    assert patches == [("/products/A", '{"price": 1}'), ("/products/B", '{"price": "2.50"}'),
                       ("/products/B", '{"price": 2}'), ("/products/C", '{"price": 3}')]


def test_upsert_by_lookup(tmp_path: Path) -> None:
    write(tmp_path, {"data/contacts.csv": "email,name,phone\nAnn@x.com,Ann,1\nann@x.com,Ann B,2\nbob@x.com,Bob,3\n"})
    with FakeApi({"contacts": [{"id": 5, "email": "bob@x.com", "name": "Bob", "phone": ""}]}) as api:
        flow("cookbook.md", "Upsert contacts", tmp_path, "upsert.flow")
        env = {"CRM_URL": api.url, "CRM_TOKEN": "t"}
        assert cli("run", "upsert.flow", cwd=tmp_path, env=env).status == 0
        assert cli("run", "upsert.flow", cwd=tmp_path, env=env).status == 0
        assert posted(api, "POST", "/contacts") == [{"email": "ann@x.com", "name": "Ann B", "phone": "2"}]
        assert posted(api, "PATCH", "/contacts/5") == [{"email": "bob@x.com", "name": "Bob", "phone": "3", "id": 5}]
        assert len(api.state.collections["contacts"]) == 2


def test_webhook_flow_with_a_saved_delivery(tmp_path: Path) -> None:
    delivery = {"id": 4711, "email": "Ann@X.com", "total_price": "19.90", "line_items": [{"sku": "A", "quantity": 2}]}
    write(tmp_path, {"sample.json": json.dumps(delivery)})
    with FakeApi({"orders": []}) as api:
        flow("cookbook.md", "Shop orders", tmp_path, "shop_orders.flow")
        env = {"ERP_URL": api.url, "ERP_TOKEN": "t"}
        for _ in range(2):
            result = cli("run", "shop_orders.flow", "--input", "sample.json", cwd=tmp_path, env=env)
            assert result.status == 0 and result.stdout == '{"order":"SHOP-4711","erp_id":1001}\n'
        assert posted(api, "POST", "/orders") == [{"reference": "SHOP-4711", "email": "ann@x.com",
                                                   "total": Decimal("19.90"), "lines": [{"sku": "A", "qty": 2}]}]


def test_file_pick_up_and_archive(tmp_path: Path) -> None:
    write(tmp_path, {"in/a.csv": "number,email,total\nA1,X@y.com,10\nA2,z@y.com,2.5\n",
                     "in/b.csv": "number,email,total\nB1,q@y.com,\n"})
    flow("cookbook.md", "Pick up orders", tmp_path, "pickup.flow")
    result = cli("run", "pickup.flow", cwd=tmp_path)
    assert result.status == 3 and "order B1: no total" in result.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")) == ["archive/a.csv", "in/b.csv"]
    assert rows(tmp_path / "orders.db", "select number, email from orders order by number") == [
        ("A1", "x@y.com"), ("A2", "z@y.com")]


# ---- migrating.md --------------------------------------------------------------------------------


def test_the_celigo_flow(tmp_path: Path) -> None:
    orders = [{"id": 1, "status": "ok", "email": "ANN@x.com", "financial_status": "paid",
               "line_items": [{"sku": "A", "quantity": 2, "price": "12.50"}]},
              {"id": 2, "status": "test", "email": "t@x.com", "financial_status": "paid", "line_items": []},
              {"id": 3, "status": "ok", "email": "who@x.com", "financial_status": "refunded", "line_items": []}]
    with FakeApi({"customers": [{"id": 7, "email": "ann@x.com"}]}) as api:
        api.route("GET", "/orders", lambda req: (200, {}, orders))
        flow("migrating.md", "Shop orders to ERP", tmp_path, "celigo.flow")
        env = {"SHOP_URL": api.url, "ERP_URL": api.url, "ERP_USER": "u", "SHOP_TOKEN": "t", "ERP_PASSWORD": "p"}
        result = cli("run", "celigo.flow", cwd=tmp_path, env=env)
        assert result.status == 3, result.stderr
        assert "order 1 is ERP order 1001" in result.stderr and "no ERP customer for who@x.com" in result.stderr
        assert "read 3, sent 1, failed 1, skipped 1" in result.stderr
        assert posted(api, "POST", "/sales-orders") == [{"customer_id": 7, "reference": "SHOP-1", "status": "open",
                                                         "lines": [{"sku": "A", "qty": 2, "net": Decimal("10.00")}]}]


def test_the_n8n_flow(tmp_path: Path) -> None:
    people = [{"email": " Ann@X.com", "first": "Ann", "last": "Berg"}, {"email": "nope", "first": "N", "last": "O"},
              {"email": "bob@x.com", "first": "Bob", "last": "Lund"}]
    write(tmp_path, {"signup.json": json.dumps({"people": people})})
    with FakeApi() as api:
        api.route("POST", "/chat.postMessage", lambda req: (200, {}, {"ok": True, "ts": "1"}))
        api.route("POST", "/contacts", lambda req: (409, {}, {"error": "exists"}) if "bob" in req.body["email"]
                  else (201, {}, {"id": 99, **req.body}))
        flow("migrating.md", "New signups", tmp_path, "signups.flow",
             ("slack(token: secret.SLACK_TOKEN)", "slack(token: secret.SLACK_TOKEN, base_url: env.SLACK_URL)"))
        result = cli("run", "signups.flow", "--input", "signup.json", cwd=tmp_path,
                     env={"CRM_URL": api.url, "SLACK_URL": api.url, "CRM_TOKEN": "t", "SLACK_TOKEN": "s"})
        assert result.status == 0, result.stderr
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert out[0] == {"email": "ann@x.com", "id": 99}
        assert out[1]["email"] == "bob@x.com" and "409" in out[1]["error"]
        assert [r.body["name"] for r in api.requests if r.path == "/contacts"] == ["Ann Berg", "Bob Lund"]
        assert posted(api, "POST", "/chat.postMessage") == ["channel=%23signups&text=1+new+contacts"]


# ---- connectors-authoring.md ---------------------------------------------------------------------


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    whole = block("connectors-authoring.md", "toml connectors/acme.toml", 'name = "acme"\ntitle')
    write(tmp_path, {"connectors/acme.toml": whole})
    return tmp_path


def acme_flow(name: str, folder: Path, file: str) -> None:
    flow("connectors-authoring.md", name, folder, file,
         ("acme(api_key: secret.ACME_KEY)", "acme(api_key: secret.ACME_KEY, base_url: env.ACME_URL)"))


def test_the_authored_connector(acme: Path) -> None:
    write(acme, {"data/items.csv": "sku,name,price\nA-1,Anchor,2.50\nB-2,Bracket,4.00\n",
                 "data/new_items.csv": "sku,name,price\n" + "".join(f"N-{i},New {i},1.00\n" for i in range(250))})
    with FakeApi({"items": [{"id": 1, "sku": "A-1", "name": "Anchor", "price": 2, "updated_at": "2026-05-01"}]}) as api:
        def items(req: Request) -> tuple[int, dict[str, str], Any]:
            found = [r for r in api.state.collections["items"] if req.query.get("sku") in (None, r["sku"])]
            offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 1000))
            return 200, {}, {"items": found[offset:offset + limit], "total": len(found)}

        api.route("GET", "/items", items)
        env = {"ACME_URL": api.url, "ACME_KEY": "k-123"}
        acme_flow("Items to Acme", acme, "sync.flow")
        acme_flow("New items to Acme", acme, "bulk.flow")
        acme_flow("Changed Acme items", acme, "list.flow")
        sync = cli("run", "sync.flow", cwd=acme, env=env)
        assert sync.status == 0 and "created item 1001 for B-2" in sync.stderr
        assert [(r.method, r.path, r.query, r.headers.get("idempotency-key")) for r in api.requests] == [
            ("GET", "/items", {"sku": "A-1"}, None), ("PATCH", "/items/1", {}, None),
            ("GET", "/items", {"sku": "B-2"}, None), ("POST", "/items", {}, "item-B-2")]
        assert {r.headers.get("x-api-key") for r in api.requests} == {"k-123"}
        assert cli("run", "bulk.flow", cwd=acme, env=env).status == 0
        assert [len(b["items"]) for b in posted(api, "POST", "/items/batch")] == [100, 100, 50]
        listed = cli("run", "list.flow", cwd=acme, env=env)
        assert listed.status == 0 and len(listed.stdout.splitlines()) == 252
        assert [r.query for r in api.requests if r.path == "/items" and "offset" in r.query] == [
            {"offset": "0", "limit": "200"}, {"offset": "200", "limit": "200"}]
