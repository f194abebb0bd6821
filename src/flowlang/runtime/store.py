"""The flow store: one SQLite file per state folder holding job history, each flow's state and
the error store. Every change is one transaction (WAL, synchronous=FULL): a crash leaves the old
or the new state, never a torn one."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowlang.errors import StoreError
from flowlang.runtime.jsoncodec import dumps, dumps_stored, from_stored, loads
from flowlang.runtime.ledger import Ledger
from flowlang.runtime.run import RecordFailure
from flowlang.runtime.values import format_datetime

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
"""

STATE_DB = "flowlang.db"


def now_text() -> str:
    return format_datetime(datetime.now(UTC))


@dataclass
class StoredError:
    id: int
    flow: str
    job_id: int
    loop: str
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


class Store:
    """Jobs, state and errors of the flows that share one state folder."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        try:
            if folder is None:
                self.db = sqlite3.connect(":memory:", isolation_level=None)
            else:
                folder.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(folder / STATE_DB, isolation_level=None, timeout=30)
                self.db.execute("pragma journal_mode=wal")
                self.db.execute("pragma synchronous=full")
            self.db.executescript(SCHEMA)
            self.ledger = Ledger(self.db)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot use the state folder {folder}: {e} (set --state-dir or "
                             "FLOWLANG_STATE_DIR to a folder you can write)") from None

    def close(self) -> None:
        self.db.close()

    def _tx(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        with self.db:
            self.db.execute("begin immediate")
            return self.db.execute(sql, args)

    # ---- jobs --------------------------------------------------------------------------------
    def start_job(self, flow: str, params: dict[str, Any], dry_run: bool, kind: str = "run") -> tuple[int, str]:
        """A new job; jobs of this flow still marked running died without ending (the caller holds the
        flow's lock) and are marked crashed."""
        started = now_text()
        self._tx("update jobs set status = 'crashed', ended_at = ? where flow = ? and status = 'running'",
                 (started, flow))
        cur = self._tx("insert into jobs(flow, started_at, dry_run, kind, params) values (?, ?, ?, ?, ?)",
                       (flow, started, int(dry_run), kind, dumps_stored(params)))
        assert cur.lastrowid is not None
        return cur.lastrowid, started

    def last_success_at(self, flow: str) -> str | None:
        row = self.db.execute(
            "select started_at from jobs where flow = ? and status in ('ok', 'partial') and dry_run = 0 "
            "and kind in ('run', 'webhook', 'scheduled') order by id desc limit 1", (flow,)).fetchone()
        return row[0] if row else None

    def finish_job(self, job_id: int, status: str, stats: dict[str, Any], message: str | None,
                   flow: str, state: dict[str, Any] | None, mask: Any = None) -> None:
        """End a job; when state is given it is committed in the same transaction."""
        with self.db:
            self.db.execute("begin immediate")
            self.db.execute("update jobs set ended_at = ?, status = ?, stats = ?, message = ? where id = ?",
                            (now_text(), status, dumps(stats), message, job_id))
            if state is not None:
                self.db.execute(
                    "insert into state(flow, value, job_id, updated_at) values (?, ?, ?, ?) "
                    "on conflict(flow) do update set value = excluded.value, job_id = excluded.job_id, "
                    "updated_at = excluded.updated_at",
                    (flow, (mask or str)(dumps_stored(state)), job_id, now_text()))

    def jobs(self, flow: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "select id, started_at, ended_at, status, dry_run, kind, stats, message from jobs where flow = ? "
            "order by id desc limit ?", (flow, limit)).fetchall()
        keys = ("id", "started_at", "ended_at", "status", "dry_run", "kind", "stats", "message")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # ---- state -------------------------------------------------------------------------------
    def load_state(self, flow: str) -> dict[str, Any]:
        row = self.db.execute("select value from state where flow = ?", (flow,)).fetchone()
        if not row:
            return {}
        value = from_stored(loads(row[0]))
        return value if isinstance(value, dict) else {}

    # ---- errors ------------------------------------------------------------------------------
    def add_error(self, job_id: int, failure: RecordFailure, mask: Any) -> int:
        when = now_text()
        cur = self._tx(
            "insert into errors(flow, job_id, loop, location, line, message, kind, status, record, scope, "
            "created_at, last_attempt_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (failure.flow, job_id, failure.loop, failure.location, failure.line, mask(failure.message),
             failure.kind, failure.status, mask(dumps_stored(failure.record)), mask(dumps_stored(failure.scope)),
             when, when))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def open_errors(self, flow: str, error_id: int | None = None) -> list[StoredError]:
        sql = ("select id, flow, job_id, loop, location, line, message, kind, status, record, scope, created_at, "
               "attempts, last_attempt_at, resolved_at from errors where flow = ? and resolved_at is null")
        args: tuple[Any, ...] = (flow,)
        if error_id is not None:
            sql += " and id = ?"
            args += (error_id,)
        rows = self.db.execute(sql + " order by id", args).fetchall()
        out = []
        for r in rows:
            out.append(StoredError(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                                   from_stored(loads(r[9])), from_stored(loads(r[10])), r[11], r[12], r[13], r[14]))
        return out

    def get_error(self, flow: str, error_id: int) -> tuple[StoredError | None, bool]:
        """The error with that id (open or not) and whether it is resolved."""
        row = self.db.execute("select resolved_at from errors where flow = ? and id = ?", (flow, error_id)).fetchone()
        if row is None:
            return None, False
        if row[0] is not None:
            return None, True
        found = self.open_errors(flow, error_id)
        return (found[0] if found else None), False

    def resolve(self, error_id: int, job_id: int) -> None:
        self._tx("update errors set resolved_at = ?, resolved_by = ?, attempts = attempts + 1, "
                 "last_attempt_at = ? where id = ? and resolved_at is null", (now_text(), job_id, now_text(), error_id))

    def note_attempt(self, error_id: int, message: str) -> None:
        self._tx("update errors set attempts = attempts + 1, last_attempt_at = ?, message = ? where id = ?",
                 (now_text(), message, error_id))

    def count_open(self, flow: str) -> int:
        row = self.db.execute("select count(*) from errors where flow = ? and resolved_at is null", (flow,)).fetchone()
        return int(row[0])
