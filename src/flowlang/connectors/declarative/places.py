"""Where a problem of a connector file is: the TOML line of a key the models refused (found by its
table header and key, `[operations.list.pagination]` / `curser = ...` or an inline table), and the
names it was likely meant to be (a misspelt key among the model's keys, a misspelt choice among the
allowed values), for messages with file:line:col, did-you-mean and a caret."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from flowlang.diagnostics import closest, render_block
from flowlang.source import Source, Span

QUOTED = re.compile(r"'([^']*)'")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model that holds the last key of loc (ConnectorFile, ("operations", "list", "pagination",
    "x") -> PaginationModel)."""
    current: Any = model
    for part in loc[:-1]:
        current = _inner(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part)) or next(
                (f for f in current.model_fields.values() if f.alias == part), None)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return None
    current = _inner(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner(annotation: Any) -> Any:
    """X of `X | None` (and of Annotated[X, ...])."""
    while True:
        origin = get_origin(annotation)
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        elif hasattr(annotation, "__metadata__"):
            annotation = get_args(annotation)[0]
        else:
            return annotation


def suggestion(model: type[BaseModel], error: dict[str, Any]) -> str | None:
    """The name a refused key or value was likely meant to be."""
    loc = error.get("loc", ())
    if error.get("type") == "extra_forbidden" and loc:
        holder = model_at(model, loc)
        if holder is None:
            return None
        names = [f.alias or name for name, f in holder.model_fields.items()]
        return closest(str(loc[-1]), names)
    if error.get("type") == "literal_error" and isinstance(error.get("input"), str):
        expected = (error.get("ctx") or {}).get("expected", "")
        return closest(error["input"], QUOTED.findall(str(expected)))
    return None


def locate(text: str, loc: Sequence[int | str], on_value: bool) -> Span | None:
    """The span of a key (or its value) in TOML text, by the longest table header that is a prefix of
    loc and then the key below it; None when it cannot be found."""
    keys = [str(p) for p in loc if isinstance(p, str)]
    if not keys:
        return None
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    best, best_len = 0, 0  # the line after the header, and how many keys it names
    for i, line in enumerate(lines):
        header = HEADER.match(line)
        if header is None:
            continue
        named = [k.strip().strip('"') for k in header.group(1).split(".")]
        if len(named) > best_len and named == keys[:len(named)] and len(named) < len(keys):
            best, best_len = i + 1, len(named)
    end = next((i for i in range(best, len(lines)) if HEADER.match(lines[i])), len(lines))
    section = text[starts[best]:starts[end]]
    rest = keys[best_len:]
    at = 0
    for key in rest[:-1]:  # an inline table or a dotted key: its parent keys come first
        found = re.search(rf"(?<![\w-]){re.escape(key)}\s*[=.]", section[at:])
        if found is None:
            return _header(lines, starts, keys)
        at += found.end()
    written = rest[-1]
    found = re.search(rf"(?<![\w-])\"?{re.escape(written)}\"?\s*=\s*", section[at:])
    if found is None and written != (escaped := json.dumps(written)[1:-1]):  # "X\nTenant": written escaped
        written = escaped
        found = re.search(rf"\"{re.escape(written)}\"\s*=\s*", section[at:])
    if found is None:
        return _header(lines, starts, keys)
    base = starts[best] + at
    if not on_value:
        start = base + found.start() + (1 if section[at + found.start()] == '"' else 0)
        return Span(start, start + len(written))
    value_start = base + found.end()
    value = re.match(r'"[^"\n]*"|\'[^\'\n]*\'|[^,}\]\n#]+', text[value_start:])
    width = len(value.group().rstrip()) if value else 1
    return Span(value_start, value_start + max(1, width))


def dotted(loc: Sequence[int | str]) -> str:
    """A key's path as TOML writes it: `headers.X-Tenant`, a part that is no bare key quoted with its
    control characters escaped (`headers."X\\nTenant"`, not a line break in the message)."""
    return ".".join(str(p) if isinstance(p, int) or BARE_KEY.fullmatch(p) else json.dumps(p) for p in loc)


def _header(lines: list[str], starts: list[int], keys: list[str]) -> Span | None:
    """The span of the name in the table header that is the key itself (`[connectors.shop]` for a
    refused key `connectors`, `[foo]` for `foo`): a table has no `key =` line to point at, and such a
    mistake was said without its file:line:col."""
    for i, line in enumerate(lines):
        header = HEADER.match(line)
        if header is None:
            continue
        named = [k.strip().strip('"') for k in header.group(1).split(".")]
        if named[:len(keys)] == keys:
            return Span(starts[i] + header.start(1), starts[i] + header.end(1))
    return None


def toml_kind(value: Any) -> str:
    """A TOML value as a message names it: 'the string "10"', 'the integer 5', 'an array'."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"the string {shown!r}"
    if isinstance(value, int):
        return f"the integer {value:,}" if abs(value) < 10**30 else "an integer of more than 30 digits"
    if isinstance(value, float):
        return f"the float {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # a TOML date or time


# a value of another TOML type (the models are strict), as the message says what goes there
TYPE_WORDS = {
    "int_type": "must be a whole number", "float_type": "must be a number", "string_type": "must be a string",
    "bool_type": "must be true or false", "dict_type": "must be a table", "model_type": "must be a table",
    "model_attributes_type": "must be a table", "list_type": "must be an array",
}
UNQUOTED = {"int_type": int, "float_type": float, "bool_type": bool}


def type_problem(error: dict[str, Any]) -> str | None:
    """`must be a whole number, got the string '10' (write it without quotes)` for a strict type error."""
    kind = error.get("type", "")
    words = TYPE_WORDS.get(kind)
    if words is None:
        return None
    given = error.get("input")
    hint = ""
    wanted = UNQUOTED.get(kind)
    if isinstance(given, str) and wanted is not None and _reads_as(given, wanted):
        hint = " (write it without quotes)"
    return f"{words}, got {toml_kind(given)}{hint}"


def _reads_as(text: str, wanted: type) -> bool:
    if wanted is bool:
        return text in ("true", "false")
    try:
        wanted(text.replace("_", ""))
    except ValueError:
        return False
    return True


def excerpt(file_name: str, text: str, span: Span) -> str:
    """` --> file:line:col`, the TOML line and a caret."""
    source = Source(file_name, text)
    return render_block(f" --> {source.location(span)}", source, span)


__all__ = ["excerpt", "locate", "model_at", "suggestion", "toml_kind", "type_problem"]
