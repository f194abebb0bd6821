"""The flow store: one SQLite file per state folder holding job history, each flow's state and
the error store. Every change is one transaction (WAL, synchronous=FULL): a crash leaves the old
or the new state, never a torn one."""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from flowlang.errors import StoreError
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.blob import Blob
from flowlang.runtime.checkpoints import Checkpoints
from flowlang.runtime.error_groups import ErrorGroup, group_errors
from flowlang.runtime.jsoncodec import JsonDataError, dumps, dumps_stored, from_stored, loads, surrogates_escaped
from flowlang.runtime.keys import canonical_stored
from flowlang.runtime.ledger import Ledger
from flowlang.runtime.liveness import LIVE_JOBS, alive, this_process
from flowlang.runtime.masking import mask_value
from flowlang.runtime.private import private_file
from flowlang.runtime.run import SAVED_INPUT, RecordFailure
from flowlang.runtime.values import format_datetime, text_size_floor

LARGEST_ID = 2 ** 63 - 1  # SQLite's integers: no id, count or offset of the store is larger

SCHEMA = """
create table if not exists jobs (
  id integer primary key autoincrement,
  flow text not null,
  started_at text not null,
  ended_at text,
  status text not null default 'running',
  dry_run integer not null default 0,
  kind text not null default 'run',
  params text,
  stats text,
  message text
);
create index if not exists jobs_flow on jobs(flow, status);
create table if not exists state (
  flow text primary key,
  value text not null,
  job_id integer,
  updated_at text not null
);
create table if not exists errors (
  id integer primary key autoincrement,
  flow text not null,
  job_id integer not null,
  loop text not null,
  location text not null,
  line integer,
  message text not null,
  kind text not null,
  status integer,
  record text not null,
  scope text not null,
  created_at text not null,
  attempts integer not null default 1,
  last_attempt_at text not null,
  resolved_at text,
  resolved_by integer
);
create index if not exists errors_open on errors(flow, resolved_at);
create table if not exists error_values (
  hash text primary key,
  value text not null
);
create table if not exists pickup_held (
  flow text not null,
  connection text not null,
  files text not null,
  primary key (flow, connection)
);
"""

# Columns added after the first release: (table, column, declaration). Opened stores gain them.
MIGRATIONS = (
    ("jobs", "success_at", "text"),  # `flowlang state --last-success-at` / `--reset` jobs
    ("errors", "loop_id", "text"),  # the loop's identity (OPERATIONS.md 3)
    ("errors", "trace_key", "text"),  # the record's trace key as JSON (OPERATIONS.md 2)
    ("errors", "last_job_id", "integer"),
    ("errors", "resolved_reason", "text"),
    ("errors", "history", "text"),  # earlier saved records (flowlang edit)
    # 1: `scope` maps each name to the hash of its value in error_values (shared by every error that
    # holds the same value); null: `scope` holds the values themselves (stores written before)
    ("errors", "scope_refs", "integer"),
    ("errors", "note", "text"),  # what the store left out of this error (over max_error_bytes)
    ("jobs", "resumed_from", "integer"),  # `flowlang run --resume`: the job whose checkpoints it continued
    ("jobs", "process", "text"),  # the process that ran it (runtime/liveness.py): a running job's is alive
    # the loop's place among the outermost loops of its variables and list (OPERATIONS.md 3); null: stored
    # before, found by its identity alone
    ("errors", "loop_nth", "integer"),
    ("errors", "loop_same", "integer"),  # ... and how many loops of the flow had them
)
INDEXES = "create index if not exists errors_key on errors(flow, loop_id, trace_key, resolved_at);"

# Jobs that count for job.last_success_at: real runs (a test, dry run or retry never moves the delta).
DELTA_KINDS = ("run", "scheduled", "webhook")
RETENTION_DAYS = 30
RETENTION_PER_LOOP = 20_000

STATE_DB = "flowlang.db"


def masked_json(value: Any, mask: Callable[[str], str] | None) -> str:
    """The stored JSON of a value, every secret in its text masked before and after encoding."""
    if mask is None:
        return dumps_stored(value)
    return mask(dumps_stored(mask_value(value, mask)))


STORED_DEPTH = 400  # levels of a failed record (or scope value) kept; deeper ones are cut, with a note

# A saved scope's mark for a failure whose record held the text of a secret (data echoing a token):
# it is stored with *** in its place, so a retry replays it only after `flowlang edit` changed it
# (runner.retry_body), never sending *** to the API as if it were the data
SECRET_MASKED = "$secret_masked"
# ... and its mark for the scope's variables whose values held a secret's text (kept as *** too): a retry
# takes them from the flow's top-level lines, worked out again, or leaves the error open
SECRET_MASKED_NAMES = "$secret_masked_names"
# ... and its mark for a failure whose record or variables held a bytes value (a picked-up file's content,
# a binary answer): stored as its size ("<5 bytes>"), so a retry would send that text as the content
BYTES_AS_SIZE = "$bytes_as_size"


def holds_bytes(value: Any, depth: int = 0) -> bool:
    """Whether a value holds a bytes value anywhere (as a picked-up file's record does)."""
    t = type(value)
    if t is bytes or t is Blob:
        return True
    if depth > STORED_DEPTH:
        return False
    if t is dict:
        return any(holds_bytes(v, depth + 1) for v in value.values())
    if t is list or t is tuple:
        return any(holds_bytes(v, depth + 1) for v in value)
    return False


@dataclass
class EncodedInput:
    """What storing a run's `input` in a failure's scope works out (SAVED_INPUT), once a run: every failure
    of the run holds the same input, which may be large (a webhook's body, --input's payload), and
    encoding, masking and walking it again for each of 858 failures made a run 30 times slower."""

    value: Any  # the input it was worked out for (by identity: `input` cannot be assigned in a run)
    mask: Callable[[str], str] | None
    max_bytes: int | None
    text: str | None  # its stored JSON, secrets masked; None when it alone is past max_bytes (left out)
    masked: bool  # the text holds *** for a secret's text
    has_bytes: bool


