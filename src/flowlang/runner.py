"""Runs a compiled flow as a job: params, the run lock, state, the error store, host bindings,
connections, and the Result. `retry_errors` re-enters failed loop iterations from the store.

The runner gets a `CompiledFlow` and, in its `RunSetup`, a callback that loads child flows
(`run "other.flow"`); it knows nothing of files, parsing or checking (api.py does that)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flowlang import ast
from flowlang.check import CheckedModule
from flowlang.check.secret_names import secret_uses
from flowlang.compile import CompiledModule, ProgramCompiler, find_loop, loop_stem, moved_errors, same_loops
from flowlang.compile.loops import LoopInfo
from flowlang.compile.steps import run_step
from flowlang.connectors.host import (
    DEFAULT_WRITE,
    HostConnection,
    argument_problem,
    check_binding_operations,
    operation_called,
    public_methods,
)
from flowlang.diagnostics import did_you_mean
from flowlang.environment import command_path
from flowlang.errors import (
    FlowError,
    FlowRuntimeError,
    Interrupted,
    LimitError,
    OutOfMemory,
    PagesRepeated,
    ResumeRefused,
    UsageError,
    internal_error,
    keep_memory_reserve,
)
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime import heap
from flowlang.runtime.checkpoints import Checkpoint, Checkpointer
from flowlang.runtime.field_misses import warnings as field_warnings
from flowlang.runtime.frame import Frame, counted
from flowlang.runtime.jsoncodec import JsonDataError, dumps, from_stored
from flowlang.runtime.keys import canonical_stored
from flowlang.runtime.limits import RUN_STOP, VALUE_ITEMS, HardStop
from flowlang.runtime.lock import FlowLock
from flowlang.runtime.masking import DERIVED, RUNNING_MASK, Masker, debug_exception
from flowlang.runtime.operators import NeedsMaterialization
from flowlang.runtime.outputs import Outputs
from flowlang.runtime.run import (
    PICKUP_FILE,
    READ_FAILED,
    RUNNING_JOB,
    SAVED_INPUT,
    SAVED_STATE,
    SAVED_STREAMS,
    RecordFailure,
    RunContext,
    RunOptions,
    restore_saved,
)
from flowlang.runtime.state_folder import state_dir_for
from flowlang.runtime.stats import Stats
from flowlang.runtime.store import (
    BYTES_AS_SIZE,
    SECRET_MASKED,
    SECRET_MASKED_NAMES,
    StateNotKept,
    Store,
    StoredError,
    masked_json,
    now_text,
)
from flowlang.runtime.tape import CURRENT, drawn
from flowlang.runtime.values import type_name
from flowlang.runtime.watchdog import WATCHDOG
from flowlang.status import ExitStatus, exit_status, resumed_failed_text

Output = Callable[[Any], None]
Body = Callable[[RunContext, Frame, CompiledModule, Store, int], Awaitable[None]]
log = logging.getLogger("flowlang.flow")
# a library's loggers print nothing of their own: the program that embeds flowlang chooses where its
# lines go (logging.basicConfig, its handlers); the CLI and serve put their own handler in place
logging.getLogger("flowlang").addHandler(logging.NullHandler())


@dataclass
class Result:
    """What a run did: ok (no run error, no failed record), outputs, record errors, stats."""

    ok: bool
    status: str  # ok, partial (some records failed), failed (a run-level error), interrupted (stopped on request)
    outputs: list[Any]
    errors: list[RecordFailure]
    stats: Stats
    job_id: int | None = None
    error: FlowError | None = None
    resolved: list[int] = field(default_factory=list)  # errors this job resolved (retried, or a later success)
    kind: str = "run"  # run, test (--limit), dry-run, retry, webhook, scheduled
    unreplayable: list[int] = field(default_factory=list)  # retry: errors whose loop changed (left open)
    needs_edit: list[int] = field(default_factory=list)  # retry: records that failed as read, not yet edited
    children: list[ChildReport] = field(default_factory=list)  # `run "child.flow"` jobs that had failed records
    resumed_from: int | None = None  # --resume: the job whose checkpoints this run continued
    resumable: bool = False  # the job left checkpoints: `flowlang run --resume` continues from them
    left_open: str | None = None  # retry: the errors it left open without replaying them (why it is not ok)
    resumed_failed: int = 0  # --resume: records the resumed job(s) kept as failed before the checkpoint, still open

    @property
    def test(self) -> bool:
        """A test job (--limit, --dry-run): it commits no state and does not move job.last_success_at."""
        return self.kind in TEST_KINDS

    @property
    def exit_status(self) -> ExitStatus:
        """What the CLI exits with after this run (flowlang.status)."""
        return exit_status(self)


TEST_KINDS = ("test", "dry-run")


@dataclass
class ChildReport:
    """A chained flow that finished with failed records (OPERATIONS.md 8)."""

    flow: str
    job_id: int | None
    failed: int
    status: str


@dataclass(frozen=True)
class CompiledFlow:
    """A flow checked against its run's bindings and compiled: what the runner runs."""

    key: str  # what identifies it in its state folder (state, jobs, errors, lock)
    name: str
    path: Path | None  # its file (None for text): a child flow's state folder is found from it
    base_dir: Path
    program: ProgramCompiler
    compiled: CompiledModule
    checked: CheckedModule  # what the checker found (the host bindings' operations, ...)


LoadChild = Callable[[Path], CompiledFlow]
"""Reads, checks (against no bindings) and compiles the flow a `run "other.flow"` line names."""


@dataclass
class RunSetup:
    """Where a run's outputs go and where its state lives."""

    state_dir: Path | None
    on_output: Output | None = None
    collect: bool = True
    logger: logging.Logger = field(default_factory=lambda: log)
    env: dict[str, str] = field(default_factory=dict)
    lock: bool = True  # take the flow's run lock (serve runs a flow several at once only when told to)
    load_child: LoadChild | None = None  # None: `run "other.flow"` is refused
    watch: Callable[[RunContext], None] | None = None  # given the run's context once it exists (progress)


