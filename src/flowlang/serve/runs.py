"""The runs of a served folder, on a thread and event loop of their own (the HTTP server stays quick
while flows work): each flow's deliveries in arrival order, up to the flow's concurrency at once; ticks;
run-now and retry from the console. Every run is a job in the flow's store (kinds webhook, scheduled,
run, retry) with the same lock, state, error store and logs as `flowlang run`."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from flowlang.api import Flow, SecretProviders
from flowlang.environment import command_path
from flowlang.errors import FlowError, LockedError
from flowlang.runner import Result
from flowlang.runtime.charsets import charset_of
from flowlang.runtime.jsoncodec import JsonDataError, loads
from flowlang.runtime.limits import Limits, StopFlag
from flowlang.runtime.masking import Masker
from flowlang.runtime.run import current_job_id
from flowlang.serve.flows import ServedFlow
from flowlang.serve.inbox import Delivery, Inbox
from flowlang.serve.metrics import Metrics

if TYPE_CHECKING:
    from flowlang.project import Project

log = logging.getLogger("flowlang.serve")
LOCKED_RETRY_SECONDS = 1.0
MAX_CUT_SHORT = 3  # runs of one delivery cut short in a row (serve killed while it ran) before it is given up


def parse_body(body: bytes, content_type: str) -> Any:
    """A delivery's body as the run's input: JSON, a form as an object, anything else as text; in the
    charset the Content-Type declares (`charset=iso-8859-1`: 'café' was read as UTF-8, 'caf\ufffd'), else
    UTF-8 (JSON's own detection of UTF-16 and -32 kept)."""
    return read_body(body, content_type)[0]


def read_body(body: bytes, content_type: str) -> tuple[Any, str | None]:
    """parse_body's input, and why a body its Content-Type says is JSON is not (then the input is its text)."""
    kind = content_type.split(";")[0].strip().lower()
    charset = charset_of(content_type)
    text = body.decode(charset or "utf-8", errors="replace")
    if kind == "application/x-www-form-urlencoded":  # the percent-escapes are bytes of the charset too
        form = parse_qs(text, keep_blank_values=True, encoding=charset or "utf-8", errors="replace")
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}, None
    if kind.endswith("json") or (not kind and text.lstrip()[:1] in ("{", "[")):
        try:
            return loads(body if charset in (None, "utf-8") else text.lstrip("\ufeff")), None
        except JsonDataError as e:
            return text, (f"its body is not JSON, though its Content-Type says {kind} ({e}), so the run's input is "
                          f"the body as text" if kind else None)
    return text, None


def trigger_value(d: Delivery) -> dict[str, Any]:
    return {"kind": "webhook", "id": d.delivery_id or str(d.id),
            "received_at": datetime.fromisoformat(d.received_at.replace("Z", "+00:00")), "headers": dict(d.headers)}


def summary(result: Result) -> str:
    s = result.stats
    return (f"{result.status} in {s.duration:.2f}s: read {s.read}, sent {s.sent}, failed {s.failed}")


def run_error(result: Result, masker: Masker) -> str | None:
    """Why a run failed, with its place in the flow (file:line:col) and the run's secrets masked: for the
    log and the inbox (the job in the store keeps the masked message too)."""
    error = result.error
    if error is None:
        return None
    location = getattr(error, "location", None)
    return masker.mask(f"{location}: {error.message}" if location else error.message)


def log_run(route: str, flow_name: str, what: str, result: Result, masker: Masker) -> None:
    """The job's summary line: carries the flow and the job (OPERATIONS.md 10), at info when the run was
    ok, warning when records failed, error when the run failed."""
    said = run_error(result, masker)
    level = {"ok": logging.INFO, "partial": logging.WARNING}.get(result.status, logging.ERROR)
    text = f"{route}: job {result.job_id} ({what}) {summary(result)}" + (f": {said}" if said is not None else "")
    log.log(level, text, extra={"flow": flow_name, "job_id": result.job_id,
                                "summary": {**result.stats.as_dict(), "kind": result.kind}})


