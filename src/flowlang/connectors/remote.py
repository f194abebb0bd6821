"""Files in a remote store (SFTP, S3): what a `path` opens there, with the local file connector's
rules. A pattern is a pick-up (pickup.py), a path ending in `/` a folder of binary files
(folder.py), any other path one file in a format of file.py: read from a local copy downloaded in
chunks, written to a local staging file that is uploaded whole when the run closes the connection
(so the remote file is replaced at once, never seen half-written). Only the Storage differs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path, PurePosixPath

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices
from flowlang.connectors.file import FileConnection, TextRules, format_options
from flowlang.connectors.folder import FolderConnection
from flowlang.connectors.pickup import PickupConnection, check_after, is_pattern
from flowlang.connectors.storage import Storage
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.values import RecordStream, Secret, Value, to_text, type_name


class RemoteFileConnection(Connection):
    """One file in a store, in a format of the file connector."""

    def __init__(self, name: str, spec: ConnectorSpec, storage: Storage, path: str, fmt: str, mode: str,
                 services: RunServices, rules: TextRules) -> None:
        super().__init__(name, spec)
        self.storage = storage
        self.remote = path
        self.services = services
        self.options = (fmt, mode, rules)
        self.folder = Path(tempfile.mkdtemp(prefix="flowlang-remote-"))
        self.local = self.folder / (PurePosixPath(path).name or "file")
        self._reader: FileConnection | None = None
        self._writer: FileConnection | None = None

    def _file(self, path: Path, mode: str) -> FileConnection:
        fmt, _, rules = self.options
        return FileConnection(self.name, self.spec, path, fmt, mode, self.services, rules)

    async def _read_copy(self) -> FileConnection:
        if self._reader is None:
            copy = self.folder / "read" / self.local.name
            copy.parent.mkdir(exist_ok=True)
            with copy.open("wb") as fh:
                await self.storage.download(self.remote, fh)
            self._reader = self._file(copy, "overwrite")
        return self._reader

    async def _pages(self) -> AsyncIterator[list[Value]]:
        self._reader = None  # each read sees the file as it is now
        reader = await self._read_copy()
        async for page in reader._pages():
            yield page

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "read":
            return RecordStream(self._pages, f"{self.name}.read()")
        if op == "find":
            reader = await self._read_copy()
            return await reader.invoke("find", args, kwargs)
        if op == "list":
            entry = await self.storage.stat(self.remote)
            return [] if entry is None else [{"name": entry.name, "path": self.storage.shown(entry.path),
                                              "size": entry.size}]
        if op == "write":
            return await self.send(op, args[0] if args else None, [], {})
        raise FlowRuntimeError(f"{self.spec.name} has no operation '{op}'", "connector")

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if self._writer is None:
            mode = self.options[1]
            if mode == "append" and not self.services.dry_run and await self.storage.stat(self.remote) is not None:
                with self.local.open("wb") as fh:
                    await self.storage.download(self.remote, fh)
            self._writer = self._file(self.local, mode)
        return await self._writer.send(op, record, args, kwargs)

    async def close(self) -> None:
        try:
            if self._writer is not None:
                await self._writer.close()
                if not self.services.dry_run and self.local.exists():
                    with self.local.open("rb") as fh:
                        await self.storage.upload(fh, self.remote)
        finally:
            self._writer = None
            shutil.rmtree(self.folder, ignore_errors=True)
            await self.storage.close()


def open_path(name: str, spec: ConnectorSpec, config: Mapping[str, Value], services: RunServices,
              storage: Storage) -> Connection:
    """The connection a remote store's `path` opens: a pick-up, a folder or one file."""
    kind = spec.name
    raw = config.get("path")
    if type(raw) is not str or not raw:
        raise FlowRuntimeError(f"{kind} needs path: a file, a pattern (\"in/*.csv\") or a folder (\"out/\"), "
                               f"got {type_name(raw)}", "connector")
    fmt, mode, rules = format_options(raw, config, kind)
    if is_pattern(raw):
        after = check_after(config.get("after") or "")

        def open_one(one: Path) -> FileConnection:
            return FileConnection(name, spec, one, fmt, "overwrite", services, rules)
        return PickupConnection(name, spec, raw, after, services, open_one, fmt == "bytes", storage)
    if raw.endswith("/"):
        if fmt != "bytes":
            raise FlowRuntimeError(f'the folder {raw!r} takes files as format: "bytes" (records {{name, content}})',
                                   "connector")
        return FolderConnection(name, spec, storage, raw, services)
    if config.get("after") is not None:
        raise FlowRuntimeError(f'{kind} after: is for a pick-up of several files: give path: a pattern such as '
                               '"in/*.csv"', "connector")
    if services.appending:  # a retry never erases what the runs before it wrote
        mode = "append"
    return RemoteFileConnection(name, spec, storage, raw, fmt, mode, services, rules)


def revealed(value: Value, services: RunServices) -> str | None:
    """A configuration value as text (a secret revealed, and registered so that it is masked)."""
    if value is None:
        return None
    if isinstance(value, Secret):
        text = value.reveal()
        services.register_secret(text)
        return text
    return to_text(value)


FORMAT_KEYS = (
    ConfigKey("path", required=True, description='a file, a pattern to pick up ("in/*.csv"; wildcards in the '
              'last part) or a folder of binary files ("out/")'),
    ConfigKey("format", description='"csv", "json", "jsonl" (default: from the extension) or "bytes"'),
    ConfigKey("mode", description='"overwrite" (default) or "append"'),
    ConfigKey("delimiter", description='the CSV delimiter (default ",")'),
    ConfigKey("encoding", description='the text encoding (default "utf-8")'),
    ConfigKey("ragged", description='a CSV row with more or fewer cells than the header: "error" (default) or '
              '"keep"'),
    ConfigKey("after", description='for a pick-up pattern: the folder each file is moved to once all its '
              'records succeeded, or "delete"'),
)

OPERATIONS = {
    "read": OperationSpec("read", "the file's records (or every picked-up file's), as a stream", returns_stream=True),
    "find": OperationSpec("find", "the records whose fields equal the arguments (read once per run)", keywords=None),
    "write": OperationSpec("write", "write one record (the default for send); uploaded when the run ends",
                           params=("record",), changes_data=True, takes_batch=True),
    "list": OperationSpec("list", "the files a pick-up pattern or folder holds: {name, path, size}"),
}