def resolve_params(compiled: CompiledModule, given: dict[str, Any]) -> None:
    """Refuse unknown params and missing ones without default, before anything runs."""
    declared = [p.name for p in compiled.params]
    unknown = [k for k in given if k not in declared]
    if unknown:
        import difflib  # only when there is a mistake to name

        close = difflib.get_close_matches(unknown[0], declared, n=1, cutoff=0.6)
        raise UsageError(f"unknown param {', '.join(repr(u) for u in unknown)}: the flow declares "
                         f"{', '.join(declared) or 'no params'}" + (f"; did you mean '{close[0]}'?" if close else ""))
    for p in compiled.params:
        if p.name in given:
            given_param(p.name, p.node.default, given[p.name])
    missing = [p.name for p in compiled.params if p.default is None and p.name not in given]
    if missing:
        names = ", ".join(missing)
        raise UsageError(f"missing param {names}: give it with --param {missing[0]}=VALUE "
                         f"(or params={{'{missing[0]}': ...}} when embedding)")


def text_params(params: list[ast.Param]) -> set[str]:
    """The params whose default is a text (`param project = "1200"`, `param url = "{env.HOST}/api"`): the
    command line gives such a param its value as text, not read as JSON (`--param project=1200` is the
    text "1200": read as the number 1200, it reached the API as one, and Asana refused the task)."""
    return {p.name for p in params if isinstance(p.default, ast.Interpolated)
            or (isinstance(p.default, ast.Literal) and isinstance(p.default.value, str))}


def given_param(name: str, default: ast.Expr | None, value: Any) -> Any:
    """The value a param takes from what it was given (a time or a date param reads ISO 8601 text);
    a value of another kind than its default's is a UsageError (`param n is a number ...`)."""
    problem = _param_type_problem(name, default, value)
    if problem:
        raise UsageError(f"param {name} {problem}")
    return param_value(name, default, value)


def _param_type_problem(name: str, default: ast.Expr | None, value: Any) -> str | None:
    """A param whose default is a number, true/false, a list or an object (written as such) takes only
    that kind of value (a `--param n=abc` or `--param ids=1,2` is refused before the run, not found
    wrong in the middle of it)."""
    for literal, kind, example in ((ast.ListLit, "list", "[1, 2]"), (ast.ObjectLit, "object", '{"a": 1}')):
        if isinstance(default, literal) and type_name(value) != kind:
            article = "an" if kind == "object" else "a"
            return f"is {article} {kind} (its default is one), got {_show(value)} (as JSON: --param {name}='{example}')"
    if not isinstance(default, ast.Literal) or default.value is None or isinstance(default.value, str):
        return None
    shown = "true" if default.value is True else "false" if default.value is False else str(default.value)
    if isinstance(default.value, bool):
        if not isinstance(value, bool):
            return f"is true or false (its default is {shown}), got {_show(value)}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return f"is a number (its default is {shown}), got {_show(value)}"
    return None


# defaults that are a time or a date: these calls, one of them plus or minus a duration (now() - days(7)),
# or the fallback of a ?? (job.last_success_at ?? datetime(...))
MOMENT_CALLS = {"datetime": "datetime", "now": "datetime", "to_zone": "datetime", "parse_date": "datetime",
                "date": "date", "today": "date"}
DURATION_CALLS = ("days", "hours", "minutes", "seconds")


def _moment_kind(default: ast.Expr | None) -> str | None:
    if isinstance(default, ast.FuncCall):
        return MOMENT_CALLS.get(default.name)
    if (isinstance(default, ast.Binary) and default.op in (ast.BinOp.ADD, ast.BinOp.SUB)
            and isinstance(default.right, ast.FuncCall) and default.right.name in DURATION_CALLS):
        return _moment_kind(default.left)
    if isinstance(default, ast.Coalesce):  # job.last_success_at ?? datetime("2026-01-01T00:00:00Z")
        return _moment_kind(default.right)
    return None


def param_value(name: str, default: ast.Expr | None, value: Any) -> Any:
    """The value a param takes. A param whose default is a time (`datetime("2024-01-01T00:00:00Z")`,
    `now() - days(7)`) or a date (`today()`) reads ISO 8601 text given for it (`--param
    since=2024-05-01T00:00:00+02:00`) as datetime() and date() read it; before, the text stayed text and
    `since > d` failed the run. Another kind, or text that is no time, is refused before the run."""
    kind = _moment_kind(default)
    if kind is None or type(value) is (datetime if kind == "datetime" else date):
        return value
    from flowlang.runtime.builtins.registry import BuiltinError
    from flowlang.runtime.builtins.time import date_, datetime_

    word, example = ("a time", "2024-05-01T00:00:00Z") if kind == "datetime" else ("a date", "2024-05-01")
    if type(value) is not str:
        raise UsageError(f"param {name} is {word} (its default is one), got {_show(value)} (as ISO 8601 text: "
                         f"--param {name}={example})")
    try:
        return datetime_(value) if kind == "datetime" else date_(value)
    except BuiltinError as e:
        raise UsageError(f"param {name} is {word} (its default is one): {e.message.split(': ', 1)[-1]}") from None


def _show(value: Any) -> str:
    """A given param's value for a message: text as it was given, else its flowlang type (`null`,
    `list`, `object`), never a Python type name (`NoneType`)."""
    return repr(value) if isinstance(value, str) else type_name(value)


def _job_value(job_id: int | None, flow: str, started: str, last: str | None, dry: bool,
               params: dict[str, Any], trigger: dict[str, Any], kind: str = "run") -> dict[str, Any]:
    def moment(text: str | None) -> datetime | None:  # in UTC (a last success set with an offset by an older flowlang)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC) if text else None
    return {"id": job_id, "flow": flow, "kind": kind, "test": kind in TEST_KINDS, "started_at": moment(started),
            "last_success_at": moment(last), "dry_run": dry, "params": dict(params), "trigger": trigger,
            "plan": trigger.get("kind") == "plan"}


# Jobs that read job.last_success_at as the start of their window: refused when the clock is behind it
CLOCK_KINDS = ("run", "scheduled", "webhook", *TEST_KINDS)


def refuse_clock_behind(flow: str, last: str | None, now: str) -> None:
    """A clock earlier than the flow's last success (it ran once under a clock that was ahead, or this
    machine's clock went back) would make job.last_success_at a moment in the future: the window a
    delta reads from it would skip records. The job is refused (recorded as failed, exit 1) until the
    clock is right or the last success is set by hand."""
    if last is None:
        return
    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment(now) >= moment(last):
        return
    raise FlowRuntimeError(
        f"the clock of this machine ({now}) is behind the last success of {flow} ({last}): job.last_success_at "
        "would be in the future and a window read from it would skip records; set the clock right, or set the "
        f"last success by hand with `flowlang state FILE --last-success-at TIME` (the run was refused)", "value")


