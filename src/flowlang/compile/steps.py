"""Compiled statements: a Step is a closure over a Frame, synchronous or a coroutine function,
and blocks combine steps so that pure code never pays for `await`. Also the type of compiled
expressions (Eval) and run_step, the one way to run a step from async code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.frame import Frame

Eval = Callable[[Frame], Any]  # a compiled expression: the frame in, the value out


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled statement (or block). When is_async, run(frame) returns an awaitable.
    Made with Step.sync(fn) or Step.coroutine(fn)."""

    run: Callable[[Frame], Any]
    is_async: bool
    # An async step that can also run without awaiting, when each of its guards holds for the frame
    # (checked once, when a loop starts): its synchronous form. A send to a file is one: its write
    # never waits (compile/io.py); a loop whose body is all sync steps and such sends runs it as
    # plain calls, with no coroutine per record.
    sync_form: Callable[[Frame], None] | None = None
    guards: tuple[Callable[[Frame], bool], ...] = ()
    # A block's statements as (is_async, run) pairs, which run(frame) runs in order: a loop runs them
    # itself, so that every await of an iteration passes through one coroutine fewer (see plan_of).
    parts: tuple[tuple[bool, Callable[[Frame], Any]], ...] | None = None

    @classmethod
    def sync(cls, fn: Callable[[Frame], None]) -> Step:
        """A step that does no I/O: blocks call it without `await`."""
        return cls(fn, False)

    @classmethod
    def coroutine(cls, fn: Callable[[Frame], Awaitable[None]]) -> Step:
        """A step that may do I/O: a coroutine function of the frame."""
        return cls(fn, True)

    @classmethod
    def maybe_sync(cls, fn: Callable[[Frame], Awaitable[None]], sync_form: Callable[[Frame], None],
                   guard: Callable[[Frame], bool]) -> Step:
        """A coroutine step with a synchronous form for frames where `guard` holds."""
        return cls(fn, True, sync_form, (guard,))

    def sync_run(self, frame: Frame) -> Callable[[Frame], None] | None:
        """The step as a plain function for this frame: itself when sync, its synchronous form when
        its guards hold, else None."""
        if not self.is_async:
            return self.run
        if self.sync_form is not None and all(guard(frame) for guard in self.guards):
            return self.sync_form
        return None


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

    forms = [s.sync_form if s.is_async else s.run for s in steps]
    if any(form is None for form in forms):
        return Step(run_async, True, parts=plan)
    sync_fns = tuple(form for form in forms if form is not None)

    def run_sync_form(frame: Frame) -> None:
        for fn in sync_fns:
            fn(frame)

    return Step(run_async, True, run_sync_form, tuple(g for s in steps for g in s.guards), plan)


def plan_of(step: Step) -> tuple[tuple[bool, Callable[[Frame], Any]], ...]:
    """The statements a step runs, in order, as (is_async, run) pairs: a block's own, else the step."""
    return step.parts if step.parts is not None else ((step.is_async, step.run),)


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
