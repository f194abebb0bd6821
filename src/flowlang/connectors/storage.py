"""The storage seam of the file connectors: how bytes are listed, read, written, moved and deleted in
one place (the local disk, an SFTP server, an S3 bucket). The formats (CSV, JSON, JSON Lines, bytes),
pick-up with `after:` and the folder of binary files are written once against this interface; a
store only moves bytes, in chunks, so a large file never has to be in memory whole.

Paths are the store's own: a local path as text, a path on the SFTP server, an object key."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import posixpath
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20  # bytes moved at a time


@dataclass(frozen=True)
class Entry:
    """One file in a store: its path, name, size and a stamp that changes when the file changes
    (the modification time, or an S3 ETag)."""

    path: str
    name: str
    size: int
    stamp: str


class Storage(ABC):
    """Bytes in one place. `label` names the place in messages (never with credentials)."""

    label: str = ""

    @abstractmethod
    async def glob(self, pattern: str) -> list[Entry]:
        """The files a pattern matches (`*`, `?`, `[...]`), sorted by path."""

    @abstractmethod
    async def stat(self, path: str) -> Entry | None:
        """The file at path, or None when there is none."""

    @abstractmethod
    async def download(self, path: str, target: BinaryIO) -> None:
        """Copy the file at path into target, in chunks (a missing file is a clear error)."""

    @abstractmethod
    async def upload(self, source: BinaryIO, path: str) -> None:
        """Write source (read in chunks) to path, replacing it as a whole: a reader never sees half a file."""

    @abstractmethod
    async def move(self, path: str, target: str) -> None:
        """Move a file to target (a file path)."""

    @abstractmethod
    async def delete(self, path: str) -> None: ...

    def join(self, folder: str, name: str) -> str:
        return posixpath.join(folder, name) if folder else name

    def parent(self, path: str) -> str:
        return posixpath.dirname(path)

    def shown(self, path: str) -> str:
        """How a file is named in records and messages."""
        return path

    def local_path(self, path: str) -> Path | None:
        """The file as a local path when it is one (then it is read in place, not copied)."""
        return None

    async def close(self) -> None:
        return None


def split_pattern(pattern: str) -> tuple[str, str]:
    """A remote pattern as (folder, name pattern): wildcards are allowed in the last part only."""
    folder, name = posixpath.split(pattern)
    if any(c in folder for c in "*?["):
        raise ValueError("a pattern may have wildcards in its last part only (in/*.csv, not */in.csv)")
    return folder, name


def is_partial(name: str) -> bool:
    """A file being written (`.NAME.part`), not yet renamed to its name."""
    return name.startswith(".") and name.endswith(".part")


@contextlib.contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """The temporary name a file is written under before it is renamed to target; removed when the
    writing fails (a full disk leaves no half file behind)."""
    tmp = target.with_name(f".{target.name}.part")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def name_matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


class LocalStorage(Storage):
    """The local disk, paths relative to the flow's folder."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.label = "local"

    def _full(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def _entry(self, p: Path) -> Entry:
        st = p.stat()
        return Entry(str(p), p.name, st.st_size, str(st.st_mtime_ns))

    async def glob(self, pattern: str) -> list[Entry]:
        root = Path(pattern)
        if root.is_absolute():
            anchor = root.anchor or "/"
            found = Path(anchor).glob(str(root.relative_to(anchor)))
        else:
            found = self.base_dir.glob(pattern)
        return [self._entry(p) for p in sorted(found) if p.is_file()]

    async def stat(self, path: str) -> Entry | None:
        p = self._full(path)
        return self._entry(p) if p.is_file() else None

    async def download(self, path: str, target: BinaryIO) -> None:
        with self._full(path).open("rb") as fh:
            shutil.copyfileobj(fh, target, CHUNK)

    async def upload(self, source: BinaryIO, path: str) -> None:
        target = self._full(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _partial(target) as tmp:
            with tmp.open("wb") as fh:
                shutil.copyfileobj(source, fh, CHUNK)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)

    async def move(self, path: str, target: str) -> None:
        """Renamed on one file system; onto another, copied to `.NAME.part` beside the target, renamed
        and then removed: a copy that fails (a full disk) is removed, never left as a torn file."""
        full = self._full(target)
        source = self._full(path)
        full.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(source, full)
            return
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
        with _partial(full) as tmp:
            shutil.copy2(source, tmp)
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            os.rename(tmp, full)
        source.unlink()

    async def delete(self, path: str) -> None:
        self._full(path).unlink()

    def join(self, folder: str, name: str) -> str:
        return str(Path(folder) / name)

    def parent(self, path: str) -> str:
        return str(Path(path).parent)

    def shown(self, path: str) -> str:
        try:
            return self._full(path).relative_to(self.base_dir).as_posix()
        except ValueError:
            return path

    def local_path(self, path: str) -> Path | None:
        return self._full(path)
