"""Running a command's coroutine on its own event loop, where SIGTERM and Ctrl-C ask the run to stop.

The signals are read by the watchdog thread (runtime/watchdog.py), so they count even while the run is
stuck in CPU-bound work: the first asks for a graceful stop (records in flight finish, none is
started), the second stops at once (the job is recorded as interrupted, exit 75); when the run has not
ended `grace` seconds after that, the watchdog records the job and ends the process with 75."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from flowlang.cli.console import Terminal
from flowlang.errors import Interrupted
from flowlang.runtime.limits import StopFlag
from flowlang.runtime.run import RUNNING_JOB
from flowlang.runtime.watchdog import WATCHDOG, signal_name
from flowlang.status import ExitStatus

T = TypeVar("T")
GRACE = 2.0  # after a second signal, how long the run has to unwind before the process ends


def run_async_command(coro: Coroutine[Any, Any, T], stop: StopFlag | None = None,
                      terminal: Terminal | None = None, grace: float = GRACE) -> T:
    """Run a command's coroutine. SIGTERM or Ctrl-C asks the run to stop gracefully (in-flight records
    finish, none is started); a second one stops it at once."""
    loop = asyncio.new_event_loop()
    received = 0
    context = contextvars.copy_context()  # the run's: the job it sets there is read by on_signal
    main_task = loop.create_task(coro, context=context)

    def soon(fn: Any, *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the command is over
            pass

    def tell(name: str, running: tuple[str, int | None] | None) -> None:
        if terminal is not None:
            if running is not None and running[1] is not None:  # the line of a running job carries it
                terminal.context = {"flow": running[0], "job_id": running[1]}  # (OPERATIONS.md 10)
            terminal.message(f"{name}: finishing the records in flight, then stopping (again to stop at once)",
                             "yellow")

    def on_signal(number: int) -> None:  # in the watchdog thread
        nonlocal received
        received += 1
        name = signal_name(number)
        if stop is not None and received == 1:
            stop.request(name)
            # the job the run set in its context, read now: a CPU-bound run lets tell() run only later
            soon(tell, name, context.get(RUNNING_JOB))
            return
        if stop is not None:
            stop.request_hard(f"{name} again")
        WATCHDOG.stopped_at_once = True
        soon(main_task.cancel)
        WATCHDOG.at(time.monotonic() + grace, lambda: WATCHDOG.exit_process(
            int(ExitStatus.INTERRUPTED), "interrupted",
            f"stopped at once ({name}): the run did not end within {grace:g}s (stuck in CPU-bound work); "
            "no state committed"))

    allowed, WATCHDOG.allow_exit = WATCHDOG.allow_exit, True
    restore = WATCHDOG.watch_signals(on_signal)
    try:
        try:
            return loop.run_until_complete(main_task)
        except asyncio.CancelledError:
            raise Interrupted("stopped at once by a second signal; no state committed") from None
    finally:
        restore()
        WATCHDOG.allow_exit = allowed
        finish_tasks(loop)
        loop.close()


def finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending and let it end, then close async generators: no "Task was
    destroyed but it is pending" at exit (OPERATIONS.md 10)."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
