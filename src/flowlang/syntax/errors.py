"""Turns Lark's parse errors into flowlang syntax diagnostics with human token names."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from flowlang.diagnostics import Diagnostic
from flowlang.errors import FlowSyntaxError
from flowlang.source import Source, Span
from flowlang.syntax.grammar import parser
from flowlang.syntax.keywords import block_openers, keyword_terminals
from flowlang.syntax.lessons import teach
from flowlang.syntax.transformer import STRAY_END, stray_middle

EXPRESSION_STARTS = {"NAME", "INT", "DQ_STRING", "LSQB", "LBRACE"}
HUMAN = {
    "NAME": "a name",
    "INT": "a number",
    "DECIMAL": "a number",
    "DQ_STRING": "a string",
    "SQ_STRING": "a string",
    "_NL": "the end of the line",
    "$END": "the end of the input",
    "LOG_LEVEL": "a log level",
}


def _literal(terminal: str) -> str | None:
    for term in parser().terminals:
        if term.name == terminal and term.pattern.type == "str":
            return f"`{term.pattern.value}`"
    return None


def human(terminal: str) -> str:
    return HUMAN.get(terminal) or _literal(terminal) or terminal.lower()


def describe_token(token: Token) -> str:
    if token.type in ("$END", "_NL"):
        return HUMAN[token.type]
    if token.type in ("DQ_STRING", "SQ_STRING"):
        return f"the string {token}"
    return f"`{token}`"


OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "DOT", "LSQB", "LESSTHAN", "MORETHAN", "IN", "NOT",
             "AND", "OR", "COALESCE", "EQ", "NE", "LE", "GE"}
CLOSERS = ["COMMA", "RPAR", "RSQB", "RBRACE", "COLON"]


def _join(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


# Words a parser accepts only where any name is (after `.`, an object key, an argument's name):
# there every keyword is a name too, so the list says "a name" once, not each of 40 keywords.
ONLY_AS_NAMES = {"EACH", "THEN", "ON", "PARALLEL"}


def describe_expected(expected: set[str]) -> str:
    expected = expected - set(parser().lexer_conf.ignore)
    if "NAME" in expected and expected >= ONLY_AS_NAMES:
        expected = expected - set(keyword_terminals())
    if expected >= EXPRESSION_STARTS:
        rest = expected - EXPRESSION_STARTS - {"DECIMAL", "SQ_STRING", "LPAR", "MINUS", "NOT", "IF", "TRUE",
                                               "FALSE", "NULL"}
        return _join(["an expression", *sorted(human(e) for e in rest)])
    if len(expected & OPERATORS) >= 4:
        words = sorted(human(e) for e in expected - OPERATORS - {"_NL", *CLOSERS})
        closers = [human(e) for e in CLOSERS if e in expected]
        tail = ["the end of the line"] if "_NL" in expected else []
        return _join(["an operator", *words, *closers, *tail])
    names = sorted({human(e) for e in expected})
    if len(names) > 8:
        return ", ".join(names[:8]) + " or another token"
    return _join(names)


def open_blocks(text: str, upto: int) -> list[tuple[str, int]]:
    """Blocks opened and not yet closed before offset `upto`: (opener, offset), outermost first."""
    stack: list[tuple[str, int]] = []
    openers = block_openers()
    prev = "_NL"
    if_on_line = False  # the line starts with `if`: a block, unless a `then` makes it an expression
    try:
        for token in parser().lex(text, dont_ignore=False):
            if token.start_pos is not None and token.start_pos >= upto:
                break
            at_line_start = prev == "_NL"
            if at_line_start:
                if_on_line = token.type == "IF"
            if at_line_start and token.type in openers:
                stack.append((openers[token.type], token.start_pos or 0))
            elif at_line_start and token.type == "END" and stack:
                stack.pop()
            elif token.type == "THEN" and if_on_line and stack:  # `if c then a else b`, a value
                stack.pop()
                if_on_line = False
            prev = token.type
    except UnexpectedInput:
        pass
    return stack


def block_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """The lines of `text` that hold a token, each lexed alone (so a bracket a broken line leaves open does
    not hide the `end` lines after it): (line number, its indentation, what it does to blocks: the opener of
    the block it opens, "end" when it closes one, "" when neither). A line that starts with a block's keyword
    opens one (an `if` with a `then` on its line is a value), one that starts with `end` closes one (`end =
    ...` or `end.x` in a map body names a field)."""
    openers = block_openers()
    for number, line in enumerate(text.split("\n"), 1):
        try:
            tokens = [t for t in parser().lex(line, dont_ignore=False) if t.type != "_NL"]
        except UnexpectedInput:
            continue
        if not tokens:
            continue
        first, following = tokens[0].type, tokens[1].type if len(tokens) > 1 else ""
        lead = line[:len(line) - len(line.lstrip(" \t"))]
        if following in ("EQUAL", "DOT"):
            yield number, lead, ""
        elif first in openers and not (first == "IF" and any(t.type == "THEN" for t in tokens)):
            yield number, lead, openers[first]
        else:
            yield number, lead, "end" if first == "END" else ""


def blocks_open_at_end(text: str) -> int:
    """How many blocks are open at the end of `text`, counted line by line (block_lines)."""
    depth = 0
    for _, _, does in block_lines(text):
        if does == "end":
            depth -= 1 if depth else 0
        elif does:
            depth += 1
    return depth


def end_indented_elsewhere(text: str) -> tuple[str, int, int, int, int] | None:
    """When an `end` lines up with a block outside the innermost one open before it (`if` at column 3 in a
    `for each` at column 1, then one `end` at column 1), the block whose `end` is likely missing: (its
    opener, line, column, the `end`'s line, column). The lines are read as blocks_open_at_end reads them
    (block_lines); a file indented with tabs and spaces mixed, or not indented, gives None."""
    stack: list[tuple[str, int, int]] = []  # opener, line, indentation
    indents: set[str] = set()
    for number, lead, does in block_lines(text):
        indents.update(lead)
        if does and does != "end":
            stack.append((does, number, len(lead)))
        elif does and stack:
            inner, line_no, indent = stack[-1]
            if len(lead) < indent and any(ind == len(lead) for _, _, ind in stack[:-1]):
                mixed = len(indents) > 1  # tabs and spaces: the columns say nothing
                return None if mixed else (inner, line_no, indent + 1, number, len(lead) + 1)
            stack.pop()
    return None


def _in_brackets(text: str, pos: int) -> bool:
    """Whether the innermost bracket open at `pos` on its line is a `[` that follows a value (an index)."""
    line = text[text.rfind("\n", 0, pos) + 1:pos]
    depth: list[int] = []
    for i, ch in enumerate(line):
        if ch in "([{":
            depth.append(i)
        elif ch in ")]}" and depth:
            depth.pop()
    if not depth or line[depth[-1]] != "[":
        return False
    before = line[:depth[-1]].rstrip()
    return bool(before) and (before[-1].isalnum() or before[-1] in "_)]\"'")


def last_token_end(text: str) -> int:
    """Where the last real token ends (comments and blank lines after it do not count)."""
    end = 0
    try:
        for token in parser().lex(text, dont_ignore=False):
            if token.type != "_NL" and token.end_pos is not None:
                end = token.end_pos
    except UnexpectedInput:
        pass
    return end


def syntax_error(source: Source, err: UnexpectedInput, text: str) -> FlowSyntaxError:
    """A FlowSyntaxError for a Lark error on `text` (the source text with its final newline)."""
    if isinstance(err, UnexpectedToken):
        return _unexpected_token(source, err, text)
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        hint: str | None = "strings end on the line they start; write \\n for a newline"
        if ch in "\"'":
            message = "this string is not closed on its line"
        else:
            message = f"unexpected character {ch!r}"
            hint = _character_hint(text, pos, ch)
        diag = Diagnostic("syntax", message, source, Span(pos, pos + 1), hint)
        return FlowSyntaxError([diag])
    pos = getattr(err, "pos_in_stream", None) or len(source.text)
    return FlowSyntaxError([Diagnostic("syntax", "unexpected end of input", source, Span(pos, pos))], True)


# operators of C-like languages that flowlang spells otherwise (the lexer has no token for them)
OTHER_OPERATORS = {"&&": "flowlang writes `and`: a and b", "||": "flowlang writes `or`: a or b",
                   "!": "flowlang writes `not`: not a (and a != b)", "&": "flowlang writes `and`: a and b",
                   "|": "flowlang writes `or`: a or b",
                   "?": "flowlang writes a conditional as: if c then a else b (and a ?? b for a default)"}
CURLY_QUOTES = {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u00ab": '"',
                "\u00bb": '"'}


def _character_hint(text: str, pos: int, ch: str) -> str | None:
    """What to write instead of a character no token starts with: a typographic quote (pasted from a
    document), or a letter outside ASCII in a name (`o.größe`, a field named in another language)."""
    pair = text[pos:pos + 2]
    if pair in OTHER_OPERATORS:
        return OTHER_OPERATORS[pair]
    if ch in OTHER_OPERATORS:
        return OTHER_OPERATORS[ch]
    if ch == "`":
        return "strings are written in double quotes, \"total: {x}\" putting values in, or in single quotes, 'as is'"
    if ch in CURLY_QUOTES:
        return f"write strings with straight quotes: {CURLY_QUOTES[ch]}...{CURLY_QUOTES[ch]}"
    if not ch.isalnum():
        return None
    start, end = pos, pos + 1
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    word = text[start:end]
    rule = "names are written with A-Z, a-z, 0-9 and _"
    owner = re.search(r"[A-Za-z_][A-Za-z0-9_.]*$", text[:start - 1]) if start > 0 and text[start - 1] == "." else None
    if owner is not None:
        return f'{rule}; for the field {word!r} write {owner.group()}["{word}"]'
    if text[end:].lstrip(" \t").startswith(":") and not text[end:].lstrip(" \t").startswith("::"):
        return f'{rule}; for the key {word!r} write "{word}": ...'
    return rule


# the words that start a statement, which a line of a `map` body (`path = value`) may also start with,
# as a field's name: `emit out` there is a statement after a map whose `end` is missing
STATEMENT_WORDS = frozenset("emit send let call lookup log if for try skip stop fail return map".split())


def _unclosed_map(source: Source, text: str, pos: int, blocks: list[tuple[str, int]]) -> tuple[str, str] | None:
    """The message of a statement inside a `map` body, read there as a field (`emit out` gave "expected
    `.` or `=`, found `out`"): the map's `end` is likely missing."""
    if not blocks or blocks[-1][0] != "map":
        return None
    line_start = text.rfind("\n", 0, pos) + 1
    words = text[line_start:pos].split()
    if not words or words[0] not in STATEMENT_WORDS or len(words) != 1:
        return None
    line, col = source.line_col(blocks[-1][1])
    rest = text[pos:text.find("\n", pos) if "\n" in text[pos:] else len(text)].strip()
    if words[0] == "let" and re.match(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\s*=(?!=)", rest):  # `let id = r.a` for a field
        return (f"a line of the body of the `map` opened at {line}:{col} is `field = value`, without `let` (or is "
                "that map's `end` missing?)", f"{rest}  (the map builds its object from these lines)")
    return (f"`{words[0]} ...` is a statement, but this line is in the body of the `map` opened at {line}:{col}, "
            f"whose lines are `field = value`: is that map's `end` missing?",
            f"close the map with `end` before this line (a field named {words[0]} is written `{words[0]} = ...`)")


def _unexpected_token(source: Source, err: UnexpectedToken, text: str) -> FlowSyntaxError:
    token = err.token
    at_end = token.type == "$END"
    pos = last_token_end(text) if at_end else (token.start_pos or 0)
    if token.type == "_NL":
        pos = token.start_pos or 0
    expected = set(err.expected)
    if err.interactive_parser is not None:
        try:
            expected = set(err.interactive_parser.accepts()) or expected  # type: ignore[no-untyped-call]
        except Exception:  # accepts() re-feeds tokens; any failure keeps Lark's own set
            pass
    blocks = open_blocks(text, pos if not at_end else len(text))
    found = describe_token(token)
    hint = None
    if "END" in expected and blocks and (at_end or not (expected - {"END", "ELSE", "ON"}) or token.type in (
            "$END",)):
        opener, where = blocks[-1]
        line, col = source.line_col(where)
        message = f"expected `end` to close `{opener}` opened at {line}:{col}, found {found}"
        if at_end:
            astray = end_indented_elsewhere(text)
            if astray is not None:
                inner, inner_line, inner_col, end_line, end_col = astray
                hint = (f"the `end` at {end_line}:{end_col} lines up with an outer block, so it was read as the end "
                        f"of the `{inner}` opened at {inner_line}:{inner_col}: is that block's own `end` missing?")
    elif token.type in ("END", "ELSE", "ON") and not blocks and text[:pos].rstrip(" \t")[-1:] in ("", "\n"):
        message = STRAY_END if token.type == "END" else stray_middle(str(token))
    else:
        message = f"expected {describe_expected(expected)}, found {found}"
        if token.type == "NAME" and "_NL" in expected:
            hint = "one statement per line; did you forget an operator or a comma?"
        unclosed = _unclosed_map(source, text, pos, blocks)
        if unclosed is not None:
            message, hint = unclosed
    if token.type == "LOG_LEVEL":
        message = f"`{token}` is a log level here; expected {describe_expected(expected)}"
    end = pos + max(1, len(str(token))) if not at_end and token.type != "_NL" else pos + 1
    span = Span(pos, end)
    if token.type == "COLON" and hint is None and _in_brackets(text, pos):  # s[0:2], a slice of Python's
        hint = "flowlang has no slices: substr(s, start, length) for a text, and for a list a comprehension " \
               "over range(a, b): [xs[i] for i in range(0, 2)]"
    lesson = teach(source, text, token, expected, pos)
    if lesson is not None:
        message, hint, span = lesson.message, lesson.hint, lesson.span or span
    diag = Diagnostic("syntax", message, source, span, hint)
    return FlowSyntaxError([diag], incomplete=at_end)
