"""Syntax mistakes a newcomer makes, recognised and explained the way Elm would: `=` in a condition,
`elif`, a Python-style `for x in y:`, a colon after a block's header, a bracket left open, double
quotes inside an interpolation, `lookup` without `as`, a connection's operation or a Python method
called inside an expression (`for each r in f.read()`, `o.email.lower()`). Given the parse error's
token, returns a better message, hint and place, or None (then the generic "expected ..., found ..."
stands)."""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedInput

from flowlang.lazy_dataclass import dataclass
from flowlang.source import Source, Span
from flowlang.syntax.grammar import parser

CLOSING = {"LBRACE": "RBRACE", "LSQB": "RSQB", "LPAR": "RPAR"}
# the first words of statements: a line inside brackets that starts with one was meant as a statement
STATEMENT_STARTS = frozenset({"LET", "EMIT", "SEND", "CALL", "FOR", "LOOKUP", "MAP", "LOG", "FAIL", "SKIP", "STOP",
                              "RETURN", "USE", "PARAM", "FUNCTION", "RUN", "TRY", "END", "FLOW", "IMPORT"})
# the words other loggers use for a level (Python's logging, log4j, syslog), and flowlang's level for each
LOG_LEVEL_WORDS = {"warning": "warn", "critical": "error", "fatal": "error", "err": "error", "trace": "debug",
                   "notice": "info", "verbose": "debug", "information": "info"}
STATEMENT_WORDS = ("let", "emit", "call", "send", "lookup", "log", "if", "for", "map", "try", "fail", "skip",
                   "stop", "return", "use", "param", "import", "run", "function", "flow")
COMPARISONS = frozenset({"LESSTHAN", "MORETHAN", "LE", "GE", "EQ", "NE"})
TEXT = {"LBRACE": "{", "LSQB": "[", "LPAR": "(", "RBRACE": "}", "RSQB": "]", "RPAR": ")"}
LOOP_WORDS = {"continue": "skip", "break": "stop", "next": "skip"}  # C's, Python's and Ruby's loop statements
ELSE_IF_WORDS = ("elif", "elsif", "elseif")  # Python's, Ruby's and PHP's `else if`
BLOCK_HEADERS = ("for", "if", "else", "try", "on", "function", "map")
# the words that close a block in other languages (PHP, Jinja, VBA, shell, Basic): flowlang's blocks all
# close with `end`
CLOSER_WORDS = frozenset({"endif", "endfor", "endforeach", "endwhile", "endfunction", "endfunc", "enddef", "endtry",
                          "endmap", "endloop", "fi", "done", "wend", "esac", "endblock"})
# the first words of other languages' statements that flowlang writes otherwise, and what it writes
FOREIGN_STATEMENTS = {
    "foreach": ("flowlang writes a loop `for each`, in two words", "for each"),
    "for_each": ("flowlang writes a loop `for each`, in two words", "for each"),
    "forEach": ("flowlang writes a loop `for each`, in two words", "for each"),
    "while": ("flowlang has no `while` loop: a loop goes over a list, `for each x in xs` (range(n) gives 0 to n-1), "
              "and `stop` leaves it", None),
    "def": ("flowlang writes a function `function NAME(args)`, its body on the next lines, then `end`", "function"),
    "func": ("flowlang writes a function `function NAME(args)`, its body on the next lines, then `end`", "function"),
    "catch": ("flowlang writes the handler of a `try` block `on error as e`", "on error as e"),
    "except": ("flowlang writes the handler of a `try` block `on error as e`", "on error as e"),
    "rescue": ("flowlang writes the handler of a `try` block `on error as e`", "on error as e"),
}
# Python's methods on text, lists and dicts that a newcomer writes as `x.lower()`; flowlang has
# functions for them (`lower(x)`), so `x.NAME(...)` with one of these is a value, not a connection
VALUE_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "trim", "split", "join", "replace", "startswith", "endswith",
    "starts_with", "ends_with", "contains", "format", "get", "keys", "values", "items", "append", "extend",
    "pop", "count", "index", "sort", "title", "capitalize", "len", "round", "str", "int", "date", "datetime",
})


@dataclass(frozen=True)
class Lesson:
    message: str
    hint: str | None
    span: Span | None = None  # None: the place of the unexpected token


