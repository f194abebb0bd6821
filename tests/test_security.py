"""Security: a canary secret never reaches any output; allowed_hosts; files stay in the flow's folder."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowlang
from conftest import run_cli
from fakeapi import FakeApi, Request

# A canary as hard to mask as a secret gets: quotes, backslashes, '/', '+', a space, non-ASCII
# (two-byte and astral), and longer than any snippet a message shows (500 characters).
CANARY = ('canary-"9d2f"\\x/1e+x wörd-😀-' + "k7Q\\\"z" * 80)[:620]


def forms(secret: str) -> list[str]:
    """The secret and its encoded forms, and its first 40 characters in each (a cut secret)."""
    out: set[str] = set()
    for text in (secret, secret[:40], secret.encode().decode("latin-1")):  # as a server reads a header
        raw = text.encode()
        out |= {text, urllib.parse.quote(text, safe=""), urllib.parse.quote_plus(text), urllib.parse.quote(text),
                base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                base64.b64encode(raw).decode().rstrip("="), raw.hex(), raw.hex().upper(),
                json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1],
                json.dumps(json.dumps(text))[3:-3]}
    return sorted(out)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


FLOW = """
param p = "none"
use api = http(base_url: env.API, auth: bearer(secret.TOKEN))
use keyed = http(base_url: env.API, auth: api_key("key", secret.TOKEN, in: "query"), retry: 1)
let t = secret.TOKEN
log "token is {t}"
log warn "encoded {base64_encode(t)}"
emit {t: t, s: "x{t}", b: base64_encode("u:" + t)}
call api.get("/echo") as echoed
emit echoed
for each n in [1, 2]
  call keyed.get('/fail/{n}', n: n)
end
send {secret: t} to api.post("/sink")
try
  call api.get("/long")
on error as e
  emit e.message
end
try
  call keyed.get("/fail/3")
on error as e
  emit e
end
"""


def echo_api(api: FakeApi) -> None:
    def echo(req: Request) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"auth": req.headers.get("authorization"), "query": req.query}

    def fail(req: Request) -> tuple[int, dict[str, str], Any]:
        return 500, {}, {"error": f"bad key {req.query.get('key')}", "url": req.path + "?" +
                         urllib.parse.urlencode(req.query)}
    api.route("GET", "/echo", echo)
    api.route("GET", r"/fail/\d+", fail)
    api.route("POST", "/sink", lambda req: (201, {}, {"got": req.body}))
    # an error body longer than any snippet, the secret across the cut
    api.route("GET", "/long", lambda req: (400, {}, {"error": "x" * 470 + (req.headers.get("authorization") or "")}))


def test_a_canary_secret_reaches_no_output(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text(FLOW)
    (tmp_path / "secrets.toml").write_text(f"TOKEN = {toml_string(CANARY)}\n")
    outputs: list[str] = []
    with FakeApi() as api:
        echo_api(api)
        env = {"API": api.url}
        for extra in (["--log-format", "text", "--debug"], ["--log-format", "json"], ["--dry-run", "--debug"],
                      ["--dry-run", "--log-format", "text"], ["--param", f"p={CANARY}"]):
            proc = run_cli("run", "f.flow", "--secrets", "secrets.toml", *extra, cwd=tmp_path, env=env)
            assert proc.returncode == 3, proc.stderr
            outputs += [proc.stdout, proc.stderr]
        via_env = run_cli("run", "f.flow", cwd=tmp_path, env={**env, "TOKEN": CANARY})
        outputs += [via_env.stdout, via_env.stderr]
        outputs.append(run_cli("errors", "f.flow", cwd=tmp_path).stdout)
        outputs.append(run_cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
        retried = run_cli("retry", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path, env=env)
        outputs += [retried.stdout, retried.stderr]
        repl = run_cli("repl", "--secrets", "secrets.toml", cwd=tmp_path,
                       stdin='let t = secret.TOKEN\nt\n"{t}"\n{a: t}\nlet u = "x" + t\nu\nfail "no {t}"\n'
                             f"use api = http(base_url: \"{api.url}\", auth: bearer(t))\n"
                             'call api.get("/echo") as e\ne\n')
        outputs += [repl.stdout, repl.stderr]
        # the API did get it (as UTF-8 bytes, which its HTTP server reads as Latin-1)
        assert api.requests[0].headers["authorization"].encode("latin-1").decode() == f"Bearer {CANARY}"
    outputs.append((tmp_path / ".flowlang" / "flowlang.db").read_bytes().decode("utf-8", errors="replace"))
    for wal in (tmp_path / ".flowlang").glob("*-wal"):
        outputs.append(wal.read_bytes().decode("utf-8", errors="replace"))
    everything = "\n".join(outputs)
    hits = {form: everything.count(form) for form in forms(CANARY) if form in everything}
    assert hits == {}
    assert "***" in everything


def test_secrets_in_a_run_result_stay_secret() -> None:
    result = flowlang.compile('emit {t: secret.T}\nfail "with {secret.T}"').run(secrets={"T": CANARY})
    assert result.error is not None and CANARY not in result.error.message and CANARY not in result.error.render()
    assert CANARY not in json.dumps(result.outputs, default=str)


def test_a_secret_compares_equal_to_its_text_as_in_reads_it() -> None:
    """`secret.MODE == "live"` was always false (a Secret is not a str) while `"li" in secret.MODE` read
    its text: a flow choosing its target by a secret took the wrong branch, silently. Both read the text,
    in the generated code and the closures (the list comprehension), and unique() agrees with ==."""
    flow = flowlang.compile("""
let s = secret.MODE
emit [s == "%s", "%s" == s, s != "%s", s == "other", s != "other", "%s" in s]
emit [x == "%s" for x in [s]]
emit len(unique([s, "%s", secret.MODE]))
emit s
""" % ((CANARY.replace("\\", "\\\\").replace('"', '\\"'),) * 6))
    result = flow.run(secrets={"MODE": CANARY})
    assert result.ok, result.error
    assert result.outputs[:3] == [[True, True, False, False, True, True], [True], 1]
    assert CANARY not in json.dumps(result.outputs, default=str)


def test_allowed_hosts_refuses_other_hosts_and_internal_addresses() -> None:
    with FakeApi() as api:
        api.route("GET", "/go", lambda req: (302, {"Location": "http://localhost:1/elsewhere"}, None))
        api.route("GET", "/ok", lambda req: (200, {}, {"ok": True}))
        port = api.url.rsplit(":", 1)[1]
        flow = flowlang.compile(f"""
use listed   = http(base_url: "{api.url}", allowed_hosts: ["127.0.0.1"])
use other    = http(base_url: "{api.url}", allowed_hosts: ["api.example.com"])
use by_name  = http(base_url: "http://localhost:{port}", allowed_hosts: ["localhost"])
call listed.get("/ok") as fine
emit fine.ok
try
  call other.get("/ok")
on error as e
  emit e.message
end
try
  call by_name.get("/ok")
on error as e
  emit e.message
end
try
  call listed.get("/go")
on error as e
  emit e.message
