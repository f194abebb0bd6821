"""HTTP at the edges, against the project's server on 127.0.0.1: a flow's query value replaces the
connector's default, form bodies and url_encode(), OAuth2 client authentication by HTTP Basic, a
stdlib base_url override with placeholders, a has_more stop condition, and binary answers."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import flowlang
from conftest import cli
from fakeapi import FakeApi, Request
from flowlang.connectors.http.transport import Transport


def run(text: str, api: FakeApi, **kw: Any) -> flowlang.Result:
    flow = flowlang.compile(text, name="t.flow", bindings=())
    return flow.run(env={"API": api.url}, **kw)


def test_a_query_value_in_the_flow_replaces_the_connectors_default() -> None:
    with FakeApi() as api:
        seen: list[str] = []

        def issues(req: Request) -> tuple[int, dict[str, str], Any]:
            seen.append(req.query_string)
            page = int(req.query.get("page", 1))
            link = {"Link": f'<{api.url}/repos/o/r/issues?per_page=5&page={page + 1}>; rel="next"'} if page < 3 else {}
            return 200, link, [{"n": page * 10 + i} for i in range(5 if page < 3 else 2)]
        api.route("GET", "/repos/o/r/issues", issues)
        result = run('use gh = github(token: "t", base_url: env.API)\n'
                     'call gh.list_issues(owner: "o", repo: "r", query: {per_page: 5}) as all\n'
                     "emit len(list(all))\n", api)
        assert result.ok, result.error
        assert all(urllib.parse.parse_qsl(q).count(("per_page", "5")) == 1 for q in seen), seen
        assert not any("per_page=100" in q for q in seen), seen
        assert result.outputs == [12] and len(seen) == 3


def test_form_bodies_and_url_encode() -> None:
    with FakeApi() as api:
        api.route("POST", "/v1/customers", lambda req: (200, {}, {"raw": req.raw.decode(),
                                                                  "type": req.headers["content-type"]}))
        result = run("""
use api = http(base_url: env.API)
let fields = {email: "ann+1@x.org", name: "Ann B", metadata: {tier: "gold"}, tags: ["a", "b"], skip: null}
call api.post("/v1/customers", form: fields) as made
emit made
send {email: "bob@x.org", note: "a&b=c"} to api.post("/v1/customers", form: true) as sent
emit sent
emit [url_encode("a b/c?d=é"), url_encode({q: "x y", n: 1.50, ok: true})]
""", api)
        assert result.ok, result.error
        first, second, encoded = result.outputs
        assert first["type"] == "application/x-www-form-urlencoded"
        assert urllib.parse.parse_qsl(first["raw"]) == [("email", "ann+1@x.org"), ("name", "Ann B"),
                                                         ("metadata[tier]", "gold"), ("tags", "a"), ("tags", "b")]
        assert urllib.parse.parse_qsl(second["raw"]) == [("email", "bob@x.org"), ("note", "a&b=c")]
        assert encoded == ["a%20b%2Fc%3Fd%3D%C3%A9", "q=x+y&n=1.50&ok=true"]


def test_an_empty_object_or_list_in_a_form_body_is_sent_as_an_empty_field() -> None:
    """Stripe clears a field with an empty value (metadata=, default_tax_rates=); before, an empty object
    or list was left out of the body, so the field could not be cleared. A null is still left out."""
    with FakeApi() as api:
        api.route("POST", "/v1/customers/cus_1", lambda req: (200, {}, {"raw": req.raw.decode()}))
        result = run("""
use api = http(base_url: env.API)
let fields = {metadata: {}, default_tax_rates: [], items: [{price: "p1", metadata: {}}], skip: null, name: ""}
call api.post("/v1/customers/cus_1", form: fields) as made
emit made.raw
emit [url_encode({metadata: {}, tags: []}), url_encode({})]
""", api)
        assert result.ok, result.error
        raw, encoded = result.outputs
        assert raw == "metadata=&default_tax_rates=&items%5B0%5D%5Bprice%5D=p1&items%5B0%5D%5Bmetadata%5D=&name="
        assert urllib.parse.parse_qsl(raw, keep_blank_values=True) == [
            ("metadata", ""), ("default_tax_rates", ""), ("items[0][price]", "p1"), ("items[0][metadata]", ""),
            ("name", "")]
        assert encoded == ["metadata=&tags=", ""]
        assert api.count("POST", "/v1/customers/cus_1") == 1


def test_a_list_of_nulls_in_a_form_body_is_an_empty_list_not_a_lost_field() -> None:
    """A list's nulls are no items ([a, null] sends tags=a), so [null, null] is the empty list (tags=, as
    []); before, the field was left out without a word, like a lone null (which still is)."""
    with FakeApi() as api:
        bodies: list[str] = []
        api.route("POST", "/v1/customers", lambda req: (bodies.append(req.raw.decode()) or (200, {}, {})))
        result = run("""
use api = http(base_url: env.API)
for each r in [{id: 1, tags: [null, null]}, {id: 2, tags: ["a", null]}, {id: 3, tags: null}, {id: 4, tags: []},
               {id: 5, tags: [null]}, {id: 6, lines: [{qty: 1, codes: [null]}]}]
  send r to api.post("/v1/customers", form: true)