def tokens_before(text: str, pos: int) -> list[Token]:
    found: list[Token] = []
    try:
        for token in parser().lex(text, dont_ignore=False):
            if token.start_pos is not None and token.start_pos >= pos:
                break
            found.append(token)
    except UnexpectedInput:
        pass
    return found


def python_operator(token: Token, before: list[Token]) -> Lesson | None:
    """`a // b` and `a ** b`, Python's floor division and power, which flowlang does not have; `x += 1`,
    `x++` and `a === b` of C-like languages."""
    last = before[-1] if before else None
    if last is None:
        return None
    name = str(before[-2]) if len(before) > 1 and before[-2].type == "NAME" else "x"
    if (token.type in ("_NL", "$END") and len(before) > 1 and last.type == "MINUS" and before[-2].type == "MINUS"
            and before[-2].end_pos == last.start_pos):  # `x--`: the second `-` began a negation
        name = str(before[-3]) if len(before) > 2 and before[-3].type == "NAME" else "x"
        return Lesson("`--` is not an operator: write the new value whole", f"let {name} = {name} - 1",
                      Span(before[-2].start_pos or 0, last.end_pos or 0))
    if last.end_pos != token.start_pos:
        return None
    where = Span(last.start_pos or 0, token.end_pos or 0)
    if last.type in ("PLUS", "MINUS", "STAR", "SLASH") and token.type == "EQUAL":
        return Lesson(f"`{last}=` is not an operator: write the new value whole", f"let {name} = {name} {last} 1",
                      where)
    if last.type in ("PLUS", "MINUS") and token.type == last.type:
        return Lesson(f"`{last}{token}` is not an operator: write the new value whole",
                      f"let {name} = {name} {last} 1", where)
    if last.type in ("EQ", "NE") and token.type == "EQUAL":
        return Lesson(f"`{last}=` is not an operator: `{last}` compares values whole (1 == 1.0, no type coercion)",
                      None, where)
    if last.type != token.type:
        return None
    if token.type == "SLASH":
        return Lesson("`//` is not an operator: `/` divides exactly (7 / 2 is 3.5)",
                      "for the whole part of a division write floor(a / b) (int(a / b) rounds toward zero)",
                      Span(last.start_pos or 0, (token.end_pos or 0)))
    if token.type == "STAR":
        return Lesson("`**` is not an operator: flowlang has no power operator",
                      "multiply (x * x), or write the number (1e6)", Span(last.start_pos or 0, (token.end_pos or 0)))
    return None


def _assign_operator(text: str, token: Token, before: list[Token]) -> Lesson | None:
    """`let x += 1`: the error is at the `+`, where `let x` wants its `=`."""
    end = token.end_pos or 0
    if token.type not in ("PLUS", "MINUS", "STAR", "SLASH") or text[end:end + 1] != "=" or len(before) < 2 \
            or before[-2].type != "LET" or before[-1].type != "NAME":
        return None
    name = str(before[-1])
    return Lesson(f"`{token}=` is not an operator: write the new value whole", f"let {name} = {name} {token} 1",
                  Span(token.start_pos or 0, end + 1))


def _bare_point(text: str, token: Token, before: list[Token], expected: set[str]) -> Lesson | None:
    """`.5` and `1.`, numbers with no digit on one side of their point (JavaScript and Python take them)."""
    last = before[-1] if before else None
    if (token.type == "DOT" and "INT" in expected and "DOT" not in expected
            and re.match(r"\.[0-9]", text[token.start_pos or 0:]) is not None):
        digits = re.match(r"\.[0-9]+", text[token.start_pos or 0:])
        written = digits.group() if digits else ".5"
        return Lesson(f"a number needs a digit before its point: write 0{written}", None,
                      Span(token.start_pos or 0, (token.start_pos or 0) + len(written)))
    if (last is not None and last.type == "DOT" and len(before) > 1 and before[-2].type == "INT"
            and before[-2].end_pos == last.start_pos and (token.type != "NAME" or last.end_pos != token.start_pos)):
        number = f"{before[-2]}."
        return Lesson(f"a number needs a digit after its point: write {number}0 (or {before[-2]})", None,
                      Span(before[-2].start_pos or 0, last.end_pos or 0))
    return None


