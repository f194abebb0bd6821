"""The `sql` connector: SQLite as the embedded default, other databases by URL through SQLAlchemy
Core. Every database call runs on one worker thread per connection; parameters are always bound;
writes run in transactions; a query streams its rows in pages. A batch's rows are converted once to
tuples and written with a statement built once per connection and columns (on SQLite, as SQL text
with positional parameters, skipping SQLAlchemy's per-row work)."""

from __future__ import annotations

import asyncio
import contextvars
import re
import warnings
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices, SendOutcome
from flowlang.connectors.sql_arrays import ARRAY_COLUMNS, array_text
from flowlang.connectors.sql_cancel import Call, Interrupter, log
from flowlang.connectors.sql_keys import STOPPED, check_upsert_key, collision_message, guarded_update, no_unique_key
from flowlang.connectors.sql_literals import literal_colons, outside_literals
from flowlang.connectors.sql_pg_loaders import register_loaders
from flowlang.connectors.sql_pool_logs import logging_name, ours, quiet
from flowlang.connectors.sql_reconnect import (
    OutcomeUnknown,
    Reconnect,
    StillAway,
    closed_while_idle,
    outcome_unknown_message,
    still_away_message,
)
from flowlang.connectors.sql_url_options import mysql_options_problem, port_problem
from flowlang.diagnostics import unencodable
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import Blob
from flowlang.runtime.flow_folder import PathRefused, inside, outside_left_to_run
from flowlang.runtime.jsoncodec import dumps, loads
from flowlang.runtime.masking import cut
from flowlang.runtime.values import RecordStream, Secret, Value, from_python, to_text, type_name

PAGE = 500
TINYINT = 1  # MySQL's type code of a TINYINT column (FIELD_TYPE.TINY)
T = TypeVar("T")


def _sqlalchemy() -> Any:
    import sqlalchemy

    return sqlalchemy


def resolve_url(url: str, base_dir: Path, allow_outside: bool = False) -> str:
    """sqlite:///relative.db is relative to the flow's folder (not the working folder), and a SQLite
    file, relative or absolute, stays in that folder unless allow_outside (runtime/flow_folder.py)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0].lower() != "sqlite" or not rest.startswith("/"):
        return url
    file, query, params = rest[1:].partition("?")
    uri = file.startswith("file:")  # SQLAlchemy's form of a SQLite URI: sqlite:///file:x.db?mode=ro&uri=true
    if uri:
        file = sqlite_path(file)  # as SQLAlchemy, then SQLite, read it
    if not file or file.startswith(":memory:"):
        return url
    try:
        path = inside(base_dir, file, allow_outside=allow_outside)
    except PathRefused as e:
        raise FlowRuntimeError(f"the SQLite database: {e.message}", "connector") from None
    items = [item for item in params.split("&") if item]
    names = {item.partition("=")[0].lower(): item.partition("=")[2] for item in items}
    if names.keys() & SQLITE_URI_PARAMETERS and "uri" not in names:
        items.append("uri=true")  # SQLAlchemy drops SQLite's own parameters without it (mode=ro: written to)
        names["uri"] = "true"
    if names.get("uri", "").strip().lower() in ("true", "yes", "on", "y", "t", "1"):
        from urllib.parse import quote

        # SQLite reads the name as a URI only from file: on (without, 'x.db?mode=ro' was the file's name);
        # quoted twice: SQLAlchemy reads the %-escapes of a URL's database once, SQLite those of its URI
        return f"{scheme}:///file:{quote(quote(str(path.resolve())))}?{'&'.join(items)}"
    return f"{scheme}:///{path.resolve()}{query}{params}"


# The parameters of a SQLite URI (https://sqlite.org/uri.html): read only when the name is a URI (uri=true)
SQLITE_URI_PARAMETERS = frozenset({"vfs", "mode", "cache", "psow", "nolock", "immutable", "modeof"})


def sqlite_path(database: str) -> str:
    """The file a SQLite URL's database names: its path, also when it is a URI (file:/srv/a%2520b.db, as
    resolve_url writes it)."""
    if database.startswith("file:"):
        from urllib.parse import unquote

        return unquote(unquote(database[len("file:"):].split("?", 1)[0]))
    return database.split("?", 1)[0]


def bindable(value: Any, dialect: str) -> Any:
    """A flowlang value as a database parameter. Datetimes go as UTC: aware for PostgreSQL (a
    `timestamp` column, with the session zone UTC, stores the UTC wall time), naive UTC for MySQL and
    MariaDB (their drivers drop an offset), ISO text ending in Z for SQLite (`sqlite_datetime`)."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict | list):
        return dumps(value, reveal_secrets=True)
    if isinstance(value, Blob):  # a large picked-up file: the driver takes bytes
        return value.whole()
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
        if dialect in ("mysql", "mariadb"):
            return value.replace(tzinfo=None)
    if dialect in ("mysql", "mariadb") and isinstance(value, Decimal | int) and not isinstance(value, bool):
        return mysql_number(value)
    if dialect == "sqlite":
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return sqlite_datetime(value)
        if isinstance(value, date):
            return to_text(value)
        if isinstance(value, timedelta):
            return value.total_seconds()
    return value


def sqlite_datetime(value: datetime) -> str:
    """A datetime as SQLite text: UTC, always with six fraction digits (2024-05-01T10:00:00.000000Z),
    so that the text sorts and compares as the instants do. With the fraction left out for whole
    seconds, 10:00:00.5 sorted before 10:00:00 ('.' < 'Z'): an incremental read `where at > :since`
    skipped a row written later in the same second as the high-water mark."""
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def sqlite_number(value: Decimal) -> float | str:
    """A decimal query parameter on SQLite: a float when its shortest text is the same number (1.5,
    0.1, 19.99), so it compares as a number with an expression (price * qty > :min, having sum(x) >
    :min). As the text '1.5' (how a decimal is written into a row), which SQLite sorts after every
    number, it matched no row. A decimal a float cannot hold (more than 15 or so digits) stays text."""
    number = float(value)
    return number if Decimal(repr(number)) == value else str(value)


# The most digits a number may have to go to MySQL/MariaDB as a numeric literal: no DECIMAL holds more
# (65), and past 81 the server's parser cuts the literal without a word, even into a DOUBLE column.
MYSQL_DIGITS = 65
MYSQL_INT_LIMIT = 10 ** MYSQL_DIGITS


def mysql_number(value: Decimal | int) -> Decimal | int | str:
    """A number for MySQL/MariaDB: as it is (PyMySQL writes it as a literal, `format(d, "f")`), but one
    with more than MYSQL_DIGITS digits in that form (1e300, 1.5e-300, a whole number of 100 digits) as its
    text in scientific notation ('1E+300'), which the server reads exactly into a DOUBLE and refuses
    (out of range) or rounds (past the scale) in a DECIMAL, as it does a literal it can hold. As a literal,
    MariaDB stored 1e300 in a DOUBLE as 1e65 and 1.5e-300 as 0 with no warning, strict or not."""
    if isinstance(value, int):
        return value if -MYSQL_INT_LIMIT < value < MYSQL_INT_LIMIT else f"{Decimal(value):E}"
    if not value.is_finite():
        return value
    exponent = int(value.as_tuple().exponent)
    digits = max(value.adjusted() + 1, 1) + max(-exponent, 0)
    return value if digits <= MYSQL_DIGITS else f"{value:E}"


# Values every driver binds as they are: a row made only of these is sent without conversion.
AS_THEY_ARE = frozenset({str, int, bool, float, type(None), bytes})