end
""")
        result = flow.run()
        assert result.outputs[0] is True
        assert "'127.0.0.1' is not in this connection's allowed_hosts (api.example.com)" in result.outputs[1]
        assert "resolves to the internal address" in result.outputs[2]
        assert "'localhost' is not in this connection's allowed_hosts" in result.outputs[3]
        assert api.count("GET", "/ok") == 1  # refused before any connection


def test_files_stay_inside_the_flow_folder(tmp_path: Path) -> None:
    flow_dir = tmp_path / "flows"
    flow_dir.mkdir()
    (tmp_path / "outside.csv").write_text("a\n1\n")
    (flow_dir / "link.csv").symlink_to(tmp_path / "outside.csv")
    for path in ("../outside.csv", str(tmp_path / "outside.csv"), "link.csv"):
        # a path from a variable is refused as the file opens
        (flow_dir / "f.flow").write_text(f'let p = "{path}"\nuse f = file(path: p)\ncall f.read() as rows\n'
                                         'emit list(rows)\n')
        proc = run_cli("run", "f.flow", cwd=flow_dir)
        assert proc.returncode == 1 and "outside the flow's folder" in proc.stderr
    (flow_dir / "f.flow").write_text('use f = file(path: "../outside.csv", allow_outside: true)\n'
                                     "call f.read() as rows\nemit list(rows)\n")
    proc = run_cli("run", "f.flow", cwd=flow_dir)
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"a": "1"}


@pytest.mark.parametrize(("use", "col"), [('file(path: "../../etc/x.jsonl")', 20), ('file(path: "link.csv")', 20),
                                          ('file(path: "../in/*.csv", after: "done/")', 20),
                                          ('sql(url: "sqlite:///../x.db")', 18)])
def test_a_constant_path_outside_the_flow_folder_is_refused_by_check(tmp_path: Path, use: str, col: int) -> None:
    """file(path: "../../etc/x.jsonl") passed `flowlang check` (ok) and failed at the run's `use`; a
    constant path (or sqlite:/// url) is judged by the flow-folder rule at check, at the path."""
    flow_dir = tmp_path / "flows"
    flow_dir.mkdir()
    (tmp_path / "outside.csv").write_text("a\n1\n")
    (flow_dir / "link.csv").symlink_to(tmp_path / "outside.csv")
    (flow_dir / "f.flow").write_text(f"use f = {use}\nsend {{a: 1}} to f\n")
    for command in ("check", "run"):
        proc = run_cli(command, "f.flow", "--log-format", "text", cwd=flow_dir)
        assert proc.returncode == 2, proc.stderr
        assert f"f.flow:1:{col}: error: " in proc.stderr and "outside the flow's folder" in proc.stderr
        assert "allow_outside: true" in proc.stderr
    assert not (tmp_path / "x.db").exists()
    (flow_dir / "f.flow").write_text(f"use f = {use[:-1]}, allow_outside: true)\n")
    assert run_cli("check", "f.flow", cwd=flow_dir).returncode == 0


@pytest.mark.parametrize("text", ['emit "{1 +}"', "emit __import__('os')", "emit eval(1)"])
def test_user_text_is_never_evaluated_as_python(text: str) -> None:
    with pytest.raises(flowlang.ScriptError):
        flowlang.compile(text, bindings=())


def test_a_secret_with_quotes_is_masked_in_a_dry_run_log(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text('use api = http(base_url: "http://127.0.0.1:9")\n'
                                     'send {p: secret.T} to api.post("/x")\nsend "{secret.T}" to api.post("/y")\n')
    (tmp_path / "s.toml").write_text('T = "pa\\"ss\\\\word"\n')
    proc = run_cli("run", "f.flow", "--secrets", "s.toml", "--dry-run", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "dry run, not sent" in proc.stderr and "***" in proc.stderr
    assert "word" not in proc.stderr and 'pa"' not in proc.stderr and "pa\\" not in proc.stderr


NO_STAR = st.characters(blacklist_characters="*", blacklist_categories=("Cs",))


@given(st.text(NO_STAR, min_size=8, max_size=40), st.text(NO_STAR, max_size=10))  # a shorter one: as a value only
@settings(max_examples=300, deadline=None)
def test_masking_covers_every_encoding_of_any_secret(secret: str, around: str) -> None:
    from flowlang.runtime.masking import Masker

    masker = Masker()
    masker.add(secret)
    value = {"k": around + secret + around, "l": [secret]}
    seen = [json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(json.dumps(value)),
            json.dumps(masker.mask_value(value)), urllib.parse.quote(around + secret, safe=""),
            urllib.parse.quote_plus(secret + around)]
    for text in seen:
        masked = masker.mask(text)
        for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
                     urllib.parse.quote(secret, safe="")):
            assert form not in masked
    raw = secret.encode()
    if len(raw) >= 6:
        for prefix in (b"", b"u", b"u:"):
            encoded = base64.b64encode(prefix + raw + b"!").decode()
            assert "***" in masker.mask(encoded)
        assert masker.mask("x" + raw.hex() + "y") == "x***y"


def test_a_secret_with_a_lone_surrogate_is_masked() -> None:
    from flowlang.runtime.masking import Masker

    masker = Masker()
    masker.add("ab\ud800cd")  # os.environ can hold one
    assert masker.mask(json.dumps({"k": "ab\ud800cd"})) == '{"k": "***"}'


def test_credentials_go_only_to_the_connections_own_origin() -> None:
    with FakeApi() as api, FakeApi() as other:
        api.route("GET", "/first", lambda req: (200, {}, {"next": other.url + "/steal"}))
        other.route("GET", "/steal", lambda req: (200, {}, {"ok": True}))
        source = """
use api = http(base_url: env.API, auth: bearer(secret.T), headers: {"X-Key": secret.K}{allowed})
call api.get("/first") as r
try
  call api.get(r.next) as got
  emit got
on error as e
  emit e.message
end
"""
        env = {"API": api.url}
        secrets = {"T": CANARY, "K": "key-" + CANARY}
        refused = flowlang.compile(source.replace("{allowed}", "")).run(env=env, secrets=secrets)
        assert refused.error is None
        message = refused.outputs[0]
        assert "refused" in message and "not on this connection's origin" in message and "allowed_hosts" in message
        assert other.requests == []
        allowed = flowlang.compile(source.replace("{allowed}", ', allowed_hosts: ["127.0.0.1"]'))
        result = allowed.run(env=env, secrets=secrets)
        assert result.outputs == [{"ok": True}]
        assert len(other.requests) == 1
        sent = other.requests[0].headers
        assert "authorization" not in sent and "x-key" not in sent
        assert api.requests[-1].headers["authorization"].startswith("Bearer ")  # its own origin still gets them


def test_dns_rebinding_cannot_pass_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name answers a public address when first looked up and 127.0.0.1 afterwards: the
    connection must go to the address that was checked, never to a second answer."""
    import asyncio.selector_events
    import socket

    real_lookup = socket.getaddrinfo
    answers: list[str] = []
    connects: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real_lookup(host, port, *args, **kwargs)
        address = "100.64.0.7" if not answers else "127.0.0.1"  # (shared address space: not private)
        answers.append(address)
        return real_lookup(address, port, *args, **kwargs)

    real_connect = asyncio.selector_events.BaseSelectorEventLoop.sock_connect

    async def connect(self: Any, sock: Any, address: Any) -> Any:
        connects.append(address[0])
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(111, "refused by the test (no traffic leaves 127.0.0.1)")
        return await real_connect(self, sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", connect)
    with FakeApi() as api:
        api.route("GET", "/secret", lambda req: (200, {}, {"reached": True}))
        port = api.url.rsplit(":", 1)[1]
        flow = flowlang.compile(f"""
use api = http(base_url: "http://rebind.test:{port}", allowed_hosts: ["rebind.test"], retry: 1)
try
  call api.get("/secret") as r
  emit r
on error as e
  emit e.message
end
""")
        result = flow.run()
        assert api.requests == [], "the request reached the address of the second lookup"
        assert connects == ["100.64.0.7"] and answers[0] == "100.64.0.7"
        assert "cannot connect" in result.outputs[0]
        connects.clear()
        again = flow.run()  # from now on the name answers 127.0.0.1: refused by the resolver itself
        assert "resolves to the internal address 127.0.0.1" in again.outputs[0]
        assert api.requests == [] and connects == []


def test_ipv6_literals_in_allowed_hosts() -> None:
    with FakeApi(host="::1") as api:
        api.route("GET", "/ok", lambda req: (200, {}, {"ok": True}))
        port = api.url.rsplit(":", 1)[1]
        source = 'use api = http(base_url: "{url}", allowed_hosts: [{allowed}])\ncall api.get("/ok") as r\nemit r.ok\n'
        for allowed in ('"[::1]"', f'"[::1]:{port}"', '"::1"', '"[0:0:0:0:0:0:0:1]"'):
            result = flowlang.compile(source.format(url=api.url, allowed=allowed)).run()
            assert result.error is None and result.outputs == [True], (allowed, result.error)
        refused = flowlang.compile(source.format(url=api.url, allowed='"[::1]:1"')).run()
        assert refused.error is not None and "not in this connection's allowed_hosts" in refused.error.message
        assert api.count("GET", "/ok") == 4


def test_a_record_holding_a_secrets_text_is_stored_masked_and_not_retried_until_edited(tmp_path: Path) -> None:
    """Data that holds a secret's text (an API echoing a token) is stored with *** in its place, so
    replaying it would send *** to the API: retry leaves it open and says to edit it first; after
    `flowlang edit`, the retry sends the edited record. Counted at the receiving server."""
    from conftest import cli
    secret = 'sek"ret\\-é-canary-4711'
    (tmp_path / "s.toml").write_text(f"K = {json.dumps(secret)}\n")
    (tmp_path / "a.flow").write_text('use api = http(base_url: env.API, headers: {"X-Key": secret.K})\n'
                                     'call api.get("/l") as xs\nfor each x in xs\n  send x to api.post("/p")\nend\n')
    received: list[Any] = []
    failing = [True]
    with FakeApi() as api:
        api.route("GET", "/l", lambda req: (200, {}, [{"id": 1, "note": f"token {secret} here"}]))

        def post(req: Request) -> tuple[int, dict[str, str], Any]:
            received.append(req.body)
            return (500, {}, {"error": "down"}) if failing[0] else (201, {}, {"ok": True})
        api.route("POST", "/p", post)
        env = {"API": api.url}
        assert cli("run", "a.flow", "--secrets", "s.toml", cwd=tmp_path, env=env).status == 3
        stored = json.loads(cli("errors", "a.flow", "--json", cwd=tmp_path, env=env).stdout.splitlines()[0])
        assert stored["record"] == {"id": 1, "note": "token *** here"}
        failing[0] = False
        retry = cli("retry", "a.flow", "--secrets", "s.toml", cwd=tmp_path, env=env)
        # the command to type names the flow's file, as every such command does (it said `flowlang edit FILE 1`),
        # and the summary says why (it said 'they failed as they were read' of a record that held a secret)
        assert retry.status == 3 and f"change it with `flowlang edit a.flow {stored['id']} --set PATH=JSON`" \
            in retry.stderr, retry.stderr
        assert "to edit first 1 (their records failed as they were read, or hold a secret's text stored as ***" \
            in retry.stdout + retry.stderr
        assert secret not in retry.stdout + retry.stderr
        assert len(received) == 1  # nothing sent with *** in it
        assert cli("edit", "a.flow", str(stored["id"]), "--set", 'note="token (removed) here"',
                   cwd=tmp_path, env=env).status == 0
        assert cli("retry", "a.flow", "--secrets", "s.toml", cwd=tmp_path, env=env).status == 0
    assert received == [{"id": 1, "note": f"token {secret} here"}, {"id": 1, "note": "token (removed) here"}]


def test_a_variable_holding_a_secrets_text_is_worked_out_again_or_left_open_on_retry(tmp_path: Path) -> None:
    """A failed iteration's saved variables are stored masked too. Retry never puts *** in their place:
    a top-level variable is worked out again by the flow's top-level lines (the server receives what
    the first attempt sent); a `call`'s answer or an outer loop's variable cannot be, so that error is left open and
    nothing is sent. Counted at the receiving server."""
    from conftest import cli
    secret = 'sek"ret\\-é-canary-4712-' + "x" * 40
    (tmp_path / "s.toml").write_text(f"K = {json.dumps(secret)}\n")
    (tmp_path / "top.flow").write_text(
        'use api = http(base_url: env.API, headers: {"X-Key": secret.K})\n'
        'let me = {note: env.WHO}\ncall api.get("/l") as xs\n'
        'for each x in xs\n  send {id: x.id, who: me.note} to api.post("/p")\nend\n')
    (tmp_path / "outer.flow").write_text(
        'use api = http(base_url: env.API, headers: {"X-Key": secret.K})\n'
        'call api.get("/groups") as groups\n'
        'for each g in groups\n  for each x in g.xs\n    send {id: x, who: g.note} to api.post("/p")\n  end\nend\n')
    received: list[Any] = []
    failing = [True]
    with FakeApi() as api:
        api.route("GET", "/l", lambda req: (200, {}, [{"id": 1}]))
        api.route("GET", "/groups", lambda req: (200, {}, [{"note": f"by {secret}", "xs": [7]}]))

        def post(req: Request) -> tuple[int, dict[str, str], Any]:
            received.append(req.body)
            return (500, {}, {"error": "down"}) if failing[0] else (201, {}, {"ok": True})
        api.route("POST", "/p", post)
        env = {"API": api.url, "WHO": f"token {secret} here"}  # the same text as the secret's, in data
        for flow in ("top.flow", "outer.flow"):
            assert cli("run", flow, "--secrets", "s.toml", cwd=tmp_path, env=env).status == 3
        errors = cli("errors", "top.flow", "--json", cwd=tmp_path, env=env).stdout
        assert secret not in errors
        failing[0] = False
        top = cli("retry", "top.flow", "--secrets", "s.toml", cwd=tmp_path, env=env)
        assert top.status == 0, top.stderr
        outer = cli("retry", "outer.flow", "--secrets", "s.toml", cwd=tmp_path, env=env)
        assert outer.status != 0 and "held the text of a secret" in outer.stderr and "left open" in outer.stderr
        assert secret not in top.stdout + top.stderr + outer.stdout + outer.stderr
    assert received == [{"id": 1, "who": f"token {secret} here"}, {"id": 7, "who": f"by {secret}"},
                        {"id": 1, "who": f"token {secret} here"}]


def test_a_trace_key_is_stored_and_shown_masked(tmp_path: Path) -> None:
    """A record keyed by a field that holds a secret's text (an API that echoes the token) is kept with
    its key masked, as its record is: `flowlang errors` (text and --json) and the store file never hold
    the secret; a later success of that record still resolves its error. A key built from a secret
    (`key secret.K + o.n`) keeps the rest of its text, so two such failed records are two open errors;
    before, both keys were {"$secret": null} and the second replaced the first (a failed record lost)."""
    from conftest import cli
    secret = 'sek"ret\\-é-canary-4713'
    (tmp_path / "s.toml").write_text(f"K = {json.dumps(secret)}\n")
    (tmp_path / "a.flow").write_text(
        'use api = http(base_url: env.API, headers: {"X-Key": secret.K})\ncall api.get("/l") as xs\n'
        'for each x in xs key x.ref\n  send {n: x.n} to api.post("/p")\nend\n'
        'for each x in xs key secret.K + x.n\n  send {n: x.n, again: true} to api.post("/p")\nend\n')
    failing = [True]
    received: list[Any] = []
    with FakeApi() as api:
        api.route("GET", "/l", lambda req: (200, {}, [{"ref": f"ref-{secret}-{n}", "n": n} for n in ("1", "2")]))

        def post(req: Request) -> tuple[int, dict[str, str], Any]:
            received.append(req.body)
            return (422, {}, {"error": "no"}) if failing[0] else (201, {}, {"ok": True})
        api.route("POST", "/p", post)
        env = {"API": api.url}
        assert cli("run", "a.flow", "--secrets", "s.toml", cwd=tmp_path, env=env).status == 3
        shown = cli("errors", "a.flow", cwd=tmp_path, env=env).stdout
        listed = [json.loads(x) for x in cli("errors", "a.flow", "--json", cwd=tmp_path, env=env).stdout.splitlines()]
        assert [e["key"] for e in listed] == ["ref-***-1", "ref-***-2", "***1", "***2"], listed
        assert secret not in shown and "ref-***-1" in shown
        store_bytes = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").iterdir() if p.is_file())
        assert secret.encode() not in store_bytes and json.dumps(secret).encode() not in store_bytes
        failing[0] = False
        assert cli("run", "a.flow", "--secrets", "s.toml", cwd=tmp_path, env=env).status == 0
        everything = cli("errors", "a.flow", "--all", "--json", cwd=tmp_path, env=env).stdout
    after = [json.loads(x) for x in everything.splitlines()]
    assert [e["resolved_reason"] for e in after] == ["a later success (job 2)"] * 4
    assert len(received) == 8  # each record once a run: nothing lost, nothing sent twice


def test_a_database_password_with_an_unencoded_at_sign_is_refused_unshown(tmp_path: Path) -> None:
    """A password's '@' ends it in a URL: SQLAlchemy read the rest as the host, and the driver's error
    showed it ("failed to resolve host '<the rest of the password>@127.0.0.1'"), unmasked in the message,
    the log and the error store. Now the URL is refused before connecting and no form of it is shown;
    URL-encoded, the same password reaches the server (here: a closed port, refused)."""
    password = "pw@" + CANARY
    (tmp_path / "secrets.toml").write_text(f"PW = {toml_string(password)}\n")
    outputs = []
    for url, says in (("postgresql://app:{secret.PW}@127.0.0.1:1/db", "not URL-encoded"),
                      ("postgresql://app:{url_encode(secret.PW)}@127.0.0.1:1/db", 'port 1 failed')):
        (tmp_path / "f.flow").write_text(f'use db = sql(url: "{url}")\ncall db.execute("select 1")\n')
        for extra in ([], ["--debug"], ["--log-format", "json"]):
            proc = run_cli("run", "f.flow", "--secrets", "secrets.toml", *extra, cwd=tmp_path)
            assert proc.returncode == 1 and says in proc.stderr, proc.stderr
            outputs += [proc.stdout, proc.stderr]
        outputs.append(run_cli("jobs", "f.flow", cwd=tmp_path).stdout)
    outputs.append((tmp_path / ".flowlang" / "flowlang.db").read_bytes().decode("utf-8", errors="replace"))
    everything = "\n".join(outputs)
    assert {form for form in forms(CANARY) if form in everything} == set()


def test_a_database_user_with_an_unencoded_slash_is_refused_unshown(tmp_path: Path) -> None:
    """A user (a token given as the user) holding a '/': it ends there, SQLAlchemy read its head as the host
    and the rest as the database and a dropped query item, and the driver said "failed to resolve host
    'Rk3v'": a piece of the secret, too short to be masked as one. The URL is refused before connecting,
    as one whose password holds an '@' is; URL-encoded, the same user reaches the server."""
    from conftest import cli

    token = "Rk3v/9Wm2#Lp8?Tx5Qn"
    for url, says in (("postgresql://{secret.TOK}@127.0.0.1:1/db", "holds an '@', '/' or '?' that is not URL-encoded"),
                      ("postgresql://{url_encode(secret.TOK)}@127.0.0.1:1/db", "port 1 failed")):
        (tmp_path / "f.flow").write_text(f'use db = sql(url: "{url}")\ncall db.execute("select 1")\n')
        result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"TOK": token})
        assert result.status == 1 and says in result.stderr, result.stderr
        assert "Rk3v" not in result.stderr and "resolve host" not in result.stderr


def test_a_secret_echoed_in_an_html_or_xml_error_page_is_masked(tmp_path: Path) -> None:
    # a gateway's HTML error page, a SOAP fault: the canary's quotes as &quot; / &#34; / &#39;; before,
    # that form was shown in the log, the error store and `flowlang errors`
    def page(req: Request) -> tuple[int, dict[str, str], Any]:
        token = req.headers["authorization"].encode("latin-1").decode()
        if req.query.get("as") == "xml":
            body = ("<fault><detail>" + html.escape(token, quote=False).replace('"', "&#34;").replace("'", "&apos;")
                    + "</detail></fault>")
            return 400, {"Content-Type": "application/xml"}, body.encode()
        return 400, {"Content-Type": "text/html"}, f"<p>bad token {html.escape(token)}</p>".encode()

    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, auth: bearer(secret.TOKEN))\n'
                                     'for each kind in ["html", "xml"]\n  call api.get("/page", query: {as: kind})\n'
                                     'end\n')
    secret = CANARY + "'<&>"
    with FakeApi() as api:
        api.route("GET", "/page", page)
        proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url, "TOKEN": secret})
        assert proc.returncode == 3, proc.stderr
        listed = run_cli("errors", "f.flow", cwd=tmp_path)
    assert listed.stdout.count("bad token Bearer ***") == 1 and "<detail>Bearer ***</detail>" in listed.stdout
    everything = "\n".join([proc.stdout, proc.stderr, listed.stdout,
                            (tmp_path / ".flowlang" / "flowlang.db").read_bytes().decode("utf-8", "replace")])
    escaped = {html.escape(secret), html.escape(secret, quote=False).replace('"', "&#34;").replace("'", "&apos;")}
    assert [form[:40] for form in escaped if form[:40] in everything] == []


def test_the_parts_of_a_split_secret_and_a_join_with_one_stay_secret(tmp_path: Path) -> None:
    """split() of a secret gave its parts as plain text (each a long piece of the secret, which masking
    of the whole does not find): emitted, logged and kept in the store as they were. Now each part is a
    secret, and join() of a list holding one is a secret of the joined text (before: the text '***'
    itself was joined in, so a header built with join lost its credential)."""
    from conftest import cli

    (tmp_path / "s.flow").write_text(
        'let parts = split(secret.TOKEN, "x/")\n'
        "emit parts\n"
        'log "first part: {parts[0]}, count {len(parts)}"\n'
        "emit len(parts) == 2\n"
        'let again = join(parts, "x/")\n'
        "emit again == secret.TOKEN\n"
        "for each p in parts\n"
        '  fail "part {p}"\n'
        "end\n")
    result = cli("run", "s.flow", "--log-format", "json", cwd=tmp_path, env={"TOKEN": CANARY})
    assert result.status == 3, result.stderr
    out = result.stdout + result.stderr
    pieces = CANARY.split("x/")
    assert len(pieces) == 2 and all(len(p) > 10 for p in pieces)
    for piece in pieces:
        for form in (piece, json.dumps(piece)[1:-1]):
            assert form not in out
    assert json.loads(result.stdout.splitlines()[0]) == ["***", "***"]
    assert result.stdout.splitlines()[1:] == ["true", "true"]
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for piece in pieces:
        assert piece.encode() not in stored and json.dumps(piece)[1:-1].encode() not in stored


def test_json_string_of_a_value_holding_a_secret_sends_the_value_and_shows_it_masked(tmp_path: Path) -> None:
    """json_string({key: secret.TOKEN}) wrote '***' into the JSON text, so a body built with it (for a
    signature, a text field) reached the API without the credential. It now holds the value and is a
    secret itself: the API gets the real JSON, and the flow's outputs show ***."""
    with FakeApi() as api:
        api.route("POST", "/in", lambda req: (200, {}, {"ok": True}))
        flow = flowlang.compile(f'use api = http(base_url: "{api.url}")\n'
                                "let body = json_string({key: secret.TOKEN, n: 1})\n"
                                'call api.post("/in", body: body, headers: {"Content-Type": "application/json"}) as r\n'
                                "emit body\nemit json_string({n: 1})\n", name="j.flow")
        result = flow.run(secrets={"TOKEN": CANARY})
        assert result.ok, result.error
        assert json.loads(api.requests[0].raw) == {"key": CANARY, "n": 1}
    assert str(result.outputs[0]) == "***" and result.outputs[1] == '{"n":1}'



def test_json_parse_of_a_secret_gives_its_texts_as_secrets_and_sends_them_whole(tmp_path: Path) -> None:
    """A service account's key file kept as one secret: json_parse(secret.KEY) said 'json_parse() needs
    a string, got secret', so its fields could reach no request. It gives the value, each text in it a
    secret: an API gets the real text, and no output shows it (the parsed key's private part is the
    canary)."""
    from conftest import cli

    key = json.dumps({"client_email": "bot@example.iam", "private_key": CANARY, "port": 5432})
    with FakeApi() as api:
        api.route("POST", "/token", lambda req: (200, {}, {"ok": True}))
        (tmp_path / "k.flow").write_text(
            f'use api = http(base_url: "{api.url}")\n'
            "let k = json_parse(secret.KEY)\n"
            'call api.post("/token", body: {email: k.client_email, key: k.private_key}) as r\n'
            "emit k\nemit k.port + 1\nlog k.private_key\n"
            'for each part in [k.private_key]\n  fail "bad {part}"\nend\n')
        result = cli("run", "k.flow", "--log-format", "json", cwd=tmp_path, env={"KEY": key})
        assert json.loads(api.requests[0].raw) == {"email": "bot@example.iam", "key": CANARY}
    assert result.status == 3, result.stderr
    assert result.stdout.splitlines()[1] == "5433"
    out = result.stdout + result.stderr
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for form in forms(CANARY):
        assert form not in out and form.encode() not in stored

def test_an_api_echoing_a_part_of_a_split_secret_has_it_masked(tmp_path: Path) -> None:
    """A credential kept as "user:password" and split to send the password alone: an API that echoes
    the password in its error message had it shown in the log, the failed record's message and the
    error store (only the whole secret was masked). The parts split() gives are masked in the run as
    the secret is."""
    from conftest import cli

    password = CANARY[10:]
    with FakeApi() as api:
        api.route("POST", "/login", lambda req: (422, {}, {"error": f"wrong password {req.body.get('password')}"}))
        (tmp_path / "f.flow").write_text(
            f'use api = http(base_url: "{api.url}")\n'
            'let parts = split(secret.LOGIN, "\\t")\n'
            "for each n in [1]\n"
            '  call api.post("/login", body: {user: parts[0], password: parts[1]}) as r\n'
            "end\n")
        result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"LOGIN": "bob\t" + password})
        assert api.requests[0].body == {"user": "bob", "password": password}  # the API got the real value
    assert result.status == 3, result.stderr
    assert "wrong password ***" in result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        assert password not in text and json.dumps(password)[1:-1] not in text
    assert "wrong password ***" in listed.stdout


