"""The cassette: one run's exchanges with the outside, as JSON Lines in `DIR/cassette.jsonl`.

Each line is one entry, in the order the run made it:

    {"type": "run", "flow": ..., "params": {...}, "input": ..., "version": 1}
    {"type": "value", "kind": "now", "value": ...}          now(), today(), uuid(), job, state
    {"type": "read", "connection": "api", "op": "get", "args": [...], "kwargs": {...}, "result": ...}
    {"type": "read", ..., "pages": [[...], ...], "complete": true}      a record stream
        (a record the source could not read is {"$bad_record": {"record": ..., "message": ...}})
    {"type": "write", "connection": "out", "op": "write", "args": [], "kwargs": {}, "record": ..., "result": ...}
    {"type": "output", "value": ...}
    {"type": "result", "status": "ok", "failed": 0}

Values are in the stores' tagged form (datetimes, secret references; binary data as base64,
cassette_values) and every known secret is
masked before a line is written: a cassette never holds a credential. Masking keeps the line's
structure (`masked_entry`): its field names, the arguments' names, the tags and a secret's reference
are left as they are, and a number whose text is a secret becomes the text "***", so a line stays
JSON that reads back as it was written, whatever text a secret (or a part of one) has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from flowlang.diagnostics import closest
from flowlang.errors import FlowError, UsageError
from flowlang.runtime.jsoncodec import JsonDataError, dumps, loads
from flowlang.runtime.masking import MASK
from flowlang.runtime.values import BadRecord
from flowlang.testing.cassette_lines import line_problem
from flowlang.testing.cassette_values import BYTES, masked_bytes, restored, stored

FILE_NAME = "cassette.jsonl"
PREVIOUS_NAME = "cassette.previous.jsonl"  # the cassette a recording replaced, until that recording finishes
FAILED_NAME = "cassette.failed.jsonl"  # a recording of a run that did not finish, beside the cassette it kept
VERSION = 1
ENTRY_TYPES = ("run", "value", "read", "write", "output", "result")  # what a cassette line can be
JOURNAL_TYPES = ("page", "answer")  # lines of a recording cut short, added to an entry (cassette_journal)
log = logging.getLogger("flowlang.testing")


def canonical(value: Any) -> Any:
    """Dict keys sorted, recursively: two equal requests give the same text."""
    if type(value) is dict:
        return {k: canonical(value[k]) for k in sorted(value)}
    if type(value) is list:
        return [canonical(v) for v in value]
    return value


def stored_page(page: list[Any]) -> list[Any]:
    """A stream's page in the cassette's form: a BadRecord is tagged, so a replay fails it alike."""
    return [{"$bad_record": {"record": stored(r.record), "message": r.message}} if type(r) is BadRecord
            else stored(r) for r in page]


def page_from_stored(page: list[Any]) -> list[Any]:
    out = []
    for item in page:
        bad = item.get("$bad_record") if type(item) is dict and len(item) == 1 else None
        out.append(BadRecord(restored(bad.get("record")), str(bad.get("message")))
                   if type(bad) is dict else restored(item))
    return out


def masked(value: Any, mask: Callable[[str], str]) -> Any:
    """A stored value with every secret in its text masked and its structure kept (module doc)."""
    t = type(value)
    if t is str:
        return mask(value)
    if t is list:
        return [masked(v, mask) for v in value]
    if t is dict:
        if len(value) == 1:
            (key, inner), = value.items()
            if key == "$secret":
                return value  # a reference by name, never the value
            if key == BYTES:
                return {key: masked_bytes(inner, mask)}
            if type(key) is str and key.startswith("$"):
                return {key: masked(inner, mask)}
        return {mask(k) if type(k) is str else k: masked(v, mask) for k, v in value.items()}
    if t is int or t is float or t is Decimal:
        text = f"[{dumps(value)}]"  # as a number stands in JSON
        return MASK if mask(text) != text else value
    return value


def masked_entry(entry: dict[str, Any], mask: Callable[[str], str]) -> dict[str, Any]:
    """A cassette line masked: its field names and its arguments' names (from the flow) as they are."""
    out: dict[str, Any] = {}
    for name, value in entry.items():
        if name == "kwargs" and type(value) is dict:
            out[name] = {k: masked(v, mask) for k, v in value.items()}
        else:
            out[name] = masked(value, mask)
    return out


def request_key(connection: str, op: str, args: Any, kwargs: Any) -> str:
    """What a read is matched on: connection, operation and arguments (for HTTP: method, URL, query, body)."""
    return dumps(canonical({"connection": connection, "op": op, "args": args, "kwargs": kwargs}))


