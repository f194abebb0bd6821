"""The durable inbox: every accepted delivery is committed to SQLite (`inbox.db` in the state folder)
before its 202. One writer thread owns the writes and commits the deliveries that arrive together in one
transaction (WAL, synchronous=FULL), so an answer never waits for more than one fsync and a crash after
an answer loses nothing. A delivery id seen before for a flow is a duplicate. Deliveries wait, run, and
end done or failed; failed ones stay for `flowlang inbox --replay`, done ones for DONE_KEPT_DAYS (their delivery
ids tell duplicates apart that long), then they are purged. Schedules keep their last tick here."""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from flowlang.errors import StoreError
from flowlang.runtime.store import RETENTION_DAYS, DamageSaid

SCHEMA = """
create table if not exists deliveries (
  id integer primary key autoincrement,
  flow text not null,
  delivery_id text,
  received_at text not null,
  content_type text not null default '',
  headers text not null,
  body blob not null,
  status text not null default 'waiting',
  job_id integer,
  attempts integer not null default 0,
  message text,
  finished_at text,
  cut_short integer not null default 0
);
create unique index if not exists deliveries_once on deliveries(flow, delivery_id);
create index if not exists deliveries_status on deliveries(status, flow, id);
create table if not exists ticks (
  flow text primary key,
  last_tick text not null,
  running text,
  cut_short integer not null default 0
);
"""
INBOX_DB = "inbox.db"
BATCH = 512  # deliveries committed together at most
# a delivery whose run ended done is kept this long after it ended (its id is a duplicate's that long: providers
# send again within hours or days), as the store keeps resolved errors; failed ones stay until replayed
DONE_KEPT_DAYS = RETENTION_DAYS


@dataclass
class Delivery:
    id: int
    flow: str
    delivery_id: str | None
    received_at: str
    content_type: str
    headers: dict[str, str]
    body: bytes
    status: str = "waiting"
    job_id: int | None = None
    attempts: int = 0
    message: str | None = None
    finished_at: str | None = None
    # its body is left in the inbox until its run starts (Inbox.with_body): 10,000 deliveries of 1MB waiting
    # (--max-pending, max_body) held 10GB in serve's memory, the same again after a restart
    lean: bool = False


def first_delivery(db: sqlite3.Connection, flow: str, delivery_id: str) -> tuple[int, int | None] | None:
    """The inbox id and job of the flow's first delivery with this provider id (a later one is its
    duplicate), or None."""
    row = db.execute("select id, job_id from deliveries where flow = ? and delivery_id = ?",
                     (flow, delivery_id)).fetchone()
    return (int(row[0]), row[1]) if row is not None else None


class InboxStore(Protocol):
    """What the server and the runs need from an inbox (SQLite here)."""

    def accept(self, delivery: Delivery,
               done: Callable[[int, bool], None]) -> Future[tuple[int, bool, int | None]]: ...

    def mark(self, delivery_id: int, status: str, job_id: int | None = None,
             message: str | None = None) -> Future[None]: ...

    def job_started(self, delivery_id: int, job_id: int | None) -> Future[None]: ...

    def waiting(self) -> list[Delivery]: ...

    def with_body(self, d: Delivery) -> Delivery: ...


Op = Callable[[sqlite3.Connection], Any]


class _InboxConnection(DamageSaid):
    def said(self, error: sqlite3.Error) -> StoreError:
        return damaged_inbox(self.path, error)


def damaged_inbox(path: str | Path, error: sqlite3.Error) -> StoreError:
    return StoreError(f"the inbox {path} is damaged or is not a flowlang inbox ({error}); move it away to start a "
                      "new one (the deliveries waiting in it are not run then)")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False, factory=_InboxConnection)
    db.path = str(path)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=full")
    return db


