"""How the REPL shows values: record lists as a table (first rows, with a count), objects pretty
printed, secrets as ***."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from flowlang.runtime.jsoncodec import dumps

TABLE_ROWS = 20


def is_record_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def plain_text(value: Any) -> str:
    """One line of JSON (secrets as ***): what piped mode prints."""
    return dumps(value)


def _same(text: str) -> str:
    return text


def table(records: list[dict[str, Any]], mask: Callable[[str], str] = _same) -> Table:
    columns: list[str] = []
    for r in records[:TABLE_ROWS]:
        for k in r:
            if k not in columns:
                columns.append(k)
    grid = Table(show_lines=False)
    for c in columns[:12]:
        grid.add_column(c, overflow="fold", max_width=40)
    for r in records[:TABLE_ROWS]:
        cells = []
        for c in columns[:12]:
            v = r.get(c)
            text = mask(dumps(v))
            cells.append(text[1:-1] if isinstance(v, str) else text)
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
            console.print_json(text)
    else:
        console.print(mask(plain_text(value)), highlight=False, markup=False)
