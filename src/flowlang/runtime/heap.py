"""The garbage collector during a run: the heap that was there when the run started (the imports, the
compiled flow, an embedder's own objects) is frozen for the run (gc.freeze), so the collector's full
collections, set off by the run's own records, no longer walk it: one of them, 30-60 ms of CPU, landed
inside a 100,000-row file-to-file run. The run's own objects are collected as before. When the run ends
the heap is let go again (gc.unfreeze), so a process that compiles and runs many flows (the REPL, serve,
an embedder) collects what they leave as before: nothing is frozen for good (a cycle of the old heap
dropped during the run is collected after it).

A process that froze its heap itself (a pre-fork server's gc.freeze()) is left as it is: a run neither
freezes more nor unfreezes what it did not freeze. Runs at the same time (threads, tasks, a `run` line's
child) share the first one's freeze, and the last of them to end lets it go; a gc.freeze() of the
embedder's made meanwhile is undone then (docs/embedding.md)."""

from __future__ import annotations

import gc
import threading

_LOCK = threading.Lock()
_holders = 0  # runs of this process under the freeze made by the first of them


def frozen() -> bool:
    """Freeze the heap for a run starting now; True when this run holds a freeze (thaw() at its end)."""
    global _holders
    with _LOCK:
        if _holders:
            _holders += 1
            return True
        if not gc.isenabled() or gc.get_freeze_count():  # collection off, or frozen by someone else
            return False
        gc.freeze()
        _holders = 1
        return True


def thaw() -> None:
    """A run that frozen() said True for has ended: the last of them lets the heap go."""
    global _holders
    with _LOCK:
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()