def job_kind(kind: str, options: RunOptions) -> str:
    """A run with --dry-run or --limit is a test job (OPERATIONS.md 6)."""
    if kind != "run":
        return kind
    if options.dry_run:
        return "dry-run"
    return "test" if options.limit is not None else "run"


async def module_body(ctx: RunContext, frame: Frame, compiled: CompiledModule, store: Store, job_id: int) -> None:
    """The ordinary body of a run: the module's top-level statements in order, stopping between them when a
    stop is requested (params are already in the frame, set by set_params; `flowlang retry` runs
    retry_body instead)."""
    await run_step(compiled.body, frame)


def binding_operations(checked: CheckedModule, bindings: Mapping[str, Any]) -> dict[str, set[str]]:
    """The operations the flow calls on each host binding, also on one that replaces a `use`."""
    used = {name: set(ops) for name, ops in checked.host_operations.items()}
    for node in checked.resolution.refs:
        if isinstance(node, ast.Operation) and node.connection in bindings and node.op:
            used.setdefault(node.connection, set()).add(node.op)
    return used


def binding_call_place(checked: CheckedModule, name: str, op: str) -> str:
    """file:line:col of the first `name.op(...)` of the flow (its own file, else where it is)."""
    places = [(node.span.start, checked.source.location(node.span)) for node in checked.resolution.refs
              if isinstance(node, ast.Operation) and node.connection == name and operation_called(node.op) == op]
    return min(places)[1] if places else checked.source.name


def binding_argument_problem(checked: CheckedModule, bindings: Mapping[str, Any]) -> str | None:
    """The first call of the flow (in the order of the file) whose arguments the binding's method does not
    take, by its signature, with its place: `lookup crm.find(mail: e)` of `def find(self, email)` failed
    every record with Python's "got an unexpected keyword argument 'mail'"; now the run is refused."""
    sends = {id(node.destination) for node in ast.walk(checked.module) if isinstance(node, ast.Send)}
    calls = sorted((node for node in checked.resolution.refs
                    if isinstance(node, ast.Operation) and node.connection in bindings), key=lambda n: n.span.start)
    for node in calls:
        positional = len(node.args) + (1 if id(node) in sends else 0)  # a send's record comes first
        problem = argument_problem(bindings[node.connection], node.op, positional,
                                   tuple(k.name for k in node.kwargs))
        if problem is not None:
            message, keyword = problem
            span = next((k.span for k in node.kwargs if k.name == keyword), node.span)
            return (f"{checked.source.location(span)}: the binding's method "
                    f"{node.connection}.{operation_called(node.op)}() {message}")
    return None


async def execute(flow: CompiledFlow, options: RunOptions, setup: RunSetup, kind: str = "run",
                  body: Body = module_body) -> Result:
    """Run one job of `flow` (checked against the bindings in `options`) and return its Result."""
    program, compiled = flow.program, flow.compiled
    for name, used in binding_operations(flow.checked, options.bindings).items():
        missing = check_binding_operations(name, options.bindings[name], used)
        if missing:
            methods = public_methods(options.bindings[name])
            hint = did_you_mean(missing[0], methods)
            unnamed = DEFAULT_WRITE in missing and "" in used  # `send r to crm`: crm.write(r)
            raise UsageError(f"{binding_call_place(flow.checked, name, missing[0])}: the binding '{name}' has no "
                             f"method {', '.join(repr(m) for m in missing)}"
                             + (f" (a send to {name} that names no operation calls {name}.{DEFAULT_WRITE}(record); "
                                f"name the method: send r to {name}.<method>)" if unnamed else "")
                             + (f"; {hint}" if hint else "")
                             + f" (its methods: {', '.join(methods) or 'none'})")
    refused = binding_argument_problem(flow.checked, options.bindings)
    if refused:
        raise UsageError(refused)
    resolve_params(compiled, dict(options.params))
    VALUE_ITEMS.set(options.limits.max_value_items)  # for the builtins, in this job's task and its children
    RUN_STOP.set(options.stop)  # so that a builtin's long work (a sort) stops too
    store = Store(setup.state_dir)
    lock = FlowLock(setup.state_dir, flow.key) if setup.state_dir is not None and setup.lock else None
    try:
        if lock is not None:
            lock.acquire()
        holds = heap.frozen()  # the heap before the run: no full collection of the run walks it
        try:
            return await _job(flow, program, compiled, options, setup, store, kind, body)
        finally:
            if holds:
                heap.thaw()
            if lock is not None:
                lock.release()
    finally:
        store.close()


async def _job(flow: CompiledFlow, program: ProgramCompiler, compiled: CompiledModule, options: RunOptions,
               setup: RunSetup, store: Store, kind: str, body: Body) -> Result:
    started_clock = time.monotonic()
    kind = job_kind(kind, options)
    known = options.masker if options.masker is not None else Masker()
    for value in options.secrets.values():
        known.add(value)
    keeps = kind == "run"  # a real run keeps checkpoints; tests, retries, serve's jobs do not (TESTING.md 4)
    # serve's jobs look too: while a stopped run's checkpoint waits, they append to its files (below)
    saved = store.checkpoints.of(flow.key) if kind in ("run", "webhook", "scheduled", *TEST_KINDS) else []
    resume_from = resume_points(flow, saved, store) if options.resume else {}
    job_id, started = store.start_job(flow.key, dict(options.params), options.dry_run, kind, known.mask)
    try:
        if kind in CLOCK_KINDS:
            refuse_clock_behind(flow.name, store.last_success_at(flow.key), started)
        return await _started_job(flow, program, compiled, options, setup, store, kind, body, job_id, started,
                                  started_clock, Resumption(keeps, saved, resume_from))
    except Exception as e:  # setting up the run failed (a damaged store row, a bug): the job is recorded
        debug_exception(log, "the run could not start", e, known.mask)
        error = e if isinstance(e, FlowError) else internal_error(e)
        message = masked_error(error, known.mask)
        store.finish_job(job_id, "failed", {}, message, flow.key, None, known.mask, dict(options.params))
        return Result(False, "failed", [], [], Stats(), job_id, error, kind=kind)
    finally:
        WATCHDOG.job_ended(job_id)  # once the job is recorded: until then a hard stop records it
        store.ended_here(job_id)  # one cut off without its end recorded is crashed for the next job


