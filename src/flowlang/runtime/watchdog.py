"""The hard stop: one daemon thread per process that keeps the time when the event loop cannot
(CPU-bound work never yields to it) and ends what cannot end by itself.

- `at(when, action)`: call `action` from the thread at a monotonic time (max_seconds: the graceful
  stop at the deadline, the hard stop after the grace, the exit after as long again).
- `watch_signals(...)`: SIGTERM/SIGINT/SIGHUP (stop_signals) are read from a wakeup pipe by the thread, so they
  are seen even while the main thread is stuck in C (a regex, a huge multiplication). The first asks for a
  graceful stop, the second for a hard stop; when the run has not ended `grace` seconds after that,
  `exit_process` runs.
- `exit_process(status)`: the jobs still running are recorded (each job registers how, with
  `job_started`), then the process exits with that status. The run lock is an flock: the kernel
  releases it with the process. Only the CLI enables exiting (`allow_exit`); embedded runs get
  HardStop raised instead (runtime/limits.py)."""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("flowlang.watchdog")

Action = Callable[[], None]


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timers: list[tuple[float, int, Action]] = []
        self._ids = itertools.count()
        self._cancelled: set[int] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._signal_r: int | None = None
        self._on_signal: Callable[[int], None] | None = None
        self._thread: threading.Thread | None = None
        self.jobs: dict[int, Callable[[str, str], None]] = {}  # job id -> record(status, message)
        self.allow_exit = False
        self.exiting = False
        self.stopped_at_once = False  # a second signal stopped a run of this process (cli/signals.py)

    # ---- timers ------------------------------------------------------------------------------
    def at(self, when: float, action: Action) -> int:
        with self._lock:
            timer = next(self._ids)
            heapq.heappush(self._timers, (when, timer, action))
        self._start()
        self._poke()
        return timer

    def cancel(self, timer: int) -> None:
        with self._lock:
            self._cancelled.add(timer)

    # ---- jobs --------------------------------------------------------------------------------
    def job_started(self, job_id: int, record: Callable[[str, str], None]) -> None:
        with self._lock:
            self.jobs[job_id] = record

    def job_ended(self, job_id: int) -> None:
        with self._lock:
            self.jobs.pop(job_id, None)

    def exit_process(self, status: int, job_status: str, message: str) -> None:
        """Record every job still running, then end the process (only when allowed: the CLI)."""
        if not self.allow_exit or self.exiting:
            return
        self.exiting = True
        with self._lock:
            jobs = list(self.jobs.items())
        for job_id, record in jobs:
            try:
                record(job_status, message)
            except Exception as e:  # the exit must happen whatever the store says
                log.error("job %s could not be recorded before the hard stop: %s", job_id, e)
        log.error(message, extra={"job_id": jobs[0][0] if jobs else None})
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)

    # ---- signals -----------------------------------------------------------------------------
    def watch_signals(self, on_signal: Callable[[int], None]) -> Callable[[], None]:
        """Route stop_signals() to on_signal(number), called from this thread (even while the main
        thread is stuck). Returns the function that puts the old handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signals reach the main thread's handlers only
        r, w = os.pipe()
        os.set_blocking(w, False)
        os.set_blocking(r, False)
        old = {sig: signal.signal(sig, lambda *_: None) for sig in stop_signals()}
        old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        with self._lock:
            self._signal_r, self._on_signal = r, on_signal
        self._start()
        self._poke()

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            with self._lock:
                self._signal_r, self._on_signal = None, None
            self._poke()
            os.close(w)

        return restore

    # ---- the thread --------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="flowlang-watchdog", daemon=True)
        self._thread.start()

    def _poke(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._timers and self._timers[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._timers)[1])
                timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
                signal_r = self._signal_r
            fds = [self._wake_r] + ([signal_r] if signal_r is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):  # the signal pipe was closed under us
                ready = []
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
            if signal_r is not None and signal_r in ready:
                self._signals(signal_r)
            self._due()

    def _signals(self, fd: int) -> None:
        try:
            data = os.read(fd, 64)
        except OSError:
            return
        handler = self._on_signal
        for number in data:
            if handler is not None:
                handler(number)

    def _due(self) -> None:
        now = time.monotonic()
        due: list[Action] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                _, timer, action = heapq.heappop(self._timers)
                if timer in self._cancelled:
                    self._cancelled.discard(timer)
                else:
                    due.append(action)
        for action in due:
            try:
                action()
            except Exception as e:  # one timer's failure must not stop the watchdog
                log.debug("watchdog action failed", exc_info=e)


def end_without_stuck_threads(status: int, wait: float = 2.0) -> None:
    """At the end of a program whose run a second signal stopped at once: a worker thread may still
    run (a database statement the interrupt reached before it started runs on in C), and the
    interpreter's exit would wait for it forever. Wait `wait` seconds for such threads, then end the
    process with `status` without them: the command is over (its job recorded, its outputs written)."""
    if not WATCHDOG.stopped_at_once:
        return
    deadline = time.monotonic() + wait
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    if not any(t.is_alive() and not t.daemon and t is not threading.current_thread() for t in threading.enumerate()):
        return
    log.debug("a worker thread still runs after the command ended; the process ends without it")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    logging.shutdown()
    os._exit(status)


WATCHDOG = Watchdog()


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals that ask a run (or serve) to stop: SIGTERM, SIGINT (Ctrl-C), and SIGHUP (the terminal or
    SSH session it ran in closed), unless SIGHUP is ignored as the process started (nohup: it runs on)."""
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is None or signal.getsignal(hangup) is signal.SIG_IGN:
        return signal.SIGTERM, signal.SIGINT
    return signal.SIGTERM, signal.SIGINT, hangup


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"

