"""Webhooks against a running `flowlang serve` (a real process on 127.0.0.1): every verify preset with
signatures computed as its provider documents them (valid, wrong, expired timestamp, rotated secret),
duplicates, size limit, unknown routes; what the flow received is counted at the receiving server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conftest import cli
from fakeapi import FakeApi
from serving import ServeProcess, wait_for

# canary secrets: long, with quotes, backslashes and non-ASCII
CANARY = 'q"uo\'te\\back\\slash-ø-日本-' + "s3cr3t" * 90


def secret(name: str) -> str:
    return f"{name}-{CANARY}"


NEW = {p: secret(f"new-{p}") for p in ("github", "shopify", "stripe", "slack", "hmac", "token")}
OLD = {p: secret(f"old-{p}") for p in NEW}
# a token travels as a header value, which HTTP keeps to Latin-1: quotes and backslashes, no other script
ASCII_CANARY = 'q"uo\'te\\back\\slash-' + "s3cr3t" * 90
NEW["token"], OLD["token"] = f"new-token-{ASCII_CANARY}", f"old-token-{ASCII_CANARY}"
STANDARD_NEW = "whsec_" + base64.b64encode(b"standard-new-key-" + CANARY.encode()).decode()
STANDARD_OLD = "whsec_" + base64.b64encode(b"standard-old-key-" + CANARY.encode()).decode()
BASIC_USER, BASIC_PASSWORD = "hooks", secret("basic-password")

SEND = "send {preset: \"%s\", n: input.n, kind: job.trigger.kind, id: job.trigger.id, headers: job.trigger.headers} " \
       "to api.post(\"/got\")\n"


def flow(preset: str, verify: str) -> str:
    return (f'flow "{preset} hook"\ntrigger webhook(verify: {verify})\nuse api = http(base_url: env.API)\n'
            + SEND % preset)


FLOWS = {
    "github": flow("github", "[github(secret.NEW_GITHUB), github(secret.OLD_GITHUB)]"),
    "shopify": flow("shopify", "[shopify(secret.NEW_SHOPIFY), shopify(secret.OLD_SHOPIFY)]"),
    "stripe": flow("stripe", "[stripe(secret.NEW_STRIPE), stripe(secret.OLD_STRIPE, tolerance: 300)]"),
    "slack": flow("slack", "[slack(secret.NEW_SLACK), slack(secret.OLD_SLACK)]"),
    "standard": flow("standard", "[standard(secret.NEW_STANDARD), standard(secret.OLD_STANDARD)]"),
    "hmac": flow("hmac", '[hmac(secret.NEW_HMAC, header: "X-Sig", algorithm: "sha512", encoding: "base64", '
                 'prefix: "sha512=", id_header: "X-Id"), hmac(secret.OLD_HMAC, header: "X-Sig", '
                 'algorithm: "sha512", encoding: "base64", prefix: "sha512=", id_header: "X-Id")]'),
    "token": flow("token", '[token(secret.NEW_TOKEN, header: "X-Token"), token(secret.OLD_TOKEN, header: "X-Token")]'),
    "basic": flow("basic", "basic(env.BASIC_USER, secret.BASIC_PASSWORD)"),
    "small": 'trigger webhook(verify: token(secret.NEW_TOKEN, header: "X-Token"), max_body: "1KB")\nemit input\n',
    "plain": "emit 1\n",
}


def env_for(api: FakeApi) -> dict[str, str]:
    env = {"API": api.url, "BASIC_USER": BASIC_USER, "BASIC_PASSWORD": BASIC_PASSWORD,
           "NEW_STANDARD": STANDARD_NEW, "OLD_STANDARD": STANDARD_OLD}
    for p in NEW:
        env[f"NEW_{p.upper()}"] = NEW[p]
        env[f"OLD_{p.upper()}"] = OLD[p]
    return env


def mac(key: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, content, getattr(hashlib, algorithm)).digest()


def standard_key(whsec: str) -> bytes:
    return base64.b64decode(whsec.removeprefix("whsec_"))


# ---- how each provider signs: (body, when, key index) -> headers ---------------------------------
Signer = Callable[[bytes, int, str, str], dict[str, str]]


def sign_github(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + mac(key.encode(), body).hex(), "X-GitHub-Delivery": delivery,
            "X-GitHub-Event": "push"}


def sign_shopify(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(mac(key.encode(), body)).decode(),
            "X-Shopify-Webhook-Id": delivery, "X-Shopify-Topic": "orders/create"}


def sign_stripe(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    signature = mac(key.encode(), f"{when}.".encode() + body).hex()
    return {"Stripe-Signature": f"t={when},v1={signature},v0=ignored"}


def sign_slack(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(when),
            "X-Slack-Signature": "v0=" + mac(key.encode(), f"v0:{when}:".encode() + body).hex()}


def sign_standard(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    signature = base64.b64encode(mac(standard_key(key), f"{delivery}.{when}.".encode() + body)).decode()
    return {"webhook-id": delivery, "webhook-timestamp": str(when),
            "webhook-signature": f"v1,{base64.b64encode(b'other').decode()} v1,{signature}"}


def sign_hmac(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    return {"X-Sig": "sha512=" + base64.b64encode(mac(key.encode(), body, "sha512")).decode(), "X-Id": delivery}


def sign_token(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    return {"X-Token": key}


def sign_basic(body: bytes, when: int, key: str, delivery: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{BASIC_USER}:{key}".encode()).decode()}


SIGNERS: dict[str, tuple[Signer, str, str, bool]] = {
    # preset: (signer, current secret, old secret, signs a timestamp)
    "github": (sign_github, NEW["github"], OLD["github"], False),
    "shopify": (sign_shopify, NEW["shopify"], OLD["shopify"], False),
    "stripe": (sign_stripe, NEW["stripe"], OLD["stripe"], True),
    "slack": (sign_slack, NEW["slack"], OLD["slack"], True),
    "standard": (sign_standard, STANDARD_NEW, STANDARD_OLD, True),
    "hmac": (sign_hmac, NEW["hmac"], OLD["hmac"], False),
    "token": (sign_token, NEW["token"], OLD["token"], False),
    "basic": (sign_basic, BASIC_PASSWORD, "", False),
}
HAS_ID = {"github", "shopify", "stripe", "slack", "standard", "hmac"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, FakeApi]]:
    folder = tmp_path_factory.mktemp("hooks")
    for name, text in FLOWS.items():
        (folder / f"{name}.flow").write_text(text)
    with FakeApi() as api, ServeProcess(folder, env=env_for(api)) as serve:
        yield serve, api
        assert serve.terminate() == 0


def payload(preset: str, n: int, delivery: str) -> bytes:
    body: dict[str, Any] = {"n": n, "text": "ø"}
    if preset == "stripe":
        body["id"] = delivery
    if preset == "slack":
        body["event_id"] = delivery
    return json.dumps(body).encode()


def received(api: FakeApi, preset: str) -> list[int]:
    """The runs of a preset's deliveries (n from 9000 on: the basic scheme's own test, whatever the order)."""
    return sorted(r.body["n"] for r in api.requests if r.path == "/got" and r.body["preset"] == preset
                  and r.body["n"] < 9000)


@pytest.mark.parametrize("preset", list(SIGNERS))
def test_each_preset_accepts_its_signature_and_refuses_the_rest(served: tuple[ServeProcess, FakeApi],
                                                                preset: str) -> None:
    serve, api = served
    sign, current, old, stamped = SIGNERS[preset]
    now = int(time.time())

    def post(n: int, key: str, when: int = now, delivery: str | None = None) -> int:
        delivery = delivery or str(uuid.uuid4())
        body = payload(preset, n, delivery)
        status, _, _ = serve.post(f"/hooks/{preset}", body, sign(body, when, key, delivery))
        return status

    assert post(1, current) == 202
    assert post(2, "wrong-" + current) == 401
    body = payload(preset, 3, "unsigned")
    assert serve.post(f"/hooks/{preset}", body)[0] == 401
    if old:
        assert post(4, old) == 202  # the rotated-out secret still works while it is listed
    if stamped:
        assert post(5, current, when=now - 1000) == 401  # outside the 300 s tolerance
        assert post(6, current, when=now + 1000) == 401
    # a signature over other bytes than the body sent is refused (checked on the raw bytes)
    delivery = str(uuid.uuid4())
    signed = payload(preset, 7, delivery)
    sent = signed.replace(b'"n": 7', b'"n":  7')
    headers = sign(signed, now, current, delivery)
    assert serve.post(f"/hooks/{preset}", sent, headers)[0] == (202 if preset in ("token", "basic") else 401)
    expected = [1, 4] if old else [1]
    if preset in ("token", "basic"):
        expected.append(7)
    wait_for(lambda: received(api, preset) == expected, what=f"{preset} runs {expected}")
    time.sleep(0.3)
    assert received(api, preset) == expected


def test_a_body_that_is_not_the_json_its_content_type_says_is_said(served: tuple[ServeProcess, FakeApi]) -> None:
    """A token-verified delivery of '{"n": 1,}' as application/json ran with the text as input and failed
    'cannot read field 'n' of string', in the log and the inbox, and nothing said the body was not JSON."""
    serve, _ = served
    status, _, answer = serve.post("/hooks/token", b'{"n": 1,}', {"X-Token": NEW["token"]})
    assert status == 202
    said = ("its body is not JSON, though its Content-Type says application/json (not valid JSON: Expecting "
            "property name enclosed in double quotes at line 1 column 9), so the run's input is the body as text")
    wait_for(lambda: f"token: delivery {answer['delivery']}: {said}" in serve.logs(), what="the warning")

    def row() -> dict[str, Any]:
        listing = cli("inbox", str(serve.folder), "--flow", "token", "--json").stdout.splitlines()
        return next(r for r in map(json.loads, listing) if r["id"] == answer["delivery"])

    wait_for(lambda: row()["status"] == "failed", what="the run's end")
    message = row()["message"]  # the field's message shows the text's start since 83c8866
    assert "cannot read field 'n' of string" in message and message.endswith(f" ({said})"), message


def test_the_basic_scheme_name_is_case_insensitive(served: tuple[ServeProcess, FakeApi]) -> None:
    """RFC 9110 11.1: 'basic dTpw' (a client's, or a relay's, spelling) was a 401 'wrong user or password'."""
    serve, api = served
    credentials = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    for n, scheme in ((9001, "basic"), (9002, "BASIC"), (9003, "Basic ")):
        body = payload("basic", n, "")
        assert serve.post("/hooks/basic", body, {"Authorization": f"{scheme} {credentials}"})[0] == 202, scheme
    for wrong in (f"Bearer {credentials}", f"Basic{credentials}", credentials, f"Basic {credentials}x"):
        assert serve.post("/hooks/basic", payload("basic", 9009, ""), {"Authorization": wrong})[0] == 401, wrong
    def runs() -> list[int]:
        return sorted(r.body["n"] for r in api.requests if r.path == "/got" and r.body["preset"] == "basic"
                      and r.body["n"] > 9000)

    wait_for(lambda: runs() == [9001, 9002, 9003], what="the three runs")


@pytest.mark.parametrize("preset", sorted(HAS_ID))
def test_a_delivery_id_seen_before_is_a_duplicate(served: tuple[ServeProcess, FakeApi], preset: str) -> None:
    serve, api = served
    sign, current, _, _ = SIGNERS[preset]
    delivery = str(uuid.uuid4())
    body = payload(preset, 100, delivery)
    headers = sign(body, int(time.time()), current, delivery)
    first = serve.post(f"/hooks/{preset}", body, headers)
    again = serve.post(f"/hooks/{preset}", body, headers)
    assert first[0] == 202 and isinstance(first[2]["delivery"], int)
    assert again[0] == 200 and again[2]["duplicate"] is True and again[2]["delivery"] == first[2]["delivery"]
    wait_for(lambda: 100 in received(api, preset), what="the first delivery's run")
    time.sleep(0.5)
    assert received(api, preset).count(100) == 1
    got = next(r.body for r in api.requests if r.path == "/got" and r.body["preset"] == preset and r.body["n"] == 100)
    assert got["kind"] == "webhook" and got["id"] == delivery


def test_stored_headers_are_masked_and_no_secret_is_printed(served: tuple[ServeProcess, FakeApi]) -> None:
    serve, api = served
    # its own signed deliveries (under xdist the module's other tests may run in another process)
    for preset, (sign, current, _, _) in SIGNERS.items():
        delivery = str(uuid.uuid4())
        body = payload(preset, 500, delivery)
        assert serve.post(f"/hooks/{preset}", body, sign(body, int(time.time()), current, delivery))[0] == 202
    wait_for(lambda: all(500 in received(api, preset) for preset in SIGNERS), what="a run of each preset")
    for r in api.requests:
        if r.path != "/got":
            continue
        text = json.dumps(r.body)
        assert "s3cr3t" not in text and BASIC_PASSWORD not in text
        headers = r.body["headers"]
        for name in ("x-hub-signature-256", "x-shopify-hmac-sha256", "stripe-signature", "x-slack-signature",
                     "webhook-signature", "x-sig", "x-token", "authorization"):
            if name in headers:
                assert headers[name] == "***", name
    assert "s3cr3t" not in serve.logs()


def test_slack_url_verification_is_answered_at_once(served: tuple[ServeProcess, FakeApi]) -> None:
    serve, _api = served
    body = json.dumps({"type": "url_verification", "challenge": "ch-123"}).encode()
    status, _, answer = serve.post("/hooks/slack", body, sign_slack(body, int(time.time()), NEW["slack"], ""))
    assert (status, answer) == (200, {"challenge": "ch-123"})
    unsigned = serve.post("/hooks/slack", body)
    assert unsigned[0] == 401


def test_limits_and_routes(served: tuple[ServeProcess, FakeApi]) -> None:
    serve, _ = served
    token = {"X-Token": NEW["token"]}
    assert serve.post("/hooks/small", json.dumps({"x": "a" * 2000}).encode(), token)[0] == 413
    assert serve.post("/hooks/small", json.dumps({"x": "a" * 100}).encode(), token)[0] == 202
    assert serve.post("/hooks/nothing", b"{}")[0] == 404
    assert serve.post("/hooks/plain", b"{}")[0] == 404  # a flow without `trigger webhook`
    # a route that is no file stem of the folder says nothing of the disk: '/hooks/..%2Fprobe' said
    # '(../probe.flow was added to the folder after serve started ...)' when a probe.flow stood above the folder
    (serve.folder.parent / "probe.flow").write_text("emit 1\n")
    for route in ("..%2Fprobe", quote(str(serve.folder.parent / "probe"), safe=""), "..%5Cprobe", "%2E%2E"):
        status, _, body = serve.post(f"/hooks/{route}", b"{}")
        assert status == 404 and "(" not in body["error"], (route, body)
    status, _, health = serve.request("GET", "/healthz")
    assert status == 200 and health["ok"] is True
    status, _, metrics = serve.request("GET", "/metrics")
    assert status == 200 and 'flowlang_deliveries_total{answer="413",flow="small"} 1.0' in metrics
    assert "flowlang_inbox_depth" in metrics and "flowlang_runs_total" in metrics


def test_serve_refuses_to_start_while_a_flow_has_check_errors(tmp_path: Path) -> None:
    from conftest import run_cli

    (tmp_path / "a.flow").write_text('trigger schedule("* * *")\nemit 1\n')
    (tmp_path / "b.flow").write_text('trigger webhook(verify: gitlab(secret.X))\nemit 1\n')
    (tmp_path / "c.flow").write_text("emit nope\n")
    done = run_cli("serve", str(tmp_path), "--port", "0", timeout=60)
    assert done.returncode == 2
    for where in ("a.flow:1:18", "b.flow:1:25", "c.flow:1:6"):
        assert where in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_served_flow_whose_param_has_no_default(tmp_path: Path) -> None:
    """serve runs a flow with no params: `param since` without a default started, then failed every delivery
    ('missing param since: give it with --param since=VALUE', an option serve does not have). It is said at
    start, at the param, with the other problems; a flow without triggers is not served and may have one;
    `flowlang run --param` still runs the served one."""
    from conftest import run_cli

    (tmp_path / "hook.flow").write_text('trigger webhook(verify: token("tttttttttttttttttttt", header: "X-T"))\n'
                                        'param since\nparam n = 3\nemit {since: since, n: n}\n')
    (tmp_path / "tick.flow").write_text('trigger schedule("0 6 * * *")\nparam region\nemit region\n')
    (tmp_path / "manual.flow").write_text("param since\nemit since\n")
    done = run_cli("serve", str(tmp_path), "--port", "0", "--log-format", "text", timeout=60)
    assert done.returncode == 2, done.stderr
    assert ("hook.flow:2:1: error: param since has no default: serve runs this flow (its deliveries and ticks) "
            "with no params, so each needs one") in done.stderr
    assert "tick.flow:2:1: error: param region has no default" in done.stderr
    assert "manual.flow" not in done.stderr and "param n " not in done.stderr
    ran = run_cli("run", str(tmp_path / "hook.flow"), "--param", "since=2026-01-01")
    assert ran.returncode == 0 and json.loads(ran.stdout) == {"since": "2026-01-01", "n": 3}
    # check passed the folder serve refuses: it says it, as a warning (a run with --param is fine)
    checked = run_cli("check", str(tmp_path), "--log-format", "text")
    assert checked.returncode == 0, checked.stderr
    assert "hook.flow:2:1: warning: param since has no default: serve runs this flow" in checked.stderr
    assert "tick.flow:2:1: warning: param region" in checked.stderr and "manual.flow:1:1" not in checked.stderr


def test_serve_warns_of_a_webhook_flow_that_overwrites_its_file(tmp_path: Path) -> None:
    """A webhook flow sending to `file(path: "orders.jsonl")` (overwrite mode, the default: once per run)
    kept only the last delivery's records, each run replacing the file, without a word. serve warns at
    start, at the `use` line; an explicit mode, a file only read, and a scheduled flow are left alone."""
    hook = 'trigger webhook(verify: token("tttttttttttttttttttt", header: "X-T"))\n'
    (tmp_path / "over.flow").write_text(hook + 'use out = file(path: "out/orders.jsonl")\nfor each o in input.items\n'
                                        '  send o to out\nend\n')
    (tmp_path / "kept.flow").write_text(hook + 'use out = file(path: "out/kept.jsonl", mode: "append")\n'
                                        'send input to out\n')
    (tmp_path / "read.flow").write_text(hook + 'use codes = file(path: "codes.csv")\ncall codes.read() as rows\n'
                                        'emit rows\n')
    (tmp_path / "daily.flow").write_text('trigger schedule("0 6 * * *")\nuse out = file(path: "out/daily.csv")\n'
                                         'send {a: 1} to out\n')
    # a timeout: that waits for nothing (no respond: "outputs") is said at start too, as check says it
    (tmp_path / "wait.flow").write_text(hook.replace("))", "), timeout: 5)") + "emit input\n")
    with ServeProcess(tmp_path, "--log-format", "text") as serve:
        assert serve.terminate() == 0
    logs = serve.logs()
    assert ("warning: " + str(tmp_path / "wait.flow") + ":1:71: timeout: is how long a delivery waits for the "
            "run's outputs, and this webhook answers at once (202)") in logs, logs
    assert ("warning: " + str(tmp_path / "over.flow") + ":2:1: the file connection 'out' is in overwrite mode "
            "(the default): each delivery's run replaces what the run before it wrote; give it mode: \"append\"") \
        in logs, logs
    assert logs.count("overwrite mode") == 1
    # flowlang check shows it too, as a warning of over.flow alone (exit 0)
    from conftest import run_cli

    checked = run_cli("check", str(tmp_path), "--log-format", "text")
    assert checked.returncode == 0, checked.stderr
    assert "over.flow:2:1: warning: the file connection 'out' is in overwrite mode" in checked.stderr
    assert checked.stderr.count("overwrite mode") == 1


def test_serve_refuses_an_empty_verify_secret(tmp_path: Path) -> None:
    """`GH_SECRET=` (exported, empty) or `GH_SECRET = ""` in --secrets: serve started and checked GitHub's
    signature with an empty key, which anybody can compute, so any forged delivery was accepted (202)."""
    from conftest import run_cli

    (tmp_path / "gh.flow").write_text("trigger webhook(verify: github(secret.GH_SECRET))\nemit 1\n")
    (tmp_path / "secrets.toml").write_text('GH_SECRET = ""\n')
    for args, env in (((), {"GH_SECRET": ""}), (("--secrets", str(tmp_path / "secrets.toml")), {})):
        done = run_cli("serve", str(tmp_path), "--port", "0", "--log-format", "text", *args, env=env, timeout=20)
        assert done.returncode == 2, done.stderr
        assert ("gh.flow: the webhook's secret.GH_SECRET is empty: a signature or token checked against an empty "
                "secret proves nothing") in done.stderr


def test_serve_refuses_a_standard_webhooks_secret_that_is_no_base64(tmp_path: Path) -> None:
    """A Standard Webhooks secret copied short ('whsec_' and text that is no base64) was taken whole as the
    key: serve started, and every delivery was a 401 'wrong signature'. It is refused at start."""
    from conftest import run_cli

    (tmp_path / "std.flow").write_text("trigger webhook(verify: standard(env.STD_SECRET))\nemit 1\n")
    done = run_cli("serve", str(tmp_path), "--port", "0", "--log-format", "text",
                   env={"STD_SECRET": STANDARD_NEW[:-3] + "%"}, timeout=20)
    assert done.returncode == 2, done.stderr
    assert ("std.flow: the standard() secret env.STD_SECRET starts with whsec_, but what follows is not base64"
            in done.stderr), done.stderr
    assert STANDARD_NEW[6:30] not in done.stderr


def test_serve_says_which_secret_is_missing(tmp_path: Path) -> None:
    from conftest import run_cli

    (tmp_path / "a.flow").write_text("trigger webhook(verify: github(secret.NOT_SET_ANYWHERE))\nemit 1\n")
    done = run_cli("serve", str(tmp_path), "--port", "0", timeout=60)
    assert done.returncode == 2 and "secret.NOT_SET_ANYWHERE is not set" in done.stderr


def test_the_webhooks_example_under_serve(tmp_path: Path) -> None:
    from conftest import copy_example

    folder = copy_example("webhooks", tmp_path)
    env = {"SHOPIFY_WEBHOOK_SECRET": NEW["shopify"], "SHOPIFY_WEBHOOK_SECRET_OLD": OLD["shopify"]}
    order = {"id": 4711, "line_items": [{"sku": "A-1", "quantity": 2, "price": "9.95"},
                                        {"sku": "B-2", "quantity": "1", "price": "100.10"}]}
    body = json.dumps(order).encode()
    with ServeProcess(folder, env=env) as serve:
        assert serve.post("/hooks/shop_orders", body, sign_shopify(body, 0, NEW["shopify"], "w-1"))[0] == 202
        assert serve.post("/hooks/shop_orders", body, sign_shopify(body, 0, NEW["shopify"], "w-1"))[0] == 200
        again = json.dumps({**order, "id": 4712}).encode()
        assert serve.post("/hooks/shop_orders", again, sign_shopify(again, 0, OLD["shopify"], "w-2"))[0] == 202
        out = folder / "out" / "lines.jsonl"
        wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 4, what="four lines")
        assert "next tick" in serve.logs() and "Europe/Oslo" in serve.logs()
        assert serve.terminate() == 0
    logs = serve.logs().splitlines()  # JSON lines (stderr is no terminal), the SIGTERM line too (docs/cli.md)
    assert [json.loads(line)["message"] for line in logs if "SIGTERM" in line] == [
        "SIGTERM: stopping (running jobs finish; again to stop them too)"]
    assert all(isinstance(json.loads(line), dict) for line in logs)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["order"], r["sku"], r["total"], r["delivery"]) for r in lines] == [
        (4711, "A-1", 19.9, "w-1"), (4711, "B-2", 100.1, "w-1"), (4712, "A-1", 19.9, "w-2"),
        (4712, "B-2", 100.1, "w-2")]


def test_healthz_answers_503_while_the_inbox_cannot_be_written(tmp_path: Path) -> None:
    import sqlite3

    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "hook.flow").write_text('trigger webhook(verify: token(secret.T, header: "X-Token"))\nemit input\n')
    with ServeProcess(folder, env={"T": NEW["token"]}) as serve:
        status, _, health = serve.request("GET", "/healthz")
        assert status == 200 and health["ok"] is True
        inbox = next(folder.rglob("inbox.db"))
        blocker = sqlite3.connect(inbox, isolation_level=None)
        blocker.execute("begin exclusive")  # another process holds the inbox: no write can go through
        try:
            status, _, health = serve.request("GET", "/healthz")
            assert status == 503 and health["ok"] is False
            assert "the inbox cannot be written" in health["error"]
        finally:
            blocker.execute("rollback")
            blocker.close()
        # the writer outlived the requests that gave up on it: health and deliveries come back
        wait_for(lambda: serve.request("GET", "/healthz")[0] == 200, what="healthz to recover")
        assert serve.post("/hooks/hook", b'{"a": 1}', {"X-Token": NEW["token"]})[0] == 202


def test_job_lines_carry_the_flow_and_the_job_with_the_level_of_the_outcome(tmp_path: Path) -> None:
    """OPERATIONS.md 10: every JSON line carries job_id and flow; the summary is info when ok, warning
    when records failed, error when the run failed (serve's job lines too, not only flowlang run's)."""
    folder = tmp_path / "my flows"  # a space: the note's command quotes the path
    folder.mkdir()
    (folder / "hook.flow").write_text('flow "Hook orders"\n'
                                      'trigger webhook(verify: token(secret.T, header: "X-Token"))\n'
                                      'for each o in input.orders\n  if o.bad\n    fail "bad order {o.id}"\n  end\n'
                                      '  emit o\nend\nlet n = 1 / input.zero\n')
    with ServeProcess(folder, env={"T": NEW["token"]}) as serve:
        for body in ({"orders": [{"id": 1}], "zero": 1}, {"orders": [{"id": 2, "bad": True}], "zero": 1},
                     {"orders": [{"id": 3}], "zero": 0}):
            assert serve.post("/hooks/hook", json.dumps(body).encode(), {"X-Token": NEW["token"]})[0] == 202
        wait_for(lambda: serve.logs().count("hook: job ") >= 3, what="three jobs")
        assert serve.terminate() == 0
    jobs = [json.loads(line) for line in serve.logs().splitlines() if "hook: job " in line]
    assert [(j["level"], j["flow"], j["job_id"], j["summary"]["failed"]) for j in jobs] == [
        ("info", "Hook orders", 1, 0), ("warning", "Hook orders", 2, 1), ("error", "Hook orders", 3, 0)]
    assert "Traceback" not in serve.logs()
    # the partial delivery's note in the inbox: it said '1 records failed (flowlang errors hook.flow)', a
    # command that finds no flow where serve was started
    notes = [json.loads(x).get("message") for x in cli("inbox", str(folder), "--json").stdout.splitlines()]
    assert f"1 record failed (flowlang errors '{folder / 'hook.flow'}')" in notes, notes


def test_a_verify_secret_a_sender_copies_into_another_header_is_stored_masked(tmp_path: Path) -> None:
    """The headers kept with a delivery were masked by their names only: a relay that copied the
    signing secret into a header of its own (X-Copy) had it stored whole in inbox.db, and given to
    the run as job.trigger.headers; the run masked it in what it printed, the inbox kept it."""
    import sqlite3

    key = "hook-" + "Wm3pQ9" * 40
    (tmp_path / "gh.flow").write_text('trigger webhook(verify: github(secret.HOOK))\nemit job.trigger.headers\n')
    with ServeProcess(tmp_path, env={"HOOK": key}) as serve:
        body = b'{"n": 1}'
        headers = {**sign_github(body, int(time.time()), key, "d-1"), "X-Copy": key, "X-Quoted": f"k='{key}'"}
        assert serve.post("/hooks/gh", body, headers)[0] == 202
        wait_for(lambda: "gh: job 1" in serve.logs(), what="the delivery's run")
        logs = serve.logs()
    con = sqlite3.connect(tmp_path / ".flowlang" / "inbox.db")
    stored = json.loads(con.execute("select headers from deliveries").fetchone()[0])
    con.close()
    assert stored["x-copy"] == "***" and stored["x-quoted"] == "k='***'" and stored["x-github-delivery"] == "d-1"
    tail = key[-200:]
    for text in (json.dumps(stored), logs):
        assert not [tail[i:i + 12] for i in range(0, 188, 4) if tail[i:i + 12] in text], text


def test_header_bytes_that_are_no_utf8_are_checked_as_sent_and_kept(served: tuple[ServeProcess, FakeApi]) -> None:
    """A header with a byte that is no UTF-8 (b'\\xff', Latin-1 'é'), which aiohttp reads as a lone
    surrogate: in a signature or token header it was a 500 ('Server got itself in trouble'); in a delivery
    id (X-GitHub-Delivery) or any other header of a signed delivery, the inbox's writer thread died
    (SQLite takes no lone surrogate) and serve answered nothing again, not even /healthz. A signature is
    checked on the header's bytes as sent; its text is kept with such bytes as \\xe9; ids that differ in
    them stay two deliveries."""
    serve, api = served
    body = payload("token", 800, "")
    assert serve.post("/hooks/token", body, {"X-Token": NEW["token"] + "\xff"})[:3:2] == (
        401, {"error": "wrong token"})
    assert serve.post("/hooks/basic", body, {"Authorization": "Basic \xff"})[0] == 401
    assert serve.post("/hooks/github", body, {"X-Hub-Signature-256": "sha256=\xe9"})[0] == 401
    now = int(time.time())
    key = standard_key(STANDARD_NEW)
    signed = base64.b64encode(mac(key, f"m\xe9.{now}.".encode("latin-1") + body)).decode()
    assert serve.post("/hooks/standard", body, {"webhook-id": "m\xe9", "webhook-timestamp": str(now),
                                                "webhook-signature": f"v1,{signed}"})[0] == 202
    sent = []
    for n, delivery in ((801, "g\xe9"), (802, "g\xe8"), (801, "g\xe9")):
        b = payload("github", n, delivery)
        headers = {**sign_github(b, now, NEW["github"], delivery), "X-Note": "caf\xe9"}
        sent.append(serve.post("/hooks/github", b, headers))
    assert [s[0] for s in sent] == [202, 202, 200] and sent[2][2]["duplicate"] is True, sent
    wait_for(lambda: {801, 802} <= set(received(api, "github")), what="the two github runs")
    assert 800 in received(api, "standard")
    got = [r.body for r in api.requests if r.path == "/got" and r.body["n"] in (800, 801, 802)]
    assert sorted((g["preset"], g["n"], g["id"]) for g in got) == [
        ("github", 801, "g\\xe9"), ("github", 802, "g\\xe8"), ("standard", 800, "m\\xe9")], got
    assert [g["headers"]["x-note"] for g in got if g["preset"] == "github"] == ["caf\\xe9", "caf\\xe9"]
    assert serve.request("GET", "/healthz")[0] == 200
    assert "Traceback" not in serve.logs() and "Error handling request" not in serve.logs()


@pytest.mark.parametrize("preset", ["github", "stripe", "hmac"])
def test_a_blank_delivery_id_is_no_id(served: tuple[ServeProcess, FakeApi], preset: str) -> None:
    """A delivery whose id was blank (`X-GitHub-Delivery: `, a Stripe event's `"id": ""`, a custom
    id_header of spaces) was a duplicate of the flow's first with a blank id: 200 {"duplicate": true} and
    never run, so every such delivery after the first was lost. A blank id is no id: each one runs."""
    serve, api = served
    sign, current, _, _ = SIGNERS[preset]
    answers = []
    for n, blank in ((900, ""), (901, ""), (902, "  ")):
        body = payload(preset, n, blank)
        answers.append(serve.post(f"/hooks/{preset}", body, sign(body, int(time.time()), current, blank)))
    assert [a[0] for a in answers] == [202, 202, 202], answers
    wait_for(lambda: {900, 901, 902} <= set(received(api, preset)), what=f"the three {preset} runs")
    ids = sorted(r.body["id"] for r in api.requests if r.path == "/got" and r.body["preset"] == preset
                 and r.body["n"] >= 900)
    assert ids == sorted(str(a[2]["delivery"]) for a in answers)  # job.trigger.id: the inbox's id then


def test_a_flow_edited_while_serve_runs_is_taken_when_it_checks(tmp_path: Path) -> None:
    """serve ran the version of a flow it loaded at its start, without a word, after the file was edited
    (a mapping fixed), while `flowlang retry` and `inbox --replay` ran the file as it was. The next job
    runs the new version once it checks; an edit with a check error, or one that changes the triggers,
    is logged once and not taken: the runs go on with the version serve has."""
    flow = tmp_path / "hook.flow"
    head = 'flow "edits"\ntrigger webhook(verify: token(secret.T, header: "X-Token"), respond: "outputs"%s)\n'
    flow.write_text(head % "" + "emit {v: 1}\n")
    hdrs = {"X-Token": NEW["token"]}

    def version() -> Any:
        status, _, body = serve.post("/hooks/hook", b"{}", hdrs)
        assert status == 200, body
        return body["outputs"][0]["v"]

    with ServeProcess(tmp_path, env={"T": NEW["token"]}) as serve:
        assert version() == 1
        flow.write_text(head % "" + "emit {v: 2}\n")
        assert version() == 2
        flow.write_text(head % "" + "emit {v: nope}\n")
        assert version() == 2 and version() == 2  # said once
        flow.write_text(head % "" + "emit {v: 2}\n")  # put back as it runs, then the same mistake again: said again
        assert version() == 2
        flow.write_text(head % "" + "emit {v: nope}\n")
        assert version() == 2
        flow.write_text(head % ", concurrency: 2" + "emit {v: 3}\n")
        assert version() == 2
        flow.write_text("# a line above shifts the trigger\n" + head % "" + "emit {v: 4}\n")
        assert version() == 4
        flow.write_text(head % "" + 'use out = file(path: "o.jsonl", format: "jsonl")\nsend {v: 6} to out\n'
                        "emit {v: 6}\n")
        assert version() == 6
        (tmp_path / "added.flow").write_text(head % "" + "emit {v: 5}\n")  # a file new to serve: 404, saying why
        status, _, body = serve.post("/hooks/added", b"{}", hdrs)
        assert (status, body["error"]) == (404, "no flow with a webhook trigger is called 'added' (added.flow was "
                                           "added to the folder after serve started: serve reads the flows and "
                                           "their triggers at its start; restart it to serve it)"), body
        assert serve.terminate() == 0
    logs = serve.logs()
    assert logs.count("hook: hook.flow was edited: its runs use the new version from this job on") == 3
    assert "hook.flow:3:1: the file connection 'out' is in overwrite mode (the default)" in logs
    assert logs.count("hook.flow:3:10: error: unknown name 'nope'; its runs go on with the version serve has") == 2
    assert "but the new version changes its triggers or its name, which serve set up at its start" in logs
    assert NEW["token"] not in logs


def test_a_gzip_delivery_is_verified_on_the_bytes_as_they_came(tmp_path: Path) -> None:
    """serve checked a gzip delivery's signature on the unzipped body (aiohttp unzipped it as it was read),
    though SERVE.md says the raw bytes: a sender signing what it sends was refused 401, one signing what it
    had before zipping was accepted, and serve unzipped bodies nobody had vouched for (found by a new-user
    trial of serve). The signature is checked on the bytes as sent, then the body is unzipped, at most
    max_body of it; br and zstd, which serve cannot unzip, are a 415."""
    import gzip
    import zlib

    (tmp_path / "gh.flow").write_text('trigger webhook(verify: github(secret.GH_SECRET), respond: "outputs", '
                                      'max_body: "1KB")\nemit input\n')
    key = "gh-secret-for-gzip"
    data = b'{"action": "opened", "n": 1}'
    zipped = gzip.compress(data)

    def post(serve: ServeProcess, body: bytes, signed: bytes, coding: str, delivery: str) -> tuple[int, Any]:
        status, _, answer = serve.post("/hooks/gh", body, {**sign_github(signed, 0, key, delivery),
                                                           "Content-Encoding": coding})
        return status, answer

    with ServeProcess(tmp_path, "--log-format", "text", env={"GH_SECRET": key}) as serve:
        status, answer = post(serve, zipped, zipped, "gzip", "d1")
        assert (status, answer.get("outputs")) == (200, [{"action": "opened", "n": 1}]), answer
        assert post(serve, zipped, data, "gzip", "d2")[0] == 401  # signed before zipping: not the bytes sent
        deflated = zlib.compress(data)
        assert post(serve, deflated, deflated, "deflate", "d3")[1].get("outputs") == [{"action": "opened", "n": 1}]
        two = gzip.compress(b'{"a": ') + gzip.compress(b"2}")  # two gzip members, one body
        assert post(serve, two, two, "gzip", "d4")[1].get("outputs") == [{"a": 2}]
        bomb = gzip.compress(b'{"pad": "' + b"x" * 200_000 + b'"}')  # 200 KB unzipped, under 1KB zipped
        assert len(bomb) < 1000
        assert post(serve, bomb, bomb, "gzip", "d5") == (413, {"error": "the body is larger than max_body "
                                                                        "(1,000 bytes) once unzipped"})
        status, answer = post(serve, zipped, zipped, "br", "d6")
        assert status == 415 and "Content-Encoding: br is not read here" in answer["error"], answer
        status, answer = post(serve, b"not gzip", b"not gzip", "gzip", "d7")
        assert status == 400 and "compressed encoding" in answer["error"], answer
        assert serve.terminate() == 0


def test_the_runs_of_serve_keep_to_a_connections_rate_limit_together(tmp_path: Path) -> None:
    """`rate_limit: "2/3s"` on the API a webhook flow sends each delivery to: each delivery's run opened
    a limiter of its own, so five deliveries sent their five requests within a fraction of a second (the
    API saw 5 in a window that allows 2). The connections of serve's runs to the same API with the same
    credentials and rate share one limiter: no 3 requests in any 3 s, starts spaced."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "paced.flow").write_text(
        'flow "paced"\n'
        'trigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"))\n'
        'use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN), rate_limit: "2/3s")\n'
        'send {n: input.n} to api.post("/events")\n')
    with FakeApi() as api:
        api.route("POST", "/events", lambda req: (201, {}, {"ok": True}))
        env = {"HOOK_TOKEN": "hook-token-123456", "API_TOKEN": "api-token-123456", "API": api.url}
        with ServeProcess(folder, env=env) as serve:
            for n in range(5):
                status, _, _ = serve.post("/hooks/paced", json.dumps({"n": n}).encode(),
                                          {"X-Token": "hook-token-123456"})
                assert status == 202
            wait_for(lambda: len(api.requests) == 5, timeout=60, what="five requests")
        times = [r.at for r in api.requests]
        assert [r.body["n"] for r in api.requests] == [0, 1, 2, 3, 4]
    assert all(times[i + 1] - times[i] >= 0.75 for i in range(4)), times  # spaced (1.5 s at the start), no burst
    assert all(times[i + 2] - times[i] >= 3.0 for i in range(3)), times  # never 3 in a 3 s window


