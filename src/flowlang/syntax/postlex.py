"""The post-lexer: drops newlines inside brackets (how deep a script may nest is syntax/depth.py's rule)."""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token

OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
CLOSERS = frozenset(OPENERS.values())


class BracketNewlines:
    """Lark post-lexer: a newline inside (), [] or {} is not a statement end."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            kind = token.type
            if kind in OPENERS:
                depth += 1
            elif kind in CLOSERS:
                depth = max(0, depth - 1)
            elif kind == "_NL" and depth:
                continue
            yield token
