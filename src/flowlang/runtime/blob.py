"""Binary data kept in a file: the `bytes` value of a large picked-up file (local, SFTP or S3). To
the language it is `bytes` (its type name, `len`, how it reads in text: `<N bytes>`); connectors
that write bytes copy it in chunks, so a 50 MB transfer does not hold 50 MB in memory. Code that
needs the bytes themselves (base64_encode, a request body) reads them with `whole()`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
IN_MEMORY_MAX = 4 << 20  # a picked-up file up to this size is a plain bytes value


class Blob:
    """A read-only binary value backed by a file that must not change while the run uses it."""

    __slots__ = ("path", "size")

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def chunks(self) -> Iterator[bytes]:
        with self.open() as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def whole(self) -> bytes:
        return self.path.read_bytes()

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def __repr__(self) -> str:
        return f"<{self.size} bytes>"


def binary_value(path: Path, size: int) -> bytes | Blob:
    """A file's content as a value: bytes when small, otherwise a Blob reading the file in place."""
    if size <= IN_MEMORY_MAX:
        return path.read_bytes()
    return Blob(path, size)


def open_binary(value: bytes | Blob) -> BinaryIO:
    """A binary value as a file to read in chunks."""
    if isinstance(value, Blob):
        return value.open()
    import io

    return io.BytesIO(value)


def is_binary(value: object) -> bool:
    return type(value) is bytes or type(value) is Blob