def test_sighup_stops_serve_as_sigterm_does(tmp_path: Path) -> None:
    """The terminal or SSH session serve ran in closed (SIGHUP): it died at once, its running jobs cut off
    without their end recorded; it stops as on SIGTERM (running jobs finish) and exits 0."""
    import signal

    (tmp_path / "gh.flow").write_text("trigger webhook(verify: github(secret.GH_SECRET))\nemit 1\n")
    with ServeProcess(tmp_path, "--log-format", "text", env={"GH_SECRET": "s3cr\"et\\ünï-" + "x" * 40}) as serve:
        assert serve.proc is not None
        serve.proc.send_signal(signal.SIGHUP)
        assert serve.proc.wait(60) == 0
        serve.log_file.close()
    assert "SIGHUP: stopping (running jobs finish; again to stop them too)" in serve.logs()


def test_the_inbox_forgets_deliveries_done_30_days_ago_and_keeps_failed_ones(tmp_path: Path) -> None:
    """The inbox kept every delivery, body and headers, for ever: a webhook of 10,000 deliveries a day grew
    it by that every day. One done more than 30 days ago is purged at start (and every hour), with a line;
    a failed one stays for --replay; a newer done one stays, and its id is still a duplicate."""
    import sqlite3

    from conftest import run_cli

    secret = "s3cr\"et\\ünï-" + "k" * 40
    (tmp_path / "gh.flow").write_text("trigger webhook(verify: github(secret.GH_SECRET))\n"
                                      "if input.fail == true\n  fail \"asked to\"\nend\nemit 1\n")
    bodies = {name: json.dumps({"fail": name == "failed", "name": name}).encode() for name in ("old", "failed", "new")}
    with ServeProcess(tmp_path, "--log-format", "text", env={"GH_SECRET": secret}) as serve:
        for name, body in bodies.items():
            assert serve.post("/hooks/gh", body, sign_github(body, 0, secret, f"d-{name}"))[0] == 202
        db_path = tmp_path / ".flowlang" / "inbox.db"
        wait_for(lambda: sqlite3.connect(db_path).execute(
            "select count(*) from deliveries where status in ('done', 'failed')").fetchone()[0] == 3, what="3 runs")
        assert serve.terminate() == 0
    with sqlite3.connect(db_path) as db:  # as if the first two ended 31 days ago
        db.execute("update deliveries set finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-31 days') "
                   "where delivery_id in ('d-old', 'd-failed')")
    with ServeProcess(tmp_path, "--log-format", "text", env={"GH_SECRET": secret}) as serve:
        wait_for(lambda: "inbox: purged 1 delivery done more than 30 days ago" in serve.logs(), what="the purge")
        new = bodies["new"]
        assert serve.post("/hooks/gh", new, sign_github(new, 0, secret, "d-new"))[0] == 200  # still a duplicate
        assert serve.terminate() == 0
    rows = sqlite3.connect(db_path).execute("select delivery_id, status from deliveries order by id").fetchall()
    assert rows == [("d-failed", "failed"), ("d-new", "done")]
    listed = run_cli("inbox", str(tmp_path), "--failed", timeout=60)
    assert listed.returncode == 0 and "asked to" in listed.stdout, listed.stdout + listed.stderr


