"""The words of the language, read from the grammar once (the one home of every keyword list).

A terminal whose text is a word (`"for"`, `"end"`) is a keyword. Words that are keywords only where
they stand (LANGUAGE.md 1: `drop`, `with`, `trigger`, ...) are declared in the grammar as terminals named
`SOFT_<WORD>`; the contextual lexer reads them as names wherever the parser does not expect them, and
they are not reserved, so `let with = 1` works. Block openers are the statements that close with `end`.
Used by the transformer (reserved words), the formatter and the syntax errors (block openers), and the
REPL's lexer and completion.
"""

from __future__ import annotations

import re
from functools import lru_cache

from flowlang.syntax.grammar import parser

SOFT_PREFIX = "SOFT_"
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=1)
def keyword_terminals() -> dict[str, str]:
    """Terminal name -> word, for every terminal whose text is a word."""
    return {t.name: t.pattern.value for t in parser().terminals
            if t.pattern.type == "str" and WORD.fullmatch(t.pattern.value)}


@lru_cache(maxsize=1)
def reserved_words() -> frozenset[str]:
    """Keywords that can never name a variable, a param, a function or a connection."""
    return frozenset(w for name, w in keyword_terminals().items() if not name.startswith(SOFT_PREFIX))


@lru_cache(maxsize=1)
def soft_words() -> frozenset[str]:
    """Words that are keywords only where they stand, and ordinary names elsewhere."""
    return frozenset(w for name, w in keyword_terminals().items() if name.startswith(SOFT_PREFIX))


@lru_cache(maxsize=1)
def literal_words() -> frozenset[str]:
    """Reserved words that are values: true, false, null."""
    words = keyword_terminals()
    return frozenset(words[r.expansion[0].name] for r in parser().rules
                     if len(r.expansion) == 1 and r.expansion[0].name in words and (r.alias or "").endswith("_lit"))


@lru_cache(maxsize=1)
def block_openers() -> dict[str, str]:
    """Terminal of the first word of each statement that closes with `end` -> how messages name the block
    (its leading words: FOR -> "for each")."""
    words = keyword_terminals()
    openers: dict[str, str] = {}
    for rule in parser().rules:
        names = [s.name for s in rule.expansion]
        if len(names) < 2 or names[0] not in words or "END" not in names[1:]:
            continue
        leading = []
        for name in names:
            if name not in words:
                break
            leading.append(words[name])
        openers[names[0]] = " ".join(leading)
    return openers
