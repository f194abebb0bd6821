"""LSP positions (0-based line, and a column in the units the server and the editor agreed on at
initialize: UTF-16 code units by default, UTF-8 bytes or code points when the editor prefers them) to and
from character offsets into a flow's text, and the word under a position."""

from __future__ import annotations

import re

from lsprotocol import types

from flowlang.source import Source, Span

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


UTF16 = "utf-16"


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def position(source: Source, offset: int, encoding: str = UTF16) -> types.Position:
    line, col = source.line_col(min(offset, len(source.text)))
    return types.Position(line=line - 1, character=_units(source.line_text(line)[:col - 1], encoding))


def span_range(source: Source, span: Span, encoding: str = UTF16) -> types.Range:
    return types.Range(start=position(source, span.start, encoding),
                       end=position(source, max(span.end, span.start), encoding))


def offset(text: str, pos: types.Position, encoding: str = UTF16) -> int:
    """The character offset of an LSP position (past the end of a line: the line's end)."""
    start = 0
    for _ in range(pos.line):
        nl = text.find("\n", start)
        if nl < 0:
            return len(text)
        start = nl + 1
    end = text.find("\n", start)
    line = text[start:] if end < 0 else text[start:end]
    units = 0
    for i, ch in enumerate(line):
        if units >= pos.character:
            return start + i
        units += _units(ch, encoding)
    return start + len(line)


def word_at(text: str, at: int) -> tuple[str, int, int] | None:
    """(word, start, end) of the name touching offset `at`, if any."""
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line = text[line_start:] if line_end < 0 else text[line_start:line_end]
    for m in WORD.finditer(line):
        if m.start() <= at - line_start <= m.end():
            return m.group(), line_start + m.start(), line_start + m.end()
    return None