def test_a_secret_quoted_by_python_in_a_message_is_masked(tmp_path: Path) -> None:
    """regex_match(text, secret.P) with a bad pattern failed with "bad regular expression '...'": Python's
    repr of the pattern, its backslashes doubled and its ' escaped, which none of the masked forms
    matched, so a secret with a quote and a backslash was shown whole in the log, the failed record's
    message and the error store. The forms repr() and ascii() write are masked too."""
    from conftest import cli

    secret = "k'e\"y\\x-é中😀-" + "Rk3v9Wm2" * 6
    (tmp_path / "f.flow").write_text('for each n in [1]\n  emit regex_match("x", secret.P)\nend\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"P": secret})
    assert result.status == 3, result.stderr
    assert "bad regular expression '***'" in result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    assert "bad regular expression '***'" in listed.stdout
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        for form in (secret, repr(secret)[1:-1], ascii(secret)[1:-1], "Rk3v9Wm2Rk3v9Wm2"):
            assert form not in text


@given(st.text(NO_STAR, min_size=8, max_size=40))
@settings(max_examples=300, deadline=None)
def test_masking_covers_the_forms_python_quotes_a_secret_in(secret: str) -> None:
    from flowlang.runtime.masking import Masker

    masker = Masker()
    masker.add(secret)
    forms = {repr(secret)[1:-1], ascii(secret)[1:-1], repr(secret.encode())[2:-1], repr(secret + "'\"")[1:-4]}
    for shown in (repr(secret), ascii(secret), repr(secret.encode()), repr(secret + "'\""), str(KeyError(secret)),
                  json.dumps(repr(secret)), json.dumps(repr(secret), ensure_ascii=False)):
        masked = masker.mask(shown)
        assert "***" in masked and not any(form in masked or json.dumps(form)[1:-1] in masked
                                           for form in forms), (shown, masked)


def test_an_api_echoing_a_text_made_from_a_secret_has_it_masked(tmp_path: Path) -> None:
    """upper(secret.T), substr(secret.T, ...) and replace(secret.T, ...) are secrets in the flow (shown
    as ***), but sent to an API that echoes what it got in its error, they were shown whole in the log,
    the failed record's message and the error store: only the secret's own text was masked. The run's
    masker now learns each text a text function makes from a secret."""
    from conftest import cli

    secret = "k'e\"y\\x-é中😀-" + "Rk3v9Wm2Lp8Tx5Qn" * 4
    made = {"u": secret.upper(), "s": secret[3:40], "r": secret.replace("Rk3", "QQQ")}
    with FakeApi() as api:
        api.route("POST", "/in", lambda req: (422, {}, {"error": f"refused {req.body}"}))
        (tmp_path / "f.flow").write_text(
            f'use api = http(base_url: "{api.url}", retry: 1)\n'
            "for each n in [1]\n"
            '  call api.post("/in", body: {u: upper(secret.T), s: substr(secret.T, 3, 37), '
            'r: replace(secret.T, "Rk3", "QQQ")}) as r\n'
            "end\n")
        result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"T": secret})
        assert api.requests[0].body == made  # the API got the real values
    assert result.status == 3, result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    assert "refused {'u': '***', 's': '***', 'r': '***'}" in json.loads(listed.stdout.splitlines()[0])["message"]
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        for value in made.values():
            for form in (value, value[:20], json.dumps(value)[1:-1], repr(value)[1:-1], value[-20:]):
                assert form not in text


