"""A text file written in whole records: each record's text is encoded when it is written (so a
character the encoding lacks fails that record alone) and buffered; a flush pushes the buffer with
os.write. A flush that fails (a full disk, a file size limit) cuts the file back to where the last
good flush ended, so the file never ends in a torn line: it holds whole records only."""

from __future__ import annotations

import codecs
import errno
import os
from pathlib import Path

DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})  # no room: the disk, a quota, RLIMIT_FSIZE
FLUSH_AT = 1 << 20  # bytes buffered before a flush without waiting for the run's (memory stays flat)


class WholeRecords:
    def __init__(self, path: Path, append: bool, encoding: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self.fd = os.open(path, flags, 0o666)
        self.good = os.fstat(self.fd).st_size  # where the last whole record ends
        if codecs.lookup(encoding).name == "utf-8":
            self.encode = str.encode  # the common case, without an encoder object per call
        else:
            encoder = codecs.getincrementalencoder(encoding)()
            if self.good:
                encoder.setstate(0)  # appending: no second byte order mark
            self.encode = encoder.encode  # type: ignore[assignment]
        self.pending: list[bytes] = []
        self.size = 0

    def write(self, text: str) -> int:
        data = self.encode(text)
        self.pending.append(data)
        self.size += len(data)
        if self.size >= FLUSH_AT:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending.clear()
        self.size = 0
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self.fd, view[written:])
        except OSError:
            try:
                os.ftruncate(self.fd, self.good)  # no torn line: back to the end of the last whole record
            except OSError:
                pass
            raise
        self.good += len(data)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            os.close(self.fd)
