"""A text file written in whole records: each record's text is encoded when it is written (so a
character the encoding lacks fails that record alone) and buffered (UTF-8 is buffered as text, checked
to encode as it is written, and encoded a buffer at a time); a flush pushes the buffer with
os.write. A flush that fails (a full disk, a file size limit) cuts the file back to where the last
good flush ended, so the file never ends in a torn line: it holds whole records only; `cut_back`
counts the records that were cut back so."""

from __future__ import annotations

import codecs
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})  # no room: the disk, a quota, RLIMIT_FSIZE
FLUSH_AT = 1 << 20  # bytes buffered before a flush without waiting for the run's (memory stays flat)


class WholeRecords:
    def __init__(self, path: Path, append: bool, encoding: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self.fd = os.open(path, flags, 0o666)
        self.good = os.fstat(self.fd).st_size  # where the last whole record ends
        # UTF-8 (the common case) is buffered as text and encoded at the flush: a text encodes unless it
        # holds a lone surrogate, which write() checks for; any other encoding is encoded record by record
        self.text = codecs.lookup(encoding).name == "utf-8"
        self.encode: Callable[[str], bytes] = str.encode
        if not self.text:
            encoder = codecs.getincrementalencoder(encoding)()
            if self.good:
                encoder.setstate(0)  # appending: no second byte order mark
            self.encode = encoder.encode
        self.pending: list[Any] = []  # text (UTF-8) or bytes
        self.size = 0  # characters or bytes in `pending`
        self.records = 0  # records in `pending` (a header or a bracket is not one)
        self.cut_back = 0  # records a failed flush cut back from the file

    def write_frame(self, text: str) -> None:
        """Write text that is not a record (a CSV header, a JSON list's brackets)."""
        self.write(text)
        self.records -= 1

    def write(self, text: str) -> int:
        if self.text:
            if not text.isascii():
                text.encode()  # a lone surrogate fails here, before anything of the record is buffered
            self.pending.append(text)
            self.size += len(text)
        else:
            data = self.encode(text)
            self.pending.append(data)
            self.size += len(data)
        self.records += 1
        if self.size >= FLUSH_AT:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if not self.pending:
            return
        data = "".join(self.pending).encode() if self.text else b"".join(self.pending)
        self.pending.clear()
        self.size = 0
        records, self.records = self.records, 0
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self.fd, view[written:])
        except OSError:
            try:
                os.ftruncate(self.fd, self.good)  # no torn line: back to the end of the last whole record
                os.lseek(self.fd, self.good, os.SEEK_SET)  # and write on from there, not past a hole of NULs
            except OSError:
                pass
            self.cut_back += max(records, 0)
            raise
        self.good += len(data)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            os.close(self.fd)
