"""A cassette written as the run records it, so that a run killed in its middle (SIGKILL, a second
SIGTERM, a power cut of the process) leaves the exchanges it made: above all the writes it sent.

Each entry is appended to `cassette.jsonl` as one whole line when it is made (one write() of the
line: a line reaches the file whole or, when the process dies inside that write, as a cut-short last
line, which `Cassette.load` ignores with a warning). What a read or a write learns later is appended
as a line that points at the entry's line:

    {"type": "read", "connection": "api", "op": "get", ...}                  line 7
    {"type": "page", "line": 7, "records": [...]}                            a page of its stream
    {"type": "answer", "line": 7, "complete": true}                          its end (or "error")
    {"type": "write", "connection": "api", "op": "post", "record": ...}      line 9
    {"type": "answer", "line": 9, "result": {...}}                           (or "error")

A write with no answer line was sent and its answer never came. When the run ends, the recorder
writes the cassette again in its usual form (one line an entry, cassette.py), over this one, from
the lines as they were masked (each value is masked once).

Nothing is on disk before the run's first exchange: a run that fails before it (an unset secret)
leaves the old cassette as it was. At that first exchange the new cassette replaces the old one, which
is kept beside it as cassette.previous.jsonl (a hard link, so no copy) until the recording ends: a run
that did not finish puts it back (recorder.Recorder.save). A previous cassette already there (a
recording killed before it could put its own back) is the one kept.
No fsync: the lines are in the system's hands once written, which a killed process cannot undo; an
fsync a line would make recording slow. A write that fails (a full disk) cuts the file back to its
last whole line and stops the journal; the run goes on and the failure is said at its end."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlang.runtime.jsoncodec import dumps
from flowlang.testing.cassette import PREVIOUS_NAME, masked, masked_entry

EXCHANGES = ("read", "write")  # the first of these opens the file
MORE = ("page", "answer")  # the journal's lines that add to an entry written before


@dataclass(slots=True)
class Shown:
    """A read or a write as its lines add up: the text of its first line, the texts of the fields its
    answers set (in order) and of its stream's pages."""

    head: str
    fields: dict[str, str] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)

    def whole(self) -> str:
        """Its line in the cassette's usual form: the first line with the fields after its own."""
        rest = [f',"{name}":' + (f"[{','.join(self.pages)}]" if name == "pages" else text)
                for name, text in self.fields.items()]
        return self.head[:-1] + "".join(rest) + "}" if rest else self.head


class Journal:
    """The lines of one recording, appended to `path` as they are made."""

    def __init__(self, path: Path, mask: Callable[[str], str]) -> None:
        self.path = path
        self.mask = mask
        self.fd: int | None = None
        self.waiting: list[bytes] = []  # lines made before the first exchange
        self.lines = 0
        self.size = 0  # bytes of whole lines in the file
        self.whole = 0  # and how many lines
        self.at: dict[int, int] = {}  # id() of an entry that learns more later: its line
        # what the cassette's final form holds, masked once: the text of each entry that learns nothing
        # later, and each read and write as its lines add up (by id() of the entry)
        self.texts: dict[int, str] = {}
        self.shown: dict[int, Shown] = {}
        self.failed: OSError | None = None
        self.previous: Path | None = None  # the cassette this recording replaced, kept until it ends
        self.lock = threading.Lock()  # a host binding may draw a value in a thread of its own

    def add(self, entry: dict[str, Any]) -> None:
        """An entry as it is made (a read or a write before its answer)."""
        text = dumps(masked_entry(entry, self.mask))
        exchange = entry.get("type") in EXCHANGES
        with self.lock:
            self.lines += 1
            if exchange:
                self.at[id(entry)] = self.lines
                self.shown[id(entry)] = Shown(text)
            else:
                self.texts[id(entry)] = text
            self._put(text, opens=exchange)

    def page(self, entry: dict[str, Any], page: list[Any]) -> None:
        """A page of a read's stream (in the cassette's form, cassette.stored_page)."""
        records = dumps(masked(page, self.mask))
        with self.lock:
            shown = self.shown.get(id(entry))
            if shown is not None:
                shown.pages.append(records)
                self._more(entry, "page", f',"records":{records}}}')

    def answer(self, entry: dict[str, Any], fields: dict[str, Any]) -> None:
        """What a read or write learned: its "result" or "error"; a stream's start ("pages": [] and
        "complete": false) and end ("complete" or "error")."""
        texts = {name: dumps(value) for name, value in masked_entry(fields, self.mask).items()}
        with self.lock:
            shown = self.shown.get(id(entry))
            if shown is not None:
                shown.fields.update(texts)
                self._more(entry, "answer", "".join(f',"{k}":{v}' for k, v in texts.items()) + "}")  # names of ours

    def _more(self, entry: dict[str, Any], kind: str, rest: str) -> None:
        self.lines += 1
        self._put(f'{{"type":"{kind}","line":{self.at[id(entry)]}{rest}', opens=False)

    def final_lines(self, entries: list[dict[str, Any]]) -> list[str]:
        """The cassette's lines in its usual form (one whole entry a line), from the texts masked and made
        as the run went: `entries` were each given to add()."""
        out = []
        for entry in entries:
            text = self.texts.get(id(entry))
            if text is None:
                shown = self.shown.get(id(entry))
                text = shown.whole() if shown is not None else dumps(masked_entry(entry, self.mask))
            out.append(text)
        return out

    def _put(self, text: str, opens: bool) -> None:
        data = (text + "\n").encode("utf-8")
        if self.failed is not None:
            return
        if self.fd is None:
            self.waiting.append(data)
            if not opens:
                return
            data = b"".join(self.waiting)
            self.waiting = []
            try:
                self._open()
            except OSError as e:
                self.failed = e
                return
        self._write(data)

    def _open(self) -> None:
        self._keep_previous()
        part = self.path.with_name(self.path.name + ".part")
        self.fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            os.replace(part, self.path)
        except OSError:
            os.close(self.fd)
            self.fd = None
            part.unlink(missing_ok=True)
            raise

    def _keep_previous(self) -> None:
        """The cassette in the folder before this recording, as cassette.previous.jsonl: one kept there
        already (by a recording that was killed) stays, since the cassette now in the folder is that
        killed recording's."""
        previous = self.path.with_name(PREVIOUS_NAME)
        if previous.exists():
            self.previous = previous
            return
        try:
            os.link(self.path, previous)
        except FileNotFoundError:
            return
        except OSError:  # a file system without hard links
            try:
                shutil.copyfile(self.path, previous)
            except OSError:  # no room for a copy: the recording goes on, over the old cassette
                previous.unlink(missing_ok=True)
                return
        self.previous = previous

    def _write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        try:
            while view:
                done = os.write(self.fd, view)
                view = view[done:]
        except OSError as e:
            self.failed = e
            try:
                os.ftruncate(self.fd, self.size)  # no cut-short line left behind
            except OSError:
                pass
            self.close()
            return
        self.size += len(data)
        self.whole += data.count(b"\n")

    def close(self) -> None:
        with_fd, self.fd = self.fd, None
        if with_fd is not None:
            os.close(with_fd)
