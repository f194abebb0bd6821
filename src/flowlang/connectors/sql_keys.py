"""MySQL/MariaDB upserts: `INSERT ... ON DUPLICATE KEY UPDATE` updates a row when a record collides
with any primary key or unique index of the table, whatever `key:` names. When no unique index is
made of exactly the key's columns, a record whose key is already there does not collide and is
inserted again: every rerun wrote each record once more, silently (PostgreSQL and SQLite refuse such
an ON CONFLICT target). And a record that collides by another unique index (its email is another
row's) updated that row, of another key, with the record's values, while the record itself was never
written: `guarded_update` makes such a collision an error (PostgreSQL and SQLite refuse it as a unique
violation).
The key is checked against the table's unique indexes once per table and key. SQLite and PostgreSQL
refuse the write instead, in their own words, which `no_unique_key` turns into what to do."""

from __future__ import annotations

from typing import Any

from flowlang.errors import FlowRuntimeError

UNIQUE_INDEXES = ("select index_name, column_name from information_schema.statistics "
                  "where table_schema = coalesce(:schema, database()) and table_name = :name and non_unique = 0")
TABLE_EXISTS = ("select count(*) from information_schema.tables "
                "where table_schema = coalesce(:schema, database()) and table_name = :name")


def check_upsert_key(sa: Any, conn: Any, table: str, keys: list[str]) -> tuple[tuple[str, ...], ...] | None:
    """When a unique index of `table` is made of exactly the `keys` columns: the table's other unique
    indexes (their columns), by which a record may collide with a row of another key (`guarded_update`);
    None when there is no such table (the write says so); a FlowRuntimeError when it has no such index."""
    schema, _, name = table.rpartition(".")
    where = {"schema": schema or None, "name": name}
    indexes: dict[str, list[str]] = {}
    for index, column in conn.execute(sa.text(UNIQUE_INDEXES), where):
        indexes.setdefault(str(index), []).append(str(column))
    wanted = {k.lower() for k in keys}
    if any({c.lower() for c in columns} == wanted for columns in indexes.values()):
        return tuple(tuple(columns) for columns in indexes.values() if {c.lower() for c in columns} != wanted)
    if not indexes and not conn.execute(sa.text(TABLE_EXISTS), where).scalar():
        return None
    shown = ", ".join(keys)
    raise FlowRuntimeError(
        f"upsert(key: {keys[0]!r}{', ...' if len(keys) > 1 else ''}): the table {table} has no primary key or "
        f"unique index on ({shown}), and MySQL/MariaDB upserts by those (ON DUPLICATE KEY), so a record "
        f"whose key is there would be inserted again; add one: alter table {table} add unique ({shown})",
        "connector")


# what SQLite and PostgreSQL say when an upsert's key is no primary key or unique index of the table
_NO_CONFLICT_TARGET = ("ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint",
                       "there is no unique or exclusion constraint matching the ON CONFLICT specification")


def no_unique_key(error: Exception, table: str, keys: list[str]) -> FlowRuntimeError | None:
    """The error of an upsert whose key is no primary key or unique index of `table`, saying how to add
    one (the driver's text named neither the table nor the key), or None for any other error."""
    text = str(getattr(error, "orig", None) or error)
    if not any(words in text for words in _NO_CONFLICT_TARGET):
        return None
    shown = ", ".join(keys)
    index = f"{table.rpartition('.')[2]}_{'_'.join(keys)}".replace('"', "")
    return FlowRuntimeError(
        f"upsert(key: {keys[0]!r}{', ...' if len(keys) > 1 else ''}): the table {table} has no primary key or "
        f"unique index on ({shown}), which an upsert needs to find the row a record updates; add one: "
        f"create unique index {index} on {table} ({shown})", "connector")


# A subquery of two rows where one value is wanted: MySQL/MariaDB stop the statement with error 1242,
# evaluated only in the branch of a CASE that is taken.
_STOP = "(select 1 union all select 1)"
STOPPED = 1242  # 'Subquery returns more than 1 row'


def guarded_update(sa: Any, target: Any, inserted: Any, keys: list[str], update: list[tuple[str, Any]]
                   ) -> list[tuple[str, Any]]:
    """The assignments of an ON DUPLICATE KEY UPDATE led by one that stops the statement (STOPPED) when
    the row it found has another key than the record's: the record collided by another unique index."""
    same = sa.and_(*[target.c[k].is_not_distinct_from(inserted[k]) for k in keys])
    return [(keys[0], sa.case((same, target.c[keys[0]]), else_=sa.literal_column(_STOP))),
            *[(c, v) for c, v in update if c != keys[0]]]


def collision_message(table: str, keys: list[str], others: tuple[tuple[str, ...], ...]) -> str:
    shown = f"{keys[0]!r}{', ...' if len(keys) > 1 else ''}"
    which = " or ".join(", ".join(columns) for columns in others)
    return (f"upsert(key: {shown}) into {table}: another row, of another {', '.join(keys)}, has this record's "
            f"{which} (unique in {table}): MySQL/MariaDB's ON DUPLICATE KEY would have updated that row with this "
            "record; the record is not written")
