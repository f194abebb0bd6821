"""LSP positions (0-based line, UTF-16 code units, what the protocol counts by default) to and from
character offsets into a flow's text, and the word under a position."""

from __future__ import annotations

import re

from lsprotocol import types

from flowlang.source import Source, Span

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def position(source: Source, offset: int) -> types.Position:
    line, col = source.line_col(min(offset, len(source.text)))
    return types.Position(line=line - 1, character=_units(source.line_text(line)[:col - 1]))


def span_range(source: Source, span: Span) -> types.Range:
    return types.Range(start=position(source, span.start), end=position(source, max(span.end, span.start)))


def offset(text: str, pos: types.Position) -> int:
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
        units += _units(ch)
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
