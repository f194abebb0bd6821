"""`respond: "outputs"` against a running `flowlang serve`: the answer carries the run's outputs (or a
202 when the run takes longer than `timeout`); JSON, form-encoded and text bodies as the run's input."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

from conftest import run_cli
from fakeapi import FakeApi, Request
from serving import ServeProcess, wait_for

TOKEN = "respond-token-" + "r" * 30


def test_outputs_are_the_answer_and_bodies_become_input(tmp_path: Path) -> None:
    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(3)
        return 200, {}, {"late": True}

    (tmp_path / "echo.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), respond: "outputs", timeout: 20)\n'
        "emit {got: input, kind: job.trigger.kind, type: job.trigger.headers[\"content-type\"]}\n")
    (tmp_path / "late.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), respond: "outputs", timeout: 0.5)\n'
        'use api = http(base_url: env.API)\ncall api.get("/slow") as s\nemit s\n')
    with FakeApi() as api:
        api.route("GET", r"^/slow$", slow)
        with ServeProcess(tmp_path, env={"T": TOKEN, "API": api.url}) as serve:
            status, _, answer = serve.post("/hooks/echo", json.dumps({"n": 1.50, "s": "ø"}).encode(),
                                           {"X-Token": TOKEN})
            assert status == 200 and answer["status"] == "ok"
            assert answer["outputs"] == [{"got": {"n": 1.50, "s": "ø"}, "kind": "webhook",
                                          "type": "application/json"}]
            status, _, answer = serve.request("POST", "/hooks/echo", b"a=1&b=x&b=y&c=",
                                              {"X-Token": TOKEN, "Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200 and answer["outputs"][0]["got"] == {"a": "1", "b": ["x", "y"], "c": ""}
            status, _, answer = serve.request("POST", "/hooks/echo", "plain ø text".encode(),
                                              {"X-Token": TOKEN, "Content-Type": "text/plain; charset=utf-8"})
            assert status == 200 and answer["outputs"][0]["got"] == "plain ø text"
            # a declared charset: read as UTF-8, 'café' in Latin-1 was 'caf\ufffd' (and the JSON not JSON)
            for body, kind in (('{"n": "café"}'.encode("latin-1"), "application/json; charset=iso-8859-1"),
                               (b"n=caf%E9", "application/x-www-form-urlencoded; charset=ISO-8859-1"),
                               ("café".encode("cp1252"), "text/plain; charset=windows-1252"),
                               ('{"n": "café"}'.encode(), 'application/json; charset="unknown-x"'),
                               # codecs that are no text encoding, or rewrite the body: UTF-8, not a crash
                               ('{"n": "café"}'.encode(), "application/json; charset=base64"),
                               ('{"n": "café"}'.encode(), "application/json; charset=idna"),
                               (b'{"n": "caf\\u00e9"}', "application/json; charset=unicode_escape"),
                               (b"n=caf%C3%A9", "application/x-www-form-urlencoded; charset=zlib")):
                headers = {"X-Token": TOKEN, "Content-Type": kind}
                status, _, answer = serve.request("POST", "/hooks/echo", body, headers)
                assert status == 200, answer
                assert answer["outputs"][0]["got"] in ({"n": "café"}, "café"), (kind, answer)
            status, _, answer = serve.post("/hooks/late", b"{}", {"X-Token": TOKEN})
            assert status == 202 and isinstance(answer["job"], int)  # the run outlived `timeout`
            assert serve.terminate() == 0


def post_raw(port: int, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, Any]:
    """A POST whose headers may repeat a name (urllib's dict cannot)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for name, value in [*headers, ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]:
            conn.putheader(name, value)
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_a_header_sent_twice_reaches_the_flow_as_both_values(tmp_path: Path) -> None:
    (tmp_path / "tags.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), respond: "outputs", timeout: 20)\n'
        'emit {tags: job.trigger.headers["x-tag"], one: job.trigger.headers["x-one"]}\n')
    with ServeProcess(tmp_path, env={"T": TOKEN}) as serve:
        status, answer = post_raw(serve.port, "/hooks/tags", [("X-Token", TOKEN), ("X-Tag", "a"), ("x-tag", "b, c"),
                                                               ("X-One", "1")], b"{}")
        assert status == 200, answer
        # joined with ", " in the order sent, as HTTP combines a repeated field (the old code kept only "b, c")
        assert answer["outputs"] == [{"tags": "a, b, c", "one": "1"}]
        # a credential sent twice is not either one of them: refused, and nothing is kept
        status, answer = post_raw(serve.port, "/hooks/tags", [("X-Token", "wrong"), ("X-Token", TOKEN)], b"{}")
        assert status == 401, answer
        assert serve.terminate() == 0
    rows = run_cli("inbox", str(tmp_path), "--json").stdout.splitlines()
    assert len(rows) == 1


def test_the_answer_names_the_delivery_and_the_job_as_the_commands_show_them(tmp_path: Path) -> None:
    """The 202's `delivery` is the id `flowlang inbox` lists (and --replay takes); its `job` the id
    `flowlang jobs` lists. The old answer's "job" was the inbox id, which is not the job's once the state
    folder has a job that no delivery made (a `flowlang run`, a tick, a retry)."""
    (tmp_path / "a.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token", id_header: "X-Id"))\nemit 1\n')
    (tmp_path / "b.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), respond: "outputs", timeout: 20)\n'
        "emit job.id\n")

    def inbox() -> dict[int, Any]:
        rows = run_cli("inbox", str(tmp_path), "--json").stdout.splitlines()
        return {r["id"]: r for r in map(json.loads, rows)}

    def jobs(flow: str) -> list[int]:
        return [j["id"] for j in map(json.loads, run_cli("jobs", str(tmp_path / flow), "--json").stdout.splitlines())
                if j["kind"] == "webhook"]

    assert run_cli("run", str(tmp_path / "a.flow")).returncode == 0  # job 1, no delivery
    with ServeProcess(tmp_path, env={"T": TOKEN}) as serve:
        for n in (1, 2):
            status, _, answer = serve.post("/hooks/a", b"{}", {"X-Token": TOKEN, "X-Id": f"d{n}"})
            assert status == 202 and answer["delivery"] == n and answer["job"] in (None, n + 1), answer
        wait_for(lambda: all(r["status"] == "done" for r in inbox().values()) and len(inbox()) == 2, what="two runs")
        status, _, answer = serve.post("/hooks/b", b"{}", {"X-Token": TOKEN})
        assert status == 200 and answer == {"delivery": 3, "job": 4, "status": "ok", "outputs": [4]}, answer
        status, _, answer = serve.post("/hooks/a", b"{}", {"X-Token": TOKEN, "X-Id": "d3"})
        assert status == 202 and answer["delivery"] == 4 and answer["job"] in (None, 5), answer
        wait_for(lambda: inbox()[4]["status"] == "done", what="the third run of a")
        status, _, again = serve.post("/hooks/a", b"{}", {"X-Token": TOKEN, "X-Id": "d3"})
        assert status == 200 and again == {"duplicate": True, "delivery": 4, "job": 5}, again
        assert serve.terminate() == 0
    rows = inbox()
    assert {n: (r["flow"], r["job_id"]) for n, r in rows.items()} == {1: ("a", 2), 2: ("a", 3), 3: ("b", 4),
                                                                      4: ("a", 5)}
    assert sorted(jobs("a.flow")) == [2, 3, 5] and jobs("b.flow") == [4]


