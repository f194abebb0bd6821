"""`flowlang fmt`: indent blocks by 2 spaces and continuation lines inside brackets by one more level;
everything else (comments, blank lines, the text of each line) is kept as it is."""

from __future__ import annotations

from dataclasses import dataclass

from lark.exceptions import UnexpectedInput

from flowlang.source import Source
from flowlang.syntax import parse
from flowlang.syntax.grammar import parser
from flowlang.syntax.keywords import block_openers
from flowlang.syntax.postlex import CLOSERS, OPENERS

MIDDLE = {"ELSE", "ON"}  # `else`, `else if`, `on error`: one level out, then back in
TARGET_FOLLOWERS = {"EQUAL", "DOT"}  # `end = p.end` in a map body names a field, it closes nothing
INDENT = "  "
LINE_SPACE = " \t\f\r"  # the lexer's spaces, and the \r of a CRLF line end


@dataclass
class LineStart:
    kind: str  # the type of the line's first token
    next_kind: str  # the type of the token after it on the same line ("" when none)
    brackets: int  # levels of open brackets the line sits in


def line_starts(text: str) -> dict[int, LineStart]:
    """For each line that holds code: its first token, the one after it, and how many levels of
    brackets it sits in (brackets opened on one line count as one level; closers that start the
    line are already closed)."""
    tokens = [t for t in parser().lex(text, dont_ignore=False) if t.type != "_NL"]
    starts: dict[int, LineStart] = {}
    stack: list[int] = []  # the line each open bracket was opened on
    last_line = 0
    for i, token in enumerate(tokens):
        line = token.line or 0
        if line != last_line:
            last_line = line
            after = list(stack)
            j = i
            while j < len(tokens) and tokens[j].line == line and tokens[j].type in CLOSERS and after:
                after.pop()
                j += 1
            following = tokens[i + 1].type if i + 1 < len(tokens) and tokens[i + 1].line == line else ""
            starts[line] = LineStart(token.type, following, len(set(after)))
        if token.type in OPENERS:
            stack.append(line)
        elif token.type in CLOSERS and stack:
            stack.pop()
    return starts


def format_text(text: str, name: str = "<flow>") -> str:
    """The text re-indented. Raises FlowSyntaxError when it is not valid flowlang."""
    parse(Source(name, text))
    if text.startswith("\ufeff"):  # a byte order mark (Notepad writes one): kept, and not lexed
        return "\ufeff" + format_text(text[1:], name)
    try:
        starts = line_starts(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput:  # pragma: no cover - parse() accepted it, so the lexer does too
        return text
    # lines as the lexer counts them: at "\n" alone (str.splitlines() also splits at a form feed, U+2028
    # and others inside a comment or a string, and the text it gave back no longer parsed)
    lines = (text[:-1] if text.endswith("\n") else text).split("\n")
    levels: list[int | None] = [None] * len(lines)
    block = 0
    statement = 0  # the level of the statement a continuation line belongs to
    for number in range(1, len(lines) + 1):
        start = starts.get(number)
        if start is None:
            continue
        if start.brackets or start.kind in CLOSERS:  # inside a statement that spans lines
            levels[number - 1] = statement + start.brackets
            continue
        levels[number - 1], block = _level(start, block)
        statement = levels[number - 1] or 0
    out: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip(LINE_SPACE)
        if not stripped:
            out.append("")
            continue
        level = levels[i]
        if level is None:  # a comment: indent it like the code that follows
            level = next((lv for lv in levels[i + 1:] if lv is not None), 0)
        out.append(INDENT * level + stripped)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def _level(start: LineStart, block: int) -> tuple[int, int]:
    """The indentation of a statement's first line, and the block depth after it."""
    statement = start.next_kind not in TARGET_FOLLOWERS
    if start.kind == "END" and statement:
        block = max(0, block - 1)
        return block, block
    if start.kind in MIDDLE and statement:
        return max(0, block - 1), block
    if start.kind in block_openers() and statement:
        return block, block + 1
    return block, block
