"""The VS Code TextMate grammar (editors/vscode/syntaxes/flowlang.tmLanguage.json), run by the engine VS
Code uses (vscode-textmate + vscode-oniguruma from npm, pinned in tests/npm) over every example and a
sample of every construct, and compared with flowlang's own lexer: strings, comments, keys and keywords
get their scopes, and no character is left unscoped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from flowlang.syntax import keywords
from flowlang.syntax.grammar import parser

GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "flowlang.tmLanguage.json"
NPM = ROOT / "tests" / "npm"
EXAMPLES = sorted((ROOT / "examples").glob("**/*.flow"))

SAMPLE = '''flow "Sample"  # a comment after code
param since = "2024-01-01"
trigger schedule("0 6 * * *", tz: "Europe/Oslo")
use shop = shopify(shop: "demo", token: secret.SHOPIFY_TOKEN)
function cents(x, places: 2)
  return round(x * 100, places) ?? 0
end
call shop.list_orders(updated_at_min: since) as orders
for each o in orders parallel 4
  let tag = o.note ?? 'none'
  if o.total >= 10.5 and not (o.id == null)
    send {id: o.id, "total": cents(o.total), note: "#{o.id} \\"{upper(o['x'])}\\" \\{x}"} to shop.put once
  else if true
    skip
  end
end
try
  fail "no"
on error e
  log warn "{e.message}"
end
run "other.flow" with {a: 1}
emit [1, 2.5, 1e3, ...orders]
'''


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None or not (NPM / "node_modules" / "vscode-textmate").is_dir():
        if os.environ.get("CI"):
            pytest.fail("node and tests/npm (npm ci --prefix tests/npm, as .ci/run does) are needed under CI")
        pytest.skip("the npm test tools are missing: npm ci --prefix tests/npm")
    return found


def tokenize(node: str, files: list[Path]) -> dict[str, list[list[dict[str, Any]]]]:
    proc = subprocess.run([node, str(NPM / "tokenize.js"), str(GRAMMAR), *map(str, files)], capture_output=True,
                          text=True, timeout=120, check=True)
    return {(found := json.loads(line))["file"]: found["lines"] for line in proc.stdout.splitlines()}


def char_scopes(lines: list[list[dict[str, Any]]]) -> list[list[list[str]]]:
    """For each line, the scopes of each character."""
    return [[tok["scopes"] for tok in line for _ in tok["text"]] for line in lines]


def expectations(text: str) -> list[tuple[int, int, str, str]]:
    """(offset, end, what, scope prefix wanted) from flowlang's own lexer."""
    found: list[tuple[int, int, str, str]] = []
    tokens = list(parser().lex(text))
    reserved = {name for name, word in keywords.keyword_terminals().items() if word in keywords.reserved_words()}
    for i, tok in enumerate(tokens):
        start, end = tok.start_pos or 0, tok.end_pos or 0
        if tok.type in ("DQ_STRING", "SQ_STRING"):
            found.append((start, end, f"string {tok.value}", "string.quoted"))
        elif tok.type in ("COMMENT", "_NL"):
            for line_start in range(start, end):
                if text[line_start] == "#":
                    stop = text.find("\n", line_start)
                    found.append((line_start, stop if stop >= 0 else len(text), "comment", "comment.line"))
                    break
        elif (tok.type == "NAME" or tok.type in reserved) and i + 1 < len(tokens) and tokens[i + 1].type == "COLON":
            # a key (`{flow: f.name}`: a word is a key before a colon)
            found.append((start, end, f"key {tok.value}", "variable.other.property"))
        elif tok.type in reserved:
            found.append((start, end, f"keyword {tok.value}", "keyword" if tok.value not in keywords.literal_words()
                          else "constant.language"))
    return found


def check_file(path: Path, lines: list[list[dict[str, Any]]]) -> list[str]:
    text = path.read_text(encoding="utf-8")
    scopes = char_scopes(lines)
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)

    def at(offset: int) -> list[str]:
        line = next(i for i in range(len(starts) - 1) if starts[i] <= offset < starts[i + 1])
        return scopes[line][offset - starts[line]]

    problems = []
    for n, (line_scopes, line) in enumerate(zip(scopes, text.split("\n"), strict=True), 1):
        for col, (ch, sc) in enumerate(zip(line, line_scopes, strict=True), 1):
            if not ch.isspace() and not sc:
                problems.append(f"{path.name}:{n}:{col}: {ch!r} has no scope")
            if any("invalid" in s for s in sc):
                problems.append(f"{path.name}:{n}:{col}: {ch!r} is marked invalid ({sc})")
    for start, end, what, scope in expectations(text):
        for offset in range(start, end):
            if text[offset] != "\n" and not any(s.startswith(scope) for s in at(offset)):
                line = text.count("\n", 0, offset) + 1
                problems.append(f"{path.name}:{line}: {what}: {text[offset]!r} has {at(offset)}, not {scope}")
                break
    return problems


def test_every_example_and_the_sample_tokenize_as_flowlang_lexes_them(node: str, tmp_path: Path) -> None:
    sample = tmp_path / "sample.flow"
    sample.write_text(SAMPLE, encoding="utf-8")
    files = [*EXAMPLES, sample]
    assert len(EXAMPLES) >= 15
    found = tokenize(node, files)
    problems = [p for f in files for p in check_file(f, found[str(f)])]
    assert problems == []


def test_the_sample_gets_the_scopes_an_editor_colours(node: str, tmp_path: Path) -> None:
    sample = tmp_path / "sample.flow"
    sample.write_text(SAMPLE, encoding="utf-8")
    lines = tokenize(node, [sample])[str(sample)]

    def scope_of(line: int, text: str) -> list[str]:
        tok = next(t for t in lines[line - 1] if t["text"] == text)
        return list(tok["scopes"])

    assert scope_of(3, "trigger") == ["keyword.other.trigger.flowlang"]
    assert scope_of(4, "shop")[-1] == "variable.other.connection.flowlang"
    assert scope_of(4, "shopify") == ["support.class.connector.flowlang"]
    assert scope_of(5, "cents") == ["entity.name.function.flowlang"]
    assert scope_of(6, "round") == ["entity.name.function.call.flowlang"]
    assert scope_of(8, "list_orders") == ["entity.name.function.member.flowlang"]
    assert scope_of(4, "secret") == ["variable.language.flowlang"]
    interpolated = next(t for t in lines[11] if t["text"] == "upper")
    assert interpolated["scopes"][:2] == ["string.quoted.double.flowlang", "meta.interpolation.flowlang"]
    escaped = [t["text"] for t in lines[11] if "constant.character.escape.flowlang" in t["scopes"]]
    assert escaped == ['\\"', '\\"', "\\{"]
    assert scope_of(12, "once") == ["keyword.other.once.flowlang"]
    assert scope_of(22, "with") == ["keyword.other.with.flowlang"]
    assert scope_of(1, "# a comment after code") == ["comment.line.number-sign.flowlang"]
