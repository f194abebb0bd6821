"""Source text and spans: a flow's text, its name, and line/column lookup on demand."""

from __future__ import annotations

import bisect
import re
from functools import cached_property

from flowlang.lazy_dataclass import dataclass

NEWLINE = re.compile("\n")
MAX_SOURCE = 2_000_000  # characters a flow may have (parse refuses more; a flow is a script, not data)


def lines_of(text: str) -> list[str]:
    """The lines of a text as flowlang reads them (a flow, JSON Lines, statements piped to the REPL):
    each ends at a line feed alone, a CR before it dropped. U+2028, U+2029, U+0085 and the other
    characters str.splitlines() takes for line ends are text inside a line (a string may hold them)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range of character offsets into one Source."""

    start: int
    end: int

    def cover(self, other: Span) -> Span:
        return Span(min(self.start, other.start), max(self.end, other.end))


@dataclass(frozen=True)
class Source:
    """The text of one flow (a file, a REPL input or an embedded string) and its display name."""

    name: str
    text: str
    path: str | None = None
    first_line: int = 1  # the line number of the text's first line (a REPL input read from a pipe: its line there)

    @cached_property
    def lines(self) -> LineIndex:
        """Where lines start, found on demand (a script refused for its size never pays for it)."""
        return LineIndex(self.text)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        line, col = self.lines.line_col(offset)
        return line + self.first_line - 1, col

    def line_text(self, line: int) -> str:
        """The text of a 1-based line (as line_col numbers it), without its newline."""
        start = self.lines.start_of(line - self.first_line + 1)
        if start is None:
            return ""
        end = self.text.find("\n", start)
        return (self.text[start:] if end < 0 else self.text[start:end]).rstrip("\r")

    def location(self, span: Span) -> str:
        """`name:line:col` of the start of a span."""
        line, col = self.line_col(span.start)
        return f"{self.name}:{line}:{col}"


class LineIndex:
    """The offsets where lines start, scanned only as far as the positions asked for (and then some more:
    the scanned part at least doubles each time, so many lookups stay linear in the text)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        self.scanned = 0  # every line start at or before this offset is in starts

    def scan_to(self, offset: int) -> None:
        if offset < self.scanned or self.scanned >= len(self.text):
            return
        end = min(len(self.text), max(offset + 1, 2 * self.scanned, 4096))
        self.starts.extend(m.end() for m in NEWLINE.finditer(self.text, self.scanned, end))
        self.scanned = end

    def line_col(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        self.scan_to(offset)
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def start_of(self, line: int) -> int | None:
        """The offset where a 1-based line starts, or None past the last line."""
        if line < 1:
            return None
        while len(self.starts) < line and self.scanned < len(self.text):
            self.scan_to(self.scanned)
        return self.starts[line - 1] if line <= len(self.starts) else None
