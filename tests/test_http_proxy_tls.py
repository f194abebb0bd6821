"""Proxies and private CAs against real servers on 127.0.0.1: HTTP_PROXY/HTTPS_PROXY/NO_PROXY from
the environment, the `proxy:` key (with masked credentials), and `verify: "ca.pem"` with a CA and a
server certificate made here (trustme), through a CONNECT tunnel too."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

import flowlang
from fakeapi import FakeApi
from httpproxy import Proxy


def run(tmp_path: Path, text: str, **kw: Any) -> flowlang.Result:
    path = tmp_path / "f.flow"
    path.write_text(text)
    return flowlang.load(path).run(state_dir=tmp_path / ".state", **kw)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def hello(api: FakeApi) -> FakeApi:
    api.route("GET", "/hello", lambda req: (200, {}, {"hi": True}))
    return api


def test_http_proxy_and_no_proxy_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with hello(FakeApi()) as api, Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        flow = f'use api = http(base_url: "{api.url}")\ncall api.get("/hello") as h\nemit h\n'
        result = run(tmp_path, flow)
        assert result.ok, result.error
        assert result.outputs == [{"hi": True}]
        assert proxy.seen == [f"GET {api.url}/hello"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        result = run(tmp_path, flow)
        assert result.ok, result.error
        assert len(proxy.seen) == 1 and api.count("GET", "/hello") == 2  # the second went straight


CANARY = 'pr0xy-"pass"\\wörd\'' + "y" * 520


def test_the_proxy_key_wins_and_its_password_is_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import quote

    with hello(FakeApi()) as api, Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: the key must win
        port = proxy.url.rsplit(":", 1)[1]
        result = run(tmp_path, f'use api = http(base_url: "{api.url}", proxy: "http://ann:" + secret.PP + '
                               f'"@127.0.0.1:{port}")\ncall api.get("/hello") as h\nemit h\n'
                               'call api.get("/missing")\n', secrets={"PP": quote(CANARY, safe="")})
        assert result.outputs == [{"hi": True}]
        assert proxy.seen[0] == f"GET {api.url}/hello"
        scheme, _, value = (proxy.auth[0] or "").partition(" ")
        assert scheme == "Basic" and base64.b64decode(value).decode("latin-1") == f"ann:{CANARY}"  # aiohttp's encoding
        assert result.error is not None
        assert CANARY not in result.error.message and quote(CANARY, safe="") not in result.error.message


@pytest.mark.filterwarnings("error::DeprecationWarning")  # aiohttp 3.14 deprecates BasicAuth
def test_a_proxy_password_that_is_not_latin_1_is_sent_in_utf_8(tmp_path: Path) -> None:
    """A proxy password holding a character past Latin-1 ('中', an emoji) failed every request with
    "internal error (UnicodeEncodeError: 'latin-1' codec can't encode characters ...); this is a bug in
    flowlang" (aiohttp encodes the credentials of a proxy URL in Latin-1). They are sent in UTF-8 now,
    and stay masked."""
    from urllib.parse import quote

    password = "pä'ss\"中😀-" + "Rk3v9Wm2" * 3
    with hello(FakeApi()) as api, Proxy() as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        result = run(tmp_path, f'use api = http(base_url: "{api.url}", retry: 1, proxy: "http://ann:" + secret.PP + '
                               f'"@127.0.0.1:{port}")\ncall api.get("/hello") as h\nemit h\n'
                               'call api.get("/missing")\n', secrets={"PP": quote(password, safe="")})
        assert result.outputs == [{"hi": True}], result.error
        assert proxy.seen[:2] == [f"GET {api.url}/hello", f"GET {api.url}/missing"]
        scheme, _, value = (proxy.auth[0] or "").partition(" ")
        assert scheme == "Basic" and base64.b64decode(value).decode() == f"ann:{password}"
    assert result.error is not None and "404" in result.error.message, result.error
    for form in (password, quote(password, safe=""), value, password[-12:]):
        assert form not in result.error.render()


@pytest.fixture
def tls_api(tmp_path: Path) -> Any:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    (tmp_path / "certs").mkdir()
    ca.cert_pem.write_to_path(str(tmp_path / "certs" / "ca.pem"))
    api = hello(FakeApi())
    api.server.socket = context.wrap_socket(api.server.socket, server_side=True)
    with api:
        yield f"https://127.0.0.1:{api.server.server_address[1]}", api


def test_a_private_ca_by_path_and_through_an_https_proxy(tmp_path: Path, tls_api: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, api = tls_api
    result = run(tmp_path, f'use api = http(base_url: "{url}", retry: 1)\ncall api.get("/hello") as h\nemit h\n')
    assert result.error is not None and "certificate" in result.error.message.lower()
    assert api.count("GET", "/hello") == 0
    flow = f'use api = http(base_url: "{url}", verify: "certs/ca.pem")\ncall api.get("/hello") as h\nemit h\n'
    result = run(tmp_path, flow)
    assert result.ok, result.error
    assert result.outputs == [{"hi": True}]
    with Proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        result = run(tmp_path, flow)
        assert result.ok, result.error
        assert proxy.seen == [f"CONNECT {url.removeprefix('https://')}"]
    assert api.count("GET", "/hello") == 2


def test_bad_verify_and_proxy_values_are_clear(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    for value, expected in [('verify: "nope.pem"', "is not a file"), ('verify: "junk.pem"', "not a PEM bundle")]:
        result = run(tmp_path, f'use api = http(base_url: "http://127.0.0.1:9", {value})\ncall api.get("/x")\n')
        assert result.error is not None and expected in result.error.message, (value, result.error)
    # a constant: found by check, at its place
    with pytest.raises(flowlang.CheckError, match=r"f\.flow:1:55: error: proxy: must be a URL"):
        run(tmp_path, 'use api = http(base_url: "http://127.0.0.1:9", proxy: "proxy:3128")\ncall api.get("/x")\n')


@pytest.mark.filterwarnings("error::DeprecationWarning")  # aiohttp 3.14 deprecates BasicAuth
def test_a_utf_8_proxy_password_goes_to_the_connect_of_an_https_api_and_not_to_the_api(
        tmp_path: Path, tls_api: Any) -> None:
    """The UTF-8 proxy credentials are sent as the Proxy-Authorization header: on the CONNECT of an
    https API (the tunnel's request), never inside the tunnel where the API itself would read it."""
    from urllib.parse import quote

    url, api = tls_api
    password = "pä'ss\"中😀-" + "Rk3v9Wm2" * 3
    with Proxy() as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        result = run(tmp_path, f'use api = http(base_url: "{url}", verify: "certs/ca.pem", retry: 1, '
                               f'proxy: "http://ann:" + secret.PP + "@127.0.0.1:{port}")\n'
                               'call api.get("/hello") as h\nemit h\n', secrets={"PP": quote(password, safe="")})
        assert result.ok, result.error
        assert proxy.seen == [f"CONNECT {url.removeprefix('https://')}"]
        scheme, _, value = (proxy.auth[0] or "").partition(" ")
        assert scheme == "Basic" and base64.b64decode(value).decode() == f"ann:{password}"
    assert [r for r in api.requests if any(k.lower() == "proxy-authorization" for k in r.headers)] == []


def test_passwords_from_netrc_and_a_proxy_variable_are_masked(tmp_path: Path) -> None:
    """A password the environment gives (a ~/.netrc login for the host, the user:password of
    HTTP_PROXY) goes out as a Basic header the masker never learned: an API echoing the headers it
    got showed 'authorization': 'Basic YW5uOm5ldHJjLXB3...' (base64 of ann:<password>) in the record
    emitted, in the error of the record that failed and in the error store."""
    import json
    import sqlite3
    from urllib.parse import quote

    from conftest import run_cli

    password = "netrc-pw-%41+/=" + "Zr4mQ8" * 40  # no blanks or quotes: a .netrc token
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, retry: 1)\ncall api.get("/echo") as r\n'
                                     'emit r\nfor each n in [1]\n  call api.get("/fail") as x\nend\n')
    (tmp_path / "netrc").write_text(f"machine 127.0.0.1 login ann password {password}\n")
    texts: list[str] = []
    with FakeApi() as api:
        api.route("GET", "/echo", lambda req: (200, {}, {"headers": req.headers}))
        api.route("GET", "/fail", lambda req: (500, {}, {"headers": req.headers}))
        proxy = f"http://bob:{quote(password, safe='')}@127.0.0.1:{api.server.server_address[1]}"  # the API proxies
        for env in ({"API": api.url, "NETRC": str(tmp_path / "netrc")},
                    {"API": "http://api.example.invalid", "HTTP_PROXY": proxy, "NETRC": str(tmp_path / "none")}):
            proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env=env)
            assert proc.returncode == 3, proc.stderr
            texts += [proc.stdout, proc.stderr]
        sent = [r.headers.get("authorization") or r.headers.get("proxy-authorization") or "" for r in api.requests]
    assert [base64.b64decode(h.split()[1]).decode() for h in sent] == [f"ann:{password}"] * 2 + [f"bob:{password}"] * 2
    assert texts[0].count("Basic ") == 1 and texts[2].count("Basic ") == 1
    con = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
    texts += [json.dumps(row) for row in con.execute("select message, record, scope from errors")]
    con.close()
    tail = password[-200:]
    for text in texts:
        for header in sent:
            assert header.split()[1][8:40] not in text
        assert not [tail[i:i + 12] for i in range(0, 188, 4) if tail[i:i + 12] in text], text


