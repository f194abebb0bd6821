"""The destinations `flowlang test` compares writes by: a connection's operation and, for an http
connection's post/put/patch/delete, its path, as the ledger and the plan tell them apart
(`api.post /invoices` and `api.post /shipments` are two destinations, each record numbered in its own).
Paths built from the records (`"/products/{p.sku}"`, one path a record) are one destination, named as
the plan names it, the segments that differ as `{...}`: `api.put /products/{...}`."""

from __future__ import annotations

from typing import Any

from flowlang.testing.plan import group_of, pattern


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
    """The key writes are paired and numbered under: the operation, and its path's group."""
    path = path_of(entry)
    operation = operation_of(entry)
    if path is None:
        return operation
    return operation + "\n" + group_of(str(entry["op"]).upper() + " " + path)


class Names:
    """The names of destinations as the report shows them, from the paths their writes went to."""

    def __init__(self) -> None:
        self.patterns: dict[str, str] = {}

    def add(self, destination: str, entry: dict[str, Any]) -> None:
        path = path_of(entry)
        if path is None:
            return
        seen = self.patterns.get(destination)
        self.patterns[destination] = path if seen is None else pattern(f"X {seen}", f"X {path}")[2:]

    def name(self, destination: str) -> str:
        path = self.patterns.get(destination)
        operation = destination.split("\n", 1)[0]
        return operation if path is None else f"{operation} {path}"
