"""Loading connector files: the stdlib's and a flow folder's `connectors/*.toml`. A broken file is
reported with its file name, the key and the problem, and does not hide the others; a TOML syntax error
with its file:line:col, and below the first line of the message the TOML line with a caret."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ValidationError

from flowlang.connectors.base import ConnectorSpec
from flowlang.connectors.declarative.connector import build_spec
from flowlang.connectors.declarative.models import ConnectorFile
from flowlang.connectors.declarative.places import dotted, excerpt, locate, suggestion, type_problem
from flowlang.connectors.declarative.templates import bad_headers, bad_templates, unknown_placeholders
from flowlang.diagnostics import render_block
from flowlang.resources import stdlib_files
from flowlang.source import Source, Span

TOML_PLACE = re.compile(r"^(?P<message>.*?) \((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)$",
                        re.DOTALL)


class ConnectorFileError(ValueError):
    def __init__(self, message: str, name: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name


def parse_connector(file_name: str, text: str, origin: str) -> ConnectorSpec:
    return build_spec(parse_model(file_name, text), origin)


def load_stdlib() -> tuple[list[ConnectorSpec], list[str]]:
    specs: list[ConnectorSpec] = []
    problems: list[str] = []
    for name, text in stdlib_files():
        try:
            specs.append(parse_connector(f"stdlib/{name}", text, "stdlib"))
        except ConnectorFileError as e:
            problems.append(e.message)
    return specs, problems


def load_folder(folder: Path) -> tuple[list[ConnectorSpec], dict[str, str]]:
    """The connector files of a flow's connectors/ folder; problems by connector name, and by the file's
    name too (a flow uses `crm()` for connectors/crm.toml, whatever its broken `name` says)."""
    specs: list[ConnectorSpec] = []
    problems: dict[str, str] = {}
    by_file: dict[str, str] = {}
    if not folder.is_dir():
        return specs, problems
    for path in sorted(folder.glob("*.toml")):
        try:
            # utf-8-sig: a byte order mark (Notepad writes one) is skipped, not "Invalid statement" at 1:1
            spec = parse_connector(f"connectors/{path.name}", path.read_text(encoding="utf-8-sig"), str(path))
        except ConnectorFileError as e:
            problems[e.name or path.stem] = e.message
            by_file[path.stem] = e.message
            continue
        except OSError as e:
            problems[path.stem] = f"connectors/{path.name}: cannot read: {e.strerror}"
            continue
        except UnicodeDecodeError as e:
            problems[path.stem] = f"connectors/{path.name}: not UTF-8 text (byte {e.start}: {e.reason})"
            continue
        specs.append(spec)
    loaded = {spec.name for spec in specs}
    for stem, message in by_file.items():
        if stem not in loaded:
            problems.setdefault(stem, message)
    return specs, problems


def parse_model(file_name: str, text: str) -> ConnectorFile:
    """The validated model of a connector file (for tools such as `connectors verify`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConnectorFileError(toml_problem(file_name, text, e), Path(file_name).stem) from None
    except RecursionError:
        raise ConnectorFileError(f"{file_name}: not valid TOML: it nests too deeply to be read",
                                 Path(file_name).stem) from None
    name = data.get("name") if isinstance(data.get("name"), str) else Path(file_name).stem
    try:
        model = ConnectorFile.model_validate(data)
    except ValidationError as e:
        raise ConnectorFileError(model_problem(file_name, text, e), name) from None
    found = [(loc, what, True) for loc, what in unknown_placeholders(model)]  # at the value
    found += [(loc, what, True) for loc, what in bad_templates(model)]  # at the path or key
    found += [(loc, what, False) for loc, what in bad_headers(model)]  # at the header's name
    if found:
        raise ConnectorFileError(_message(file_name, text, list(found)), name)
    return model


def model_problem(file_name: str, text: str, error: ValidationError,
                  model: type[BaseModel] = ConnectorFile) -> str:
    """What the models refused, one `key.path: problem` each with did-you-mean where a name is close;
    below it, the TOML line of each key that can be found, with a caret under the key or its value.
    `model`: the file's model (a connector file's, or another TOML file's, such as flowlang.toml's)."""
    found: list[tuple[tuple[str | int, ...], str, bool]] = []
    for err in error.errors():
        what = "no such key" if err["type"] == "extra_forbidden" else type_problem(dict(err)) or err["msg"]
        meant = suggestion(model, dict(err))
        found.append((tuple(err["loc"]), what + (f" (did you mean '{meant}'?)" if meant else ""),
                      err["type"] != "extra_forbidden"))
    return _message(file_name, text, found)


def placed_problems(file_name: str, text: str, problems: list[tuple[tuple[str, ...], str]]) -> str:
    """Problems found in a file the models took (a placeholder that names no key), each at its value."""
    return _message(file_name, text, [(loc, what, True) for loc, what in problems])


def _message(file_name: str, text: str, found: list[tuple[tuple[str | int, ...], str, bool]]) -> str:
    problems: list[str] = []
    blocks: list[str] = []
    for loc, what, on_value in found:
        problems.append(f"{dotted(loc) or '(file)'}: {what}")
        span = locate(text, loc, on_value=on_value) if loc else None
        if span is not None:
            blocks.append(excerpt(file_name, text, span))
    first = f"{file_name}: " + "; ".join(problems)
    return "\n".join([first, *blocks])


def toml_problem(file_name: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    """`connectors/x.toml:4:17: not valid TOML: <what>`, then the TOML line with a caret under the place
    (`-->` names the file, as the second place of a diagnostic)."""
    found = TOML_PLACE.match(str(error))
    if found is None:
        return f"{file_name}: not valid TOML: {error}"
    source = Source(file_name, text)
    if found.group("line") is not None:
        line, col = int(found.group("line")), int(found.group("col"))
        start = source.lines.start_of(line)
        offset = min(len(text), (start if start is not None else len(text)) + col - 1)
    else:  # at the end of the document: point after its last character
        offset = len(text.rstrip("\n"))
    span = Span(offset, offset + 1)
    where = source.location(span)
    block = render_block(f" --> {where}", source, span)
    return f"{where}: not valid TOML: {found.group('message')}\n{block}"