class InputMemo:
    """The last input encoded for the store (one run's; a store serves one run at a time)."""

    def __init__(self) -> None:
        self.last: EncodedInput | None = None

    def of(self, value: Any, mask: Callable[[str], str] | None, max_bytes: int | None) -> EncodedInput:
        last = self.last
        if last is not None and last.value is value and last.mask == mask and last.max_bytes == max_bytes:
            return last
        if oversized({SAVED_INPUT: value}, max_bytes):
            found = EncodedInput(value, mask, max_bytes, None, False, False)
        else:
            text = masked_json(value, mask)
            found = EncodedInput(value, mask, max_bytes, text, mask is not None and text != dumps_stored(value),
                                 holds_bytes(value))
        self.last = found
        return found


def storable(failure: RecordFailure, mask: Callable[[str], str] | None,
             max_bytes: int | None, memo: InputMemo | None = None) -> tuple[str, StoredScope]:
    """The stored JSON of a failure's record, and its scope. A value that cannot be stored whole (it
    nests too deeply) is kept cut at STORED_DEPTH levels, and the failure's message says so. The run's
    input in the scope is encoded once a run (`memo`)."""
    given: EncodedInput | None = None
    whole = failure.scope
    rest = whole
    if memo is not None and SAVED_INPUT in whole:
        try:
            given = memo.of(whole[SAVED_INPUT], mask, max_bytes)
        except (JsonDataError, RecursionError):
            given = None  # too deep: cut below, with the rest
        else:
            rest = {name: v for name, v in whole.items() if name != SAVED_INPUT}
    big = oversized(rest, max_bytes)
    if given is not None and given.text is None:
        big = sorted([*big, SAVED_INPUT])
    values = {name: v for name, v in rest.items() if name not in big} if big else rest
    pre = {SAVED_INPUT: given.text} if given is not None and given.text is not None else {}
    try:
        record = masked_json(failure.record, mask)
        scope = values
        if mask is not None and record != dumps_stored(failure.record):
            scope = {**scope, SECRET_MASKED: True}
        if holds_bytes(failure.record) or any(holds_bytes(v) for v in values.values()) or \
                (given is not None and given.has_bytes):
            scope = {**scope, BYTES_AS_SIZE: True}
        masked = masked_names(values, mask)
        if given is not None and given.masked:
            masked = sorted([*masked, SAVED_INPUT])
        if masked:
            scope = {**scope, SECRET_MASKED_NAMES: masked}
        return record, stored_scope(record, scope, mask, max_bytes, big, pre)
    except (JsonDataError, RecursionError):
        failure.message += (f" (the record or its scope nests more than {STORED_DEPTH} levels deep; it was "
                            f"stored cut at that depth)")
        record = masked_json(cut_deep(failure.record, STORED_DEPTH), mask)
        return record, stored_scope(record, cut_deep(values, STORED_DEPTH + 1), mask, max_bytes, big, pre)


def oversized(scope: dict[str, Any], max_bytes: int | None) -> list[str]:
    """The names of the scope values whose JSON alone is surely past max_bytes: stored_scope would
    leave each out, so none is encoded (a list of millions of items in scope took seconds to encode,
    mask and hash at every failed record). The text is at least half the counted floor (each list
    or object of it is counted one character over), so a floor past twice the limit is past it."""
    if max_bytes is None:
        return []
    return sorted(name for name, value in scope.items()
                  if type(value) in (list, dict, str) and text_size_floor(value, 2 * max_bytes) > 2 * max_bytes)


def masked_names(scope: dict[str, Any], mask: Callable[[str], str] | None) -> list[str]:
    """The names of a scope's values that hold the text of a secret (stored with *** in its place)."""
    if mask is None:
        return []
    return sorted(name for name, value in scope.items() if masked_json(value, mask) != dumps_stored(value))


def cut_deep(value: Any, levels: int) -> Any:
    """A copy of value with lists and objects below `levels` replaced by a note (without recursion
    past `levels`, so any depth can be cut)."""
    t = type(value)
    if t is not dict and t is not list and t is not tuple:
        return value
    if levels <= 0:
        return f"<cut: nested more than {STORED_DEPTH} levels>"
    if t is dict:
        return {k: cut_deep(v, levels - 1) for k, v in value.items()}
    return [cut_deep(v, levels - 1) for v in value]


def masked_params(params: dict[str, Any], mask: Callable[[str], str] | None) -> str:
    """A job's params as stored: a param nested hundreds of levels deep (embedding's params=, a --param
    of JSON) is kept cut at STORED_DEPTH levels, as a failed record is. Encoding it whole raised
    RecursionError, and the run ended before its first line as 'internal error ... a bug in flowlang'."""
    try:
        return masked_json(params, mask)
    except (JsonDataError, RecursionError):
        return masked_json(cut_deep(params, STORED_DEPTH), mask)


def state_json(state: dict[str, Any], mask: Callable[[str], str] | None) -> str:
    """The state to commit, as stored; a state that cannot be encoded (a value nested hundreds of
    levels deep: `let state.tree = r` of a deep record) is a StateNotKept saying so, never cut, since
    the next run would read the cut value as its state. Before, the RecursionError ended the run as
    'internal error ... a bug in flowlang' with its counts lost."""
    try:
        return masked_json(state, mask)
    except (JsonDataError, RecursionError):
        raise StateNotKept("the state cannot be kept: a value in it nests more than a few hundred levels "
                           "deep (lists or objects inside each other); the state of the run before stays") from None


def now_text() -> str:
    return format_datetime(datetime.now(UTC))


ERROR_COLUMNS = ("id, flow, job_id, loop, location, line, message, kind, status, record, {scope}, created_at, "
                 "attempts, last_attempt_at, resolved_at, resolved_by, loop_id, trace_key, resolved_reason, history, "
                 "last_job_id, scope_refs, note, loop_nth, loop_same")
PAGE = 200  # errors read at a time when they are listed


