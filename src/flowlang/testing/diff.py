"""Field-level differences between what a cassette expected and what a replay did."""

from __future__ import annotations

import difflib
from typing import Any

from flowlang.runtime.jsoncodec import dumps

MISSING = object()
SHOWN = 120


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
    """Problems between two sequences compared in order; equal as multisets passes (parallel loops)."""
    if sorted(dumps(v) for v in old) == sorted(dumps(v) for v in new):
        return []
    problems: list[str] = []
    for i in range(max(len(old), len(new))):
        if i >= len(old):
            problems.append(f"{what} {i + 1}: new, not in the cassette: {shown(new[i])}")
        elif i >= len(new):
            problems.append(f"{what} {i + 1}: in the cassette, not made by this run: {shown(old[i])}")
        else:
            lines = render_diff(old[i], new[i])
            if lines:
                problems.append(f"{what} {i + 1} differs:\n" + "\n".join(lines))
    return problems
