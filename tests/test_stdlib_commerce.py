"""The stdlib connectors that have no published description in a registry package (HubSpot,
Shopify, Zendesk, WooCommerce), and Stripe (whose description Prism takes too long to load), each
running its example flow against a local server that answers with the API's documented shapes,
auth and real pagination. Counts are taken at the server."""

from __future__ import annotations

import base64
import csv
import json
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import cli, copy_example
from fakeapi import FakeApi, Request

Answer = tuple[int, dict[str, str], Any]


def lines(text: str) -> list[Any]:
    return [json.loads(x, parse_float=Decimal) for x in text.splitlines() if x.strip()]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- HubSpot -------------------------------------------------------------------------------------


def test_hubspot_contacts_are_created_with_properties_and_a_duplicate_fails_alone(tmp_path: Path) -> None:
    folder = copy_example("hubspot_contacts", tmp_path)
    with (folder / "data/signups.csv").open("a") as fh:
        fh.write("ann@example.com,Ann,Again,Berg AS\n")  # HubSpot answers 409 for a known email
    created: list[dict[str, Any]] = []
    with FakeApi() as api:
        def create(req: Request) -> Answer:
            if req.headers.get("authorization") != "Bearer pat-na1-secret":
                return 401, {}, {"status": "error", "message": "Authentication credentials not found."}
            props = req.body["properties"]  # HubSpot wants {"properties": {...}}
            if any(c["properties"]["email"] == props["email"] for c in created):
                return 409, {}, {"status": "error", "message": "Contact already exists. Existing ID: 1",
                                 "category": "CONFLICT"}
            record = {"id": str(len(created) + 1), "properties": props, "archived": False}
            created.append(record)
            return 201, {}, record
        api.route("POST", "/crm/v3/objects/contacts", create)
        proc = cli("run", "contacts_from_csv.flow", cwd=folder,
                       env={"HUBSPOT_TOKEN": "pat-na1-secret", "HUBSPOT_BASE_URL": api.url})
    assert proc.returncode == 3, proc.stderr  # finished, one record failed
    assert lines(proc.stdout) == [{"email": "ann@example.com", "id": "1"}, {"email": "bo@example.com", "id": "2"}]
    assert [c["properties"] for c in created] == [
        {"email": "ann@example.com", "firstname": "Ann", "lastname": "Berg", "company": "Berg AS"},
        {"email": "bo@example.com", "firstname": "Bo", "lastname": "Li", "company": "Li Trading"}]
    assert "409" in proc.stderr or "409" in cli("errors", "contacts_from_csv.flow", cwd=folder).stdout


def test_hubspot_lists_follow_paging_next_after(tmp_path: Path) -> None:
    contacts = [{"id": str(i), "properties": {"email": f"c{i}@example.com"}} for i in range(1, 251)]
    with FakeApi() as api:
        def listing(req: Request) -> Answer:
            start = int(req.query.get("after", 0))
            limit = int(req.query["limit"])
            page = contacts[start:start + limit]
            body: dict[str, Any] = {"results": page}
            if start + limit < len(contacts):
                body["paging"] = {"next": {"after": str(start + limit), "link": "ignored"}}
            return 200, {}, body
        api.route("GET", "/crm/v3/objects/contacts", listing)
        (tmp_path / "f.flow").write_text(
            'use hs = hubspot(token: "t", base_url: env.BASE)\n'
            'call hs.list_contacts(properties: "email") as cs\nfor each c in cs\n  emit c.properties.email\nend\n')
        proc = cli("run", "f.flow", cwd=tmp_path, env={"BASE": api.url})
        assert proc.returncode == 0, proc.stderr
        assert len(lines(proc.stdout)) == 250
        assert api.count("GET", "/crm/v3/objects/contacts") == 3
        assert all(r.query["properties"] == "email" for r in api.requests)


# ---- Shopify -------------------------------------------------------------------------------------


