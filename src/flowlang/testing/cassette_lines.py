"""What each line of a cassette must hold, checked as it is loaded: a hand-edited or damaged line
(`"pages": 5`, a write without its connection, `{"$datetime": "soon"}`) stops `flowlang test` at its
file and line, instead of failing the replay somewhere later with an internal error."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flowlang.runtime.jsoncodec import JsonDataError
from flowlang.testing.cassette_values import restored

VALUE_KINDS = {"job": dict, "state": dict, "now": datetime, "today": date, "uuid": str, "ledger": dict}
_NAMES = {dict: "an object", list: "a list", str: "a text", int: "a whole number", bool: "true or false",
          datetime: 'a time ({"$datetime": "..."})', date: 'a date ({"$date": "..."})'}


def line_problem(entry: dict[str, Any]) -> str | None:
    """Why a cassette line (an object with a known type) cannot be replayed, or None."""
    try:
        decoded = restored(entry)
    except JsonDataError as e:
        return str(e)
    kind = entry["type"]
    if kind == "run":
        limit = entry.get("limit", 0)
        if type(limit) is not int or limit < 0:
            return '"limit" is a whole number of records, 0 or more'
        return _field(entry, "params", dict, required=False)
    if kind == "value":
        problem = _field(entry, "kind", str)
        if problem:
            return problem
        wanted = VALUE_KINDS.get(entry["kind"])
        if wanted is None:
            return f'"kind" is one of {", ".join(VALUE_KINDS)}, got {entry["kind"]!r}'
        if "value" not in entry:
            return 'needs "value"'
        if "at" in entry and type(entry["at"]) is not str:
            return '"at" (the record that drew it, in a parallel loop) is a text such as "3"'
        value = decoded["value"]
        # a datetime is a date too: "today" takes a date only
        if not isinstance(value, wanted) or (wanted is date and isinstance(value, datetime)):
            return f'the value of "{entry["kind"]}" is {_NAMES[wanted]}'
        if type(value) is not dict:
            return None
        if entry["kind"] == "job" and value.get("id") is not None and type(value["id"]) is not int:
            return 'the job\'s "id" is a whole number (or null)'
        return _ledger(value) if entry["kind"] == "ledger" else None
    if kind in ("read", "write"):
        for name, wanted in (("connection", str), ("op", str)):
            problem = _field(entry, name, wanted)
            if problem:
                return problem
        for name, wanted in (("args", list), ("kwargs", dict), ("complete", bool)):
            problem = _field(entry, name, wanted, required=False)
            if problem:
                return problem
        if kind == "write" and "at" in entry and type(entry["at"]) is not str:
            return '"at" (the record it was for, in a parallel loop) is a text such as "3"'
        return _error(entry) or _pages(entry)
    if kind == "output":
        return None if "value" in entry else 'needs "value"'
    if kind == "result":
        return _field(entry, "status", str) or (
            None if type(entry.get("failed", 0)) is int else '"failed" is a whole number')
    return None


def _field(entry: dict[str, Any], name: str, wanted: type, required: bool = True) -> str | None:
    if name not in entry:
        return f'needs "{name}" ({_NAMES[wanted]})' if required else None
    value = entry[name]
    if type(value) is not wanted:
        return f'"{name}" is {_NAMES[wanted]}'
    return None


LEDGER_STATUSES = ("sent", "pending")


def _ledger(value: dict[str, Any]) -> str | None:
    """What the ledger held for a `send ... once` or `if changed`: the send's connection, operation and key,
    and the entry (null when it held none), as compile/ledger_send.py reads it back."""
    for name in ("connection", "operation", "key"):
        if type(value.get(name)) is not str:
            return f'the ledger\'s "{name}" is a text'
    entry = value.get("entry")
    if entry is None:
        return None
    if type(entry) is not dict:
        return 'the ledger\'s "entry" is an object (or null: the ledger held none)'
    if entry.get("status") not in LEDGER_STATUSES:
        return 'the ledger entry\'s "status" is "sent" or "pending"'
    for name, wanted, what in (("job_id", int, "a whole number"), ("hash", str, "a text")):
        if name not in entry or (entry[name] is not None and type(entry[name]) is not wanted):
            return f'the ledger entry\'s "{name}" is {what} (or null)'
    optional: tuple[tuple[str, type, str], ...] = (("key", str, "a text"), ("damaged", str, "a text"),
                                                    ("repeatable", bool, "true or false"))
    for field, kind, said in optional:
        if field in entry and entry[field] is not None and type(entry[field]) is not kind:
            return f'the ledger entry\'s "{field}" is {said}'
    return None


def _error(entry: dict[str, Any]) -> str | None:
    if "error" not in entry:
        return None
    error = entry["error"]
    if type(error) is not dict or not isinstance(error.get("message", ""), str):
        return '"error" is an object with a "message" text'
    return None


def _pages(entry: dict[str, Any]) -> str | None:
    if "pages" not in entry:
        return None
    pages = entry["pages"]
    if type(pages) is not list or any(type(p) is not list for p in pages):
        return '"pages" is a list of pages, each a list of records'
    return None
