"""Every flow snippet in README.md and docs/*.md is checked, so the docs cannot drift from the language.

The info string of a fenced block says what the block is:
- ```flow           a whole flow: it must pass `check` (every connection it uses is opened with `use`)
- ```flow fragment  a piece of a flow (names it does not define, `...` for the rest): it must parse
- ```flow error     a mistake shown on purpose: `check` must refuse it; an HTML comment right above the
                    block, `<!-- error: TEXT -->`, names a text the message must contain
- ```toml connectors/NAME.toml   a connector file: it must load without a problem, and the flow blocks after
                    it in the same document are checked with it in their `connectors/` folder (a later block
                    of the same path replaces it)
Blocks with another info string (```, ```sh, ```toml ...) are not flow code and are left alone, so a
flow example must be tagged `flow`: the last test finds untagged blocks that look like flow code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

import flowlang
from conftest import ROOT
from flowlang.connectors.declarative.loader import ConnectorFileError, parse_connector
from flowlang.connectors.declarative.models import BatchModel, PaginationModel
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
    files: tuple[tuple[str, str], ...] = ()  # the connector files of the blocks before it: (path, text)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def connector_block(info: list[str]) -> str | None:
    """The path of a ```toml connectors/NAME.toml block, else None."""
    if len(info) == 2 and info[0] == "toml" and info[1].startswith("connectors/") and info[1].endswith(".toml"):
        return info[1]
    return None


def connector_files() -> list[Snippet]:
    found = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            file = connector_block(m.group(1).split())
            if file is not None:
                found.append(Snippet(path, text[:m.start()].count("\n") + 1, file, m.group(2), None))
    return found


def snippets() -> list[Snippet]:
    found = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        files: dict[str, str] = {}
        for m in FENCE.finditer(text):
            info = m.group(1).split()
            file = connector_block(info)
            if file is not None:
                files[file] = m.group(2)
                continue
            if not info or info[0] != "flow":
                continue
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            note = ERROR_NOTE.search(before)
            kind = info[1] if len(info) > 1 else "whole"
            found.append(Snippet(path, text[:m.start()].count("\n") + 1, kind, m.group(2),
                                 note.group(1) if note else None, tuple(files.items())))
    return found


def with_files(snippet: Snippet, folder: Path) -> Path:
    for name, text in snippet.files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


ALL = snippets()


def test_the_docs_have_flow_snippets() -> None:
    assert len(ALL) >= 10
    assert {s.kind for s in ALL} <= {"whole", "fragment", "error"}, sorted({s.kind for s in ALL})


@pytest.mark.parametrize("snippet", [s for s in ALL if s.kind == "whole"], ids=lambda s: s.id)
def test_a_whole_flow_passes_check(snippet: Snippet, tmp_path: Path) -> None:
    try:
        flowlang.compile(snippet.text, name=snippet.id, base_dir=with_files(snippet, tmp_path), bindings=())
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
        flowlang.compile(snippet.text, name=snippet.id, base_dir=with_files(snippet, tmp_path), bindings=())
    if snippet.error is not None:
        assert snippet.error in str(caught.value), str(caught.value)


@pytest.mark.parametrize("block", connector_files(), ids=lambda s: s.id)
def test_a_connector_file_in_the_docs_loads(block: Snippet) -> None:
    try:
        spec = parse_connector(block.kind, block.text, block.kind)
    except ConnectorFileError as e:
        pytest.fail(f"{block.id}: {e.message}")
    assert f"connectors/{spec.name}.toml" == block.kind, f"{block.id}: name the file after its name ({spec.name})"


def test_pagination_and_batch_lines_of_toml_blocks_are_valid() -> None:
    """A `pagination = {...}` or `batch = {...}` line shown on its own (alternatives side by side) is
    not a whole connector file, so each such line is validated by itself."""
    problems = []
    seen = 0
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1).split()[:1] != ["toml"]:
                continue
            for line in m.group(2).splitlines():
                key = line.split("=", 1)[0].strip()
                if key not in ("pagination", "batch") or "{" not in line:
                    continue
                seen += 1
                try:
                    value = tomllib.loads(line.split(" #")[0])[key]
                    (PaginationModel if key == "pagination" else BatchModel).model_validate(value)
                except (tomllib.TOMLDecodeError, ValidationError) as e:
                    problems.append(f"{path.relative_to(ROOT)}: {line.strip()}: {e}")
    assert seen >= 5 and problems == []


def test_flow_code_in_the_docs_is_tagged_flow() -> None:
    untagged = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            info = m.group(1).strip()
            if info == "" and FLOW_WORDS.search(m.group(2)) and "$ " not in m.group(2):
                untagged.append(f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}")
    assert untagged == [], "tag these blocks ```flow (or ```flow fragment): " + ", ".join(untagged)
