"""The stdlib connectors against local servers that answer with each API's documented shapes and
real pagination; each runs its example flow."""

from __future__ import annotations

import csv
import json
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, cli, copy_example
from fakeapi import FakeApi, Request

EXAMPLES = ROOT / "examples"


def lines(text: str) -> list[Any]:
    return [json.loads(x, parse_float=Decimal) for x in text.splitlines() if x.strip()]


# ---- inFlow -------------------------------------------------------------------------------------


def inflow_api(api: FakeApi, company: str, token: str) -> dict[str, list[dict[str, Any]]]:
    db: dict[str, list[dict[str, Any]]] = {
        "customers": [{"customerId": f"c-{i}", "name": f"Customer {i}", "email": f"c{i}@example.com"}
                      for i in range(1, 251)] + [{"customerId": "c-ann", "name": "Ann Berg",
                                                  "email": "ann@example.com"}],
        "sales-orders": [],
    }

    def authorized(req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {token}" and \
            req.headers.get("accept", "").startswith("application/json;version=")

    def listing(req: Request) -> tuple[int, dict[str, str], Any]:
        if not authorized(req):
            return 401, {}, {"message": "Unauthorized"}
        rows = db[req.match[1]]
        for key, value in req.query.items():
            if key.startswith("filter["):
                field = key[7:-1]
                rows = [r for r in rows if str(r.get(field, "")).lower() == value.lower()]
        skip, count = int(req.query.get("skip", 0)), min(int(req.query.get("count", 100)), 100)
        return 200, {}, rows[skip:skip + count]

    def create(req: Request) -> tuple[int, dict[str, str], Any]:
        if not authorized(req):
            return 401, {}, {"message": "Unauthorized"}
        kind = req.match[1]
        ident = {"customers": "customerId", "sales-orders": "salesOrderId"}[kind]
        record = {**req.body, ident: f"{kind[:2]}-{len(db[kind]) + 1}"}
        db[kind].append(record)
        return 200, {}, record

    api.route("GET", rf"/{company}/(customers|sales-orders)", listing)
    api.route("POST", rf"/{company}/(customers|sales-orders)", create)
    return db


def test_inflow_lists_every_page_with_skip_and_count(tmp_path: Path) -> None:
    with FakeApi() as api:
        inflow_api(api, "acme", "tok")
        flow = tmp_path / "f.flow"
        flow.write_text('use inflow = inflow(company_id: "acme", token: "tok", base_url: env.BASE + "/acme")\n'
                        "call inflow.list_customers() as all\nemit len(list(all))\n")
        proc = cli("run", str(flow), env={"BASE": api.url})
        assert lines(proc.stdout) == [251], proc.stderr
        assert [r.query.get("skip") for r in api.requests] == ["0", "100", "200"]
        assert {r.query.get("count") for r in api.requests} == {"100"}


def test_inflow_example_creates_customers_and_sales_orders(tmp_path: Path) -> None:
    folder = copy_example("inflow_orders", tmp_path)
    with FakeApi() as api:
        db = inflow_api(api, "acme", "inflow-secret")
        proc = cli("run", "orders_to_inflow.flow", cwd=folder,
                       env={"INFLOW_COMPANY_ID": "acme", "INFLOW_TOKEN": "inflow-secret",
                            "INFLOW_BASE_URL": api.url + "/acme"})
        assert proc.status == 0, proc.stderr
        assert lines(proc.stdout) == [{"order": 1001, "customer": "c-ann", "status": "sent"},
                                      {"order": 1002, "customer": "cu-252", "status": "sent"}]
        assert db["customers"][-1] == {"name": "Neo Lind", "email": "new@example.com", "customerId": "cu-252"}
        orders = db["sales-orders"]
        assert orders[0]["orderNumber"] == "SO-1001" and orders[0]["orderDate"] == "2024-05-01"
        assert orders[0]["lines"] == [{"productId": "P-1", "quantity": 2, "unitPrice": Decimal("14.99")}]
        assert orders[1]["remarks"] == "gift wrap"
        assert "inflow-secret" not in proc.stdout + proc.stderr
        finds = [r for r in api.requests if r.method == "GET"]
        assert {r.query["filter[email]"] for r in finds} == {"ann@example.com", "new@example.com"}


# ---- integrator.io ---------------------------------------------------------------------------------


def integrator_api(api: FakeApi, token: str) -> dict[str, Any]:
    flows = [{"_id": f"f{i}", "name": f"Flow {i}", "disabled": i == 3, "_exportId": f"e{i}",
              "pageProcessors": [{"type": "import", "_importId": f"i{i}"}]} for i in range(1, 6)]
    errors = {("f1", "e1"): [{"errorId": f"err{n}", "source": "connection", "code": "ETIMEDOUT",
                              "message": "timeout", "occurredAt": "2024-05-01T00:00:00.000Z",
                              "retryDataKey": f"k{n}"} for n in range(1, 4)],
              ("f2", "i2"): [{"errorId": "err9", "source": "application", "code": "422",
                              "message": "bad field", "occurredAt": "2024-05-02T00:00:00.000Z"}]}
    seen: dict[str, Any] = {"retried": []}

    def auth(req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {token}"

    def token_info(req: Request) -> tuple[int, dict[str, str], Any]:
        return (200, {}, {"_userId": "u-1", "scope": "full"}) if auth(req) else (401, {}, {"errors": []})

    def list_flows(req: Request) -> tuple[int, dict[str, str], Any]:
        page = int(req.query.get("page", 1))
        chunk = flows[(page - 1) * 2: page * 2]
        headers = {"Link": f'<{api.url}/v1/flows?page={page + 1}>; rel="next"'} if page * 2 < len(flows) else {}
        return 200, headers, chunk

    def flow_errors(req: Request) -> tuple[int, dict[str, str], Any]:
        items = errors.get((req.match[1], req.match[2]), [])
        start = int(req.query.get("start", 0))
        nxt = f"{api.url}/v1/flows/{req.match[1]}/{req.match[2]}/errors?start={start + 2}" \
            if start + 2 < len(items) else None
        return 200, {}, {"errors": items[start:start + 2], **({"nextPageURL": nxt} if nxt else {})}

    def retry(req: Request) -> tuple[int, dict[str, str], Any]:
        seen["retried"].append((req.match[1], req.match[2], req.body["retryDataKeys"]))
        return 200, {}, {"retryDataKeys": req.body["retryDataKeys"]}

    api.route("GET", "/v1/tokenInfo", token_info)
    api.route("GET", "/v1/flows", list_flows)
    api.route("GET", r"/v1/flows/(\w+)/(\w+)/errors", flow_errors)
    api.route("POST", r"/v1/flows/(\w+)/(\w+)/retry", retry)
    return seen


def test_integrator_io_example_reports_and_retries(tmp_path: Path) -> None:
    folder = copy_example("integrator_io_errors", tmp_path)
    with FakeApi() as api:
        seen = integrator_api(api, "io-token")
        proc = cli("run", "error_report.flow", "--param", "retry_source=connection", cwd=folder,
                       env={"INTEGRATOR_IO_TOKEN": "io-token", "INTEGRATOR_IO_BASE_URL": api.url + "/v1"})
        assert proc.status == 0, proc.stderr
        assert lines(proc.stdout) == [{"flow": "Flow 1", "step": "e1", "retried": 3}]
        assert seen["retried"] == [("f1", "e1", ["k1", "k2", "k3"])]
        rows = list(csv.DictReader((folder / "out/errors.csv").open()))
        assert [(r["flow"], r["code"]) for r in rows] == [("Flow 1", "ETIMEDOUT")] * 3 + [("Flow 2", "422")]
        assert api.count("GET", "/v1/flows") == 3
        assert not any(r.path.startswith("/v1/flows/f3/") for r in api.requests)  # disabled


def test_integrator_io_regions() -> None:
    proc = cli("connectors", "integrator_io")
    assert "region" in proc.stdout and "'na' or 'eu'" in proc.stdout
    for name in ("get_token_info", "list_flow_errors", "retry_flow_errors", "resolve_flow_errors", "list_jobs"):
        assert name in proc.stdout


@pytest.mark.parametrize(("region", "base"), [("na", "https://api.integrator.io/v1"),
                                             ("eu", "https://api.eu.integrator.io/v1")])
def test_integrator_io_region_picks_the_host(region: str, base: str) -> None:
    import asyncio

    from flowlang.environment import Environment
    from flowlang.runtime.run import RunContext, RunOptions

    spec = Environment().connectors.get("integrator_io")
    assert spec is not None
    ctx = RunContext(flow="t", base_dir=ROOT, options=RunOptions(), env={}, job={}, state={}, emit=print,
                     on_failure=print, logger=__import__("logging").getLogger("t"))
    conn = asyncio.run(spec.open("io", {"token": "t", "region": region}, ctx))
    assert conn.client.settings.base_url == base  # type: ignore[attr-defined]


# ---- GitHub --------------------------------------------------------------------------------------


def test_github_example_pages_with_link_headers(tmp_path: Path) -> None:
    folder = copy_example("github_issues", tmp_path)
    issues = [{"number": n, "title": f"Issue {n}", "user": {"login": "octo"}, "labels": [{"name": "bug"}],
               "created_at": "2024-05-01T00:00:00Z"} for n in range(1, 151)]
    issues[4]["pull_request"] = {"url": "x"}
    with FakeApi() as api:
        def listing(req: Request) -> tuple[int, dict[str, str], Any]:
            assert req.headers.get("authorization") == "Bearer gh-token"
            assert req.headers.get("x-github-api-version") == "2022-11-28"
            page, per = int(req.query.get("page", 1)), int(req.query["per_page"])
            chunk = issues[(page - 1) * per: page * per]
            headers = {}
            if page * per < len(issues):
                q = urllib.parse.urlencode({**req.query, "page": page + 1})
                headers["Link"] = f'<{api.url}{req.path}?{q}>; rel="next", <{api.url}{req.path}?page=9>; rel="last"'
            return 200, headers, chunk
        api.route("GET", "/repos/octo/demo/issues", listing)
        proc = cli("run", "issues_to_csv.flow", "--param", "repo=octo/demo", cwd=folder,
                       env={"GITHUB_TOKEN": "gh-token", "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert len(lines(proc.stdout)) == 149
        assert api.count("GET", "/repos/octo/demo/issues") == 2
        rows = list(csv.DictReader((folder / "out/issues.csv").open()))
        assert rows[0]["author"] == "octo" and rows[0]["labels"] == "bug" and int(rows[0]["days"]) > 100