def teach(source: Source, text: str, token: Token, expected: set[str], pos: int) -> Lesson | None:
    before = tokens_before(text, pos)
    line_no = source.line_col(pos)[0]
    on_line = [t for t in before if t.type != "_NL" and source.line_col(t.start_pos or 0)[0] == line_no]
    first = on_line[0] if on_line else None
    word = str(token)
    line_text = source.line_text(line_no)
    col = source.line_col(pos)[1]
    operator = (python_operator(token, before) or _bare_point(text, token, before, expected)
                or _assign_operator(text, token, before))
    if operator is not None:
        return operator
    if (token.type == "SOFT_TRIGGER" and first is None  # `trigger` is a keyword where a top-level line starts
            and re.match(r"\s*trigger\s+[A-Za-z_]\w*\s*\(", line_text)):
        return Lesson("a `trigger` line stands at the top level of a flow, not inside a block",
                      "move it to the top of the file, after the `flow` line (flowlang serve reads it before any run)")
    if (first is not None and first.type in ("NAME", "SOFT_TRIGGER") and str(first) == "trigger"
            and len(on_line) == 1 and token.type == "NAME" and text[token.end_pos or 0:].lstrip().startswith("(")):
        # the REPL: its inputs are statements and expressions, not a flow file's trigger lines
        return Lesson("a `trigger` line belongs in a flow file, for flowlang serve: the REPL runs no triggers "
                      "(nor does flowlang run)", "write it in the file; :load FILE takes the file's definitions "
                      "and leaves its trigger lines out", Span(first.start_pos or 0, first.end_pos or 0))
    if token.type == "SOFT_TRIGGER" and first is None and re.match(r"\s*trigger\s*(\.\w+)*\s*=(?!=)", line_text):
        return Lesson("an assignment starts with `let`", f"let {line_text.strip()}")
    if token.type == "ELLIPSIS" and before and before[-1].type in ("LBRACE", "COMMA", "LSQB"):
        return Lesson("`...` copies fields only in a `map` body; an object or list written in an expression "
                      "cannot spread",
                      "merge objects with +, the right one winning: o + {total: 2} (lists join with + too: xs + [4])")
    if token.type in COMPARISONS and token.type not in expected and any(t.type in COMPARISONS for t in on_line):
        return Lesson(f"comparisons do not chain: `{word}` cannot follow another comparison",
                      "write each one and join them: 1 < x and x < 10")
    if (first is not None and first.type == "LOG" and len(on_line) == 2 and on_line[1].type == "NAME"
            and str(on_line[1]) in LOG_LEVEL_WORDS):
        level = str(on_line[1])
        return Lesson(f"`{level}` is not a log level: the levels are debug, info, warn and error",
                      f"log {LOG_LEVEL_WORDS[level]} {line_text[col - 1:].strip()}",
                      Span(on_line[1].start_pos or 0, on_line[1].end_pos or 0))
    if (token.type == "COLON" and first is not None and first.type == "NAME" and len(on_line) == 1
            and "EQUAL" in expected and "DOT" in expected and "LET" not in expected):  # `id: r.a` in a map body
        given = line_text[col:].strip()
        return Lesson("a line of a `map` body is `field = value`, not `field: value`", f"{first} = {given or '...'}")
    if token.type == "AS" and first is not None and first.type == "MAP" and "TO" in expected:
        return Lesson("`map` names the object it builds with `to`", line_text.strip().replace(" as ", " to ", 1))
    foreign = _foreign_block_word(token, word, first, on_line, line_text, col, expected)
    if foreign is not None:
        return foreign
    if (first is None and token.type == "NAME" and {"LET", "EMIT"} <= expected and word not in LOOP_WORDS
            and word not in ELSE_IF_WORDS):  # both have lessons of their own below
        # an expression where a statement starts (a flow's lines are statements; the REPL shows values)
        if word in ("print", "echo", "puts", "console", "println", "printf", "display"):
            return Lesson(f"flowlang has no `{word}`: a line of a flow is a statement",
                          "emit x to output a value (a record on stdout), log x to write a log line")
        rest = line_text.strip()
        import difflib  # only when there is a mistake to name

        called = rest[len(word):].lstrip().startswith("(")  # round(x) is a call, not a misspelt `run`
        near = [] if called else difflib.get_close_matches(word, STATEMENT_WORDS, n=1, cutoff=0.7)
        if near:
            return Lesson(f"`{word}` does not start a statement; did you mean `{near[0]}`?",
                          rest.replace(word, near[0], 1))
        if re.match(rf"{re.escape(word)}\s*(\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]*\])*\s*=(?!=)", rest):
            return Lesson("an assignment starts with `let`", f"let {rest}")
        return Lesson(f"a line of a flow starts with a statement (let, emit, call, send, log, if, for each, ...): "
                      f"`{word}` does not start one", f"emit {rest} to output it, or let NAME = {rest} to keep it")
    if token.type == "EQUAL" and "COLON" in expected and before and before[-1].type == "NAME":
        opened = _unclosed_bracket(before, {"RPAR", "RBRACE", "RSQB"}, loose=True)
        name = str(before[-1])
        what = "an object's key" if opened is not None and opened.type == "LBRACE" else "a named argument"
        value = re.match(r"\s*([^,)}\n]*)", text[token.end_pos or 0:])
        shown = value.group(1).strip() if value is not None and value.group(1).strip() else "..."
        return Lesson(f"{what} takes `:`, not `=`", f"{name}: {shown}", Span(token.start_pos or 0, token.end_pos or 0))
    if token.type == "END" and "ON" in expected and first is None:
        return Lesson("a `try` block needs its `on error` part before this `end`",
                      "try ... on error as e ... end (on error runs when the lines after try fail)")
    if token.type == "EQUAL" and any(t.type == "IF" for t in on_line):
        return Lesson("`=` gives a name a value; to compare, write `==`",
                      (line_text[:col - 1] + "==" + line_text[col:]).strip())
    if token.type == "NAME" and word in ELSE_IF_WORDS and first is None:
        return Lesson(f"flowlang has no `{word}`: write `else if`", line_text.strip().replace(word, "else if", 1))
    if first is not None and first.type == "FOR" and len(on_line) == 1 and expected == {"EACH"}:
        return Lesson("a loop is written `for each NAME in LIST`",
                      f"for each {word} in ... (no colon; the block ends with `end`)")
    if (token.type == "LBRACE" and first is not None and str(first) in BLOCK_HEADERS
            and not line_text[col:].strip(" \t}")):
        block = "for each" if first.type == "FOR" else str(first)
        article = "an" if block[0] in "aeiou" else "a"
        return Lesson(f"{article} `{block}` block is not written in braces: its lines follow on the next lines",
                      "and `end` closes it; indentation does not matter")
    depth = sum(1 for t in on_line if t.type in ("LPAR", "LSQB", "LBRACE")) \
        - sum(1 for t in on_line if t.type in ("RPAR", "RSQB", "RBRACE"))
    if token.type == "COLON" and first is not None and str(first) in BLOCK_HEADERS and depth <= 0:
        # (a colon inside brackets, `for each x in xs[0:2]`, is no block's colon)
        return Lesson(f"no colon after a `{first}` line: the block starts on the next line",
                      "blocks end with `end`; indentation does not matter")
    # a bracket left open: the input ends inside it, or a later line starts a new statement inside it
    # (`foo(1,` then `emit x` reads `emit` as an argument's name)
    loose = token.type == "$END" or (first is not None and first.type in STATEMENT_STARTS)
    unclosed = _unclosed_bracket(before, expected, loose)
    if unclosed is not None and (token.type == "$END" or source.line_col(unclosed.start_pos or 0)[0] < line_no):
        close = TEXT[CLOSING[unclosed.type]]
        at = first if first is not None and first.type in STATEMENT_STARTS else token
        found = "the end of the input" if token.type == "$END" else f"`{at}` on line {line_no}"
        start = unclosed.start_pos or 0
        return Lesson(f"this `{unclosed}` is not closed",
                      f"close it with `{close}` before {found}", Span(start, start + 1))
    previous = before[-1] if before else None
    if previous is not None and previous.type == "DQ_STRING" and _open_interpolation(str(previous)):
        return Lesson("a double quote inside `{...}` ends the string",
                      "inside a \"...\" string, write the expression in {...} with single quotes: "
                      "\"{o['id']}\" (or o.id)", Span(previous.end_pos - 1 if previous.end_pos else pos, pos))
    if token.type == "NAME" and word in LOOP_WORDS and first is None:
        return Lesson(f"flowlang has no `{word}`: write `{LOOP_WORDS[word]}`",
                      "skip goes on with the loop's next record; stop leaves the loop")
    if token.type == "SOFT_KEY" or (word == "key" and first is not None and first.type == "FOR"):
        fixed = re.sub(r"(\s+parallel\s+\S+)(\s+key\s+.+?)\s*$", r"\2\1", line_text.rstrip())
        if first is not None and first.type == "FOR" and fixed != line_text.rstrip():
            return Lesson("`key` goes before `parallel` in a `for each` line", fixed.strip())
    if first is not None and first.type == "SEND":
        late = _key_after_once(line_text, col) or _late_send_clause(line_text, col, word)
        if late is not None:
            return late
    if "AS" in expected and first is not None and first.type == "LOOKUP":
        return Lesson("`lookup` names its result with `as`", f"{line_text.strip()} as NAME")
    if token.type == "LPAR":
        return _method_call(text, before, first)
    return None


