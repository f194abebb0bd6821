"""MySQL/MariaDB upserts: `INSERT ... ON DUPLICATE KEY UPDATE` updates a row when a record collides
with any primary key or unique index of the table, whatever `key:` names. When no unique index is
made of exactly the key's columns, a record whose key is already there does not collide and is
inserted again: every rerun wrote each record once more, silently (PostgreSQL and SQLite refuse such
an ON CONFLICT target). The key is checked against the table's unique indexes once per table and key."""

from __future__ import annotations

from typing import Any

from flowlang.errors import FlowRuntimeError

UNIQUE_INDEXES = ("select index_name, column_name from information_schema.statistics "
                  "where table_schema = coalesce(:schema, database()) and table_name = :name and non_unique = 0")
TABLE_EXISTS = ("select count(*) from information_schema.tables "
                "where table_schema = coalesce(:schema, database()) and table_name = :name")


def check_upsert_key(sa: Any, conn: Any, table: str, keys: list[str]) -> bool:
    """True when a unique index of `table` is made of exactly the `keys` columns; False when there is
    no such table (the write says so); a FlowRuntimeError when the table has no such index."""
    schema, _, name = table.rpartition(".")
    where = {"schema": schema or None, "name": name}
    indexes: dict[str, set[str]] = {}
    for index, column in conn.execute(sa.text(UNIQUE_INDEXES), where):
        indexes.setdefault(str(index), set()).add(str(column).lower())
    wanted = {k.lower() for k in keys}
    if any(columns == wanted for columns in indexes.values()):
        return True
    if not indexes and not conn.execute(sa.text(TABLE_EXISTS), where).scalar():
        return False
    shown = ", ".join(keys)
    raise FlowRuntimeError(
        f"upsert(key: {keys[0]!r}{', ...' if len(keys) > 1 else ''}): the table {table} has no primary key or "
        f"unique index on ({shown}), and MySQL/MariaDB upserts by those (ON DUPLICATE KEY), so a record "
        f"whose key is there would be inserted again; add one: alter table {table} add unique ({shown})",
        "connector")
