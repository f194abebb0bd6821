"""A Pygments lexer for flowlang (registered as the `flowlang` lexer plugin), used by the REPL's
highlighting and usable by any Pygments-based tool."""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from flowlang.syntax import keywords

GLOBALS = ("env", "secret", "job", "state", "input")


class GrammarWords(words):
    """A word list from flowlang.syntax.keywords, read when Pygments first compiles the lexer's rules
    (so importing the lexer does not build the parser)."""

    def __init__(self, kind: str, prefix: str = "") -> None:
        super().__init__((), prefix=prefix, suffix=r"\b")
        self.kind = kind

    def get(self) -> str:  # type: ignore[override]
        reserved = keywords.reserved_words()
        chosen = {"constants": keywords.literal_words(), "keywords": reserved - keywords.literal_words(),
                  "soft": keywords.soft_words()}[self.kind]
        self.words = tuple(sorted(chosen))
        result: str = super().get()  # type: ignore[no-untyped-call]
        return result


class FlowLexer(RegexLexer):
    """flowlang .flow scripts."""

    name = "flowlang"
    aliases: ClassVar[list[str]] = ["flowlang", "flow"]
    filenames: ClassVar[list[str]] = ["*.flow"]
    mimetypes: ClassVar[list[str]] = ["text/x-flowlang"]

    tokens: ClassVar[dict[str, list]] = {  # type: ignore[type-arg]
        "root": [
            (r"#[^\n]*", Comment.Single),
            # words that are keywords only where they stand: at the start of a line (drop, trigger) or
            # after a string (run "other.flow" with {...})
            (GrammarWords("soft", prefix=r"(^|\n)([\t ]*)"), bygroups(Whitespace, Whitespace, Keyword)),  # type: ignore[no-untyped-call]
            (GrammarWords("soft", prefix=r"(?<=[\"'] )"), Keyword),
            (r"\s+", Whitespace),
            (r"\.\.\.", Operator),
            (r"(\.)([A-Za-z_][A-Za-z0-9_]*)", bygroups(Punctuation, Name.Attribute)),  # type: ignore[no-untyped-call]
            (GrammarWords("constants"), Keyword.Constant),
            (GrammarWords("keywords"), Keyword),
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