def test_netrc_and_proxy_variable_passwords_past_latin_1_are_sent_in_utf_8(tmp_path: Path) -> None:
    """aiohttp encodes the credentials of a proxy variable and of a .netrc login in Latin-1, so a
    password with '中' failed every request with 'cannot connect: the host is not a valid DNS name
    ('latin-1' codec can't encode characters in position 16-17 ...)', naming neither the password nor
    where it came from. They are sent in UTF-8, as the connection's own `proxy:` credentials are."""
    from urllib.parse import quote

    from conftest import run_cli

    password = "pässwörd-中文-" + "Kx9" * 30
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, retry: 1)\n'
                                     'call api.get("/hello") as h\nemit h\n')
    (tmp_path / "netrc").write_text(f"machine 127.0.0.1 login ann password {password}\n", encoding="utf-8")
    with hello(FakeApi()) as api:
        proxy = f"http://bob:{quote(password, safe='')}@127.0.0.1:{api.server.server_address[1]}"  # the API proxies
        for env in ({"API": api.url, "NETRC": str(tmp_path / "netrc")},
                    {"API": "http://api.example.invalid", "HTTP_PROXY": proxy, "NETRC": str(tmp_path / "none")}):
            proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env=env)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == '{"hi":true}\n' and "Kx9Kx9Kx9" not in proc.stderr
        sent = [r.headers.get("authorization") or r.headers.get("proxy-authorization") or "" for r in api.requests]
    assert [base64.b64decode(h.split()[1]).decode() for h in sent] == [f"ann:{password}", f"bob:{password}"]