def test_two_runs_at_once_of_a_webhook_flow_send_a_key_once(tmp_path: Path) -> None:
    """A webhook flow with `concurrency: 2` and `send o to api.post("/orders") key o.id once` (as this page
    advises for copies of a delivery), two deliveries of order 88 while the sink takes a second to answer:
    the second run found the key pending, failed its record saying the first job `got no answer that says
    whether it arrived (the job stopped while it was in flight ...)` though it was still running, and
    advised a --forget that would have sent order 88 twice. The second run now waits for the first one's
    answer and skips the key as sent."""
    from fakeapi import slow

    (tmp_path / "conc.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), concurrency: 2)\n'
        'use api = http(base_url: env.API, timeout: 30)\n'
        'for each o in input.orders\n  send o to api.post("/orders") key o.id once\nend\n')
    with FakeApi() as api:
        api.route("POST", r"^/orders$", slow(1.0, lambda req: (201, {}, {"ok": True})))
        with ServeProcess(tmp_path, env={"T": "tok-3f9a8b7c6d5e4f", "API": api.url}) as serve:
            for _ in range(2):
                status, _, _ = serve.post("/hooks/conc", b'{"orders": [{"id": 88}]}',
                                          {"X-Token": "tok-3f9a8b7c6d5e4f"})
                assert status == 202
            wait_for(lambda: serve.logs().count("conc: job ") >= 2, what="both runs ending")
            assert serve.terminate() == 0
        posted = [r.body for r in api.requests if r.method == "POST"]
    logs = serve.logs()
    assert posted == [{"id": 88}], posted
    assert "got no answer" not in logs and "1 send skipped, already sent in job 1 (send ... once)" in logs, logs