end
emit url_encode({tags: [null, null]})
""", api)
        assert result.ok, result.error
        assert sorted(bodies) == ["id=1&tags=", "id=2&tags=a", "id=3", "id=4&tags=", "id=5&tags=",
                                  "id=6&lines%5B0%5D%5Bqty%5D=1&lines%5B0%5D%5Bcodes%5D="]
        assert result.outputs == ["tags="]
        assert api.count("POST", "/v1/customers") == 6


def test_a_connector_file_sends_form_bodies(tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text("""
name = "shop"
base_url = "http://unused.invalid"
content_type = "form"

[operations.create_charge]
method = "POST"
path = "/charges"

[operations.create_note]
method = "POST"
path = "/notes"
content_type = "json"
""")
    with FakeApi() as api:
        api.route("POST", "/(charges|notes)", lambda req: (200, {}, {"raw": req.raw.decode(),
                                                                    "type": req.headers["content-type"]}))
        flow = tmp_path / "f.flow"
        flow.write_text('use shop = shop(base_url: env.API)\n'
                        'send {amount: 2000, currency: "eur"} to shop.create_charge() as c\nemit c\n'
                        'send {text: "hi"} to shop.create_note() as n\nemit n\n')
        result = flowlang.load(flow).run(env={"API": api.url})
        assert result.ok, result.error
        charge, note = result.outputs
        assert charge == {"raw": "amount=2000&currency=eur", "type": "application/x-www-form-urlencoded"}
        assert note == {"raw": '{"text":"hi"}', "type": "application/json"}


CANARY = 'cl1ent-"secret"\\with\'quotes-ünïcödé-' + "x" * 520


@pytest.mark.parametrize("method", ["basic", "post"])
def test_oauth2_client_credentials_by_basic_or_in_the_form(method: str) -> None:
    with FakeApi() as api:
        got: dict[str, Any] = {}

        def token(req: Request) -> tuple[int, dict[str, str], Any]:
            form = dict(urllib.parse.parse_qsl(req.raw.decode()))
            got.update(form=form, auth=req.headers.get("authorization"))
            if method == "basic":
                scheme, _, value = (req.headers.get("authorization") or "").partition(" ")
                user, _, password = base64.b64decode(value).decode().partition(":")
                ok = scheme == "Basic" and urllib.parse.unquote_plus(user) == "my id" and \
                    urllib.parse.unquote_plus(password) == CANARY and "client_secret" not in form
            else:
                ok = form.get("client_secret") == CANARY and form.get("client_id") == "my id"
            if not ok:
                return 401, {}, {"error": "invalid_client"}
            return 200, {}, {"access_token": "tok", "expires_in": 3600}
        api.route("POST", "/token", token)
        api.route("GET", "/data", lambda req: (200, {}, {"auth": req.headers.get("authorization")}))
        result = run(f"""
let auth = oauth2_client_credentials(env.API + "/token", "my id", secret.CS, auth_method: "{method}")
use api = http(base_url: env.API, auth: auth)
call api.get("/data") as d
emit d
""", api, secrets={"CS": CANARY})
        assert result.ok, result.error
        assert result.outputs == [{"auth": "Bearer tok"}]
        assert got["form"]["grant_type"] == "client_credentials"
        logs = "".join(str(r) for r in result.errors)
        assert CANARY not in logs


def test_oauth2_auth_method_in_a_connector_file(tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "corp.toml").write_text("""
name = "corp"
base_url = "http://unused.invalid"
[config]
client_id = { required = true }
client_secret = { required = true, secret = true }
token_url = { required = true }
[auth]
type = "oauth2_client_credentials"
token_url = "{token_url}"
client_id = "{client_id}"
client_secret = "{client_secret}"
auth_method = "basic"
[operations.get_me]
method = "GET"
path = "/me"
""")
    with FakeApi() as api:
        api.route("POST", "/token", lambda req: (200, {}, {"access_token": "t1"}) if
                  req.headers.get("authorization", "").startswith("Basic ") and b"client_secret" not in req.raw
                  else (401, {}, {"error": "invalid_client"}))
        api.route("GET", "/me", lambda req: (200, {}, {"auth": req.headers.get("authorization")}))
        flow = tmp_path / "f.flow"
        flow.write_text('use c = corp(client_id: "id", client_secret: "s", token_url: env.API + "/token", '
                        "base_url: env.API)\ncall c.get_me() as me\nemit me\n")
        result = flowlang.load(flow).run(env={"API": api.url})
        assert result.ok, result.error
        assert result.outputs == [{"auth": "Bearer t1"}]


def test_a_stdlib_base_url_override_fills_its_placeholders() -> None:
    with FakeApi() as api:
        api.route("GET", "/acme/customers", lambda req: (200, {}, [{"customerId": "c1"}]))
        result = run("use inv = inflow(company_id: \"acme\", token: \"t\", base_url: env.API + '/{company_id}')\n"
                     "call inv.list_customers() as all\nfor each c in all\n  emit c\nend\n", api)
        assert result.ok, result.error
        assert result.outputs == [{"customerId": "c1"}]
        assert api.requests[0].path == "/acme/customers"


@pytest.mark.parametrize("style", ["page", "offset", "cursor", "link", "next_url"])
def test_has_more_false_stops_without_an_extra_request(style: str) -> None:
    records = [{"id": i} for i in range(6)]
    with FakeApi() as api:
        def listing(req: Request) -> tuple[int, dict[str, str], Any]:
            q = req.query
            n = {"page": int(q.get("page", 1)) - 1, "offset": int(q.get("offset", 0)) // 3,
                 "cursor": int(q.get("cursor") or 0), "link": int(q.get("p", 0)),
                 "next_url": int(q.get("p", 0))}[style]
            chunk = records[n * 3:(n + 1) * 3]
            more = (n + 1) * 3 < len(records)
            after = f"{api.url}/items?p={n + 1}"  # a next link is always given: has_more decides
            return 200, {"Link": f'<{after}>; rel="next"'}, {"data": chunk, "has_more": more,
                                                              "next_cursor": str(n + 1), "next": after}
        api.route("GET", "/items", listing)
        pages = {"page": '{style: "page", size: 3, records: "data", has_more: "has_more"}',
                 "offset": '{style: "offset", size: 3, records: "data", has_more: "has_more"}',
                 "cursor": '{style: "cursor", cursor: "next_cursor", records: "data", has_more: "has_more"}',
                 "link": '{style: "link", records: "data", has_more: "has_more"}',
                 "next_url": '{style: "next_url", next: "next", records: "data", has_more: "has_more"}'}[style]
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/items", pages: {pages}) as all\n'
                     "emit [r.id for r in all]\n", api)
        assert result.ok, result.error
        assert result.outputs == [[0, 1, 2, 3, 4, 5]]
        assert api.count("GET", "/items") == 2  # two full pages; has_more: false stops


PDF = b"%PDF-1.4\n\x00\x01\x02\x1b[31mred\x1b[0m\xff\xfe binary \x07 data"


def test_a_binary_answer_is_a_bytes_value(tmp_path: Path) -> None:
    with FakeApi() as api:
        api.route("GET", "/invoice.pdf", lambda req: (200, {"Content-Type": "application/pdf"}, PDF))
        api.route("GET", "/bad", lambda req: (500, {"Content-Type": "application/octet-stream"}, PDF))
        flow = tmp_path / "f.flow"
        flow.write_text("""
