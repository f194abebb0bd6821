"""Whether the process that started a job is still alive: a job row keeps its process's identity (the
pid and, where /proc tells it, the process's start time, so that a pid used again by another process is
not taken for it). A job left `running` by a process that is gone crashed; one whose process still runs
(a `flowlang serve` running several deliveries of a flow at once, or a run beside it) is running. In
this process, the jobs that have started and not ended are known by their store and id."""

from __future__ import annotations

import functools
import os


def _stat(pid: int) -> tuple[str, str] | None:
    """A process's state letter and start time in clock ticks since boot (Linux's /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # after the command's name, which may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _start_time(pid: int) -> str | None:
    found = _stat(pid)
    return found[1] if found is not None else None


@functools.cache
def this_process() -> str:
    """This process's identity, as a job row keeps it: `PID` or `PID:START`."""
    pid = os.getpid()
    start = _start_time(pid)
    return f"{pid}:{start}" if start is not None else str(pid)


LIVE_JOBS: set[tuple[str, int]] = set()  # (store, job id) of the jobs this process runs now


def alive(identity: str | None, store: str, job_id: int) -> bool:
    """Whether the job a row names still runs: in this process, one it has started and not ended; else
    whether the process the row names still runs (unknown, as in rows written before: not)."""
    if not identity:
        return False
    if identity == this_process():
        return (store, job_id) in LIVE_JOBS
    pid_text, _, start = identity.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if os.name == "nt" or pid <= 0:  # os.kill(pid, 0) would end the process there: not asked
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        pass
    except OSError:
        return False
    found = _stat(pid)
    if found is None:  # no /proc: the pid answers
        return True
    state, started = found
    return state not in ("Z", "X") and (not start or started == start)  # a zombie was killed, not yet reaped
