"""The post-lexer: drops newlines inside brackets and refuses absurd nesting depth."""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token

OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
CLOSERS = frozenset(OPENERS.values())
MAX_DEPTH = 64


class NestingTooDeep(Exception):
    """Raised (and turned into a syntax error) when brackets nest deeper than MAX_DEPTH."""

    def __init__(self, token: Token) -> None:
        super().__init__("brackets nest too deeply")
        self.token = token


class BracketNewlines:
    """Lark post-lexer: a newline inside (), [] or {} is not a statement end."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            kind = token.type
            if kind in OPENERS:
                depth += 1
                if depth > MAX_DEPTH:
                    raise NestingTooDeep(token)
            elif kind in CLOSERS:
                depth = max(0, depth - 1)
            elif kind == "_NL" and depth:
                continue
            yield token
