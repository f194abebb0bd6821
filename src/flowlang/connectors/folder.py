"""A folder of binary files: `file(path: "out/", format: "bytes")`. `send {name, content}` writes
`content` (bytes) to `out/NAME`, one file per record (the BLOB half of a file transfer, the other
half being a binary pick-up's {name, path, size, content} records). The name is one file name: a
name with a folder in it, or `..`, is refused."""

from __future__ import annotations

import os
from pathlib import Path

from flowlang.connectors.base import Connection, ConnectorSpec, RunServices
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.values import Value, to_text, type_name


def safe_name(value: Value) -> str:
    name = to_text(value) if value is not None else ""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FlowRuntimeError(f"a file name must be one name without folders, got {name!r}", "data")
    return name


class FolderConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, folder: Path, services: RunServices) -> None:
        super().__init__(name, spec)
        self.folder = folder
        self.services = services

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "list":
            if not self.folder.is_dir():
                return []
            return [{"name": p.name, "size": p.stat().st_size} for p in sorted(self.folder.iterdir()) if p.is_file()]
        if op == "write":
            return await self.send(op, args[0] if args else None, [], {})
        raise FlowRuntimeError(f"a folder of files ({self.folder.name}/) has the operations write and list, "
                               f"not '{op}'", "connector")

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if type(record) is not dict:
            raise FlowRuntimeError(f"a folder of files takes records {{name, content}}, got {type_name(record)}",
                                   "data")
        name = safe_name(record.get("name"))
        if type(record.get("content")) is not bytes:
            raise FlowRuntimeError("a folder of files takes content as bytes (a binary pick-up's content, or a "
                                   f"binary answer), got {type_name(record.get('content'))}", "data")
        content: bytes = record["content"]
        if self.services.dry_run:
            self.services.log_dry_run(self.name, f"write {name} ({len(content)} bytes) to {self.folder.name}/")
            return record
        target = self.folder / name
        tmp = self.folder / f".{name}.part"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)  # a reader never sees half a file
        except OSError as e:
            raise FlowRuntimeError(f"cannot write {target}: {e.strerror}", "connector") from None
        return {"name": name, "path": str(target), "size": len(content)}