async def _started_job(flow: CompiledFlow, program: ProgramCompiler, compiled: CompiledModule, options: RunOptions,
                       setup: RunSetup, store: Store, kind: str, body: Body, job_id: int, started: str,
                       started_clock: float, resumption: Resumption) -> Result:
    """The job once it is in the store: its context, its body, and how it ended."""
    keeps = resumption.keeps
    collected = Outputs()
    outputs = collected.values
    resolved: list[int] = []

    tape = options.tape

    def emit(value: Any) -> None:
        if tape is not None:
            tape.output(value)
        if setup.collect:
            outputs.append(value)  # not copied: see runtime/outputs.py
        if setup.on_output is not None:
            try:
                setup.on_output(value)
            except (JsonDataError, RecursionError) as e:  # flowlang's JSON of a value nested thousands deep
                problem = str(e) if isinstance(e, JsonDataError) else "the value nests too deeply"
                raise FlowRuntimeError(f"cannot write this output: {problem}", "value") from e
            except FlowRuntimeError:  # the CLI's own words (stdout cannot be written: a full disk)
                raise
            except Exception as e:  # the embedder's callback fails the record (or the run), as a method does
                raise FlowRuntimeError(f"on_output raised {type(e).__name__}: {e}", "connector") from e

    ctx: RunContext

    stored_now: set[int] = set()  # the errors this run stored or replaced: a second record of one key says so
    told: set[str] = set()  # the loops whose records of one key were told of
    # open errors an earlier version kept under another text of their key ("1.0" for 1: runtime/keys.py),
    # by (loop identity, canonical key): a failure of the key replaces them, a success resolves them
    kept_as: dict[tuple[str, str], list[str]] = {}

    def key_again(loop_id: str, key: str, what: str) -> None:
        """Two records of one run with one key: one open error per key (OPERATIONS.md 2) keeps the second's,
        so when they are different records (an `id` that is not unique: a customer's id on each of its
        sales rows) the first would be lost without a word."""
        if loop_id not in told:
            told.add(loop_id)
            entry = flow.compiled.loops.get(loop_id)
            where = entry.info.location if entry is not None else None
            ctx.log("warn", f"two records of the loop{' at ' + where if where else ''} in this run have the key "
                    f"{key}: {what} (one open error per key); if they are different records, give the loop a "
                    "key that tells them apart (for each ... key ...)", where)

    def on_failure(failure: RecordFailure) -> None:
        if not options.dry_run:
            also = kept_as.get((failure.loop_id, failure.key), ()) if failure.loop_id and failure.key else ()
            failure.error_id = store.add_error(job_id, failure, ctx.mask, ctx.limits.max_error_bytes, also)
            if failure.key is not None and failure.loop_id is not None:  # a later record of its key, in this
                ctx.open_keys.setdefault(failure.loop_id, set()).add(failure.key)  # run too, resolves it
                if failure.error_id in stored_now:
                    key_again(failure.loop_id, failure.key, f"the second failed too, and its error replaced the "
                              f"first's: error {failure.error_id} keeps the second record only")
                stored_now.add(failure.error_id)

    def on_success(loop_id: str, key: str) -> None:
        ids = store.resolve_key(flow.key, loop_id, key, job_id, kept_as.pop((loop_id, key), ()))
        resolved.extend(ids)
        if stored_now.intersection(ids):
            key_again(loop_id, key, "the first failed, and the second went through and resolved its error, "
                      "so the first was not sent")
        for error_id in ids:
            ctx.log("info", f"error {error_id} (key {key}) resolved: the record went through")

    env = dict(options.env) if options.env is not None else setup.env
    token = CURRENT.set(tape)
    running = RUNNING_JOB.set((flow.name, job_id))
    job = drawn("job", lambda: _job_value(job_id, flow.name, started, store.last_success_at(flow.key),
                                          options.dry_run, dict(options.params),
                                          dict(options.trigger or {"kind": kind}), kind))
    ctx = RunContext(
        flow=flow.key, base_dir=flow.base_dir, options=options, env=env, job=job,
        state=drawn("state", lambda: store.load_state(flow.key)), emit=emit, on_failure=on_failure,
        logger=setup.logger,
    )
    ctx.ledger = store.ledger
    if flow.path is not None:
        ctx.flow_file = command_path(flow.path)
    derived = DERIVED.set(ctx.masker.learn_derived)
    running_mask = RUNNING_MASK.set(ctx.mask)
    if setup.collect:
        ctx.before_change = collected.before_change
    resumed_from = start_checkpoints(ctx, store, flow, job_id, kind, keeps, resumption.saved,
                                     resumption.resume_from, ctx.mask)
    if not options.dry_run:
        pointed = store.open_loops(flow.key)
        moved = moved_errors(flow.compiled.loops, pointed)
        if moved:  # an edit added or took away loops: the open errors follow their loops (OPERATIONS.md 3)
            store.move_errors(flow.key, moved)
        # errors whose loop cannot be told now: a success in the loop that has their identity resolves none
        lost = frozenset(p for p in pointed if p[1] is not None and find_loop(flow.compiled.loops, *p) is None)
        ctx.open_keys = store.open_keys(flow.key, lost, kept_as)
        ctx.on_success = on_success
        purged = store.purge_resolved(flow.key)
        if purged:
            ctx.log("info", f"purged {purged} resolved error{'s' if purged != 1 else ''} past the retention window")
    # a retry, and a run that continues a checkpoint, never erase what the runs before them wrote; nor does a
    # test run or a serve job (webhook, scheduled) while a checkpoint waits: the resume appends to what the
    # stopped run wrote
    ctx.appending = kind == "retry" or resumed_from is not None or (not keeps and bool(resumption.saved))
    ctx.errors_open = store.still_open
    ctx.held_files = lambda connection: store.held_files(flow.key, connection)
    ctx.set_held_files = lambda connection, files: store.set_held_files(flow.key, connection, files)
    if setup.watch is not None:
        setup.watch(ctx)
    children: list[ChildReport] = []
    ctx.run_child = child_runner(setup.load_child, options, setup, children) \
        if setup.load_child is not None else None
    # collected only (no tape, no on_output): what emit does then is this append, without emit's call
    sink = outputs.append if tape is None and setup.on_output is None and setup.collect else emit
    out = counted(ctx, sink)
    ctx.frames = [Frame([None] * m.checked.frame.size, None, ctx, out) for m in program.modules]
    ctx.bindings = {name: HostConnection(name, obj, ctx) for name, obj in options.bindings.items()}
    if tape is not None:
        ctx.bindings = {name: tape.wrap(conn) for name, conn in ctx.bindings.items()}
    main = ctx.frames[compiled.index]
    error: FlowError | None = None
    keep_memory_reserve()  # the room to say so, should the memory run out (given back then)
    closing: list[bool] = []  # set once the body is over: the hard stop cancels only the body
    timers = deadline_timers(options, flow.key, setup.state_dir, job_id, lambda: not closing)
    try:
        ctx.observer.run_started(flow.name, job_id, kind)
        await asyncio.to_thread(ctx.secrets.prefetch, secret_uses(compiled.checked))
        set_params(compiled, main, dict(options.params))
        await body(ctx, main, compiled, store, job_id)
        ctx.flush_writes()  # a write that fails here fails the run (the records may be missing)
        ctx.check_stop()
        ctx.body_finished = True  # connections that settle sources at close (file pick-up) may now
    except FlowRuntimeError as e:
        error = e
    except HardStop as e:
        error = hard_stop_error(options, e.reason)
    except asyncio.CancelledError:
        if not options.stop.hard:
            raise
        running_task = asyncio.current_task()
        if running_task is not None:
            running_task.uncancel()  # taken as the hard stop: the closing below may await again
        error = hard_stop_error(options, options.stop.hard)
    except NeedsMaterialization as e:
        error = FlowRuntimeError(f"the record stream {e.stream.label} was used outside `for each` "
                                 "before it was read; keep it in a variable with call ... as", "internal")
    except Exception as e:  # a bug, or bad input nothing caught: the run fails, the job is recorded
        debug_exception(log, "internal error in a run", e, ctx.mask)
        error = e if isinstance(e, FlowError) else internal_error(e)
    finally:
        closing.append(True)
        for timer in timers:
            WATCHDOG.cancel(timer)
        await close_all(ctx)  # a close that hangs (a query stuck in C): the watchdog still records the job
        CURRENT.reset(token)
        RUNNING_JOB.reset(running)
        DERIVED.reset(derived)
        RUNNING_MASK.reset(running_mask)
    if isinstance(error, OutOfMemory):  # the flow's variables go now: recording the job needs room
        for frame in ctx.frames:
            frame.slots[:] = [None] * len(frame.slots)
    ctx.log_failure_groups()
    ctx.log_ledger_skips()
    for warning, location in field_warnings(ctx.field_misses, ctx.field_reached, ctx.stats):
        ctx.log("warn", warning, location)
    failures = ctx.failures
    status = "failed" if error is not None else ("partial" if failures or children else "ok")
    # a resumed run finishes the one run the stopped job began: the records that job kept as failed before its
    # checkpoint (still open) make it partial, as they would have made that run (no alert told of them: it was killed)
    resumed_failed = store.open_of_resumed(flow.key, resumed_from) if resumed_from is not None and error is None else 0
    if resumed_failed and status == "ok":
        status = "partial"
    if isinstance(error, Interrupted):
        status = "interrupted"
    left_open = ctx.left_open if error is None else None
    if left_open is not None and (status == "ok" or left_open[0] == "failed"):
        status = left_open[0]  # a retry that left errors open: as its exit status says (3, or 1)
    if tape is not None:
        tape.finish(status, len(failures))
    ctx.stats.duration = time.monotonic() - started_clock
    commit = error is None and kind not in (*TEST_KINDS, "retry") and not options.dry_run
    message = masked_error(error, ctx.mask) if error is not None else left_open[1] if left_open else None
    if resumed_failed and message is None:
        message = resumed_failed_text(resumed_failed, resumed_from)
    finished = status in ("ok", "partial")
    try:
        store.finish_job(job_id, status, ctx.stats.as_dict(), message, flow.key, ctx.state if commit else None,
                         ctx.mask, dict(options.params), clear_checkpoints=keeps and finished)
    except StateNotKept as e:  # the run did its work, but its state cannot be committed: a run-level error
        error, status, finished = FlowRuntimeError(e.message, "value"), "failed", False
        message = masked_error(error, ctx.mask)
        store.finish_job(job_id, status, ctx.stats.as_dict(), message, flow.key, None, ctx.mask,
                         dict(options.params))
    ctx.observer.run_finished(status, ctx.stats, message)
    resumable = (keeps and not finished and not isinstance(error, ResumeRefused | PagesRepeated)
                 and bool(store.checkpoints.of(flow.key)))
    return Result(status == "ok", status, outputs, failures, ctx.stats, job_id, error, resolved, kind,
                  children=children, resumed_from=resumed_from, resumable=resumable,
                  left_open=left_open[1] if left_open else None, resumed_failed=resumed_failed)


def masked_error(error: FlowError, mask: Callable[[str], str]) -> str:
    """The error that ended a run, masked where it stands: Result.error is what an embedding program
    logs or shows (a binding's or a driver's exception may hold a secret's text, as record failures
    may); its message, its text as an exception, and the message returned."""
    error.message = mask(error.message)
    error.args = (error.message, *error.args[1:])
    return error.message


@dataclass(frozen=True)
class Resumption:
    """What a job knows of checkpoints before it starts (TESTING.md 4): whether it keeps them, the saved
    ones, and those `--resume` continues from."""

    keeps: bool
    saved: list[Checkpoint]
    resume_from: dict[str, Checkpoint]


def resume_points(flow: CompiledFlow, saved: list[Checkpoint], store: Store) -> dict[str, Checkpoint]:
    """`--resume`: the checkpoints the flow's loops continue from, by their identity now. A checkpoint
    whose loop is no longer in the flow (or whose list expression changed) cannot be used: refused
    before anything runs, since starting that loop again could send its records twice."""
    points: dict[str, Checkpoint] = {}
    for point in saved:
        if point.damaged is not None:
            raise UsageError(f"cannot resume: the checkpoint job {point.job_id} kept of the loop `{point.loop_id}` is "
                             f"damaged in the store ({point.damaged}); run without --resume to start from the "
                             "beginning")
        entry = find_loop(flow.compiled.loops, point.loop_id)
        identity = entry.info.identity if entry is not None else None
        if identity is None or identity in points:
            raise UsageError(f"cannot resume: job {point.job_id} stopped in the loop `{point.loop_id}`, which is no "
                             "longer in the flow or was changed (its variables or its list); run without --resume "
                             "to start from the beginning")
        if identity != point.loop_id:
            store.checkpoints.rename(flow.key, point.loop_id, identity)
            point.loop_id = identity
        points[identity] = point
    return points