class Inbox:
    """The SQLite inbox of one state folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / INBOX_DB
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._write = _connect(self.path)
            self._write.executescript(SCHEMA)
            columns = {str(r[1]) for r in self._write.execute("pragma table_info(deliveries)").fetchall()}
            if "cut_short" not in columns:  # an inbox of a version before it
                self._write.execute("alter table deliveries add column cut_short integer not null default 0")
            columns = {str(r[1]) for r in self._write.execute("pragma table_info(ticks)").fetchall()}
            if "running" not in columns:
                self._write.execute("alter table ticks add column running text")
                self._write.execute("alter table ticks add column cut_short integer not null default 0")
            self._read = _connect(self.path)
        except sqlite3.DatabaseError as e:
            if not isinstance(e, sqlite3.OperationalError):  # not a database, or a damaged one
                raise damaged_inbox(self.path, e) from None
            raise StoreError(f"cannot use the inbox {self.path}: {e} (set --state-dir to a folder you can "
                             "write)") from None
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot use the inbox {self.path}: {e} (set --state-dir to a folder you can "
                             "write)") from None
        self._read_lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Op, Future[Any], Callable[[Any], None] | None] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._writer, name="flowlang-inbox", daemon=True)
        self._thread.start()

    # ---- the writer thread -------------------------------------------------------------------
    def _writer(self) -> None:
        db = self._write
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            # a caller that stopped waiting (a cancelled /healthz) gets nothing: its op is skipped, and a
            # cancelled future can no longer make set_result fail in this thread (that killed the writer)
            batch = [entry for entry in batch if entry[1].set_running_or_notify_cancel()]
            if not batch:
                continue
            results: list[Any] = []
            try:
                db.execute("begin immediate")
                for op, _, _ in batch:
                    results.append(op(db))
                db.execute("commit")
            except Exception as e:  # any: the writer must outlive a write it cannot do (serve hung when it died)
                try:
                    db.execute("rollback")
                except (sqlite3.Error, StoreError):
                    pass
                for _, future, _ in batch:
                    future.set_exception(e if isinstance(e, StoreError) else
                                         StoreError(f"the inbox cannot be written: {e}"))
                continue
            for (_, future, after), result in zip(batch, results, strict=True):
                if after is not None:
                    after(result)
                future.set_result(result)

    def _submit(self, op: Op, after: Callable[[Any], None] | None = None) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((op, future, after))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._write.close()
        self._read.close()

    # ---- writes -----------------------------------------------------------------------------
    def accept(self, delivery: Delivery,
               done: Callable[[int, bool], None]) -> Future[tuple[int, bool, int | None]]:
        """Commit a delivery; the result is (its id, whether it is a duplicate, the job a duplicate's first
        delivery ran as, if it has). `done` is called in the writer thread, in commit order, once it is
        durable."""
        def op(db: sqlite3.Connection) -> tuple[int, bool, int | None]:
            if delivery.delivery_id is not None:
                first = first_delivery(db, delivery.flow, delivery.delivery_id)
                if first is not None:
                    return first[0], True, first[1]
            cur = db.execute(
                "insert into deliveries(flow, delivery_id, received_at, content_type, headers, body) "
                "values (?, ?, ?, ?, ?, ?)",
                (delivery.flow, delivery.delivery_id, delivery.received_at, delivery.content_type,
                 json.dumps(delivery.headers), delivery.body))
            assert cur.lastrowid is not None
            return cur.lastrowid, False, None

        def after(result: tuple[int, bool, int | None]) -> None:
            done(result[0], result[1])
        return self._submit(op, after)

    def mark(self, delivery_id: int, status: str, job_id: int | None = None,
             message: str | None = None) -> Future[None]:
        """running (one more attempt), done, failed or waiting (a replay)."""
        def op(db: sqlite3.Connection) -> None:
            if status == "running":
                db.execute("update deliveries set status = 'running', attempts = attempts + 1 where id = ?",
                           (delivery_id,))
            elif status == "waiting":
                db.execute("update deliveries set status = 'waiting' where id = ?", (delivery_id,))
            else:  # a run that ended: the count of runs cut short in a row starts again
                db.execute("update deliveries set status = ?, job_id = ?, message = ?, cut_short = 0, "
                           "finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') where id = ?",
                           (status, job_id, message, delivery_id))
        return self._submit(op)

    def purge_done(self, days: int = DONE_KEPT_DAYS) -> Future[int]:
        """Forget the deliveries whose run ended done more than `days` ago; the result is how many."""
        cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

        def op(db: sqlite3.Connection) -> int:  # finished_at is written as strftime('%Y-%m-%dT%H:%M:%fZ')
            return int(db.execute("delete from deliveries where status = 'done' and finished_at < ?",
                                  (cutoff,)).rowcount)
        return self._submit(op)

    def was_cut_short(self, delivery_id: int) -> Future[int]:
        """A delivery found `running` at start: its run was cut short (serve killed, out of memory, crashed).
        Counted; the result is how many of its runs in a row were."""
        def op(db: sqlite3.Connection) -> int:
            db.execute("update deliveries set cut_short = cut_short + 1 where id = ?", (delivery_id,))
            row = db.execute("select cut_short from deliveries where id = ?", (delivery_id,)).fetchone()
            return int(row[0]) if row is not None else 0
        return self._submit(op)

    def job_started(self, delivery_id: int, job_id: int | None) -> Future[None]:
        """The job a delivery's run is: known while it runs (flowlang inbox names it), not only at its end."""
        def op(db: sqlite3.Connection) -> None:
            db.execute("update deliveries set job_id = ? where id = ?", (job_id, delivery_id))
        return self._submit(op)

    def set_tick(self, flow: str, when: str, ended: str | None = None) -> Future[None]:
        """The schedule's last tick; `ended`: the tick whose run has ended (it runs no more; "": any)."""
        def op(db: sqlite3.Connection) -> None:
            db.execute("insert into ticks(flow, last_tick) values (?, ?) on conflict(flow) do update set "
                       "last_tick = max(last_tick, excluded.last_tick)", (flow, when))  # a run ends after later ticks
            if ended == "":  # whichever ran (a tick given up)
                db.execute("update ticks set running = null, cut_short = 0 where flow = ?", (flow,))
            elif ended is not None:
                db.execute("update ticks set running = null, cut_short = 0 where flow = ? and running = ?",
                           (flow, ended))
        return self._submit(op)

    def tick_started(self, flow: str, when: str) -> Future[None]:
        """A tick's run starts: were serve to end before it does, the next start finds it cut short."""
        def op(db: sqlite3.Connection) -> None:
            db.execute("update ticks set running = ? where flow = ?", (when, flow))
        return self._submit(op)

    def tick_cut_short(self, flow: str) -> Future[int]:
        """At start: how many runs of the schedule's tick in a row were cut short (serve ended while it ran),
        this one counted; 0 when none was."""
        def op(db: sqlite3.Connection) -> int:
            db.execute("update ticks set cut_short = cut_short + 1 where flow = ? and running is not null", (flow,))
            row = db.execute("select cut_short from ticks where flow = ? and running is not null", (flow,)).fetchone()
            return int(row[0]) if row is not None else 0
        return self._submit(op)

    def check_writable(self) -> Future[None]:
        """A write round trip through the writer (for /healthz)."""
        def op(db: sqlite3.Connection) -> None:
            db.execute("insert into ticks(flow, last_tick) values ('', '') on conflict(flow) do nothing")
        return self._submit(op)

    # ---- reads ------------------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple[Any, ...] = (), lean: bool = False) -> list[Delivery]:
        body = "x''" if lean else "body"
        with self._read_lock:
            rows = self._read.execute(
                f"select id, flow, delivery_id, received_at, content_type, headers, {body}, status, job_id, attempts, "
                "message, finished_at from deliveries " + sql, args).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), bytes(r[6]), r[7], r[8], r[9], r[10], r[11],
                         lean=lean) for r in rows]

    def waiting(self) -> list[Delivery]:
        """Deliveries to run, in arrival order: waiting ones, and those a crash left running; lean (their
        bodies stay in the inbox until `with_body`)."""
        return self._rows("where status in ('waiting', 'running') order by id", lean=True)

    def with_body(self, d: Delivery) -> Delivery:
        """A lean delivery with its body read from the inbox (as its run starts)."""
        if not d.lean:
            return d
        with self._read_lock:
            row = self._read.execute("select body from deliveries where id = ?", (d.id,)).fetchone()
        if row is None:
            raise StoreError(f"delivery {d.id} is no longer in the inbox")
        return replace(d, body=bytes(row[0]), lean=False)

    def seen(self, flow: str, delivery_id: str) -> tuple[int, int | None] | None:
        """The inbox id and job of the flow's delivery with this provider id, if it came before."""
        with self._read_lock:
            return first_delivery(self._read, flow, delivery_id)

    def get(self, delivery_id: int) -> Delivery | None:
        found = self._rows("where id = ?", (delivery_id,))
        return found[0] if found else None

    def listing(self, flow: str | None = None, failed: bool = False, limit: int = 100) -> list[Delivery]:
        where, args = [], []
        if flow is not None:
            where.append("flow = ?")
            args.append(flow)
        if failed:
            where.append("status = 'failed'")
        sql = ("where " + " and ".join(where) + " " if where else "") + "order by id desc limit ?"
        return self._rows(sql, (*args, limit))

    def flow_names(self) -> list[str]:
        """The flows the inbox has deliveries of."""
        with self._read_lock:
            return [str(r[0]) for r in self._read.execute("select distinct flow from deliveries").fetchall()]

    def counts(self) -> dict[str, int]:
        with self._read_lock:
            rows = self._read.execute("select status, count(*) from deliveries group by status").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def last_tick(self, flow: str) -> str | None:
        with self._read_lock:
            row = self._read.execute("select last_tick from ticks where flow = ?", (flow,)).fetchone()
        return str(row[0]) if row else None


async def wait(future: Future[Any]) -> Any:
    """Await an inbox future from an event loop."""
    return await asyncio.wrap_future(future)