def _foreign_block_word(token: Token, word: str, first: Token | None, on_line: list[Token], line_text: str,
                        col: int, expected: set[str]) -> Lesson | None:
    """Blocks written as other languages write them: `endif`, `end for`, `foreach`, `while`, `catch e`, a
    block `if c then` or `for each x in xs do`, `on error e` (each said "does not start one" or "expected the
    end of the line" before, and `endfunction` got "did you mean `function`?")."""
    rest = line_text.strip()
    if first is None and token.type == "NAME" and word in CLOSER_WORDS and rest.rstrip(";") == word:
        return Lesson(f"`{word}` is not a word of flowlang: every block (for each, if, try, map, function) closes "
                      "with `end`", "end")
    if (first is not None and first.type == "NAME" and str(first) in FOREIGN_STATEMENTS and len(on_line) == 1
            and token.type in ("NAME", "LPAR") and rest.startswith(str(first))):
        # the REPL, where a line may be an expression: `foreach` was read as a name, and the error is at `x`
        word = str(first)
        expected = expected | {"LET"}
        at = Span(first.start_pos or 0, first.end_pos or 0)
        first = None
    else:
        at = None
    if (first is None and word in FOREIGN_STATEMENTS and "LET" in expected
            and not re.match(r"\s*[=.\[]", rest[len(word):])):  # `catch = 1` is an assignment without `let`
        message, instead = FOREIGN_STATEMENTS[word]
        if instead is None:
            return Lesson(message, "for each x in xs ... end", at)
        if instead == "on error as e":
            return Lesson(message, "try ... on error as e ... end (e.message says what failed)", at)
        php = re.match(r"\w+\s*\(\s*(.+?)\s+as\s+([A-Za-z_]\w*)\s*\)\s*:?\s*$", rest)  # PHP: foreach ($xs as $x)
        if instead == "for each" and php is not None:
            return Lesson(message, f"for each {php.group(2)} in {php.group(1)}", at)
        return Lesson(message, instead + rest[len(word):], at)
    if first is not None and first.type == "END" and len(on_line) == 1 and token.type != "_NL" and (
            token.type in ("FOR", "IF", "TRY", "FUNCTION", "MAP", "EACH") or word in ("loop", "while", "sub", "def")):
        return Lesson(f"`end` closes a block alone: write `end`, without `{word}`", "end")
    if first is not None and first.type == "IF" and token.type == "THEN" and "_NL" in expected:
        start = len(line_text) - len(line_text.lstrip())
        cond = line_text[start + 2:col - 1].strip()
        after = _code_after(line_text, col, word)
        hint = (f"if {cond} on its line, then {after!r} on the next, then `end`" if after
                else f"if {cond}")
        return Lesson("an `if` block has no `then`: its lines follow on the next lines, and `end` closes it "
                      "(`if c then a else b` is an expression, a value)", hint)
    if first is not None and first.type == "FOR" and word == "do" and "_NL" in expected:
        head = line_text[:col - 1].strip()  # the line up to this `do` (a later "do", as in "done", is not it)
        after = _code_after(line_text, col, word)
        return Lesson("no `do` after a `for each` line: the block starts on the next line",
                      f"{head} on its line, then {after!r} on the next, then `end`" if after
                      else head + "  (the block ends with `end`)")
    if first is not None and first.type == "ON" and "AS" in expected and token.type == "NAME":
        return Lesson("the error of an `on error` is named with `as`", f"on error as {word}")
    return None


