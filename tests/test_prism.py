"""The stdlib connectors and imported connector files against the APIs' published descriptions
(npm packages installed by .ci/run into tests/npm/): `connectors verify` passes for every stdlib
connector that has one, and flows run against Stoplight Prism serving the description, which
refuses (4xx) any request the description does not allow; a refused request fails its record, so a
run that exits 0 had none refused. Prism is given the paths under test with the
components they reach, unchanged (on a whole large description it starts in minutes)."""

from __future__ import annotations

import json
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import copy_example, run_cli
from flowlang.connectors.declarative.loader import parse_model
from flowlang.openapi.document import load
from flowlang.openapi.verify import paths_of, verify
from flowlang.resources import stdlib_files
from prism import Prism, cut, description, serving

PUBLISHED = ("github", "stripe", "asana", "slack", "magento")


def lines(text: str) -> list[Any]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


@pytest.mark.parametrize("name", PUBLISHED)
def test_stdlib_connector_matches_its_published_description(name: str) -> None:
    text = dict(stdlib_files())[f"{name}.toml"]
    model = parse_model(f"stdlib/{name}.toml", text)
    report = verify(model, load(str(description(name)), keep=paths_of(model)))  # as `connectors verify` reads it
    assert report.problems == []
    assert report.checked >= 4


def test_verify_catches_a_broken_stdlib_file() -> None:
    text = dict(stdlib_files())["asana.toml"]
    broken = text.replace('path = "/tasks/{task_gid}/stories"', 'path = "/tasks/{task_gid}/story"')
    broken = broken.replace('"text", "html_text", "is_pinned"', '"text", "html_text", "pinned"')
    model = parse_model("asana.toml", broken)
    report = verify(model, load(str(description("asana")), keep=paths_of(model)))
    assert any("create_story: POST /tasks/{task_gid}/story is not in the description" in p for p in report.problems)
    assert report.problems[-1:] == [] or len(report.problems) == 1  # the body check runs only on a found path


