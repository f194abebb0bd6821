"""Flows written with the declarative connectors against strict mocks of GitHub's, Stripe's and
Asana's REST APIs (tests/saas_mocks.py): every record read once (counted at the server), sends
retried through rate limits without a failed record, and the APIs' refusals shown as they said them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import cli, copy_example
from saas_mocks import AsanaMock, GitHubMock, StripeMock


def lines(text: str) -> list[Any]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- Stripe --------------------------------------------------------------------------------------


def test_stripe_lists_and_nested_filters_go_as_stripe_reads_them(tmp_path: Path) -> None:
    """Stripe reads a list as expand[]=... (or expand[0]=...) and a filter object as created[gte]=...;
    a repeated name (expand=a&expand=b) it refuses with 400 "Invalid array". The stdlib connector sent
    lists so, and objects in the query as JSON text: a create_customer with preferred_locales, or a
    list_customers with expand, failed every record. It now says param_style = "brackets"."""
    write(tmp_path, "f.flow",
          'use stripe = stripe(token: secret.STRIPE_KEY, base_url: env.STRIPE_BASE_URL)\n'
          'send {email: "ann@example.com", preferred_locales: ["en", "fr"], metadata: {order_id: 1}} '
          'to stripe.create_customer as made\n'
          'emit made.preferred_locales\n'
          'call stripe.list_customers(created: {gte: 1700000001}, expand: ["data.default_source"]) as all\n'
          'for each c in all\n  emit c.id\nend\n')
    with StripeMock(customers=150) as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"STRIPE_KEY": "sk_test_123", "STRIPE_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [r.status for r in api.requests] == [200, 200, 200]
        create, first, _ = api.requests
        assert b"preferred_locales%5B%5D=en&preferred_locales%5B%5D=fr" in create.body
        assert b"metadata%5Border_id%5D=1" in create.body
        assert ("expand[]", "data.default_source") in first.query and ("created[gte]", "1700000001") in first.query
    out = lines(proc.stdout)
    assert out[0] == ["en", "fr"]
    assert len(out[1:]) == 151 and len(set(out[1:])) == 151  # every customer once, the new one too


def test_param_style_of_an_http_connection_and_a_connector_file(tmp_path: Path) -> None:
    """param_style in `use` (http) and in a connector file: "indices" gives tags[0]=a, "brackets"
    tags[]=a, the default repeats the name."""
    write(tmp_path, "connectors/pay.toml",
          'name = "pay"\nbase_url = "https://api.stripe.com"\nparam_style = "indices"\n'
          '[config]\nkey = { required = true, secret = true }\n'
          '[auth]\ntype = "basic"\nuser = "{key}"\npassword = ""\n'
          '[operations.create_customer]\nmethod = "POST"\npath = "/v1/customers"\ncontent_type = "form"\n')
    write(tmp_path, "f.flow",
          'use pay = pay(key: secret.STRIPE_KEY, base_url: env.STRIPE_BASE_URL)\n'
          'use raw = http(base_url: env.STRIPE_BASE_URL, auth: bearer(secret.STRIPE_KEY), param_style: "brackets")\n'
          'send {email: "a@example.com", preferred_locales: ["de", null, "it"]} to pay.create_customer as a\n'
          'send {email: "b@example.com", preferred_locales: ["fr"]} to raw.post("/v1/customers", form: true) as b\n'
          'call raw.get("/v1/customers", query: {expand: ["data.default_source"], limit: 2}) as page\n'
          'emit [a.preferred_locales, b.preferred_locales, len(page.data)]\n')
    with StripeMock() as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"STRIPE_KEY": "sk_test_123", "STRIPE_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [r.status for r in api.requests] == [200, 200, 200]
        assert b"preferred_locales%5B0%5D=de&preferred_locales%5B1%5D=it" in api.requests[0].body
        assert api.requests[0].headers["authorization"].startswith("Basic ")  # the key as the user
        assert b"preferred_locales%5B%5D=fr" in api.requests[1].body
    assert lines(proc.stdout) == [[["de", "it"], ["fr"], 2]]


PAY = '''name = "pay"
base_url = "https://api.stripe.com"
param_style = "brackets"

[config]
key = { required = true, secret = true }

[auth]
type = "basic"
user = "{key}"
password = ""

[operations.create_payment_intent]
method = "POST"
path = "/v1/payment_intents"
content_type = "form"
idempotency_key = "order-{metadata.order_id}"
'''


def test_stripe_idempotency_keys_from_a_nested_field_or_the_send(tmp_path: Path) -> None:
    """Stripe refuses a parameter it does not know (400 parameter_unknown), so the order id a key is
    made of cannot ride in the record beside amount and currency: the idempotency_key template took a
    top-level field only ('order-{metadata.order_id}' failed every record: needs the configuration key),
    and a send could not give a key of its own (idempotency_key: was an unknown argument). A dotted name
    now reaches into the record, and a send may give idempotency_key:. Retried after a 503 and run twice,
    each order is charged once; the declined card fails its record with Stripe's own words."""
    write(tmp_path, "connectors/pay.toml", PAY)
    write(tmp_path, "orders.csv", "order_id,amount,pm\n1,1000,pm_card_visa\n2,2000,pm_card_chargeDeclined\n"
                                  "3,3000,pm_card_visa\n")
    write(tmp_path, "charge.flow",
          'use pay = pay(key: secret.STRIPE_KEY, base_url: env.STRIPE_BASE_URL)\n'
          'use src = file(path: "orders.csv")\n'
          'call src.read() as rows\n'
          'for each r in rows\n'
          '  let pi = {amount: number(r.amount), currency: "eur", payment_method: r.pm, confirm: true,\n'
          '            metadata: {order_id: r.order_id}}\n'
          '  if r.order_id == "3"\n'
          '    send pi to pay.create_payment_intent(idempotency_key: "pi-" + r.order_id) as made\n'
          '    emit made.id\n'
          '  else\n'
          '    send pi to pay.create_payment_intent as made\n'
          '    emit made.id\n'
          '  end\n'
          'end\n')
    env = {"STRIPE_KEY": "sk_test_123"}
    with StripeMock() as api:
        api.faults.append((1, 503))
        env["STRIPE_BASE_URL"] = api.url
        for _ in range(2):
            proc = cli("run", "charge.flow", "--log-format", "text", cwd=tmp_path, env=env)
            assert proc.status == 3, proc.stderr
            assert "record failed at charge.flow:11:16: POST " in proc.stderr
            assert "answered 402 Payment Required" in proc.stderr and "Your card was declined." in proc.stderr
            assert "card_declined" in proc.stderr
        keys = [r.headers.get("idempotency-key") for r in api.requests]
        assert keys == ["order-1", "order-1", "order-2", "pi-3", "order-1", "order-2", "pi-3"]
        assert [r.status for r in api.requests] == [503, 200, 402, 200, 200, 402, 200]
        assert [i["metadata"] for i in api.intents] == [{"order_id": "1"}, {"order_id": "3"}]  # once each
        assert all(b"order_id=" not in r.body.replace(b"%5Border_id%5D", b"") for r in api.requests)


