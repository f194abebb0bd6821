"""Waiting out a database that went away (a restart, a failover) instead of failing every record
while it is down, where no statement can have been committed:

- a connection that could not be made (refused, the server starting up or shutting down) after one
  was made in the run: nothing was sent, so the work is tried again on a new connection (a database
  never reached in the run is not waited for: a wrong host or port fails at once);
- a connection lost inside a transaction of flowlang's own writes (insert, upsert) or of a query,
  before its COMMIT was sent: a transaction is committed only by its COMMIT, so the server rolled it
  back, and the work is run again on a new connection. This holds on PostgreSQL; on MySQL and
  MariaDB only for a table whose engine has transactions (InnoDB: a MyISAM or Aria table keeps a
  row as it is written), asked of the database once per table.

- SQLite's 'database is locked' (another process holds the write lock past the driver's 5 s wait)
  for a statement: it did nothing, and its transaction is rolled back, so the work runs again.

A connection lost while its COMMIT was on the way is never tried again: the write may have been
made. Nor is a statement given to execute() that reached the server (its SQL may commit by itself).
The waits (0.2 s doubling to 2 s) end RECONNECT_SECONDS after the database was first found away, for
every record alike: a database down for longer fails each later record at its first try until one
reaches it again."""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

RECONNECT_SECONDS = 30.0
FIRST_WAIT = 0.2
LONGEST_WAIT = 2.0

# what PostgreSQL answers a connection while it cannot take one yet (any other FATAL is a refusal:
# an unknown database or role, a password refused)
_PG_AWAY = ("starting up", "shutting down", "recovery mode", "not yet accepting connections", "too many clients",
            "terminating connection")
# MySQL/MariaDB: cannot connect, server gone away, lost connection, too many connections, shutdown in progress,
# connection killed
_MYSQL_AWAY = frozenset({2003, 2006, 2013, 1040, 1053, 1927, 4031})

TRANSACTIONAL = ("select count(*) from information_schema.tables t join information_schema.engines e "
                 "on e.engine = t.engine where t.table_schema = coalesce(:schema, database()) "
                 "and t.table_name = :name and e.transactions = 'YES'")


TABLE_THERE = ("select count(*) from information_schema.tables "
               "where table_schema = coalesce(:schema, database()) and table_name = :name")


def cannot_connect(error: BaseException) -> bool:
    """Whether a failure to make a connection says the database is away (not that it refused us)."""
    orig = getattr(error, "orig", None) or error
    module = type(orig).__module__
    if module.startswith("psycopg"):
        text = str(orig)
        return "FATAL:" not in text or any(words in text for words in _PG_AWAY)
    if module.startswith("pymysql"):
        return bool(orig.args) and orig.args[0] in _MYSQL_AWAY
    return False


def closed_while_idle(dbapi_connection: Any) -> bool:
    """Whether a pooled connection, idle and in no transaction, was closed by the server meanwhile (a
    restart, an administrator's terminate, MySQL's wait_timeout): its socket is readable, with the
    server's last words or the end of the stream, where an idle connection has nothing to read. One
    system call, no round trip: such a connection is let go before anything is sent on it, so even
    a statement of execute() runs on a live one. Unknown drivers: False."""
    fileno = getattr(dbapi_connection, "fileno", None)  # psycopg
    sock = getattr(dbapi_connection, "_sock", None)  # PyMySQL
    try:
        fd = fileno() if fileno is not None else sock.fileno() if sock is not None else -1
        if fd < 0:
            return False
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError, TypeError):
        return False
    return bool(readable)


def sqlite_busy(error: BaseException) -> bool:
    """Whether SQLite refused a statement because another connection (another process) holds the
    write lock past the driver's 5 s wait ('database is locked'): the statement did nothing, and its
    transaction is rolled back, so the work may run again."""
    orig = getattr(error, "orig", None) or error
    return str(getattr(orig, "sqlite_errorname", "")).startswith("SQLITE_BUSY")


