"""String literals: escape decoding and the split of a double-quoted string into text and `{expr}` parts."""

from __future__ import annotations

from flowlang.lazy_dataclass import dataclass

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "{": "{", "}": "}", "'": "'"}


class StringSyntaxError(Exception):
    """A bad escape or an unclosed `{` inside a string; offset is relative to the token start."""

    def __init__(self, message: str, offset: int, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ExprPart:
    code: str
    offset: int  # of the code's first character, from the start of the token (the quote)


def single_quoted(token: str) -> str:
    """Decode a '...' literal: only \\' and \\\\ are escapes."""
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in "'\\":
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


REGEX_ESCAPES = frozenset("sSdDwWbB.()[]+*?|$^/-")  # a pattern's escapes, none of them a string's


def _escape(body: str, i: int) -> tuple[str, int]:
    nxt = body[i + 1] if i + 1 < len(body) else ""
    if nxt in ESCAPES and nxt:
        return ESCAPES[nxt], i + 2
    if nxt == "u":
        digits = body[i + 2 : i + 6]
        if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
            code = int(digits, 16)
            low = _low_surrogate(body, i + 6) if 0xD800 <= code <= 0xDBFF else None
            if low is not None:  # a UTF-16 pair, as JSON and JavaScript write 😀: \ud83d\ude00
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), i + 12
            return chr(code), i + 6
        raise StringSyntaxError("\\u needs four hex digits", i + 1, 2)
    if nxt and nxt in REGEX_ESCAPES:  # "\s+", "\d{4}": a regular expression, written as other languages do
        raise StringSyntaxError(f"unknown escape '\\{nxt}' in a \"...\" string: write a regular expression in single "
                                f"quotes, where a backslash is itself ('\\{nxt}+'), or double it here (\\\\{nxt})",
                                i + 1, 2)
    raise StringSyntaxError(f"unknown escape '\\{nxt}' (use \\\\ for a backslash)", i + 1, 2)


def _low_surrogate(body: str, i: int) -> int | None:
    """The code of a `\\uDC00`-`\\uDFFF` escape at body[i], the second half of a UTF-16 pair."""
    digits = body[i + 2 : i + 6]
    if body[i : i + 2] != "\\u" or len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        return None
    code = int(digits, 16)
    return code if 0xDC00 <= code <= 0xDFFF else None


def _closing_brace(body: str, start: int) -> int:
    """Index of the `}` that closes the `{` at body[start - 1]; single-quoted strings are skipped."""
    depth = 1
    i = start
    while i < len(body):
        ch = body[i]
        if ch == "'":
            i += 1
            while i < len(body) and body[i] != "'":
                i += 2 if body[i] == "\\" else 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise StringSyntaxError("'{' in a string is not closed by '}' (write \\{ for a literal brace)", start - 1, 1)


def double_quoted(token: str) -> list[TextPart | ExprPart]:
    """Split a "..." literal into decoded text parts and raw `{expr}` parts."""
    body = token[1:-1]
    parts: list[TextPart | ExprPart] = []
    text: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            decoded, i = _escape(body, i)
            text.append(decoded)
        elif ch == "{":
            end = _closing_brace(body, i + 1)
            code = body[i + 1 : end]
            if not code.strip():
                raise StringSyntaxError("empty '{}' in a string (write \\{ for a literal brace)", i + 1, 2)
            if text:
                parts.append(TextPart("".join(text)))
                text = []
            parts.append(ExprPart(code, i + 2))
            i = end + 1
        else:
            text.append(ch)
            i += 1
    if text or not parts:
        parts.append(TextPart("".join(text)))
    return parts
