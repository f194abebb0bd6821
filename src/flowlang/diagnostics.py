"""Diagnostics: what the checker and parser report, and their plain-text rendering (no I/O);
`printable`, the one rule for text from data that reaches a terminal or a text log; and
`did_you_mean`, the one rule for suggesting a close name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum

from flowlang.lazy_dataclass import dataclass
from flowlang.source import Source, Span

# C0 and C1 control characters, DEL, line and paragraph separators and bidirectional overrides: each
# could end a log line early, move the cursor, or show text other than what is there.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")  # and lone surrogates
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: str, *, lines: bool = False) -> str:
    """Text with every control character written as an escape (`\\n`, `\\x1b`, `\\u202e`): a value from
    data can neither forge a log line nor send escape sequences to a terminal. With lines=True the
    newlines of a multi-line message are kept (and only they)."""
    if _CONTROLS.search(text) is None:
        return text
    if lines:
        return "\n".join(_CONTROLS.sub(_escape, part) for part in text.split("\n"))
    return _CONTROLS.sub(_escape, text)


BROKEN_TEXT = "it is half of a UTF-16 surrogate pair, not a character (broken text in the data)"


def is_broken_text(error: UnicodeEncodeError) -> bool:
    """Whether what could not be encoded is lone surrogates (JSON's "\\ud800"): in no encoding."""
    return all("\ud800" <= c <= "\udfff" for c in error.object[error.start:error.end])


def unencodable(error: UnicodeEncodeError, encoding: str, where: str) -> str:
    """Why a value's text cannot be written to `where`: a lone surrogate (half of a UTF-16 pair, from
    broken text at the source) is in no encoding; any other character only in another one."""
    bad = error.object[error.start:error.end]
    if is_broken_text(error):
        return f"cannot write {bad!r} to {where}: {BROKEN_TEXT}"
    return f'cannot write {bad!r} to {where}: it is not {encoding} text (give another encoding, e.g. encoding: "utf-8")'


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate `name` was most likely meant to be (a close spelling, else the same name in another
    case), or None."""
    pool = sorted({c for c in candidates if c and c != name})
    import difflib  # only when there is a mistake to name

    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """`did you mean 'x'?` for the closest candidate, or None."""
    meant = closest(name, candidates)
    return f"did you mean '{meant}'?" if meant else None


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
    note: str | None = None  # lines shown below the block: a second place (a connector file's TOML line)

    @property
    def line(self) -> int:
        return self.source.line_col(self.span.start)[0]

    @property
    def column(self) -> int:
        return self.source.line_col(self.span.start)[1]

    def headline(self) -> str:
        return f"{self.source.location(self.span)}: {self.severity.value}: {self.message}"

    def render(self) -> str:
        """rustc-like block: headline, the source line with a caret, the hint, and the note."""
        block = render_block(self.headline(), self.source, self.span, self.hint)
        return f"{block}\n{self.note}" if self.note else block


def render_block(headline: str, source: Source, span: Span, hint: str | None = None) -> str:
    line, col = source.line_col(span.start)
    text = source.line_text(line)
    end_line, end_col = source.line_col(max(span.start, span.end - 1))
    width = max(1, end_col - col + 1) if end_line == line and span.end > span.start else 1
    width = min(width, max(1, len(text) - col + 1))
    gutter = str(line)
    pad = " " * len(gutter)
    lines = [headline]
    if text or line - source.first_line + 1 <= len(source.text.splitlines()) + 1:
        lines.append(f" {gutter} | {text}")
        lines.append(f" {pad} | {' ' * (col - 1)}{'^' * width}")
    if hint:
        lines.append(f" {pad} = hint: {hint}")
    return "\n".join(lines)


def render_all(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> str:
    ordered = sorted(diagnostics, key=lambda d: (d.source.name, d.span.start))
    return "\n\n".join(d.render() for d in ordered)
