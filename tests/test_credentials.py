"""OAuth2 client credentials against a real provider on 127.0.0.1 (tests/authapi.py): tokens that expire
soon, tokens revoked mid-run while requests are in flight, a token endpoint that cannot be reached or
answers garbage. Each request the API accepted is counted at the API; the client secret is a canary
(quotes, a backslash, non-ASCII, long) that no output may hold."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from aiohttp import web

from authapi import AuthApi
from conftest import cli

CANARY = 'cs-"quoted"\\back-ü€-' + "x" * 300

OAUTH = ('use api = http(base_url: env.API + "/api", retry: 2, '
         'auth: oauth2_client_credentials(env.API + "/token", "client-1", secret.CS))\n')


def run(tmp_path: Path, body: str, api_url: str) -> tuple[int, str, str]:
    (tmp_path / "f.flow").write_text(OAUTH + body)
    (tmp_path / "s.toml").write_text(f"CS = {json.dumps(CANARY)}\n")
    done = cli("run", "f.flow", "--secrets", "s.toml", "--log-format", "text", cwd=tmp_path, env={"API": api_url})
    errors = cli("errors", "f.flow", "--json", cwd=tmp_path)
    for text in (done.stdout, done.stderr, errors.stdout, errors.stderr):
        assert "Traceback" not in text
        for form in (CANARY, json.dumps(CANARY)[1:-1], CANARY[:40]):
            assert form not in text
    return done.status, done.stderr, errors.stdout


def test_requests_in_flight_when_tokens_are_revoked_share_one_new_token(tmp_path: Path) -> None:
    """When the provider revoked the token mid-run, each of the 8 requests in flight got its 401 and
    threw away the current token, also the new one another of them had just fetched: 20 tokens were
    fetched for one revocation, and with a provider that keeps one token per client (a new one revokes
    the older) requests retried with a token already replaced got a second 401 and their records failed."""
    with AuthApi(single=True, revoke_after=12, delay=lambda n: 0.02 * (n % 8)) as api:
        status, err, _ = run(tmp_path, "for each i in range(0, 40) parallel 8\n"
                                       '  send {n: i} to api.post("/items")\nend\n', api.url)
        sent = sorted(json.loads(b)["n"] for b in api.accepted("POST", "/api/items"))
        tokens = list(api.tokens)
        refused = [json.loads(s.body)["n"] for s in api.refused()]
    assert status == 0, err
    assert sent == list(range(40))  # each record accepted once
    assert tokens == ["tok-1", "tok-2"]  # one refresh for the revocation
    assert len(refused) == len(set(refused)) <= 8  # a record's request was refused at most once


def test_a_short_lived_token_is_kept_and_renewed_before_it_expires(tmp_path: Path) -> None:
    """A token of 60 s or less was fetched again for every request (renewed 60 s before its expiry):
    30 requests, 30 token requests, twice the traffic, and a token endpoint with a rate limit of its own
    refused the run. It is now kept for nine tenths of its lifetime."""
    with AuthApi(lifetime=1.0, delay=lambda n: 0.05) as api:
        status, err, _ = run(tmp_path, 'for each i in range(0, 30)\n  call api.get("/items")\nend\n', api.url)
        accepted = len(api.accepted("GET", "/api/items"))
        tokens = len(api.tokens)
        refused = api.refused()
    assert status == 0, err
    assert accepted == 30 and refused == []  # renewed before it expired: no request met a 401
    assert 2 <= tokens <= 4  # about 1.5 s of requests with a 1 s token


def test_a_token_endpoint_that_cannot_be_reached_is_named(tmp_path: Path) -> None:
    """The request whose token could not be fetched was named as if it had failed itself ('POST
    .../api/items failed: cannot connect: ... 55555'), with nothing saying a token was being fetched."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with AuthApi() as api:
        status, err, errors = run(tmp_path, "for each i in range(0, 1)\n  send {n: i} to api.post(\"/items\")\nend\n",
                                  api.url.replace(str(api.port), str(port)))
        assert api.seen == []
    assert status == 3, err
    message = json.loads(errors.splitlines()[0])["message"]
    assert message.startswith(f"POST http://127.0.0.1:{port}/api/items failed: the OAuth2 token endpoint "
                              f"http://127.0.0.1:{port}/token could not be reached: cannot connect"), message
    assert message.endswith("(after 2 attempts)"), message


def test_a_token_endpoint_that_answers_garbage_says_what_it_answered(tmp_path: Path) -> None:
    """Binary bytes were shown as text ('\\x00ÿ\\x1b[31m...'), a JSON list or number as nothing at all."""
    answers = [lambda: web.Response(body=b"\x00\xff\x1b[31mgarbage", content_type="application/octet-stream"),
               lambda: web.json_response([1, 2]), lambda: web.json_response(42),
               lambda: web.Response(status=502, text="<html>Bad gateway</html>", content_type="text/html")]
    said = ["the OAuth2 token endpoint answered 200 without an access_token: <14 bytes of binary data>",
            "the OAuth2 token endpoint answered 200 without an access_token (the answer is a list)",
            "the OAuth2 token endpoint answered 200 without an access_token (the answer is 42)",
            "the OAuth2 token endpoint answered 502 without an access_token: <html>Bad gateway</html>"]
    for answer, expected in zip(answers, said, strict=True):
        with AuthApi(token_answer=answer) as api:
            status, err, _ = run(tmp_path, 'call api.get("/items")\n', api.url)
            assert api.seen == []
        assert status == 1 and f"error: {expected}" in err, err
        assert "\x1b" not in err


def test_an_empty_credential_is_refused_when_the_connection_opens(tmp_path: Path) -> None:
    """A secret set to nothing (`TOKEN=` in the environment, `TOKEN = ""` in --secrets) was sent as
    `Authorization: Bearer` (or an empty API key) and the API's 401 was all the user saw, record by record;
    `flowlang secrets check` said it was found. The `use` now fails before any request, saying the
    credential is empty, and secrets check says so too."""
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(
        'name = "shop"\nbase_url = "{base}/api"\n[config]\nbase = { required = true }\n'
        'token = { required = true, secret = true }\n[auth]\ntype = "api_key"\nname = "X-Token"\n'
        'value = "{token}"\n[operations.list_items]\nmethod = "GET"\npath = "/items"\n')
    flows = {"bearer": 'use api = http(base_url: env.API + "/api", auth: bearer(secret.T))\ncall api.get("/items")\n',
             "api_key": 'use api = http(base_url: env.API, auth: api_key("X-Key", secret.T, in: "query"))\n'
                        'call api.get("/api/items")\n',
             "oauth2": OAUTH.replace("secret.CS", "secret.T") + 'call api.get("/items")\n',
             "connector": 'use shop = shop(base: env.API, token: secret.T)\ncall shop.list_items()\n'}
    said = {"bearer": "auth: the bearer token is empty", "api_key": "auth: the API key is empty",
            "oauth2": "auth: the OAuth2 client_secret is empty", "connector": "auth: the API key is empty"}
    with AuthApi() as api:
        for name, text in flows.items():
            (tmp_path / f"{name}.flow").write_text(text)
            for how in ("env", "file"):
                (tmp_path / "s.toml").write_text('T = ""\n' if how == "file" else "")
                env = {"API": api.url, **({"T": "  "} if how == "env" else {})}  # blank counts as empty
                done = cli("run", f"{name}.flow", "--secrets", "s.toml", "--log-format", "text", cwd=tmp_path,
                           env=env)
                assert done.status == 1, (name, how, done.stderr)
                col = text.index("auth: ") + 7 if "auth: " in text else 1  # at the auth: value (1: the file's [auth])
                assert (f"{name}.flow:1:{col}: error: {said[name]}, so no request would carry a credential (a secret "
                        "or an environment variable set to nothing?)") in done.stderr, (name, how, done.stderr)
        assert api.seen == [] and api.token_requests == []
    check = cli("secrets", "check", "bearer.flow", cwd=tmp_path, env={"T": ""})
    assert check.status == 0
    assert check.stdout == ("T  bearer.flow:1:57  found in the environment, but empty (as a credential it is "
                            "refused)\n")


def test_a_token_answer_past_max_response_bytes_is_said_so(tmp_path: Path) -> None:
    """A token answer too big for the connection's max_response_bytes was told as the endpoint not
    being reached at all."""
    with AuthApi(token_answer=lambda: web.json_response({"access_token": "t" * 5000})) as api:
        (tmp_path / "f.flow").write_text(OAUTH.replace("retry: 2", "max_response_bytes: 1000")
                                         + 'call api.get("/items")\n')
        (tmp_path / "s.toml").write_text(f"CS = {json.dumps(CANARY)}\n")
        done = cli("run", "f.flow", "--secrets", "s.toml", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
        assert api.seen == [] and len(api.token_requests) == 1  # not retried
    assert done.status == 1
    assert (f"error: GET {api.url}/api/items: the OAuth2 token endpoint {api.url}/token answered: the answer is "
            "more than 1000 bytes") in done.stderr, done.stderr


@pytest.mark.parametrize(("auth", "col", "said"), [
    # before: each passed flowlang check and failed the run at its use, after the statements before it
    ('bearer("")', 48, "auth: the bearer token is empty, so no request would carry a credential"),
    ('bearer("Bearer abc")', 48, "auth: the bearer token starts with 'Bearer ', which bearer() adds itself"),
    ('basic(" ", "pw")', 47, "auth: basic()'s user is empty, so no request would carry a credential"),
    ('api_key("X-Key", "k", in: "body")', 67, 'api_key() needs in: "header" or "query"'),
    ('oauth2_client_credentials("ftp://auth.invalid/token", "id", secret.S)', 67,
     "auth: the OAuth2 token_url must start with http:// or https://"),
    ('oauth2_client_credentials(env.API + "/token", "id", secret.S, auth_method: "header")', 116,
     'oauth2_client_credentials() needs auth_method: "post"'),
])
def test_a_constant_auth_helper_argument_the_connection_refuses_is_found_by_check(
        tmp_path: Path, auth: str, col: int, said: str) -> None:
    (tmp_path / "f.flow").write_text(f'use first = http(base_url: env.API)\nsend {{id: 1}} to first.post("/a")\n'
                                     f'use api = http(base_url: env.API, auth: {auth})\ncall api.get("/b")\n')
    with AuthApi() as api:
        proc = cli("check", "f.flow", cwd=tmp_path, env={"API": api.url})
        assert proc.status == 2, proc.stderr
        assert f"f.flow:3:{col}: error: {said}" in proc.stderr, proc.stderr
        assert api.seen == [] and api.token_requests == []


def test_a_token_url_that_is_not_http_is_refused_at_the_use(tmp_path: Path) -> None:
    # before: "the OAuth2 token endpoint ftp://auth.invalid/token could not be reached: connection failed:
    # NonHttpUrlClientError" five times with backoff, for each request of the run
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, auth: oauth2_client_credentials(env.TOKEN_URL, '
                                     '"id", secret.S))\ncall api.get("/b")\n')
    with AuthApi() as api:
        for url in ("ftp://auth.invalid/token", "/oauth/token"):
            proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path,
                       env={"API": api.url, "TOKEN_URL": url, "S": "s3cr3t-Value"})
            assert proc.status == 1, proc.stderr
            assert ("f.flow:1:41: error: auth: the OAuth2 token_url must start with http:// or https://"
                    in proc.stderr), proc.stderr
            assert "attempt" not in proc.stderr and "Traceback" not in proc.stderr
        assert api.seen == [] and api.token_requests == []


def test_a_bearer_token_that_starts_with_bearer_is_refused_at_the_use(tmp_path: Path) -> None:
    # before: a secret copied with its scheme ("Bearer eyJ...") was sent as "Authorization: Bearer Bearer
    # eyJ...", and the API's 401 was all the user saw, record after record
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, auth: bearer(secret.T))\ncall api.get("/b")\n')
    (tmp_path / "g.flow").write_text('use api = http(base_url: env.API, auth: secret.T)\ncall api.get("/b")\n')
    with AuthApi() as api:
        for flow in ("f.flow", "g.flow"):
            for token in ("Bearer s3cr3t-Tok", "bearer  s3cr3t-Tok"):
                proc = cli("run", flow, "--log-format", "text", cwd=tmp_path, env={"API": api.url, "T": token})
                assert proc.status == 1, proc.stderr
                assert (f"{flow}:1:41: error: auth: the bearer token starts with 'Bearer ', which bearer() adds "
                        "itself: give the token alone") in proc.stderr, proc.stderr
                assert "s3cr3t-Tok" not in proc.stderr
        assert api.seen == []


def test_a_basic_user_with_a_colon_is_refused_before_any_request(tmp_path: Path) -> None:
    """basic("acme:shop", secret.PW) (or a `user:password` pair given as the user) was sent as such: the
    server reads the user up to the first ':' (RFC 7617), so every request was answered 401. It is a
    check error when written so, and refused where the connection opens when it comes from the data."""
    (tmp_path / "c.flow").write_text('use a = http(base_url: "http://127.0.0.1:9", auth: basic("acme:shop", "pw"))\n')
    checked = cli("check", "c.flow", cwd=tmp_path)
    assert checked.status == 2 and "c.flow:1:58: error: auth: basic()'s user holds a ':'" in checked.stderr, \
        checked.stderr
    (tmp_path / "r.flow").write_text('use a = http(base_url: "http://127.0.0.1:9", auth: basic(env.U, "pw"))\n'
                                     'call a.get("/x") as x\n')
    ran = cli("run", "r.flow", "--log-format", "text", cwd=tmp_path, env={"U": "acme:shop"})
    assert ran.status == 1 and "r.flow:1:52: error: auth: basic()'s user holds a ':'" in ran.stderr, ran.stderr
    assert "acme:shop" not in ran.stderr.split("\n")[0]
