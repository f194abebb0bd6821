"""Random and mutated text never makes the parser raise anything but a syntax error.

The CI setting tries a few hundred inputs; FLOWLANG_FUZZ_EXAMPLES=20000 is the long setting.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from flowlang.errors import FlowSyntaxError
from flowlang.source import Source
from flowlang.syntax import parse

EXAMPLES = int(os.environ.get("FLOWLANG_FUZZ_EXAMPLES", "300"))
SEEDS = [p.read_text() for p in sorted(ROOT.glob("examples/*/*.flow"))] + [
    'emit {a: [1, 2.5, "x {y}"], b: if c then d else e ?? f}\n',
    "for each k, v in items(o) parallel 4\n  map v to w\n    ...v\n    drop x.y\n  end\nend\n",
]
TOKENS = ["emit", "let", "for", "each", "in", "end", "if", "else", "then", "map", "to", "(", ")", "[", "]", "{",
          "}", ",", ".", ":", "=", "==", "+", "-", "*", "/", "??", '"', "'", "{x}", "\\", "\n", " ", "#", "x",
          "1", "1.5", "...", "not", "and", "or", "try", "on", "error", "as", "send", "call", "lookup", "function"]


def parse_or_syntax_error(text: str) -> None:
    try:
        parse(Source("fuzz.flow", text))
    except FlowSyntaxError as e:
        for d in e.diagnostics:
            assert d.line >= 1 and d.column >= 1
            assert d.line <= text.count("\n") + 2


settings_ = settings(max_examples=EXAMPLES, deadline=1000, suppress_health_check=list(HealthCheck))


@settings_
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    parse_or_syntax_error(text)


@settings_
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_random_token_soup(tokens: list[str]) -> None:
    parse_or_syntax_error(" ".join(tokens))


@settings_
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_examples(seed: str, data: st.DataObject) -> None:
    text = seed
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if action == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 5)):]
        elif action == "insert":
            text = text[:at] + data.draw(st.sampled_from(TOKENS)) + text[at:]
        else:
            text = text[:at] + text[at: at + 20] + text[at:]
    parse_or_syntax_error(text)


def test_deep_nesting_is_a_clear_error() -> None:
    for text in ["emit " + "(" * 5000 + "1" + ")" * 5000, "emit " + "[" * 3000, "emit " + "-" * 5000 + "1",
                 "emit " + "not " * 3000 + "x", "for each x in y\n" * 2000]:
        try:
            parse(Source("deep.flow", text))
        except FlowSyntaxError as e:
            assert e.diagnostics[0].line >= 1
        else:  # some shapes are valid; they must simply not crash
            pass
