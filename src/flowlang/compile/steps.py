"""Compiled statements: a Step is a closure over a Frame, synchronous or a coroutine function,
and blocks combine steps so that pure code never pays for `await`. Also the type of compiled
expressions (Eval) and run_step, the one way to run a step from async code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from flowlang.runtime.frame import Frame

Eval = Callable[[Frame], Any]  # a compiled expression: the frame in, the value out


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled statement (or block). When is_async, run(frame) returns an awaitable.
    Made with Step.sync(fn) or Step.coroutine(fn)."""

    run: Callable[[Frame], Any]
    is_async: bool

    @classmethod
    def sync(cls, fn: Callable[[Frame], None]) -> Step:
        """A step that does no I/O: blocks call it without `await`."""
        return cls(fn, False)

    @classmethod
    def coroutine(cls, fn: Callable[[Frame], Awaitable[None]]) -> Step:
        """A step that may do I/O: a coroutine function of the frame."""
        return cls(fn, True)


def _nothing(frame: Frame) -> None:
    return None


NOTHING = Step.sync(_nothing)


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

        return Step.sync(run_sync)
    plan = tuple((s.is_async, s.run) for s in steps)

    async def run_async(frame: Frame) -> None:
        for is_async, fn in plan:
            if is_async:
                await fn(frame)
            else:
                fn(frame)

    return Step.coroutine(run_async)


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

    return Step.coroutine(run_top)


async def run_step(step: Step, frame: Frame) -> None:
    """Run a step from async code, whatever its kind."""
    if step.is_async:
        await step.run(frame)
    else:
        step.run(frame)
