"""Compiled statements: a Step is a closure over a Frame, synchronous or a coroutine function,
and blocks combine steps so that pure code never pays for `await`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowlang.runtime.frame import Frame


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled statement (or block). When is_async, run(frame) returns an awaitable."""

    run: Callable[[Frame], Any]
    is_async: bool


def _nothing(frame: Frame) -> None:
    return None


NOTHING = Step(_nothing, False)


def block(steps: list[Step]) -> Step:
    """Run steps in order; async only if one of them is."""
    if not steps:
        return NOTHING
    if len(steps) == 1:
        return steps[0]
    if not any(s.is_async for s in steps):
        fns = tuple(s.run for s in steps)

        def run_sync(frame: Frame) -> None:
            for fn in fns:
                fn(frame)

        return Step(run_sync, False)
    plan = tuple((s.is_async, s.run) for s in steps)

    async def run_async(frame: Frame) -> None:
        for is_async, fn in plan:
            if is_async:
                await fn(frame)
            else:
                fn(frame)

    return Step(run_async, True)


def stoppable(steps: list[Step]) -> Step:
    """The top level of a flow: a requested stop (SIGTERM, max_seconds) ends the run between statements.
    Loop bodies never check, so an iteration in flight always finishes."""
    plan = tuple((s.is_async, s.run) for s in steps)

    async def run_top(frame: Frame) -> None:
        run = frame.run
        for is_async, fn in plan:
            run.check_stop()
            if is_async:
                await fn(frame)
            else:
                fn(frame)

    return Step(run_top, True)


async def run_step(step: Step, frame: Frame) -> None:
    """Run a step from async code, whatever its kind."""
    if step.is_async:
        await step.run(frame)
    else:
        step.run(frame)
