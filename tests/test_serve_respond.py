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
from serving import ServeProcess

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