use api = http(base_url: env.API)
use out = file(path: "out/invoice.pdf", format: "bytes")
call api.get("/invoice.pdf") as pdf
emit [type_of(pdf), len(pdf), base64_encode(pdf), "{pdf}"]
emit pdf
send pdf to out
try
  call api.get("/bad")
on error as e
  emit e.message
end
""")
        result = flowlang.load(flow).run(env={"API": api.url})
        assert result.ok, result.error
        info, raw, message = result.outputs
        assert info == ["bytes", len(PDF), base64.b64encode(PDF).decode(), f"<{len(PDF)} bytes>"]
        assert raw == PDF
        assert (tmp_path / "out" / "invoice.pdf").read_bytes() == PDF
        assert "\x1b" not in message and "\x00" not in message and f"<{len(PDF)} bytes of binary data>" in message


def test_stripe_style_lists_page_by_the_last_id_until_has_more_is_false() -> None:
    customers = [{"id": f"cus_{i:03d}", "object": "customer"} for i in range(7)]
    with FakeApi() as api:
        def listing(req: Request) -> tuple[int, dict[str, str], Any]:
            after = req.query.get("starting_after")
            start = next(i + 1 for i, c in enumerate(customers) if c["id"] == after) if after else 0
            limit = int(req.query["limit"])
            chunk = customers[start:start + limit]
            return 200, {}, {"object": "list", "data": chunk, "has_more": start + limit < len(customers)}
        api.route("GET", "/v1/customers", listing)
        result = run("""
use api = http(base_url: env.API)
let pages = {style: "cursor", cursor_param: "starting_after", cursor_field: "id", size: 3, records: "data",
             has_more: "has_more"}
call api.get("/v1/customers", pages: pages) as all
emit [c.id for c in all]
""", api)
        assert result.ok, result.error
        assert result.outputs == [[c["id"] for c in customers]]
        assert [r.query.get("starting_after") for r in api.requests] == [None, "cus_002", "cus_005"]


def test_a_header_sent_twice_is_read_as_both_values() -> None:
    """An answer may carry a header more than once (RFC 9110 joins such values with commas): two
    `Link` lines with `rel="next"` in the first still page on, and a flow reading an answer's headers
    sees both values, Set-Cookie's joined with a newline (its values hold commas)."""
    with FakeApi() as api:
        seen: list[int] = []

        def issues(req: Request) -> tuple[int, dict[str, Any], Any]:
            page = int(req.query.get("page", 1))
            seen.append(page)
            links = [f'<{api.url}/repos/o/r/issues?page={page + 1}>; rel="next"',
                     f'<{api.url}/repos/o/r/issues?page=3>; rel="last"'] if page < 3 else []
            return 200, {"Link": links} if links else {}, [{"n": page}]
        api.route("GET", "/repos/o/r/issues", issues)
        api.route("GET", "/cookies", lambda req: (200, {"Set-Cookie": ["a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
                                                                        "b=2"], "X-Tag": ["x", "y"]}, {}))
        result = run('use gh = github(token: "t", base_url: env.API)\n'
                     'call gh.list_issues(owner: "o", repo: "r") as all\n'
                     "emit [i.n for i in list(all)]\n", api)
        assert result.ok, result.error
        assert result.outputs == [[1, 2, 3]] and seen == [1, 2, 3]
        async def fetch() -> dict[str, str]:
            transport = Transport(10.0, True)
            try:
                return (await transport.send("GET", f"{api.url}/cookies", {}, None)).headers
            finally:
                await transport.close()
        headers = asyncio.run(fetch())
        assert headers["x-tag"] == "x, y"
        assert headers["set-cookie"] == "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\nb=2"


