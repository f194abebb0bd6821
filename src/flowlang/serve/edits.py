"""A flow file edited while serve runs: its next job (a delivery, a tick, the console's run or retry) runs
the new version once it checks, as `flowlang run` from cron would; an edit that does not check, or that
changes what serve serves (the flow's triggers, its name), is said once in the log and not taken: the
flow's runs go on with the version serve has, until a restart (serve refuses to start with it then).
Before, serve ran the version it loaded at its start, without a word, while `flowlang retry` and
`flowlang inbox --replay` ran the file as it was."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowlang.api import Flow, load
from flowlang.check.triggers import WebhookTrigger
from flowlang.diagnostics import Diagnostic, Severity
from flowlang.environment import Environment
from flowlang.errors import FlowError, ScriptError

log = logging.getLogger("flowlang.serve")


def stamp(path: Path | None) -> tuple[int, int, int, int] | None:
    """What tells an edit cheaply (one stat a job): the file's times, size and inode (an editor that saves
    by renaming a new file over it)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def served_shape(flow: Flow) -> tuple[Any, ...]:
    """What serve set up from a flow at its start, which an edit taken at a job's start cannot change: its
    name (its store's key) and its triggers (routes, verify schemes and their secrets, schedules), without
    their places in the file (a line added above them moves them, and changes nothing)."""
    triggers: list[tuple[Any, ...]] = []
    for t in flow.checked.triggers:
        if isinstance(t, WebhookTrigger):
            triggers.append(("webhook", tuple((s.preset, s.secrets, tuple(sorted(s.options.items())))
                                              for s in t.verify), t.concurrency, t.max_body, t.respond, t.timeout))
        else:
            triggers.append(("schedule", t.cron, t.tz, t.catch_up))
    return flow.key, tuple(triggers)


class EditWatch:
    """One served flow's file: whether it was edited since the version serve runs was read."""

    def __init__(self, flow: Flow) -> None:
        self.seen = stamp(flow.path)
        self.refused: str | None = None  # the digest of an edit said and not taken (said once)

    def edited(self, flow: Flow, route: str) -> Flow | None:
        """(At a job's start.) The new version of the flow when its file changed and it checks, else None
        (unchanged, or an edit not taken: logged once per edit)."""
        now = stamp(flow.path)
        if now is None or now == self.seen or flow.path is None:
            return None
        self.seen = now
        try:
            new = load(flow.path, environment=Environment(), bindings=())
        except ScriptError as e:
            self._refuse(route, flow.path, f"has errors: {errors(e.diagnostics)}", None)
            return None
        except FlowError as e:  # unreadable, gone: the version serve has goes on
            self._refuse(route, flow.path, f"cannot be read: {e.message}", None,
                         "put it back: a restart serves the folder's flows as they are then")
            return None
        if new.source.text == flow.source.text:  # put back as it runs: the same bad edit again is said again
            self.refused = None
            return None
        from flowlang.serve.flows import params_without_default

        missing = params_without_default(new)
        if missing:
            self._refuse(route, flow.path, f"has errors: {errors(missing)}", new.source.text)
            return None
        if served_shape(new) != served_shape(flow):
            self._refuse(route, flow.path, "changes its triggers or its name, which serve set up at its start",
                         new.source.text, "restart serve to take it")
            return None
        new.compiled_flow(frozenset())  # as prepare() did: the job runs at once
        self.refused = None
        log.info(f"{route}: {flow.path.name} was edited: its runs use the new version from this job on")
        return new

    def _refuse(self, route: str, path: Path, why: str, text: str | None,
                then: str = "fix them: a restart refuses to start with them") -> None:
        digest = hashlib.sha256((text if text is not None else why).encode("utf-8", "replace")).hexdigest()
        if digest != self.refused:
            self.refused = digest
            log.warning(f"{route}: {path.name} was edited, but the new version {why}; its runs go on with the "
                        f"version serve has ({then})")


def errors(diagnostics: Sequence[Diagnostic]) -> str:
    """The errors of an edit, one line each (file:line:col: error: ...), as check heads them."""
    return "; ".join(d.headline() for d in diagnostics if d.severity is Severity.ERROR)
