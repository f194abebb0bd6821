"""File pick-up: `file(path: "in/*.csv", after: "archive/")` reads every file the pattern matches,
one after another, and when the run has finished moves (or, with `after: "delete"`, deletes) each
file whose records all succeeded. A file with a failed record, a file not read to its end (--limit,
a stop, a run that failed) and every file of a dry run stay where they are, to be read again.

Kill safety: before it moves anything, the connection writes the list of finished files to a ledger
beside the archive (`.flowlang-pickup-NAME.json`, replaced atomically); a run that finds a ledger
archives those files first, without reading them again. So a file is never archived before its
records are sent, and a file whose records were all sent is not read again by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, RunServices
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.values import RecordStream, Value, to_text

GLOB_CHARS = ("*", "?", "[")


def is_pattern(path: str) -> bool:
    return any(c in path for c in GLOB_CHARS)


@dataclass
class Picked:
    path: Path
    records: list[Any] = field(default_factory=list)  # the records read from it (kept to match failures)
    read_to_end: bool = False


class PickupConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, pattern: str, after: str, services: RunServices,
                 open_one: Callable[[Path], Any], binary: bool) -> None:
        super().__init__(name, spec)
        self.pattern = pattern
        self.after = after
        self.services = services
        self.open_one = open_one  # Path -> FileConnection reading that file
        self.binary = binary  # format "bytes": one record per file, {name, path, size, content}
        self.picked: dict[Path, Picked] = {}
        self.folder = Path(pattern).parent
        self.ledger = (self.archive_dir or self.folder) / f".flowlang-pickup-{name}.json"

    @property
    def archive_dir(self) -> Path | None:
        if self.after == "delete":
            return None
        target = Path(self.after)
        return target if target.is_absolute() else self.services.base_dir / target

    # ---- reading -------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        root = Path(self.pattern)
        anchor = root.anchor or "/"
        matches = sorted(Path(anchor).glob(str(root.relative_to(anchor)))) if root.is_absolute() else \
            sorted(self.services.base_dir.glob(self.pattern))
        return [p for p in matches if p.is_file() and not p.name.startswith(".flowlang-pickup-")]

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "read":
            return RecordStream(self._pages, f"{self.name}.read()")
        if op == "list":
            return [{"name": p.name, "path": self.shown(p), "size": p.stat().st_size} for p in self.files()]
        raise FlowRuntimeError(f"a file pick-up ({self.pattern}) has the operations read and list, not '{op}'",
                               "connector")

    async def _pages(self) -> AsyncIterator[list[Value]]:
        self.finish_ledger()
        for path in self.files():
            picked = self.picked.setdefault(path, Picked(path))
            picked.records.clear()
            picked.read_to_end = False
            reader = self.open_one(path)
            async for page in reader._pages():
                if self.binary:
                    page = [{"name": path.name, "path": self.shown(path), "size": len(b), "content": b}
                            for b in page]
                picked.records.extend(page)
                yield page
            picked.read_to_end = True

    def shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.services.base_dir).as_posix()
        except ValueError:
            return str(path)

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        raise FlowRuntimeError(f"a file pick-up ({self.pattern}) is read, not written: send to a file path",
                               "connector")

    # ---- archiving -----------------------------------------------------------------------------
    def done_files(self) -> list[Path]:
        """The files read to the end whose records all succeeded, if the run itself finished."""
        if self.services.dry_run or not getattr(self.services, "body_finished", False):
            return []
        failed = {id(f.record) for f in getattr(self.services, "failures", [])}
        return [p.path for p in self.picked.values()
                if p.read_to_end and not any(id(r) in failed for r in p.records)]

    async def close(self) -> None:
        done = self.done_files()
        if not done:
            return
        self.write_ledger(done)
        self.finish_ledger()

    def write_ledger(self, files: list[Path]) -> None:
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        entries = [{"path": str(p), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in files]
        tmp = self.ledger.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(entries, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.ledger)

    def finish_ledger(self) -> None:
        """Archive (or delete) the files a ledger lists as finished, then drop the ledger."""
        if not self.ledger.exists():
            return
        try:
            entries = json.loads(self.ledger.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise FlowRuntimeError(f"cannot read the pick-up ledger {self.ledger}: {e}", "connector") from None
        for entry in entries:
            path = Path(entry["path"])
            if not path.exists():
                continue  # moved already, before a crash
            stat = path.stat()
            if stat.st_size != entry["size"] or stat.st_mtime_ns != entry["mtime_ns"]:
                self.services.logger.warning("%s changed since it was read; not archived", path)
                continue
            self.archive(path)
        self.ledger.unlink()

    def archive(self, path: Path) -> None:
        try:
            if self.archive_dir is None:
                path.unlink()
                return
            self.archive_dir.mkdir(parents=True, exist_ok=True)
            target = self.archive_dir / path.name
            if target.exists():
                stamp = time.strftime("%Y%m%dT%H%M%S")
                target = self.archive_dir / f"{path.stem}.{stamp}{path.suffix}"
            shutil.move(str(path), str(target))
        except OSError as e:
            raise FlowRuntimeError(f"cannot archive {path.name}: {e.strerror}", "connector") from None


def check_after(after: Value) -> str:
    if type(after) is not str or not after:
        raise FlowRuntimeError('file after: must be a folder to move picked-up files to (after: "archive/") or '
                               f'"delete", got {to_text(after)!r}', "connector")
    return after
