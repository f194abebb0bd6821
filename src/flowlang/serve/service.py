"""Starting and stopping a serve process: check every flow (refuse to start on any check error), open the
inbox, start the runs thread and the schedules, log each route and next tick, serve HTTP until asked to
stop; then answer 503, let running jobs finish, leave waiting deliveries in the inbox."""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from flowlang.api import SecretProviders
from flowlang.errors import LockedError, StoreError, UsageError
from flowlang.project import Project
from flowlang.runtime.limits import Limits
from flowlang.runtime.lock import FlowLock
from flowlang.runtime.state_folder import state_dir_in
from flowlang.serve.clock import CLOCK_ENV, Clock, clock_from
from flowlang.serve.flows import ServedFlow, load_folder, start_warnings
from flowlang.serve.http_log import http_logger
from flowlang.serve.inbox import DONE_KEPT_DAYS, Inbox
from flowlang.serve.metrics import Metrics
from flowlang.serve.runs import Runs
from flowlang.serve.schedule import Scheduler
from flowlang.serve.server import BODY_TIMEOUT, ServeState, build_app

log = logging.getLogger("flowlang.serve")
PURGE_EVERY = 3600.0  # seconds between purges of the inbox's old done deliveries
# seconds the HTTP side waits, once the runs have finished, for requests still open (a client that stalls in
# its body): aiohttp's 60 s default kept a stopping serve alive past a container's stop timeout
HTTP_SHUTDOWN_GRACE = 5.0


@dataclass
class ServeOptions:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 8765
    state_dir: Path | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    max_pending: int = 10_000
    console_token: str | None = None
    clock: Clock | None = None
    secret_providers: SecretProviders | None = None  # the flowlang.toml chain (default: --secrets, environment)
    body_timeout: float = BODY_TIMEOUT  # seconds a request's body may take to arrive (then 408)
    max_record_seconds: float | None = None  # every run's (--max-record-seconds)
    project: Project | None = None  # flowlang.toml (its alerts)


def state_folder(folder: Path, given: Path | None) -> Path:
    """--state-dir, else FLOWLANG_STATE_DIR, else .flowlang/ in the served folder (as `flowlang run`)."""
    return state_dir_in(folder.resolve(), given)


# seconds a starting serve keeps trying for its lock: `flowlang inbox --replay` asks whether a serve holds it
# by holding it shared for a moment (FlowLock.held), which refused a serve starting then
SERVE_LOCK_PATIENCE = 1.0


def serve_lock_file(folder: Path) -> FlowLock:
    """The lock a serve holds on its state folder (not yet taken)."""
    return FlowLock(folder, "flowlang serve", "serve.lock")


def serve_lock(folder: Path) -> FlowLock:
    """One serve per state folder: two both ran the deliveries waiting in its inbox at start, each of them
    twice (the flow's run lock only put the second run after the first). Held until serve stops (or dies)."""
    lock = serve_lock_file(folder)
    try:
        lock.acquire(patience=SERVE_LOCK_PATIENCE)
    except LockedError:
        try:
            pid = f"pid {int(lock.path.read_text().strip())}, "
        except (OSError, ValueError):
            pid = ""
        raise UsageError(f"another flowlang serve ({pid}lock {lock.path}) serves the state folder {folder}: one "
                         "serve per state folder (stop it, or give this one its own --state-dir)") from None
    return lock


def replay_lock_file(folder: Path) -> FlowLock:
    """Held shared by each `flowlang inbox --replay` while it runs (replays go on side by side), and taken
    by a serve at its start before it reads the deliveries to run (wait_for_replays)."""
    return FlowLock(folder, "flowlang inbox --replay", "replay.lock")


def wait_for_replays(folder: Path) -> None:
    """Wait for the replays going on to end. A replay marks its delivery 'running' until its run has ended,
    and a serve starting meanwhile ran it again (a delivery run twice, by the replay and by serve, which
    takes 'running' for one a crash cut short). A replay that starts once this serve holds serve.lock sees
    it (serve_holds) and runs no delivery that serve runs."""
    lock = replay_lock_file(folder)
    try:
        lock.acquire()
    except LockedError:
        try:
            pid = f" (pid {int(lock.path.read_text().strip())})"
        except (OSError, ValueError):
            pid = ""
        log.warning(f"waiting for the flowlang inbox --replay{pid} running a delivery of {folder} to end")
        lock.acquire(patience=math.inf)
    lock.release()


def serving_line(flows: int, folder: Path, base: str, state: Path, waiting: int) -> str:
    """What serve logs once it listens ('1 deliveries waiting' before: each count as one or many)."""
    waits = "" if not waiting else f", {waiting} deliveries waiting in the inbox" if waiting != 1 else \
        ", 1 delivery waiting in the inbox"
    return (f"serving {flows} flow{'s' if flows != 1 else ''} of {folder} on {base} (console {base}/, state "
            f"{state}{waits})")