def converter(kind: type, dialect: str) -> Callable[[Any], Any]:
    """`bindable` for the values of one type: `str` itself for SQLite's decimals (the common case)."""
    if kind is Decimal and dialect == "sqlite":
        return str
    return partial(bindable, dialect=dialect)


def bound_rows(rows: list[tuple[Any, ...]], dialect: str, arrays: frozenset[int] = frozenset(),
               jsons: frozenset[int] = frozenset()) -> list[tuple[Any, ...]]:
    """Rows' values as database parameters, converted a column at a time: a column of values drivers
    take as they are is left alone (the same rows when no column needs converting). The columns at
    `arrays` are PostgreSQL arrays: their lists are written as array text. Those at `jsons` are json or
    jsonb columns: every value is written as JSON text (a text is taken for JSON text already)."""
    plain = AS_THEY_ARE
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True))
    changed = False
    bind = partial(bindable, dialect=dialect)
    for i, column in enumerate(columns):
        if i in arrays:
            columns[i] = tuple([array_text(v, bind) for v in column])
            changed = True
            continue
        if i in jsons:
            columns[i] = tuple([json_text(v) for v in column])
            changed = True
            continue
        kinds = set(map(type, column))
        keep = plain
        if int in kinds and dialect in ("mysql", "mariadb") and any(
                type(v) is int and not -MYSQL_INT_LIMIT < v < MYSQL_INT_LIMIT for v in column):
            keep = plain - {int}  # a whole number too long for a literal (mysql_number)
        if not keep.issuperset(kinds):
            convert = {kind: converter(kind, dialect) for kind in kinds - keep}
            if len(kinds) == 1:  # one type that needs converting: a column of decimals
                columns[i] = tuple(map(convert[kinds.pop()], column))
            else:
                columns[i] = tuple([v if type(v) in keep else convert[type(v)](v) for v in column])
            changed = True
    return list(zip(*columns, strict=True)) if changed else rows


def json_text(value: Any) -> Any:
    """A value for a PostgreSQL json/jsonb column: JSON text. A boolean, a number or a datetime went as
    itself, which PostgreSQL refuses there ('column "j" is of type jsonb but expression is of type
    boolean'): a jsonb true or 5 read from one table could not be written into another. A text that is
    JSON is written as it is (the database reads it: '{"a": 1}', '"x"'); any other text as a JSON string
    (it failed: 'invalid input syntax for type json', so a jsonb "2024-05-01" read could not be copied).
    Null is SQL NULL."""
    if value is None:
        return value
    if isinstance(value, str):
        import json

        try:
            json.loads(value)
        except ValueError:
            return dumps(value)
        return value
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bytes | Blob):  # no JSON value (its text would be '"<2 bytes>"'): refused as before
        return bindable(value, "postgresql")
    return dumps(value, reveal_secrets=True)


def row_value(value: Any) -> Any:
    """A column's value as a flowlang value. A type flowlang has no value for is its text: a time of
    day in ISO 8601 (10:00:01.500000, 10:00:00+05:45 for timetz), a uuid, an inet address or a range as
    the database writes it. Before, each was the placeholder text "<time>", "<UUID>": the value lost.
    A binary column (bytea, blob, varbinary) is bytes: it was its bytes decoded as UTF-8, every byte
    that is not UTF-8 replaced by U+FFFD, and so written back changed."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):  # a PostgreSQL array: uuid[] is a list of uuids
        return [row_value(v) for v in value]
    try:
        return from_python(value)
    except ValueError:
        pass
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, Decimal | float):  # NaN, Infinity (a float's too: "Infinity", not '"inf"')
        return to_text(Decimal(value))
    return str(value)


# `:name::type`: a parameter with a PostgreSQL cast right after it, which SQLAlchemy does not read as
# a parameter (a name followed by ':' is not one), so the text went to the database as it was.
_CAST_AFTER_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)::")


def cast_parameters(sql: str) -> str:
    """`:amount::numeric` as the parameter `amount` cast to numeric (`:amount ::numeric`). Before, the
    parameter was not bound: the database said 'syntax error at or near ":"', and the value given in
    params: was not used."""
    return _CAST_AFTER_PARAMETER.sub(r":\1 ::", sql) if "::" in sql else sql


@lru_cache(maxsize=256)  # a flow runs the same few statements, one per record perhaps
def bind_names(sql: str) -> tuple[str, ...]:
    """The `:name` parameters of SQL text as SQLAlchemy reads them (not `::cast`, nor `\\:name`)."""
    return tuple(_sqlalchemy().text(sql)._bindparams)


def same_names(columns: list[str]) -> str | None:
    """What to say of a result with two columns of one name (`select *` of a join, where both tables
    have an id): a row holds one value a name, and it held the last one, the first lost without a word
    (`r.id` the customer's id, not the order's)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(columns):
        if name in seen:
            return (f"the query gives two columns named {name} (its columns {seen[name] + 1} and {i + 1}), and a "
                    f"row holds one value a name: name them apart in the SQL (select o.{name} as order_{name}, "
                    f"c.{name} as customer_{name} ..., not select *)")
        seen[name] = i
    return None


NAMED_PARAMETERS = "name each value in the SQL, where code = :code, and give it in params: {code: ...}"


def params_type_problem(value: Value) -> str:
    """What query() and execute() say of a params: that is not an object (for `flowlang check` too)."""
    said = f"params: must be an object of named parameters, got {type_name(value)}"
    return f"{said}: {NAMED_PARAMETERS}" if isinstance(value, list | tuple) else said


def positional_marks_problem(op: str, sql: str, dialect: str) -> str | None:
    """What to say of SQL that marks its values with `?` (Python's sqlite3, JDBC, ODBC) on SQLite or MySQL,
    where the database would take it for a parameter flowlang never gives ("Incorrect number of bindings
    supplied. The current statement uses 1, and there are 0 supplied."): flowlang's parameters are named.
    (On PostgreSQL `?` is an operator of jsonb.)"""
    if "?" not in sql or dialect not in ("sqlite", "mysql", "mariadb"):
        return None
    if "?" not in outside_literals(sql, dialect):  # quoted text, quoted names and comments as sql_literals reads them
        return None
    return f"{op}(): the SQL marks a value with ?, which flowlang does not fill: {NAMED_PARAMETERS}"


def prepared_sql(sql: str, dialect: str) -> str:
    """SQL text as SQLAlchemy is given it: `:name::type` cast (cast_parameters), and a `:name` in quoted
    text, a quoted name or a comment escaped (sql_literals.literal_colons)."""
    return literal_colons(cast_parameters(sql), dialect)


def missing_params_problem(op: str, sql: str | list[str], given: Collection[str]) -> str | None:
    """The `:name`s of the SQL (prepared_sql) that params: does not give, said as query() and execute()
    refuse them (for `flowlang check` too, of a constant SQL text and params:'s keys: given the SQL as each
    database reads it, a name counts when every reading has it)."""
    readings = [sql] if isinstance(sql, str) else sql
    missing = [n for n in bind_names(readings[0]) if n not in given and all(
        n in bind_names(other) for other in readings[1:])] if ":" in readings[0] else []
    if not missing:
        return None
    from flowlang.diagnostics import closest

    names = sorted(given)
    meant = closest(missing[0], names)
    return (f"{op}(): the SQL names {', '.join(':' + n for n in missing)}, but params: has no "
            f"{', '.join(missing)} ({'it has ' + ', '.join(names) if names else 'no params: given'}"
            f"{f': is {meant} meant to be {missing[0]}?' if meant else ''})")


