"""A `:name` that SQL holds inside quoted text, a quoted name or a comment is no parameter: SQLAlchemy's
text() reads every `:name` after a character that is no letter, digit, colon or backslash as one, quotes
or not, so `where note like '%:hello'` failed before it ran ('the SQL names :hello, but params: has no
hello'), and given a hello in params: would have had it pasted into the text of the literal. Each such
colon is escaped (`\\:hello`), which SQLAlchemy sends as the `:` it was."""

from __future__ import annotations

import re
from collections.abc import Iterator

# SQLAlchemy's own pattern of a parameter (sqlalchemy.sql.elements.TextClause._bind_params_regex)
_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_]\w*)?\$")


def literal_colons(sql: str, dialect: str) -> str:
    """`sql` with the `:name` of every quoted text ('...', E'...', $$...$$ on PostgreSQL), quoted name
    ("...", `...` on MySQL/MariaDB) and comment (-- ..., /* ... */, # ... on MySQL/MariaDB) escaped."""
    if ":" not in sql:
        return sql
    parts: list[str] = []
    done = 0
    for start, end in _literals(sql, dialect):
        parts += [sql[done:start], _PARAMETER.sub(r"\\:\1", sql[start:end])]
        done = end
    if not parts:
        return sql
    parts.append(sql[done:])
    return "".join(parts)


def outside_literals(sql: str, dialect: str) -> str:
    """`sql` with each quoted text, quoted name and comment (as literal_colons reads them) a space."""
    parts: list[str] = []
    done = 0
    for start, end in _literals(sql, dialect):
        parts += [sql[done:start], " "]
        done = end
    parts.append(sql[done:])
    return "".join(parts)


def _literals(sql: str, dialect: str) -> Iterator[tuple[int, int]]:
    """Where each quoted text, quoted name and comment of `sql` starts and ends, in order."""
    mysql = dialect in ("mysql", "mariadb")
    i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        end = -1
        if c in "'\"" or (c == "`" and mysql):
            escapes = mysql or (c == "'" and i > 0 and sql[i - 1] in "eE"
                                and (i == 1 or not (sql[i - 2].isalnum() or sql[i - 2] == "_")))
            end = _quoted_end(sql, i, escapes)
        elif (c == "#" and mysql) or (sql.startswith("--", i)
                                      and (not mysql or sql[i + 2:i + 3] in ("", " ", "\t", "\n", "\r"))):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif c == "$" and not mysql and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None:
                close = sql.find(tag.group(0), tag.end())
                end = n if close < 0 else close + len(tag.group(0))
        if end < 0:
            i += 1
            continue
        yield i, end
        i = end


def _quoted_end(sql: str, start: int, escapes: bool) -> int:
    """Where the quoted text or name that opens at `start` ends (past its closing quote; a doubled quote,
    and with `escapes` a backslash's next character, stay inside it)."""
    quote = sql[start]
    i = start + 1
    n = len(sql)
    while i < n:
        c = sql[i]
        if escapes and c == "\\":
            i += 2
            continue
        if c == quote:
            if sql[i + 1:i + 2] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n
