"""Every example under examples/ runs, from a copy, and does what its comments say."""

from __future__ import annotations

import itertools
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import ROOT, cli, copy_example

EXAMPLES = ROOT / "examples"


def records(text: str) -> list[object]:
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]


def test_every_example_is_covered() -> None:
    flows = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.glob("*/*.flow"))
    assert flows == sorted(COVERED), "add a test for each new example"


COVERED = [
    "clean_orders/clean_orders.flow", "delta_sync/delta_sync.flow", "enrich_orders/enrich_orders.flow",
    "error_handling/import_payments.flow", "invoice_lines/invoice_lines.flow",
    "legacy_erp/customers_to_erp.flow",
    # run against local servers in test_stdlib.py:
    "inflow_orders/orders_to_inflow.flow", "integrator_io_errors/error_report.flow",
    "github_issues/issues_to_csv.flow",
    # served (webhook deliveries signed as Shopify does) in test_serve_webhooks.py:
    "webhooks/shop_orders.flow",
    # recorded against a local server and replayed from its cassette in test_record_replay.py:
    "recorded_sync/sync_invoices.flow",
    # run against Prism serving the published description in test_prism.py:
    "asana_tasks/tasks_from_csv.flow", "slack_channels/channels.flow", "magento_orders/orders_to_jsonl.flow",
    # run against local servers in test_stdlib_commerce.py (Prism does not start on Stripe's description):
    "stripe_customers/customers_to_csv.flow",
    # run against the strict Stripe mock (tests/saas_mocks.py) in test_saas_apis.py:
    "stripe_charges/charge_orders.flow", "github_issues/issues_from_csv.flow",
    "hubspot_contacts/contacts_from_csv.flow", "shopify_products/products_to_csv.flow",
    "zendesk_tickets/open_tickets.flow", "woocommerce_stock/update_stock.flow",
    # run against the tests' own SFTP server (asyncssh) and S3 (moto) in test_remote_transfer.py:
    "sftp_to_s3/scans_to_s3.flow",
]


def test_clean_orders(tmp_path: Path) -> None:
    folder = copy_example("clean_orders", tmp_path)
    proc = cli("run", "clean_orders.flow", cwd=folder)
    assert proc.status == 0, proc.stderr
    assert records(proc.stdout) == [{"id": 1001, "total": Decimal("19.99")},
                                    {"id": 1003, "total": Decimal("120.01")}, {"id": 1005, "total": 42}]
    written = records((folder / "out/orders.jsonl").read_text())
    assert written[0] == {"id": 1001, "email": "ann@example.com", "total": Decimal("19.99"), "currency": "EUR",
                          "placed_on": "2024-05-01", "customer": {"name": "Ann Berg", "country": "NO"}}
    assert [r["id"] for r in written] == [1001, 1003, 1005]  # type: ignore[index]


def test_delta_sync_moves_its_high_water_mark(tmp_path: Path) -> None:
    folder = copy_example("delta_sync", tmp_path)
    first = cli("run", "delta_sync.flow", cwd=folder)
    assert first.status == 0, first.stderr
    assert records(first.stdout) == [1, 2, 3]
    assert "first run" in first.stderr
    again = cli("run", "delta_sync.flow", cwd=folder)
    assert records(again.stdout) == []
    assert "first run" not in again.stderr
    with (folder / "data/customers.jsonl").open("a") as fh:
        fh.write('{"id": 4, "name": "Dina Ek", "email": "dina@example.com", "updated_at": "2024-06-01T00:00:00Z"}\n')
    third = cli("run", "delta_sync.flow", cwd=folder)
    assert records(third.stdout) == [4]
    assert [r["id"] for r in records((folder / "out/changed_customers.jsonl").read_text())] == [1, 2, 3, 4]  # type: ignore[index]


def test_enrich_orders_keeps_the_unknown_customer(tmp_path: Path) -> None:
    folder = copy_example("enrich_orders", tmp_path)
    proc = cli("run", "enrich_orders.flow", cwd=folder)
    assert proc.status == 3, proc.stderr
    assert records(proc.stdout) == [
        {"invoice": "INV-501", "customer": "Ann Berg", "net": Decimal("15.00")},
        {"invoice": "INV-502", "customer": "Carl Dahl", "net": Decimal("29.80")},
    ]
    invoices = json.loads((folder / "out/invoices.json").read_text(), parse_float=Decimal)
    assert invoices[0]["lines"][1] == {"sku": "C-3", "name": "Cable tie", "qty": 100, "net": Decimal("5.00")}
    errors = cli("errors", "enrich_orders.flow", cwd=folder)
    assert "no customer with the email nobody@example.com" in errors.stdout