def test_a_secret_with_a_trailing_newline_in_a_header_is_a_clear_error(tmp_path: Path) -> None:
    # a token read from a file keeps its newline: aiohttp refuses the header, and that was "internal error
    # (ValueError: Forbidden control character ...); this is a bug in flowlang", with no place
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, auth: bearer(secret.TOKEN))\n'
                                     'call api.get("/me") as me\n')
    with FakeApi() as api:
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path,
                   env={"API": api.url, "TOKEN": "tok-9f8e7d\n"})
        assert api.requests == []
    assert proc.status == 1, proc.stderr
    assert (f"f.flow:2:6: error: GET {api.url}/me: the header 'Authorization' holds a line break in its value, "
            "which an HTTP header cannot hold (it ends with one: a secret or a value read from a file with its "
            "newline? trim() it)") in proc.stderr
    assert "internal error" not in proc.stderr and "tok-9f8e7d" not in proc.stderr


def test_headers_from_data_that_http_cannot_carry_fail_their_record_alone(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API)\n'
                                     'for each n in ["ok", "a\\nb", "c\\rd", "e\\u0000f"]\n'
                                     '  call api.get("/a", headers: {"X-Name": n})\nend\n'
                                     'for each n in ["X-Ok", "bad name", "", "ü"]\n'
                                     '  call api.get("/b", headers: {"{n}": "v"})\nend\n')
    with FakeApi() as api:
        api.route("GET", "/[ab]", lambda req: (200, {}, {}))
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
        assert [(r.path, r.headers.get("x-name") or r.headers.get("x-ok")) for r in api.requests] == [
            ("/a", "ok"), ("/b", "v")]
    assert proc.status == 3, proc.stderr
    assert "internal error" not in proc.stderr
    for what in ("the header 'X-Name' holds a line break", "the header 'X-Name' holds a carriage return",
                 "the header 'X-Name' holds a NUL character"):
        assert f"record failed at f.flow:3:8: GET {api.url}/a: {what} in its value" in proc.stderr
    for name in ("'bad name'", "''", "'ü'"):
        assert f"record failed at f.flow:6:8: GET {api.url}/b: {name} is not a valid HTTP header name" in proc.stderr


@pytest.mark.parametrize(("given", "col", "said"), [
    ('rate_limit: "fast"', 47, """rate_limit must look like "60/minute" or "10/second", got 'fast'"""),
    ('rate_limit: "1/0s"', 47, "rate_limit needs a window longer than 0 seconds, got '1/0s'"),
    # before: "internal error: OverflowError: Python int too large to convert to C ssize_t", in check too
    ('rate_limit: "99999999999999999999/second"', 47, "rate_limit allows at most 1,000,000 requests in its window"),
    ("timeout: -1", 44, "timeout: must be a positive number, got -1"),
    # before: "internal error (OverflowError: cannot convert float infinity to integer)", in check too
    ("max_response_bytes: 1e400", 55, "max_response_bytes: the number is too large (at most 1,000,000,000,000,000)"),
    ("retry: 0", 42, "retry: is the number of attempts in all, at least 1 (retry: 1 makes one attempt and no "
     "retry), got 0"),  # before: "must be a positive number, got '0'"
    ('timeout: "30s"', 44, "timeout: is a number of seconds, got the text '30s': write timeout: 30"),
    ("retry: 1.5", 42, "retry: must be a whole number, got 1.5"),  # before: taken as 1 attempt
    ('proxy: "proxy.corp:3128"', 42, 'proxy: must be a URL like "http://proxy.example.com:3128"'),
    # before: "internal error (ValueError: Invalid IPv6 URL); this is a bug in flowlang" at the first request
    ('proxy: "http://[::1:3128"', 42, "proxy: not a valid URL (Invalid IPv6 URL)"),
    ('allowed_hosts: "api.example.com"', 50, "allowed_hosts: must be a list of host names"),
    ("max_retry_wait: 0", 51, "max_retry_wait: must be a positive number, got 0"),
    ('param_style: "php"', 48, "param_style: must be one of 'repeat', 'brackets', 'indices', 'comma' "
     "(tags=a&tags=b, tags[]=a, tags[0]=a, tags=a,b), got 'php'"),
    # before: check said ok (and a run failed at the use's 1:1, after the send above)
    ('headers: "Accept: application/json"', 44, "headers: must be an object, got string"),
    ('headers: ["X-Key", "k"]', 44, "headers: must be an object, got list"),
    ("verify: 1", 43, 'verify: must be true, false or the path of a CA bundle ("certs/ca.pem")'),
    ('verify: ""', 43, 'verify: must be true, false or the path of a CA bundle ("certs/ca.pem")'),
])
def test_a_bad_constant_in_a_connections_configuration_is_found_by_check(
        tmp_path: Path, given: str, col: int, said: str) -> None:
    # before, check said ok, and the run failed at the use line: after the send above it had been made
    (tmp_path / "f.flow").write_text(f'use first = http(base_url: env.API)\nsend {{id: 1}} to first.post("/a")\n'
                                     f'use api = http(base_url: env.API, {given})\ncall api.get("/b")\n')
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "own.toml").write_text(
        'name = "own"\nbase_url = "http://127.0.0.1:1"\n[config]\ntimeout = { description = "its own key" }\n'
        '[operations.list_x]\nmethod = "GET"\npath = "/x"\n')
    (tmp_path / "g.flow").write_text(f"use o = own(timeout: -1)\nuse p = own({given})\n")
    with FakeApi() as api:
        for command in (["check"], ["run", "--log-format", "text"]):
            proc = cli(*command, "f.flow", cwd=tmp_path, env={"API": api.url})
            assert proc.status == 2, proc.stderr
            assert f"f.flow:3:{col}: error: {said}" in proc.stderr
        assert api.requests == []
    own = cli("check", "g.flow", cwd=tmp_path)  # a declarative connector: the same rules, not for its own keys
    assert "g.flow:1:" not in own.stderr
    assert own.status == 0 if given.startswith("timeout") else f"g.flow:2:{col - 22}: error: {said}" in own.stderr


