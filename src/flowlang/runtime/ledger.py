"""The send ledger (TESTING.md section 3): what `send ... once` and `send ... if changed` wrote, per
flow, connection, operation and record key, with a hash of the payload, the destination's answer,
the job and the time. It lives in the flow's store (its own table, on the store's connection).

A `once` send writes a pending row *before* it sends and marks it sent when the answer came back,
each in its own transaction. So a run killed while the request was in flight leaves a pending row:
the next run cannot know whether the destination got it, and refuses to send that key again until
someone checks (`flowlang ledger FILE --forget KEY` sends it again; `--sent KEY`, when it did arrive,
records it as sent so that a retry finishes its record without sending it). That is how `once` gives
0 duplicates even against an API without idempotency keys."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.jsoncodec import JsonDataError, dumps, dumps_stored, from_stored, loads, to_stored

SCHEMA = """
create table if not exists ledger (
  flow text not null,
  connection text not null,
  operation text not null,
  key text not null,
  hash text not null,
  answer text,
  status text not null,
  job_id integer,
  sent_at text not null,
  primary key (flow, connection, operation, key)
);
"""


def payload_hash(record: Any, args: Any, kwargs: Any) -> str:
    """What `if changed` compares: the record and the send's arguments, as sent."""
    text = dumps(to_stored({"record": record, "args": args, "kwargs": kwargs}), secrets_as="***")
    return hashlib.sha256(text.encode()).hexdigest()


Destination = tuple[str, str]
"""A send's destination as the ledger keeps it: (connection, operation), `("api", "post /orders")`."""


def ledger_operation(op: str, args: list[Any]) -> str:
    """The operation a send's entries are kept under: the connector's operation and, for one given a path
    (an http connection's `post("/invoices")`), that path, so `api.post("/invoices")` and
    `api.post("/shipments")` with the same key are two sends (as one operation, the second was skipped as
    already sent). Entries an earlier version kept under the bare operation are still found
    (`legacy_operation`), so an upgrade sends nothing twice. A query string is not part of it: a path
    that carries the job's id or the day in its query is still the same destination run after run."""
    if args and isinstance(args[0], str):
        return f"{op} {args[0].split('?', 1)[0]}"
    return op


def legacy_operation(op: str) -> str | None:
    """The bare operation an earlier version kept a path's entries under, or None."""
    return op.split(" ", 1)[0] if " " in op else None


@dataclass
class LedgerEntry:
    flow: str
    connection: str
    operation: str
    key: str
    hash: str
    answer: Any
    status: str  # "sent", or "pending" (a send that may or may not have reached the destination)
    job_id: int | None
    sent_at: str
    damaged: str | None = None  # why the answer kept cannot be read (a disk or a hand changed it); answer None
    repeatable: bool = False  # pending, and sending it again cannot do its work twice (Connection.repeatable)


