"""Builds the LALR parser for grammar/flowlang.lark once per process (kept between processes by
syntax/parser_cache.py, and by Lark's own cache when that cannot be written)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark

from flowlang.resources import grammar_text
from flowlang.syntax.parser_cache import cache_folder, cache_key, load_or_build
from flowlang.syntax.postlex import BracketNewlines

START_RULES = ["module", "repl", "interpolation"]


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The shared parser."""
    text = grammar_text()
    options: dict[str, Any] = {
        "parser": "lalr", "lexer": "contextual", "start": START_RULES, "postlex": BracketNewlines(),
        "propagate_positions": True, "maybe_placeholders": True,
    }
    return load_or_build(cache_key(text, options), lambda: Lark(text, cache=True, **options), cache_folder())