def test_texts_made_from_a_secret_per_record_are_learned_a_bounded_number_of_times() -> None:
    from flowlang.runtime.masking import MAX_DERIVED, Masker

    masker = Masker()
    masker.add("Rk3v9Wm2Lp8Tx5Qn")
    masker.learn_derived("id 7: Rk3v9Wm2Lp8Tx5Qn")  # shows the secret: its masking hides it already
    masker.learn_derived("RK3V9WM2LP8TX5QN")
    assert masker.mask("a RK3V9WM2LP8TX5QN, id 7: Rk3v9Wm2Lp8Tx5Qn") == "a ***, id 7: ***"
    for n in range(MAX_DERIVED + 50):
        masker.learn_derived(f"made-{n:04}-from-it")
    assert masker.mask("made-0050-from-it") == "***"
    assert masker.mask(f"made-{MAX_DERIVED + 10:04}-from-it") != "***"  # past the bound: not learned


def test_a_piece_of_a_secret_is_masked_where_it_shows(tmp_path: Path) -> None:
    """Only whole secrets were masked, so a piece of one was shown: an API that echoes the first 30
    characters of the Authorization header it got, or SQLite's 'near "...": syntax error' naming the
    token of a secret written into a query. A piece of 9 characters or more of a secret (plain,
    JSON-escaped, Python-quoted, percent-encoded) is masked now."""
    from conftest import cli

    secret = "Zq7'\"\\x/é中😀+ &<b>%41 " + "Rk3v9Wm2Lp8Tx5Qn" + "é中Ab\\'\"cD😀eF" * 4
    with FakeApi() as api:
        api.route("GET", "/in", lambda req: (401, {}, {"error": f"bad token {req.headers['authorization'][:30]}..."}))
        (tmp_path / "f.flow").write_text(
            f'use api = http(base_url: "{api.url}", auth: bearer(secret.T), retry: 1)\n'
            'use db = sql(url: "sqlite:///x.db")\n'
            "for each n in [1]\n"
            '  call api.get("/in") as r\n'
            "end\n"
            "for each n in [2]\n"
            '  call db.query("select {secret.T}") as rows\n'
            "  emit rows\n"
            "end\n")
        result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"T": secret})
    assert result.status == 3, result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    messages = [json.loads(line)["message"] for line in listed.stdout.splitlines()]
    assert messages[0].endswith('answered 401 Unauthorized: {"error":"bad token Bearer ***..."}'), messages
    assert "syntax error" in messages[1] and "***" in messages[1], messages
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    header = f"Bearer {secret}".encode().decode("latin-1")  # as the API's HTTP server read it
    pieces = [header[7:30], secret[37:50], "cD😀eFé中Ab"]
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        for piece in pieces:
            for form in (piece, json.dumps(piece)[1:-1]):
                assert form not in text


