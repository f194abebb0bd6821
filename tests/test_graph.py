"""`flowlang graph FILE --format mermaid|dot|svg`: the flow's steps as a diagram, the same picture the serve
console shows (flowlang.picture is its one home)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT, cli

FLOW = '''flow "Two \\"quoted\\" steps"
trigger schedule("0 6 * * *")
use out = file(path: "out.jsonl")
let rows = [{id: 1}, {id: 2}]
for each r in rows
  if r.id == 1
    send r to out
  else
    log "not one: {r.id}"
  end
end
emit "done"
'''


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "f.flow"
    path.write_text(FLOW)
    return path


def test_mermaid_nests_blocks_and_bypasses_them(flow: Path) -> None:
    proc = cli("graph", str(flow), cwd=flow.parent)
    assert proc.status == 0, proc.stderr
    out = proc.stdout
    assert out.startswith('---\ntitle: "Two \\"quoted\\" steps"\n---\nflowchart TD\n')
    nodes = dict(re.findall(r'^\s*(s\d+)\W+"([^"]*)"', out, re.M))
    assert list(nodes.values()) == [
        'schedule #quot;0 6 * * *#quot; (UTC)', 'use out = file(path: #quot;out.jsonl#quot;)',
        'let rows = [{id: 1}, {id: 2}]', 'for each r in rows', 'if r.id == 1', 'send r to out', 'else',
        'log #quot;not one: {r.id}#quot;', 'emit #quot;done#quot;']
    assert out.count("subgraph") == out.count("  end\n") == 3  # the loop's block, the if's, the else's
    assert "s3 -.-> s8" in out  # a loop without records goes on to emit
    assert "s4 -.-> s6" in out  # the if's condition false: to else
    assert "s0 --> s1" in out and "s7 --> s8" in out
    assert "s5 --> s8" in out and "s5 --> s6" not in out  # the then-block goes past the else, not into it


def test_a_branch_ends_past_its_statement_and_a_try_leads_to_on_error(tmp_path: Path) -> None:
    path = tmp_path / "t.flow"
    path.write_text('use out = file(path: "o.jsonl")\nfor each r in [1, 2]\n  try\n    if r == 1\n'
                    '      send {r: r} to out\n    else if r == 2\n      log "two"\n    end\n  on error as e\n'
                    '    log "failed"\n  end\nend\nemit "done"\n')
    proc = cli("graph", str(path), cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    nodes = dict(re.findall(r'^\s*(s\d+)\W+"([^"]*)"', proc.stdout, re.M))
    assert nodes["s5"] == "else if r == 2" and nodes["s7"] == "on error" and nodes["s9"] == "emit #quot;done#quot;"
    edges = set(re.findall(r"^  (s\d+ -\.?-> s\d+)$", proc.stdout, re.M))
    assert edges == {"s0 --> s1", "s1 --> s2", "s2 --> s3", "s3 --> s4", "s4 --> s9", "s5 --> s6", "s6 --> s9",
                     "s7 --> s8", "s8 --> s9", "s1 -.-> s9", "s2 -.-> s7", "s3 -.-> s5", "s5 -.-> s9"}


def test_dot_is_balanced_and_escapes_quotes(flow: Path) -> None:
    proc = cli("graph", str(flow), "--format", "dot", cwd=flow.parent)
    assert proc.status == 0, proc.stderr
    out = proc.stdout
    assert out.startswith('digraph "Two \\"quoted\\" steps" {')
    assert out.count("{") - out.count("{id") == out.count("}") - out.count("2}]") - out.count("id}")
    assert 's5 [label="send r to out", fillcolor="#e6f6e6"];' in out
    assert "subgraph cluster_3 {" in out and "s3 -> s8 [style=dashed];" in out


def test_svg_is_the_console_picture(flow: Path) -> None:
    proc = cli("graph", str(flow), "--format", "svg", cwd=flow.parent)
    assert proc.status == 0, proc.stderr
    root = ET.fromstring(proc.stdout)
    ns = {"s": "http://www.w3.org/2000/svg"}
    kinds = [g.get("data-kind") for g in root.findall("s:g", ns)]
    assert kinds == ["trigger", "connect", "let", "for each", "if", "send", "else", "log", "emit"]
    texts = [t.text for t in root.iterfind(".//s:text", ns)]
    assert texts[5] == "send r to out"


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*/*.flow")), ids=lambda p: p.stem)
def test_every_example_draws(example: Path) -> None:
    proc = cli("graph", str(example), "--format", "mermaid", cwd=example.parent)
    assert proc.status == 0, proc.stderr
    assert proc.stdout.count("subgraph") == len(re.findall(r"^\s+end$", proc.stdout, re.M))


def test_a_broken_flow_is_a_diagnostic_not_a_picture(tmp_path: Path) -> None:
    (tmp_path / "bad.flow").write_text("emit nope\n")
    proc = cli("graph", "bad.flow", cwd=tmp_path)
    assert proc.status == 2
    assert "bad.flow:1:6" in proc.stderr and proc.stdout == ""
    assert "Traceback" not in proc.stderr


def test_a_mermaid_label_is_text_never_markup(tmp_path: Path) -> None:
    """A step whose text held '<b>' or '<img src=x onerror=...>' went into the Mermaid label as it was,
    which Mermaid reads as HTML: a bold word, or an image tag, where the step's text was meant. < and >
    are entity codes now, as quotes and hashes were."""
    path = tmp_path / "m.flow"
    path.write_text('use m = memory()\nfor each r in [{a: "<b>x</b>"}]\n'
                    '  if r.a != "<img src=x onerror=alert(1)>" and 1 > 0\n    send r to m\n  end\nend\n')
    proc = cli("graph", str(path), "--format", "mermaid", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    labels = re.findall(r'^\s*s\d+\W+"([^"]*)"', proc.stdout, re.M)
    assert labels[1] == "for each r in [{a: #quot;#60;b#62;x#60;/b#62;#quot;}]"
    assert labels[2] == "if r.a != #quot;#60;img src=x onerror=alert(1)#62;#quot; and 1 #62; 0"
    assert not any("<" in label or ">" in label for label in labels)
