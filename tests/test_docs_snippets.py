"""Every flow snippet in README.md and docs/*.md is checked, so the docs cannot drift from the language.

The info string of a fenced block says what the block is:
- ```flow           a whole flow: it must pass `check` (every connection it uses is opened with `use`)
- ```flow fragment  a piece of a flow (names it does not define, `...` for the rest): it must parse
- ```flow error     a mistake shown on purpose: `check` must refuse it; an HTML comment right above the
                    block, `<!-- error: TEXT -->`, names a text the message must contain
Blocks with another info string (```, ```sh, ```toml ...) are not flow code and are left alone, so a
flow example must be tagged `flow`: the last test finds untagged blocks that look like flow code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import flowlang
from conftest import ROOT
from flowlang.errors import FlowError
from flowlang.source import Source
from flowlang.syntax import parse

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
ERROR_NOTE = re.compile(r"<!--\s*error:\s*(.*?)\s*-->\s*$")
FLOW_WORDS = re.compile(r"^(use \w+\s*=|for each |call \w+\.|send .+ to |flow \")", re.M)


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    kind: str
    text: str
    error: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def snippets() -> list[Snippet]:
    found = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            info = m.group(1).split()
            if not info or info[0] != "flow":
                continue
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            note = ERROR_NOTE.search(before)
            kind = info[1] if len(info) > 1 else "whole"
            found.append(Snippet(path, text[:m.start()].count("\n") + 1, kind, m.group(2),
                                 note.group(1) if note else None))
    return found


ALL = snippets()


def test_the_docs_have_flow_snippets() -> None:
    assert len(ALL) >= 10
    assert {s.kind for s in ALL} <= {"whole", "fragment", "error"}, sorted({s.kind for s in ALL})


@pytest.mark.parametrize("snippet", [s for s in ALL if s.kind == "whole"], ids=lambda s: s.id)
def test_a_whole_flow_passes_check(snippet: Snippet, tmp_path: Path) -> None:
    try:
        flowlang.compile(snippet.text, name=snippet.id, base_dir=tmp_path, bindings=())
    except FlowError as e:
        pytest.fail(f"{snippet.id}: the snippet does not pass check (tag it `flow fragment` if it is a "
                    f"piece of a flow):\n{e}")


@pytest.mark.parametrize("snippet", [s for s in ALL if s.kind == "fragment"], ids=lambda s: s.id)
def test_a_fragment_parses(snippet: Snippet) -> None:
    text = "\n".join("" if line.strip() == "..." else line for line in snippet.text.splitlines())
    try:
        parse(Source(snippet.id, text + "\n"))
    except FlowError as e:
        pytest.fail(f"{snippet.id}: the fragment does not parse:\n{e}")


@pytest.mark.parametrize("snippet", [s for s in ALL if s.kind == "error"], ids=lambda s: s.id)
def test_a_mistake_is_refused(snippet: Snippet, tmp_path: Path) -> None:
    with pytest.raises(FlowError) as caught:
        flowlang.compile(snippet.text, name=snippet.id, base_dir=tmp_path, bindings=())
    if snippet.error is not None:
        assert snippet.error in str(caught.value), str(caught.value)


def test_flow_code_in_the_docs_is_tagged_flow() -> None:
    untagged = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            info = m.group(1).strip()
            if info == "" and FLOW_WORDS.search(m.group(2)) and "$ " not in m.group(2):
                untagged.append(f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}")
    assert untagged == [], "tag these blocks ```flow (or ```flow fragment): " + ", ".join(untagged)