def _code_after(line_text: str, col: int, word: str) -> str:
    """What follows the word at col on its line, a comment alone there being nothing (`if c then # why`)."""
    after = line_text[col - 1 + len(word):].strip()
    return "" if after.startswith("#") else after


SEND_ORDER = "send RECORD to DEST [key EXPR] [once | if changed] [as NAME] [batch N]"


def _late_send_clause(line_text: str, col: int, word: str) -> Lesson | None:
    """`once`, `if changed` or `key` after a send's `as` or `batch`: the clauses have an order, and the
    generic message ("expected `as` or the end of the line, found `once`") does not say it."""
    rest = line_text[col - 1:]
    clause = ("if changed" if word == "if" and re.match(r"if\s+changed\b", rest) else
              word if word in ("once", "key") else None)
    if clause is None:
        return None
    head = line_text[:col - 1]
    hint = f"the clauses go in this order: {SEND_ORDER}"
    if clause == "key":
        return _late_send_key(head, rest, hint)
    written = re.match(r"if\s+changed|once", rest)
    to = head.rfind(" to ")  # the clauses follow the destination
    moved = re.search(r"\s(as|batch)\s", head[to:]) if to >= 0 else None
    message = f"`{clause}` goes before `as` and `batch` in a send"
    if written is not None and moved is not None:
        at = to + moved.start()
        after = rest[written.end():].strip()  # `... batch 10 once as made`: the clauses after it stay after
        key, after = _stray_key(head[to:], after)
        if key:
            message += f", and takes no expression: the record's key is `key {key}`, before `{clause}`"
        keyed = f"key {key} {clause}" if key else clause
        hint = f"{head[:at].strip()} {keyed} {head[at:].strip()}{' ' + after if after else ''}  ({hint})"
    return Lesson(message, hint)