def test_shopify_products_page_with_page_info_links(tmp_path: Path) -> None:
    folder = copy_example("shopify_products", tmp_path)
    products = [{"id": 1000 + i, "title": f"Tee {i}", "status": "active",
                 "variants": [{"sku": f"TEE-{i}-{s}", "price": "19.00", "inventory_quantity": i} for s in "SM"]}
                for i in range(1, 301)]
    with FakeApi() as api:
        def listing(req: Request) -> Answer:
            if req.headers.get("x-shopify-access-token") != "shpat_secret":
                return 401, {}, {"errors": "[API] Invalid API key or access token"}
            limit = int(req.query["limit"])
            if "page_info" in req.query:  # Shopify: no other filter may come with page_info
                assert set(req.query) == {"page_info", "limit"}
                start = int(req.query["page_info"])
            else:
                assert req.query.get("status") == "active"
                start = 0
            headers = {}
            if start + limit < len(products):
                q = urllib.parse.urlencode({"limit": limit, "page_info": start + limit})
                headers["Link"] = f'<{api.url}{req.path}?{q}>; rel="next"'
            return 200, headers, {"products": products[start:start + limit]}
        api.route("GET", r"/admin/api/2024-10/products\.json", listing)
        proc = cli("run", "products_to_csv.flow", cwd=folder,
                       env={"SHOPIFY_SHOP": "demo", "SHOPIFY_TOKEN": "shpat_secret",
                            "SHOPIFY_BASE_URL": api.url + "/admin/api/2024-10"})
        assert proc.returncode == 0, proc.stderr
        assert len(lines(proc.stdout)) == 300
        assert api.count("GET", "/admin/api/2024-10/products.json") == 2  # 250 + 50
    rows = list(csv.DictReader((folder / "out/variants.csv").open()))
    assert len(rows) == 600 and rows[0] == {"product": "Tee 1", "sku": "TEE-1-S", "price": "19.00", "stock": "1"}


# ---- Zendesk -------------------------------------------------------------------------------------


def test_zendesk_tickets_use_cursor_pages_and_token_basic_auth(tmp_path: Path) -> None:
    folder = copy_example("zendesk_tickets", tmp_path)
    tickets = [{"id": i, "subject": f"Help {i}", "status": ["open", "solved", "pending"][i % 3],
                "requester_id": 500 + i % 4} for i in range(1, 231)]
    with FakeApi() as api:
        def authorized(req: Request) -> bool:
            return req.headers.get("authorization") == basic("agent@acme.com/token", "zd-secret")

        def listing(req: Request) -> Answer:
            if not authorized(req):
                return 401, {}, {"error": "Couldn't authenticate you"}
            size = int(req.query["page[size]"])
            start = int(req.query.get("page[after]", 0))
            page = tickets[start:start + size]
            more = start + size < len(tickets)
            return 200, {}, {"tickets": page, "meta": {"has_more": more, "after_cursor": str(start + size),
                                                       "before_cursor": str(start)},
                             "links": {"next": "ignored"}}

        def search(req: Request) -> Answer:
            user_id = int(req.query["query"].removeprefix("id:"))
            return 200, {}, {"users": [{"id": user_id, "email": f"u{user_id}@example.com"}], "count": 1}
        api.route("GET", "/tickets.json", listing)
        api.route("GET", "/users/search.json", search)
        proc = cli("run", "open_tickets.flow", cwd=folder,
                       env={"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "agent@acme.com",
                            "ZENDESK_TOKEN": "zd-secret", "ZENDESK_BASE_URL": api.url})
        assert proc.returncode == 0, proc.stderr
        assert api.count("GET", "/tickets.json") == 3  # has_more false on the third page: no fourth
        assert api.count("GET", "/users/search.json") == 4  # lookups are cached per run
    kept = lines((folder / "out/open_tickets.jsonl").read_text())
    assert len(kept) == len([t for t in tickets if t["status"] != "solved"])
    assert kept[0] == {"id": 2, "subject": "Help 2", "status": "pending", "requester": "u502@example.com"}


# ---- WooCommerce ---------------------------------------------------------------------------------


def test_woocommerce_stock_is_set_by_sku_and_an_unknown_sku_fails_alone(tmp_path: Path) -> None:
    folder = copy_example("woocommerce_stock", tmp_path)
    products = [{"id": 10 + i, "sku": sku, "stock_quantity": 1} for i, sku in enumerate(["TEE-S", "TEE-M", "MUG-1"])]
    with FakeApi() as api:
        def authorized(req: Request) -> bool:
            return req.headers.get("authorization") == basic("ck_key", "cs_secret")

        def listing(req: Request) -> Answer:
            if not authorized(req):
                return 401, {}, {"code": "woocommerce_rest_cannot_view", "data": {"status": 401}}
            return 200, {}, [p for p in products if p["sku"] == req.query.get("sku")]

        def update(req: Request) -> Answer:
            assert req.match is not None
            product = next(p for p in products if p["id"] == int(req.match[1]))
            product.update(req.body)
            return 200, {}, product
        api.route("GET", "/wp-json/wc/v3/products", listing)
        api.route("PUT", r"/wp-json/wc/v3/products/(\d+)", update)
        proc = cli("run", "update_stock.flow", cwd=folder,
                       env={"WOO_URL": api.url, "WOO_KEY": "ck_key", "WOO_SECRET": "cs_secret"})
        assert proc.returncode == 3, proc.stderr
        assert sum(1 for r in api.requests if r.method == "PUT") == 3
    assert [p["stock_quantity"] for p in products] == [14, 0, 7]
    assert lines(proc.stdout) == [{"sku": "TEE-S", "id": 10, "stock": 14}, {"sku": "TEE-M", "id": 11, "stock": 0},
                                  {"sku": "MUG-1", "id": 12, "stock": 7}]
    errors = cli("errors", "update_stock.flow", cwd=folder)
    assert "no product with the SKU NOPE-9" in errors.stdout


