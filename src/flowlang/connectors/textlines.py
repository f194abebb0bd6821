"""A text file's lines in its encoding, for the file connector's line formats (CSV, JSON Lines).

A UTF-8 byte order mark is skipped. A line ends at "\\n" only: a bare carriage return, a form feed or
a Unicode line separator stays inside its line (UTF-16 and UTF-32 included). A byte that is not of the
encoding is, for a strict reader, an error naming the file and the line; a reader that can fail one
record alone (CSV) passes a LineState: the line is given with each bad byte as a mark (a lone
surrogate U+DC00 + byte, which no strict decoding yields) and the line is noted in the state.
Lines are read, decoded and split a chunk (CHUNK bytes, whole lines) at a time, not one by one."""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from flowlang.errors import FlowRuntimeError

BAD_BYTE = "flowlang-bad-byte"  # the codecs error handler that marks bad bytes
MARKS = re.compile("[\udc00-\udcff]")
CHUNK = 1 << 16  # bytes read and decoded at once (memory stays flat)


def _mark(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(chr(0xDC00 + b) for b in error.object[error.start:error.end]), error.end


codecs.register_error(BAD_BYTE, _mark)


@dataclass
class LineState:
    """What a tolerant read found: the lines with bad bytes, in order, each noted before its chunk is given."""

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


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
               (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def wide_text(head: bytes) -> str | None:
    """Why the start of a file read as UTF-8 is UTF-16 or UTF-32 text, or None. Excel's "Unicode Text",
    PowerShell 5's `>` and many Windows tools save UTF-16 with a byte order mark: it failed as 'the bytes
    ff fe are not utf-8 text (give the file's encoding, e.g. encoding: "cp1252" or "latin-1")', a hint
    that gives mojibake; without the mark its bytes are UTF-8 with a NUL after each character, read
    without a word into records such as {"i\u0000d\u0000": ...}."""
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            return (f"the file starts with a {encoding.upper()} byte order mark ({bom.hex(' ')}): it is "
                    f'{encoding.upper()} text, not UTF-8; give encoding: "{encoding}"')
    probe = head[:64]
    if len(probe) >= 8 and probe.count(0) * 2 >= len(probe) - 1:
        if all(b == 0 for b in probe[1::2]) and all(probe[0::2]):
            encoding = "utf-16-le"
        elif all(b == 0 for b in probe[0::2]) and all(probe[1::2]):
            encoding = "utf-16-be"
        else:
            return None
        return (f"every other byte of the file's start is a NUL byte ({probe[:8].hex(' ')} ...): it is UTF-16 "
                f'text without a byte order mark, not UTF-8; give encoding: "{encoding}"')
    return None


def lines(fh: IO[bytes], encoding: str, name: str) -> Iterator[str]:
    """The file's lines, each with its "\\n" (the last one may have none); a bad byte is a data error
    (raised once the lines before it are given)."""
    for chunk in line_chunks(fh, encoding, name):
        yield from chunk


def line_chunks(fh: IO[bytes], encoding: str, name: str, state: LineState | None = None) -> Iterator[list[str]]:
    """The file's lines (as lines() gives them), a chunk of about CHUNK bytes at a time: decoded and split
    a chunk at once, not a line at a time. Without a state a bad byte is a data error, raised after the
    lines before it are given; with one it is marked in its line and the line noted in the state before
    its chunk is given."""
    sig = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if not splits_on_newline_bytes(encoding):  # UTF-16/32: a newline is more than one byte
        yield from _whole(fh.read(), sig, encoding, name, state)
        return
    head: bytes | None = fh.read(CHUNK)
    if head and sig == "utf-8-sig":
        wide = wide_text(head)
        if wide is not None:
            raise FlowRuntimeError(f"{name}: {wide}", "data")
    decoder = codecs.getincrementaldecoder(sig)(errors="strict")
    number = 0  # lines given
    rest: list[bytes] = []  # the start of a line that goes on in the next block
    while True:
        if head is not None:
            block, head = head, None
        else:
            block = fh.read(CHUNK)
        if not block:  # the end of the file: what is left is its last line, with no "\n"
            data, final, rest = b"".join(rest), True, []
        else:
            cut = block.rfind(b"\n") + 1
            if not cut:  # no line ends in this block: its line goes on in the next
                rest.append(block)
                continue
            data = b"".join((*rest, block[:cut])) if rest else block[:cut]
            rest = [block[cut:]] if cut < len(block) else []
            final = False
        if data:
            saved = decoder.getstate()
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError:
                decoder.setstate(saved)
                chunk, problem = _by_line(decoder, data, number, sig, encoding, name, state)
                number += len(chunk)
                if chunk:
                    yield chunk
                if problem is not None:
                    raise problem from None
            else:
                chunk = split_lines(text)
                number += len(chunk)
                yield chunk
        if final:
            break
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:  # only for an encoding that keeps state across lines
        raise FlowRuntimeError(bad_bytes_message(name, max(number, 1), e.object[e.start:e.end], encoding),
                               "data") from None


def split_lines(text: str) -> list[str]:
    """The text's lines, each ending at "\\n" only (str.splitlines, faster, also ends lines at a bare CR and
    at other separators: it serves for ASCII text with none; a CR before a "\\n" stays in its line)."""
    if text.isascii() and "\x0b" not in text and "\x0c" not in text and "\x1c" not in text and "\x1d" not in text \
            and "\x1e" not in text and ("\r" not in text or text.count("\r") == text.count("\r\n")):
        return text.splitlines(True)
    return io.StringIO(text, newline="\n").readlines()


def _by_line(decoder: codecs.IncrementalDecoder, data: bytes, number: int, sig: str, encoding: str, name: str,
             state: LineState | None) -> tuple[list[str], FlowRuntimeError | None]:
    """A chunk with a bad byte, decoded a line at a time: its lines (up to the bad one, without a state)
    and the error to raise after them (without a state)."""
    out: list[str] = []
    for at, raw in enumerate(io.BytesIO(data), number + 1):
        try:
            line = decoder.decode(raw, final=not raw.endswith(b"\n"))
        except UnicodeDecodeError as e:
            if state is None:
                return out, FlowRuntimeError(bad_bytes_message(name, at, e.object[e.start:e.end], encoding), "data")
            decoder.reset()
            line = raw.decode(sig if at == 1 else encoding, errors=BAD_BYTE)
            state.bad.append((at, marked_bytes(line)))
        out.append(line)
    return out, None


def _whole(data: bytes, sig: str, encoding: str, name: str, state: LineState | None) -> Iterator[list[str]]:
    """A UTF-16 or UTF-32 file's lines. One that is no such text (a UTF-8 file read with encoding: "utf-16")
    has line-end bytes that decode as no line end and no NUL byte, which every comma, brace and line end
    of such text has: it read without a word as one line of CJK characters, a CSV's header and no record,
    and the run was ok. That is a data error naming what the file is likely to be."""
    try:
        text = data.decode(sig)
        if b"\n" in data and "\n" not in text and b"\0" not in data:
            raise FlowRuntimeError(f"{name}: the file is not {encoding} text: its line ends (0a bytes) read as no "
                                   f"line end in {encoding}, and it has no NUL byte, which each comma and line "
                                   "end of such text has (is it UTF-8? leave encoding out, or give the file's own)",
                                   "data")
    except UnicodeDecodeError as e:
        if state is None:
            at = data[:e.start].decode(sig, errors="replace").count("\n") + 1
            raise FlowRuntimeError(bad_bytes_message(name, at, e.object[e.start:e.end], encoding),
                                   "data") from None
        text = data.decode(sig, errors=BAD_BYTE)
        for number, line in enumerate(io.StringIO(text, newline="\n"), 1):
            if MARKS.search(line):
                state.bad.append((number, marked_bytes(line)))
    found = io.StringIO(text, newline="\n")
    while chunk := found.readlines(CHUNK):
        yield chunk


def splits_on_newline_bytes(encoding: str) -> bool:
    """True when every b"\\n" byte in the encoding's text is a newline (ASCII-compatible encodings)."""
    return "\n".encode(encoding) == b"\n" and "\u2028".encode(encoding, errors="ignore").count(b"\n") == 0 \
        and not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
