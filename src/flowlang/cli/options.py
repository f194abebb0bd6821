"""Reading command-line values: params, input files and secrets files."""

from __future__ import annotations

import re
import sys
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

from flowlang.errors import UsageError
from flowlang.runtime.jsoncodec import JsonDataError, loads
from flowlang.source import lines_of


def parse_params(items: list[str], texts: Collection[str] = ()) -> dict[str, Any]:
    """--param name=value: the value is parsed as JSON, else taken as a string (json_or_text); for a
    param named in `texts` (its default is a text: runner.text_params) it is the text as given, or the
    text of a JSON string (`sku='"A1"'`), so `--param sku=12345` is "12345", not a number."""
    params: dict[str, Any] = {}
    for item in items:
        name, raw = _name_and_value(item)
        params[name] = text_or_json_string(raw) if name in texts else json_or_text(raw, f"--param {item}")
    return params


def param_texts(items: list[str]) -> dict[str, str]:
    """Each --param's value as a param whose default is a text takes it (the REPL's params, whose lines
    come later)."""
    return {name: text_or_json_string(raw) for name, raw in map(_name_and_value, items)}


def _name_and_value(item: str) -> tuple[str, str]:
    name, sep, raw = item.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--param needs name=value, got {item!r}")
    return name.strip(), raw


def text_or_json_string(raw: str) -> str:
    """A command-line value for a text: the text of a JSON string (`"[draft]"`), else the text as given."""
    if raw.startswith('"'):
        try:
            value = loads(raw)
        except JsonDataError:
            return raw
        if isinstance(value, str):
            return value
    return raw


JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def json_or_text(raw: str, given: str) -> Any:
    """A NAME=VALUE value of the command line (--param, --set): JSON, else the text itself. A value
    that starts with [ or { is meant as JSON (a list, an object), so when it is not JSON (a bracket
    lost, a flowlang object's unquoted keys) it is refused, not taken as text."""
    try:
        return loads(raw)
    except JsonDataError as e:
        if len(given) > 100:  # a value of thousands of characters was said whole, a screen of brackets
            given = f"{given[:80]}... (a value of {len(raw):,} characters)"
        if raw.lstrip()[:1] in ("[", "{"):
            raise UsageError(f"{given} is not valid JSON ({_reason(e)}): lists and objects are given as JSON "
                             "(ids=[1,2], filter={\"status\": \"paid\"}); a text that starts with [ or { "
                             "as a JSON string (tag='\"[draft]\"')") from None
        if JSON_NUMBER.fullmatch(raw.strip()):  # taken as text before: n=1e99999999999999999999 was a string
            raise UsageError(f"{given}: the number cannot be read ({_reason(e)}); a text of digits is given "
                             "as a JSON string ('\"...\"')") from None
        return raw


def flow_paths(items: list[str]) -> list[str]:
    """The flow files named on a command line: a file as given, `-` (stdin) as is, and a folder as
    every .flow file under it (sorted; hidden folders such as .flowlang/ and .venv/ skipped)."""
    paths: list[str] = []
    for item in items:
        folder = Path(item)
        if item == "-" or not folder.is_dir():
            paths.append(item)
            continue
        found = sorted(p for p in folder.rglob("*.flow")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1]))
        if not found:
            raise UsageError(f"no .flow files in {item}")
        paths.extend(str(p) for p in found)
    if paths.count("-") > 1:
        raise UsageError("- (stdin) can be given once")
    return paths


def read_input(path: str | None, stdin: IO[str] | None = None) -> Any:
    """--input FILE: a JSON file, a JSON Lines file (.jsonl: a list of records), or - for stdin."""
    if path is None:
        return None
    try:
        text = (stdin or sys.stdin).read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read --input {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise UsageError(f"--input {path} is not UTF-8 text: byte {e.object[e.start]:#04x} on line {line} "
                         "(JSON files are UTF-8; convert it first, e.g. with iconv)") from None
    if text.startswith("\ufeff"):  # a byte order mark (PowerShell and Notepad write one), as file() skips it
        text = text[1:]
    if path.endswith((".jsonl", ".ndjson")):
        return _json_lines(text, path)
    if path == "-" and not text.strip():  # a pipe from a run that emitted nothing: JSON Lines of no record
        return []
    if not text.strip():  # an export that wrote nothing: Python's words were "Expecting value at line 1 column 1"
        raise UsageError(f"--input {path} is empty: it holds no JSON value (no records is [] in a .json file, "
                         "or an empty .jsonl file)")
    try:
        return loads(text)
    except JsonDataError as e:
        lines = [line for line in json_lines(text) if line.strip()]
        if len(lines) > 1 and str(e).startswith("not valid JSON: Extra data"):  # several values: JSON Lines
            return _json_lines(text, path)  # (as `flowlang run` writes: `... | flowlang run b.flow --input -`)
        hint = ""
        if path.lower().endswith(".csv"):  # --input is the payload, JSON only
            hint = (' (--input takes JSON or JSON Lines; read a CSV file in the flow: use src = file(path: '
                    '"orders.csv"), relative to the flow\'s folder, then call src.read() as rows)')
        raise UsageError(f"--input {path} is not valid JSON: {_reason(e)}{hint}") from None


def json_lines(text: str) -> list[str]:
    """The lines of JSON Lines text: each ends at a line feed alone (a CR before it is dropped). A JSON
    string may hold U+2028, U+2029, U+0085 as they are (flowlang's own output does), which
    str.splitlines() takes for line ends."""
    return lines_of(text)


def _json_lines(text: str, path: str) -> list[Any]:
    records = []
    for number, line in enumerate(json_lines(text), 1):
        if line.strip():
            try:
                records.append(loads(line))
            except JsonDataError as e:
                raise UsageError(f"--input {path} line {number} is not valid JSON: {_reason(e)}") from None
    return records


def _reason(error: JsonDataError) -> str:
    return str(error).removeprefix("not valid JSON: ")


def read_secrets(path: str | None) -> dict[str, str]:
    """--secrets FILE: a TOML file of NAME = "value" lines."""
    if path is None:
        return {}
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))  # a byte order mark is skipped
    except OSError as e:
        raise UsageError(f"cannot read --secrets {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"--secrets {path} is not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--secrets {path} is not valid TOML: {e}") from None
    except RecursionError:
        raise UsageError(f"--secrets {path} is not valid TOML: it nests too deeply to be read") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str | int | float):
            raise UsageError(f"--secrets {path}: {key} must be a string")
        out[key] = str(value)
    return out
