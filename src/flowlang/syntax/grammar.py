"""Builds the LALR parser for grammar/flowlang.lark once per process (with Lark's cache)."""

from __future__ import annotations

from functools import lru_cache

from lark import Lark

from flowlang.resources import grammar_text
from flowlang.syntax.postlex import BracketNewlines

START_RULES = ["module", "repl", "interpolation"]


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The shared parser; Lark caches the built tables in the temp folder, keyed by the grammar."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=START_RULES,
        postlex=BracketNewlines(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )
