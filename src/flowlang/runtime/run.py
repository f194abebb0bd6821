"""One run of a flow: the values closures read (env, secrets, job, state, input), where emitted
records and failed records go, logging, masking, statistics and the caches shared by iterations."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.jsoncodec import SavedSecret
from flowlang.runtime.limits import Limits, StopFlag
from flowlang.runtime.masking import Masker
from flowlang.runtime.observe import NO_OBSERVER, RunObserver
from flowlang.runtime.secrets import SecretChain, SecretProvider, default_chain
from flowlang.runtime.stats import Stats, Traffic
from flowlang.runtime.values import Secret

if TYPE_CHECKING:
    from flowlang.runtime.checkpoints import Checkpointer
    from flowlang.runtime.field_misses import FieldSite, Misses, Reach
    from flowlang.runtime.frame import Frame
    from flowlang.runtime.ledger import Ledger
    from flowlang.runtime.tape import Tape

# The job whose code is running (a child run sets its own): log lines that libraries or connections
# write without naming a job carry it (OPERATIONS.md 10).
RUNNING_JOB: contextvars.ContextVar[tuple[str, int | None] | None] = contextvars.ContextVar("running_job",
                                                                                           default=None)


def current_flow() -> str | None:
    job = RUNNING_JOB.get()
    return job[0] if job else None


def current_job_id() -> int | None:
    job = RUNNING_JOB.get()
    return job[1] if job else None


LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def raise_stop(stop: StopFlag) -> None:
    from flowlang.errors import FlowRuntimeError, Interrupted, LimitError

    if stop.reason.startswith("max_seconds"):
        raise LimitError(f"the run took longer than {stop.reason[len('max_seconds '):]}s (max_seconds); "
                         "in-flight records finished")
    if stop.failure:
        raise FlowRuntimeError(f"the run stopped: {stop.reason}; in-flight records finished, no new record was "
                               "started", "connector")
    raise Interrupted(f"stopped ({stop.reason}); in-flight records finished, no new record was started")


def restore_saved(value: Any, ctx: RunContext) -> Any:
    """Saved values (a failed record's scope, read with from_stored(secret_refs=True)) back to flowlang
    values; a SavedSecret is read again by its name."""
    if type(value) is SavedSecret:  # (an object of the data shaped like {"$secret": ...} is a plain dict)
        return ctx.secret(value.name) if value.name is not None else Secret("")
    if type(value) is dict:
        return {k: restore_saved(v, ctx) for k, v in value.items()}
    if type(value) is list:
        return [restore_saved(v, ctx) for v in value]
    return value


class OpenConnection(Protocol):
    """What a run needs of a connection it opened: closing it at the end (connectors implement it)."""

    name: str

    async def close(self) -> None: ...


# A saved scope's mark for a record that failed as its source read it (a ragged CSV row, bytes not of
# the file's encoding, a JSON line that does not parse): what was kept of it is not the record, so a
# retry replays it only after `flowlang edit` changed it (runner.retry_body)
READ_FAILED = "$read_failed"
# ... and its entry for the run's `input` (the webhook delivery's body, --input's payload), kept when the
# loop's body reads `input`: a retry has no payload of its own, and read as null the replay sent other data
SAVED_INPUT = "$input"
# ... and the name of the picked-up file its record came from (a file pick-up, `file(path: "in/*.csv")`):
# a retry keys the record within its file, [name, id], as the run did, also when the record failed as it
# was read and had no id then (a bad JSON line edited into a record): its `once` send was keyed by the bare
# id, and the same record read again from the fixed file was sent a second time
PICKUP_FILE = "$file"
# ... and its name for the `state` as it was at the start of the iteration (of a loop that names state): a
# retry replays the record against it, not against the state later records moved on (a record skipped
# `if r.id <= state.max` was resolved by its retry without being sent)
SAVED_STATE = "$state"
# ... and the names of the variables its iteration read that held a record stream (`call api.get(..., pages:
# ...) as items` read by an inner loop): a stream is read page by page, never kept, and a retry runs no
# `call`, so its replay would read the variable as null (an inner loop over nothing resolved the error)
SAVED_STREAMS = "$streams"
STATE_NOTES = 100_000  # notes of what the state's changes replaced, kept while a loop's iterations overlap


@dataclass
class RecordFailure:
    """A loop iteration that failed: everything needed to show it and to run it again."""

    flow: str
    loop: str  # "line:col" of the `for each`
    location: str  # file:line:col of the failing statement
    line: int | None
    message: str
    kind: str
    status: int | None
    record: Any
    scope: dict[str, Any]
    loop_id: str | None = None  # the loop's identity (OPERATIONS.md 3)
    key: str | None = None  # the record's trace key as JSON text (OPERATIONS.md 2)
    loop_nth: int | None = None  # the loop's place among those of its variables and list (OPERATIONS.md 3)
    loop_same: int | None = None  # ... and how many loops of the flow have them
    index: int | None = None  # its place in its loop in this run (1 for the first), when known
    error_id: int | None = None  # its row in the error store, once stored
    replayed: int | None = None  # in a retry: the error it runs again (how the summary names it)


class FailureGroup:
    """The failures of one run with the same message at the same place: the log shows the first as it
    happens and the count at the end, not one line each (each record is kept in the error store)."""

    __slots__ = ("count", "first", "location", "message")

    def __init__(self, failure: RecordFailure) -> None:
        self.location = failure.location
        self.message = failure.message
        self.count = 1
        self.first: list[str] = [which_record(failure)]

    def add(self, failure: RecordFailure) -> None:
        self.count += 1
        if len(self.first) < FIRST_SHOWN:
            self.first.append(which_record(failure))

    def summary(self) -> str:
        more = ", ..." if self.count > len(self.first) else ""
        return (f"{self.count:,} records failed at {self.location}: {self.message} "
                f"(first: {', '.join(self.first)}{more})")


FIRST_SHOWN = 3  # of a group's records, named in its summary


def which_record(failure: RecordFailure) -> str:
    """How a summary names a failed record: its place in the loop, and its trace key when it has one."""
    place = (f"record {failure.index:,}" if failure.index is not None
             else f"error {failure.replayed}" if failure.replayed is not None else "a record")
    return f"{place} (key {failure.key})" if failure.key is not None else place


@dataclass
class RunOptions:
    """How a run was started."""

    params: Mapping[str, Any] = field(default_factory=dict)
    input: Any = None
    dry_run: bool = False
    limit: int | None = None
    limits: Limits = field(default_factory=Limits)
    secrets: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    bindings: Mapping[str, Any] = field(default_factory=dict)
    masker: Masker | None = None  # share one with the caller (the CLI masks its own output with it)
    stop: StopFlag = field(default_factory=StopFlag)  # a graceful stop (SIGTERM, Ctrl-C, max_seconds)
    trigger: Mapping[str, Any] | None = None  # job.trigger (serve: kind webhook or scheduled, id, headers...)
    # the providers `secret.NAME` asks, in order, given the --secrets values and the run's environment
    secret_providers: Callable[[Mapping[str, str], Mapping[str, str]], list[SecretProvider]] = default_chain
    tape: Tape | None = None  # records the run, or replays it from a cassette (flowlang.testing)
    resume: bool = False  # continue the last job's checkpoints (flowlang run --resume; TESTING.md 4)
    observer: RunObserver = NO_OBSERVER  # telemetry: spans and metrics (telemetry/otel.py)


SKIP_LINES = 5  # lines of log_ledger_skips, then how many more

class RunContext:
    """Everything a running flow shares across its statements (one per run)."""

    def __init__(
        self,
        *,
        flow: str,
        base_dir: Path,
        options: RunOptions,
        env: Mapping[str, str],
        job: dict[str, Any],
        state: dict[str, Any],
        emit: Callable[[Any], None],
        on_failure: Callable[[RecordFailure], None],
        logger: logging.Logger,
    ) -> None:
        self.flow = flow
        self.base_dir = base_dir
        self.options = options
        self.env = env
        self.job = job
        self.state = state
        self.input = options.input
        self.dry_run = options.dry_run
        self.appending = False
        self.limit = options.limit
        self.limits = options.limits
        self.emit = emit
        self.on_failure = on_failure
        self.logger = logger
        self.masker = options.masker if options.masker is not None else Masker()
        self.flow_file = "FILE"  # how messages name the flow's file in a command to type (runner sets it)
        self.stats = Stats()
        self.frames: list[Frame] = []
        self.imported: set[int] = set()  # modules whose body has run (an import runs a file once per run)
        self.bindings: dict[str, Any] = {}  # the host bindings' connectors.host.HostConnection by name
        self.connections: list[OpenConnection] = []
        # connections holding buffered writes (a file's records): flushed by flush_writes
        self.unflushed: set[Any] = set()
        self.lookup_cache: dict[Any, Any] = {}
        self.lookup_nulls: dict[Any, int] = {}  # a lookup that found nothing -> the connection's writes then
        self.lookup_inflight: dict[Any, list[asyncio.Future[Any]] | None] = {}  # a lookup on its way: who waits
        self.depth = 0
        self.failed_records = 0
        self.failures: list[RecordFailure] = []
        self.failure_groups: dict[tuple[str, str], FailureGroup] = {}  # by place and message
        self.replaying: int | None = None  # a retry: the error store row of the iteration it runs again
        self.log_failures = True  # the REPL shows each failed record with its input, so it logs none
        self.field_misses: dict[FieldSite, Misses] = {}  # reads in loops that found nothing (field_misses.py)
        self.field_reached: dict[Reach, int] = {}  # records that reached a statement not all do (field_misses.py)
        self.body_finished = False  # set when the run's statements all ran (no error, no stop)
        # which of these error ids are still open in the store (a file pick-up archives a file held back
        # for its failed records once they are all resolved, e.g. by `flowlang retry`)
        self.errors_open: Callable[[list[int]], set[int]] = lambda ids: set(ids)
        self.held_files: Callable[[str], list[dict[str, Any]]] = lambda connection: []
        self.set_held_files: Callable[[str, list[dict[str, Any]]], None] = lambda connection, files: None
        self.last_value: Any = None
        # the visible variables' values at the start of the outermost iteration running (LoopInfo.start),
        # and the lengths of those of its lists grown in place since, by id (the record's saved scope
        # is cut back to them)
        self.iteration_start: list[Any] | None = None
        # ... and, in a loop that names `state`, what each path assignment into the state replaced since
        # the iteration started (sharing.undone gives the state as it started); None elsewhere
        self.state_undo: list[tuple[tuple[Any, ...], Any]] | None = None
        self.state_undo_base = 0  # notes dropped from its start while iterations overlap (note_state)
        self.grown: dict[int, int] = {}
        # and, by id, what `let c[k] = ...` replaced in those of its lists and objects changed in place
        # since (the first value of each top-level key changed, sharing.UNSET where there was none)
        self.replaced: dict[int, dict[Any, Any]] = {}
        self.stop = options.stop
        self.batches: dict[Any, Any] = {}
        self.run_child: Callable[[Path, dict[str, Any]], Awaitable[None]] | None = None
        # called before a path assignment or a state assignment changes a value in place (the
        # collected outputs are copied then: runtime/outputs.py)
        self.before_change: Callable[[], None] | None = None
        self.tape = options.tape
        self.ledger: Ledger | None = None  # the store's send ledger (send ... once / if changed)
        self.checkpointer: Checkpointer | None = None  # a job that keeps checkpoints (TESTING.md 4)
        # trace keys with an open error, per loop identity; a success of one of them resolves it
        self.open_keys: dict[str, set[str]] = {}
        self.key_problems: set[str] = set()  # the loops whose `key` could not be worked out for a record, said once
        # the file each record read by a file pick-up came from, by the record's id (connectors/pickup.py):
        # such a record without `key` is keyed by its file's name and its `id` (LoopInfo.key_value)
        self.record_files: dict[int, str] = {}
        # a dry run's and a plan's ledger sends, (connection, operation, key) -> payload hash: they write
        # nothing to the ledger, and a key that comes again is skipped as the real run skips it
        self.dry_sends: dict[tuple[str, str, str], str] = {}
        # per ledger destination (connection, operation): the key expressions its entries were made by when
        # the run first sent to it (compile/ledger_send.py, key_changed)
        self.ledger_key_bys: dict[tuple[str, str], set[str]] = {}
        # sends the ledger skipped, (connection.method, once or changed, job that sent them) -> how many:
        # said at the end (log_ledger_skips), so a rerun's 'skipped 24' says why
        self.ledger_skips: dict[tuple[str, str, Any], int] = {}
        self.replay_key: str | None = None  # a retry: the stored trace key of the error it replays
        self.on_success: Callable[[str, str], None] = lambda loop_id, key: None
        # what a job left undone though none of its records failed (a retry that left errors open without
        # replaying them): the status it ends with at least ("partial" or "failed") and why
        self.left_open: tuple[str, str] | None = None
        for value in options.secrets.values():
            self.masker.add(value)
        self.observer = options.observer
        self.secrets = SecretChain(options.secret_providers(options.secrets, env), on_value=self.masker.add)

    def check_stop(self) -> None:
        """Between statements and before each record: end the run if a stop was requested."""
        if self.stop.requested:
            raise_stop(self.stop)

    # ---- globals ------------------------------------------------------------------------------
    def secret(self, name: str) -> Secret:
        return Secret(self.secrets.value(name), name)

    def secret_or_null(self, name: str) -> Secret | None:
        """`secret.NAME ?? default`: None when no provider has NAME; a provider that failed is an error."""
        return Secret(self.secrets.value(name), name) if self.secrets.value_or_none(name) is not None \
            or self.secrets.problem(name) is not None else None

    # ---- services for connections (RunServices) ------------------------------------------------
    def mask(self, text: str) -> str:
        return self.masker.mask(text)

    def register_secret(self, value: str) -> None:
        self.masker.add(value)

    def state_notes_from(self, alone: bool) -> int:
        """Where the notes of what the state's changes replace begin for an iteration starting now (of a
        loop that changes `state`): a new list when it is alone, else the list its overlapping ones share."""
        if alone or self.state_undo is None:
            self.state_undo = []
            self.state_undo_base = 0
        return self.state_undo_base + len(self.state_undo)

    def note_state(self, change: tuple[tuple[Any, ...], Any]) -> None:
        """What a change of the state replaces (compile/statements.py), while a loop keeps such notes.
        Past STATE_NOTES (iterations that overlap for long), the oldest half goes: an iteration that
        began before them is saved with a later state."""
        notes = self.state_undo
        if notes is None:
            return
        notes.append(change)
        if len(notes) > STATE_NOTES:
            del notes[:STATE_NOTES // 2]
            self.state_undo_base += STATE_NOTES // 2

    def log(self, level: str, message: str, location: str | None = None, place: str | None = None) -> None:
        """A line of the run; `location`: the flow's line that said it (shown after the text, a JSON line's
        `location`); `place`: the line a message names itself ('record failed at f.flow:5:3: ...'), a JSON
        line's `location` alone."""
        text = self.mask(message)
        self.logger.log(LEVELS.get(level, logging.INFO), text,
                        extra={"flow": self.flow, "job_id": self.job.get("id"), "location": location, "place": place})

    def traffic_for(self, connection: str) -> Traffic:
        """Where an HTTP-backed connection counts its requests, retries and waits."""
        return self.stats.traffic_for(connection)

    def log_dry_run(self, connection: str, description: str) -> None:
        self.log("info", f"dry run, not sent: {connection}: {description}")

    def flush_writes(self) -> None:
        """Buffered writes reach their destination: at the end of each page of an outermost loop, before
        a checkpoint or a ledger entry says records are done, and when the run's statements end. A
        write that failed raises FlowRuntimeError here (the run fails: records may be missing)."""
        while self.unflushed:
            self.unflushed.pop().flush_writes()

    def record_success(self, loop_id: str, key: str) -> None:
        """A keyed record went through: resolve its open error, if it has one."""
        keys = self.open_keys.get(loop_id)
        if keys is not None and key in keys:
            keys.discard(key)
            self.on_success(loop_id, key)

    def record_failure(self, failure: RecordFailure) -> None:
        self.failed_records += 1
        if failure.index is None:  # a retry's replay: named by its error
            failure.replayed = self.replaying
        failure.message = self.mask(failure.message)
        self.failures.append(failure)
        if not self.log_failures:
            self.on_failure(failure)
            return
        group = self.failure_groups.get((failure.location, failure.message))
        if group is None:
            self.failure_groups[(failure.location, failure.message)] = FailureGroup(failure)
            self.log("error", f"record failed at {failure.location}: {failure.message}", place=failure.location)
        else:  # the same failure again: counted, and summed up at the end of the run (log_failure_groups)
            group.add(failure)
            self.log("debug", f"record failed at {failure.location}: {failure.message}", place=failure.location)
        self.on_failure(failure)

    def log_ledger_skips(self) -> None:
        """At the end of a run: one line for each operation and job whose sends the ledger skipped."""
        for n, ((destination, mode, job), count) in enumerate(sorted(self.ledger_skips.items(), key=str)):
            if n == SKIP_LINES:
                self.log("info", f"... and {len(self.ledger_skips) - n} more kinds of skipped sends "
                         f"(flowlang ledger {self.flow_file} lists every key)")
                return
            why = f"already sent in job {job} (send ... once)" if mode == "once" else \
                f"unchanged since job {job} (send ... if changed)"
            self.log("info", f"{destination}: {count:,} send{'s' if count != 1 else ''} skipped, {why}")

    def log_failure_groups(self) -> None:
        """At the end of a run: one line for each failure that happened to more than one record."""
        for group in self.failure_groups.values():
            if group.count > 1:
                self.log("error", group.summary(), place=group.location)
