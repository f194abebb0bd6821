"""Masking rules: the cost of a long secret, short secrets, secrets inside a URL."""

from __future__ import annotations

import base64
import json
import random
import string
import tracemalloc
import urllib.parse
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import cli
from fakeapi import FakeApi
from flowlang.runtime.masking import Masker


def test_a_400_kb_secret_is_learned_in_proportion_and_masked_in_every_form() -> None:
    """A 400 KB secret (a key bundle) took 8 s and 826 MB of memory to learn: every 5-character window
    of its 12 forms (4.7 million) was indexed with a list and a tuple each, and its forms compiled into
    one regular expression of 10 MB. Long forms are now looked for as text and a long secret's pieces
    from 32 characters (one window in 28 indexed): about 70 MB."""
    rng = random.Random(7)
    body = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(400_000))
    secret = json.dumps({"private_key": "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n"})
    masker = Masker()
    tracemalloc.start()
    try:
        masker.add(secret)
        assert masker.mask("nothing here") == "nothing here"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 250_000_000, f"{peak:,} bytes"
    raw = secret.encode()
    for form in (secret, json.dumps(secret)[1:-1], raw.hex(), base64.b64encode(raw).decode(),
                 base64.urlsafe_b64encode(raw).decode()):
        assert masker.mask(f"echo {form} end") == "echo *** end"
    for k in (1, 2):  # base64 of the secret inside a longer encoded text, at each alignment
        encoded = base64.b64encode(b"x" * k + raw + b"y").decode()
        assert len(masker.mask(encoded)) < 20
    piece = body[200_000:200_032]  # a piece of 32 characters (LONG_FRAGMENT)
    assert masker.mask(f"near '{piece}': syntax error") == "near '***': syntax error"
    assert masker.mask(f"line 1 {base64.b64encode(raw).decode()[1000:1076]}") == "line 1 ***"


def test_a_short_secret_is_masked_as_a_value_not_as_a_word_of_every_message(tmp_path: Path) -> None:
    """A secret 'error' made each message read '***: cannot add null and number', 'run' the summary
    'w: *** failed', 'flow' the file 'w.***:3:14': a short secret was masked inside every text, so the
    messages could not be read and told the word anyway. A secret shorter than 8 characters is masked
    where a value is exactly it, and as a whole JSON string value in a text (an API echoing it)."""
    with FakeApi() as api:
        api.route("POST", "/login", lambda req: (422, {}, {"password": req.body["password"], "error": "refused"}))
        (tmp_path / "w.flow").write_text(
            f'use api = http(base_url: "{api.url}", retry: 1)\n'
            "let x = {a: 1}\n"
            "for each n in [1]\n"
            '  call api.post("/login", body: {password: secret.P}) as r\n'
            "end\n"
            'emit {p: secret.P, echo: "error", t: "run {secret.P}"}\n'
            "emit {v: x.b + 1}\n")
        result = cli("run", "w.flow", "--log-format", "text", cwd=tmp_path, env={"P": "error"})
    assert result.status == 1, result.stderr
    assert result.stdout == '{"p":"***","echo":"***","t":"run ***"}\n'
    assert "w.flow:7:14: error: cannot add null and number" in result.stderr
    assert "w: run failed in " in result.stderr
    assert '{"password":"***","error":"refused"}' in result.stderr  # the API's echo, its key kept
    listed = cli("errors", "w.flow", "--json", cwd=tmp_path)
    assert '\\"password\\":\\"***\\"' in listed.stdout and '"error"' not in listed.stdout
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    assert b'"password":"error"' not in stored and b'\\"password\\":\\"error\\"' not in stored