def run_flow(folder: Path, flow: str, env: dict[str, str], *args: str) -> Any:
    proc = run_cli("run", flow, *args, cwd=folder, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "answered 4" not in proc.stderr
    return proc


# ---- stdlib connectors and their example flows against Prism ------------------------------------


def test_asana_example_against_prism(tmp_path: Path) -> None:
    spec = cut("asana", ["/tasks", "/tasks/{task_gid}/stories"], tmp_path)
    folder = copy_example("asana_tasks", tmp_path)
    with serving(spec, tmp_path) as prism:
        proc = run_flow(folder, "tasks_from_csv.flow", {"ASANA_TOKEN": "pat-secret", "ASANA_BASE_URL": prism.url})
        assert len(prism.requests()) == 4  # two tasks, two stories: {"data": {...}} as the schema wants
    assert [r["title"] for r in lines(proc.stdout)] == ["Order labels", "Call the printer"]
    assert all(r["gid"] for r in lines(proc.stdout))


def test_slack_example_against_prism(tmp_path: Path) -> None:
    spec = cut("slack", ["/conversations.list", "/conversations.history"], tmp_path)
    folder = copy_example("slack_channels", tmp_path)
    with serving(spec, tmp_path) as prism:
        # Prism answers every page with the same example, next_cursor included: --limit keeps to page one
        proc = run_flow(folder, "channels.flow", {"SLACK_TOKEN": "xoxb-secret", "SLACK_BASE_URL": prism.url},
                        "--limit", "1")
        assert len(prism.requests()) == 2
    assert len(lines(proc.stdout)) == 1 and lines(proc.stdout)[0]["id"]


def test_magento_example_against_prism(tmp_path: Path) -> None:
    spec = cut("magento", ["/V1/orders"], tmp_path)
    folder = copy_example("magento_orders", tmp_path)
    with serving(spec, tmp_path) as prism:
        run_flow(folder, "orders_to_jsonl.flow", {"MAGENTO_URL": prism.url, "MAGENTO_TOKEN": "mg-secret"})
        assert len(prism.requests()) >= 1
    assert (folder / "out" / "orders.jsonl").exists()


STRIPE_PATHS = ["/v1/customers", "/v1/customers/{customer}", "/v1/charges"]


@pytest.fixture(scope="module")
def stripe_prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    # Stripe's answers reach 485 schemas (Prism does not start on them in 5 minutes): answers are cut to
    # two levels, requests stay as published; has_more: false ends each list on its first page
    tmp = tmp_path_factory.mktemp("stripe-prism")
    spec = cut("stripe", STRIPE_PATHS, tmp, response_depth=2, answer_examples={"has_more": False})
    with serving(spec, tmp) as prism:
        yield prism


def test_stripe_example_against_prism(tmp_path: Path, stripe_prism: Prism) -> None:
    folder = copy_example("stripe_customers", tmp_path)
    prism, before = stripe_prism, len(stripe_prism.requests())
    run_flow(folder, "customers_to_csv.flow", {"STRIPE_TOKEN": "sk_test_secret", "STRIPE_BASE_URL": prism.url})
    assert len(prism.requests()) - before == 2  # the customers, then the customer's charges
    with pytest.raises(urllib.error.HTTPError) as unauthorized:  # Prism does check the credentials
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(prism.url + "/v1/customers", timeout=30)
    assert unauthorized.value.code == 401
    seen = len(prism.requests())
    refused = run_cli("run", "customers_to_csv.flow", cwd=folder, timeout=180,
                      env={"STRIPE_TOKEN": "", "STRIPE_BASE_URL": prism.url})
    assert refused.returncode == 1 and "the bearer token is empty" in refused.stderr  # refused unsent
    assert len(prism.requests()) == seen
    assert (folder / "out" / "customers.csv").read_text().splitlines()[0] == "id,email,name,created,charges"


def test_a_send_to_the_stripe_delete_sends_what_the_description_allows(tmp_path: Path, stripe_prism: Prism) -> None:
    """`send {customer: c.id} to stripe.delete_customer`, the record naming what to delete: it was sent as
    the JSON body {"customer": ...}, which Prism refused (415: Stripe's DELETE takes form fields, and
    none at all). The field that filled the path stays out of the body, and a DELETE left with none
    sends no body; a call with the argument is as it was."""
    (tmp_path / "f.flow").write_text(
        'use stripe = stripe(token: secret.T, base_url: env.BASE)\n'
        'for each c in [{customer: "cus_1"}, {customer: "cus_2"}]\n'
        '  send c to stripe.delete_customer as gone\n'
        '  emit gone.object\n'
        'end\n'
        'call stripe.delete_customer(customer: "cus_3") as gone\n'
        'emit gone.object\n')
    before = len(stripe_prism.requests())
    proc = run_flow(tmp_path, "f.flow", {"T": "sk_test_secret", "BASE": stripe_prism.url}, "--log-format", "text")
    assert len(stripe_prism.requests()) - before == 3
    assert "failed 0" in proc.stderr and "answered 415" not in proc.stderr
    assert lines(proc.stdout) == ["customer", "customer", "customer"]


GITHUB_PATHS = ["/repos/{owner}/{repo}", "/repos/{owner}/{repo}/issues", "/repos/{owner}/{repo}/issues/{issue_number}",
                "/repos/{owner}/{repo}/issues/{issue_number}/comments"]


@pytest.fixture(scope="module")
def github_prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    """One Prism of the GitHub paths for the tests of the module (it takes seconds to start); each test
    counts the requests it made from the count before it."""
    tmp = tmp_path_factory.mktemp("github-prism")
    with serving(cut("github", GITHUB_PATHS, tmp), tmp) as prism:
        yield prism


def test_github_stdlib_against_prism(tmp_path: Path, github_prism: Prism) -> None:
    (tmp_path / "f.flow").write_text(
        'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL,\n'
        '                headers: {Accept: "application/json"})\n'  # the description's media type
        'call gh.get_repo(owner: "octo", repo: "demo") as repo\n'
        'call gh.get_issue(owner: "octo", repo: "demo", issue_number: 1) as issue\n'
        'send {title: "Found a bug", body: "It breaks", labels: ["bug"]} to gh.create_issue(owner: "octo", '
        'repo: "demo") as created\n'
        'send {state: "closed"} to gh.update_issue(owner: "octo", repo: "demo", issue_number: created.number)\n'
        'send {body: "Thanks"} to gh.create_issue_comment(owner: "octo", repo: "demo", issue_number: 1)\n'
        'emit {repo: repo.full_name, issue: issue.number, created: created.number}\n')
    # (lists are not called here: Prism's example Link header sends the next page to api.github.com,
    # which the connector rightly refuses to follow with the token; test_stdlib.py pages GitHub lists)
    before = len(github_prism.requests())
    proc = run_flow(tmp_path, "f.flow", {"GITHUB_TOKEN": "ghp-secret", "GITHUB_BASE_URL": github_prism.url})
    assert len(github_prism.requests()) - before == 5
    out = lines(proc.stdout)
    assert out == [{"repo": "octocat/Hello-World", "issue": out[0]["issue"], "created": out[0]["created"]}]


# ---- importing the published descriptions: the generated files work against Prism ---------------


def imported(tmp_path: Path, name: str, *paths: str) -> dict[str, Any]:
    args = [a for p in paths for a in ("--path", p)]
    proc = run_cli("connectors", "import", str(description(name)), "--name", f"{name}_api", "--yes", *args,
                   cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return tomllib.loads((tmp_path / "connectors" / f"{name}_api.toml").read_text())


def test_imported_github_connector_against_prism(tmp_path: Path, github_prism: Prism) -> None:
    ops = imported(tmp_path, "github", *GITHUB_PATHS)["operations"]
    assert {"get_repo", "list_issues", "get_issue", "create_issue", "update_issue", "create_comment"} <= set(ops)
    assert ops["list_issues"]["pagination"]["style"] == "link"
    (tmp_path / "f.flow").write_text(
        'use gh = github_api(token: secret.T, base_url: env.BASE)\n'
        'call gh.get_repo(owner: "octo", repo: "demo") as repo\n'
        'call gh.get_issue(owner: "octo", repo: "demo", issue_number: 7) as issue\n'
        'send {title: "From an imported connector"} to gh.create_issue(owner: "octo", repo: "demo") as made\n'
        'send {body: "A comment"} to gh.create_comment(owner: "octo", repo: "demo", issue_number: made.number)\n'
        'emit {repo: repo.name, issue: issue.number, made: made.number}\n')
    before = len(github_prism.requests())
    run_flow(tmp_path, "f.flow", {"T": "ghp-secret", "BASE": github_prism.url})
    assert len(github_prism.requests()) - before == 4


def test_imported_asana_connector_against_prism(tmp_path: Path) -> None:
    paths = ["/tasks", "/tasks/{task_gid}", "/projects/{project_gid}"]
    data = imported(tmp_path, "asana", *paths)
    text = (tmp_path / "connectors" / "asana_api.toml").read_text()
    assert "#   auth: the description allows several security schemes" in text  # the unsure point, noted
    assert data["operations"]["create_task"]["envelope"] == "data"
    (tmp_path / "f.flow").write_text(
        'use asana = asana_api(token: secret.T, base_url: env.BASE)\n'
        'call asana.get_project(project_gid: "12345") as project\n'
        'send {name: "Imported", notes: "via Prism"} to asana.create_task as task\n'
        'send {name: "Renamed"} to asana.update_task(task_gid: "12345")\n'
        'call asana.list_tasks(project: "12345") as tasks\n'
        'for each t in tasks\n  emit t.gid\nend\n'
        'emit project.data.gid\n')
    spec = cut("asana", paths, tmp_path)
    with serving(spec, tmp_path) as prism:
        run_flow(tmp_path, "f.flow", {"T": "pat-secret", "BASE": prism.url})
        assert len(prism.requests()) == 4


def test_imported_stripe_connector_against_prism(tmp_path: Path, stripe_prism: Prism) -> None:
    data = imported(tmp_path, "stripe", "/v1/customers", "/v1/customers/{customer}", "/v1/charges")
    ops = data["operations"]
    assert ops["list_customers"]["pagination"] == {"style": "cursor", "cursor_param": "starting_after",
                                                   "cursor": "data.-1.id", "size_param": "limit", "size": 100,
                                                   "records": "data", "has_more": "has_more"}
    assert data["auth"]["type"] == "bearer"
    assert ops["create_customer"]["content_type"] == "form"  # Stripe's bodies are form fields
    check = run_cli("connectors", "verify", "stripe_api", "--spec", str(description("stripe")), cwd=tmp_path,
                    timeout=300)
    assert check.returncode == 0, check.stderr
    (tmp_path / "f.flow").write_text(
        'use stripe = stripe_api(token: secret.T, base_url: env.BASE)\n'
        'send {email: "ann@example.com", name: "Ann", metadata: {order: "1001"}, address: {city: "Oslo"}} '
        'to stripe.create_customer as made\n'
        'call stripe.get_customer(customer: made.id) as got\n'
        'send {name: "Ann B"} to stripe.update_customer(customer: made.id)\n'
        'call stripe.list_customers(email: "ann@example.com") as customers\n'
        'call stripe.list_charges(customer: made.id) as charges\n'
        'emit {made: made.id, got: got.id, customers: len(list(customers)), charges: len(list(charges))}\n')
    before = len(stripe_prism.requests())
    proc = run_flow(tmp_path, "f.flow", {"T": "sk_test_secret", "BASE": stripe_prism.url})
    assert len(stripe_prism.requests()) - before == 5
    assert lines(proc.stdout) == [{"made": "string", "got": "string", "customers": 1, "charges": 1}]
