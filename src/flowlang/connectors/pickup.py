"""File pick-up: `file(path: "in/*.csv", after: "archive/")` (or `sftp(...)`, `s3(...)` with such a
path) reads every file the pattern matches, one after another, and when the run has finished moves
(or, with `after: "delete"`, deletes) each file whose records all succeeded. A file with a failed
record, a file not read to its end (--limit, a stop, a run that failed) and every file of a dry run
stay where they are, to be read again. A file held back for failed records is kept in the store with
the ids of its errors; when they are all resolved (`flowlang retry` sent them, or `resolve`), the next
job that opens the pick-up (a run or a retry) archives it. The files are listed, read and moved through a Storage
(storage.py), so local, SFTP and S3 pick-ups follow these rules alike.

Kill safety: before it moves anything, the connection writes the list of finished files to a ledger
beside the archive (`.flowlang-pickup-NAME.json`, replaced atomically); a run that finds a ledger
archives those files first, without reading them again. So a file is never archived before its
records are sent, and a file whose records were all sent is not read again by the next run.
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, RunServices
from flowlang.connectors.storage import Entry, Storage, is_partial
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import binary_value
from flowlang.runtime.values import BadRecord, RecordStream, Value, to_text

GLOB_CHARS = ("*", "?", "[")
LEDGER_PREFIX = ".flowlang-pickup-"


def is_pattern(path: str) -> bool:
    return any(c in path for c in GLOB_CHARS)


@dataclass
class Picked:
    entry: Entry
    records: list[Any] = field(default_factory=list)  # the records read from it (kept to match failures)
    read_to_end: bool = False


class PickupConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, pattern: str, after: str, services: RunServices,
                 open_one: Callable[[Path], Any], binary: bool, storage: Storage) -> None:
        super().__init__(name, spec)
        self.pattern = pattern
        self.after = after
        self.services = services
        self.open_one = open_one  # a local Path -> FileConnection reading that file in the pick-up's format
        self.binary = binary  # format "bytes": one record per file, {name, path, size, content}
        self.storage = storage
        self.picked: dict[str, Picked] = {}
        self.archive_dir = None if after == "delete" else after
        self.ledger = storage.join(self.archive_dir or storage.parent(pattern), f"{LEDGER_PREFIX}{name}.json")
        # where the ledger goes when it cannot be written beside the archive (that disk is full): beside
        # the files, which the run can write too (it moves them away)
        self.spare_ledger = storage.join(storage.parent(pattern), f"{LEDGER_PREFIX}{name}.json")
        self._copies: Path | None = None  # a temporary folder for the local copies of remote files

    # ---- reading -------------------------------------------------------------------------------
    async def files(self) -> list[Entry]:
        try:
            found = await self.storage.glob(self.pattern)
        except ValueError as e:
            raise FlowRuntimeError(f"{self.name}: {e}", "connector") from None
        return [e for e in found if not e.name.startswith(LEDGER_PREFIX) and not is_partial(e.name)]

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "read":
            return RecordStream(self._pages, f"{self.name}.read()")
        if op == "list":
            return [{"name": e.name, "path": self.storage.shown(e.path), "size": e.size} for e in await self.files()]
        raise FlowRuntimeError(f"a file pick-up ({self.pattern}) has the operations read and list, not '{op}'",
                               "connector")

    async def local_copy(self, entry: Entry) -> Path:
        """The file as a local path: the file itself on the local disk, else a copy in a temporary folder
        (downloaded in chunks; removed when the connection closes)."""
        local = self.storage.local_path(entry.path)
        if local is not None:
            return local
        if self._copies is None:
            self._copies = Path(tempfile.mkdtemp(prefix="flowlang-pickup-"))
        folder = self._copies / str(len(self.picked))
        folder.mkdir(exist_ok=True)
        target = folder / PurePosixPath(entry.name).name
        with target.open("wb") as fh:
            await self.storage.download(entry.path, fh)
        return target

    async def _pages(self) -> AsyncIterator[list[Value]]:
        await self.finish_ledger()
        # the file of each record, by its id: without `key` a record is keyed by its file's name and its id
        files: dict[int, str] = getattr(self.services, "record_files", {})
        for entry in await self.files():
            picked = self.picked.setdefault(entry.path, Picked(entry))
            picked.entry = entry
            for r in picked.records:  # read again: those records are gone
                files.pop(id(r.record if type(r) is BadRecord else r), None)
            picked.records.clear()
            picked.read_to_end = False
            local = await self.local_copy(entry)
            if self.binary:
                page: list[Value] = [{"name": entry.name, "path": self.storage.shown(entry.path),
                                      "size": entry.size, "content": binary_value(local, entry.size)}]
                picked.records.extend(page)
                yield page
            else:
                async for page in self.open_one(local)._pages():
                    picked.records.extend(page)
                    for r in page:  # keyed within their file (compile/loops.py, LoopInfo.key_value)
                        files[id(r.record if type(r) is BadRecord else r)] = entry.name
                    yield page
            picked.read_to_end = True

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        raise FlowRuntimeError(f"a file pick-up ({self.pattern}) is read, not written: send to a file path",
                               "connector")

    # ---- archiving -----------------------------------------------------------------------------
    def settled(self) -> tuple[list[Entry], list[dict[str, Any]]]:
        """If the run itself finished: the files read to the end whose records all succeeded, and the
        files read to the end that are held back for failed records (with the ids of those errors)."""
        if self.services.dry_run or not getattr(self.services, "body_finished", False):
            return [], []
        failures: dict[int, list[int]] = {}
        for f in getattr(self.services, "failures", []):
            failures.setdefault(id(f.record), []).append(f.error_id)
        done: list[Entry] = []
        held: list[dict[str, Any]] = []
        for p in self.picked.values():
            if not p.read_to_end:
                continue
            ids = [i for r in p.records for i in failures.get(id(r.record if type(r) is BadRecord else r), ())]
            if not ids:
                done.append(p.entry)
            elif all(i is not None for i in ids):
                held.append({**self.ledger_entry(p.entry), "errors": sorted(set(ids))})
        return done, held

    def done_files(self) -> list[Entry]:
        """The files read to the end whose records all succeeded, if the run itself finished."""
        return self.settled()[0]

    async def close(self) -> None:
        try:
            done, held = self.settled()
            if getattr(self.services, "body_finished", False) and not self.services.dry_run:
                entries = [self.ledger_entry(e) for e in done] + await self.released(held)
                if entries:
                    await self.write_ledger(entries)
                    await self.finish_ledger()
        finally:
            if self._copies is not None:
                shutil.rmtree(self._copies, ignore_errors=True)
                self._copies = None
            await self.storage.close()

    @staticmethod
    def ledger_entry(e: Entry) -> dict[str, Any]:
        return {"path": e.path, "size": e.size, "stamp": e.stamp}

    async def released(self, held_now: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Files held back for failed records ({path, size, stamp, errors: [error ids]}, kept in the store by
        the connection's name): those whose errors are
        all resolved now (`flowlang retry` sent them, or they were resolved by hand) are returned, to be
        archived as a run whose records all succeeded would; the rest, with the files this run held
        back, are kept in the list for a later run or retry."""
        held_files = getattr(self.services, "held_files", None)
        set_held_files = getattr(self.services, "set_held_files", None)
        if held_files is None or set_held_files is None:  # services without a store (an embedder's own)
            return []
        earlier = held_files(self.name)
        read_now = {p.entry.path for p in self.picked.values() if p.read_to_end}
        keep = list(held_now)
        free: list[dict[str, Any]] = []
        errors_open = getattr(self.services, "errors_open", None)
        for item in earlier:
            if item["path"] in read_now:
                continue  # this run read the file again: its outcome now is what counts
            if errors_open is not None and not errors_open(list(item["errors"])):
                free.append({k: item[k] for k in ("path", "size", "stamp")})
            else:
                keep.append(item)
        if keep or earlier:
            set_held_files(self.name, keep)
        return free

    async def write_ledger(self, entries: list[dict[str, Any]]) -> None:
        """The list of finished files, beside the archive; when that cannot be written, beside the
        files (else nothing is moved and the run says that the next one reads the files again)."""
        data = json.dumps(entries).encode()
        try:
            await self.storage.upload(io.BytesIO(data), self.ledger)
            return
        except OSError as e:
            first = self._failure("write the pick-up ledger", e, self.ledger)
            if self.spare_ledger == self.ledger:
                raise FlowRuntimeError(f"{first}; no file was moved, so the next run reads them again", "connector") \
                    from None
        try:
            await self.storage.upload(io.BytesIO(data), self.spare_ledger)
        except OSError as e:
            raise FlowRuntimeError(f"{first}, nor beside the files ({self._failure('', e, self.spare_ledger)}); no "
                                   "file was moved, "
                                   "so the next run reads them again", "connector") from None
        self.services.logger.warning("%s; it was written beside the files instead (%s)", first,
                                     self.storage.shown(self.spare_ledger))

    async def finish_ledger(self) -> None:
        """Archive (or delete) the files a ledger lists as finished, then drop the ledger (the one beside
        the archive, and one written beside the files when that could not be written)."""
        for ledger in dict.fromkeys((self.spare_ledger, self.ledger)):
            await self._finish(ledger)

    async def _finish(self, ledger: str) -> None:
        if await self.storage.stat(ledger) is None:
            return
        buffer = io.BytesIO()
        try:
            await self.storage.download(ledger, buffer)
        except OSError as e:
            raise FlowRuntimeError(f"cannot read the pick-up ledger {self.storage.shown(ledger)}: {e}",
                                   "connector") from None
        try:
            entries = ledger_entries(json.loads(buffer.getvalue()))
        except ValueError as e:
            raise FlowRuntimeError(
                f"the pick-up ledger {self.storage.shown(ledger)} is damaged ({e}); it lists the files whose records "
                "a run sent before it stopped, to be archived without being read again: move it away, and the "
                "next run reads those files again (their records are sent again, but for `send ... once`)",
                "connector") from None
        for item in entries:
            now = await self.storage.stat(item["path"])
            if now is None:
                continue  # moved already, before a crash
            if now.size != item["size"] or now.stamp != str(item.get("stamp", item.get("mtime_ns"))):
                self.services.logger.warning("%s changed since it was read; not archived",
                                             self.storage.shown(now.path))
                continue
            try:
                await self.archive(now)
            except FlowRuntimeError as e:
                raise FlowRuntimeError(f"{e.message}; the pick-up ledger {self.storage.shown(ledger)} keeps the "
                                       "files not archived yet: the next run archives them first, without reading "
                                       "them again", "connector") from None
        await self._guard("remove the pick-up ledger", self.storage.delete(ledger), ledger)

    async def archive(self, entry: Entry) -> None:
        if self.archive_dir is None:
            await self._guard(f"delete {entry.name}", self.storage.delete(entry.path), entry.path)
            return
        target = self.storage.join(self.archive_dir, entry.name)
        if await self.storage.stat(target) is not None:
            target = await self._free_stamped_name(entry.name)
        await self._guard(f"archive {entry.name}", self.storage.move(entry.path, target), target)

    async def _free_stamped_name(self, name: str) -> str:
        """A name in the archive for a file whose name is there already: stamped with the time in UTC
        (a.20261204T212356Z.csv; the machine's local time repeats an hour when the clocks go back) and,
        when that is taken too (a second file of that name in the same second), counted on (-2, -3, ...):
        a move onto a name that is there replaces that file."""
        assert self.archive_dir is not None
        stem, dot, suffix = name.rpartition(".")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for n in itertools.count(1):
            tag = stamp if n == 1 else f"{stamp}-{n}"
            target = self.storage.join(self.archive_dir, f"{stem}.{tag}.{suffix}" if dot and stem else f"{name}.{tag}")
            if await self.storage.stat(target) is None:
                return target
        raise AssertionError("unreachable")

    async def _guard(self, what: str, action: Any, path: str) -> None:
        try:
            await action
        except OSError as e:
            raise FlowRuntimeError(self._failure(what, e, path), "connector") from None

    def _failure(self, what: str, error: OSError, path: str) -> str:
        """'cannot archive a.csv: No space left on device: archive/a.csv', naming the file written."""
        reason = error.strerror or str(error)
        return f"{'cannot ' + what + ': ' if what else ''}{reason}: {self.storage.shown(path)}"


def ledger_entries(value: Any) -> list[dict[str, Any]]:
    """The entries of a pick-up ledger as written by write_ledger ({path, size, stamp}; `mtime_ns` for
    the stamp in ledgers of earlier versions); ValueError saying what is wrong with one that is not."""
    if type(value) is not list:
        what = {dict: "an object", str: "a text", bool: "true or false", int: "a number", float: "a number"}
        raise ValueError(f"it holds {what.get(type(value), 'null')}, not a list of files")
    for n, item in enumerate(value):
        if type(item) is not dict or type(item.get("path")) is not str or type(item.get("size")) is not int \
                or ("stamp" not in item and "mtime_ns" not in item):
            raise ValueError(f"its entry {n + 1} is not a file's path, size and stamp")
    return value


def check_after(after: Value) -> str:
    if after is None or after == "":  # not given: it said "must be a folder ..., got ''"
        raise FlowRuntimeError('file: a pick-up pattern needs after: the folder each file is moved to once all '
                               'its records succeeded (after: "archive/"), or after: "delete"', "connector")
    if type(after) is not str:
        raise FlowRuntimeError('file after: must be a folder to move picked-up files to (after: "archive/") or '
                               f'"delete", got {to_text(after)!r}', "connector")
    return after