def test_a_piece_of_a_secret_is_masked_from_9_characters_but_not_a_urls_scheme_and_host() -> None:
    from flowlang.runtime.masking import MIN_FRAGMENT, Masker

    masker = Masker()
    masker.add("Rk3v9Wm2Lp8Tx5Qn")
    masker.add("postgresql://app:Zx8vQ2mN7pL4kJ9w@db.example.com/app")
    assert MIN_FRAGMENT == 9
    assert masker.mask("a Rk3v9Wm2L, b Rk3v9Wm2, c 8Tx5QnRk3v9") == "a ***, b Rk3v9Wm2, c 8Tx5QnRk3v9"
    assert masker.mask(json.dumps("x v9Wm2Lp8Tx5Qn y")) == '"x *** y"'
    assert masker.mask("cannot reach postgresql://app:***@db.example.com/app") == "cannot reach postgresql://app:***@db.example.com/app"


@settings(max_examples=300, deadline=None)
@given(secret=st.text(min_size=9, max_size=120), data=st.data())
def test_every_piece_of_a_secret_is_masked_wherever_it_starts(secret: str, data: Any) -> None:
    """The text is probed for pieces every few characters only (a PEM key's windows as one pattern cost
    milliseconds a line): a piece of 9 or more characters is still masked at any offset, next to any
    text, and two pieces side by side or overlapping leave no window of the secret shown."""
    from flowlang.runtime.masking import MIN_FRAGMENT, Masker

    masker = Masker()
    masker.add(secret)
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        parts.append(data.draw(st.text(max_size=12)))
        start = data.draw(st.integers(0, len(secret) - MIN_FRAGMENT))
        parts.append(secret[start:data.draw(st.integers(start + MIN_FRAGMENT, len(secret)))])
    shown = masker.mask("".join(parts))
    assert not any(secret[i:i + MIN_FRAGMENT] in shown for i in range(len(secret) - MIN_FRAGMENT + 1)), shown


