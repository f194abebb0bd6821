"""docs/builtins.md is generated from the builtin registry: it must be what the generator makes
today, list every builtin, and every example in the builtins' docstrings must give what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

import flowlang
from conftest import ROOT
from flowlang.runtime.builtins import default_registry
from flowlang.runtime.jsoncodec import dumps, loads
from flowlang.tools import builtin_docs
from flowlang.tools.builtin_docs import FIX, Example, groups, main, render

PAGE = ROOT / "docs" / "builtins.md"


def examples() -> list[tuple[str, Example]]:
    return [(e.name, x) for _, _, entries in groups() for e in entries for x in e.examples]


def test_the_reference_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), f"docs/builtins.md is out of date; regenerate it with: {FIX}"


def test_every_builtin_of_the_registry_is_in_a_group_with_a_summary_and_an_example() -> None:
    listed = {e.name: e for title, _, entries in groups() if title != "Other" for e in entries}
    assert sorted(set(default_registry().names()) - set(listed)) == []
    for name, e in listed.items():
        assert e.summary.startswith(f"{name}(") and ": " in e.summary, f"{name}: summary is 'name(args): what it gives'"
        assert e.examples, f"{name} has no example"
        assert f"### {name}\n\n`{e.signature}`" in PAGE.read_text(encoding="utf-8")


def test_a_new_builtin_without_a_group_still_appears(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin_docs, "GROUPS", builtin_docs.GROUPS[1:])
    page = render()
    assert "## Other" in page and "### lower\n\n`lower(s)`" in page


def test_the_examples_give_what_they_say(tmp_path: Path) -> None:
    ran = [(name, x) for name, x in examples() if x.result is not None]
    assert len(ran) >= 100
    # `emit [x]` emits x itself when x is an object, else the one-item list [x]
    text = "\n".join(f"emit [{x.expression}]" for _, x in ran) + "\n"
    result = flowlang.compile(text, name="examples", base_dir=tmp_path, bindings=()).run(state_dir=tmp_path)
    assert result.ok, result.error
    got = [dumps(o[0] if isinstance(o, list) else o) for o in result.outputs]
    wrong = [f"{name}: {x.expression} gives {g}, the docstring says {x.result}"
             for (name, x), g in zip(ran, got, strict=True) if g != dumps(loads(x.result or ""))]
    assert wrong == []


def test_the_examples_without_a_result_pass_check(tmp_path: Path) -> None:
    shown = [x for _, x in examples() if x.result is None]
    assert shown
    text = "\n".join(f"let example_{i} = {x.expression}" for i, x in enumerate(shown)) + "\n"
    flowlang.compile(text, name="examples", base_dir=tmp_path, bindings=())


def test_check_exits_1_with_the_command_that_fixes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "builtins.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert FIX in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == render()
