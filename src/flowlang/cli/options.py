"""Reading command-line values: params, input files and secrets files."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import IO, Any

from flowlang.errors import UsageError
from flowlang.runtime.jsoncodec import JsonDataError, loads


def parse_params(items: list[str]) -> dict[str, Any]:
    """--param name=value: the value is parsed as JSON, else taken as a string."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param needs name=value, got {item!r}")
        try:
            params[name.strip()] = loads(raw)
        except JsonDataError:
            params[name.strip()] = raw
    return params


def read_input(path: str | None, stdin: IO[str] | None = None) -> Any:
    """--input FILE: a JSON file, a JSON Lines file (.jsonl: a list of records), or - for stdin."""
    if path is None:
        return None
    try:
        text = (stdin or sys.stdin).read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read --input {path}: {e.strerror}") from None
    try:
        if path.endswith((".jsonl", ".ndjson")):
            return [loads(line) for line in text.splitlines() if line.strip()]
        return loads(text)
    except JsonDataError as e:
        raise UsageError(f"--input {path} is not valid JSON: {e}") from None


def read_secrets(path: str | None) -> dict[str, str]:
    """--secrets FILE: a TOML file of NAME = "value" lines."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read --secrets {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--secrets {path} is not valid TOML: {e}") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str | int | float):
            raise UsageError(f"--secrets {path}: {key} must be a string")
        out[key] = str(value)
    return out