@pytest.mark.parametrize(("given", "said"), [
    ('"Bearer abc12345"', "auth: the bearer token starts with 'Bearer ', which bearer() adds itself"),
    ('""', "auth: the bearer token is empty, so no request would carry a credential"),
    ("5", "auth must be bearer(...), basic(...), api_key(...) or oauth2_client_credentials(...), got number"),
    ('{type: "bearr", token: "abc12345"}', "unknown auth type 'bearr'"),
])
def test_a_bad_constant_auth_is_found_by_check(tmp_path: Path, given: str, said: str) -> None:
    # before: check said ok (only an auth helper's arguments were judged), and the run failed at the use
    # line after the send above it had been made
    (tmp_path / "f.flow").write_text(f'use first = http(base_url: env.API)\nsend {{id: 1}} to first.post("/a")\n'
                                     f'use api = http(base_url: env.API, auth: {given})\ncall api.get("/b")\n')
    with FakeApi() as api:
        for command in (["check"], ["run", "--log-format", "text"]):
            proc = cli(*command, "f.flow", cwd=tmp_path, env={"API": api.url})
            assert proc.status == 2, proc.stderr
            assert f"f.flow:3:41: error: {said}" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr and "abc12345" not in proc.stderr.replace(f"auth: {given}", "")
        assert api.requests == []


def test_a_connection_header_http_cannot_carry_is_refused_before_any_request(tmp_path: Path) -> None:
    # before: headers: {"X Bad": "v"} went to the server with every request, each answered 400 Bad Request
    # (Invalid header token), and a value with a line break (a token read with its newline) failed each
    # record; the docs say such a header fails before it is sent
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, headers: {"X Bad": "v"})\ncall api.get("/b")\n')
    (tmp_path / "g.flow").write_text('use api = http(base_url: env.API, headers: {"X-Token": env.T})\n'
                                     'call api.get("/b")\n')
    with FakeApi() as api:
        checked = cli("check", "f.flow", cwd=tmp_path)
        assert checked.status == 2 and "f.flow:1:44: error: headers: 'X Bad' is not a valid HTTP header name" \
            in checked.stderr, checked.stderr
        ran = cli("run", "g.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url, "T": "t0k3n-9\n"})
        assert ran.status == 1, ran.stderr
        assert ("g.flow:1:44: error: headers: the header 'X-Token' holds a line break in its value" in ran.stderr
                and "t0k3n-9" not in ran.stderr), ran.stderr
        assert api.requests == []


@pytest.mark.parametrize(("given", "col", "said"), [
    ("verify: env.CA", 43, "verify: the CA bundle 'no-such-ca.pem' is not a file"),
    ("headers: env.CA", 44, "headers: must be an object, got string"),
    ("timeout: env.CA", 44, "timeout: must be a positive number, got string 'no-such-ca.pem'"),
])
def test_a_configuration_value_the_connection_refuses_is_shown_at_that_value(
        tmp_path: Path, given: str, col: int, said: str) -> None:
    # before: at the use's 1:1, the whole statement underlined, whichever of its values was wrong
    (tmp_path / "f.flow").write_text(f"use api = http(base_url: env.API, {given})\ncall api.get(\"/b\")\n")
    with FakeApi() as api:
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url, "CA": "no-such-ca.pem"})
        assert proc.status == 1, proc.stderr
        assert f"f.flow:1:{col}: error: {said}" in proc.stderr and "Traceback" not in proc.stderr
        assert api.requests == []


def test_a_base_url_that_cannot_be_read_is_refused_without_showing_it(tmp_path: Path) -> None:
    """A base_url (here a secret: a webhook URL holding its token) with a port past 65535, or a broken
    IPv6 address, failed with "internal error (ValueError: Port out of range 0-65535); this is a bug in
    flowlang" at each record, or ended the run so. It is refused where the connection is opened, saying
    what is wrong and not showing the URL: Python's own message would name the text where the port goes."""
    (tmp_path / "f.flow").write_text('use api = http(base_url: secret.URL, retry: 1)\n'
                                     'for each n in [1]\n  send {n: n} to api.post("/x")\nend\n')
    port = "its port is not a whole number from 0 to 65535"
    for url, said in (("http://127.0.0.1:99999/services/Rk3v9Wm2Lp8Tx5Qn", port),
                      ("http://Rk3v9Wm2:Lp8Tx5Qn/services", port),
                      ("http://[::1/services/Rk3v9Wm2Lp8Tx5Qn", "Invalid IPv6 URL")):
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"URL": url})
        assert proc.status == 1, proc.stderr
        assert f"f.flow:1:26: error: base_url: not a valid URL ({said})" in proc.stderr
        assert "internal error" not in proc.stderr and "Lp8Tx5Qn" not in proc.stderr


