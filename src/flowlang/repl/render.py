"""How the REPL shows values: record lists as a table (first rows, with a count), objects pretty
printed, secrets as ***."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

from flowlang.runtime.jsoncodec import JsonDataError, dumps
from flowlang.runtime.run import FailureGroup, RecordFailure

TABLE_ROWS = 20


def is_record_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def cannot_show(error: JsonDataError) -> str:
    """What the session says, and goes on, for a value it cannot show (nested hundreds deep)."""
    return f"error: cannot show this value: {error}"


def failure_lines(failures: list[RecordFailure]) -> list[str]:
    """The records of an input that failed: one line for the first of each place and message, and a
    count of the others with the first few named (as a run's log says them), not one line a record."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    for failure in failures:
        group = groups.get((failure.location, failure.message))
        if group is None:
            groups[(failure.location, failure.message)] = FailureGroup(failure)
        else:
            group.add(failure)
    lines = []
    for group in groups.values():
        lines.append(f"record failed at {group.location}: {group.message}")
        if group.count > 1:
            lines.append(group.summary())
    return lines


def plain_text(value: Any) -> str:
    """One line of JSON (secrets as ***): what piped mode prints."""
    return dumps(value)


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^"{}\[\],:]+')


def indented(text: str) -> str:
    """Compact JSON text laid out two spaces a level, as `json.dumps(indent=2)` would, from the text
    itself: each number stays as it is written (`19.990`, `0.10000000000000000000001`), where
    re-reading it as Python's JSON would (floats) show `19.99` and `0.1`; and no level is a call,
    so a value nested hundreds deep is laid out too."""
    out: list[str] = []
    depth = 0
    tokens = _JSON_TOKENS.findall(text)
    for i, token in enumerate(tokens):
        if token in ("{", "["):
            closing = i + 1 < len(tokens) and tokens[i + 1] in ("}", "]")
            depth += 1
            out.append(token if closing else token + "\n" + "  " * depth)
        elif token in ("}", "]"):
            opened = i > 0 and tokens[i - 1] in ("{", "[")
            depth -= 1
            out.append(token if opened else "\n" + "  " * depth + token)
        elif token == ",":
            out.append(",\n" + "  " * depth)
        elif token == ":":
            out.append(": ")
        else:
            out.append(token)
    return "".join(out)


def _same(text: str) -> str:
    return text


def table(records: list[dict[str, Any]], mask: Callable[[str], str] = _same) -> Table:
    columns: list[str] = []
    for r in records[:TABLE_ROWS]:
        for k in r:
            if k not in columns:
                columns.append(k)
    grid = Table(show_lines=False)
    for c in columns[:12]:  # a field's name is data too: an API may name one by a token it echoes
        grid.add_column(Text(mask(c)), overflow="fold", max_width=40)
    for r in records[:TABLE_ROWS]:
        cells = []
        for c in columns[:12]:
            v = r.get(c)
            text = mask(dumps(v))
            cells.append(Text(text[1:-1] if isinstance(v, str) else text))  # as it is, never read as markup
        grid.add_row(*cells)
    return grid


def show(console: Console, value: Any, mask: Callable[[str], str] = _same) -> None:
    """Print a value: secrets as ***, and any known secret text masked."""
    if is_record_list(value):
        console.print(table(value, mask))
        shown = min(len(value), TABLE_ROWS)
        console.print(f"{shown} of {len(value)} records" if len(value) > shown else f"{len(value)} records",
                      style="dim", highlight=False)
    elif isinstance(value, dict | list):
        text = mask(dumps(value))
        if len(text) <= 100:
            console.print(text, highlight=False, markup=False)
        else:
            laid_out = JSONHighlighter()(Text(indented(text)))
            laid_out.no_wrap, laid_out.overflow = True, None
            console.print(laid_out)
    else:
        console.print(mask(plain_text(value)), highlight=False, markup=False)
