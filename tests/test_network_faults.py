"""HTTP under network faults, injected by a local proxy: resets mid-response, a server that never
answers, and an answer trickling in a byte at a time (a total deadline, not only a read timeout)."""

from __future__ import annotations

import time

import flowlang
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