def test_inbox_show_gives_a_delivery_whole_with_its_secrets_masked(tmp_path: Path) -> None:
    """A failed delivery could be listed and replayed, but what it brought could not be seen: `inbox --show ID`
    gives its headers as stored (the signature masked) and its body; --secrets' values are masked in both."""
    from conftest import run_cli

    secret = "s3cr\"et\\ünï-" + "k" * 40
    token = "tok-\"\\ü-" + "t" * 30  # a secret of the flow's that the sender echoed in its body
    (tmp_path / "gh.flow").write_text("trigger webhook(verify: github(secret.GH_SECRET))\nfail \"asked to\"\n")
    (tmp_path / "secrets.toml").write_text(f"API_TOKEN = {json.dumps(token)}\n")
    body = json.dumps({"issue": {"number": 7, "title": "Crème brûlée"}, "echo": token}, ensure_ascii=False).encode()
    with ServeProcess(tmp_path, "--log-format", "text", env={"GH_SECRET": secret}) as serve:
        _, _, answer = serve.post("/hooks/gh", body, sign_github(body, 0, secret, "d-7"))
        wait_for(lambda: "asked to" in run_cli("inbox", str(tmp_path), timeout=60).stdout, what="the failed run")
        assert serve.terminate() == 0
    shown = run_cli("inbox", str(tmp_path), "--show", str(answer["delivery"]), "--secrets",
                    str(tmp_path / "secrets.toml"), timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "Crème brûlée" in shown.stdout and '"number": 7' in shown.stdout and "asked to" in shown.stdout
    assert "x-github-delivery: d-7" in shown.stdout.lower()
    assert token not in shown.stdout and "***" in shown.stdout
    assert mac(secret.encode(), body).hex() not in shown.stdout  # the signature was masked as it arrived
    as_json = run_cli("inbox", str(tmp_path), "--show", str(answer["delivery"]), "--json", "--secrets",
                      str(tmp_path / "secrets.toml"), timeout=60)
    shown_json = json.loads(as_json.stdout)
    assert json.loads(shown_json["body"].replace("***", "x"))["issue"]["title"] == "Crème brûlée"
    assert shown_json["status"] == "failed" and token not in as_json.stdout
    missing = run_cli("inbox", str(tmp_path), "--show", "999", timeout=60)
    assert missing.returncode == 2 and "no delivery 999 in the inbox" in missing.stderr


def test_two_runs_at_once_of_a_webhook_flow_send_a_key_once_in_batches(tmp_path: Path) -> None:
    """As above with `send ... key r.k once batch 2` to an operation that takes batches: the second run's
    record failed (`the send of key 9 to s.create_items in job 1 got no answer ...`) while job 1's batch was
    in flight. It waits for that batch's answer and skips the key as sent."""
    from fakeapi import slow

    (tmp_path / "connectors").mkdir()
    (tmp_path / "cb.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), concurrency: 2)\n'
        'use s = shop(base_url: env.API)\n'
        'for each r in input.orders\n  send r to s.create_items key r.k once batch 2\nend\n')
    with FakeApi() as api:
        (tmp_path / "connectors" / "shop.toml").write_text(
            'name = "shop"\nbase_url = "{base_url}"\n\n[config]\nbase_url = { required = true }\n\n'
            '[operations.create_items]\nmethod = "POST"\npath = "/items/batch"\n'
            'batch = { max = 100, body = "items", results = "results", ok = "ok", error = "error" }\n')
        api.route("POST", r"^/items/batch$", slow(1.0, lambda req: (
            200, {}, {"results": [{"ok": True} for _ in req.body["items"]]})))
        with ServeProcess(tmp_path, env={"T": "tok-3f9a8b7c6d5e4f", "API": api.url}) as serve:
            for n in (1, 2):
                status, _, _ = serve.post("/hooks/cb", json.dumps({"orders": [{"id": n, "k": 9}]}).encode(),
                                          {"X-Token": "tok-3f9a8b7c6d5e4f"})
                assert status == 202
            wait_for(lambda: serve.logs().count("cb: job ") >= 2, what="both runs ending")
            assert serve.terminate() == 0
        posted = [r.body for r in api.requests if r.method == "POST"]
    logs = serve.logs()
    assert posted == [{"items": [{"id": 1, "k": 9}]}], posted
    assert "got no answer" not in logs and "1 send skipped, already sent in job 1 (send ... once)" in logs, logs


def test_the_runs_of_serve_share_an_oauth2_token_while_it_is_good(tmp_path: Path) -> None:
    """Each delivery's run opened its connection anew and asked the token endpoint for a token of its
    own: four deliveries, four token requests (a provider that limits them refuses a busy hook). The
    runs of one serve keep the token of the same client while it is good; a 401 still gets a new one."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "tok.flow").write_text(
        'flow "tok"\n'
        'trigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"))\n'
        'use api = http(base_url: env.API, auth: oauth2_client_credentials(env.API + "/token", "client-1", '
        'secret.CLIENT_SECRET))\n'
        'send {n: input.n} to api.post("/events")\n')
    tokens: list[str] = []

    def token(req: Any) -> tuple[int, dict[str, str], Any]:
        tokens.append(f"tok-{len(tokens) + 1}-abcdefgh")
        return 200, {}, {"access_token": tokens[-1], "expires_in": 3600}

    def event(req: Any) -> tuple[int, dict[str, str], Any]:
        if req.body["n"] == 2 and req.headers.get("authorization") == "Bearer tok-1-abcdefgh":
            return 401, {}, {"error": "revoked"}  # the provider revoked the first token
        return 201, {}, {"ok": True}

    with FakeApi() as api:
        api.route("POST", "/token", token)
        api.route("POST", "/events", event)
        env = {"HOOK_TOKEN": "hook-token-123456", "CLIENT_SECRET": "client-secret-123456", "API": api.url}
        with ServeProcess(folder, env=env) as serve:
            for n in range(4):
                status, _, _ = serve.post("/hooks/tok", json.dumps({"n": n}).encode(), {"X-Token": "hook-token-123456"})
                assert status == 202
                wait_for(lambda n=n: sum(1 for r in api.requests if r.path == "/events"
                                         and r.body["n"] == n) >= 1 and f"job {n + 1} " in serve.logs(),
                         timeout=60, what=f"delivery {n}")
            logs = serve.logs()
        sent = [(r.body["n"], r.headers.get("authorization")) for r in api.requests if r.path == "/events"]
    assert tokens == ["tok-1-abcdefgh", "tok-2-abcdefgh"], sent
    assert sent == [(0, "Bearer tok-1-abcdefgh"), (1, "Bearer tok-1-abcdefgh"), (2, "Bearer tok-1-abcdefgh"),
                    (2, "Bearer tok-2-abcdefgh"), (3, "Bearer tok-2-abcdefgh")]
    assert "tok-1-abcdefgh" not in logs and "failed 1" not in logs