class OutcomeUnknown(Exception):
    """The connection was lost after the work may have been made: while its COMMIT was on the way, or
    inside work that is never run again (a statement of execute(), a write into a table without
    transactions)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class StillAway(Exception):
    """The database could not be reached again within RECONNECT_SECONDS of going away (nothing was
    written)."""

    def __init__(self, error: Exception, seconds: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.seconds = seconds


class Reconnect:
    """The waits of one connection's thread for its database (one per SqlConnection)."""

    def __init__(self, dialect: str, pause: Callable[[float], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dialect = dialect
        self.pause = pause  # waits so many seconds; True when the record was given up meanwhile
        self.clock = clock
        self.away_since: float | None = None
        self.reached = False  # a connection was made in this run: only a database that went away is waited for
        self._transactional: dict[str, bool] = {}

    def _wait(self, error: Exception, delay: float) -> float:
        """Wait before the next try, or raise `error` when the time for this outage is spent."""
        now = self.clock()
        if self.away_since is None:
            self.away_since = now
        left = self.away_since + RECONNECT_SECONDS - now
        if left <= 0 or self.pause(min(delay, left)):
            raise StillAway(error, self.clock() - self.away_since) from None
        return min(delay * 2, LONGEST_WAIT)

    def connect(self, engine: Any) -> Any:
        """engine.connect(), made again while the database cannot be reached (nothing is sent meanwhile)."""
        from sqlalchemy.exc import DBAPIError

        delay = FIRST_WAIT
        while True:
            try:
                conn = engine.connect()
            except DBAPIError as e:
                if not cannot_connect(e) or not self.reached:  # never reached: a wrong host or port, said at once
                    raise
                delay = self._wait(e, delay)
            else:
                self.reached = True
                return conn

    def transaction(self, engine: Any, work: Callable[[Any], T], rerun: Callable[[Any], bool] | None) -> T:
        """work(conn) in a transaction of its own, committed. Run again on a new connection when the
        connection could not be made, and when it was lost before the COMMIT was sent and `rerun`, asked
        on the new connection, says the database surely rolled the lost transaction back. Raises
        OutcomeUnknown when the work may have been made."""
        from sqlalchemy.exc import DBAPIError

        delay = FIRST_WAIT
        lost: Exception | None = None
        while True:
            conn = self.connect(engine)
            waited: Exception | None = None
            try:
                if lost is not None and (rerun is None or not rerun(conn)):
                    raise OutcomeUnknown(lost)
                trans = conn.begin()
                try:
                    result = work(conn)
                except DBAPIError as e:
                    if self.dialect == "sqlite" and sqlite_busy(e):
                        waited = e  # the statement could not take the lock: nothing written, rolled back below
                    elif not e.connection_invalidated:
                        raise
                    elif rerun is None:
                        raise OutcomeUnknown(e) from None
                    else:
                        lost = waited = e
                else:
                    try:
                        trans.commit()
                    except DBAPIError as e:
                        if e.connection_invalidated:
                            raise OutcomeUnknown(e) from None
                        raise
                    self.away_since = None
                    return result
            finally:
                conn.close()
            assert waited is not None
            delay = self._wait(waited, delay)

    def first_page(self, work: Callable[[], T], lost: Callable[[], None]) -> T:
        """work() (a query started and its first page read), run again when its connection was lost:
        on PostgreSQL, where a query's transaction is never committed (on MySQL/MariaDB a function the
        SELECT calls may write into a table without transactions). `lost` lets the lost connection go."""
        from sqlalchemy.exc import DBAPIError

        delay = FIRST_WAIT
        while True:
            try:
                result = work()
            except DBAPIError as e:
                if self.dialect != "postgresql" or not e.connection_invalidated:
                    raise
                lost()
                delay = self._wait(e, delay)
            else:
                self.away_since = None
                return result

    def rolled_back(self, table: str) -> Callable[[Any], bool]:
        """Whether a write into `table` lost before its COMMIT was surely rolled back: always on
        PostgreSQL; on MySQL/MariaDB when the table's engine has transactions (asked once per table)."""
        def ask(conn: Any) -> bool:
            if self.dialect == "postgresql":
                return True
            if self.dialect not in ("mysql", "mariadb"):
                return False
            found = self.has_transactions(conn, table)
            conn.rollback()
            return found
        return ask

    def has_transactions(self, conn: Any, table: str) -> bool:
        """MySQL/MariaDB: whether the engine of `table` has transactions (InnoDB), asked once per table
        (a table not there yet is asked again next time)."""
        found = self._transactional.get(table)
        if found is None:
            from sqlalchemy import text

            schema, _, name = table.rpartition(".")
            where = {"schema": schema or None, "name": name}
            found = bool(conn.execute(text(TRANSACTIONAL), where).scalar())
            if found or conn.execute(text(TABLE_THERE), where).scalar():
                self._transactional[table] = found
        return found


def still_away_message(name: str, words: str, seconds: float) -> str:
    return f"{name}: {words} (the database has not answered for {seconds:.0f} s)"


def outcome_unknown_message(name: str, words: str) -> str:
    return (f"{name}: the connection to the database was lost before it said whether the write was made "
            f"({words}); it is not written again by itself: look at the table before you retry it")
