"""File pick-up: `file(path: "in/*.csv", after: "archive/")` (or `sftp(...)`, `s3(...)` with such a
path) reads every file the pattern matches, one after another, and when the run has finished moves
(or, with `after: "delete"`, deletes) each file whose records all succeeded. A file with a failed
record, a file not read to its end (--limit, a stop, a run that failed) and every file of a dry run
stay where they are, to be read again. The files are listed, read and moved through a Storage
(storage.py), so local, SFTP and S3 pick-ups follow these rules alike.

Kill safety: before it moves anything, the connection writes the list of finished files to a ledger
beside the archive (`.flowlang-pickup-NAME.json`, replaced atomically); a run that finds a ledger
archives those files first, without reading them again. So a file is never archived before its
records are sent, and a file whose records were all sent is not read again by the next run.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
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
        for entry in await self.files():
            picked = self.picked.setdefault(entry.path, Picked(entry))
            picked.entry = entry
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
                    yield page
            picked.read_to_end = True

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        raise FlowRuntimeError(f"a file pick-up ({self.pattern}) is read, not written: send to a file path",
                               "connector")

    # ---- archiving -----------------------------------------------------------------------------
    def done_files(self) -> list[Entry]:
        """The files read to the end whose records all succeeded, if the run itself finished."""
        if self.services.dry_run or not getattr(self.services, "body_finished", False):
            return []
        failed = {id(f.record) for f in getattr(self.services, "failures", [])}
        return [p.entry for p in self.picked.values()
                if p.read_to_end and not any(id(r.record if type(r) is BadRecord else r) in failed
                                             for r in p.records)]

    async def close(self) -> None:
        try:
            done = self.done_files()
            if done:
                await self.write_ledger(done)
                await self.finish_ledger()
        finally:
            if self._copies is not None:
                shutil.rmtree(self._copies, ignore_errors=True)
                self._copies = None
            await self.storage.close()

    async def write_ledger(self, files: list[Entry]) -> None:
        entries = [{"path": e.path, "size": e.size, "stamp": e.stamp} for e in files]
        await self._guard("write the pick-up ledger", self.storage.upload(io.BytesIO(json.dumps(entries).encode()),
                                                                          self.ledger))

    async def finish_ledger(self) -> None:
        """Archive (or delete) the files a ledger lists as finished, then drop the ledger."""
        if await self.storage.stat(self.ledger) is None:
            return
        buffer = io.BytesIO()
        try:
            await self.storage.download(self.ledger, buffer)
            entries = json.loads(buffer.getvalue())
        except (OSError, ValueError) as e:
            raise FlowRuntimeError(f"cannot read the pick-up ledger {self.storage.shown(self.ledger)}: {e}",
                                   "connector") from None
        for item in entries:
            now = await self.storage.stat(item["path"])
            if now is None:
                continue  # moved already, before a crash
            if now.size != item["size"] or now.stamp != str(item.get("stamp", item.get("mtime_ns"))):
                self.services.logger.warning("%s changed since it was read; not archived",
                                             self.storage.shown(now.path))
                continue
            await self.archive(now)
        await self._guard("remove the pick-up ledger", self.storage.delete(self.ledger))

    async def archive(self, entry: Entry) -> None:
        if self.archive_dir is None:
            await self._guard(f"delete {entry.name}", self.storage.delete(entry.path))
            return
        target = self.storage.join(self.archive_dir, entry.name)
        if await self.storage.stat(target) is not None:
            stem, dot, suffix = entry.name.rpartition(".")
            stamp = time.strftime("%Y%m%dT%H%M%S")
            target = self.storage.join(self.archive_dir, f"{stem}.{stamp}.{suffix}" if dot and stem
                                       else f"{entry.name}.{stamp}")
        await self._guard(f"archive {entry.name}", self.storage.move(entry.path, target))

    async def _guard(self, what: str, action: Any) -> None:
        try:
            await action
        except OSError as e:
            raise FlowRuntimeError(f"cannot {what}: {e.strerror or e}", "connector") from None


def check_after(after: Value) -> str:
    if type(after) is not str or not after:
        raise FlowRuntimeError('file after: must be a folder to move picked-up files to (after: "archive/") or '
                               f'"delete", got {to_text(after)!r}', "connector")
    return after
