"""The SQL text of a sql connection's query(), checked before the run when it is a constant: a query is a
lazy stream of rows that runs only when they are read, and on a connection that is never committed, so
`call db.query("delete from t ...") as r` whose r is never read deletes nothing, and one whose rows are
read (a DELETE ... RETURNING) is rolled back: either way nothing changes, without a word. A statement
that changes data is an error at the SQL: it belongs in execute(), which commits and gives the rows of
a RETURNING too."""

from __future__ import annotations

import re

from flowlang import ast
from flowlang.check.constants import constant_value
from flowlang.source import Span

# the statements that change data or the schema, by their first keyword; those a RETURNING makes give rows
# (which execute() gives too, committed)
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE"})
RETURNS_ROWS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"})

# what may stand before the first keyword: blanks, `-- ...` and `/* ... */` comments, opening brackets
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")
# quoted text and comments, where a RETURNING is no clause
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?\*/", re.DOTALL)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


def first_keyword(sql: str) -> str | None:
    """The statement's first keyword in capitals ('DELETE'), past blanks, comments and brackets."""
    leading = _LEADING.match(sql)
    found = _WORD.match(sql, leading.end() if leading is not None else 0)
    return found.group().upper() if found is not None else None


def query_write_problem(connection: str, sql: str) -> tuple[str, str] | None:
    """(message, hint) when the text given to `connection`.query() changes data: it would change nothing."""
    keyword = first_keyword(sql)
    if keyword is None or keyword not in WRITES:
        return None
    shown = " ".join(sql.split())
    shown = shown if len(shown) <= 60 and not set('"{}\\') & set(shown) else "..."
    hint = f'call {connection}.execute("{shown}") runs the statement at once and gives {{rowcount}}'
    if keyword in RETURNS_ROWS and _RETURNING.search(_QUOTED.sub(" ", sql)) is not None:
        return (f"{connection}.query() reads rows and never commits: a {keyword} ... RETURNING whose rows are "
                f"read changes nothing: use {connection}.execute(...), which commits and gives the rows as .rows",
                hint + " and the rows as .rows")
    article = "an" if keyword[0] in "AEIOU" else "a"
    also = " (it gives the rows of a RETURNING as .rows)" if keyword in RETURNS_ROWS else ""
    return (f"{connection}.query() reads rows and runs only when they are read: {article} {keyword} changes "
            f"data: use {connection}.execute(...){also}", hint)


def params_problem(op: str, sql: str, sql_span: Span, params: ast.Expr | None) -> tuple[str, Span] | None:
    """(message, where) when a constant SQL text and its params: disagree so that every call fails:
    params: a constant that is no object (`params: [1]`), or one whose keys, all written out, lack a
    `:name` of the SQL (the connector's own rules, connectors/sql.py)."""
    from flowlang.connectors.sql import missing_params_problem, params_type_problem, prepared_sql

    given: list[str] = []
    known, value = constant_value(params) if params is not None else (True, None)
    if known and value is not None and not isinstance(value, dict):
        return params_type_problem(value), params.span if params is not None else sql_span
    if isinstance(params, ast.ListLit):  # `params: [o.code]`, as Python's sqlite3 takes them: a list either way
        return params_type_problem([]), params.span
    if isinstance(params, ast.ObjectLit):
        for pair in params.pairs:
            if not (isinstance(pair.key, ast.Literal) and isinstance(pair.key.value, str)):
                return None
            given.append(pair.key.value)
    elif not known:
        return None
    # the database is not known here: a :name counts when it is a parameter however its quotes are read
    problem = missing_params_problem(op, [prepared_sql(sql, d) for d in ("sqlite", "postgresql", "mysql")], given)
    return None if problem is None else (problem, params.span if params is not None else sql_span)


__all__ = ["WRITES", "first_keyword", "params_problem", "query_write_problem"]
