"""The names `flowlang test` gives the writes it reports: a connection's operation and, for an http
connection's post/put/patch/delete, its path, as the ledger and the plan tell them apart
(`api.post /invoices` and `api.post /shipments`, each record numbered in its own).

A replay pairs a write with its recorded one (for its answer, and for the report's diff) among the
writes of its operation, so a changed path shows as `args[0]: "/invoices" -> "/bills"`; the report
names and numbers each write by its path (`write_names`): a segment whose values are mostly each met
once is built from the records (`"/products/{p.sku}"`) and shown as `{...}`, so such paths are one
name; a segment whose values repeat is part of the path as written (`/v1/invoices` and
`/v1/shipments`, each sent for every record, are two)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flowlang.testing.plan import group_of


def operation_of(entry: dict[str, Any]) -> str:
    """`connection.operation` of a write line (the key of ReplayOutcome.writes)."""
    return f"{entry['connection']}.{entry['op']}"


def path_of(entry: dict[str, Any]) -> str | None:
    """The path an http write went to, without its query string; None for other connectors."""
    args = entry.get("args")
    if entry.get("connector") == "http" and type(args) is list and args and type(args[0]) is str:
        return str(args[0]).split("?", 1)[0]
    return None


def built(values: list[str]) -> bool:
    """Whether a segment's values are built from the records: several, most of them met once."""
    counts = Counter(values)
    return len(counts) > 1 and sum(1 for n in counts.values() if n == 1) * 2 > len(counts)


def variable_segments(writes: list[dict[str, Any]]) -> set[tuple[str, int, int]]:
    """The segments built from the records, as (path's group, segment count, place) of the writes' paths."""
    groups: dict[tuple[str, int], list[list[str]]] = {}
    for entry in writes:
        path = path_of(entry)
        if path is not None:
            segments = path.split("/")
            groups.setdefault((group_of(f"{entry['op']} {path}"), len(segments)), []).append(segments)
    return {(group, width, i) for (group, width), paths in groups.items() for i in range(width)
            if built([p[i] for p in paths])}


def write_names(recorded: list[dict[str, Any]], made: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Each write's name in the report, `write to api.put /products/{...}: record 3`: its operation, its
    path (segments built from the records as {...}) and its place among the writes of that name."""
    variable = variable_segments(recorded) | variable_segments(made)  # each side on its own: both hold the paths

    def names(writes: list[dict[str, Any]]) -> list[str]:
        counts: Counter[str] = Counter()
        out = []
        for entry in writes:
            path = path_of(entry)
            name = operation_of(entry)
            if path is not None:
                segments = path.split("/")
                group = group_of(f"{entry['op']} {path}")
                name += " " + "/".join("{...}" if (group, len(segments), i) in variable else part
                                       for i, part in enumerate(segments))
            counts[name] += 1
            out.append(f"write to {name}: record {counts[name]}")
        return out
    return names(recorded), names(made)
