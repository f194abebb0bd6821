"""Field-level differences between what a cassette expected and what a replay did."""

from __future__ import annotations

import difflib
from typing import Any

from flowlang.runtime.jsoncodec import dumps

MISSING = object()
SHOWN = 120
SHOWN_PROBLEMS = 20  # of one sequence (a destination's writes, the outputs): then a count


def shown(value: Any) -> str:
    if value is MISSING:
        return "(missing)"
    text = dumps(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


def field_diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every field that differs; `path` like `customer.lines[2].sku`."""
    if type(old) is dict and type(new) is dict:
        out: list[tuple[str, Any, Any]] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            out += field_diff(old.get(key, MISSING), new.get(key, MISSING), sub)
        return out
    if type(old) is list and type(new) is list:
        out = []
        for i in range(max(len(old), len(new))):
            out += field_diff(old[i] if i < len(old) else MISSING, new[i] if i < len(new) else MISSING,
                              f"{path}[{i}]")
        return out
    if old is MISSING and new is MISSING:
        return []
    if old is not MISSING and new is not MISSING and type(old) is type(new) and dumps(old) == dumps(new):
        return []  # as sent: 19.99 and 19.990 are different payloads
    return [(path or "(whole value)", old, new)]


def render_diff(old: Any, new: Any, indent: str = "    ") -> list[str]:
    return [f"{indent}{path}: {shown(a)} -> {shown(b)}" for path, a, b in field_diff(old, new)]


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def compare_sequences(what: str, old: list[Any], new: list[Any]) -> list[str]:
    """Problems between two sequences compared in order; equal as multisets passes (parallel loops).
    The first SHOWN_PROBLEMS are shown, then how many more differ."""
    if sorted(dumps(v) for v in old) == sorted(dumps(v) for v in new):
        return []
    problems: list[str] = []
    more = 0
    for i in range(max(len(old), len(new))):
        if len(problems) >= SHOWN_PROBLEMS:
            more += i >= len(old) or i >= len(new) or bool(field_diff(old[i], new[i]))
            continue
        if i >= len(old):
            problems.append(f"{what} {i + 1}: new, not in the cassette: {shown(new[i])}")
        elif i >= len(new):
            problems.append(f"{what} {i + 1}: in the cassette, not made by this run: {shown(old[i])}")
        else:
            lines = render_diff(old[i], new[i])
            if lines:
                problems.append(f"{what} {i + 1} differs:\n" + "\n".join(lines))
    if more:
        # "write to api.post: record" -> "records of write to api.post"; "output" -> "outputs"
        many = f"records of {what.rsplit(': ', 1)[0]}" if ": " in what else f"{what}s"
        problems.append(f"... and {more:,} more {many} differ ({len(problems) + more:,} in all; --update "
                        "accepts them, and the cassette's diff shows each)")
    return problems