async def run_delivery(served: ServedFlow, d: Delivery, inbox: Inbox, state_dir: Path | None,
                       secrets: Mapping[str, str], collect: bool = False, stop: StopFlag | None = None,
                       providers: SecretProviders | None = None,
                       started: Callable[[int | None], None] | None = None, masker: Masker | None = None,
                       limits: Limits | None = None) -> Result:
    """Run one delivery as a webhook job and record how it ended in the inbox (`started` is given the job's
    id once the job is recorded and its first statement is about to run)."""
    flow = served.flow
    masker = masker if masker is not None else Masker()  # learns the run's secrets
    body, problem = read_body(d.body, d.content_type)
    if problem is not None:  # the flow then failed with 'cannot read field 'orders' of string', and nothing said why
        log.warning(f"{served.route}: delivery {d.id}: {problem}", extra={"flow": flow.name})
    options = flow.options(input=body, secrets=secrets, stop=stop,
                           secret_providers=providers, masker=masker, limits=limits)
    options.trigger = trigger_value(d)
    def job_started(_ctx: object) -> None:
        job_id = current_job_id()
        inbox.job_started(d.id, job_id)  # written by the inbox's writer, in order with the marks
        if started is not None:
            started(job_id)

    setup = flow.setup(state_dir, None, collect, job_started)
    setup.lock = served.concurrency == 1
    result = await flow.run_job(options, setup, "webhook")
    if collect:  # the answer of respond: "outputs" shows them: masked as a run's stdout masks them
        result.outputs = [masker.mask_value(o) for o in result.outputs]
    if result.status == "interrupted":
        await asyncio.wrap_future(inbox.mark(d.id, "waiting"))
    else:
        status = "failed" if result.status == "failed" else "done"
        message = run_error(result, masker) or (
            failed_records(len(result.errors), served) if result.errors else None)
        if message is not None and problem is not None:
            message += f" ({problem})"
        await asyncio.wrap_future(inbox.mark(d.id, status, result.job_id, message))
    log_run(served.route, flow.name, f"webhook {d.delivery_id or d.id}", result, masker)
    return result


def failed_records(n: int, served: ServedFlow) -> str:
    """A delivery's note in the inbox when records of its run failed: how many, and the command that lists
    them, with the flow's path as a command takes it where serve started (`flows/orders.flow`; quoted for a
    shell where it needs it: `'my flows/orders.flow'`)."""
    path = served.flow.path if served.flow.path is not None else Path(f"{served.route}.flow")
    return f"{n} record{'s' if n != 1 else ''} failed (flowlang errors {command_path(path)})"


class FlowQueue:
    """One flow's waiting deliveries and how many of its runs are going (any kind)."""

    def __init__(self, served: ServedFlow) -> None:
        self.served = served
        self.waiting: deque[Delivery] = deque()
        self.running = 0
        self.waiters: dict[int, Future[Result | None]] = {}
        self.starts: dict[int, Future[int | None]] = {}  # the job's id, once the delivery's job has started

    @property
    def idle(self) -> bool:
        """No run going and none waiting (read from any thread: a hint, not a promise)."""
        return self.running == 0 and not self.waiting