def test_an_answer_is_read_in_the_charset_its_content_type_names() -> None:
    """A text answer in ISO-8859-1 (a CSV export, charset named) was read as UTF-8 with each é replaced
    by U+FFFD, silently; a JSON answer in latin-1 with the charset named was refused as not UTF-8.
    Text now reads in the charset it names; JSON is UTF-8 first (RFC 8259: a mislabelled UTF-8 body
    still reads right) and the named charset when its bytes are not UTF-8."""
    latin = {"Content-Type": "text/csv; charset=ISO-8859-1"}
    with FakeApi() as api:
        api.route("GET", "/export.csv", lambda req: (200, latin, "caf\xe9;1\n".encode("latin-1")))
        api.route("GET", "/latin.json", lambda req: (200, {"Content-Type": 'application/json; charset="iso-8859-1"'},
                                                     '{"a": "caf\xe9"}'.encode("latin-1")))
        api.route("GET", "/mislabelled.json", lambda req: (200, {"Content-Type": "application/json; charset=latin1"},
                                                           '{"a": "caf\xe9"}'.encode()))
        api.route("GET", "/plain.txt", lambda req: (200, {"Content-Type": "text/plain"}, "caf\xe9".encode()))
        api.route("GET", "/unknown.txt", lambda req: (200, {"Content-Type": "text/plain; charset=x-nope"},
                                                      "caf\xe9".encode()))
        flow = flowlang.compile("use api = http(base_url: env.API)\n"
                                'for each p in ["/export.csv", "/latin.json", "/mislabelled.json", "/plain.txt", '
                                '"/unknown.txt"]\n  call api.get(p) as r\n  emit r\nend\n', name="c.flow")
        result = flow.run(env={"API": api.url})
    assert result.ok, result.error or result.errors
    assert result.outputs == ["caf\xe9;1\n", {"a": "caf\xe9"}, {"a": "caf\xe9"}, "caf\xe9", "caf\xe9"]


def test_an_answer_whose_charset_is_no_text_encoding_is_read_as_utf8() -> None:
    """`Content-Type: text/plain; charset=rot13` (or base64, zlib, hex: names Python knows as codecs that
    are no text encodings) ended the run in 'internal error (LookupError: 'rot-13' is not a text encoding;
    use codecs.decode() ...); this is a bug in flowlang' (found by fuzzing API answers). Such a charset is
    taken as one Python does not know: the body is read as UTF-8, as with charset=x-nope."""
    with FakeApi() as api:
        for name in ("rot13", "base64", "zlib", "hex", "uu"):
            api.route("GET", f"/{name}.txt", lambda req, name=name: (
                200, {"Content-Type": f"text/plain; charset={name}"}, "caf\xe9".encode()))
        api.route("GET", "/rot13.json", lambda req: (200, {"Content-Type": "application/json; charset=rot13"},
                                                     '{"a": "caf\xe9"}'.encode("latin-1")))
        flow = flowlang.compile("use api = http(base_url: env.API)\n"
                                'for each p in ["/rot13.txt", "/base64.txt", "/zlib.txt", "/hex.txt", "/uu.txt", '
                                '"/rot13.json"]\n  call api.get(p) as r\n  emit r\nend\n', name="c.flow")
        result = flow.run(env={"API": api.url})
    assert result.error is None and result.outputs == ["caf\xe9"] * 5, (result.error, result.outputs)
    assert [str(e.message) for e in result.errors] == [  # latin-1 bytes in JSON with no charset to read them in
        f"GET {api.url}/rot13.json answered 200 with a body that is not valid JSON (not valid UTF-8 text: invalid "
        'continuation byte): {"a": "caf\ufffd"}']


def test_an_answer_whose_charset_fails_to_decode_or_rewrites_its_text_is_read_as_utf8() -> None:
    """`charset=idna` or `punycode` (text encodings to Python, whose decode refuses errors="replace" with a
    UnicodeError) ended the run as an internal error; `utf-7` rewrote what the body says ('a+AOk-' read as
    'a\xe9'). The answer is read as UTF-8, as serve reads a delivery's body (one charset_of for both)."""
    with FakeApi() as api:
        for name in ("idna", "punycode", "utf-7"):
            api.route("GET", f"/{name}.txt", lambda req, name=name: (
                200, {"Content-Type": f"text/plain; charset={name}"}, "caf\xe9 +AOk-".encode()))
        flow = flowlang.compile("use api = http(base_url: env.API)\n"
                                'for each p in ["/idna.txt", "/punycode.txt", "/utf-7.txt"]\n  call api.get(p) as r\n'
                                "  emit r\nend\n", name="c.flow")
        result = flow.run(env={"API": api.url})
    assert result.error is None and result.outputs == ["caf\xe9 +AOk-"] * 3, (result.error, result.outputs)