def _stray_key(clauses: str, after: str) -> tuple[str, str]:
    """What follows `once` or `if changed` up to the next clause, when it is an expression (`once r.id`:
    the key the user meant, which `key EXPR` gives) and the send has no `key` clause yet, and the rest."""
    if not after or re.match(r"(as|batch)\b", after) or re.search(r"\skey\s", clauses):
        return "", after
    expr = re.match(rf"(.+?)(?={SEND_CLAUSE}|\s*$)", after)
    return (expr.group(1).strip(), after[expr.end():].strip()) if expr is not None else ("", after)


def _key_after_once(line_text: str, col: int) -> Lesson | None:
    """`send r to out once r.id`: an expression after `once` (or `if changed`), which takes none, said
    "expected `as`, `batch` or the end of the line, found `r`" and "did you forget an operator or a
    comma?". The key of a send is `key EXPR`, before `once`: the hint is the line so written."""
    head = line_text[:col - 1]
    written = re.search(r"\s(once|if\s+changed)\s*$", head)
    to = head.rfind(" to ")
    if written is None or to < 0 or written.start() < to:
        return None
    clause = "if changed" if written.group(1).startswith("if") else "once"
    rest = line_text[col - 1:].strip()
    if re.match(r"key\b", rest):  # `once key r.id`: the key clause out of order (_late_send_key)
        return None
    key, after = _stray_key(head[to:written.start()], rest)
    if not key:
        expr = re.match(rf"(.+?)(?={SEND_CLAUSE}|\s*$)", rest)  # a send that has its `key` already
        if expr is None or re.match(r"(as|batch)\b", rest):
            return None
        after = rest[expr.end():].strip()
        return Lesson(f"`{clause}` takes no expression: the send's `key` clause gives the record's key",
                      f"{head.strip()}{' ' + after if after else ''}  (the clauses go in this order: {SEND_ORDER})")
    fixed = f"{head[:written.start()].strip()} key {key} {clause}{' ' + after if after else ''}"
    return Lesson(f"`{clause}` takes no expression: the record's key is `key {key}`, before `{clause}`",
                  f"{fixed}  (the clauses go in this order: {SEND_ORDER})")