# The one time-zone rule: every session runs in UTC, so naive `timestamp`/`datetime` columns hold UTC
# wall time and MariaDB's TIMESTAMP does not shift by the server's zone.
SESSION_UTC = {"postgresql": "SET TIME ZONE 'UTC'", "mysql": "SET time_zone = '+00:00'",
               "mariadb": "SET time_zone = '+00:00'"}

# What a new session is set to: UTC, and on MySQL/MariaDB strict, whatever the server's sql_mode. On a server
# that is not strict ('', as legacy configurations and hosts set it) a value a column cannot hold was changed
# with a warning and its record said sent: an emoji into a utf8mb3 column stored as '?', a text too long cut,
# 123456.789 into a decimal(5, 2) as 999.99, '2024-02-30' as 0000-00-00. STRICT_ALL_TABLES refuses each.
_STRICT = "sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'STRICT_ALL_TABLES')"
SESSION_START = {**SESSION_UTC, "mysql": f"SET time_zone = '+00:00', {_STRICT}",
                 "mariadb": f"SET time_zone = '+00:00', {_STRICT}"}

# A statement that sets the session's time zone (SET TIME ZONE, SET timezone, SET time_zone, PostgreSQL's
# set_config('TimeZone', ...)): the session is set back to UTC after it, before its connection is used again.
# (MySQL: any SET naming time_zone, of several variables too: 'set names utf8mb4, time_zone = ...', @@local.)
# On PostgreSQL the zone the server reports after the SQL is what counts (`_zone_changed`): RESET ALL too.
_SETS_ZONE = re.compile(r"\bset\s+(?:(?:session|local)\s+|@@(?:session\.)?)?(?:time\s+zone|timezone|time_zone)\b"
                        r"|\bset_config\s*\(\s*'timezone'|\bset\b[^;]*?(?:@@|\b)time_zone\b", re.IGNORECASE)

# MySQL/MariaDB: a SET naming sql_mode ('set sql_mode = \'\''), after which the session is made strict again: a
# pooled connection kept the mode, and every later write on it had its bad values changed, not refused.
_SETS_MODE = re.compile(r"\bset\b[^;]*?\bsql_mode\b", re.IGNORECASE)

# A SQLite file is used in WAL mode: a query still being read (a `for each` over db.query(...)) does not
# block writes into the same file, which in the default journal mode wait on its lock until they fail.
SQLITE_WAL = "PRAGMA journal_mode=WAL"
# SQLite's words for a file it cannot open or read, which name no file
SQLITE_FILE_WORDS = frozenset({"unable to open database file", "file is not a database"})


def sqlite_file(database: str | None) -> bool:
    """Whether a SQLite URL's database is a file (not an in-memory database)."""
    return bool(database) and database != ":memory:" and "mode=memory" not in (database or "")