class Ledger:
    """The ledger table of one store."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # the store's file: with the key, it names a send in flight in this process (compile/ledger_send.py)
        self.place = next((str(r[2]) for r in db.execute("pragma database_list") if r[1] == "main"), "") \
            or f"memory:{id(self)}"
        db.executescript(SCHEMA)
        if "repeatable" not in {r[1] for r in db.execute("pragma table_info(ledger)")}:
            try:  # a pending send that may be sent again (Connection.repeatable); stores before lack it
                db.execute("alter table ledger add column repeatable integer not null default 0")
            except sqlite3.OperationalError as e:  # another process added it first
                if "duplicate column" not in str(e):
                    raise
        if "key_by" not in {r[1] for r in db.execute("pragma table_info(ledger)")}:
            try:  # what made the entry's key (compile/io.py key_by); null in stores before: not known
                db.execute("alter table ledger add column key_by text")
            except sqlite3.OperationalError as e:
                if "duplicate column" not in str(e):
                    raise
        # key_bys' look-up, once a run per destination (per record for a path made of the record): entries
        # of earlier versions (key_by null) are not in it, so a store upgraded with thousands under the bare
        # operation is not read through for each of them
        db.execute("create index if not exists ledger_key_by on ledger(flow, connection, operation, key_by) "
                   "where key_by is not null")

    def key_bys(self, flow: str, connection: str, operation: str) -> set[str]:
        """The key expressions the entries of a destination were made by (those that say)."""
        legacy = legacy_operation(operation)
        return {r[0] for r in self.db.execute(
            "select distinct key_by from ledger where flow = ? and connection = ? and operation in (?, ?) "
            "and key_by is not null", (flow, connection, operation, legacy if legacy is not None else operation))}

    def get(self, flow: str, connection: str, operation: str, key: str) -> LedgerEntry | None:
        row = self.db.execute(
            "select flow, connection, operation, key, hash, answer, status, job_id, sent_at, repeatable from ledger "
            "where flow = ? and connection = ? and operation = ? and key = ?",
            (flow, connection, operation, key)).fetchone()
        return entry_of(row) if row else None

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self.db:
            self.db.execute("begin immediate")
            return self.db.execute(sql, args).rowcount

    def pending(self, flow: str, connection: str, operation: str, key: str, digest: str, job_id: int | None,
                when: str, repeatable: bool = False, key_by: str | None = None) -> None:
        """Before a `once` or `if changed` send: the key is claimed (a kill from here on leaves it pending);
        `repeatable`: sending it again cannot do its work twice, so a run that finds it pending sends it again;
        `key_by`: what made the key (key_bys)."""
        self._write("insert into ledger(flow, connection, operation, key, hash, status, job_id, sent_at, repeatable, "
                    "key_by) values (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) on conflict(flow, connection, operation, "
                    "key) do update set hash = excluded.hash, status = 'pending', job_id = excluded.job_id, "
                    "sent_at = excluded.sent_at, repeatable = excluded.repeatable, "
                    "key_by = coalesce(excluded.key_by, key_by)",
                    (flow, connection, operation, key, digest, job_id, when, int(repeatable), key_by))

    def sent(self, flow: str, connection: str, operation: str, key: str, digest: str, answer: Any,
             job_id: int | None, when: str, mask: Any) -> None:
        self._write("insert into ledger(flow, connection, operation, key, hash, answer, status, job_id, sent_at) "
                    "values (?, ?, ?, ?, ?, ?, 'sent', ?, ?) on conflict(flow, connection, operation, key) do "
                    "update set hash = excluded.hash, answer = excluded.answer, status = 'sent', "
                    "job_id = excluded.job_id, sent_at = excluded.sent_at",
                    (flow, connection, operation, key, digest, mask(dumps_stored(answer)), job_id, when))

    def pending_many(self, flow: str, connection: str, operation: str, keys: list[tuple[str, str]],
                     job_id: int | None, when: str, key_by: str | None = None) -> None:
        """Before a batched `once` send: every key of the batch claimed, in one transaction."""
        with self.db:
            self.db.execute("begin immediate")
            self.db.executemany(
                "insert into ledger(flow, connection, operation, key, hash, status, job_id, sent_at, key_by) "
                "values (?, ?, ?, ?, ?, 'pending', ?, ?, ?) on conflict(flow, connection, operation, key) do "
                "update set hash = excluded.hash, status = 'pending', job_id = excluded.job_id, "
                "sent_at = excluded.sent_at, key_by = coalesce(excluded.key_by, key_by)",
                [(flow, connection, operation, k, d, job_id, when, key_by) for k, d in keys])

    def settle_many(self, flow: str, connection: str, operation: str, sent: list[tuple[str, str, Any]],
                    released: list[str], job_id: int | None, when: str, mask: Any) -> None:
        """After a batch's answer: the records it accepted are sent, those it refused released (one
        transaction)."""
        with self.db:
            self.db.execute("begin immediate")
            self.db.executemany(
                "insert into ledger(flow, connection, operation, key, hash, answer, status, job_id, sent_at) "
                "values (?, ?, ?, ?, ?, ?, 'sent', ?, ?) on conflict(flow, connection, operation, key) do "
                "update set hash = excluded.hash, answer = excluded.answer, status = 'sent', "
                "job_id = excluded.job_id, sent_at = excluded.sent_at",
                [(flow, connection, operation, k, d, mask(dumps_stored(a)), job_id, when) for k, d, a in sent])
            self.db.executemany(
                "delete from ledger where flow = ? and connection = ? and operation = ? and key = ? "
                "and status = 'pending'", [(flow, connection, operation, k) for k in released])

    def release(self, flow: str, connection: str, operation: str, key: str) -> None:
        """A pending send that failed with an answer: not sent, so it may be sent again."""
        self._write("delete from ledger where flow = ? and connection = ? and operation = ? and key = ? "
                    "and status = 'pending'", (flow, connection, operation, key))

    def restore(self, flow: str, connection: str, operation: str, key: str, before: LedgerEntry | None) -> None:
        """A pending `if changed` send that failed with an answer: the key is as it was before (the last
        payload sent for it, or no entry), so the next run compares with what the destination has."""
        if before is None or before.status != "sent":
            self.release(flow, connection, operation, key)
            return
        self._write("update ledger set hash = ?, status = 'sent', job_id = ?, sent_at = ?, repeatable = 0 "
                    "where flow = ? and connection = ? and operation = ? and key = ? and status = 'pending'",
                    (before.hash, before.job_id, before.sent_at, flow, connection, operation, key))

    def entries(self, flow: str, key: str | None = None, to: Destination | None = None) -> list[LedgerEntry]:
        """The flow's entries, of one key and of one destination (`to`) when given."""
        where, args = narrowed(flow, key, to)
        sql = ("select flow, connection, operation, key, hash, answer, status, job_id, sent_at, repeatable from ledger "
               "where " + where)
        return [entry_of(r) for r in self.db.execute(sql + " order by sent_at, key", args).fetchall()]

    def destinations(self, flow: str) -> list[str]:
        """The flow's destinations, as `flowlang ledger` names them (for a --to that names none of them)."""
        rows = self.db.execute("select distinct connection, operation from ledger where flow = ?", (flow,))
        return sorted({destination_text(connection, operation) for connection, operation in rows.fetchall()})

    def has_destination(self, flow: str, to: Destination) -> bool:
        """Whether the ledger holds an entry of the flow at `to`, of any key."""
        where, args = narrowed(flow, None, to)
        return self.db.execute("select 1 from ledger where " + where + " limit 1", args).fetchone() is not None

    def mark_sent(self, flow: str, key: str, job_id: int | None, when: str, to: Destination | None = None) -> int:
        """A key whose send was cut off in flight did reach the destination (someone checked): its pending
        entries (at `to` only, when given) become sent, without an answer; returns how many."""
        where, args = narrowed(flow, key, to)
        return self._write("update ledger set status = 'sent', answer = null, job_id = ?, sent_at = ? "
                           "where status = 'pending' and " + where, (job_id, when, *args))

    def forget(self, flow: str, key: str | None, to: Destination | None = None) -> int:
        """Forget one key (every operation, or only those of the destination `to`), or with key None every
        entry of the flow (of `to`); returns how many."""
        where, args = narrowed(flow, key, to)
        return self._write("delete from ledger where " + where, args)