@dataclass
class StoredError:
    id: int
    flow: str
    job_id: int
    loop: str  # "line:col" where the loop was when the error was stored (for people)
    location: str
    line: int | None
    message: str
    kind: str
    status: int | None
    record: Any
    scope: dict[str, Any]
    created_at: str
    attempts: int
    last_attempt_at: str
    resolved_at: str | None
    resolved_by: int | None = None
    loop_id: str | None = None  # the loop's identity: what retry matches against the flow
    key: str | None = None  # the trace key as JSON text
    resolved_reason: str | None = None
    history: list[Any] | None = None
    last_job_id: int | None = None
    note: str | None = None  # what the store left out (max_error_bytes)
    damaged: str | None = None  # why the saved record or scope cannot be read (the row is damaged)
    loop_nth: int | None = None  # the loop's place among those of its variables and list (None: stored before)
    loop_same: int | None = None  # how many loops of the flow had its variables and list

    @property
    def key_value(self) -> Any:
        try:
            return loads(self.key) if self.key is not None else None
        except JsonDataError:
            return self.key


def _stored_error(r: tuple[Any, ...], scope: Callable[[], dict[str, Any]] | None) -> StoredError:
    """A row of the errors table (its scope read by `scope`, or left empty); a damaged column (not JSON)
    makes that one error say so, never the whole list fail."""
    problems: list[str] = []

    def column(read: Callable[[], Any], what: str, empty: Any) -> Any:
        try:
            return read()
        except (JsonDataError, TypeError, ValueError, RecursionError) as e:
            problems.append(f"its saved {what} is damaged ({e})")
            return empty

    record = column(lambda: from_stored(loads(r[9]), secret_refs=True), "record", None)
    values = column(scope, "scope", {}) if scope is not None else {}
    history = column(lambda: loads(r[19]), "history", None) if r[19] else None
    return StoredError(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], record,
                       values if isinstance(values, dict) else {}, r[11], r[12], r[13], r[14], r[15], r[16], r[17],
                       r[18], history, r[20], r[22], "; ".join(problems) or None, r[23], r[24])


@dataclass(frozen=True)
class StoredScope:
    """A failed record's scope as it goes into the store: each value's JSON under its hash, the note."""

    refs: dict[str, str]  # name -> hash
    values: dict[str, str]  # hash -> JSON text
    note: str | None


def stored_scope(record_json: str, scope: dict[str, Any], mask: Callable[[str], str] | None,
                 max_bytes: int | None, oversized: list[str] | tuple[str, ...] = (),
                 encoded_before: dict[str, str] | None = None) -> StoredScope:
    """Encode a failure's scope for the values table, leaving out the largest values while the error
    (its record and its scope values, each counted whole even when shared) is over max_bytes. The
    record is never cut: it is what a retry sends. `oversized`: names already left out, each alone
    past max_bytes (not in `scope`)."""
    encoded = {name: masked_json(value, mask) for name, value in scope.items()}
    encoded.update(encoded_before or {})  # values whose stored text was worked out before (EncodedInput)
    size = len(record_json.encode()) + sum(len(v.encode()) for v in encoded.values())
    left_out: list[str] = list(oversized)
    if max_bytes is not None and size > max_bytes:
        for name in sorted(encoded, key=lambda n: (-len(encoded[n]), n)):
            if size <= max_bytes:
                break
            size -= len(encoded.pop(name).encode())
            left_out.append(name)
    note = None
    if left_out:
        named = sorted("the run's input" if name == SAVED_INPUT else name for name in left_out)
        note = (f"over the {max_bytes:,}-byte limit of one error (max_error_bytes): the value"
                f"{'s' if len(left_out) > 1 else ''} of {', '.join(named)} not kept; "
                + ("a retry leaves it open, as its loop reads input" if SAVED_INPUT in left_out else
                   "a retry takes them from the flow's top-level lines, or leaves the error open where those "
                   "do not work them out"))
        if size > (max_bytes or 0):
            note += f"; the record alone is {len(record_json.encode()):,} bytes and is kept whole"
    elif max_bytes is not None and size > max_bytes:
        note = (f"the record is {len(record_json.encode()):,} bytes, over the {max_bytes:,}-byte limit of one "
                "error (max_error_bytes); kept whole, a retry sends it")
    refs = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in encoded.items()}
    return StoredScope(refs, {refs[name]: text for name, text in encoded.items()}, note)


def disk_full(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)


def write_refused(error: sqlite3.Error) -> bool:
    """SQLite's 'disk I/O error': the system refused a write, as it does past a file size limit (`ulimit -f`,
    EFBIG: the write-ahead log grows until it reaches it) or on a failing disk."""
    code = getattr(error, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_IOERR) or str(error) == "disk I/O error"


DAMAGED_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged(error: sqlite3.Error) -> bool:
    """Whether SQLite found the file damaged (a torn or overwritten page, not a database at all)."""
    code = getattr(error, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in DAMAGED_CODES) or "malformed" in str(error)


def _canonical_trace_key(text: Any) -> Any:
    """flowlang_key(trace_key) in the store's SQL: a stored trace key in its canonical text (runtime/keys.py)."""
    return canonical_stored(text) if isinstance(text, str) else text


def damaged_store(path: str, error: sqlite3.Error) -> StoreError:
    return StoreError(f"the store {path} is damaged or is not a flowlang store ({error}); move it away to start "
                      "a new one (its jobs, state and errors stay in it)")


class DamageSaid(sqlite3.Connection):
    """A connection whose statements and row reads that meet a damaged file raise `said(error)` (a
    StoreError naming the file), never an sqlite3 error from deep inside a command."""

    path = ""

    def said(self, error: sqlite3.Error) -> StoreError:
        return damaged_store(self.path, error)

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            if damaged(e):
                raise self.said(e) from None
            raise

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]  # execute() makes its cursor here
        return super().cursor(factory or _Cursor)


class StoreFull(StoreError):
    """The store's disk is full: nothing more can be written to it (the write was rolled back)."""


class StateNotKept(StoreError):
    """The run's state cannot be encoded to be kept (it nests too deeply): nothing was written."""