@settings(max_examples=300, deadline=None)
@given(secret=st.text(min_size=8, max_size=120), before=st.text(max_size=60), after=st.text(max_size=60),
       encoded=st.sampled_from(["plain", "json", "url", "base64"]))
def test_a_whole_secret_is_masked_wherever_it_starts(secret: str, before: str, after: str, encoded: str) -> None:
    """A text is first probed every few characters for a window of a secret's forms (searching the
    pattern of its hundreds of forms cost 60 us a line); the probe never misses a whole form at any
    offset, short secret or long."""
    from flowlang.runtime.masking import Masker

    masker = Masker()
    masker.add(secret)
    form = {"plain": secret, "json": json.dumps(secret)[1:-1], "url": urllib.parse.quote(secret, safe=""),
            "base64": base64.b64encode(secret.encode("utf-8", "surrogatepass")).decode()}[encoded]
    shown = masker.mask(before + form + after)
    assert form not in shown, shown


def test_a_piece_of_a_text_made_from_a_secret_is_masked_where_it_stands_alone(tmp_path: Path) -> None:
    """upper(secret.T) written into a query: SQLite's 'no such column: RK3V9WM2LP8TX5QN' named the piece
    of it before its first '-', shown in the log, the failed record's message and the error store (a
    text made from a secret was masked whole only). Its pieces of 9 characters or more are masked now
    where they stand alone (not inside a longer word: such a text may hold common words)."""
    from conftest import cli
    from flowlang.runtime.masking import Masker

    secret = "Rk3v9Wm2Lp8Tx5Qn-secret-Zz9"
    (tmp_path / "f.flow").write_text('use db = sql(url: "sqlite:///x.db")\n'
                                     "for each n in [1]\n"
                                     '  call db.query("select {upper(secret.T)}") as rows\n'
                                     "  emit rows\n"
                                     "end\n")
    result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"T": secret})
    assert result.status == 3, result.stderr
    assert "no such column: ***" in result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    assert json.loads(listed.stdout.splitlines()[0])["message"].endswith("no such column: ***")
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        assert "RK3V9WM2L" not in text and "TX5QN" not in text

    masker = Masker()
    masker.add(secret)
    masker.learn_derived("international-orders")
    assert masker.mask("internationally, international") == "internationally, ***"