def destination_text(connection: str, operation: str) -> str:
    """A destination as `flowlang ledger` lists it and its --to takes it: `api.post /orders`."""
    return f"{connection}.{operation}"


def narrowed(flow: str, key: str | None, to: Destination | None) -> tuple[str, tuple[Any, ...]]:
    """The where clause (and its arguments) of a flow's entries, of one key and one destination when given;
    a destination's entries kept under the bare operation by an earlier version (legacy_operation) are its
    own too."""
    where = "flow = ?"
    args: tuple[Any, ...] = (flow,)
    if key is not None:
        where, args = where + " and key = ?", (*args, key)
    if to is not None:
        connection, operation = to
        legacy = legacy_operation(operation)
        where += " and connection = ? and operation in (?, ?)"
        args = (*args, connection, operation, legacy if legacy is not None else operation)
    return where, args


def entry_of(row: tuple[Any, ...]) -> LedgerEntry:
    """A row of the ledger; one whose answer cannot be read says so in `damaged` (its answer None), so
    that neither a run nor `flowlang ledger` fails on it unsaid: the key was sent all the same."""
    repeatable = bool(row[9]) if len(row) > 9 else False
    try:
        answer = from_stored(loads(row[5])) if row[5] is not None else None
    except (JsonDataError, ValueError, TypeError, RecursionError) as e:
        return LedgerEntry(row[0], row[1], row[2], row[3], row[4], None, row[6], row[7], row[8], str(e), repeatable)
    return LedgerEntry(row[0], row[1], row[2], row[3], row[4], answer, row[6], row[7], row[8], None, repeatable)
