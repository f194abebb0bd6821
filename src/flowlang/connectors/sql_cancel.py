"""Stopping a statement at the database when the record waiting for it is given up (its
max_record_seconds ran out): the sql connector's calls run one at a time on the connection's own
thread, and a cancelled await does not stop that thread, so the statement would run on (a query that
never ends, a lock wait) and every later call of the connection would wait behind it. The statement
of the given-up call is interrupted instead: SQLite's `interrupt()`, PostgreSQL's cancel request,
MySQL's and MariaDB's `KILL QUERY` from a connection of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("flowlang.sql")
T = TypeVar("T")


class GivenUp(Exception):
    """The call was given up (its record's time ran out, or the run was stopped at once) before its
    statement started."""


class Call:
    """One call on the connection's thread, and the DBAPI connection its statement runs on."""

    __slots__ = ("given_up", "raw")

    def __init__(self) -> None:
        self.raw: Any = None
        self.given_up = threading.Event()  # ends a wait for the database (sql_reconnect.py)


class Interrupter:
    """Knows which call the connection's thread runs, and on which DBAPI connection."""

    def __init__(self, dialect: str, connect: Callable[[], Any]) -> None:
        self.dialect = dialect
        self.connect = connect  # a new DBAPI connection (MySQL's KILL QUERY is sent on one of its own)
        self._current: Call | None = None
        self._lock = threading.Lock()

    def run(self, call: Call, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """fn(*args) as `call` (on the connection's thread)."""
        with self._lock:
            self._current = call
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._current = None

    def working(self, conn: Any) -> None:
        """The running call's statements go to this SQLAlchemy connection (on the connection's thread).
        A call given up before its statement started does not start it (GivenUp): an interrupt that
        reaches a connection with no statement running does nothing, so the statement would run on."""
        current = self._current
        if current is not None:
            with self._lock:
                current.raw = conn.connection.dbapi_connection
            if current.given_up.is_set():
                raise GivenUp()

    def pause(self, seconds: float) -> bool:
        """Wait so many seconds on the connection's thread; True when the running call was given up
        meanwhile (or before)."""
        current = self._current
        if current is None:
            time.sleep(seconds)
            return False
        return current.given_up.wait(seconds)

    def interrupt(self, call: Call) -> None:
        """Stop `call`'s statement, if it is the one running (one not started yet is dropped by its
        executor future's cancel), and its wait for the database, if it waits."""
        call.given_up.set()
        with self._lock:
            raw = call.raw if self._current is call else None
            if raw is None:
                return
            try:
                if self.dialect == "sqlite":
                    raw.interrupt()
                elif self.dialect == "postgresql":
                    raw.cancel()
                elif self.dialect in ("mysql", "mariadb"):
                    thread_id = raw.thread_id()
                    threading.Thread(target=self._kill, args=(thread_id,), daemon=True).start()
            except Exception as e:  # the statement may have ended meanwhile; the record is given up anyway
                log.debug("could not interrupt a statement: %s", e)

    def _kill(self, thread_id: int) -> None:
        try:
            raw = self.connect()
            try:
                cursor = raw.cursor()
                cursor.execute(f"KILL QUERY {int(thread_id)}")
                cursor.close()
            finally:
                raw.close()
        except Exception as e:
            log.debug("could not interrupt a statement: %s", e)
