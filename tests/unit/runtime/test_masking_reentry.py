"""A line masked while the masker is making its patterns, in the same thread: the garbage collector
runs finalizers at any allocation, and asyncio's "Task was destroyed but it is pending!" is logged
from one, so a log line (masked) can be written in the middle of re.compile inside Masker._all. The
masker's lock was not reentrant: that run waited on itself forever (seen in the suite: a pickup test
hung in Masker._all). It masks now, and the outer call finishes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flowlang.runtime import masking
from flowlang.runtime.masking import Masker

CANARY = "s3cr\"et-'\\ünïcode-" + "x" * 40


def test_masking_from_inside_the_making_of_a_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    masker = Masker()
    masker.add(CANARY)
    inner: list[str] = []
    logged = threading.Event()
    real = masking._pattern

    def pattern_with_a_log_line(value: str, derived: bool) -> Any:
        if not logged.is_set():  # once, as a finalizer logging in the middle of re.compile would
            logged.set()
            inner.append(masker.mask(f"Task was destroyed but it is pending! {CANARY}"))
        return real(value, derived)

    monkeypatch.setattr(masking, "_pattern", pattern_with_a_log_line)
    outer: list[str] = []
    worker = threading.Thread(target=lambda: outer.append(masker.mask(f"token={CANARY}")), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "masking waited on itself"
    assert inner == ["Task was destroyed but it is pending! ***"]
    assert outer == ["token=***"]