def test_a_bytes_value_is_sent_as_itself_or_refused_never_as_its_size_text(tmp_path: Path) -> None:
    # a PDF from one API sent on to another: before, the body was the JSON text "<9 bytes>", and a bytes
    # field in a JSON body, a form or a query was sent as '<9 bytes>' too, the run reporting success
    (tmp_path / "f.flow").write_text("""use api = http(base_url: env.API)
call api.get("/pdf") as pdf
send pdf to api.post("/upload")
for each how in ["json", "form", "query"]
  if how == "json"
    send {name: "a.pdf", content: pdf} to api.post("/docs")
  else if how == "form"
    call api.post("/docs", form: {content: pdf})
  else
    call api.get("/docs", query: {content: pdf})
  end
end
""")
    with FakeApi() as api:
        api.route("GET", "/pdf", lambda req: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\xff"))
        api.route("POST", "/upload", lambda req: (201, {}, {"ok": True}))
        api.route("*", "/docs", lambda req: (201, {}, {"ok": True}))
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
        upload = [r for r in api.requests if r.path == "/upload"]
        assert [(r.raw, r.headers.get("content-type")) for r in upload] == [
            (b"%PDF-1.4\xff", "application/octet-stream")]
        assert [r for r in api.requests if r.path == "/docs"] == []
    assert proc.status == 3, proc.stderr
    assert proc.stderr.count("a bytes value (9 bytes) cannot be written as") == 3
    assert "record failed at f.flow:6:43: the request body: a bytes value (9 bytes) cannot be written as JSON: its " \
           "text would be '<9 bytes>', not the data; give base64_encode(b)" in proc.stderr
    assert "cannot be written as a query parameter or a form field" in proc.stderr


def test_a_retry_never_sends_the_size_text_the_store_kept_for_a_bytes_value(tmp_path: Path) -> None:
    # the store keeps a failed record's bytes as "<5 bytes>": before, `flowlang retry` sent that text as the
    # file's content (text/plain) and resolved the error, the file's bytes lost
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.pdf").write_bytes(b"%PDF-")
    (tmp_path / "f.flow").write_text('use inbox = file(path: "in/*.pdf", format: "bytes", after: "done/")\n'
                                     "use api = http(base_url: env.API)\ncall inbox.read() as files\n"
                                     'for each f in files\n  send f.content to api.post("/upload")\nend\n')
    with FakeApi() as api:
        answers = iter([(400, {}, {"error": "try later"}), (201, {}, {"ok": True})])
        api.route("POST", "/upload", lambda req: next(answers))
        first = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
        retried = cli("retry", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
        assert [r.raw for r in api.requests] == [b"%PDF-"]
    assert first.status == 3 and retried.status == 3, retried.stderr
    assert "the record held a bytes value (a file's or an answer's content), which the store keeps only as its " \
           "size" in retried.stderr
    assert "1 open error" in cli("errors", "f.flow", cwd=tmp_path).stdout
    assert (tmp_path / "in" / "a.pdf").exists()  # not archived: the next run sends it


def test_a_base_url_with_a_query_string_keeps_it_after_the_path() -> None:
    # before: joining was concatenation, so "http://host/api?api-version=2" + "/orders" asked for
    # /api?api-version=2/orders: the path /api and a query api-version=2/orders (404 from the API)
    with FakeApi() as api:
        api.route("GET", "/api/orders", lambda req: (200, {}, {"q": req.query_string}))
        flow = flowlang.compile(
            'use api = http(base_url: env.API + "/api?api-version=2&tenant=t1")\n'
            'call api.get("/orders") as a\nemit a.q\n'
            'call api.get("/orders", query: {"api-version": 3}) as b\nemit b.q\n'
            'call api.get("/orders?page=2&tenant=t2") as c\nemit c.q\n', name="t.flow", bindings=())
        result = flow.run(env={"API": api.url})
        assert result.ok, result.error
        assert result.outputs == ["api-version=2&tenant=t1", "tenant=t1&api-version=3",
                                  "api-version=2&page=2&tenant=t2"]


@pytest.mark.parametrize(("url", "said"), [
    ("http://", "base_url: not a valid URL (it names no host)"),
    ("https://exa mple.com/v1", "base_url: not a valid URL (its host holds a space)"),
])
def test_a_base_url_without_a_host_or_with_a_space_in_it_is_refused(tmp_path: Path, url: str, said: str) -> None:
    # before: check said ok; the run asked for http:///b ("not an http:// or https:// URL") or tried to
    # resolve "exa mple.com" five times with backoff
    (tmp_path / "f.flow").write_text(f'use api = http(base_url: "{url}")\ncall api.get("/b")\n')
    (tmp_path / "g.flow").write_text('use api = http(base_url: env.URL)\ncall api.get("/b")\n')
    checked = cli("check", "f.flow", cwd=tmp_path)
    assert checked.status == 2 and f"f.flow:1:26: error: {said}" in checked.stderr, checked.stderr
    ran = cli("run", "g.flow", "--log-format", "text", cwd=tmp_path, env={"URL": url})
    assert ran.status == 1 and f"g.flow:1:26: error: {said}" in ran.stderr and "attempt" not in ran.stderr, ran.stderr


REVOKED_FLOW = ('use api = http(base_url: env.API, auth: bearer(secret.TOK))\n'
                'for each i in range(0, 30)\n  send {i: i} to api.post("/items")\nend\n')


def test_a_revoked_token_ends_the_run_instead_of_failing_every_record(tmp_path: Path) -> None:
    """Every request answered 401 and none accepted: each of 30 records was sent and failed alike (10,000
    rows under GitHub's 5,000/hour limit: two hours of refusals). The 10th such answer ends the run: the
    records tried are kept (a retry sends them once the token is fixed), the rest are not sent."""
    with FakeApi() as api:
        api.route("POST", r"/items", lambda req: (401, {}, {"message": "Bad credentials"}))
        (tmp_path / "f.flow").write_text(REVOKED_FLOW)
        ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path,
                  env={"API": api.url, "TOK": 'r3v"ok\\ed-tökèn-' + "x" * 70})
        assert ran.status == 1, ran.stderr
        assert api.count("POST", "/items") == 10
        assert "was answered 401 to all 10 requests of this run and none was accepted" in ran.stderr
        assert "Traceback" not in ran.stderr and "x" * 70 not in ran.stderr
        listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
        assert len(listed.stdout.splitlines()) == 10


def test_401_answers_after_an_accepted_request_fail_their_records_alone(tmp_path: Path) -> None:
    """A connection whose credentials were accepted once in the run: a later 401 is that record's (a
    resource the token may not reach), and the run goes on."""
    answers = iter([200] + [401] * 40)
    with FakeApi() as api:
        api.route("POST", r"/items", lambda req: (next(answers), {}, {"ok": False}))
        (tmp_path / "f.flow").write_text(REVOKED_FLOW)
        ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url, "TOK": "t"})
        assert ran.status == 3, ran.stderr
        assert api.count("POST", "/items") == 30