def start_checkpoints(ctx: RunContext, store: Store, flow: CompiledFlow, job_id: int, kind: str, keeps: bool,
                      saved: list[Checkpoint], resume_from: dict[str, Checkpoint],
                      mask: Callable[[str], str]) -> int | None:
    """Give the run its checkpointer; say what a --resume run continues, or that a plain run could have
    resumed. Returns the job resumed."""
    if saved and not resume_from:
        last = saved[-1]
        this = "this test run" if kind in TEST_KINDS else f"this {kind} job"
        after = "; this run starts from the beginning" if keeps else "" if ctx.options.dry_run else (
            f"; {this} appends to the files it writes, so that the resume finds the records the stopped run "
            "wrote")
        if last.damaged is not None:
            ctx.log("warn", f"job {last.job_id} stopped in the loop `{last.loop_id}` {last.where()}, but its "
                    f"checkpoint is damaged in the store ({last.damaged}), so it cannot be resumed" + after)
        else:
            ctx.log("warn", f"job {last.job_id} stopped in the loop `{last.loop_id}` {last.where()}: run with "
                    "--resume to continue from its checkpoint" + after)
    elif ctx.options.resume and not saved:
        ctx.log("info", "--resume: no checkpoint to continue from (the last run finished, or stopped before a loop "
                "over a paginated read finished its first page); starting from the beginning")
    if not keeps:
        return None
    resumed = None
    if resume_from:
        latest = max(resume_from.values(), key=lambda p: p.updated_at)
        resumed = latest.job_id
        if latest.state is not None:  # the state as it was at the checkpoint: committed as one run would
            ctx.state = from_stored(latest.state)
        store.mark_resumed(job_id, resumed)
        ctx.log("info", f"--resume: continuing job {resumed} from its checkpoint")
    elif saved:
        store.checkpoints.clear(flow.key)
    ctx.checkpointer = Checkpointer(store.checkpoints, flow.key, job_id, lambda v: masked_json(v, mask), now_text,
                                    resume_from, lambda: dumps(ctx.stats.as_dict()))
    return resumed


def deadline_timers(options: RunOptions, flow: str, state_dir: Path | None, job_id: int,
                    in_body: Callable[[], bool] = lambda: True) -> list[int]:
    """The watchdog's part of a run: at max_seconds a graceful stop, after the grace a hard stop, after
    as long again (code stuck in C) the job recorded as failed and, from the CLI, the process ended
    with 1. Any hard stop of the process records this job first."""
    if state_dir is not None:
        def record(status: str, message: str) -> None:
            store = Store(state_dir)
            try:
                store.finish_job(job_id, status, None, message, flow, None)  # the counts of its last checkpoint
            finally:
                store.close()
        WATCHDOG.job_started(job_id, record)
    seconds = options.limits.max_seconds
    if seconds is None:
        return []
    stop, grace = options.stop, options.limits.grace_seconds
    start = time.monotonic()
    reason = f"max_seconds {seconds:g}"
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def hard_stop() -> None:  # in the watchdog's thread
        stop.request_hard(reason)
        if task is not None:  # a record waiting on the network checks no flag: cancel the wait
            try:
                loop.call_soon_threadsafe(cancel_body, task, in_body)
            except RuntimeError:  # the loop is closed: the run is over
                pass
    return [WATCHDOG.at(start + seconds, lambda: stop.request(reason)),
            WATCHDOG.at(start + seconds + grace, hard_stop),
            WATCHDOG.at(start + seconds + 2 * grace, lambda: WATCHDOG.exit_process(
                int(ExitStatus.FAILED), "failed", f"the run took longer than {seconds:g}s (max_seconds) and did not "
                f"stop within {2 * grace:g}s more (stuck in CPU-bound work): ended; no state committed"))]


def cancel_body(task: asyncio.Task[Any], in_body: Callable[[], bool]) -> None:
    """The hard stop of max_seconds, on the loop: the run's task is cancelled while its body runs (a
    record waiting for an answer that does not come), as a second signal does; the run then fails
    with the limit error instead of the watchdog ending the process as if stuck in CPU-bound work."""
    if in_body() and not task.done():
        task.cancel()


def hard_stop_error(options: RunOptions, reason: str) -> FlowRuntimeError:
    if reason.startswith("max_seconds"):
        return LimitError(f"the run took longer than {reason[len('max_seconds '):]}s (max_seconds); the records in "
                          f"flight did not finish within {options.limits.grace_seconds:g}s and were stopped")
    return Interrupted(f"stopped at once ({reason}); no state committed")


def set_params(compiled: CompiledModule, frame: Frame, given: dict[str, Any]) -> None:
    """Each param's value, given or its default, in order. job.params is then every param the run runs
    with, defaults included (while the defaults are worked out, it holds the params given)."""
    values: dict[str, Any] = {}
    for p in compiled.params:
        if p.name in given:
            frame.slots[p.slot] = values[p.name] = param_value(p.name, p.node.default, given[p.name])
        elif p.default is not None:
            frame.slots[p.slot] = values[p.name] = p.default(frame)
    frame.run.job = {**frame.run.job, "params": values}  # a new object: a default that holds `job` keeps the old


async def close_all(ctx: RunContext) -> None:
    for conn in reversed(ctx.connections):
        try:
            await conn.close()
        except Exception as e:  # closing must not hide the run's own outcome
            ctx.log("warn", f"closing {conn.name} failed: {e}")
    ctx.connections.clear()
    # the lookups' answers are for these connections only (their keys hold a connection's id): freed
    # here, not left to the cyclic garbage collector with the rest of the run (a full collection
    # of a big heap in the middle of the host's next run)
    ctx.lookup_cache.clear()
    ctx.lookup_nulls.clear()


