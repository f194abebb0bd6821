"""Field-level differences between what a cassette expected and what a replay did."""

from __future__ import annotations

import difflib
from typing import Any

from flowlang.runtime.jsoncodec import dumps
from flowlang.testing.pairing import pair_up

MISSING = object()
SHOWN = 120
SHOWN_PROBLEMS = 20  # of one sequence (a destination's writes, the outputs): then a count


def shown(value: Any) -> str:
    if value is MISSING:
        return "(missing)"
    text = dumps(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


SECRET_PART = {"$secret": None}  # a value the recording made from a secret, which the cassette cannot hold


def field_diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every field that differs; `path` like `customer.lines[2].sku`. A part of a
    secret the recording had where the replay has null is no difference: the replay's stand-in secret
    is one word, so a later part of it (`split(secret.CREDS, ":")[1]`) is null there."""
    if new is None and type(old) is dict and old == SECRET_PART:
        return []
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


def compare_sequences(what: str, old: list[Any], new: list[Any],
                      places: tuple[list[Any], list[Any]] | None = None,
                      names: tuple[list[str], list[str]] | None = None) -> list[str]:
    """Problems between two sequences; equal as multisets passes (parallel loops). The items that differ
    are paired (pair_up), so a change shows as each item's own diff though the run made them in another
    order; the first SHOWN_PROBLEMS are shown, then how many more differ. Numbers are places in this run's
    sequence (in the cassette's, for one this run did not make); `names`, when given, name each old and
    new item instead (`write to api.post /orders: record 3`, numbered in its own path)."""
    if sorted(dumps(v) for v in old) == sorted(dumps(v) for v in new):
        return []
    problems: list[str] = []
    more = 0
    old_names, new_names = names or ([f"{what} {i + 1}" for i in range(len(old))],
                                     [f"{what} {j + 1}" for j in range(len(new))])
    for i, j in pair_up(old, new, places):
        if i is not None and j is not None and not field_diff(old[i], new[j]):
            continue  # they differ only where the replay cannot have what the recording had (field_diff)
        if len(problems) >= SHOWN_PROBLEMS:
            more += 1
        elif i is None and j is not None:
            problems.append(f"{new_names[j]}: new, not in the cassette: {shown(new[j])}")
        elif j is None and i is not None:
            problems.append(f"{old_names[i]}: in the cassette, not made by this run: {shown(old[i])}")
        elif i is not None and j is not None:
            problems.append(f"{new_names[j]} differs:\n" + "\n".join(render_diff(old[i], new[j])))
    if more:
        # "write to api.post /x: record" -> "records of write to api.post /x"; "output" -> "outputs"
        many = f"records of {what.rsplit(': ', 1)[0]}" if ": " in what else f"{what}s"
        problems.append(f"... and {more:,} more {many} differ ({len(problems) + more:,} in all; --update "
                        "accepts them, and the cassette's diff shows each)")
    return problems