def test_a_secret_in_mime_base64_lines_or_ascii_escapes_is_masked(tmp_path: Path) -> None:
    """An API that echoed the credential it got as base64 cut into lines of 76 (MIME, as an e-mail or a
    SOAP fault carries it), or with its non-ASCII characters as backslash escapes ('\\xe9', '\\u4e2d':
    text written where ASCII was wanted), had it shown: the whole base64 was masked, not its lines, and
    that escaped form not at all. Both are masked now."""
    from conftest import cli

    secret = "k'e\"y\\x-é中😀-" + "Rk3v9Wm2Lp8Tx5Qn" * 5
    header = f"Bearer {secret}".encode()

    def echo(req: Request) -> tuple[int, dict[str, str], Any]:
        got = req.headers["authorization"].encode("latin-1")  # the header's bytes as the server read them
        return 401, {}, {"error": "bad credentials", "mime": base64.encodebytes(got).decode(),
                         "ascii": got.decode().encode("ascii", "backslashreplace").decode()}

    with FakeApi() as api:
        api.route("GET", "/in", echo)
        (tmp_path / "f.flow").write_text(f'use api = http(base_url: "{api.url}", auth: bearer(secret.T), retry: 1)\n'
                                         'for each n in [1]\n  call api.get("/in") as r\nend\n')
        result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"T": secret})
        assert api.requests[0].headers["authorization"].encode("latin-1") == header
    assert result.status == 3, result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    message = json.loads(listed.stdout.splitlines()[0])["message"]
    assert '"ascii":"Bearer ***"' in message, message
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    lines = base64.encodebytes(header).decode().split()
    escaped = secret.encode("ascii", "backslashreplace").decode()
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        for form in (*lines[1:], lines[0][12:], escaped, json.dumps(escaped)[1:-1]):
            assert form not in text


def test_data_shaped_like_a_stored_tag_comes_back_as_the_data(tmp_path: Path) -> None:
    """An API's {"$secret": "SHOP_TOKEN"} in a failed record was stored as the store's own secret
    reference, so `flowlang retry` sent the real token to the destination; MongoDB's {"$date": ...}
    came back as a date (or, not ISO 8601, left the error 'damaged' and unretryable), and so did such
    an object kept in state. The store keeps such objects as they were."""
    token = "tok-" + "s" * 24
    bodies: list[bytes] = []

    def sink(req: Request) -> tuple[int, dict[str, str], Any]:
        bodies.append(req.raw)
        return (422, {}, {"error": "not yet"}) if len(bodies) == 1 else (201, {}, {})

    shaped = {"id": 1, "note": {"$secret": "SHOP_TOKEN"}, "day": {"$date": "2024-05-01"},
              "mongo": {"$date": "2024-05-01T10:00:00.000Z"}, "odd": {"$datetime": "soon"}, "wrap": {"$object": {}}}
    (tmp_path / "f.flow").write_text(
        'use src = http(base_url: env.API)\nuse dst = http(base_url: env.API, auth: bearer(secret.SHOP_TOKEN))\n'
        'call src.get("/items") as items\nfor each it in items key it.id\n  send it to dst.post("/sink")\n'
        '  let state.kept = it\nend\nemit {kinds: [type_of(v) for v in values(state.kept ?? {})]}\n')
    (tmp_path / "secrets.toml").write_text(f'SHOP_TOKEN = "{token}"\n')
    with FakeApi() as api:
        api.route("GET", r"^/items$", lambda req: (200, {}, [shaped]))
        api.route("POST", r"^/sink$", sink)
        env = {"API": api.url}
        first = run_cli("run", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path, env=env)
        assert first.returncode == 3, first.stderr
        retried = run_cli("retry", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path, env=env)
        assert retried.returncode == 0, retried.stderr
        assert "damaged" not in retried.stderr
        again = run_cli("run", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
    assert len(bodies) == 3 and all(json.loads(b) == shaped for b in bodies), bodies
    assert not any(token.encode() in b for b in bodies)  # the data's {"$secret": ...} is never the secret
    # the state the second run committed comes back as the objects it held, not as dates
    assert json.loads(again.stdout.splitlines()[-1]) == {"kinds": ["number", "object", "object", "object", "object",
                                                                   "object"]}


def dotnet_json(value: Any) -> bytes:
    """JSON as .NET's System.Text.Json writes it by default (ASP.NET's answers): `"&'+<>` and backquote,
    control characters and everything past ASCII as \\uXXXX in upper-case hex."""
    def text(s: str) -> str:
        out = []
        for c in s:
            if c == "\\":
                out.append("\\\\")
            elif c in "\"&'+<>`" or not " " <= c <= "~":
                raw = c.encode("utf-16-be")
                out += [f"\\u{raw[i]:02X}{raw[i + 1]:02X}" for i in range(0, len(raw), 2)]
            else:
                out.append(c)
        return '"' + "".join(out) + '"'
    if isinstance(value, dict):
        return ("{" + ",".join(text(k) + ":" + dotnet_json(v).decode() for k, v in value.items()) + "}").encode()
    return text(str(value)).encode()


def test_a_secret_an_aspnet_api_echoes_in_its_json_is_masked(tmp_path: Path) -> None:
    """System.Text.Json escapes '+' (and quotes, '<>&', non-ASCII) as \\u002B, so an API key echoed in
    an ASP.NET error body was in none of the forms masked: 'Ab3\\u002Bx/9QzT8k2\\u002BLm0pQ=' showed whole
    in the record's error and in the store; one with quotes or non-ASCII showed all but the pieces
    of 9 characters or more between them."""
    import sqlite3

    keys = {"SHORT": "Ab3+x/9QzT8k2+Lm0pQ=", "LONG": CANARY[:300]}
    (tmp_path / "f.flow").write_text(
        'use a = http(base_url: env.API, auth: api_key("X-Api-Key", secret.SHORT), retry: 1)\n'
        'use b = http(base_url: env.API, auth: api_key("X-Api-Key", secret.LONG), retry: 1)\n'
        'for each n in [1]\n  call a.get("/items")\nend\nfor each n in [1]\n  call b.get("/items")\nend\n'
        'try\n  call a.get("/items")\non error as e\n  emit e\nend\n')
    with FakeApi() as api:
        api.route("GET", "/items", lambda req: (401, {}, dotnet_json(
            {"error": "invalid key " + req.headers["x-api-key"].encode("latin-1").decode()})))
        proc = run_cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"API": api.url, **keys})
        assert proc.returncode == 3, proc.stderr
        assert [r.headers["x-api-key"].encode("latin-1").decode() for r in api.requests][:2] == list(keys.values())
    assert proc.stderr.count("invalid key ***") == 2, proc.stderr
    con = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
    stored = json.dumps([list(row) for row in con.execute("select message from errors")])
    con.close()
    everything = proc.stdout + proc.stderr + stored
    for key in keys.values():
        shown = dotnet_json(key).decode()[1:-1]
        for piece in re.split(r"\\u[0-9A-F]{4}|\\\\", shown):
            assert len(piece) < 3 or piece not in everything, piece


