"""Record shapes known before the run, and field reads checked against them (issue 16): the records
of a `file(path: "x.csv")` whose path is literal and exists have the columns of its header line; the
records a `call` answered in a cassette beside the flow (`flowlang run --record DIR`) have the fields
seen there (the language server completes them too). A read of a field a shape lacks, while it has a
close name, is a warning at the read with did-you-mean ("'emial' is not a column of people.csv ...;
did you mean 'email'?"). A record sent to an operation whose connector file declares its `fields` is
checked the same way. The run itself warns of a read that found nothing in every record
(runtime/field_misses.py)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlang import ast
from flowlang.check.program import CheckedModule
from flowlang.check.scopes import Local
from flowlang.connectors.csvrows import header_of
from flowlang.connectors.file import format_options
from flowlang.diagnostics import Diagnostic, Severity, closest
from flowlang.errors import FlowError
from flowlang.runtime.field_misses import one_joined_column
from flowlang.runtime.field_names import meant_field, shown_name
from flowlang.runtime.flow_folder import PathRefused, inside
from flowlang.source import Span

GLOB = frozenset("*?[")
SHOWN = 8  # columns named in a warning


ReadKey = tuple[str, str, str | None]  # connection, operation, its first argument when a literal string (a path)
CASSETTE_LIMIT = 5_000_000  # bytes: larger cassettes are not read


def read_key(operation: ast.Operation) -> ReadKey:
    first = operation.args[0] if operation.args else None
    path = first.value if isinstance(first, ast.Literal) and isinstance(first.value, str) else None
    return operation.connection, operation.op, path


def cassette_fields(base_dir: Path) -> dict[ReadKey, dict[str, str]]:
    """(connection, operation, path) -> {field: the cassette it was seen in}, from the records of the reads in
    the cassettes beside the flow (`flowlang run --record DIR`: DIR/cassette.jsonl up to 3 folders down)."""
    found: dict[ReadKey, dict[str, str]] = {}
    files = [p for depth in ("*", "*/*", "*/*/*") for p in base_dir.glob(f"{depth}/cassette.jsonl")]
    for file in files[:50]:
        try:
            if file.stat().st_size > CASSETTE_LIMIT:
                continue
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        where = str(file.relative_to(base_dir))
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict) or entry.get("type") != "read":
                continue
            pages = entry.get("pages")
            records = [r for page in pages if isinstance(page, list) for r in page] if isinstance(pages, list) \
                else entry.get("result")
            records = records if isinstance(records, list) else [records]
            args = entry.get("args")
            path = args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None
            target = found.setdefault((str(entry.get("connection")), str(entry.get("op")), path), {})
            for record in records:
                if isinstance(record, dict):
                    for key in record:
                        target.setdefault(str(key), where)
    return found


@dataclass(frozen=True)
class Shape:
    """The fields every record of a list has, and where they come from."""

    fields: tuple[str, ...]
    origin: str  # "people.csv", or which cassette's records
    column: bool = True  # the fields are a file's columns (every record has them), not those seen
    delimiter: str = ","  # of a CSV file's columns: the one the flow reads it with


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
    return Shape(tuple(header), path.name, delimiter=rules.delimiter)


def shape_warnings(checked: CheckedModule) -> list[Diagnostic]:
    """Warnings for reads of fields that the records of a loop over a known shape do not have (`flowlang
    check` asks: it reads files beside the flow, which a run need not do)."""
    res = checked.resolution
    statements = checked.module.statements
    files: dict[int, Shape] = {}  # connection slot -> the shape of its read()
    for node in nodes(statements):
        if isinstance(node, ast.Use) and node.connector == "file" and (node, 0) in res.slots:
            shape = csv_header(checked, node)
            if shape is not None:
                files[res.slots[(node, 0)]] = shape
    lists: dict[int, Shape] = {}  # variable slot -> the shape of its records
    cassettes: dict[ReadKey, dict[str, str]] | None = None
    looped = {ref.slot for node in nodes(statements) if isinstance(node, ast.ForEach)
              and isinstance(node.iterable, ast.Name) and isinstance(ref := res.refs.get(node.iterable), Local)}
    for node in nodes(statements):
        if not (isinstance(node, ast.CallStmt) and node.as_name and (node, 0) in res.slots):
            continue
        slot = res.slots[(node, 0)]
        if slot not in looped:
            continue
        ref = res.refs.get(node.operation)
        if node.operation.op == "read" and not node.operation.args and isinstance(ref, Local) and ref.slot in files:
            lists[slot] = files[ref.slot]
            continue
        if cassettes is None:  # read only when a loop goes over what a call answered
            cassettes = cassette_fields(checked.base_dir)
        seen = cassettes.get(read_key(node.operation))
        if seen:
            where = sorted(set(seen.values()))[0]
            lists[slot] = Shape(tuple(seen), f"the records {node.operation.connection}.{node.operation.op}() "
                                f"answered in {where}", column=False)
    found = send_warnings(checked)
    for node in nodes(statements):
        if not (isinstance(node, ast.ForEach) and len(node.names) == 1 and isinstance(node.iterable, ast.Name)):
            continue
        ref = res.refs.get(node.iterable)
        shape = lists.get(ref.slot) if isinstance(ref, Local) else None
        if shape is None or (node, 0) not in res.slots:
            continue
        found.extend(_reads(checked, node, res.slots[(node, 0)], shape))
    return found


def send_warnings(checked: CheckedModule) -> list[Diagnostic]:
    """A record sent to an operation whose connector file declares its fields (`fields = [...]`), built
    as an object literal or by a `map` without `...`, with a key that is not one but close to one."""
    res = checked.resolution
    maps: dict[int, ast.MapStmt] = {res.slots[(n, 0)]: n for n in nodes(checked.module.statements)
                                    if isinstance(n, ast.MapStmt) and (n, 0) in res.slots}
    found = []
    for node in nodes(checked.module.statements):
        if not isinstance(node, ast.Send):
            continue
        spec = res.op_specs.get(node.destination)
        if spec is None or not spec.fields:
            continue
        keys: list[tuple[str, Span]] = []
        if isinstance(node.value, ast.ObjectLit):
            keys = [(p.key.value, p.key.span) for p in node.value.pairs
                    if isinstance(p.key, ast.Literal) and isinstance(p.key.value, str)]
        elif isinstance(node.value, ast.Name) and isinstance(ref := res.refs.get(node.value), Local) \
                and ref.slot in maps and not any(isinstance(line, ast.MapSpread) for line in maps[ref.slot].lines):
            keys = [(line.path[0], Span(line.span.start, line.span.start + len(line.path[0])))
                    for line in maps[ref.slot].lines if isinstance(line, ast.MapAssign)]
        shown = ", ".join(spec.fields[:SHOWN]) + (", ..." if len(spec.fields) > SHOWN else "")
        where = f"{node.destination.connection}.{spec.name}()"
        for key, span in keys:
            meant = closest(key, spec.fields) if key not in spec.fields else None
            if meant is not None:
                found.append(Diagnostic("unknown-field", f"'{key}' is not a field {where} sends (its connector "
                                        f"file declares: {shown})", checked.source, span, f"did you mean '{meant}'?",
                                        Severity.WARNING))
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
        joined = one_joined_column(node.name, list(shape.fields)) if shape.column else None
        if joined is not None:  # a file of ';' read with ',': one column named 'id;name;email', and r.email null
            yield Diagnostic("unknown-field", f"'{node.name}' is not a column of {shape.origin}: its header is one "
                             f"column, {shape.fields[0]!r}, as a file whose delimiter is {joined!r} has when read "
                             f"with {shape.delimiter!r} (so {loop.names[0]}.{node.name} is null in every record)",
                             checked.source, node.name_span,
                             f"give the file's delimiter: delimiter: {json.dumps(joined)} in its file(...)",
                             Severity.WARNING)
            continue
        if meant is None:
            continue
        columns = ", ".join(shown_name(f) for f in shape.fields[:SHOWN]) + (", ..." if len(shape.fields) > SHOWN
                                                                            else "")
        if shape.column:
            message = (f"'{node.name}' is not a column of {shape.origin} (its columns: {columns}), so "
                       f"{loop.names[0]}.{node.name} is null in every record")
        else:
            message = f"'{node.name}' is in none of {shape.origin} (they have {columns})"
        yield Diagnostic("unknown-field", message, checked.source, node.name_span,
                         meant_field(loop.names[0], meant), Severity.WARNING)
