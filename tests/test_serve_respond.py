"""`respond: "outputs"` against a running `flowlang serve`: the answer carries the run's outputs (or a
202 when the run takes longer than `timeout`); JSON, form-encoded and text bodies as the run's input."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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
