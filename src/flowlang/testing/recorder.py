"""`flowlang run --record DIR`: a Tape that lets the run talk to the real world and writes down
every exchange (reads with their answers, writes with theirs, drawn values, outputs)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, SendOutcome
from flowlang.errors import FlowError, FlowRuntimeError, UsageError
from flowlang.runtime.tape import BATCH_PLACES, DRAW_PLACE
from flowlang.runtime.values import RecordStream, Value, format_datetime
from flowlang.testing.cassette import FAILED_NAME, FILE_NAME, VERSION, Cassette, stored_page
from flowlang.testing.cassette_journal import Journal
from flowlang.testing.cassette_values import stored


def error_entry(e: FlowRuntimeError) -> dict[str, Any]:
    """An error as the cassette keeps it: with the answer's body (`on error as e` reads `e.body`)."""
    entry = {"message": e.message, "kind": e.kind, "status": e.status}
    if e.body is not None:
        entry["body"] = stored(e.body)
    return entry


def writes(spec: ConnectorSpec, op: str) -> bool:
    """Whether an operation changes data (a `call` of it is a write, not a read)."""
    found = spec.operations.get(op)
    return bool(found.changes_data) if found is not None else False


class RecordingConnection(Connection):
    """The real connection, with each exchange appended to the cassette."""

    def __init__(self, inner: Connection, recorder: Recorder) -> None:
        super().__init__(inner.name, inner.spec)
        self.inner = inner
        self.recorder = recorder

    def default_write_op(self) -> str | None:
        return self.inner.default_write_op()

    def sends_read(self, op: str) -> bool:
        return self.inner.sends_read(op)

    def _entry(self, kind: str, op: str, args: list[Value], kwargs: dict[str, Value]) -> dict[str, Any]:
        entry = {"type": kind, "connection": self.name, "connector": self.spec.name, "op": op,
                 "args": stored(args), "kwargs": stored(kwargs)}
        return entry

    def _answered(self, entry: dict[str, Any], name: str, value: Any) -> None:
        entry[name] = value
        self.recorder.journal.answer(entry, {name: value})

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        entry = self.recorder.add(self._entry(
            "write" if writes(self.spec, op) and not self.spec.any_operation else "read", op, args, kwargs))
        try:
            result = await self.inner.invoke(op, args, kwargs)
        except FlowRuntimeError as e:
            self._answered(entry, "error", error_entry(e))
            raise
        if type(result) is RecordStream:
            return self._recorded_stream(result, entry)
        self._answered(entry, "result", stored(result))
        return result

    def _recorded_stream(self, stream: RecordStream, entry: dict[str, Any]) -> RecordStream:
        entry["pages"], entry["complete"] = [], False
        self.recorder.journal.answer(entry, {"pages": [], "complete": False})  # a stream, before its first page
        read = False
        journal = self.recorder.journal

        async def pages() -> AsyncIterator[list[Value]]:
            nonlocal read
            first, read = not read, True
            try:
                async for page in stream.pages(keep_bad=True):  # bad records are recorded as they are
                    if first:
                        kept = stored_page(page)
                        entry["pages"].append(kept)
                        journal.page(entry, kept)
                    yield page
            except FlowRuntimeError as e:
                if first:
                    self._answered(entry, "error", error_entry(e))
                raise
            if first:
                self._answered(entry, "complete", True)
        return RecordStream(pages, stream.label)

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        entry = self._entry("write", op, args, kwargs)
        entry["record"] = stored(record)
        place = DRAW_PLACE.get()
        if place is not None:  # the record's place in a loop that reorders its writes
            entry["at"] = place
        self.recorder.add(entry)
        try:
            result = await self.inner.send(op, record, args, kwargs)
        except FlowRuntimeError as e:
            self._answered(entry, "error", error_entry(e))
            raise
        self._answered(entry, "result", stored(result))
        return result

    async def send_batch(self, op: str, records: list[Value], args: list[Value],
                         kwargs: dict[str, Value]) -> list[SendOutcome]:
        entries = []
        places = BATCH_PLACES.get() or []
        for n, record in enumerate(records):
            entry = self._entry("write", op, args, kwargs)
            entry["record"] = stored(record)
            if n < len(places) and places[n] is not None:
                entry["at"] = places[n]
            entries.append(self.recorder.add(entry))
        try:
            outcomes = await self.inner.send_batch(op, records, args, kwargs)
        except FlowRuntimeError as e:
            for entry in entries:
                self._answered(entry, "error", error_entry(e))
            raise
        for entry, outcome in zip(entries, outcomes, strict=False):
            if outcome.ok:
                self._answered(entry, "result", stored(outcome.result))
            else:
                self._answered(entry, "error", {"message": outcome.error, "kind": "connector",
                                                "status": outcome.status})
        return outcomes

    async def close(self) -> None:
        await self.inner.close()


def writable(folder: Path) -> None:
    """Make the cassette's folder and try a file in it; a UsageError saying why not."""
    probe = Cassette.path_in(folder).with_suffix(".probe")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot record into {folder}: {e.strerror or e} (give --record a folder that can be "
                         "written)") from None


