"""A Pygments lexer for flowlang (registered as the `flowlang` lexer plugin), used by the REPL's
highlighting and usable by any Pygments-based tool."""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

KEYWORDS = ("flow", "param", "use", "let", "call", "lookup", "send", "map", "to", "as", "if", "then", "else", "end",
            "for", "each", "in", "parallel", "batch", "try", "on", "error", "skip", "stop", "fail", "emit", "log",
            "function", "return", "import", "run", "and", "or", "not", "drop", "with")
CONSTANTS = ("true", "false", "null")
GLOBALS = ("env", "secret", "job", "state", "input")


class FlowLexer(RegexLexer):
    """flowlang .flow scripts."""

    name = "flowlang"
    aliases: ClassVar[list[str]] = ["flowlang", "flow"]
    filenames: ClassVar[list[str]] = ["*.flow"]
    mimetypes: ClassVar[list[str]] = ["text/x-flowlang"]

    tokens: ClassVar[dict[str, list]] = {  # type: ignore[type-arg]
        "root": [
            (r"#[^\n]*", Comment.Single),
            (r"\s+", Whitespace),
            (r"\.\.\.", Operator),
            (r"(\.)([A-Za-z_][A-Za-z0-9_]*)", bygroups(Punctuation, Name.Attribute)),  # type: ignore[no-untyped-call]
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(GLOBALS, suffix=r"\b"), Name.Builtin),
            (r"\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r'"', String.Double, "dstring"),
            (r"'(?:[^'\\\n]|\\.)*'", String.Single),
            (r"[A-Za-z_][A-Za-z0-9_]*(?=\s*\()", Name.Function),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"\?\?|==|!=|<=|>=|[-+*/%<>=]", Operator),
            (r"[()\[\]{},:]", Punctuation),
            (r".", Text),
        ],
        "dstring": [
            (r'\\.', String.Escape),
            (r"\{", String.Interpol, "interp"),
            (r'"', String.Double, "#pop"),
            (r'[^"\\{]+', String.Double),
        ],
        "interp": [
            (r"\}", String.Interpol, "#pop"),
            (r"'(?:[^'\\\n]|\\.)*'", String.Single),
            (r"[^}']+", Name),
        ],
    }