def test_a_secret_an_api_echoes_percent_encoded_the_php_or_java_way_is_masked(tmp_path: Path) -> None:
    """PHP's urlencode and Java's URLEncoder write '~' as %7E (Java keeps '*'), which none of the
    percent-encoded forms masked had: a key 'x7~Qm*...' echoed in a link or an error showed every
    piece shorter than 9 characters around them ('%7Ex%21y*z%28q%29' of '~x!y*z(q)')."""
    key = "sk~" + "Qm7pX2" * 30 + "~x!y*z(q) k"
    java = urllib.parse.quote_plus(key, safe="*").replace("~", "%7E")
    php = urllib.parse.quote_plus(key, safe="").replace("~", "%7E")
    (tmp_path / "f.flow").write_text('use a = http(base_url: env.API, auth: api_key("X-Api-Key", secret.K), retry: 1)\n'
                                     'for each path in ["/java", "/php"]\n  call a.get(path)\nend\n')
    with FakeApi() as api:
        api.route("GET", "/java", lambda req: (400, {}, {"error": f"rejected: /items?k={java}&page=2"}))
        api.route("GET", "/php", lambda req: (400, {}, {"error": f"rejected: /items?k={php}&page=2"}))
        proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url, "K": key})
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("rejected: /items?k=***&page=2") == 2, proc.stderr
    assert "%7E" not in proc.stderr and "z%28q" not in proc.stderr


def test_the_key_in_the_query_of_a_secret_base_url_is_masked(tmp_path: Path) -> None:
    """A base URL given as a secret with its key in the query (`base_url: secret.API_URL` =
    'https://fn.example.net/api?code=<key>', as Azure Functions give theirs) was masked only whole,
    and each request puts that query after its own path ('/api/orders?code=<key>'), so the whole URL
    is never shown: the key was in every error, the store and an echo. Its password and its query's
    credentials (named so, or 16 characters or more) are masked on their own now; a short value that
    is no credential (api-version) is not."""
    import sqlite3

    key = "Kq8mV2zP7xR4tW9y/B3nL6cF1+Zr4mQ8=="
    (tmp_path / "f.flow").write_text('use api = http(base_url: secret.API_URL, retry: 1)\n'
                                     'for each n in [1]\n  call api.get("/orders")\nend\n'
                                     'call api.get("/echo") as seen\nemit seen\n')
    with FakeApi() as api:
        api.route("GET", "/api/orders", lambda req: (500, {}, {"error": "down"}))
        api.route("GET", "/api/echo", lambda req: (200, {}, {"query": req.query_string, "code": req.query["code"]}))
        url = f"http://u:{urllib.parse.quote('pw-Tz5qLm8Rw2', safe='')}@127.0.0.1:{api.server.server_address[1]}/api"
        url += f"?api-version=2024-05-01&code={urllib.parse.quote(key, safe='')}"
        proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API_URL": url})
        assert proc.returncode == 3, proc.stderr
        assert api.requests[0].query == {"api-version": "2024-05-01", "code": key}
    assert "/api/orders?api-version=2024-05-01&code=*** answered 500" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout) == {"query": "api-version=2024-05-01&code=***", "code": "***"}
    con = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
    stored = json.dumps([list(row) for row in con.execute("select message from errors")])
    con.close()
    # a connector file whose base_url is a secret configuration key, the same
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "fn.toml").write_text('name = "fn"\nbase_url = "{url}"\n'
                                                     '[config]\nurl = { required = true, secret = true }\n'
                                                     '[operations.orders]\nmethod = "GET"\npath = "/orders"\n')
    (tmp_path / "g.flow").write_text('use fn = fn(url: secret.API_URL, retry: 1)\nfor each n in [1]\n'
                                     '  call fn.orders()\nend\n')
    with FakeApi() as api:
        api.route("GET", "/api/orders", lambda req: (500, {}, {"error": "down"}))
        url = f"http://127.0.0.1:{api.server.server_address[1]}/api?code={urllib.parse.quote(key, safe='')}"
        filed = run_cli("run", "g.flow", "--log-format", "text", cwd=tmp_path, env={"API_URL": url})
    assert filed.returncode == 3 and "/api/orders?code=*** answered 500" in filed.stderr, filed.stderr
    for text in (proc.stdout, proc.stderr, stored, filed.stderr):
        for form in (key, urllib.parse.quote(key, safe=""), "pw-Tz5qLm8Rw2", key[:12], key[-12:]):
            assert form not in text, (form, text)


def test_a_credential_header_read_from_the_environment_is_masked(tmp_path: Path) -> None:
    """A connection's credential header built from env.TOKEN rather than secret.TOKEN (headers:
    {"Authorization": "Token " + env.TOKEN}, as many flows copied from an API's docs write it) was
    masked nowhere: an API echoing it showed the token in the record's error and in an emitted
    record. The values of the headers that carry a credential (Authorization, X-Api-Key, Cookie, ...;
    8 characters or more) are masked as secrets are, and so is the token after its scheme; other
    headers are shown as they were."""
    token = "Zr4mQ8kP2xW7nB5vTq9L"
    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: env.API, headers: {"Authorization": "Token " + env.TOKEN, '
        '"X-Api-Key": env.KEY, "X-Mode": "basic-mode-x"}, retry: 1)\n'
        'for each n in [1]\n  call api.get("/fail")\nend\ncall api.get("/echo") as seen\nemit seen\n')
    with FakeApi() as api:
        api.route("GET", "/fail", lambda req: (401, {}, {"error": "bad token " + req.headers["authorization"][6:]}))
        api.route("GET", "/echo", lambda req: (200, {}, {"auth": req.headers["authorization"],
                                                         "key": req.headers["x-api-key"],
                                                         "mode": req.headers["x-mode"]}))
        proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path,
                       env={"API": api.url, "TOKEN": token, "KEY": "key-" + token[::-1]})
    assert proc.returncode == 3, proc.stderr
    assert 'answered 401 Unauthorized: {"error":"bad token ***"}' in proc.stderr
    assert json.loads(proc.stdout) == {"auth": "***", "key": "***", "mode": "basic-mode-x"}
    assert token not in proc.stdout + proc.stderr and token[::-1] not in proc.stdout + proc.stderr