def test_a_short_bearer_token_echoed_in_its_header_is_masked(tmp_path: Path) -> None:
    """bearer(secret.T) of a token shorter than 8 characters: an API echoing the header it got showed
    '"Authorization": "Bearer pw1"' in the record's error, the log and the store, since a short secret is
    masked only as a whole value and the header's value holds the scheme too (basic()'s was masked)."""
    with FakeApi() as api:
        api.route("GET", "/me", lambda req: (401, {}, {"got": req.headers.get("authorization"), "error": "no"}))
        (tmp_path / "w.flow").write_text(
            f'use api = http(base_url: "{api.url}", auth: bearer(secret.T), retry: 1)\n'
            "for each n in [1]\n"
            '  call api.get("/me") as r\n'
            "end\n")
        result = cli("run", "w.flow", "--log-format", "text", cwd=tmp_path, env={"T": "pw1"})
    assert result.status in (1, 3), result.stderr
    assert "Bearer pw1" not in result.stderr and '"got":"***"' in result.stderr, result.stderr
    listed = cli("errors", "w.flow", "--json", cwd=tmp_path).stdout
    assert "pw1" not in listed
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    assert b"Bearer pw1" not in stored


def test_a_short_secret_is_not_looked_for_inside_a_text() -> None:
    masker = Masker()
    masker.add("admin")
    masker.add("12")
    assert masker.mask("admin") == "***" and masker.mask("12") == "12"  # one of 1 or 2 characters: not looked for
    assert masker.mask("user admin: did you mean 'admin'?") == "user admin: did you mean '***'?"
    assert masker.mask('{"admin": "admin", "k": "x admin"}') == '{"admin": "***", "k": "x admin"}'
    assert masker.mask("GET http://h/x?token=admin&v=2 failed, token=administrator") == \
        "GET http://h/x?token=***&v=2 failed, token=administrator"  # a whole value of a query
    assert masker.mask("cannot reach postgresql://bob:admin@db/x (admin@db)") == \
        "cannot reach postgresql://bob:***@db/x (admin@db)"
    assert masker.mask("HTTP 401\r\nX-Api-Key: admin\r\nadmin\r\nthe admin is 12 or 123") == \
        "HTTP 401\r\nX-Api-Key: ***\r\n***\r\nthe admin is 12 or 123"  # a header's value, a line
    assert masker.mask('{"detail": "{\\"password\\": \\"admin\\"}"}') == '{"detail": "{\\"password\\": \\"***\\"}"}'
    assert masker.mask_value({"role": "admin", "list": ["admin", "administrator", "12"]}) == {
        "role": "***", "list": ["***", "administrator", "12"]}
    masker.add("admin-Rk3v9Wm2")  # 8 characters or more: anywhere, as before
    assert masker.mask("user admin-Rk3v9Wm2x") == "user ***x"


@settings(max_examples=300, deadline=None)
@given(secret=st.text(min_size=3, max_size=7), before=st.text(max_size=20), after=st.text(max_size=20))
def test_a_short_secret_inside_a_text_is_not_masked(secret: str, before: str, after: str) -> None:
    """Where it is no whole value (no quote, `=`, `@`, `:` or line around it), a short secret is a
    word of the text: shown as it is."""
    masker = Masker()
    masker.add(secret)
    text = before + secret + after
    raw = secret.encode("utf-8", "surrogatepass")
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(), raw.hex(), raw.hex().upper()}
    if text != secret and not any(c in text for c in "\"'=@:\n\r") and text.rstrip("=") not in encoded | {
            f.rstrip("=") for f in encoded}:
        assert masker.mask(text) == text


SHORT = st.text(st.characters(blacklist_characters="*", blacklist_categories=("Cs",)), min_size=3, max_size=7)


@settings(max_examples=300, deadline=None)
@given(secret=SHORT)
def test_a_short_secret_is_masked_as_a_whole_value_in_every_encoding(secret: str) -> None:
    """What tests/test_security.py asks of a secret of 8 characters or more anywhere in a text, a shorter
    one gets where it is a whole value: JSON (escaped as each encoder does, and JSON inside JSON), as
    Python quotes it in a message, a query's or a form's value and a URL's password (percent-encoded),
    a header's value, a line; its base64 and hex as a JSON value."""
    masker = Masker()
    masker.add(secret)
    raw = secret.encode()
    q = urllib.parse.quote(secret, safe="")
    shown = {json.dumps({"k": secret}): '{"k": "***"}', json.dumps([secret], ensure_ascii=False): '["***"]',
             json.dumps({"d": json.dumps({"k": secret})}): json.dumps({"d": '{"k": "***"}'}),
             repr({"k": secret}): "{'k': " + hidden(repr(secret)) + "}",
             f"KeyError: {KeyError(secret)}": "KeyError: " + hidden(repr(secret)),
             f"bad {secret!a}": "bad " + hidden(ascii(secret)), f"bytes {raw!r}": "bytes b" + hidden(repr(raw)[1:]),
             json.dumps({"m": f"bad {secret!r}"}): json.dumps({"m": "bad " + hidden(repr(secret))}),
             f"GET /x?k={q}&v=2": "GET /x?k=***&v=2", f"k={urllib.parse.quote_plus(secret)}": "k=***",
             f"at https://bob:{q}@h/x": "at https://bob:***@h/x", f"X-K: {secret}\n-": "X-K: ***\n-",
             json.dumps({"b": base64.b64encode(raw).decode(), "h": raw.hex()}): '{"b": "***", "h": "***"}'}
    if "\n" not in secret and "\r" not in secret:
        shown[f"a\n{secret}\nb"] = "a\n***\nb"
    for text, masked in shown.items():
        assert masker.mask(text) == masked, (text, masker.mask(text))
    assert masker.mask_value([secret, {"k": secret}]) == ["***", {"k": "***"}]