def child_runner(load_child: LoadChild, options: RunOptions, setup: RunSetup,
                 children: list[ChildReport]) -> Callable[[Path, dict[str, Any]], Awaitable[None]]:
    async def run_child(path: Path, params: dict[str, Any]) -> None:
        child = load_child(path)
        # the parent's tape: a recording holds the child's exchanges too, a replay answers them from the
        # cassette (it sends nothing and keeps its jobs in memory, as the parent's), a plan plans its writes
        tape = options.tape
        replaying = tape is not None and tape.replaying
        child_options = RunOptions(params=params, dry_run=options.dry_run, limit=options.limit,
                                   limits=options.limits, secrets=options.secrets, env=options.env,
                                   masker=options.masker, stop=options.stop, tape=tape,
                                   # the run's providers (flowlang.toml's: .env, keychain, Vault...; a replay's
                                   # stand-ins for secret.NAME): the child reads its secrets where the parent does
                                   secret_providers=options.secret_providers)
        child_setup = RunSetup(None if replaying else state_dir_for(child.path, setup.state_dir), setup.on_output,
                               setup.collect, setup.logger, setup.env, load_child=load_child)
        try:
            result = await execute(child, child_options, child_setup)
            child_ran = getattr(tape, "child_ran", None)  # a plan's (testing/plan.Planner): its reads and
            if child_ran is not None:  # skips are the plan's, as its writes are
                child_ran(result.stats)
        except FlowRuntimeError:
            raise
        except FlowError as e:  # its params, its bindings, its lock: the run line fails, this run ends well
            raise FlowRuntimeError(f"the flow {path.name} cannot run: {e.message}", "connector") from None
        if result.error is not None:
            failed = result.error
            where = f" at {failed.location}" if isinstance(failed, FlowRuntimeError) and failed.location else ""
            raise FlowRuntimeError(f"the flow {path.name} failed{where}: {failed.message}", "connector")
        if result.errors:  # the parent finishes as partial and names the child's job (OPERATIONS.md 8)
            children.append(ChildReport(child.name, result.job_id, len(result.errors), result.status))
            setup.logger.warning(
                f"the flow {path.name} (job {result.job_id}) finished with {len(result.errors)} failed "
                f"record{'s' if len(result.errors) != 1 else ''} "
                f"(see flowlang errors {command_path(child.path or path)})",
                extra={"flow": child.name, "job_id": result.job_id})
    return run_child


# ---- retry --------------------------------------------------------------------------------


def retry_failure_noter(store: Store, ctx: RunContext, error_id: int, job_id: int,
                        dry_run: bool) -> Callable[[RecordFailure], None]:
    """During a retry, a failure updates its error (attempts, message) instead of adding a new one."""
    def note(failure: RecordFailure) -> None:
        if not dry_run:
            store.fail_again(error_id, job_id, failure, ctx.mask, ctx.limits.max_error_bytes)
    return note


async def run_prelude(ctx: RunContext, compiled: CompiledModule, frame: Frame) -> None:
    """The flow's use, import, param and let lines, before the saved iterations. A `let` that cannot be
    worked out without the rest of the flow is left unset: the saved scope fills it."""
    for step, tolerant in compiled.prelude_steps:
        try:
            if step.is_async:
                await step.run(frame)
            else:
                step.run(frame)
        except FlowRuntimeError as e:
            if not tolerant:
                raise
            ctx.log("debug", f"retry: a top-level let was skipped ({e.message})")


def edit_first(err: StoredError) -> str | None:
    """Why a saved record must be edited before a retry replays it, or None: what was kept of a record
    that failed as it was read is not the record, and a secret's text is kept as ***."""
    if err.history:  # edited since: replayed as edited
        return None
    if err.scope.get(READ_FAILED):
        return f"the record failed as it was read ({err.message}), and what was kept of it is not the record"
    if err.scope.get(SECRET_MASKED):
        return "the record held the text of a secret, which is stored as ***, so a retry would send *** in its place"
    if err.scope.get(BYTES_AS_SIZE):
        return ("the record held a bytes value (a file's or an answer's content), which the store keeps only as its "
                "size, so a retry would send that text in its place; run the flow again to send it (a picked-up "
                "file with a failed record is read again)")
    return None


def input_lost(err: StoredError, reads_input: bool) -> str | None:
    """Why the `input` of the run an error's record failed in cannot be given to its replay, or None. A
    retry has no payload of its own: an iteration that reads `input` (a webhook's body beside its
    records, `input.shop`) gets its run's, saved with the error (compile/loops.py)."""
    if not reads_input:
        return None
    if SAVED_INPUT not in err.scope:
        return ("its loop reads `input`, and the input of the run it failed in was not kept with it (stored by "
                "an older flowlang, or over max_error_bytes), so a retry would read input as null")
    if SAVED_INPUT in (err.scope.get(SECRET_MASKED_NAMES) or []):
        return ("its loop reads `input`, which held the text of a secret, stored as ***, so a retry would "
                "read *** in its place")
    return None


def values_lost(err: StoredError, info: LoopInfo, worked_out: list[Any]) -> str | None:
    """Why a replay of an error would read a variable its iteration read as null, or None. The error keeps
    the values its iteration reads, but not a record stream (read page by page) nor one over
    max_error_bytes; a retry runs only the flow's use, import, let and param lines, so a variable of a
    `call` (`call api.get(..., pages: ...) as items` for an inner loop, a `let` built from one) was null
    in the replay: the inner loop read nothing, or a lookup in it found nothing, and the replay sent
    that (or nothing) and resolved the error."""
    streams = err.scope.get(SAVED_STREAMS)
    streams = streams if type(streams) is list else []
    read = info.read
    lost = [name for name, slot in info.visible if (read is None or slot in read) and name not in err.scope
            and slot < len(worked_out) and worked_out[slot] is None]
    if not lost:
        return None
    said = []
    for name in lost:
        if name in streams:
            said.append(f"`{name}` (a record stream, read page by page and never kept with an error)")
        else:
            said.append(f"`{name}` (not kept with the error: see its note)")
    them = "them" if len(lost) > 1 else "it"
    return (f"its iteration reads {', '.join(said)}, and the flow's use, import, let and param lines, which are "
            f"all a retry runs before it, do not work {them} out, so a replay would read {them} as null")


def errors_named(ids: list[int]) -> str:
    return f"error{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"