# The driver each extra installs, used when a URL names none (postgresql://, mysql://).
DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def _set_session(dbapi_connection: Any, statement: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()
    dbapi_connection.commit()


def database_words(error: BaseException) -> str:
    """The first line of a driver's error. PyMySQL's is the tuple of its code and message, shown as
    Python writes it ('(1048, "Column \'name\' cannot be null")'): its message with the code after it
    now ("Column 'name' cannot be null (error 1048)")."""
    args = error.args
    if len(args) == 2 and type(args[0]) is int and isinstance(args[1], str) and type(error).__module__.startswith(
            "pymysql"):
        return f"{args[1].splitlines()[0] if args[1] else type(error).__name__} (error {args[0]})"
    text = str(error)
    first = text.splitlines()[0] if text else type(error).__name__
    detail = pg_key_detail(error)
    return f"{first}: {detail}" if detail else first


def pg_key_detail(error: BaseException) -> str | None:
    """PostgreSQL's DETAIL of a unique or foreign key violation, which names the key and its value ('Key
    (id)=(1) already exists.'); its first line names only the constraint. Other details (a failing row's
    every value) are left out."""
    if not type(error).__module__.startswith("psycopg"):
        return None
    detail = getattr(getattr(error, "diag", None), "message_detail", None)
    return detail if isinstance(detail, str) and detail.startswith("Key (") else None


def _let_closed_go(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server closed while it was idle is replaced by a new one (the pool makes
    it) before anything is sent on it (sql_reconnect.closed_while_idle)."""
    if closed_while_idle(dbapi_connection):
        raise _sqlalchemy().exc.DisconnectionError("the server closed the connection while it was idle")


def missing_driver(dialect: str, error: Exception) -> str:
    extra = EXTRAS.get(dialect)
    module = getattr(error, "name", None) or str(error)
    if extra:
        return (f"the {dialect} database driver is not installed (no module {module}); "
                f"install it with: pip install 'flowlang[{extra}]'")
    return f"the database driver for {dialect} is not installed ({error}); install its Python package with pip"


def with_default_driver(url: str) -> str:
    """postgresql://... becomes postgresql+psycopg://..., mysql:// and mariadb:// use pymysql. postgres://
    (the form libpq reads and many hosts give in DATABASE_URL) is postgresql://: SQLAlchemy knows no
    'postgres' ("Can't load plugin: sqlalchemy.dialects:postgres")."""
    scheme, sep, rest = url.partition("://")
    name, _, driver = scheme.partition("+")
    if name.lower() == "postgres":
        name = "postgresql"
    driver = driver or DEFAULT_DRIVERS.get(name.lower(), "")
    return f"{name}+{driver}{sep}{rest}" if driver else f"{name}{sep}{rest}"


def table_clause(sa: Any, table: str, columns: list[str]) -> Any:
    """The table a send writes: "sales.orders" is the table orders in the schema (on MySQL/MariaDB the
    database) sales. It was quoted as one name, "sales.orders": a table that does not exist."""
    schema, _, name = table.rpartition(".")
    if not name or (_ and not schema):
        raise FlowRuntimeError(f"table: {table!r} is not a table's name (a name, or schema.name)", "connector")
    return sa.table(name, *[sa.column(c) for c in columns], schema=schema or None)


ROWS_PER_STATEMENT = 1000  # SQLite: rows written by one INSERT ... VALUES (...), (...), ...


class Statement:
    """A write statement for rows of some columns: the SQLAlchemy statement, and for SQLite its SQL text
    with the columns in the order of its positional parameters, and that text for several rows at once
    (one statement for many rows: far fewer calls into SQLite than one per row)."""

    __slots__ = ("columns", "many", "sql", "stmt")

    def __init__(self, stmt: Any, columns: tuple[str, ...]) -> None:
        self.stmt = stmt
        self.columns = columns
        self.sql: str | None = None
        self.many: dict[int, str | None] = {}

    def for_rows(self, count: int) -> str | None:
        """The SQL text writing `count` rows in one statement (None when the text does not allow it)."""
        found = self.many.get(count, "")
        if found != "":
            return found
        group = "(" + ", ".join(["?"] * len(self.columns)) + ")"
        marker = f" VALUES {group}"
        one = self.sql or ""
        text = one.replace(marker, " VALUES " + ", ".join([group] * count)) if one.count(marker) == 1 else None
        self.many[count] = text
        return text


class _RowByRow(Exception):
    """A batch written a row at a time from the start (a table without transactions)."""


class SqlConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, url: str, services: RunServices) -> None:
        super().__init__(name, spec)
        self.url = url
        self.services = services
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"flowlang-sql-{name}")
        self._engine: Any = None
        # the database kind from the URL's scheme: sqlite, postgresql, mysql, mariadb, ...
        self.dialect = url.split(":", 1)[0].split("+", 1)[0].lower()
        self._statements: dict[tuple[str, str, tuple[str, ...], tuple[str, ...], bool], Statement] = {}
        self._variables: int | None = None
        self._arrays: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        # MySQL/MariaDB upserts: (table, *keys) -> the table's other unique indexes (sql_keys.check_upsert_key)
        self._keys_checked: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
        self.calls = Interrupter(self.dialect, lambda: self._engine.raw_connection())
        self.reconnect = Reconnect(self.dialect, self.calls.pause)
        self._zone_warned = False
        self._packet: int | None = None  # MySQL/MariaDB's max_allowed_packet, once a record may have passed it

    # ---- plumbing -------------------------------------------------------------------------------
    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        call = Call()
        try:
            # in the caller's context: a line the database thread logs (a driver's warning) names its job
            context = contextvars.copy_context()
            return await loop.run_in_executor(self.executor, context.run, self.calls.run, call, fn, args)
        except asyncio.CancelledError:  # the record was given up (max_record_seconds): so is its statement
            self.calls.interrupt(call)
            raise
        except FlowRuntimeError:
            raise
        except Exception as e:
            raise self._error(e) from None

    def _error(self, e: Exception) -> FlowRuntimeError:
        if isinstance(e, OutcomeUnknown | StillAway):
            words = database_words(getattr(e.error, "orig", None) or e.error)
            text = (outcome_unknown_message(self.name, words) if isinstance(e, OutcomeUnknown)
                    else still_away_message(self.name, words, e.seconds))
            return FlowRuntimeError(self.services.mask(text), "connector")
        if isinstance(e, OverflowError) and self.dialect == "sqlite":  # sqlite3's 'Python int too large ...'
            return FlowRuntimeError(f"{self.name}: a whole number past SQLite's integers ({-2**63} to {2**63 - 1}) "
                                    "cannot go to SQLite: give it as text (str(x)), into a text column", "data")
        if isinstance(e, UnicodeEncodeError):  # the driver encodes a value's text: the record is at fault
            return FlowRuntimeError(f"{self.name}: {unencodable(e, e.encoding, 'the database')}", "data")
        text = database_words(getattr(e, "orig", None) or e)
        if self.dialect == "sqlite" and text in SQLITE_FILE_WORDS:
            text += self._sqlite_file_said()
        if getattr(e, "orig", None) is not None:  # the database's own words (SQLAlchemy's class says nothing more)
            return FlowRuntimeError(self.services.mask(f"{self.name}: {text}"), "connector")
        return FlowRuntimeError(self.services.mask(f"{self.name}: {type(e).__name__}: {text}"), "connector")

    def _read_only(self) -> bool:
        """A SQLite file opened read only (mode=ro, immutable=1), which WAL mode cannot be set on (it is a
        write): its PRAGMA failed every query with 'attempt to write a readonly database'."""
        return bool(re.search(r"[?&](?:mode=ro|immutable=(?:1|true|yes|on))(?:&|$)", self.url, re.IGNORECASE))

    def _sqlite_file_said(self) -> str:
        """Which SQLite file SQLite could not open or read, and why when it can be told: 'unable to open
        database file' and 'file is not a database' named neither."""
        database = sqlite_path(self.url.split(":///", 1)[-1])
        if not sqlite_file(database):
            return ""
        path = Path(database)
        if path.is_dir():
            return f": {path} is a folder, not a SQLite file"
        if not path.exists():
            if self._read_only():
                return f": {path} is not there (the URL opens it read only, mode=ro, so it is not made)"
            return f": {path} (its folder cannot be made or written)"
        return f": {path}"

    def engine(self) -> Any:
        if self._engine is None:
            sa = _sqlalchemy()
            self._check_options(sa)
            try:
                with warnings.catch_warnings(record=True) as warned:
                    warnings.simplefilter("always", sa.exc.SAWarning)
                    self._engine = sa.create_engine(self.url, json_deserializer=loads, **self._connect_args(sa),
                                                    **self._pool_args(sa), pool_logging_name=logging_name(self.name))
                self._say_warnings(warned)
            except (ImportError, ModuleNotFoundError) as e:
                raise FlowRuntimeError(missing_driver(self.dialect, e), "connector") from None
            except Exception as e:
                said = (port_problem(sa, self.url, e) if isinstance(e, ValueError) else None) or str(e)
                raise FlowRuntimeError(self.services.mask(f"{self.name}: cannot use the database URL: {said}"),
                                       "connector") from None
            quiet(self._engine.pool.logger)  # its troubles are flowlang's lines, not tracebacks (sql_pool_logs)
            zone = SESSION_START.get(self.dialect)
            if zone:
                sa.event.listen(self._engine, "connect", lambda dbapi, _record: _set_session(dbapi, zone))
            if self.dialect == "postgresql":
                sa.event.listen(self._engine, "connect", lambda dbapi, _record: register_loaders(dbapi))
                sa.event.listen(self._engine, "connect", lambda dbapi, _record: ours(dbapi))
            if self.dialect in ("postgresql", "mysql", "mariadb"):
                sa.event.listen(self._engine, "checkout", _let_closed_go)
            elif self.dialect == "sqlite" and sqlite_file(self._engine.url.database) and not self._read_only():
                sa.event.listen(self._engine, "connect", lambda dbapi, _record: _set_session(dbapi, SQLITE_WAL))
        return self._engine

    def _say_warnings(self, said: list[warnings.WarningMessage]) -> None:
        """SQLAlchemy's warnings of the URL (a query option the driver does not read: 'sqlite:///x.db?journal_mode=wal'
        is ignored) as a line of the connection's, without a link and not as Python shows a warning (the
        file and line of flowlang's source that made the engine, and that line's code)."""
        for warning in said:
            text = re.sub(r"\s*\(Background on this warning at: [^)]*\)", "", str(warning.message))
            ignored = re.match(r"Query string argument\(s\) (.*) are not accepted by the pysqlite driver", text)
            if ignored:  # SQLite's own parameters are read (resolve_url adds uri=true): not these
                text = (f"the URL's {ignored.group(1)} is read neither by SQLite nor by its driver, and is ignored "
                        f"(SQLite's URI parameters are {', '.join(sorted(SQLITE_URI_PARAMETERS))}; the driver's "
                        "timeout, isolation_level, detect_types, cached_statements; a PRAGMA goes to execute)")
            log.warning(self.services.mask(f"{self.name}: {text}"))

    def _pool_args(self, sa: Any) -> dict[str, Any]:
        """A pool of connections without a limit of its own (SQLAlchemy's is 5 kept and 10 more, 15 at once).
        Each query being read holds a connection until its last page, and every call of the connection waits
        on its one thread: with 15 held (a `parallel 20` loop, each iteration reading a query of over 500
        rows), the 16th waited there for one to come back, and none could, their next pages waiting behind
        it; after 30 s it failed ('db: TimeoutError: QueuePool limit of size 5 overflow 10 reached ...'), and
        so did the next, 30 s each, the run stalled meanwhile. A connection is made for each query read at
        once (the database's own limit, PostgreSQL's max_connections, is the one left); 5 are kept idle."""
        try:
            url = sa.engine.make_url(self.url)
            pool = url.get_dialect().get_pool_class(url)
        except Exception:
            return {}  # create_engine says what is wrong
        return {"max_overflow": -1} if issubclass(pool, sa.pool.QueuePool) else {}

    def _check_options(self, sa: Any) -> None:
        """The URL's options PyMySQL would refuse in Python's words, said in the URL's (sql_url_options)."""
        if self.dialect not in ("mysql", "mariadb"):
            return
        try:
            url = sa.engine.make_url(self.url)
        except Exception:
            return  # create_engine says what is wrong with it
        problem = mysql_options_problem(dict(url.query)) if url.get_driver_name() == "pymysql" else None
        if problem is not None:
            raise FlowRuntimeError(self.services.mask(f"{self.name}: {problem}"), "connector")

    def _connect_args(self, sa: Any) -> dict[str, Any]:
        """PyMySQL sends a password given as text in latin-1, so a non-ASCII one (`straße`, set by a client
        in UTF-8, as every client is now) was refused ('Access denied'), or one with a character beyond
        latin-1 failed as a value 'not latin-1 text', naming that character of the password. Its UTF-8
        bytes log in."""
        if self.dialect not in ("mysql", "mariadb"):
            return {}
        url = sa.engine.make_url(self.url)
        if url.get_driver_name() != "pymysql" or not url.password or str(url.password).isascii():
            return {}
        return {"connect_args": {"password": str(url.password).encode("utf-8")}}

    def _bindable(self, value: Any) -> Any:
        return bindable(value, self.dialect)

    def _params(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise FlowRuntimeError(params_type_problem(value), "connector")
        if self.dialect == "sqlite":
            return {k: sqlite_number(v) if type(v) is Decimal else self._bindable(v) for k, v in value.items()}
        return {k: self._bindable(v) for k, v in value.items()}

    def _sql(self, args: list[Value], kwargs: dict[str, Value], op: str) -> str:
        sql = args[0] if args else kwargs.get("sql")
        if isinstance(sql, Secret):
            sql = sql.reveal()
        if not isinstance(sql, str) or not sql.strip():
            raise FlowRuntimeError(f"{op}() needs the SQL text", "connector")
        return prepared_sql(sql, self.dialect)

    @staticmethod
    def _check_params(op: str, sql: str, params: dict[str, Any], dialect: str) -> None:
        """Each `:name` of the SQL (as SQLAlchemy reads it) must be given in params: before, a missing
        one was the driver's "StatementError: A value is required for bind parameter 'id' (Background
        on this error at: https://sqlalche.me/...)"; a `?` is no parameter of flowlang's."""
        problem = missing_params_problem(op, sql, params) or positional_marks_problem(op, sql, dialect)
        if problem is not None:
            raise FlowRuntimeError(problem, "connector")

    # ---- operations -----------------------------------------------------------------------------
    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "query":
            sql, params = self._sql(args, kwargs, op), self._params(kwargs.get("params"))
            self._check_params(op, sql, params, self.dialect)
            return self._query(sql, params)
        if op == "execute":
            sql = self._sql(args, kwargs, op)
            params = self._params(kwargs.get("params"))
            self._check_params(op, sql, params, self.dialect)
            if self.services.dry_run:
                sent = sql.strip().replace("\\:", ":")  # as SQLAlchemy sends it (sql_literals)
                self.services.log_dry_run(self.name, f"execute {cut(sent, 200, self.services.mask)}")
                return {"rowcount": 0}
            self.writes += 1
            return await self._on_thread(self._execute, sql, params)
        if op in ("insert", "upsert"):
            return await self.send(op, args[0] if args else None, [], kwargs)
        raise FlowRuntimeError(f"sql has no operation '{op}'", "connector")

    def _execute(self, sql: str, params: dict[str, Any]) -> Value:
        """The statement in a transaction of its own, committed. A connection that cannot be made is waited
        for (sql_reconnect.py); a statement that reached the server is never run again by itself."""
        return self.reconnect.transaction(self.engine(), partial(self._execute_on, sql, params), rerun=None)

    def _execute_on(self, sql: str, params: dict[str, Any], conn: Any) -> Value:
        sa = _sqlalchemy()
        self.calls.working(conn)
        result = conn.execute(sa.text(sql), params)
        count = result.rowcount if result.rowcount is not None else -1
        if result.returns_rows:
            twice = same_names(list(result.keys()))
            if twice is not None:
                raise FlowRuntimeError(f"{self.name}: {twice}", "connector")
            rows = self._rows(self._booleans(result), result.mappings())
            if rows and count <= 0:  # SQLite says 0 for a DELETE ... RETURNING of 2 rows, -1 for a SELECT
                count = len(rows)
            self._back_to_utc(sql, conn)
            return {"rowcount": count, "rows": rows}
        self._back_to_utc(sql, conn)
        return {"rowcount": count}

    def _give_back(self, sql: str, conn: Any) -> None:
        """A query's connection back to the pool, its rows read or no more of them wanted. One the database
        lost meanwhile (a server killed or restarted, the connection terminated) is let go, with a log line:
        the rows the flow read were read whole, so nothing fails. Raised from the stream's close, its error
        was a Python traceback on stderr ('Task exception was never retrieved ... FlowRuntimeError('db:
        terminating connection due to administrator command')') and the CLI's 'error: Task exception ...'."""
        try:
            if not conn.invalidated:
                self._back_to_utc(sql, conn)  # MySQL/MariaDB keep a SET past the rollback
            conn.close()
        except Exception as e:
            log.info("%s; that was the connection of a query after the rows the flow read: it is let go",
                     self._error(e).message)
            try:
                conn.invalidate()
                conn.close()
            except Exception as again:  # already let go
                log.debug("could not let a lost connection go: %s", again)

    def _back_to_utc(self, sql: str, conn: Any) -> None:
        """After SQL that set the session's time zone, the session in UTC again: a pooled connection kept
        the zone, and the datetimes of every later write on it were off by it (after 'set time zone
        \'Asia/Kathmandu\'', 05:30Z written into a PostgreSQL timestamp was stored and read back as 11:15Z,
        into a MariaDB TIMESTAMP as 23:45Z the day before), silently."""
        statement = SESSION_UTC.get(self.dialect)
        if statement is None:
            return
        if self.dialect in ("mysql", "mariadb") and _SETS_MODE.search(sql):  # strict again (SESSION_START)
            conn.exec_driver_sql(SESSION_START[self.dialect])
            if not self._zone_changed(sql, conn):
                return
        elif not self._zone_changed(sql, conn):
            return
        else:
            conn.exec_driver_sql(statement)
        if not self._zone_warned:
            self._zone_warned = True
            log.warning(self.services.mask(
                f"{self.name}: the SQL sets the session's time zone, which lasts for that SQL only: flowlang keeps "
                "every session in UTC, so that datetimes are written and read as UTC; for local times convert in the "
                "flow (to_zone(d, \"Asia/Kathmandu\")) or in the SQL (at time zone)"))

    def _zone_changed(self, sql: str, conn: Any) -> bool:
        """Whether SQL may have left the session in another zone than UTC. PostgreSQL reports its session's
        zone to the client whenever it changes (ParameterStatus: no round trip), so any SQL that changes it
        is seen, 'reset all', 'reset timezone' and a function that sets it too; other databases by the SQL's
        text."""
        if self.dialect == "postgresql":
            info = getattr(getattr(conn.connection, "dbapi_connection", None), "info", None)
            status = getattr(info, "parameter_status", None)
            zone = status("TimeZone") if status is not None else None
            if isinstance(zone, str):
                return zone != "UTC"
        return bool(_SETS_ZONE.search(sql))

    @staticmethod
    def _row(row: Mapping[str, Any]) -> dict[str, Any]:
        return {str(k): row_value(v) for k, v in row.items()}

    def _rows(self, booleans: list[str], rows: Any) -> list[Any]:
        """The rows as flowlang values; the `booleans` columns' 0 and 1 as false and true."""
        converted = [self._row(r) for r in rows]
        for name in booleans:
            for row in converted:
                value = row[name]
                if type(value) is int and value in (0, 1):
                    row[name] = value == 1
        return converted

    def _booleans(self, result: Any) -> list[str]:
        """The columns of a MySQL/MariaDB result that are booleans. BOOLEAN is TINYINT(1) there, and the
        driver gives 0 and 1: 'if r.active' failed as a number, and copied into a PostgreSQL boolean
        the value was refused ('column "active" is of type boolean but expression is of type
        integer'). A TINYINT(1) column is read as a boolean as MySQL's own Connector/J reads it; a
        value in it other than 0 and 1 stays its number."""
        if self.dialect not in ("mysql", "mariadb"):
            return []
        description = getattr(getattr(result, "cursor", None), "description", None) or ()
        return [str(d[0]) for d in description if d[1] == TINYINT and d[3] == 1]

    def _query(self, sql: str, params: dict[str, Any]) -> RecordStream:
        async def pages() -> AsyncIterator[list[Value]]:
            state: dict[str, Any] = {}

            def start() -> None:
                sa = _sqlalchemy()
                state["conn"] = self.reconnect.connect(self.engine())
                self.calls.working(state["conn"])
                state["result"] = state["conn"].execution_options(stream_results=True).execute(sa.text(sql), params)

            def fetch() -> list[Value]:
                """The next page. The connection goes back to the pool as soon as the last page is read
                (one shorter than PAGE), in the same call: a lookup's query (a row or a few) holds none
                while the flow goes on. Held until the stream was closed, the lookups of a batched or
                parallel loop (up to 2 x the batch running at once) took every connection of the
                pool, and the next one waited for a connection on the one thread that would have
                given one back: the run hung."""
                result = state.get("result")
                if result is None:
                    return []
                self.calls.working(state["conn"])
                if "booleans" not in state:  # before the last row is read: the cursor and its description go then
                    state["booleans"] = self._booleans(result) if result.returns_rows else []
                    twice = same_names(list(result.keys())) if result.returns_rows else None
                    if twice is not None:  # (MySQL/MariaDB read the rows left to close the result: it is rare)
                        result.close()
                        stop()
                        raise FlowRuntimeError(f"{self.name}: {twice}", "connector")
                page = self._rows(state["booleans"], result.mappings().fetchmany(PAGE)) if result.returns_rows else []
                if len(page) < PAGE:
                    stop()
                return page

            def first() -> list[Value]:
                def started() -> list[Value]:
                    start()
                    return fetch()
                return self.reconnect.first_page(started, stop)

            def stop() -> None:
                state.pop("result", None)
                conn = state.pop("conn", None)
                if conn is not None:
                    self._give_back(sql, conn)

            try:
                page = await self._on_thread(first)
                while page:
                    yield page
                    page = await self._on_thread(fetch)
            finally:
                if "conn" in state:
                    await self._on_thread(stop)
        return RecordStream(pages, f"{self.name}.query()")

    async def send_batch(self, op: str, records: list[Value], args: list[Value], kwargs: dict[str, Value]
                         ) -> list[SendOutcome]:
        if op not in ("insert", "upsert"):
            raise FlowRuntimeError(f"send to {self.name} needs insert(table: ...) or upsert(table: ..., key: ...)",
                                   "connector")
        table = kwargs.get("table")
        if not isinstance(table, str) or not table:
            raise FlowRuntimeError(f"{op}() needs table: the table's name", "connector")
        self.writes += 1
        key = kwargs.get("key")
        keys = [key] if isinstance(key, str) else key
        if op == "upsert" and (not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys)):
            raise FlowRuntimeError("upsert() needs key: the column (or list of columns) that identifies a row",
                                   "connector")
        names = [str(k) for k in keys or []]

        def problem(record: Value) -> str | None:
            found = row_problem(record, table)
            return found if found is not None or op != "upsert" else key_problem(record, table, names, self.name)

        problems = {i: why for i, r in enumerate(records) if (why := problem(r)) is not None}
        if problems:  # such a record fails alone: the others of its batch are written
            good = [r for i, r in enumerate(records) if i not in problems]
            done = iter(await self._send_rows(op, table, names, good) if good else [])
            return [SendOutcome(False, error=problems[i]) if i in problems else next(done)
                    for i in range(len(records))]
        return await self._send_rows(op, table, names, records)

    async def _send_rows(self, op: str, table: str, keys: list[str], records: list[Value]) -> list[SendOutcome]:
        if self.services.dry_run:
            self.services.log_dry_run(self.name, f"{op} {len(records)} row(s) into {table}: "
                                      f"{self.services.mask(dumps(records[:3]))}")
            return [SendOutcome(True, r) for r in records]
        return await self._on_thread(self._write, op, table, keys, records)

    def _statement(self, op: str, table: str, keys: list[str], columns: tuple[str, ...]) -> Statement:
        """The write of rows with these columns, built once per connection and reused."""
        cache_key = (op, table, tuple(keys), columns, bool(self._keys_checked.get((table, *keys))))
        found = self._statements.get(cache_key)
        if found is None:
            stmt = self._build_statement(op, table, keys, list(columns))
            found = self._statements[cache_key] = Statement(stmt, columns)
            dialect = self.engine().dialect
            if dialect.name == "sqlite":  # sent as SQL text with positional parameters (nothing to convert)
                compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
                order = tuple(compiled.positiontup or ())
                if sorted(order) == sorted(columns):
                    found.sql, found.columns = str(compiled), order
        return found

    def _build_statement(self, op: str, table: str, keys: list[str], columns: list[str]) -> Any:
        sa = _sqlalchemy()
        target = table_clause(sa, table, columns)
        if op == "insert":
            return sa.insert(target)
        dialect = self.engine().dialect.name
        if dialect in ("sqlite", "postgresql"):
            module = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
            stmt = module.insert(target)
            update = {c: stmt.excluded[c] for c in columns if c not in keys}
            if not update:
                return stmt.on_conflict_do_nothing(index_elements=keys)
            return stmt.on_conflict_do_update(index_elements=keys, set_=update)
        if dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            stmt = mysql_insert(target)
            assignments: list[tuple[str, Any]] = [(c, stmt.inserted[c]) for c in columns if c not in keys]
            if self._keys_checked.get((table, *keys)):  # other unique indexes: a collision by one stops
                return stmt.on_duplicate_key_update(guarded_update(sa, target, stmt.inserted, keys, assignments))
            # a record of only its key: a = a, the one way to do nothing (SQLAlchemy refuses an empty update)
            return stmt.on_duplicate_key_update(assignments or [(columns[0], target.c[columns[0]])])
        raise FlowRuntimeError(f"upsert is not supported for {dialect}; use execute with your database's SQL",
                               "connector")

    def _runs(self, op: str, table: str, keys: list[str], records: list[dict[str, Any]]
              ) -> list[tuple[Statement, list[tuple[Any, ...]]]]:
        """The records cut into runs of consecutive records with the same columns (in order, so a later
        write of the same key still wins), each run's rows as tuples of bound values in its statement's
        column order: a record writes only the columns it has."""
        arrays, jsons = self._array_columns(table)

        def bound(statement: Statement, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            at = frozenset(i for i, c in enumerate(statement.columns) if c in arrays) if arrays else frozenset()
            js = frozenset(i for i, c in enumerate(statement.columns) if c in jsons) if jsons else frozenset()
            return bound_rows(rows, self.dialect, at, js)

        if records:  # every record with the columns of the first (the common case): one run, rows at C speed
            statement = self._statement(op, table, keys, tuple(records[0]))
            width = len(statement.columns)
            if width > 1 and set(map(len, records)) == {width}:
                try:  # each record has every column and no other one (a missing one raises KeyError)
                    whole = list(map(itemgetter(*statement.columns), records))
                except KeyError:
                    pass
                else:
                    return [(statement, bound(statement, whole))]
        runs: list[tuple[Statement, list[tuple[Any, ...]]]] = []
        last: Any = None
        rows: list[tuple[Any, ...]] = []
        get: Any = None
        single = False
        for record in records:
            shape = record.keys()
            if shape != last:
                statement = self._statement(op, table, keys, tuple(record))
                rows = []
                runs.append((statement, rows))
                last = shape
                get = itemgetter(*statement.columns)
                single = len(statement.columns) == 1
            values = get(record)
            rows.append((values,) if single else values)
        return [(statement, bound(statement, rows)) for statement, rows in runs]

    def _array_columns(self, table: str) -> tuple[frozenset[str], frozenset[str]]:
        """PostgreSQL: the table's array columns and its json/jsonb columns, read once per table (not cached
        while there is no such table: the flow may create it later)."""
        if self.dialect != "postgresql":
            return frozenset(), frozenset()
        found = self._arrays.get(table)
        if found is None:
            sa = _sqlalchemy()
            engine = self.engine()
            name = engine.dialect.identifier_preparer.format_table(table_clause(sa, table, []))
            columns = self.reconnect.transaction(
                engine, lambda conn: conn.execute(sa.text(ARRAY_COLUMNS), {"t": name}).all(), rerun=lambda _: True)
            found = (frozenset(str(c) for c, is_array, _ in columns if is_array),
                     frozenset(str(c) for c, _, is_json in columns if is_json))
            if columns:
                self._arrays[table] = found
        return found

    def _execute_many(self, conn: Any, statement: Statement, rows: list[tuple[Any, ...]]) -> None:
        if statement.sql is not None:
            per = max(1, min(ROWS_PER_STATEMENT, self._max_variables(conn) // max(1, len(statement.columns))))
            for start in range(0, len(rows), per):
                part = rows[start:start + per]
                text = statement.for_rows(len(part)) if len(part) > 1 else statement.sql
                if text is None:
                    conn.exec_driver_sql(statement.sql, part)
                else:
                    conn.exec_driver_sql(text, tuple(chain.from_iterable(part)))
        else:
            columns = statement.columns
            conn.execute(statement.stmt, [dict(zip(columns, row, strict=True)) for row in rows])

    def _max_variables(self, conn: Any) -> int:
        """How many parameters one SQLite statement may have (999 where the driver cannot say)."""
        if self._variables is None:
            try:
                import sqlite3

                self._variables = int(conn.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
            except Exception:
                self._variables = 999
        return self._variables

    def _write(self, op: str, table: str, keys: list[str], records: list[dict[str, Any]]) -> list[SendOutcome]:
        """All rows in one transaction; if it fails, each row alone, so a bad row fails by itself."""
        if any("" in r for r in records):  # no column has an empty name: SQLAlchemy's error named its own
            good = [r for r in records if "" not in r]
            done = iter(self._write(op, table, keys, good) if good else [])
            return [SendOutcome(False, error=f"a field with an empty name cannot be a column of {table}: rename or "
                                "drop it (omit(r, \"\"))") if "" in r else next(done) for r in records]
        if op == "upsert" and self.dialect in ("mysql", "mariadb") and (table, *keys) not in self._keys_checked:
            check = partial(check_upsert_key, _sqlalchemy(), table=table, keys=keys)
            others = self.reconnect.transaction(self.engine(), check, rerun=lambda _: True)
            if others is not None:
                self._keys_checked[(table, *keys)] = others
        runs = self._runs(op, table, keys, records)
        rerun = self.reconnect.rolled_back(table)

        def write(runs: list[tuple[Statement, list[tuple[Any, ...]]]], conn: Any) -> None:
            self.calls.working(conn)
            for statement, rows in runs:
                self._execute_many(conn, statement, rows)

        try:
            if len(records) > 1 and not self._has_transactions(table):  # each row's outcome known: one statement each
                raise _RowByRow
            self.reconnect.transaction(self.engine(), partial(write, runs), rerun)
            return [SendOutcome(True, r) for r in records]
        except _RowByRow:
            pass
        except FlowRuntimeError:
            raise
        except Exception as e:
            unkeyed = no_unique_key(e, table, keys) if op == "upsert" else None
            if unkeyed is not None:  # no row can go in, whatever it holds
                raise unkeyed from None
            if len(records) == 1 or not self._row_alone_may_pass(e):
                error = self._write_error(e, op, table, keys, records[0] if len(records) == 1 else None)
                uncertain = isinstance(e, OutcomeUnknown)  # it may have been written
                return [SendOutcome(False, error=error, uncertain=uncertain) for _ in records]
        outcomes = []
        alone = ((statement, row) for statement, rows in runs for row in rows)
        for record, (statement, row) in zip(records, alone, strict=True):
            try:
                self.reconnect.transaction(self.engine(), partial(write, [(statement, [row])]), rerun)
                outcomes.append(SendOutcome(True, record))
            except Exception as e:
                outcomes.append(SendOutcome(False, error=self._write_error(e, op, table, keys, record),
                                            uncertain=isinstance(e, OutcomeUnknown)))
        return outcomes

    def _has_transactions(self, table: str) -> bool:
        """Whether a write into `table` is one transaction: not on MySQL/MariaDB for a table whose engine has
        none (MyISAM, Aria), where a multi-row INSERT keeps the rows before a bad one, and a bad value after
        the first row (an emoji in a utf8mb3 column, a null in a not null one, a text too long) is changed,
        not refused: '?', '', the text cut, silently. Such a table gets one statement a row."""
        if self.dialect not in ("mysql", "mariadb"):
            return True
        return bool(self.reconnect.transaction(
            self.engine(), lambda conn: self.reconnect.has_transactions(conn, table), rerun=lambda _: True))

    def _write_error(self, e: Exception, op: str, table: str, keys: list[str],
                     record: dict[str, Any] | None = None) -> str:
        """A failed write's message: a MySQL/MariaDB upsert stopped by its guard (sql_keys.guarded_update)
        says which collision stopped it; a record too large for the server's max_allowed_packet says so."""
        others = self._keys_checked.get((table, *keys)) if op == "upsert" else None
        orig = getattr(e, "orig", None)
        if others and orig is not None and type(orig).__module__.startswith("pymysql") and orig.args[:1] == (STOPPED,):
            return collision_message(table, keys, others)
        return self._error(e).message + self._too_large(e, record)

    def _too_large(self, e: Exception, record: dict[str, Any] | None) -> str:
        """MySQL/MariaDB drop the connection of a statement larger than their max_allowed_packet (16 MB by
        default, 1 MB on many hosts and older servers) before it is read: the record failed with 'MySQL
        server has gone away (ConnectionResetError(104, ...)) (error 2006)', as if the server had stopped.
        A record that large is told so, with the server's limit (asked of it when such a record fails)."""
        orig = getattr(e, "orig", None) or getattr(getattr(e, "error", None), "orig", None)
        if record is None or orig is None or not type(orig).__module__.startswith("pymysql") \
                or orig.args[:1] not in ((2006,), (2013,)):
            return ""
        size = record_bytes(record)
        if size < 1024:  # the least max_allowed_packet there is
            return ""
        if self._packet is None:
            try:
                with self.engine().connect() as conn:
                    self._packet = int(conn.exec_driver_sql("select @@max_allowed_packet").scalar())
            except Exception:  # the server is away indeed
                return ""
        if size + 1024 < self._packet:
            return ""
        return (f"; the record is some {size:,} bytes, and the server takes no statement over {self._packet:,} "
                "bytes (its max_allowed_packet), dropping the connection: raise max_allowed_packet on the server "
                "(set global max_allowed_packet = ...), or send the value in parts")

    @staticmethod
    def _row_alone_may_pass(error: Exception) -> bool:
        """Whether a batch that failed so is written again row by row, so that a bad row fails alone: not
        when the database was away (each row would fail alike), nor when the batch may have been written
        (a connection lost at its COMMIT: each row would be written twice)."""
        return not isinstance(error, OutcomeUnknown | StillAway)

    async def close(self) -> None:
        if self._engine is not None:
            await self._on_thread(self._engine.dispose)
        self.executor.shutdown(wait=False)


def record_bytes(record: dict[str, Any]) -> int:
    """About how many bytes a record's values take in an INSERT (text as UTF-8, bytes twice as hex may be)."""
    size = 0
    for name, value in record.items():
        size += len(name) + 4
        if isinstance(value, str):
            size += len(value.encode("utf-8", "surrogatepass"))
        elif isinstance(value, bytes | Blob):
            size += len(value)
        elif isinstance(value, dict | list):
            size += len(dumps(value, reveal_secrets=True).encode("utf-8", "surrogatepass"))
        else:
            size += 24
    return size


def row_problem(record: Value, table: str) -> str | None:
    """Why a record sent to a table is no row (that record fails alone), or None."""
    if not isinstance(record, dict):
        return f"a row of {table} must be an object with fields, got {type_name(record)}"
    if not record:
        return f"an empty object has no field to write as a row of {table}"
    return None


def key_problem(record: Value, table: str, keys: list[str], name: str) -> str | None:
    """Why an upserted record cannot be found by its key (that record fails alone), or None. A key that is
    null, or a record without its key's field, matches no row: NULL = NULL is not true in SQL, so no unique
    index holds two of them as equal, and such a record was inserted as a new row in every run again."""
    assert isinstance(record, dict)
    for key in keys:
        if key not in record:
            alike = [f for f in record if f.lower() == key.lower()]
            why = f"the record has no field {key}" + (f" (it has {alike[0]}: name the key as the field is named)"
                                                      if alike else "")
        elif record[key] is None:
            why = f"the record's {key} is null"
        else:
            continue
        shown = f"{keys[0]!r}{', ...' if len(keys) > 1 else ''}"
        return (f"upsert(key: {shown}) into {table}: {why}, so it matches no row (in SQL a null key equals none, "
                "not even another null) and the record would be inserted again in every run: give it its key, "
                f"or send it to {name}.insert")
    return None


def check_credentials(url: str, services: RunServices, secret: bool) -> None:
    """A password with an '@' not URL-encoded ends at that '@', and SQLAlchemy reads the rest of it as
    the host (up to a '/', the rest as the database's name): the driver's error then showed it ("failed
    to resolve host 'TheRestOfThePassword@db'"), past the masking of the whole secret. Refused before
    connecting, naming no part of the URL. The password of a secret URL is masked on its own too (a
    driver may echo it)."""
    if url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite":
        return
    try:
        parsed = _sqlalchemy().engine.make_url(url)
    except Exception:
        return  # engine() says what is wrong with it
    read_apart = (parsed.host, parsed.database, *parsed.query)  # an '@' in none of them, in a URL well written
    # a user holding a '/' (or '?') ends at it: the rest, to the '@', is read as the database and a query
    # item with no value, which SQLAlchemy drops, and the user's head as the host ("failed to resolve host")
    no_user = parsed.username is None and parsed.password is None and "@" in url.partition("://")[2]
    if no_user or any(part and "@" in part for part in read_apart):
        raise FlowRuntimeError("sql: the URL's password (or user) holds an '@', '/' or '?' that is not URL-encoded, "
                               "so the rest of it would be read as the host or the database; write it URL-encoded: "
                               'sql(url: "postgresql://app:{url_encode(secret.DB_PASSWORD)}@db:5432/app")', "connector")
    if secret and parsed.password:
        services.register_secret(str(parsed.password))


def url_problem(key: str, url: Value) -> str | None:
    """What open_sql refuses in url: (for `flowlang check` too, of a constant: ConnectorSpec.value_problem)."""
    if key != "url" or (isinstance(url, str) and "://" in url):
        return None
    shown = f", got {url!r}" if isinstance(url, str) else f", got {type_name(url)}"
    return f'sql url: must be a URL like "sqlite:///sync.db" or "postgresql+psycopg://user@host/db"{shown}'


def sqlite_outside_problem(constants: Mapping[str, Value], given: set[str], base_dir: Path) -> tuple[str, str] | None:
    """A constant sqlite:/// url whose file resolve_url refuses as outside the flow's folder, for
    `flowlang check` (ConnectorSpec.folder_problem)."""
    url = constants.get("url")
    if not isinstance(url, str) or outside_left_to_run(constants, given):
        return None
    try:
        resolve_url(url, base_dir)
    except FlowRuntimeError as e:
        return "url", e.message
    return None


async def open_sql(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    url = config.get("url")
    if isinstance(url, Secret):
        services.register_secret(url.reveal())
        url = url.reveal()
    problem = url_problem("url", url)
    if problem is not None or not isinstance(url, str):
        raise FlowRuntimeError(problem or "sql needs url:", "connector")
    resolved = with_default_driver(resolve_url(url, services.base_dir, config.get("allow_outside") is True))
    check_credentials(resolved, services, secret=isinstance(config.get("url"), Secret))
    database = resolved[len("sqlite:///"):]
    if resolved.startswith(("sqlite:////", "sqlite:///file:/")) and "mode=ro" not in database:
        Path(sqlite_path(database)).parent.mkdir(parents=True, exist_ok=True)
    return SqlConnection(name, SQL, resolved, services)


SQL = ConnectorSpec(
    name="sql",
    title="SQL databases (SQLite built in; others by URL via SQLAlchemy)",
    origin="builtin",
    config=(ConfigKey("url", required=True, secret=True,
                      description='"sqlite:///file.db" (relative to the flow), or any SQLAlchemy URL'),
            ConfigKey("allow_outside", description="true to use a SQLite file outside the flow's folder")),
    operations={
        "query": OperationSpec("query", "rows of a SELECT, as a stream", params=("sql",),
                               keywords=frozenset({"params"}), returns_stream=True),
        "execute": OperationSpec("execute", "run a statement; gives {rowcount}", params=("sql",),
                                 keywords=frozenset({"params"}), changes_data=True),
        "insert": OperationSpec("insert", "insert sent records into table:", keywords=frozenset({"table"}),
                                required=("table",), changes_data=True, takes_batch=True),
        "upsert": OperationSpec("upsert", "insert or update sent records by key:",
                                keywords=frozenset({"table", "key"}), required=("table", "key"),
                                changes_data=True, takes_batch=True),
    },
    open=open_sql,
    value_problem=url_problem,
    folder_problem=sqlite_outside_problem,
    sends_to_writes_only=True,
)