# ---- Stripe --------------------------------------------------------------------------------------


def test_stripe_customers_page_after_the_last_id_until_has_more_is_false(tmp_path: Path) -> None:
    folder = copy_example("stripe_customers", tmp_path)
    customers = [{"id": f"cus_{i:04d}", "object": "customer", "email": f"c{i}@example.com", "name": f"C {i}",
                  "created": 1700000000 + i} for i in range(1, 151)]
    with FakeApi() as api:
        def page_of(rows: list[dict[str, Any]], req: Request) -> Answer:
            if req.headers.get("authorization") != "Bearer sk_test_secret":
                return 401, {}, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
            limit = int(req.query["limit"])
            after = req.query.get("starting_after")
            start = next(i + 1 for i, r in enumerate(rows) if r["id"] == after) if after else 0
            chunk = rows[start:start + limit]
            return 200, {}, {"object": "list", "url": req.path, "data": chunk,
                             "has_more": start + limit < len(rows)}

        def charges(req: Request) -> Answer:
            n = int(req.query["customer"][4:]) % 3
            return page_of([{"id": f"ch_{req.query['customer']}_{k}", "amount": 500} for k in range(n)], req)
        api.route("GET", "/v1/customers", lambda req: page_of(customers, req))
        api.route("GET", "/v1/charges", charges)
        proc = cli("run", "customers_to_csv.flow", cwd=folder,
                       env={"STRIPE_TOKEN": "sk_test_secret", "STRIPE_BASE_URL": api.url})
        assert proc.returncode == 0, proc.stderr
        assert api.count("GET", "/v1/customers") == 2  # 100 + 50, and has_more false: no third request
        assert [r.query.get("starting_after") for r in api.requests if r.path == "/v1/customers"] == \
            [None, "cus_0100"]
    rows = list(csv.DictReader((folder / "out/customers.csv").open()))
    assert len(rows) == 150
    assert rows[0] == {"id": "cus_0001", "email": "c1@example.com", "name": "C 1", "created": "1700000001",
                       "charges": "1"}


def test_stripe_writes_send_form_fields_with_an_idempotency_key(tmp_path: Path) -> None:
    with FakeApi() as api:
        def create(req: Request) -> Answer:
            assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
            fields = dict(urllib.parse.parse_qsl(req.raw.decode()))
            return 200, {}, {"id": "cus_new", "object": "customer", **fields,
                             "idem": req.headers.get("idempotency-key")}
        api.route("POST", "/v1/customers", create)
        (tmp_path / "f.flow").write_text(
            'use stripe = stripe(token: "sk_test_x", base_url: env.BASE)\n'
            'send {email: "ann@example.com", name: "Ann Berg", metadata: {tier: "gold"}} to stripe.create_customer'
            ' as c\nemit c\n')
        proc = cli("run", "f.flow", cwd=tmp_path, env={"BASE": api.url})
        assert proc.returncode == 0, proc.stderr
        assert api.count("POST", "/v1/customers") == 1
    assert lines(proc.stdout) == [{"id": "cus_new", "object": "customer", "email": "ann@example.com",
                                   "name": "Ann Berg", "metadata[tier]": "gold", "idem": "ann@example.com"}]


def test_stripe_update_customer_clears_metadata_with_an_empty_field(tmp_path: Path) -> None:
    with FakeApi() as api:
        api.route("POST", "/v1/customers/cus_1", lambda req: (200, {}, {"id": "cus_1", "raw": req.raw.decode()}))
        (tmp_path / "f.flow").write_text(
            'use stripe = stripe(token: "sk_test_x", base_url: env.BASE)\n'
            'call stripe.update_customer(customer: "cus_1", body: {metadata: {}, name: "Ann"}) as c\nemit c.raw\n')
        proc = cli("run", "f.flow", cwd=tmp_path, env={"BASE": api.url})
        assert proc.returncode == 0, proc.stderr
        assert api.count("POST", "/v1/customers/cus_1") == 1
    assert lines(proc.stdout) == ["metadata=&name=Ann"]  # Stripe's metadata= clears every key
