"""Every list of words comes from the grammar (flowlang.syntax.keywords): the reserved words match the
documentation, words that are keywords only where they stand (drop, with, trigger) still name things
elsewhere, and the transformer, formatter, syntax errors and REPL all use the same lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import flowlang
from flowlang.repl.lexer import FlowLexer
from flowlang.syntax import keywords
from flowlang.syntax.grammar import parser

DOCS = Path(__file__).parent.parent / "docs" / "language.md"


def test_the_grammar_names_every_terminal() -> None:
    unnamed = [t.name for t in parser().terminals if t.name.startswith("__")]
    assert unnamed == []


def test_reserved_words_are_the_documented_ones() -> None:
    text = " ".join(DOCS.read_text().split())
    documented = re.search(r"Reserved: `([a-z ]+)`", text)
    assert documented is not None
    assert keywords.reserved_words() == frozenset(documented.group(1).split())
    assert keywords.soft_words() >= {"drop", "with", "trigger"}
    assert not keywords.soft_words() & keywords.reserved_words()


def test_block_openers_come_from_the_statements_closed_by_end() -> None:
    assert keywords.block_openers() == {"FOR": "for each", "IF": "if", "TRY": "try", "MAP": "map",
                                        "FUNCTION": "function"}


@pytest.mark.parametrize("word", sorted(keywords.soft_words()))
def test_a_word_that_is_a_keyword_only_where_it_stands_names_things_elsewhere(word: str) -> None:
    text = (f"param {word} = 1\nfunction f_{word}({word})\n  return {word} + 1\nend\n"
            f"let o = {{{word}: {word}}}\nfor each {word}2 in [o.{word}]\n  emit [f_{word}({word}2), "
            f"[{word} for {word} in [{word}2]]]\nend\n")
    assert flowlang.compile(text, bindings=()).run().outputs == [[2, [1]]]


def test_a_reserved_word_cannot_name_a_variable() -> None:
    with pytest.raises(flowlang.ScriptError, match="`each` is a keyword and cannot name a variable"):
        flowlang.compile("let each = 1\n", bindings=())


def test_drop_and_with_keep_their_meaning_where_they_stand(tmp_path: Path) -> None:
    (tmp_path / "child.flow").write_text("param n\nemit n\n")
    (tmp_path / "main.flow").write_text('let with = {n: 3}\nmap {a: 1, b: 2} to drop\n  ...with\n  drop n\n'
                                        '  with = 1\nend\nemit drop\nrun "child.flow" with with\n')
    result = flowlang.load(tmp_path / "main.flow").run()
    assert result.error is None, result.error.render()
    assert result.outputs == [{"with": 1}]


def test_unclosed_blocks_are_named_from_the_grammar() -> None:
    with pytest.raises(flowlang.ScriptError, match=r"expected `end` to close `for each` opened at 2:1"):
        flowlang.compile("emit 1\nfor each x in [1]\n  emit x\n", bindings=())


def test_the_repl_lexer_highlights_the_grammar_words() -> None:
    def kinds(code: str) -> dict[str, str]:
        return {value: str(kind) for kind, value in FlowLexer().get_tokens(code) if value.strip()}

    assert kinds("for each x in xs\n")["each"] == "Token.Keyword"
    assert kinds("emit null\n")["null"] == "Token.Keyword.Constant"
    assert kinds("let drop = with\n")["drop"] == "Token.Name"
    assert kinds("let o = with\n")["with"] == "Token.Name"
    assert kinds('map o to p\n  drop a\nend\nrun "x.flow" with {}\n')["drop"] == "Token.Keyword"
    assert kinds('run "x.flow" with {}\n')["with"] == "Token.Keyword"