@dataclass
class Cassette:
    """The entries of one cassette, in order."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("type") == kind]

    @property
    def run(self) -> dict[str, Any]:
        found = self.of_type("run")
        return found[0] if found else {}

    @staticmethod
    def path_in(folder: Path) -> Path:
        return folder / FILE_NAME

    @classmethod
    def load(cls, folder: Path) -> Cassette:
        """The cassette in folder; a line that cannot be replayed is a UsageError at its line. The lines of
        a recording that was cut short (cassette_journal) are read as the entries they add to, and a last
        line cut short in its middle (the process was killed while writing it) is left out with a warning."""
        path = cls.path_in(folder)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"no cassette in {folder} (record one with: flowlang run FILE --record "
                             f"{folder})") from None
        except NotADirectoryError:
            raise UsageError(f"{folder} is a file: --cassette takes the folder that holds {FILE_NAME}") from None
        except OSError as e:
            raise UsageError(f"cannot read the cassette {path}: {e.strerror or e}") from None
        lines = data.split(b"\n")
        cut = lines.pop() if lines else b""  # after the last line break: a last line without one
        text = cls._text(path, b"\n".join(lines))
        reader = _Lines(path)
        # lines end at "\n" alone: a text of the data may hold U+2028, U+0085 or \x1c as they are (JSON
        # leaves them unescaped), which str.splitlines() would take for line ends
        whole = text.split("\n") if text else []
        for number, line in enumerate(whole, 1):
            reader.take(number, line.removesuffix("\r"))
        if cut.strip():
            number = len(whole) + 1
            try:
                last = cut.decode("utf-8-sig" if len(cut) == len(data) else "utf-8")
                loads(last)
            except (UnicodeDecodeError, JsonDataError):
                log.warning("%s:%d: the last line is cut short (the recording was stopped while writing it): "
                            "left out", path, number)
            else:
                reader.take(number, last)  # whole, without a line break after it (an editor's save)
        return cls(reader.finished())

    @staticmethod
    def _text(path: Path, data: bytes) -> str:
        try:
            return data.decode("utf-8-sig")  # an editor may have put a BOM first, as in a .flow
        except UnicodeDecodeError as e:
            raise UsageError(f"cannot read the cassette {path}: it is not UTF-8 text (byte {e.start})") from None

    def save(self, folder: Path, mask: Callable[[str], str]) -> Path:
        """Write the cassette, masking every line (`mask`: text -> text) as `masked_entry` does, through
        a temporary file renamed into place; one that cannot be written (a full disk, a folder it may not
        write) is a FlowError naming the file, and leaves no temporary file and the old cassette as it was."""
        return self.write(folder, [dumps(masked_entry(entry, mask)) for entry in self.entries])

    def write(self, folder: Path, lines: list[str], name: str = FILE_NAME) -> Path:
        """save() of lines masked already, into folder/name."""
        path = folder / name
        tmp = path.with_suffix(".tmp")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(line + "\n")
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise FlowError(f"cannot write the cassette: {e.strerror or e}: {path}") from None
        return path


class _Lines:
    """The entries of a cassette's lines, as they are read; a journal's "page" and "answer" lines go into
    the entry of the line they name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        self.by_line: dict[int, dict[str, Any]] = {}
        self.added: dict[int, int] = {}  # id() of an entry added to: its line, checked at the end

    def take(self, number: int, line: str) -> None:
        if not line.strip():
            return
        path = self.path
        try:
            entry = loads(line)
        except JsonDataError as e:
            raise UsageError(f"{path}:{number}: not a cassette line: {e}") from None
        if not isinstance(entry, dict) or "type" not in entry:
            raise UsageError(f"{path}:{number}: a cassette line is an object with a type")
        if entry["type"] in JOURNAL_TYPES:
            self.add_to(number, entry)
            return
        if entry["type"] not in ENTRY_TYPES:
            kind = entry["type"]
            meant = closest(kind, ENTRY_TYPES) if isinstance(kind, str) else None
            raise UsageError(f"{path}:{number}: a cassette line of an unknown type {dumps(kind)} (one of "
                             f"{', '.join(ENTRY_TYPES)})" + (f"; did you mean {meant!r}?" if meant else ""))
        problem = line_problem(entry)
        if problem:
            raise UsageError(f"{path}:{number}: a {entry['type']} line that cannot be replayed: {problem}")
        self.entries.append(entry)
        if entry["type"] in ("read", "write"):
            self.by_line[number] = entry

    def add_to(self, number: int, more: dict[str, Any]) -> None:
        kind = more.pop("type")
        target = self.by_line.get(more.pop("line", None))
        if target is None:
            raise UsageError(f"{self.path}:{number}: a {kind} line names no read or write line before it "
                             '("line": the number of its line)')
        if kind == "page":
            records = more.get("records")
            if type(records) is not list:
                raise UsageError(f'{self.path}:{number}: a page line holds its "records" as a list')
            pages = target.setdefault("pages", [])
            if type(pages) is list:
                pages.append(records)
        else:
            target.update(more)
        self.added[id(target)] = number

    def finished(self) -> list[dict[str, Any]]:
        for entry in self.entries:
            number = self.added.get(id(entry))
            if number is not None:
                problem = line_problem(entry)
                if problem:
                    raise UsageError(f"{self.path}:{number}: a {entry['type']} that cannot be replayed, with the "
                                     f"lines that add to it: {problem}")
        return self.entries