def retry_body(error_ids: list[int] | None, resolved: list[int], still: list[int],
               unreplayable: list[int], needs_edit: list[int], given: Collection[str] = ()) -> Body:
    """The replay of the open errors (all, or `error_ids`); a param named in `given` (the retry's own
    --param) keeps the value given, over the one its error's saved scope holds."""
    async def body(ctx: RunContext, frame: Frame, compiled: CompiledModule, store: Store, job_id: int) -> None:
        await run_prelude(ctx, compiled, frame)
        worked_out = list(frame.slots)  # the top-level lines' values, before any saved scope fills a slot
        given_slots = {p.slot for p in compiled.params if p.name in given}
        dry_run = ctx.dry_run
        errors = store.errors(ctx.flow, ids=error_ids) if error_ids else store.open_errors(ctx.flow)
        state = ctx.state  # the flow's state now: what a replay of an error saved without its own sees
        for err in errors:
            ctx.check_stop()
            entry = find_loop(compiled.loops, err.loop_id, err.loop_nth, err.loop_same)
            now = len(same_loops(compiled.loops, err.loop_id)) if err.loop_id is not None else 0
            if entry is None and err.loop_same is not None and err.loop_same != now and now:
                ctx.log("error", f"error {err.id}: the flow has {now} loops over `{loop_stem(err.loop_id or '')}` "
                        f"now, {err.loop_same} when it failed, so which one is its loop cannot be told; left open "
                        "(resolve it and run the flow again, or give the new loop another variable name)")
                unreplayable.append(err.id)
                continue
            if entry is None:
                ctx.log("error", f"error {err.id}: its loop ({err.loop_id or 'at ' + err.loop}) is no longer in "
                        "the flow or was changed, so it cannot be replayed; left open (its loop's variables or "
                        "list are not what they were: a run of the flow sends its record if it still reads it, then "
                        f"resolve the error by hand: flowlang resolve {ctx.flow_file or 'FILE'} {err.id})")
                unreplayable.append(err.id)
                continue
            if err.damaged is not None:
                ctx.log("error", f"error {err.id}: {err.damaged}, so it cannot be replayed; left open")
                unreplayable.append(err.id)
                continue
            why = edit_first(err)
            if why is not None:
                ctx.log("error", f"error {err.id}: {why}: change it with `flowlang edit {ctx.flow_file or 'FILE'} "
                        f"{err.id} --set PATH=JSON` (or fix the source and run again) before a retry; left open")
                needs_edit.append(err.id)
                continue
            scope = dict(entry.info.visible)
            masked = [name for name in err.scope.get(SECRET_MASKED_NAMES) or [] if name in scope]
            lost = [name for name in masked if worked_out[scope[name]] is None]
            if lost:
                ctx.log("error", f"error {err.id}: the variable{'s' if len(lost) > 1 else ''} {', '.join(lost)} held "
                        "the text of a secret, which is stored as ***, and the flow's top-level lines do not work "
                        f"{'them' if len(lost) > 1 else 'it'} out again, so a retry would use *** in its place; "
                        "left open (run the flow again from its source)")
                unreplayable.append(err.id)
                continue
            why = values_lost(err, entry.info, worked_out)
            if why is not None:
                ctx.log("error", f"error {err.id}: {why}; left open (run the flow again: its run reads them again, "
                        "and the record's success resolves the error; or resolve it by hand)")
                unreplayable.append(err.id)
                continue
            why = input_lost(err, entry.info.keeps_input)
            if why is not None:
                ctx.log("error", f"error {err.id}: {why}; left open (run the flow again with its input)")
                unreplayable.append(err.id)
                continue
            ctx.input = restore_saved(err.scope[SAVED_INPUT], ctx) if SAVED_INPUT in err.scope else None
            before = ctx.failed_records
            # the state as the record's iteration started (a retry commits no state): a newer one may
            # skip the record as done, `if r.id <= state.max`, and so resolve its error without sending it
            ctx.state = restore_saved(err.scope[SAVED_STATE], ctx) if type(err.scope.get(SAVED_STATE)) is dict \
                else state
            for name, value in err.scope.items():
                if name in masked or scope.get(name) in given_slots:  # stored as ***, or given to the retry:
                    frame.slots[scope[name]] = worked_out[scope[name]]  # the top-level line's value, worked out again
                elif name in scope:
                    frame.slots[scope[name]] = restore_saved(value, ctx)
            ctx.on_failure = retry_failure_noter(store, ctx, err.id, job_id, dry_run)
            ctx.replaying = err.id
            ctx.replay_key = err.key
            if err.key is not None and err.loop_id is not None:  # this error is resolved as retried, below
                ctx.open_keys.get(err.loop_id, set()).discard(canonical_stored(err.key))
            record = restore_saved(err.record, ctx)
            picked_from = err.scope.get(PICKUP_FILE)
            if type(picked_from) is str and type(record) is dict:  # keyed within its file, as in its run
                ctx.record_files[id(record)] = picked_from
            if dry_run:
                ctx.log("info", f"dry run: replaying error {err.id}" + (f" (key {err.key})" if err.key else ""))
            if entry.loop.body.is_async:
                await entry.loop.one_async(frame, record)
            else:
                entry.loop.one_sync(frame, record)
            await entry.info.flush(frame)
            if ctx.failed_records == before:
                if not dry_run:
                    ctx.flush_writes()  # what the replay sent to a file is in it before its error is resolved
                    store.resolve(err.id, job_id)
                resolved.append(err.id)
            else:
                still.append(err.id)
        if unreplayable:
            ctx.left_open = ("failed", f"{errors_named(unreplayable)} cannot be replayed; left open")
        elif needs_edit:
            ctx.left_open = ("partial", f"{errors_named(needs_edit)} must be edited before a retry; left open")
    return body


def params_from_errors(flow: CompiledFlow, options: RunOptions, setup: RunSetup,
                       error_ids: list[int] | None) -> dict[str, Any]:
    """A param without default that the retry is not given takes its value from the saved scope of the
    errors it replays (the newest that holds it): the iterations run again "from their saved record and
    scope" (LANGUAGE.md 5), and a retry refused for `--param since=...` asked again what the run was given."""
    missing = [p.name for p in flow.compiled.params if p.default is None and p.name not in options.params]
    if not missing or setup.state_dir is None:
        return {}
    store = Store(setup.state_dir)
    try:
        errors = store.errors(flow.key, ids=error_ids)
    finally:
        store.close()
    found: dict[str, Any] = {}
    for error in sorted(errors, key=lambda e: e.id, reverse=True):
        for name in missing:
            if name not in found and isinstance(error.scope, dict) and name in error.scope:
                found[name] = error.scope[name]
    return found


async def retry_errors(flow: CompiledFlow, options: RunOptions, setup: RunSetup, error_ids: list[int] | None) -> Result:
    resolved: list[int] = []
    still: list[int] = []
    unreplayable: list[int] = []
    needs_edit: list[int] = []
    given = set(options.params)
    saved = params_from_errors(flow, options, setup, error_ids)
    if saved:
        options = dataclasses.replace(options, params={**saved, **options.params})
    result = await execute(flow, options, setup, "retry", retry_body(error_ids, resolved, still, unreplayable,
                                                                      needs_edit, given))
    result.resolved = resolved
    result.unreplayable = unreplayable
    result.needs_edit = needs_edit
    return result