@pytest.mark.parametrize(("pages", "answer", "said"), [
    ('{style: "page", size: 2, records: "data", total_pages: "pages"}', {"pages": "lots"},
     "the answer's total_pages ('pages') is string 'lots', not a whole number; pagination stops here"),
    ('{style: "offset", size: 2, records: "data", total: "total"}', {"total": [3]},
     "the answer's total ('total') is list '[3]', not a whole number; pagination stops here"),
    ('{style: "next_url", next: "next", records: "data"}', {"next": 17},
     "the answer's next page ('next') is number '17', not a URL; pagination stops here"),
])
def test_a_page_count_or_next_url_that_is_garbage_stops_the_list_after_its_records(
        pages: str, answer: dict[str, Any], said: str) -> None:
    """A total_pages of "lots" (or a total of [3]) was ignored, so the list read on to the 10,000-page
    cap, and a next URL of 17 was followed to /17. The page's records are used; then the list fails,
    saying what the answer held."""
    with FakeApi() as api:
        api.route("GET", r"/items", lambda req: (200, {}, {"data": [{"id": 1}, {"id": 2}], **answer}))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/items", pages: {pages}) as items\n'
                     'for each r in items\n  emit r.id\nend\n', api)
        assert result.outputs == [1, 2]
        assert result.error is not None and said in result.error.message, result.error
        assert api.count("GET", "/items") == 1


def test_a_page_count_given_as_digits_is_a_count() -> None:
    """APIs that give their counts as text ("2") end the list where the count says."""
    with FakeApi() as api:
        api.route("GET", r"/items", lambda req: (200, {}, {"data": [{"id": int(req.query.get("page", 1))}] * 2,
                                                     "pages": "2"}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/items", pages: {style: "page", size: 2, '
                     'records: "data", '
                     'total_pages: "pages"}) as items\nfor each r in items\n  emit r.id\nend\n', api)
        assert result.ok, result.error
        assert result.outputs == [1, 1, 2, 2] and api.count("GET", "/items") == 2


def test_a_json_answer_is_read_in_the_unicode_encoding_it_is_in() -> None:
    """JSON answers read as json.detect_encoding says (RFC 8259 UTF-8, with or without a byte order
    mark, and UTF-16/32, which JSON may be): loads's shortcut for plain UTF-8 (no decoder's guess at
    each answer) must not take any of the others for UTF-8. Through a lookup and a call, 2xx answers
    (the client's 2xx path) and a number key (the parallel loop's key shortcut)."""
    text = '{"a": "caf\xe9 \u4e2d", "n": 1.50}'
    bodies = {"/utf8": text.encode(), "/bom": b"\xef\xbb\xbf" + text.encode(), "/u16le": text.encode("utf-16-le"),
              "/u16be": text.encode("utf-16-be"), "/u16": text.encode("utf-16"), "/u32le": text.encode("utf-32-le"),
              "/u32be": text.encode("utf-32-be"), "/u32": text.encode("utf-32"), "/one": b"7", "/two": b"[]"}
    with FakeApi() as api:
        for path, body in bodies.items():
            api.route("GET", path, lambda req, body=body: (200, {"Content-Type": "application/json"}, body))
        flow = flowlang.compile("use api = http(base_url: env.API)\n"
                                "for each p in input parallel 4\n  lookup api.get(p) as r\n  call api.get(p) as c\n"
                                "  emit {p: p, r: r, c: c}\nend\n", name="u.flow")
        result = flow.run(env={"API": api.url}, input=list(bodies))
    assert result.ok, result.error or result.errors
    want = {"a": "caf\xe9 \u4e2d", "n": Decimal("1.50")}
    got = {o["p"]: o["r"] for o in result.outputs}
    assert got == {**{p: want for p in bodies if p not in ("/one", "/two")}, "/one": 7, "/two": None}
    assert {o["p"]: o["c"] for o in result.outputs} == {**got, "/two": []}  # a lookup of an empty list is null
