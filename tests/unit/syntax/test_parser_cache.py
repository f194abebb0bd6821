"""The parser kept between processes (syntax/parser_cache.py): used only for the same grammar, Lark,
Python and options; a corrupt, foreign or unwritable cache never breaks parsing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lark import Lark

from conftest import ROOT
from flowlang.syntax.grammar import START_RULES
from flowlang.syntax.parser_cache import KEPT, cache_folder, cache_key, cache_path, load_or_build
from flowlang.syntax.postlex import BracketNewlines

GRAMMAR = (ROOT / "grammar" / "flowlang.lark").read_text(encoding="utf-8")
OPTIONS = {"parser": "lalr", "lexer": "contextual", "start": START_RULES, "postlex": BracketNewlines(),
           "propagate_positions": True, "maybe_placeholders": True}
TEXT = 'let x = [1, (2 +\n 3)]\nemit {a: x, b: "s {x}"}\n'


class Builds:
    """A build function that counts how often the parser was really built."""

    def __init__(self, grammar: str = GRAMMAR) -> None:
        self.grammar = grammar
        self.count = 0

    def __call__(self) -> Lark:
        self.count += 1
        return Lark(self.grammar, **OPTIONS)


def stored(folder: Path) -> list[Path]:
    return sorted(folder.glob("parser-*.pickle"))


def test_a_stored_parser_is_loaded_and_parses_as_a_built_one(tmp_path: Path) -> None:
    key, build = cache_key(GRAMMAR, OPTIONS), Builds()
    first = load_or_build(key, build, tmp_path)
    second = load_or_build(key, build, tmp_path)
    assert build.count == 1 and len(stored(tmp_path)) == 1
    assert second is not first
    assert second.parse(TEXT, start="module") == first.parse(TEXT, start="module")
    tree = second.parse(TEXT, start="module")
    assert tree.children[1].meta.line == 3  # positions survive (propagate_positions)
    assert [t.type for t in second.lex("(1\n)", dont_ignore=False)] == [
        t.type for t in first.lex("(1\n)", dont_ignore=False)]


def test_a_changed_grammar_or_option_builds_again(tmp_path: Path) -> None:
    build = Builds()
    load_or_build(cache_key(GRAMMAR, OPTIONS), build, tmp_path)
    changed = GRAMMAR + "\n// a comment changes the text\n"
    other = Builds(changed)
    parser = load_or_build(cache_key(changed, OPTIONS), other, tmp_path)
    assert other.count == 1
    assert parser.source_grammar == changed
    assert cache_key(GRAMMAR, {**OPTIONS, "maybe_placeholders": False}) != cache_key(GRAMMAR, OPTIONS)


def test_a_key_that_differs_inside_the_file_is_not_used(tmp_path: Path) -> None:
    key, build = cache_key(GRAMMAR, OPTIONS), Builds()
    load_or_build(key, build, tmp_path)
    [path] = stored(tmp_path)
    other_key = (*key[:-1], key[-1] + " ")
    path.rename(cache_path(tmp_path, other_key))  # as if two keys had the same checksum
    assert load_or_build(other_key, build, tmp_path).parse(TEXT, start="module")
    assert build.count == 2


@pytest.mark.parametrize("content", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_corrupt_file_is_built_again_and_replaced(tmp_path: Path, content: bytes) -> None:
    key, build = cache_key(GRAMMAR, OPTIONS), Builds()
    load_or_build(key, build, tmp_path)
    [path] = stored(tmp_path)
    path.write_bytes(content)
    parser = load_or_build(key, build, tmp_path)
    assert build.count == 2
    assert parser.parse(TEXT, start="module")
    assert path.stat().st_size > 1000  # stored again
    load_or_build(key, build, tmp_path)
    assert build.count == 2


def test_a_file_others_can_write_is_not_loaded(tmp_path: Path) -> None:
    key, build = cache_key(GRAMMAR, OPTIONS), Builds()
    load_or_build(key, build, tmp_path)
    [path] = stored(tmp_path)
    path.chmod(0o666)
    load_or_build(key, build, tmp_path)
    assert build.count == 2
    assert path.stat().st_mode & 0o022 == 0  # replaced by a file of the user's own


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_still_parses(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        build = Builds()
        parser = load_or_build(cache_key(GRAMMAR, OPTIONS), build, tmp_path / "cache")
        assert parser.parse(TEXT, start="module") and build.count == 1
    finally:
        tmp_path.chmod(0o700)


def test_a_folder_that_is_a_file_still_parses(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder would be")
    build = Builds()
    assert load_or_build(cache_key(GRAMMAR, OPTIONS), build, blocker).parse(TEXT, start="module")
    assert load_or_build(cache_key(GRAMMAR, OPTIONS), build, blocker) and build.count == 2


def test_only_the_newest_parsers_are_kept(tmp_path: Path) -> None:
    for n in range(KEPT + 2):
        old = tmp_path / f"parser-old{n}.pickle"
        old.write_bytes(b"")
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    load_or_build(cache_key(GRAMMAR, OPTIONS), Builds(), tmp_path)
    kept = stored(tmp_path)
    assert len(kept) == KEPT and cache_path(tmp_path, cache_key(GRAMMAR, OPTIONS)) in kept
    assert tmp_path / "parser-old0.pickle" not in kept and tmp_path / f"parser-old{KEPT + 1}.pickle" in kept


def test_the_folder_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "flowlang"
    assert cache_folder({}) == Path.home() / ".cache" / "flowlang"


def test_the_cli_stores_the_parser_once_and_uses_it(tmp_path: Path) -> None:
    (tmp_path / "one.flow").write_text("emit 1\nemit (\n  2)\n")
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "c")}
    argv = [sys.executable, "-m", "flowlang", "run", "one.flow", "--quiet", "--state-dir", str(tmp_path / "s")]
    outputs = [subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60).stdout
               for _ in range(2)]
    assert outputs == ["1\n2\n", "1\n2\n"]
    assert len(stored(tmp_path / "c" / "flowlang")) == 1
    (tmp_path / "bad.flow").write_text("emit (1\n")
    bad = subprocess.run([*argv[:4], "bad.flow"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "bad.flow:1:" in bad.stderr and "Traceback" not in bad.stderr
