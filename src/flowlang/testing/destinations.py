"""The destinations `flowlang test` compares writes by: a connection's operation and, for an http
connection's post/put/patch/delete, its path, as the ledger and the plan tell them apart
(`api.post /invoices` and `api.post /shipments` are two destinations, each record numbered in its own).

A replay pairs a write with its recorded one (for its answer) within the plan's group of its path
(plan.group_of: method, first segment, segment count). The report then splits each group by path
(`split`): a segment whose values are mostly each met once is one built from the records
(`"/products/{p.sku}"`) and is shown as `{...}`, so such paths stay one destination; a segment whose
values repeat is part of the path as written (`/v1/invoices` and `/v1/shipments`, each sent for every
record, are two)."""

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


def destination_of(entry: dict[str, Any]) -> str:
    """The key writes are paired under: the operation, and its path's group."""
    path = path_of(entry)
    operation = operation_of(entry)
    if path is None:
        return operation
    return operation + "\n" + group_of(str(entry["op"]).upper() + " " + path)


def built(values: list[str]) -> bool:
    """Whether a segment's values are built from the records: several, most of them met once."""
    counts = Counter(values)
    return len(counts) > 1 and sum(1 for n in counts.values() if n == 1) * 2 > len(counts)


def split(recorded: list[dict[str, Any]], made: list[dict[str, Any]]
          ) -> list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """The writes of one group (recorded and made), by destination as the report names it
    (`api.put /products/{...}`), each list in its order."""
    if path_of((recorded + made)[0]) is None:
        return [(operation_of((recorded + made)[0]), recorded, made)]
    variable: set[int] = set()
    for side in (recorded, made):  # each on its own: the replay makes the recorded paths again
        parts = [str(path_of(e)).split("/") for e in side]
        width = max((len(p) for p in parts), default=0)
        variable |= {i for i in range(width) if built([p[i] for p in parts if i < len(p)])}

    def name(entry: dict[str, Any]) -> str:
        segments = str(path_of(entry)).split("/")
        return operation_of(entry) + " " + "/".join("{...}" if i in variable else s for i, s in enumerate(segments))
    out: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for entry in recorded:
        out.setdefault(name(entry), ([], []))[0].append(entry)
    for entry in made:
        out.setdefault(name(entry), ([], []))[1].append(entry)
    return [(key, old, new) for key, (old, new) in sorted(out.items())]