class Service:
    """One serve process."""

    def __init__(self, options: ServeOptions) -> None:
        if options.max_pending < 1:
            raise UsageError("--max-pending must be 1 or more")
        if not 0 <= options.port <= 65535:  # the bind's OverflowError was an internal error
            raise UsageError(f"--port must be from 0 to 65535 (0 picks a free one), not {options.port}")
        if not 0 < options.body_timeout < math.inf:
            raise UsageError("--body-timeout must be a number of seconds above 0")
        self.options = options
        self.flows: list[ServedFlow] = load_folder(options.folder, options.secrets, None, options.secret_providers)
        self.folder = state_folder(options.folder, options.state_dir)
        for served in self.flows:
            served.prepare(self.folder)
        self.clock = options.clock or clock_from(os.environ.get(CLOCK_ENV))
        self.metrics = Metrics()
        self.inbox = Inbox(self.folder)  # first: a folder that cannot hold it is said by it
        try:
            self.lock = serve_lock(self.folder)
            wait_for_replays(self.folder)
        except (UsageError, StoreError):
            self.inbox.close()
            raise
        self.runs = Runs(self.flows, self.inbox, self.folder, options.secrets, self.metrics, options.secret_providers,
                         Limits(max_record_seconds=options.max_record_seconds), options.project)
        self.metrics.watch_depth(lambda: self.runs.pending)
        self.scheduler = Scheduler(self.runs, self.inbox, self.clock)
        self.state = ServeState({f.route: f for f in self.flows}, self.inbox, self.runs, self.metrics,
                                options.max_pending, options.body_timeout)
        self.state.extra["scheduler"] = self.scheduler
        self.state.extra["state_dir"] = self.folder
        self.state.extra["folder"] = options.folder
        self.state.extra["console_token"] = options.console_token
        self.app = build_app(self.state)
        from flowlang.serve.console import add_console

        add_console(self.app)
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> int:
        """Start everything; returns the port it listens on."""
        self.runs.start()
        self.scheduler.start()
        # keepalive_timeout: a connection that has sent no whole request's headers that long after it opened or
        # after its last answer (idle, or stalled in its headers) is closed; aiohttp's default kept it an hour
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=HTTP_SHUTDOWN_GRACE, keepalive_timeout=self.options.body_timeout,
                                     logger=http_logger(), auto_decompress=False)  # body_encoding.py
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            self.runs.stop(5)
            self.inbox.close()
            raise UsageError(f"cannot listen on {self.options.host}:{self.options.port}: {e.strerror}") from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.options.port
        base = f"http://{self.options.host}:{port}"
        for f in self.flows:
            if f.webhook is not None:
                schemes = ", ".join(s.preset for s in f.schemes)
                # the URL as a provider's webhook settings take it ('my orders.flow': /hooks/my%20orders)
                log.info(f"{f.route}: POST {base}/hooks/{quote(f.route)} (verify {schemes}, "
                         f"concurrency {f.concurrency})")
                for warning in start_warnings(f.flow):
                    log.warning(f"{warning.source.location(warning.span)}: {warning.message}")
        waiting = self.runs.pending
        log.info(serving_line(len(self.flows), self.options.folder, base, self.folder, waiting))
        return int(port)

    async def run(self) -> int:
        await self.start()
        purging = asyncio.get_running_loop().create_task(self.purge_done_deliveries())
        await self._stop.wait()
        purging.cancel()
        await self.shutdown()
        return 0

    async def purge_done_deliveries(self, every: float = PURGE_EVERY) -> None:
        """At start, then every `every` seconds: the inbox forgets deliveries done more than DONE_KEPT_DAYS ago
        (else it grows by every delivery, body and all, for as long as serve runs)."""
        while True:
            try:
                purged = await asyncio.wrap_future(self.inbox.purge_done())
            except StoreError as e:  # a full disk, say: said, and serve goes on (the next purge tries again)
                log.warning(f"the inbox could not purge old deliveries: {e}")
            else:
                if purged:
                    log.info(f"inbox: purged {purged} deliver{'ies' if purged != 1 else 'y'} done more than "
                             f"{DONE_KEPT_DAYS} days ago")
            await asyncio.sleep(every)

    async def shutdown(self) -> None:
        log.info("stopping: new deliveries get 503; running jobs finish; waiting deliveries stay in the inbox")
        self.state.stopping = True
        await asyncio.get_running_loop().run_in_executor(None, self.runs.stop, None)
        if self._runner is not None:
            await self._runner.cleanup()
        self.inbox.close()
        self.lock.release()
        log.info("stopped")