class Runs:
    """The thread that runs jobs. Its methods are safe to call from other threads unless they say not."""

    def __init__(self, flows: list[ServedFlow], inbox: Inbox, state_dir: Path | None, secrets: Mapping[str, str],
                 metrics: Metrics, providers: SecretProviders | None = None, limits: Limits | None = None,
                 project: Project | None = None) -> None:
        self.project = project  # flowlang.toml: its [alerts] are sent for serve's jobs as for flowlang run's
        self.flows = {f.route: f for f in flows}
        self.queues = {f.route: FlowQueue(f) for f in flows}
        self.inbox = inbox
        self.state_dir = state_dir
        self.secrets = dict(secrets)
        self.providers = providers
        self.limits = limits  # every run's (serve --max-record-seconds)
        self.metrics = metrics
        self.loop = asyncio.new_event_loop()
        self.stopping = False
        self._pending = 0
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._main, name="flowlang-runs", daemon=True)
        self.stop_flag = StopFlag()  # requested on a second SIGTERM: running jobs end after their in-flight records

    # ---- thread --------------------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        orphans: dict[str, int] = {}
        for d in self.inbox.waiting():
            if d.status == "running" and self._given_up(d):
                continue
            if d.flow in self.queues:
                self.reserve()
                self.queues[d.flow].waiting.append(d)
            else:
                orphans[d.flow] = orphans.get(d.flow, 0) + 1
        for flow, n in sorted(orphans.items()):  # kept, never dropped; but said, not left waiting unseen
            many = f"{n} deliveries" if n != 1 else "1 delivery"
            log.warning(f"{many} of '{flow}' wait in the inbox, but {flow}.flow is no longer in the folder: kept, "
                        f"not run (put the flow back to run them; `flowlang inbox DIR --flow {flow}` lists them)")
        self._thread.start()
        for route in self.queues:
            self.loop.call_soon_threadsafe(self._pump, route)

    def _given_up(self, d: Delivery) -> bool:
        """A delivery whose run was cut short MAX_CUT_SHORT times in a row is not run again at start: one whose
        run kills serve (the OOM killer, a crash) was run at every restart, for ever, its sends before the kill
        sent again each time and every delivery of the flow behind it never run. It is kept, failed, for
        `flowlang inbox --replay`."""
        times = self.inbox.was_cut_short(d.id).result()
        if times < MAX_CUT_SHORT:
            return False
        why = (f"its run was cut short {times} times in a row (serve ended while it ran: killed, out of memory or "
               f"crashed), so serve does not run it again at start")
        self.inbox.mark(d.id, "failed", d.job_id, why).result()
        log.error(f"{d.flow}: delivery {d.id}: {why}: kept as failed (`flowlang inbox DIR --replay {d.id}` runs it "
                  f"again)", extra={"flow": d.flow})
        return True

    def call(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        """Run a coroutine on the runs loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """(On the runs loop.) A task kept until it ends."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        while any(q.running for q in self.queues.values()) or [t for t in self._tasks if not t.done()
                                                                  and t is not asyncio.current_task()]:
            await asyncio.sleep(0.05)

    async def _cancel_rest(self) -> None:
        """The schedules' loops (and anything else still waiting) end now."""
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def stop(self, timeout: float | None = None) -> None:
        """Start nothing new, let running jobs finish, then end the thread (waiting deliveries stay)."""
        self.stopping = True
        if self._thread.is_alive():
            try:
                self.call(self._drain()).result(timeout)
            except TimeoutError:
                log.warning("runs still going after the stop timeout; leaving them")
            self.call(self._cancel_rest()).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    def stop_runs(self, reason: str) -> None:
        self.stop_flag.request(reason)

    # ---- pending count (back-pressure) ----------------------------------------------------------
    def reserve(self) -> None:
        with self._lock:
            self._pending += 1

    def release(self) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def pending(self) -> int:
        """Deliveries waiting: accepted (or being committed) and their run not started yet (SERVE.md's
        back-pressure counts these against --max-pending; a running one does not)."""
        return self._pending

    # ---- deliveries -----------------------------------------------------------------------------
    def enqueue(self, delivery: Delivery, waiter: Future[Result | None] | None = None,
                started: Future[int | None] | None = None) -> None:
        """A committed delivery joins its flow's queue (any thread); `started` is set to its job's id when
        the job starts (to None when the delivery ends without one)."""
        self.loop.call_soon_threadsafe(self._enqueue, delivery, waiter, started)

    def _enqueue(self, delivery: Delivery, waiter: Future[Result | None] | None,
                 started: Future[int | None] | None = None) -> None:
        q = self.queues[delivery.flow]
        # committed: its body waits in the inbox, not in memory (read again when its run starts)
        q.waiting.append(replace(delivery, body=b"", lean=True))
        if waiter is not None:
            q.waiters[delivery.id] = waiter
        if started is not None:
            q.starts[delivery.id] = started
        self._pump(delivery.flow)

    def _pump(self, route: str) -> None:
        q = self.queues[route]
        while not self.stopping and q.waiting and q.running < q.served.concurrency:
            d = q.waiting.popleft()
            q.running += 1
            self.release()  # its run starts: it no longer waits (--max-pending counts those that wait)
            self.spawn(self._deliver(q, d))

    async def _deliver(self, q: FlowQueue, d: Delivery) -> None:
        result: Result | None = None
        try:
            self.inbox.mark(d.id, "running")  # committed alongside; a crash reruns waiting and running alike
            q.served.take_edit()
            result = await self._run_delivery(q, d)
        except LockedError as e:
            log.info(f"{q.served.route}: delivery {d.id} waits: {e.message}", extra={"flow": q.served.flow.name})
            await asyncio.sleep(LOCKED_RETRY_SECONDS)
            self.reserve()  # it waits again
            q.waiting.appendleft(d)
            q.running -= 1
            self._pump(q.served.route)
            return
        except FlowError as e:
            log.error(f"{q.served.route}: delivery {d.id} cannot run: {e.message}", extra={"flow": q.served.flow.name})
            await asyncio.wrap_future(self.inbox.mark(d.id, "failed", None, e.message))
            self.metrics.run_done(q.served.route, "failed", None)
        except Exception as e:  # a bug in flowlang: keep the delivery, say so, keep serving
            log.exception(f"{q.served.route}: delivery {d.id}: internal error (a bug in flowlang): {e}",
                          extra={"flow": q.served.flow.name})
            await asyncio.wrap_future(self.inbox.mark(d.id, "failed", None, f"internal error: {e}"))
        finally:
            _set(q.starts.pop(d.id, None), None)
            waiter = q.waiters.pop(d.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(result)
        q.running -= 1
        self.metrics.delivered(q.served.route, d.received_at)
        self._pump(q.served.route)

    async def _run_delivery(self, q: FlowQueue, d: Delivery) -> Result:
        start = q.starts.get(d.id)
        d = self.inbox.with_body(d)
        masker = Masker()
        result = await run_delivery(q.served, d, self.inbox, self.state_dir, self.secrets, d.id in q.waiters,
                                    self.stop_flag, self.providers,
                                    None if start is None else lambda job: _set(start, job), masker=masker,
                                    limits=self.limits)
        self.metrics.run_done(q.served.route, result.status, result)
        self.alert(q.served.flow, result, masker)
        return result

    def alert(self, flow: Flow, result: Result, masker: Masker) -> None:
        """(On the runs loop.) The alerts of flowlang.toml for a job that ended so (failed, partial, ...), as
        `flowlang run` sends them: a nightly run moved from cron to a `trigger schedule` told nobody when it
        failed. Sent in a task of their own, so a slow mail server holds back no run (a stop waits for them)."""
        project = self.project
        if project is None or project.alerts is None or result.status not in project.alerts.on:
            return
        from flowlang.alerts import alert, report_of
        from flowlang.runtime.secrets import SecretChain

        chain = SecretChain(project.secret_providers(self.secrets, dict(os.environ)), on_value=masker.add)
        file = command_path(flow.path) if flow.path is not None else flow.name
        report = report_of(flow.name, file, result, masker.mask)
        self.spawn(alert(project, report, self.state_dir, chain, masker.mask, log))

    def replay(self, delivery_id: int) -> Delivery:
        """Run an inbox delivery again (any thread); it joins the end of its flow's queue."""
        d = self.inbox.get(delivery_id)
        if d is None:
            raise KeyError(delivery_id)
        self.inbox.mark(d.id, "waiting").result()
        self.reserve()
        self.enqueue(d)
        return d

    # ---- other jobs ---------------------------------------------------------------------------
    def busy(self, route: str) -> bool:
        return self.queues[route].running > 0

    async def run_job(self, route: str, kind: str, trigger: dict[str, Any] | None = None,
                      error_id: int | None = None, retry: bool = False) -> Result:
        """(On the runs loop.) A scheduled tick, a console run-now, or a retry of errors."""
        q = self.queues[route]
        q.served.take_edit()
        flow = q.served.flow
        q.running += 1
        masker = Masker()
        try:
            options = flow.options(secrets=self.secrets, stop=self.stop_flag, secret_providers=self.providers,
                                   masker=masker, limits=self.limits)
            options.trigger = trigger or {"kind": kind}
            setup = flow.setup(self.state_dir, None, False)
            if retry:
                result = await flow.retry_job(options, setup, error_id)
            else:
                result = await flow.run_job(options, setup, kind)
        finally:
            q.running -= 1
            self._pump(route)
        log_run(route, flow.name, kind, result, masker)
        self.metrics.run_done(route, result.status, result)
        self.alert(flow, result, masker)
        return result


def _set(future: Future[int | None] | None, value: int | None) -> None:
    if future is not None and not future.done():
        future.set_result(value)