# ---- GitHub --------------------------------------------------------------------------------------

GH_ENV = {"GITHUB_TOKEN": "ghp_test"}


def gh_export(folder: Path) -> None:
    write(folder, "export.flow",
          'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second")\n'
          'call gh.list_issues(owner: "octo", repo: "hello", state: "all") as issues\n'
          'for each i in issues\n  emit i.number\nend\n')


def test_github_pages_every_issue_once_through_its_rate_limits(tmp_path: Path) -> None:
    """Link-header pages of 100 (per_page at GitHub's maximum), through a secondary rate limit as a 403
    and as a 429 with retry-after and a spent primary limit (remaining 0, reset in epoch seconds):
    each issue once, each page asked until it was answered."""
    gh_export(tmp_path)
    with GitHubMock(issues=345) as api:
        api.faults += [(2, 403), (3, 429), (4, 4030)]
        proc = cli("run", "export.flow", "--log-format", "text", cwd=tmp_path,
                   env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [(r.q("page"), r.status) for r in api.requests] == [
            (None, 200), ("2", 403), ("2", 429), ("2", 403), ("2", 200), ("3", 200), ("4", 200)]
        assert {r.q("per_page") for r in api.requests} == {"100"}
        assert {r.headers["accept"] for r in api.requests} == {"application/vnd.github+json"}
    numbers = lines(proc.stdout)
    assert sorted(numbers) == list(range(1, 346))


def test_a_github_secondary_rate_limit_said_in_the_message_alone_is_waited_out(tmp_path: Path) -> None:
    """GitHub may answer a secondary rate limit with a 403 that has neither retry-after nor
    x-ratelimit-remaining: 0, only the message ("You have exceeded a secondary rate limit"), and asks
    then to "wait for at least one minute before retrying". That 403 was taken for a permission
    refusal and not retried: the list failed after its first page. It is now a rate limit, waited for
    a minute (the run is stopped by --max-seconds during the wait: no request more is made in it)."""
    gh_export(tmp_path)
    with GitHubMock(issues=150) as api:
        api.faults += [(2, 4031)]
        proc = cli("run", "export.flow", "--log-format", "text", "--max-seconds", "1", cwd=tmp_path,
                   env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert [(r.q("page"), r.status) for r in api.requests] == [(None, 200), ("2", 403)]
    said = "page=2 answered 403 for the API's rate limit (refusal 1, no attempt spent); retrying in 60.00s"
    assert said in proc.stderr, proc.stderr
    assert proc.status == 1 and "max_seconds" in proc.stderr
    assert sorted(lines(proc.stdout)) == list(range(1, 101))


def test_github_and_asana_read_a_list_in_the_query_comma_separated(tmp_path: Path) -> None:
    """GitHub's labels and Asana's opt_fields are comma-separated lists (labels=bug,ui,
    opt_fields=name,notes). The stdlib connectors sent a list as a repeated name (labels=bug&labels=ui),
    of which the API reads one: issues with the label ui alone were listed as if they had both, and
    Asana's records came without the fields asked for. They now say param_style = "comma"."""
    write(tmp_path, "f.flow",
          'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second")\n'
          'use asana = asana(token: secret.ASANA_TOKEN, base_url: env.ASANA_BASE_URL)\n'
          'call gh.list_issues(owner: "octo", repo: "hello", labels: ["bug", "ui"]) as both\n'
          'emit [i.number for i in both]\n'
          'call asana.list_project_tasks(project_gid: "1200", opt_fields: ["name", "notes"]) as tasks\n'
          'emit [[t.name, t.notes] for t in tasks]\n')
    with GitHubMock(issues=4) as gh, AsanaMock(tasks=3) as asana:
        gh.issues[0]["labels"] = [{"name": "bug"}, {"name": "ui"}]
        gh.issues[1]["labels"] = [{"name": "ui"}]
        proc = cli("run", "f.flow", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": gh.url,
                                                     "ASANA_TOKEN": "1/asana-pat",
                                                     "ASANA_BASE_URL": asana.url + "/api/1.0"})
        assert proc.status == 0, proc.stderr
        assert [v for k, v in gh.requests[0].query if k == "labels"] == ["bug,ui"]
        assert [v for k, v in asana.requests[0].query if k == "opt_fields"] == ["name,notes"]
    assert lines(proc.stdout) == [[1], [["Task 0", "n0"], ["Task 1", "n1"], ["Task 2", "n2"]]]


def test_max_retry_wait_sets_how_long_a_rate_limit_may_be_waited_for(tmp_path: Path) -> None:
    """GitHub's primary limit, once spent, resets up to an hour later (x-ratelimit-reset), and a
    connection waited at most 120 s: longer, every record failed at once, and nothing in a flow could
    say to wait for the reset. max_retry_wait in `use` sets that cap (here lowered, so the test is
    quick; raised the same way), and the message names it."""
    write(tmp_path, "f.flow",
          'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second",\n'
          '                max_retry_wait: 0.5)\n'
          'for each t in ["one", "two"]\n'
          '  send {title: t} to gh.create_issue(owner: "octo", repo: "hello") as made\n'
          '  emit made.number\n'
          'end\n')
    with GitHubMock() as api:
        api.faults.append((1, 4030))  # remaining 0, the reset 1-2 s ahead
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert [r.status for r in api.requests] == [403, 201]
    assert proc.status == 3, proc.stderr
    assert re.search(r"record failed at f.flow:4:22: POST \S+/repos/octo/hello/issues answered 403 Forbidden and asks "
                     r"to wait [12]s, more than the 0.5s this connection waits \(max_retry_wait\): "
                     r'\{"message": "API rate limit exceeded', proc.stderr), proc.stderr
    assert lines(proc.stdout) == [1]


def test_the_stripe_charges_example_pays_each_order_once(tmp_path: Path) -> None:
    """examples/stripe_charges against the strict Stripe mock, run twice: each customer created once
    (preferred_locales as a list), each order paid once (the second run's requests replayed by their
    idempotency keys), the declined card a failed record with Stripe's message."""
    folder = copy_example("stripe_charges", tmp_path)
    with StripeMock() as api:
        env = {"STRIPE_TOKEN": "sk_test_123", "STRIPE_BASE_URL": api.url}
        for _ in range(2):
            proc = cli("run", "charge_orders.flow", "--log-format", "text", cwd=folder, env=env)
            assert proc.status == 3, proc.stderr
            assert lines(proc.stdout) == [{"order": "A-1001", "payment": "pi_000001", "status": "succeeded"},
                                          {"order": "A-1003", "payment": "pi_000002", "status": "succeeded"}]
            assert "answered 402 Payment Required" in proc.stderr and "Your card was declined." in proc.stderr
        assert [(c["email"], c["preferred_locales"]) for c in api.customers] == [
            ("ann@example.com", ["en", "nb"]), ("bob@example.com", ["en"])]
        assert [i["metadata"]["order_id"] for i in api.intents] == ["A-1001", "A-1003"]
        assert {r.status for r in api.requests} == {200, 402}
        assert {r.headers.get("idempotency-key") for r in api.requests if r.path == "/v1/payment_intents"} == {
            "order-A-1001", "order-A-1002", "order-A-1003"}
    errors = lines(cli("errors", "charge_orders.flow", "--json", cwd=folder).stdout)
    assert [(e["record"]["order_id"], e["status"]) for e in errors] == [("A-1002", 402)]


def test_a_dry_run_shows_a_form_body_as_it_would_be_sent(tmp_path: Path) -> None:
    """--dry-run logged a form body as JSON ({"preferred_locales":["en","fr"]}), not as the fields
    Stripe would get, so it could not show whether a list goes as preferred_locales[]=en. It now
    shows the fields (an & or = in a value %-encoded, secrets masked); nothing is sent."""
    write(tmp_path, "f.flow",
          'use stripe = stripe(token: secret.STRIPE_KEY, base_url: env.STRIPE_BASE_URL)\n'
          'send {email: "z@example.com", name: "A&B=C", description: secret.NOTE, preferred_locales: ["en", "fr"],\n'
          '      metadata: {a: 1}} to stripe.create_customer\n')
    with StripeMock() as api:
        proc = cli("run", "f.flow", "--dry-run", "--log-format", "text", cwd=tmp_path,
                   env={"STRIPE_KEY": "sk_test_123", "NOTE": "hush-hush-1234", "STRIPE_BASE_URL": api.url})
        assert api.requests == []
    assert proc.status == 0, proc.stderr
    assert (f"dry run, not sent: stripe: POST {api.url}/v1/customers email=z@example.com&name=A%26B%3DC&"
            "description=***&preferred_locales[]=en&preferred_locales[]=fr&metadata[a]=1") in proc.stderr
    assert "hush" not in proc.stderr


def test_a_stripe_request_still_running_under_its_key_is_asked_again(tmp_path: Path) -> None:
    """A payment whose first request timed out while Stripe was still working on it: the retry, with
    the same Idempotency-Key, is answered 409 idempotency_key_in_use with Stripe-Should-Retry: true
    ("Please try again later"). A 409 was never retried, so the record failed although the payment
    went through. An answer's Stripe-Should-Retry is now taken at its word: asked again, Stripe replays
    the first answer, and the order is paid once, with no failed record."""
    write(tmp_path, "f.flow",
          'use stripe = stripe(token: secret.STRIPE_KEY, base_url: env.STRIPE_BASE_URL, timeout: 0.4)\n'
          'let pi = {amount: 500, currency: "eur", confirm: true, payment_method: "pm_card_visa"}\n'
          'send pi to stripe.create_payment_intent(idempotency_key: "order-7") as paid\n'
          'emit paid.id\n')
    with StripeMock() as api:
        api.slow.append(0.9)
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path,
                   env={"STRIPE_KEY": "sk_test_123", "STRIPE_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        statuses = [r.status for r in api.requests]
        assert 409 in statuses and statuses[-1] == 200, statuses
        assert {r.headers.get("idempotency-key") for r in api.requests} == {"order-7"}
        assert len(api.intents) == 1
    assert lines(proc.stdout) == ["pi_000001"]


def test_a_lookup_after_a_create_to_the_same_api_finds_the_new_record(tmp_path: Path) -> None:
    """The documented upsert (lookup, create when null) created a record twice when its source held the
    same key twice: a lookup's answer was cached for the whole run, so the second 'Alpha' got the null
    of the first, from before the first was created, and GitHub (which has no idempotency keys) got two
    issues. A lookup's answer now holds until the next write to that connection: the second lookup asks
    again and finds the issue. A lookup without a write between keeps its cache."""
    write(tmp_path, "in.csv", "title\nAlpha\nBeta\nAlpha\n")
    write(tmp_path, "f.flow",
          'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second")\n'
          'use src = file(path: "in.csv")\n'
          'call src.read() as rows\n'
          'for each r in rows key r.title\n'
          '  lookup gh.find_issue(q: "repo:octo/hello in:title {r.title}") as existing\n'
          '  lookup gh.find_issue(q: "repo:octo/hello in:title {r.title}") as again\n'
          '  if existing == null\n'
          '    send {title: r.title} to gh.create_issue(owner: "octo", repo: "hello") as made\n'
          '    emit ["created", made.number]\n'
          '  else\n'
          '    emit ["found", existing.number]\n'
          '  end\n'
          'end\n')
    with GitHubMock() as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [i["title"] for i in api.issues] == ["Alpha", "Beta"]
        assert api.count("GET", "/search/issues") == 3  # the second lookup of each row came from the cache
    assert lines(proc.stdout) == [["created", 1], ["created", 2], ["found", 1]]


def test_a_github_search_in_a_loop_reads_every_page(tmp_path: Path) -> None:
    """gh.find_issue (GET /search/issues) had no pagination: a loop over a search read GitHub's first
    page of 30 and ended, exit 0, as if that were all (30 of 130 issues, no warning). It now pages by the
    Link header, 100 a page, as the lists do; a lookup still takes the first issue found."""
    write(tmp_path, "f.flow",
          'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second")\n'
          'call gh.find_issue(q: "repo:octo/hello is:open crash") as found\n'
          'for each i in found\n  emit i.number\nend\n'
          'lookup gh.find_issue(q: "repo:octo/hello crash") as first\n'
          'emit ["first", first.number]\n')
    with GitHubMock(issues=130) as api:
        for issue in api.issues:
            issue["title"] = f"Crash {issue['number']}"
        proc = cli("run", "f.flow", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [(r.q("page"), r.q("per_page")) for r in api.requests] == [(None, "100"), ("2", "100"), (None, "100")]
    out = lines(proc.stdout)
    assert out[:-1] == list(range(1, 131)) and out[-1] == ["first", 1]


def test_the_github_issues_from_csv_example(tmp_path: Path) -> None:
    """examples/github_issues/issues_from_csv.flow against the strict GitHub mock: a title seen twice
    opens one issue and updates it, labels go as a list, the row without a title fails alone with
    GitHub's 422 (Validation Failed, missing_field title), kept in the error store."""
    folder = copy_example("github_issues", tmp_path)
    with GitHubMock(owner="octo", repo="hello") as api:
        proc = cli("run", "issues_from_csv.flow", "--param", "repo=octo/hello", "--log-format", "text", cwd=folder,
                   env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 3, proc.stderr
        assert [(i["number"], i["title"], [x["name"] for x in i["labels"]], i["body"]) for i in api.issues] == [
            (1, "Export fails on empty files", ["bug", "export"], "Seen again on 2.1."),
            (2, "Add a dark theme", ["enhancement"], "Many asked for it.")]
        assert [(r.method, r.status) for r in api.requests if r.method != "GET"] == [
            ("POST", 201), ("POST", 201), ("PATCH", 200), ("POST", 422)]
    assert lines(proc.stdout) == [{"created": 1, "title": "Export fails on empty files"},
                                  {"created": 2, "title": "Add a dark theme"},
                                  {"updated": 1, "title": "Export fails on empty files"}]
    assert ('answered 422 Unprocessable Entity: {"message": "Validation Failed", "errors": [{"resource": "Issue", '
            '"code": "missing_field", "field": "title"}]') in proc.stderr
    errors = lines(cli("errors", "issues_from_csv.flow", "--json", cwd=folder).stdout)
    assert [(e["record"]["body"], e["status"]) for e in errors] == [("A row without a title", 422)]


def test_no_request_is_sent_while_githubs_rate_limit_is_spent(tmp_path: Path) -> None:
    """An answer with x-ratelimit-remaining: 0 was the last one the limit allowed, and GitHub asks for
    no request before x-ratelimit-reset (one made anyway is refused, and going on gets a token banned).
    The next page was asked at once and refused with a 403 before the wait. A connection now holds its
    next request until the reset: every page answered 200, none refused, the second after the reset."""
    gh_export(tmp_path)
    with GitHubMock(issues=250) as api:
        api.limit = api.remaining = 2  # the second page spends the limit; it resets 2 s later
        api.reset_in = 2
        proc = cli("run", "export.flow", "--log-format", "text", cwd=tmp_path,
                   env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [(r.q("page"), r.status) for r in api.requests] == [(None, 200), ("2", 200), ("3", 200)]
        assert "waits" in proc.stderr and "for the reset of the spent rate limit" in proc.stderr
    assert sorted(lines(proc.stdout)) == list(range(1, 251))


def test_a_spent_rate_limit_past_max_retry_wait_fails_the_request_unsent(tmp_path: Path) -> None:
    write(tmp_path, "f.flow",
          'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second",\n'
          '                max_retry_wait: 1)\n'
          'for each n in [1, 2]\n'
          '  lookup gh.get_issue(owner: "octo", repo: "hello", issue_number: n) as issue\n'
          '  emit issue.number\n'
          'end\n')
    with GitHubMock(issues=2) as api:
        api.limit = api.remaining = 1  # the first answer spends the limit; it resets in 30 s
        api.reset_in = 30
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert [r.status for r in api.requests] == [200]  # the second was not sent
    assert proc.status == 3, proc.stderr
    assert re.search(r"record failed at f.flow:4:10: GET \S+/repos/octo/hello/issues/2 not sent: the API's rate "
                     r"limit is spent \(X-RateLimit-Remaining: 0\) for (29|30)s more, more than the 1s this "
                     r"connection waits \(max_retry_wait\)", proc.stderr), proc.stderr
    assert lines(proc.stdout) == [1]


# ---- Asana ---------------------------------------------------------------------------------------


def test_asana_pages_every_task_once_through_429s(tmp_path: Path) -> None:
    """Offset-token pages (limit 100, next_page.offset) with opt_fields, through 429s with Retry-After:
    each task once."""
    write(tmp_path, "f.flow",
          'use asana = asana(token: secret.ASANA_TOKEN, base_url: env.ASANA_BASE_URL, rate_limit: "50/second")\n'
          'call asana.list_project_tasks(project_gid: "1200", opt_fields: ["name", "completed"]) as tasks\n'
          'for each t in tasks\n  emit t.gid\nend\n')
    with AsanaMock(tasks=250) as api:
        api.faults += [(2, 429), (4, 429)]
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path,
                   env={"ASANA_TOKEN": "1/asana-pat", "ASANA_BASE_URL": api.url + "/api/1.0"})
        assert proc.status == 0, proc.stderr
        assert [r.status for r in api.requests] == [200, 429, 200, 429, 200]
        assert {r.q("limit") for r in api.requests} == {"100"}
    gids = lines(proc.stdout)
    assert len(gids) == 250 and len(set(gids)) == 250


def test_the_asana_tasks_example_against_the_asana_mock(tmp_path: Path) -> None:
    """examples/asana_tasks: each row one task in the project and one comment, both sent in a {"data": ...}
    envelope and read out of one; a 429 with Retry-After on a create is waited out, no record fails."""
    folder = copy_example("asana_tasks", tmp_path)
    with AsanaMock(project="1200000000000000") as api:
        api.faults += [(1, 429), (4, 429)]
        proc = cli("run", "tasks_from_csv.flow", "--log-format", "text", cwd=folder,
                   env={"ASANA_TOKEN": "1/asana-pat", "ASANA_BASE_URL": api.url + "/api/1.0"})
        assert proc.status == 0, proc.stderr
        assert [(t["name"], [p["gid"] for p in t["projects"]], t["due_on"]) for t in api.tasks] == [
            ("Order labels", ["1200000000000000"], "2026-12-10"),
            ("Call the printer", ["1200000000000000"], "2026-12-11")]
        assert [(s["target"]["gid"], s["text"]) for s in api.stories] == [
            (api.tasks[0]["gid"], "Imported from tasks.csv, line 2"),
            (api.tasks[1]["gid"], "Imported from tasks.csv, line 3")]
    assert lines(proc.stdout) == [{"title": t["name"], "gid": t["gid"]} for t in api.tasks]


def test_a_field_that_fills_the_path_is_not_sent_in_the_body_when_fields_leaves_it_out(tmp_path: Path) -> None:
    """`{customer}` in the path of the stdlib stripe update_customer may come from the record, as the
    docs say of every path placeholder; it was then also sent as a form field (customer=cus_000001),
    which Stripe refuses (400 Received unknown parameter: customer). A field that filled the path and
    that the operation's `fields` does not list now stays out of the body."""
    write(tmp_path, "f.flow",
          'use stripe = stripe(token: secret.STRIPE_KEY, base_url: env.STRIPE_BASE_URL)\n'
          'send {customer: "cus_000001", name: "Ann B"} to stripe.update_customer as changed\n'
          'emit changed.name\n')
    with StripeMock(customers=1) as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"STRIPE_KEY": "sk_test_123", "STRIPE_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert [(r.path, r.body, r.status) for r in api.requests] == [("/v1/customers/cus_000001", b"name=Ann+B", 200)]
    assert lines(proc.stdout) == ["Ann B"]


def test_a_dry_run_says_why_a_path_taken_from_a_writes_answer_is_null(tmp_path: Path) -> None:
    """examples/asana_tasks under --dry-run: each task's comment goes to /tasks/{task_gid}/stories with
    the gid of the task created just before, and a dry run sends no write, so that answer is null.
    Every record failed with "the path '/tasks/{task_gid}/stories' needs a value for 'task_gid'" and
    nothing more, as if the data lacked it. The message now says that a dry run's write answers null
    and names flowlang plan, for the stdlib connector and for http alike; nothing is sent."""
    folder = copy_example("asana_tasks", tmp_path)
    write(folder, "raw.flow",
          'use api = http(base_url: env.ASANA_BASE_URL, auth: bearer(secret.ASANA_TOKEN))\n'
          'send {data: {name: "x"}} to api.post("/tasks") as t\n'
          "send {data: {text: \"y\"}} to api.post('/tasks/{gid}/stories', gid: t.gid)\n")
    hint = ("; in a dry run a write sends nothing and its `as NAME` is null, so a value taken from its answer is "
            "null too (flowlang plan lists the writes that follow one)")
    with AsanaMock(project="1200000000000000") as api:
        env = {"ASANA_TOKEN": "1/asana-pat", "ASANA_BASE_URL": api.url + "/api/1.0"}
        proc = cli("run", "tasks_from_csv.flow", "--dry-run", "--log-format", "text", cwd=folder, env=env)
        raw = cli("run", "raw.flow", "--dry-run", "--log-format", "text", cwd=folder, env=env)
        assert api.requests == []
    assert proc.status == 3, proc.stderr
    assert ("record failed at tasks_from_csv.flow:15:60: the path '/tasks/{task_gid}/stories' needs a value for "
            f"'task_gid'{hint}") in proc.stderr.replace(str(folder) + "/", "")
    assert "would send 2, failed 2" in proc.stderr
    assert raw.status == 1 and f"needs a value for 'gid'{hint}" in raw.stderr, raw.stderr
    assert cli("errors", "tasks_from_csv.flow", cwd=folder).stdout.strip().endswith("no open errors")


def test_a_recording_that_failed_before_its_first_exchange_keeps_the_old_cassette(tmp_path: Path) -> None:
    """examples/asana_tasks recorded, then recorded again in a shell without ASANA_TOKEN: the second run
    failed at its use (the bearer token is empty) and replaced the cassette with one of 4 lines and no
    exchange, said 'recorded 4 entries ...; replay with: flowlang test ...', and that replay failed
    ('the cassette has no recorded request for rows.read()'): a replay needs no secrets and runs on past
    the use. Such a run now records nothing and leaves the old cassette as it was, saying so."""
    folder = copy_example("asana_tasks", tmp_path)
    with AsanaMock(project="1200000000000000") as api:
        env = {"ASANA_TOKEN": "1/asana-pat", "ASANA_BASE_URL": api.url + "/api/1.0"}
        assert cli("run", "tasks_from_csv.flow", "--record", "tests/t", cwd=folder, env=env).status == 0
        good = (folder / "tests" / "t" / "cassette.jsonl").read_bytes()
        proc = cli("run", "tasks_from_csv.flow", "--record", "tests/t", "--log-format", "text", cwd=folder,
                   env={**env, "ASANA_TOKEN": ""})
        assert len(api.tasks) == 2  # the second run sent nothing
    assert proc.status == 1 and "the bearer token is empty" in proc.stderr
    assert ("error: nothing recorded: the run failed before its first exchange, so a replay of it could not pass; "
            "tests/t/cassette.jsonl was left as it was") in proc.stderr
    assert "replay with" not in proc.stderr
    assert (folder / "tests" / "t" / "cassette.jsonl").read_bytes() == good
    replay = cli("test", "tasks_from_csv.flow", "--cassette", "tests/t", "--log-format", "text", cwd=folder)
    assert replay.status == 0 and "PASS" in replay.stdout + replay.stderr, replay.stderr
