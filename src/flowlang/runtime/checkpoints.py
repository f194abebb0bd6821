"""Checkpoints of paginated reads (TESTING.md 4): where the outermost loop over a record stream had
got to, so that `flowlang run --resume` continues a crashed or interrupted run from there.

A checkpoint is a row of the store's `checkpoints` table, one per flow and loop identity: the
cursor of the request that fetches the page to go on with (`{"page": 41}`, `{"offset": 4000}`,
`{"cursor": "..."}`, `{"url": "..."}`; `{"records": N}` for a stream that can only be read from
its start, such as a file), how many records of that page were done, the pages and records done,
the values of the enclosing variables the loop assigns, and the run's `state`. It is written in
its own transaction after every page whose records are all finished (sent, or kept as failed
records), and, on a graceful stop, at the record the loop stopped before; a loop that read its
stream to the end is marked finished. A job that ends ok or partial clears its flow's checkpoints;
one that crashed, failed or was interrupted leaves them for `--resume`.

The same transaction writes the job's counts so far into its row of `jobs` (while it is still
running): a job killed outright keeps what it had done by its last checkpoint (`flowlang jobs`
shows those counts for a crashed job, not zeros)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.jsoncodec import JsonDataError, dumps_stored, from_stored, loads
from flowlang.runtime.values import RecordStream, Value

SCHEMA = """
create table if not exists checkpoints (
  flow text not null,
  loop_id text not null,
  job_id integer,
  source text,
  cursor text,
  done integer not null default 0,
  pages integer not null default 0,
  records integer not null default 0,
  finished integer not null default 0,
  scope text not null default '{}',
  state text,
  updated_at text not null,
  primary key (flow, loop_id)
);
"""


@dataclass
class Checkpoint:
    flow: str
    loop_id: str
    job_id: int | None
    source: str | None  # the request the stream read (masked); None for a stream without one
    cursor: Any  # the request of the page to go on with (None: the first page)
    done: int  # records of that page already done
    pages: int  # pages done before it
    records: int  # records done before it (that page's done ones included)
    finished: bool  # the loop read its stream to the end
    scope: dict[str, Any]  # the enclosing variables the loop assigns, as stored
    state: Any  # the run's state at the checkpoint, as stored (None: not kept)
    updated_at: str
    damaged: str | None = None  # why the row cannot be read (its cursor, scope or state is not what was written)

    def where(self) -> str:
        """Where the loop had got to, for people: `after 40 pages (4,000 records)`."""
        if self.finished:
            return f"finished ({self.records:,} records)"
        return f"after {self.pages:,} page{'s' if self.pages != 1 else ''} ({self.records:,} records)"


def checkpoint_of(r: tuple[Any, ...]) -> Checkpoint:
    """A row of the checkpoints table; one whose cursor, scope or state cannot be read (a disk or a hand
    changed it) says so in `damaged`, with those left empty, so that no run fails on it unsaid."""
    try:
        cursor = from_stored(loads(r[4])) if r[4] is not None else None
        scope = loads(r[9])
        state = loads(r[10]) if r[10] is not None else None
        if type(scope) is not dict or not (state is None or type(state) is dict):
            raise ValueError(f"its {'scope' if type(scope) is not dict else 'state'} is not an object")
    except (JsonDataError, ValueError, TypeError, RecursionError) as e:
        return Checkpoint(r[0], r[1], r[2], r[3], None, r[5], r[6], r[7], bool(r[8]), {}, None, r[11], str(e))
    return Checkpoint(r[0], r[1], r[2], r[3], cursor, r[5], r[6], r[7], bool(r[8]), scope, state, r[11])


class Checkpoints:
    """The checkpoints table of one store (behind the store's interface: SCALE.md)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(SCHEMA)

    def of(self, flow: str) -> list[Checkpoint]:
        rows = self.db.execute(
            "select flow, loop_id, job_id, source, cursor, done, pages, records, finished, scope, state, updated_at "
            "from checkpoints where flow = ? order by updated_at, loop_id", (flow,)).fetchall()
        return [checkpoint_of(r) for r in rows]

    def save(self, point: Checkpoint, scope_json: str, state_json: str | None, stats_json: str | None = None) -> None:
        """Write one loop's checkpoint (its own transaction: a kill leaves the old one or the new one),
        with the job's counts so far when given.
        Not synced to the disk (synchronous=normal in WAL mode): a kill of the process loses nothing,
        and a power cut at worst the last checkpoints, so a resume starts from an earlier page and
        sends more again, never less. A page checkpointed costs a write, not an fsync (~5 ms)."""
        self.db.execute("pragma synchronous=normal")
        try:
            self._save(point, scope_json, state_json, stats_json)
        finally:
            self.db.execute("pragma synchronous=full")

    def _save(self, point: Checkpoint, scope_json: str, state_json: str | None, stats_json: str | None) -> None:
        with self.db:
            self.db.execute("begin immediate")
            self.db.execute(
                "insert into checkpoints(flow, loop_id, job_id, source, cursor, done, pages, records, finished, "
                "scope, state, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict(flow, loop_id) do update set job_id = excluded.job_id, source = excluded.source, "
                "cursor = excluded.cursor, done = excluded.done, pages = excluded.pages, records = excluded.records, "
                "finished = excluded.finished, scope = excluded.scope, state = excluded.state, "
                "updated_at = excluded.updated_at",
                (point.flow, point.loop_id, point.job_id, point.source,
                 dumps_stored(point.cursor) if point.cursor is not None else None, point.done, point.pages,
                 point.records, int(point.finished), scope_json, state_json, point.updated_at))
            if stats_json is not None and point.job_id is not None:
                self.db.execute("update jobs set stats = ? where id = ? and status = 'running'",
                                (stats_json, point.job_id))

    def rename(self, flow: str, old: str, new: str) -> None:
        """A loop that moved among the flow's loops keeps its checkpoint under its new identity."""
        with self.db:
            self.db.execute("begin immediate")
            self.db.execute("delete from checkpoints where flow = ? and loop_id = ?", (flow, new))
            self.db.execute("update checkpoints set loop_id = ? where flow = ? and loop_id = ?", (new, flow, old))

    def clear(self, flow: str, loop_id: str | None = None) -> int:
        with self.db:
            self.db.execute("begin immediate")
            if loop_id is None:
                return self.db.execute("delete from checkpoints where flow = ?", (flow,)).rowcount
            return self.db.execute("delete from checkpoints where flow = ? and loop_id = ?", (flow, loop_id)).rowcount


Masked = Callable[[Any], str]  # a value -> its stored JSON, every secret masked
Counts = Callable[[], str]  # the job's counts so far, as the JSON of its `jobs.stats`


class Checkpointer:
    """What a run's outermost loops use to checkpoint and to resume (one per job that keeps them)."""

    def __init__(self, checkpoints: Checkpoints, flow: str, job_id: int, masked: Masked, now: Callable[[], str],
                 resume_from: dict[str, Checkpoint] | None = None, counts: Counts | None = None) -> None:
        self.checkpoints = checkpoints
        self.counts = counts
        self.flow = flow
        self.job_id = job_id
        self.masked = masked
        self.now = now
        self.resume_from = dict(resume_from or {})  # by the loop identity of this flow

    def resume_point(self, loop_id: str) -> Checkpoint | None:
        """The checkpoint this loop resumes from (once: a loop run again starts from its beginning)."""
        return self.resume_from.pop(loop_id, None)

    def save(self, loop_id: str, source: str | None, cursor: Any, done: int, pages: int, records: int,
             scope: dict[str, Any], state: Any, finished: bool = False) -> None:
        if cursor is not None and self.masked(cursor) != dumps_stored(cursor):
            # the cursor holds a secret's text (an API that puts the key it was sent into its next cursor):
            # it is not kept; the resume reads the list from its start and skips the records done before it
            cursor = {"records": records - done}
        point = Checkpoint(self.flow, loop_id, self.job_id, source, cursor, done, pages, records, finished, {},
                           None, self.now())
        self.checkpoints.save(point, self.masked(scope), self.masked(state),
                              self.counts() if self.counts is not None else None)


async def pages_from(stream: RecordStream, cursor: Any, done: int) -> AsyncIterator[tuple[list[Value], Any, Any, int]]:
    """A stream's pages from a checkpoint: each page's records not yet done, the cursor of its request,
    that of the next page (None after the last), and how many of its records were skipped as done.
    A stream with its own cursors starts at the checkpoint's request; any other is read from its start
    and the records done are skipped (`{"records": N}`)."""
    if stream.cursor_pages is not None and not _from_start(cursor):
        first = True
        async for records, at, nxt in stream.cursor_pages(cursor):
            skip = done if first else 0
            first = False
            yield records[skip:], at, nxt, min(skip, len(records))
        return
    skip = (cursor.get("records", 0) if type(cursor) is dict and type(cursor.get("records")) is int else 0) + done
    before = 0
    if stream.cursor_pages is not None:  # a cursor that held a secret was not kept: from the first page
        async for records, at, nxt in stream.cursor_pages(None):
            start = before
            before += len(records)
            if before <= skip and records:
                continue
            cut = max(0, skip - start)
            yield records[cut:], at, nxt, cut
        return
    pages = stream.pages(keep_bad=True)  # a loop's: it fails a bad record alone
    try:
        async for records in pages:
            start = before
            before += len(records)
            if before <= skip and records:
                continue
            cut = max(0, skip - start)
            yield records[cut:], {"records": start}, {"records": before}, cut
    finally:
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()


def _from_start(cursor: Any) -> bool:
    """A checkpoint of a stream with cursors that kept none (`{"records": N}`: its cursor held a secret)."""
    return type(cursor) is dict and set(cursor) == {"records"} and type(cursor["records"]) is int