def test_the_outputs_answered_are_masked_as_a_runs_stdout_is(tmp_path: Path) -> None:
    """The answer of respond: "outputs" carried the run's outputs as they were: a flow whose API echoed
    its bearer token answered the webhook's sender {"auth": "Bearer tok-Hv7c..."} with the whole
    token, where `flowlang run` of the same flow prints "Bearer ***"."""
    token = 'tok-"q\'\\é-' + "Hv7cR2" * 40
    (tmp_path / "o.flow").write_text(
        'trigger webhook(verify: token(secret.T, header: "X-Token"), respond: "outputs")\n'
        'use api = http(base_url: env.API, auth: bearer(secret.API_TOKEN))\n'
        'call api.get("/me") as me\nemit me\nemit {t: secret.API_TOKEN, s: "x{secret.API_TOKEN}"}\n')
    with FakeApi() as api:
        api.route("GET", "/me", lambda req: (200, {}, {"auth": req.headers["authorization"].encode("latin-1")
                                                       .decode()}))
        with ServeProcess(tmp_path, env={"T": TOKEN, "API_TOKEN": token, "API": api.url}) as serve:
            status, _, answer = serve.post("/hooks/o", b"{}", {"X-Token": TOKEN})
        assert api.requests[0].headers["authorization"].encode("latin-1").decode() == f"Bearer {token}"
    assert status == 200 and answer["outputs"] == [{"auth": "Bearer ***"}, {"t": "***", "s": "x***"}], answer
    assert "Hv7cR2Hv7c" not in json.dumps(answer)