class _Connection(DamageSaid):
    """The store's database connection: a full disk is a StoreFull naming the file, not an sqlite3 error
    from deep inside a run (every write of the store, its ledger and its checkpoints goes through here)."""

    path = ""
    reserve: Path | None = None  # room kept free for when the disk fills: released at the first full write
    released = False  # the reserve was just released: the write that failed may be tried once more
    spent: StoreError | None = None  # the reserve is in use: the run is ending

    def _full(self, error: sqlite3.Error) -> StoreError:
        if not disk_full(error):  # a file size limit: the log of writes reached it; moved into the database
            return self._refused(error)  # file and emptied, it has room again for what must not be lost
        if self.reserve is not None:
            try:
                self.reserve.unlink()
                self.released = True
            except OSError:
                pass
            self.reserve = None
        return StoreFull(f"the disk is full: the store {self.path} cannot be written ({error}); free some space "
                         "and run again")

    def _refused(self, error: sqlite3.Error) -> StoreError:
        try:
            if self.in_transaction:
                self.rollback()
            sqlite3.Connection.execute(self, "PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            self.released = True
        except sqlite3.Error:
            pass
        return StoreFull(f"the store {self.path} cannot be written ({error}: the system refused the write, as it "
                         "does past a file size limit such as ulimit -f, or on a failing disk); raise the limit "
                         "or move the state folder (--state-dir), and run again")

    @contextmanager
    def _said_when_full(self) -> Iterator[None]:
        """A full disk, and a damaged file found by a statement past the pages opening it reads (a page
        that a copy, a disk or a hand overwrote), are said naming the store, never an sqlite3 error."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and (disk_full(e) or write_refused(e)):
                raise self._full(e) from None
            if damaged(e):
                raise self.said(e) from None
            raise

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        with self._said_when_full():
            try:
                return super().execute(*args, **kwargs)
            except UnicodeEncodeError:  # a text holding a lone surrogate: bound as its \u escape, below
                if len(args) != 2:
                    raise
                return super().execute(args[0], _encodable(args[1]), **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        with self._said_when_full():
            try:
                return super().executemany(*args, **kwargs)
            except UnicodeEncodeError:
                if len(args) != 2:
                    raise
                return super().executemany(args[0], [_encodable(row) for row in args[1]], **kwargs)

    def __exit__(self, *exc: Any) -> Any:
        with self._said_when_full():  # the commit
            return super().__exit__(*exc)


class _Cursor(sqlite3.Cursor):
    """A cursor of the store: rows read from a damaged page say so naming the store (as _Connection)."""

    def _said(self, e: sqlite3.DatabaseError) -> Exception:
        connection = self.connection
        return connection.said(e) if damaged(e) and isinstance(connection, DamageSaid) else e

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as e:
            raise self._said(e) from None

    def fetchmany(self, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            return super().fetchmany(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise self._said(e) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as e:
            raise self._said(e) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as e:
            raise self._said(e) from None


def _encodable(params: Any) -> Any:
    """Parameters whose texts are UTF-8: a lone surrogate (broken text from the data, a JSON "\\ud800",
    or bytes a server sent that are not UTF-8, as "\\udcff") is kept as its \\u escape, as JSON outputs
    carry it. Before, sqlite3 refused the whole row: an error message holding one failed the run and
    the failed record was never kept."""
    def one(value: Any) -> Any:
        return surrogates_escaped(value) if type(value) is str else value
    if isinstance(params, dict):
        return {k: one(v) for k, v in params.items()}
    return [one(v) for v in params]


Method = TypeVar("Method", bound=Callable[..., Any])
RESERVE = STATE_DB + "-reserve"  # beside the database: 256 KiB given back when the disk fills
RESERVE_BYTES = 256 * 1024


def keep_reserve(path: Path) -> Path | None:
    """A file holding RESERVE_BYTES of the disk, so that when the disk fills up the store can still
    record the failed record and end the job (it is removed then, and made again by a later run)."""
    if path.exists():
        return path
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return None
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:  # no room even for the reserve, or a file system without fallocate
        os.close(fd)
        path.unlink(missing_ok=True)
        return None
    os.close(fd)
    return path


def with_room(method: Method) -> Method:
    """A write of the store that, when it fails on a full disk just as the reserve is given back, is
    tried once more in the reserve's room (the failed record, the end of the job: what must not be
    lost). A failed record kept that way still raises StoreFull, so the run ends and leaves the rest of
    the room to record the job; after it, no failed record is written."""
    keeps_record = method.__name__ == "add_error"

    @functools.wraps(method)
    def again(self: Store, *args: Any, **kwargs: Any) -> Any:
        spent = getattr(self.db, "spent", None)
        if keeps_record and spent is not None:
            raise spent
        try:
            return method(self, *args, **kwargs)
        except StoreFull as e:
            if not getattr(self.db, "released", False):
                raise
            self.db.released = False  # type: ignore[attr-defined]
            self.db.spent = e  # type: ignore[attr-defined]
            result = method(self, *args, **kwargs)
            if keeps_record:
                raise StoreFull(e.message + "; the failed record was kept") from None
            return result
    return cast(Method, again)


def job_of(job: dict[str, Any]) -> dict[str, Any]:
    """A row of the jobs table with its counts read (`stats`: an object, {} when none were kept); counts
    that cannot be read (a disk or a hand changed them) are {} and `damaged` says why, so that listing
    the jobs (and the estimate a run shows from them) never fails on one."""
    try:
        stats = loads(job["stats"]) if job["stats"] else {}
        if type(stats) is not dict:
            raise ValueError("not an object")
    except (JsonDataError, ValueError, RecursionError) as e:
        return {**job, "stats": {}, "damaged": f"its counts are damaged in the store ({e})"}
    return {**job, "stats": stats}


class Store:
    """Jobs, state and errors of the flows that share one state folder. Everything the runtime and
    the CLI keep goes through this interface (SCALE.md: one interface in front of the store)."""

    def __init__(self, folder: Path | None, read_only: bool = False) -> None:
        """`read_only`: a store in a folder this process cannot write (a read-only mount, a store another
        user's cron keeps), opened to be read as it is: SQLite's write-ahead log needs a file beside the
        database that such a folder cannot hold, so without one the file is read as immutable."""
        self.folder = folder
        self.input_memo = InputMemo()  # the run's input, encoded once for all its failures
        self.where = str(folder.resolve()) if folder is not None else f"memory:{id(self)}"  # for LIVE_JOBS
        try:
            self._open(folder, read_only)
        except BaseException:
            db: sqlite3.Connection | None = getattr(self, "db", None)
            if db is not None:  # opened, then refused (read-only, damaged): not left open, holding its file busy
                db.close()
            raise

    def _open(self, folder: Path | None, read_only: bool) -> None:
        try:
            if folder is None:
                self.db = sqlite3.connect(":memory:", isolation_level=None)
            elif read_only:
                path = folder / STATE_DB
                logged = path.with_name(STATE_DB + "-wal").exists()  # a run writes it now: read it through its log
                uri = path.resolve().as_uri() + ("?mode=ro" if logged else "?mode=ro&immutable=1")
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30, factory=_Connection)
                self.db.path = str(path)
            else:
                folder.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(private_file(folder / STATE_DB), isolation_level=None, timeout=30,
                                          factory=_Connection)
                self.db.path = str(folder / STATE_DB)
                self.db.reserve = keep_reserve(folder / RESERVE)
                self.db.execute("pragma journal_mode=wal")
                self.db.execute("pragma synchronous=full")
            # a stored trace key in its canonical text (`errors --key 1` finds one an earlier version kept as 1.0)
            self.db.create_function("flowlang_key", 1, _canonical_trace_key, deterministic=True)
            self.db.executescript(SCHEMA)
            self.ledger = Ledger(self.db)
            self.checkpoints = Checkpoints(self.db)
            self._migrate()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) or folder is None:  # cannot open, read-only, locked
                why = str(e)
                if folder is not None and (folder / STATE_DB).is_dir():  # SQLite says only 'unable to open ...'
                    why = f"{e}: {folder / STATE_DB} is a folder, not the store's SQLite file"
                elif folder is not None and folder.is_dir() and not os.access(folder, os.W_OK):
                    why = f"{e}: this process cannot write the folder (a read-only file system, or another user's)"
                raise StoreError(f"cannot use the state folder {folder}: {why} (set --state-dir or "
                                 "FLOWLANG_STATE_DIR to a folder you can write)") from None
            raise damaged_store(str(folder / STATE_DB), e) from None
        except (OSError, sqlite3.Error) as e:
            why = (e.strerror or str(e)) if isinstance(e, OSError) else str(e)  # not "[Errno 2] ... '/x'" again
            if folder is not None:
                blocking = next((p for p in (folder, *folder.parents) if p.is_file()), None)
                if blocking is not None:  # mkdir says only "File exists" or "Not a directory"
                    why = f"{blocking} is a file, not a folder"
            raise StoreError(f"cannot use the state folder {folder}: {why} (set --state-dir or "
                             "FLOWLANG_STATE_DIR to a folder you can write)") from None

    def _migrate(self) -> None:
        for table, column, decl in MIGRATIONS:
            have = {r[1] for r in self.db.execute(f"pragma table_info({table})")}
            if column not in have:
                try:
                    self.db.execute(f"alter table {table} add column {column} {decl}")
                except sqlite3.OperationalError as e:  # another process added it first
                    if "duplicate column" not in str(e):
                        raise
        self.db.execute(INDEXES)

    def close(self) -> None:
        self.db.close()

    def _tx(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        with self.db:
            self.db.execute("begin immediate")
            return self.db.execute(sql, args)

    # ---- jobs --------------------------------------------------------------------------------
    @with_room
    def start_job(self, flow: str, params: dict[str, Any], dry_run: bool, kind: str = "run",
                  mask: Callable[[str], str] | None = None) -> tuple[int, str]:
        """A new job; jobs of this flow still marked running whose process is gone died without ending and
        are marked crashed, ended at their last checkpoint (their last sign of life; unknown without one: not
        the time this job starts, which would add the time between). One whose process still runs is left
        running: a `flowlang serve` runs deliveries of a flow with `concurrency` above 1 at once, without
        the flow's lock, and a `flowlang run` may go on beside them."""
        started = now_text()
        running = self.db.execute("select id, process from jobs where flow = ? and status = 'running'",
                                  (flow,)).fetchall()
        dead = [(r[0],) for r in running if not alive(r[1], self.where, r[0])]
        if dead:
            with self.db:
                self.db.execute("begin immediate")
                self.db.executemany("update jobs set status = 'crashed', ended_at = (select max(c.updated_at) "
                                    "from checkpoints c where c.job_id = jobs.id) where id = ? and status = "
                                    "'running'", dead)
        cur = self._tx("insert into jobs(flow, started_at, dry_run, kind, params, process) values (?, ?, ?, ?, ?, ?)",
                       (flow, started, int(dry_run), kind, masked_params(params, mask), this_process()))
        assert cur.lastrowid is not None
        LIVE_JOBS.add((self.where, cur.lastrowid))
        return cur.lastrowid, started

    def ended_here(self, job_id: int) -> None:
        """This process no longer runs the job (recorded as ended, or cut off: then it crashed)."""
        LIVE_JOBS.discard((self.where, job_id))

    def last_success_at(self, flow: str) -> str | None:
        """When the last real run that finished started (tests, dry runs and retries do not count);
        `flowlang state --last-success-at` / `--reset` jobs set it by hand."""
        marks = ", ".join("?" for _ in DELTA_KINDS)
        row = self.db.execute(
            f"select coalesce(success_at, started_at) from jobs where flow = ? and ((status in ('ok', 'partial') "
            f"and dry_run = 0 and kind in ({marks})) or success_at is not null) order by id desc limit 1",
            (flow, *DELTA_KINDS)).fetchone()
        return row[0] if row and row[0] else None

    @with_room
    def finish_job(self, job_id: int, status: str, stats: dict[str, Any] | None, message: str | None,
                   flow: str, state: dict[str, Any] | None, mask: Callable[[str], str] | None = None,
                   params: dict[str, Any] | None = None, clear_checkpoints: bool = False) -> None:
        """End a job; when state is given it is committed in the same transaction, and so is the clearing
        of the flow's checkpoints (a finished run leaves nothing to resume). The params are stored again,
        masked with every secret the run has read. Without stats, the job keeps the counts its last
        checkpoint wrote (a hard stop that cannot reach the run's counters)."""
        kept = None if state is None else state_json(state, mask)  # before anything is written
        LIVE_JOBS.discard((self.where, job_id))
        with self.db:
            self.db.execute("begin immediate")
            if clear_checkpoints:
                self.db.execute("delete from checkpoints where flow = ?", (flow,))
            self.db.execute("update jobs set ended_at = ?, status = ?, stats = coalesce(?, stats), message = ? "
                            "where id = ?", (now_text(), status, dumps(stats) if stats is not None else None,
                                             message, job_id))
            if params is not None:
                self.db.execute("update jobs set params = ? where id = ?", (masked_params(params, mask), job_id))
            if kept is not None:
                self._write_state(flow, kept, job_id)

    def _write_state(self, flow: str, value: str, job_id: int) -> None:
        self.db.execute(
            "insert into state(flow, value, job_id, updated_at) values (?, ?, ?, ?) "
            "on conflict(flow) do update set value = excluded.value, job_id = excluded.job_id, "
            "updated_at = excluded.updated_at", (flow, value, job_id, now_text()))

    def admin_job(self, flow: str, kind: str, message: str, success_at: str | None = None) -> int:
        """A change made by hand (resolve, edit, state, ledger): recorded as a finished job of its own."""
        when = now_text()
        cur = self._tx("insert into jobs(flow, started_at, ended_at, status, kind, message, success_at, stats) "
                       "values (?, ?, ?, 'ok', ?, ?, ?, '{}')", (flow, when, when, kind, message, success_at))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def mark_resumed(self, job_id: int, from_job: int | None) -> None:
        """This job continues the checkpoints of `from_job` (flowlang run --resume)."""
        self._tx("update jobs set resumed_from = ? where id = ?", (from_job, job_id))

    def jobs(self, flow: str, limit: int = 20) -> list[dict[str, Any]]:
        """The flow's last jobs, newest first. One left `running` by a process that is gone (killed outright)
        reads `crashed`, as the next run of the flow records it (start_job), with `recorded: "running"`:
        reading changes nothing in the store."""
        rows = self.db.execute(
            "select id, started_at, ended_at, status, dry_run, kind, stats, message, resumed_from, process from jobs "
            "where flow = ? order by id desc limit ?", (flow, limit)).fetchall()
        keys = ("id", "started_at", "ended_at", "status", "dry_run", "kind", "stats", "message", "resumed_from")
        out = []
        for row in rows:
            job = job_of(dict(zip(keys, row[:-1], strict=True)))
            if job["status"] == "running" and not alive(row[-1], self.where, job["id"]):
                job["status"], job["recorded"] = "crashed", "running"
            out.append(job)
        return out

    # ---- state -------------------------------------------------------------------------------
    def load_state(self, flow: str) -> dict[str, Any]:
        return self.state_of(flow, self.stored_state(flow))

    def stored_state(self, flow: str) -> Any:
        """The persisted state as stored: JSON in the tagged form (to_stored), tags not read."""
        row = self.db.execute("select value from state where flow = ?", (flow,)).fetchone()
        if not row:
            return {}
        try:
            return loads(row[0])
        except (JsonDataError, RecursionError) as e:
            raise StoreError(f"the saved state of the flow {flow} is damaged (it is not JSON: {e}); forget it with "
                             "flowlang state --reset") from None

    @staticmethod
    def state_of(flow: str, stored: Any) -> dict[str, Any]:
        """The state a stored (tagged) value holds; a tag that holds no value of its kind is a StoreError."""
        try:
            value = from_stored(stored)
        except (JsonDataError, TypeError, ValueError, RecursionError) as e:
            raise StoreError(f"the saved state of the flow {flow} is damaged ({e}); see it with flowlang state, "
                             "then set it again with flowlang state --set or --unset, or --reset") from None
        return value if isinstance(value, dict) else {}

    def replace_state(self, flow: str, state: dict[str, Any] | None, job_id: int) -> None:
        """Set the persisted state by hand (None: forget it)."""
        with self.db:
            self.db.execute("begin immediate")
            if state is None:
                self.db.execute("delete from state where flow = ?", (flow,))
            else:
                self._write_state(flow, dumps_stored(state), job_id)

    # ---- errors ------------------------------------------------------------------------------
    @with_room
    def add_error(self, job_id: int, failure: RecordFailure, mask: Any, max_bytes: int | None = None,
                  also: Collection[str] = ()) -> int:
        """Keep a failed iteration. A keyed record replaces the open error of the same loop and key
        (one open error per key; its attempts go up), or of a text in `also` (what an earlier version
        wrote for the key: `1.0`, see open_keys). Its scope values go to the shared values table."""
        when = now_text()
        record, scope = storable(failure, mask, max_bytes, self.input_memo)
        with self.db:
            self.db.execute("begin immediate")
            self._put_values(scope)
            if failure.key is not None:
                texts = [failure.key, *also]
                row = self.db.execute(
                    "select id from errors where flow = ? and loop_id = ? and trace_key in "
                    f"({', '.join('?' for _ in texts)}) and resolved_at is null order by id limit 1",
                    (failure.flow, failure.loop_id, *texts)).fetchone()
                if row is not None:
                    self._update_failed(row[0], job_id, failure, mask, record, scope, when)
                    return int(row[0])
            cur = self.db.execute(
                "insert into errors(flow, job_id, loop, location, line, message, kind, status, record, scope, "
                "created_at, last_attempt_at, loop_id, trace_key, last_job_id, scope_refs, note, loop_nth, loop_same) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (failure.flow, job_id, failure.loop, failure.location, failure.line, mask(failure.message),
                 failure.kind, failure.status, record, dumps(scope.refs), when, when, failure.loop_id, failure.key,
                 job_id, scope.note, failure.loop_nth, failure.loop_same))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def _put_values(self, scope: StoredScope) -> None:
        self.db.executemany("insert or ignore into error_values(hash, value) values (?, ?)", scope.values.items())

    def _update_failed(self, error_id: int, job_id: int, failure: RecordFailure, mask: Any, record: str,
                       scope: StoredScope, when: str) -> None:
        self.db.execute(
            "update errors set attempts = attempts + 1, last_attempt_at = ?, last_job_id = ?, message = ?, "
            "location = ?, line = ?, kind = ?, status = ?, record = ?, scope = ?, scope_refs = 1, note = ?, "
            "loop = ? where id = ?",
            (when, job_id, mask(failure.message), failure.location, failure.line, failure.kind, failure.status,
             record, dumps(scope.refs), scope.note, failure.loop, error_id))

    def fail_again(self, error_id: int, job_id: int, failure: RecordFailure, mask: Any,
                   max_bytes: int | None = None) -> None:
        """A retried error failed again: the same error, one more attempt, the new message."""
        record, scope = storable(failure, mask, max_bytes, self.input_memo)
        with self.db:
            self.db.execute("begin immediate")
            self._put_values(scope)
            self._update_failed(error_id, job_id, failure, mask, record, scope, now_text())

    def open_loops(self, flow: str) -> list[tuple[str, int | None, int | None]]:
        """The loops (identity, nth, count) that open errors point at."""
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            "select distinct loop_id, loop_nth, loop_same from errors where flow = ? and resolved_at is null "
            "and loop_id is not null", (flow,))]

    @with_room
    def move_errors(self, flow: str, moves: list[tuple[tuple[str, int | None, int | None],
                                                     tuple[str, int | None, int | None]]]) -> None:
        """Open errors follow their loop to its identity after an edit (compile/loops.py, moved_errors)."""
        with self.db:
            self.db.execute("begin immediate")
            for (identity, nth, count), (now_identity, now_nth, now_count) in moves:
                self.db.execute(
                    "update errors set loop_id = ?, loop_nth = ?, loop_same = ? where flow = ? and resolved_at is "
                    "null and loop_id = ? and loop_nth is ? and loop_same is ?",
                    (now_identity, now_nth, now_count, flow, identity, nth, count))

    def open_keys(self, flow: str, lost: frozenset[tuple[str, int | None, int | None]] = frozenset(),
                  kept_as: dict[tuple[str, str], list[str]] | None = None) -> dict[str, set[str]]:
        """The trace keys with an open error, per loop identity, in their canonical text (runtime/keys.py);
        not those of the loops in `lost` (identity, nth, count), which an edit made impossible to tell
        apart: another loop has their identity now. An error an earlier version kept under another text
        of its key (`1.0`, `[1.50]`) is under its canonical one (`1`, `[1.5]`), and `kept_as` gets the
        text it is stored under, per (loop identity, canonical key), for resolve_key and add_error."""
        out: dict[str, set[str]] = {}
        for loop_id, nth, count, key in self.db.execute(
                "select loop_id, loop_nth, loop_same, trace_key from errors where flow = ? and resolved_at is null "
                "and trace_key is not null and loop_id is not null", (flow,)):
            if (loop_id, nth, count) not in lost:
                text = canonical_stored(key)
                out.setdefault(loop_id, set()).add(text)
                if text != key and kept_as is not None:
                    kept_as.setdefault((loop_id, text), []).append(key)
        return out

    def resolve_key(self, flow: str, loop_id: str, key: str, job_id: int, also: Collection[str] = ()) -> list[int]:
        """A later success of a keyed record resolves its open error: under its key's text, or a text in
        `also` (what an earlier version wrote for the key, open_keys)."""
        texts = [key, *also]
        among = f"trace_key in ({', '.join('?' for _ in texts)})"
        with self.db:
            self.db.execute("begin immediate")
            ids = [r[0] for r in self.db.execute(
                f"select id from errors where flow = ? and loop_id = ? and {among} and resolved_at is null",
                (flow, loop_id, *texts))]
            when = now_text()
            self.db.execute(
                "update errors set resolved_at = ?, resolved_by = ?, resolved_reason = ? "
                f"where flow = ? and loop_id = ? and {among} and resolved_at is null",
                (when, job_id, f"a later success (job {job_id})", flow, loop_id, *texts))
        return ids

    def _error_query(self, flow: str, include_resolved: bool, key: str | list[str] | None, ids: list[int] | None,
                     match: str | None) -> tuple[str, list[Any]]:
        sql = " from errors where flow = ?"
        args: list[Any] = [flow]
        if not include_resolved:
            sql += " and resolved_at is null"
        if key is not None:  # a key's canonical texts: found kept under them, or under another text of theirs
            keys = [key] if isinstance(key, str) else key
            marks = ", ".join("?" for _ in keys)
            sql += f" and (trace_key in ({marks}) or flowlang_key(trace_key) in ({marks}))"
            args.extend(keys)
            args.extend(keys)
        if ids:
            sql += f" and id in ({', '.join('?' for _ in ids)})"
            args.extend(ids)
        if match is not None:
            sql += " and instr(message, ?) > 0"
            args.append(match)
        return sql, args

    def _scope_of(self, text: str, refs: int | None) -> dict[str, Any]:
        if not refs:
            value = from_stored(loads(text), secret_refs=True)
            return value if isinstance(value, dict) else {}
        hashes: dict[str, str] = loads(text)
        out: dict[str, Any] = {}
        for name, digest in hashes.items():
            row = self.db.execute("select value from error_values where hash = ?", (digest,)).fetchone()
            if row is not None:
                out[name] = from_stored(loads(row[0]), secret_refs=True)
        return out

    def errors(self, flow: str, *, include_resolved: bool = False, key: str | list[str] | None = None,
               ids: list[int] | None = None, match: str | None = None) -> list[StoredError]:
        """The errors with their scopes (what a replay needs)."""
        return list(self.iter_errors(flow, include_resolved=include_resolved, key=key, ids=ids, match=match,
                                     scope=True))

    def iter_errors(self, flow: str, *, include_resolved: bool = False, key: str | list[str] | None = None,
                    ids: list[int] | None = None, match: str | None = None, scope: bool = False,
                    limit: int | None = None, offset: int = 0) -> Iterator[StoredError]:
        """The errors in id order, read a page at a time (memory stays flat however many there are);
        without `scope` their scopes are left empty (listing them needs none)."""
        where, args = self._error_query(flow, include_resolved, key, ids, match)
        columns = ERROR_COLUMNS.format(scope="scope" if scope else "'{}'")
        after = 0
        skip = offset
        left = limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            rows = self.db.execute(f"select {columns}{where} and id > ? order by id limit ? offset ?",
                                   [*args, after, size, skip]).fetchall()
            skip = 0
            if not rows:
                return
            for r in rows:
                yield _stored_error(r, partial(self._scope_of, r[10], r[21]) if scope else None)
            after = rows[-1][0]
            if left is not None:
                left -= len(rows)
            if len(rows) < size:
                return

    def count_errors(self, flow: str, *, include_resolved: bool = False, key: str | list[str] | None = None) -> int:
        where, args = self._error_query(flow, include_resolved, key, None, None)
        return int(self.db.execute(f"select count(*){where}", args).fetchone()[0])

    def error_groups(self, flow: str, *, include_resolved: bool = False,
                     key: str | list[str] | None = None) -> list[ErrorGroup]:
        """The errors grouped by the shape of their message (runtime/error_groups.py), the largest group
        first; the rows are read as a stream, so memory holds the groups, not the errors."""
        where, args = self._error_query(flow, include_resolved, key, None, None)
        return group_errors(self.db.execute(f"select id, message, location{where} order by id", args))

    def open_errors(self, flow: str, error_id: int | None = None) -> list[StoredError]:
        return self.errors(flow, ids=[error_id] if error_id is not None else None)

    def get_error(self, flow: str, error_id: int) -> tuple[StoredError | None, bool]:
        """The error with that id (open or not) and whether it is resolved."""
        found = self.errors(flow, include_resolved=True, ids=[error_id])
        if not found:
            return None, False
        if found[0].resolved_at is not None:
            return None, True
        return found[0], False

    def held_files(self, flow: str, connection: str) -> list[dict[str, Any]]:
        """The files a pick-up read to the end but held back for failed records (connectors/pickup.py)."""
        row = self.db.execute("select files from pickup_held where flow = ? and connection = ?",
                              (flow, connection)).fetchone()
        return list(loads(row[0])) if row else []

    def set_held_files(self, flow: str, connection: str, files: list[dict[str, Any]]) -> None:
        if files:
            self._tx("insert into pickup_held(flow, connection, files) values (?, ?, ?) on conflict(flow, connection) "
                     "do update set files = excluded.files", (flow, connection, dumps(files)))
        else:
            self._tx("delete from pickup_held where flow = ? and connection = ?", (flow, connection))

    def still_open(self, ids: list[int]) -> set[int]:
        """Which of these errors are still open (not resolved, and not purged)."""
        found: set[int] = set()
        for at in range(0, len(ids), 500):
            part = ids[at:at + 500]
            marks = ", ".join("?" for _ in part)
            found.update(r[0] for r in self.db.execute(
                f"select id from errors where id in ({marks}) and resolved_at is null", part))
        return found

    def resolve(self, error_id: int, job_id: int, reason: str | None = None) -> None:
        """Resolve one error: by a successful retry (attempts go up) or by hand (with a reason)."""
        when = now_text()
        if reason is None:
            self._tx("update errors set resolved_at = ?, resolved_by = ?, attempts = attempts + 1, "
                     "last_attempt_at = ?, resolved_reason = ? where id = ? and resolved_at is null",
                     (when, job_id, when, f"retried (job {job_id})", error_id))
        else:
            self._tx("update errors set resolved_at = ?, resolved_by = ?, resolved_reason = ? "
                     "where id = ? and resolved_at is null", (when, job_id, reason, error_id))

    def note_attempt(self, error_id: int, message: str) -> None:
        self._tx("update errors set attempts = attempts + 1, last_attempt_at = ?, message = ? where id = ?",
                 (now_text(), message, error_id))

    def edit_record(self, error_id: int, record: Any, job_id: int) -> None:
        """Replace an open error's saved record; the old one goes to the error's history."""
        with self.db:
            self.db.execute("begin immediate")
            row = self.db.execute("select record, history from errors where id = ?", (error_id,)).fetchone()
            history = loads(row[1]) if row and row[1] else []
            history.append({"at": now_text(), "job_id": job_id, "record": loads(row[0]) if row else None})
            self.db.execute("update errors set record = ?, history = ? where id = ?",
                            (dumps_stored(record), dumps(history), error_id))

    def open_of_resumed(self, flow: str, job_id: int) -> int:
        """`--resume`: how many of the flow's open errors last failed in the job resumed (or a job that one resumed,
        and so on): the records of the one run that failed before its checkpoint, and that no later job settled."""
        jobs: list[int] = []
        at: int | None = job_id
        while at is not None and at not in jobs and len(jobs) < 1000:
            jobs.append(at)
            row = self.db.execute("select resumed_from from jobs where id = ?", (at,)).fetchone()
            at = row[0] if row else None
        marks = ", ".join("?" for _ in jobs)
        row = self.db.execute(f"select count(*) from errors where flow = ? and resolved_at is null and "
                              f"coalesce(last_job_id, job_id) in ({marks})", (flow, *jobs)).fetchone()
        return int(row[0])

    def count_open(self, flow: str) -> int:
        row = self.db.execute("select count(*) from errors where flow = ? and resolved_at is null", (flow,)).fetchone()
        return int(row[0])

    def purge_resolved(self, flow: str, days: int = RETENTION_DAYS, keep: int = RETENTION_PER_LOOP) -> int:
        """Forget resolved errors older than `days` and those beyond the newest `keep` of each loop."""
        cutoff = format_datetime(datetime.now(UTC) - timedelta(days=days))
        with self.db:
            self.db.execute("begin immediate")
            old = self.db.execute("delete from errors where flow = ? and resolved_at is not null and resolved_at < ?",
                                  (flow, cutoff)).rowcount
            many = self.db.execute(
                "delete from errors where id in (select id from (select id, row_number() over (partition by "
                "coalesce(loop_id, loop) order by id desc) as n from errors where flow = ? and resolved_at is not "
                "null) where n > ?)", (flow, keep)).rowcount
            self.db.execute("delete from error_values where hash not in (select j.value from errors, "
                            "json_each(errors.scope) as j where errors.scope_refs = 1)")
        return int(old) + int(many)