def dry_record_refused(record: str, dry_run: str) -> str:
    """Why a recording of a dry run is refused (TESTING.md 2: a recording runs for real): its cassette
    would hold no answer to a write, replay as if nothing were sent, and take the place of a real one."""
    return (f"{record} runs for real and keeps what the APIs answered; a dry run sends no write, so its cassette "
            f"would hold none and replay as if nothing were sent: leave out {dry_run} (flowlang plan shows what a "
            "run would send)")


class Recorder:
    """A Tape that records: each entry is appended to the cassette as it is made (cassette_journal), and
    `save()` writes it again in its usual form when the run has ended. `mask` masks every secret the
    run knows (the run's masker: it learns a secret before the secret is used)."""

    replaying = False

    def __init__(self, folder: Path, flow: str, params: dict[str, Any], payload: Any,
                 limit: int | None = None, mask: Callable[[str], str] = str) -> None:
        self.folder = folder
        writable(folder)  # before the run: a cassette that cannot be saved would be lost after real writes
        run: dict[str, Any] = {"type": "run", "flow": flow, "version": VERSION, "params": stored(params),
                               "input": stored(payload), "recorded_at": format_datetime(datetime.now(UTC))}
        if limit is not None:
            run["limit"] = limit  # the replay takes as many records: the cassette holds no more
        self.cassette = Cassette([])
        self.kept: Path | None = None  # the cassette that a run that did not finish left in place (save())
        self.journal = Journal(Cassette.path_in(folder), mask)
        self.add(run)

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An entry, in the cassette and on disk."""
        self.cassette.entries.append(entry)
        self.journal.add(entry)
        return entry

    async def connection(self, name: str, spec: ConnectorSpec,
                         open_real: Callable[[], Awaitable[Connection]]) -> Connection:
        return RecordingConnection(await open_real(), self)

    def wrap(self, connection: Connection) -> Connection:
        return RecordingConnection(connection, self)

    def value(self, kind: str, make: Callable[[], Any]) -> Any:
        value = make()
        entry: dict[str, Any] = {"type": "value", "kind": kind, "value": stored(value)}
        place = DRAW_PLACE.get()
        if place is not None:  # drawn by a record of a loop running iterations at once
            entry["at"] = place
        self.add(entry)
        return value

    def output(self, value: Any) -> None:
        self.add({"type": "output", "value": stored(value)})

    def finish(self, status: str, failed: int) -> None:
        self.add({"type": "result", "status": status, "failed": failed})

    def cut_short(self) -> bool:
        """Whether the run was stopped in the middle of a read it did not take to its end (Ctrl-C, a time
        limit), not at a --limit: its replay would read on past what the cassette holds, and fail. A run
        that finished (ok or partial) took of each read what it needed (a lookup its first record, a loop
        left by `stop` its first pages), and its replay takes the same."""
        if "limit" in self.cassette.run:
            return False
        if any(e.get("status") in ("ok", "partial") for e in self.cassette.of_type("result")):
            return False
        return any("pages" in e and not e.get("complete") and "error" not in e for e in self.cassette.of_type("read"))

    def ended(self, status: str) -> bool:
        """Whether the run's result line says it ended so."""
        return any(e.get("status") == status for e in self.cassette.of_type("result"))

    def exchanged(self) -> bool:
        """Whether the run made an exchange with the outside (a read or a write) that a replay answers."""
        return any(e.get("type") in ("read", "write") for e in self.cassette.entries)

    def save(self, finished: bool = True) -> Path:
        """The cassette in its usual form, over the lines appended as the run went; the path it went to.
        A run that did not finish (failed, interrupted) does not replace a cassette that was in the folder:
        that one is put back (`kept`) and this recording goes to cassette.failed.jsonl beside it, since the
        replay of a failed run passes by failing the same way, and a good cassette is worth more. When the
        cassette cannot be written, the appended lines stay (each one whole): the FlowError says how many
        there are."""
        self.journal.close()
        previous = self.journal.previous
        if previous is None and not self.exchanged() and (self.folder / FILE_NAME).exists():
            previous = self.folder / FILE_NAME  # nothing appended over it yet: it is still in place
        try:
            saved = self.cassette.write(self.folder, self.journal.final_lines(self.cassette.entries),
                                        FAILED_NAME if not finished and previous is not None else FILE_NAME)
        except FlowError as e:
            if self.journal.whole:
                raise FlowError(f"{e.message} (it holds the {self.journal.whole:,} lines written as the run "
                                "went, each one whole)") from None
            raise
        cassette = self.folder / FILE_NAME
        if not finished and previous is not None:
            if previous != cassette:
                self._put_back(previous, cassette)
            self.kept = cassette
        elif previous is not None and previous != cassette:
            previous.unlink(missing_ok=True)
        return saved

    @staticmethod
    def _put_back(previous: Path, cassette: Path) -> None:
        try:
            os.replace(previous, cassette)
        except OSError as e:
            raise FlowError(f"cannot put back the cassette {cassette} (kept as {previous}): "
                            f"{e.strerror or e}") from None
