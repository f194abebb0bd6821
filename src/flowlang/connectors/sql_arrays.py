"""PostgreSQL array columns for the sql connector's insert and upsert: which columns of a table are
arrays (read once per table from pg_catalog), and a list as the text of an array ('{"a","b",NULL}'),
which the server reads with the column's element type (integer, text, uuid, an enum, a timestamp).
A list anywhere else is written as JSON text (a json/jsonb column), so before this a list sent to an
integer[] column failed: 'malformed array literal: "[1,2]"'."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

# The columns of a table, whether each is an array, and whether it is json or jsonb (a domain over one
# too); no rows when there is no such table.
ARRAY_COLUMNS = ("select a.attname, t.typcategory = 'A', "
                 "coalesce(b.typname, t.typname) in ('json', 'jsonb') and t.typcategory <> 'A' "
                 "from pg_attribute a join pg_type t on t.oid = a.atttypid "
                 "left join pg_type b on b.oid = t.typbasetype "
                 "where a.attrelid = to_regclass(:t) and a.attnum > 0 and not a.attisdropped")


def array_text(value: Any, bind: Callable[[Any], Any]) -> Any:
    """A list as PostgreSQL array text, its items made parameters by `bind` first (a nested list is a
    dimension); any other value is `bind`'s."""
    if not isinstance(value, list):
        return bind(value)
    return "{" + ",".join(_item(v, bind) for v in value) + "}"


def _item(value: Any, bind: Callable[[Any], Any]) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return str(array_text(value, bind))
    bound = bind(value)
    if isinstance(bound, bool):
        text = "true" if bound else "false"
    elif isinstance(bound, datetime | date | time):
        text = bound.isoformat()
    elif isinstance(bound, bytes):
        text = "\\x" + bound.hex()
    elif isinstance(bound, timedelta):
        text = f"{bound.days} days {bound.seconds}.{bound.microseconds:06d} seconds"  # as psycopg writes one
    else:
        text = str(bound)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