SEND_CLAUSE = r"\s(once|if\s+changed|as|batch)\b"


def _late_send_key(head: str, rest: str, order: str) -> Lesson:
    """`key EXPR` after `once`, `if changed`, `as` or `batch` (`send r to out once key r.id`): the message
    names the clause the user wrote first, and the hint is the line with the key moved before it."""
    to = head.rfind(" to ")  # the clauses follow the destination
    first = re.search(SEND_CLAUSE, head[to:]) if to >= 0 else None
    if first is None:
        return Lesson("`key` goes before `once`, `if changed`, `as` and `batch` in a send", order)
    written = "if changed" if first.group(1).startswith("if") else first.group(1)
    hint = order
    expr = re.match(rf"key\s+(.+?)(?={SEND_CLAUSE}|\s*$)", rest)
    if expr is not None:
        at = to + first.start()
        after = rest[expr.end():].strip()  # `... once key r.id as made`: the clauses after it stay after
        hint = (f"{head[:at].strip()} key {expr.group(1).strip()} {head[at:].strip()}"
                f"{' ' + after if after else ''}  ({order})")
    return Lesson(f"`key` goes before `{written}` in a send: you wrote `{written} ... key`", hint)


def _method_call(text: str, before: list[Token], first: Token | None) -> Lesson | None:
    """`x.name(` inside an expression: either a connection's operation, which runs as a statement
    (`call f.read() as rows`), or a Python-style method on a value (`o.email.lower()`)."""
    chain: list[Token] = []
    i = len(before) - 1
    while i >= 0 and before[i].type == "NAME" and (not chain or chain[-1].type == "DOT"):
        chain.append(before[i])
        if i > 0 and before[i - 1].type == "DOT":
            chain.append(before[i - 1])
            i -= 2
            continue
        break
    names = [str(t) for t in reversed(chain) if t.type == "NAME"]
    if len(names) < 2 or chain[-1].type != "NAME":
        return None
    owner, method = ".".join(names[:-1]), names[-1]
    start, end = chain[-1].start_pos or 0, before[-1].end_pos or 0
    if len(names) == 2 and (_declares_connection(text, names[0]) or method not in VALUE_METHODS):
        statement = "for each" if first is not None and first.type == "FOR" else None
        hint = (f"call {owner}.{method}(...) as rows, then `for each ... in rows`" if statement
                else f"call {owner}.{method}(...) as NAME (or `lookup ... as NAME` inside a loop), then use NAME")
        what = "the connection" if _declares_connection(text, owner) else "a connection or binding"
        return Lesson(f"`{owner}.{method}(...)` runs an operation of {what} `{owner}`: that is a statement "
                      "of its own, not part of an expression", hint, Span(start, end))
    return Lesson(f"flowlang values have no methods: `{method}` is not called as `{owner}.{method}(...)`",
                  f"call a function with the value as its first argument: {method}({owner}, ...)", Span(start, end))


def _declares_connection(text: str, name: str) -> bool:
    return re.search(rf"^\s*use\s+{re.escape(name)}\s*=", text, re.MULTILINE) is not None


def _unclosed_bracket(before: list[Token], expected: set[str], loose: bool = False) -> Token | None:
    """The innermost bracket still open before the error: when its closer is one of the tokens expected
    there, or in any case when `loose`."""
    stack: list[Token] = []
    for t in before:
        if t.type in CLOSING:
            stack.append(t)
        elif t.type in CLOSING.values() and stack and CLOSING[stack[-1].type] == t.type:
            stack.pop()
    if stack and (loose or CLOSING[stack[-1].type] in expected):
        return stack[-1]
    return None


def _open_interpolation(string: str) -> bool:
    """Whether a "..." string token ends inside an unclosed `{` (its closing quote was meant as a
    quote inside the expression)."""
    depth = 0
    escaped = False
    for ch in string[1:-1]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
    return depth > 0
