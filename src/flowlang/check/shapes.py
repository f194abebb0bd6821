"""Field reads checked against a record shape known before the run (issue 16): the records of a
`file(path: "x.csv")` whose path is literal and exists have the columns of its header line, so a read
of a field that is not one, while a column has a close name, is a warning at the read with
did-you-mean ("'emial' is not a column of people.csv ...; did you mean 'email'?"). The run itself
warns of a read that found nothing in every record (runtime/field_misses.py)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowlang import ast
from flowlang.check.program import CheckedModule
from flowlang.check.scopes import Local
from flowlang.connectors.csvrows import header_of
from flowlang.connectors.file import format_options
from flowlang.diagnostics import Diagnostic, Severity, closest
from flowlang.errors import FlowError
from flowlang.runtime.flow_folder import PathRefused, inside

GLOB = frozenset("*?[")
SHOWN = 8  # columns named in a warning


@dataclass(frozen=True)
class Shape:
    """The fields every record of a list has, and where they come from."""

    fields: tuple[str, ...]
    origin: str  # "people.csv"


def nodes(value: Any) -> Iterator[ast.Node]:
    """Every node under value, depth first, not into function definitions (their names are their own)."""
    if isinstance(value, ast.Node):
        if isinstance(value, ast.Function):
            return
        yield value
        for name in ast.fields(value):
            yield from nodes(getattr(value, name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from nodes(item)


def csv_header(checked: CheckedModule, use: ast.Use) -> Shape | None:
    """The header of the CSV file a `use x = file(path: "...")` names, when every key that decides how
    it is read is a literal and the file exists in the flow's folder."""
    config: dict[str, Any] = {}
    for k in use.kwargs:
        if not isinstance(k.value, ast.Literal):
            if k.name in ("path", "format", "delimiter", "encoding", "allow_outside"):
                return None
            continue
        config[k.name] = k.value.value
    raw = config.get("path")
    if not isinstance(raw, str) or GLOB & set(raw) or raw.endswith("/"):
        return None
    try:
        fmt, _, rules = format_options(raw, config)
        if fmt != "csv":
            return None
        path = inside(checked.base_dir, raw, allow_outside=config.get("allow_outside") is True)
        with path.open("rb") as fh:
            header = header_of(fh, rules.encoding, path.name, rules.delimiter)
    except (FlowError, PathRefused, OSError, UnicodeError, ValueError, LookupError, csv.Error):
        return None  # the run reports what is wrong with the file
    if not header:
        return None
    return Shape(tuple(header), path.name)


def shape_warnings(checked: CheckedModule) -> list[Diagnostic]:
    """Warnings for reads of fields that the records of a loop over a known shape do not have."""
    res = checked.resolution
    statements = checked.module.statements
    files: dict[int, Shape] = {}  # connection slot -> the shape of its read()
    for node in nodes(statements):
        if isinstance(node, ast.Use) and node.connector == "file" and (node, 0) in res.slots:
            shape = csv_header(checked, node)
            if shape is not None:
                files[res.slots[(node, 0)]] = shape
    if not files:
        return []
    lists: dict[int, Shape] = {}  # variable slot -> the shape of its records
    for node in nodes(statements):
        if isinstance(node, ast.CallStmt) and node.as_name and node.operation.op == "read" \
                and not node.operation.args and (node, 0) in res.slots:
            ref = res.refs.get(node.operation)
            if isinstance(ref, Local) and ref.slot in files:
                lists[res.slots[(node, 0)]] = files[ref.slot]
    found: list[Diagnostic] = []
    for node in nodes(statements):
        if not (isinstance(node, ast.ForEach) and len(node.names) == 1 and isinstance(node.iterable, ast.Name)):
            continue
        ref = res.refs.get(node.iterable)
        shape = lists.get(ref.slot) if isinstance(ref, Local) else None
        if shape is None or (node, 0) not in res.slots:
            continue
        found.extend(_reads(checked, node, res.slots[(node, 0)], shape))
    return found


def _reads(checked: CheckedModule, loop: ast.ForEach, slot: int, shape: Shape) -> Iterator[Diagnostic]:
    res = checked.resolution
    assigned = {step.name for n in nodes(loop.body) if isinstance(n, ast.Let) and n.target.name == loop.names[0]
                for step in n.target.steps[:1] if isinstance(step, ast.FieldStep)}
    known = set(shape.fields) | assigned
    for node in nodes(loop.body):
        if not (isinstance(node, ast.Field) and isinstance(node.obj, ast.Name)) or node.name in known:
            continue
        ref = res.refs.get(node.obj)
        if not (isinstance(ref, Local) and ref.slot == slot):
            continue
        meant = closest(node.name, shape.fields)
        if meant is None:
            continue
        columns = ", ".join(shape.fields[:SHOWN]) + (", ..." if len(shape.fields) > SHOWN else "")
        yield Diagnostic("unknown-field", f"'{node.name}' is not a column of {shape.origin} (its columns: {columns}), "
                         f"so {loop.names[0]}.{node.name} is null in every record", checked.source, node.name_span,
                         f"did you mean '{meant}'?", Severity.WARNING)
