"""HTTP under network faults, injected by a local proxy: resets mid-response, a server that never
answers, and an answer trickling in a byte at a time (a total deadline, not only a read timeout)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import flowlang
from conftest import cli
from fakeapi import FakeApi
from faultproxy import FaultProxy


def run(text: str, url: str) -> flowlang.Result:
    return flowlang.compile(text, bindings=()).run(env={"API": url})


def test_a_reset_mid_response_is_retried_for_get() -> None:
    with FakeApi({"orders": [{"id": 1}]}) as api, FaultProxy(int(api.url.rsplit(":", 1)[1]), "reset", 2) as proxy:
        result = run('use api = http(base_url: env.API)\ncall api.get("/orders/1") as o\nemit o.id', proxy.url)
        assert result.outputs == [1], result.error
        assert api.count("GET", "/orders/1") >= 3  # two reset, then one answered


def test_a_reset_after_a_post_is_not_retried_without_a_key() -> None:
    with FakeApi() as api, FaultProxy(int(api.url.rsplit(":", 1)[1]), "reset", 5) as proxy:
        result = run('use api = http(base_url: env.API)\nsend {a: 1} to api.post("/things")', proxy.url)
        assert result.error is not None and "connection failed" in result.error.message
        assert api.count("POST", "/things") == 1  # it may have been stored: not sent twice


def test_a_server_that_never_answers_times_out() -> None:
    with FakeApi() as api, FaultProxy(int(api.url.rsplit(":", 1)[1]), "blackhole") as proxy:
        started = time.monotonic()
        result = run('use api = http(base_url: env.API, timeout: 0.5, retry: 2)\ncall api.get("/x")', proxy.url)
        elapsed = time.monotonic() - started
        assert result.error is not None and "timeout" in result.error.message
        assert "after 2 attempts" in result.error.message
        assert elapsed < 5
        assert proxy.connections == 2


def test_a_trickling_answer_hits_the_total_deadline() -> None:
    with FakeApi({"orders": [{"id": i, "name": "x" * 50} for i in range(5)]}) as api, \
            FaultProxy(int(api.url.rsplit(":", 1)[1]), "trickle", delay=0.05) as proxy:
        started = time.monotonic()
        result = run('use api = http(base_url: env.API, timeout: 1, retry: 1)\ncall api.get("/orders")', proxy.url)
        assert result.error is not None and "timeout" in result.error.message
        assert time.monotonic() - started < 4  # every byte came within the read timeout; the deadline held


class RawAnswers:
    """A server on 127.0.0.1 answering each request with the bytes `answer(request)` gives, then closing:
    answers no HTTP library would write (a bad status line, a header line past 8190 bytes)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(self.answer(request))

    def __enter__(self) -> RawAnswers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(5)


CANARY = 'Zq"\\\'ü€-canary-' + "x" * 200  # quotes, a backslash, non-ASCII, long


def echoed_authorization(request: bytes) -> bytes:
    """A header line past aiohttp's 8190 bytes that starts with the request's Authorization."""
    [auth] = [line for line in request.split(b"\r\n") if line.lower().startswith(b"authorization:")]
    return b"HTTP/1.1 200 OK\r\nX-Echo: " + auth + b"a" * 9000 + b"\r\nContent-Length: 2\r\n\r\n[]"


@pytest.mark.parametrize(("answer", "said"), [
    (lambda req: b"HTTP/1.1 1000 Big\r\nContent-Length: 2\r\n\r\n[]",
     "the answer could not be read: Bad status line: Invalid response status"),
    (lambda req: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: 8\r\n\r\nnot gzip",
     "the answer could not be read: Can not decode content-encoding: gzip"),
    (echoed_authorization, "the answer could not be read: Got more than 8190 bytes when reading")])
def test_an_answer_aiohttp_cannot_read_is_said_in_words_without_its_bytes(answer: Callable[[bytes], bytes],
                                                                          said: str, tmp_path: Path) -> None:
    """Such answers failed with aiohttp's repr: 'connection failed: ClientResponseError: 400,
    message="Bad status line:\\n  Invalid response status:\\n\\n  b\\'HTTP/1.1 1000 Big\\'\\n ^",
    url=...' (its own 400, not the server's status, over five lines), and a header line too long was
    quoted from its start: a header echoing the Authorization showed the first 80 characters of the
    token, cut where masking could not know it."""
    with RawAnswers(answer) as server:
        (tmp_path / "f.flow").write_text(f'use api = http(base_url: "{server.url}", auth: bearer(secret.TOK), '
                                         'retry: 1)\ncall api.get("/x") as r\n')
        (tmp_path / "s.toml").write_text("TOK = " + json.dumps(CANARY) + "\n")
        done = cli("run", "f.flow", "--secrets", "s.toml", cwd=tmp_path)
    assert done.status == 1, done.stderr
    [line] = [x["message"] for x in map(json.loads, done.stderr.splitlines()) if x.get("location") == "f.flow:2:6"]
    assert line.startswith(f"GET {server.url}/x failed: connection failed: {said}\n"), line
    assert "canary" not in done.stderr and "Zq" not in done.stderr and "400, message" not in done.stderr
