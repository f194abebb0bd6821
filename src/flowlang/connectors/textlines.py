"""A text file's lines in its encoding, for the file connector's line formats (CSV, JSON Lines).

A UTF-8 byte order mark is skipped. A line ends at "\\n" only: a bare carriage return, a form feed or
a Unicode line separator stays inside its line (UTF-16 and UTF-32 included). A byte that is not of the
encoding is, for a strict reader, an error naming the file and the line; a reader that can fail one
record alone (CSV) passes a LineState: the line is given with each bad byte as a mark (a lone
surrogate U+DC00 + byte, which no strict decoding yields) and the line is noted in the state."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from flowlang.errors import FlowRuntimeError

BAD_BYTE = "flowlang-bad-byte"  # the codecs error handler that marks bad bytes
MARKS = re.compile("[\udc00-\udcff]")


def _mark(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(chr(0xDC00 + b) for b in error.object[error.start:error.end]), error.end


codecs.register_error(BAD_BYTE, _mark)


@dataclass
class LineState:
    """Where a tolerant read is: the number of the last line given, and the lines with bad bytes."""

    number: int = 0
    bad: list[tuple[int, bytes]] = field(default_factory=list)  # (line number, its bad bytes)


def marked_bytes(text: str) -> bytes:
    """The bad bytes marked in a text, in order."""
    return bytes(ord(c) - 0xDC00 for c in MARKS.findall(text))


def unmarked(text: str) -> str:
    """A text with each bad-byte mark as U+FFFD (the replacement character): storable, printable."""
    return MARKS.sub("\ufffd", text)


def bad_bytes_message(name: str, line: int, data: bytes, encoding: str) -> str:
    return (f"{name} line {line}: the bytes {data.hex(' ')} are not {encoding} text (give the file's "
            f'encoding, e.g. encoding: "cp1252" or "latin-1")')


def lines(fh: IO[bytes], encoding: str, name: str, state: LineState | None = None) -> Iterator[str]:
    """The file's lines, each with its "\\n" (the last one may have none). Without a state a bad byte is
    a data error; with one it is marked in its line and noted in the state."""
    sig = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if not splits_on_newline_bytes(encoding):  # UTF-16/32: a newline is more than one byte
        yield from _whole(fh.read(), sig, encoding, name, state)
        return
    decoder = codecs.getincrementaldecoder(sig)(errors="strict")
    number = 0
    for number, raw in enumerate(fh, 1):
        try:
            line = decoder.decode(raw, final=not raw.endswith(b"\n"))
        except UnicodeDecodeError as e:
            if state is None:
                raise FlowRuntimeError(bad_bytes_message(name, number, e.object[e.start:e.end], encoding),
                                       "data") from None
            decoder.reset()
            line = raw.decode(sig if number == 1 else encoding, errors=BAD_BYTE)
            state.bad.append((number, marked_bytes(line)))
        if state is not None:
            state.number = number
        yield line
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:  # only for an encoding that keeps state across lines
        raise FlowRuntimeError(bad_bytes_message(name, max(number, 1), e.object[e.start:e.end], encoding),
                               "data") from None


def _whole(data: bytes, sig: str, encoding: str, name: str, state: LineState | None) -> Iterator[str]:
    try:
        text = data.decode(sig)
    except UnicodeDecodeError as e:
        if state is None:
            at = data[:e.start].decode(sig, errors="replace").count("\n") + 1
            raise FlowRuntimeError(bad_bytes_message(name, at, e.object[e.start:e.end], encoding),
                                   "data") from None
        text = data.decode(sig, errors=BAD_BYTE)
    start = 0
    number = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end]
        start = end
        number += 1
        if state is not None:
            if MARKS.search(line):
                state.bad.append((number, marked_bytes(line)))
            state.number = number
        yield line


def splits_on_newline_bytes(encoding: str) -> bool:
    """True when every b"\\n" byte in the encoding's text is a newline (ASCII-compatible encodings)."""
    return "\n".encode(encoding) == b"\n" and "\u2028".encode(encoding, errors="ignore").count(b"\n") == 0 \
        and not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