def test_import_payments_errors_and_retry(tmp_path: Path) -> None:
    folder = copy_example("error_handling", tmp_path)
    proc = cli("run", "import_payments.flow", cwd=folder)
    assert proc.status == 3
    assert records(proc.stdout) == ["P-1", "P-4"]
    listed = cli("errors", "import_payments.flow", cwd=folder)
    assert "the amount 'abc' is not a number" in listed.stdout
    assert "amount must be positive, got -5" in listed.stdout
    # as README.md and docs/cli.md show it: the place, and the payment's trace key (its ref)
    assert '#1  import_payments.flow:15:5  key "P-2"  (job 1, ' in listed.stdout, listed.stdout
    assert "    record: {\"ref\":\"P-2\",\"amount\":\"abc\",\"iban\":\"NO9386011117947\"}" in listed.stdout
    # retry runs the failed iterations again from their saved records: still bad, attempts counted
    retried = cli("retry", "import_payments.flow", cwd=folder)
    assert retried.status == 3  # the saved records are still bad
    assert "still failing 2" in retried.stderr
    listed_again = cli("errors", "import_payments.flow", "--json", cwd=folder)
    attempts = [json.loads(line)["attempts"] for line in listed_again.stdout.splitlines()]
    assert attempts == [2, 2]


def test_invoice_lines_uses_the_imported_library(tmp_path: Path) -> None:
    folder = copy_example("invoice_lines", tmp_path)
    proc = cli("run", "invoice_lines.flow", "--param", "currency=NOK", cwd=folder)
    assert proc.status == 0, proc.stderr
    assert records(proc.stdout) == [
        {"line": "A-1 Anchor bolt", "net": "10.00 NOK", "gross": "12.50 NOK"},
        {"line": "C-3", "net": "5.00 NOK", "gross": "5.60 NOK"},
        {"line": "Z-9 Gift card", "net": "50 NOK", "gross": "50 NOK"},
    ]


def test_legacy_erp_reads_cp1252_and_posts_forms(tmp_path: Path) -> None:
    from urllib.parse import parse_qs

    from fakeapi import FakeApi, Request

    folder = copy_example("legacy_erp", tmp_path)
    token = 'erp"tok\\en-' + "x" * 40  # ASCII: it travels in a header
    (folder / "secrets.toml").write_text(f"ERP_TOKEN = {json.dumps(token)}\n", encoding="utf-8")
    received: list[tuple[str, str, dict[str, list[str]]]] = []

    def create(req: Request) -> tuple[int, dict[str, str], object]:
        received.append((req.headers.get("content-type", ""), req.headers.get("authorization", ""),
                         parse_qs(req.raw.decode("ascii"), strict_parsing=True)))
        return 201, {}, {"id": f"C{len(received)}"}

    with FakeApi() as api:
        api.route("POST", r"^/customers$", create)
        proc = cli("run", "customers_to_erp.flow", "--secrets", "secrets.toml", cwd=folder,
                   env={"ERP_URL": api.url})
    assert proc.status == 0, proc.stderr
    assert [form for _, _, form in received] == [
        {"number": ["10001"], "name": ["Müller & Söhne GmbH"], "city": ["Köln"], "balance": ["1234.50"]},
        {"number": ["10002"], "name": ["Café Señor"], "city": ["Málaga"], "balance": ["-12.05"]},
        {"number": ["10003"], "name": ["Ærø Smørrebrød A/S"], "city": ["Århus"], "balance": ["0.00"]},
    ]
    assert all(ct.startswith("application/x-www-form-urlencoded") for ct, _, _ in received)
    assert all(auth == f"Bearer {token}" for _, auth, _ in received)
    assert records(proc.stdout)[0] == {"number": "10001", "id": "C1",
                                       "search": "/customers?name=M%C3%BCller%20%26%20S%C3%B6hne%20GmbH"}
    assert token not in proc.stdout + proc.stderr


@pytest.mark.parametrize("flow", COVERED)
def test_examples_pass_check(flow: str) -> None:
    proc = cli("check", str(EXAMPLES / flow))
    assert proc.status == 0, proc.stderr


@pytest.mark.parametrize("example, flow, env", [
    ("magento_orders", "orders_to_jsonl.flow", {"MAGENTO_TOKEN": "t0ken-m"}),
    ("woocommerce_stock", "update_stock.flow", {"WOO_SECRET": "t0ken-w", "WOO_KEY": "ck_1"}),
])
def test_an_example_run_without_its_store_url_says_the_value_is_null(tmp_path: Path, example: str, flow: str,
                                                                     env: dict[str, str]) -> None:
    """As its comment says to run it, but with MAGENTO_URL / WOO_URL unset: 'store_url: env.X' is null.
    It said "needs the configuration key 'store_url'" alone, though the flow does give that key."""
    folder = copy_example(example, tmp_path)
    proc = cli("run", flow, "--log-format", "text", cwd=folder, env=env)
    assert proc.status == 1 and proc.stdout == ""
    assert ("needs the configuration key 'store_url', which is null here (is the environment variable it is "
            "read from set?)") in proc.stderr
    assert "Traceback" not in proc.stderr and env[next(iter(env))] not in proc.stderr


@pytest.mark.parametrize("flow", COVERED)
def test_an_example_names_every_variable_it_reads_in_its_comments(flow: str) -> None:
    """A new user runs an example as its opening comments say: each env.NAME and secret.NAME it reads
    is named there (the webhooks example said `flowlang serve examples/webhooks`, which refuses to
    start without its two secrets, and named neither)."""
    text = (EXAMPLES / flow).read_text(encoding="utf-8")
    comments = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines()))
    read = set(re.findall(r"\b(?:env|secret)\.([A-Z_][A-Z0-9_]*)", text))
    assert "flowlang " in comments or not read, f"{flow}: no command to run it"
    assert sorted(n for n in read if not re.search(rf"\b{n}\b", comments)) == []
