"""A folder of binary files: `file(path: "out/", format: "bytes")` (or `sftp(...)`, `s3(...)` with a
path ending in `/`). `send {name, content}` writes `content` (bytes) to `out/NAME`, one file per
record (the BLOB half of a file transfer, the other half being a binary pick-up's {name, path, size,
content} records), through the connection's Storage: in chunks, to a temporary name and renamed (or
one S3 object), so no reader sees half a file. The name is one file name: a name with a folder in
it, or `..`, is refused."""

from __future__ import annotations

from flowlang.connectors.base import Connection, ConnectorSpec, RunServices
from flowlang.connectors.storage import Storage, is_partial
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import Blob, is_binary, open_binary
from flowlang.runtime.values import Value, to_text, type_name


def safe_name(value: Value) -> str:
    name = to_text(value) if value is not None else ""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FlowRuntimeError(f"a file name must be one name without folders, got {name!r}", "data")
    return name


class FolderConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, storage: Storage, folder: str, services: RunServices) -> None:
        super().__init__(name, spec)
        self.storage = storage
        self.folder = folder.rstrip("/") or folder
        self.services = services

    @property
    def shown(self) -> str:
        return self.storage.shown(self.folder).rstrip("/") + "/"

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "list":
            found = await self.storage.glob(self.storage.join(self.folder, "*"))
            return [{"name": e.name, "size": e.size} for e in found if not is_partial(e.name)]
        if op == "write":
            return await self.send(op, args[0] if args else None, [], {})
        raise FlowRuntimeError(f"a folder of files ({self.shown}) has the operations write and list, "
                               f"not '{op}'", "connector")

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if type(record) is not dict:
            raise FlowRuntimeError(f"a folder of files takes records {{name, content}}, got {type_name(record)}",
                                   "data")
        name = safe_name(record.get("name"))
        if not is_binary(record.get("content")):
            raise FlowRuntimeError("a folder of files takes content as bytes (a binary pick-up's content, or a "
                                   f"binary answer), got {type_name(record.get('content'))}", "data")
        content: bytes | Blob = record["content"]
        if self.services.dry_run:
            self.services.log_dry_run(self.name, f"write {name} ({len(content)} bytes) to {self.shown}")
            return record
        target = self.storage.join(self.folder, name)
        try:
            with open_binary(content) as source:
                await self.storage.upload(source, target)
        except OSError as e:
            raise FlowRuntimeError(f"cannot write {self.storage.shown(target)}: {e.strerror or e}",
                                   "connector") from None
        return {"name": name, "path": self.storage.shown(target), "size": len(content)}

    async def close(self) -> None:
        await self.storage.close()
