"""Diagnostics: what the checker and parser report, and their plain-text rendering (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from flowlang.source import Source, Span


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a script, tied to a place in its source."""

    code: str
    message: str
    source: Source
    span: Span
    hint: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def line(self) -> int:
        return self.source.line_col(self.span.start)[0]

    @property
    def column(self) -> int:
        return self.source.line_col(self.span.start)[1]

    def headline(self) -> str:
        return f"{self.source.location(self.span)}: {self.severity.value}: {self.message}"

    def render(self) -> str:
        """rustc-like block: headline, the source line with a caret, and the hint."""
        return render_block(self.headline(), self.source, self.span, self.hint)


def render_block(headline: str, source: Source, span: Span, hint: str | None = None) -> str:
    line, col = source.line_col(span.start)
    text = source.line_text(line)
    end_line, end_col = source.line_col(max(span.start, span.end - 1))
    width = max(1, end_col - col + 1) if end_line == line and span.end > span.start else 1
    width = min(width, max(1, len(text) - col + 1))
    gutter = str(line)
    pad = " " * len(gutter)
    lines = [headline]
    if text or line <= len(source.text.splitlines()) + 1:
        lines.append(f" {gutter} | {text}")
        lines.append(f" {pad} | {' ' * (col - 1)}{'^' * width}")
    if hint:
        lines.append(f" {pad} = hint: {hint}")
    return "\n".join(lines)


def render_all(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> str:
    ordered = sorted(diagnostics, key=lambda d: (d.source.name, d.span.start))
    return "\n\n".join(d.render() for d in ordered)