def hidden(quoted: str) -> str:
    """A text Python quoted ('...' or "...") with what is inside as ***."""
    return quoted[0] + "***" + quoted[-1]


def test_a_url_made_with_a_secret_is_shown_with_only_the_secret_masked(tmp_path: Path) -> None:
    """"https://api.example.com/v1/items?api_key={secret.K}&page=2" was shown as '***' whole in emitted
    records, logs, messages and the error store, so nobody could tell which URL it was. A text made by
    joining a secret with plain text (interpolation, `+`) is shown with the secret's part as ***, the
    rest as it is; a short secret's part too (it is masked by where it came from, not looked for)."""
    (tmp_path / "f.flow").write_text(
        'let u = "https://api.example.com/v1/items?api_key={secret.K}&page=2"\n'
        'log "calling {u}"\n'
        'emit {u: u, auth: "https://bob:" + secret.S + "@h.example.com/x", up: upper(secret.K) + "/x"}\n'
        "for each n in [1]\n"
        '  fail "cannot reach {u}"\n'
        "end\n")
    secret = 'Rk3v9"Wm2\\Lp8é'
    result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"K": secret, "S": "pw"})
    assert result.status == 3, result.stderr
    assert json.loads(result.stdout) == {"u": "https://api.example.com/v1/items?api_key=***&page=2",
                                         "auth": "https://bob:***@h.example.com/x", "up": "***/x"}
    assert "calling https://api.example.com/v1/items?api_key=***&page=2" in result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    assert json.loads(listed.stdout.splitlines()[0])["message"].endswith(
        "cannot reach https://api.example.com/v1/items?api_key=***&page=2")
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        assert secret not in text and json.dumps(secret)[1:-1] not in text and ":pw@" not in text


def test_a_list_or_object_holding_a_secret_interpolated_reaches_the_connector_with_the_secret(
        tmp_path: Path) -> None:
    """`let l = [secret.K]` then "x{l}y" was the plain text x["***"]y: the list's JSON was written with
    the secret masked before the text reached the connector, which got *** instead of the key. Such a
    text is a secret (LANGUAGE.md 6): the connector gets x["the key"]y, and it is shown as x["***"]y."""
    secret = "Rk3v9Wm2Lp8"
    with FakeApi() as api:
        api.route("POST", r"^/hook$", lambda req: (200, {}, {"ok": True}))
        (tmp_path / "f.flow").write_text(
            f'use api = http(base_url: "{api.url}")\nlet l = [secret.K]\nlet o = {{k: secret.K, n: 1}}\n'
            'send {text: "x{l}y", q: "{o}"} to api.post("/hook")\nemit "x{l}y {o}"\nlog "x{l}y"\n')
        result = cli("run", "f.flow", cwd=tmp_path, env={"K": secret})
        [sent] = [r.body for r in api.requests]
    assert result.status == 0, result.stderr
    assert sent == {"text": f'x["{secret}"]y', "q": f'{{"k":"{secret}","n":1}}'}
    assert json.loads(result.stdout) == 'x["***"]y {"k":"***","n":1}'
    assert 'x[\\"***\\"]y' in result.stderr and secret not in result.stdout + result.stderr
