"""`flowlang fmt`: 2-space blocks, one level per line of open brackets, comments and text kept; the
result always parses to the same tree, and formatting twice changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT, cli
from flowlang import ast
from flowlang.errors import FlowSyntaxError
from flowlang.source import Source
from flowlang.syntax import parse
from flowlang.syntax.format import format_text
from spec_cases import all_cases

MESSY = """flow "x"
# top comment
for each o in [1,
2,
   3]
if o > 1
   # inner
emit o
      else if o == 1
log "one"
else
try
fail "x"
 on error as e
  map {a: 1} to m
end = 1
    a = 2
  end
end
end
end
"""

TIDY = """flow "x"
# top comment
for each o in [1,
  2,
  3]
  if o > 1
    # inner
    emit o
  else if o == 1
    log "one"
  else
    try
      fail "x"
    on error as e
      map {a: 1} to m
        end = 1
        a = 2
      end
    end
  end
end
"""


def tree(text: str) -> str:
    return ast.dump(parse(Source("t.flow", text)))


def test_blocks_and_continuations() -> None:
    assert format_text(MESSY) == TIDY
    assert format_text(TIDY) == TIDY


def test_brackets_opened_on_one_line_are_one_level() -> None:
    text = 'use m = memory(records: [\n{a: 1},\n{a: 2},\n])\nlet x = {\na: [\n1,\n],\n}\n'
    assert format_text(text) == ('use m = memory(records: [\n  {a: 1},\n  {a: 2},\n])\nlet x = {\n  a: [\n    1,\n'
                                 "  ],\n}\n")


TEXTS = [p.read_text() for p in sorted(ROOT.glob("examples/**/*.flow"))] + [
    c.text for c in all_cases() if not c.check_errors]


@pytest.mark.parametrize("text", TEXTS)
def test_format_keeps_the_tree_and_is_idempotent(text: str) -> None:
    formatted = format_text(text)
    assert tree(formatted) == tree(text)
    assert format_text(formatted) == formatted


def test_examples_are_formatted() -> None:
    for path in ROOT.glob("examples/**/*.flow"):
        assert format_text(path.read_text()) == path.read_text(), path


def test_invalid_text_is_not_formatted() -> None:
    with pytest.raises(FlowSyntaxError):
        format_text("for each x in y\n")


def test_cli(tmp_path: Path) -> None:
    (tmp_path / "a.flow").write_text(MESSY)
    (tmp_path / "b.flow").write_text(TIDY)
    check = cli("fmt", "--check", "a.flow", "b.flow", cwd=tmp_path)
    assert check.status == 1 and "would reformat a.flow" in check.stderr
    assert (tmp_path / "a.flow").read_text() == MESSY
    done = cli("fmt", "a.flow", "b.flow", cwd=tmp_path)
    assert done.status == 0 and (tmp_path / "a.flow").read_text() == TIDY
    assert cli("fmt", "--check", "a.flow", cwd=tmp_path).status == 0
    (tmp_path / "bad.flow").write_text("emit (\n")
    bad = cli("fmt", "bad.flow", cwd=tmp_path)
    assert bad.status == 2 and "bad.flow:1:" in bad.stderr


def test_fmt_keeps_a_files_windows_line_endings(tmp_path: Path) -> None:
    """A file written with CRLF line endings is reindented and keeps them (before, fmt rewrote every
    line ending to LF: a diff of the whole file for a one-line change)."""
    path = tmp_path / "crlf.flow"
    path.write_bytes(b'for each x in [1, 2]\r\n\tif x == 1\r\n\t\temit "a"\r\n\tend\r\nend\r\n')
    result = cli("fmt", str(path), cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert path.read_bytes() == b'for each x in [1, 2]\r\n  if x == 1\r\n    emit "a"\r\n  end\r\nend\r\n'
    assert cli("fmt", "--check", str(path), cwd=tmp_path).status == 0
    unix = tmp_path / "lf.flow"
    unix.write_bytes(b"for each x in [1]\n\temit x\nend\n")
    assert cli("fmt", str(unix), cwd=tmp_path).status == 0
    assert unix.read_bytes() == b"for each x in [1]\n  emit x\nend\n"


def test_fmt_indents_a_file_that_starts_with_a_byte_order_mark(tmp_path: Path) -> None:
    """A file saved by Notepad (a UTF-8 byte order mark first) runs, but fmt left it as it was and said
    '1 already formatted' (its lexer stopped at the mark), so fmt --check passed an unindented file. It
    is indented now, its mark kept."""
    path = tmp_path / "bom.flow"
    path.write_bytes(b'\xef\xbb\xbffor each x in [1, 2]\r\nif x == 1\r\nemit "a"\r\nend\r\nend\r\n')
    assert cli("fmt", "--check", str(path), cwd=tmp_path).status == 1
    result = cli("fmt", str(path), cwd=tmp_path)
    assert result.status == 0 and "1 reformatted" in result.stderr, result.stderr
    assert path.read_bytes() == b'\xef\xbb\xbffor each x in [1, 2]\r\n  if x == 1\r\n    emit "a"\r\n  end\r\nend\r\n'
    assert cli("fmt", "--check", str(path), cwd=tmp_path).status == 0
    assert cli("run", str(path), "--quiet", cwd=tmp_path).stdout == '"a"\n'


LINE_BREAKS_OF_PYTHON = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", LINE_BREAKS_OF_PYTHON)
def test_a_character_str_splitlines_breaks_at_stays_where_it_is(char: str, tmp_path: Path) -> None:
    """format_text cut lines with str.splitlines(), which also breaks at a form feed, U+2028 and the
    others: inside a comment the rest of it became code and inside a string the string was cut, so
    `flowlang fmt` rewrote a valid file into one that did not parse ('expected `call`, ... found
    `b`'). Lines are cut where the lexer cuts them, at a newline alone."""
    text = f'# a{char}b\nfor each x in [1]\nemit "x{char}y"\nend\n'
    formatted = format_text(text)
    assert formatted == f'# a{char}b\nfor each x in [1]\n  emit "x{char}y"\nend\n'
    assert tree(formatted) == tree(text)
    path = tmp_path / "f.flow"
    path.write_text(text, encoding="utf-8", newline="")
    assert cli("fmt", str(path), cwd=tmp_path).status == 0
    assert path.read_bytes().decode("utf-8") == formatted
    assert cli("check", str(path), cwd=tmp_path).status == 0


def test_fmt_of_several_files_formats_the_others_when_one_is_broken(tmp_path: Path) -> None:
    """A syntax error in the first of several files ended fmt there, saying '1 error; nothing was run',
    and the files after it were left unformatted; a missing file said "[Errno 2] ... 'nope.flow'"."""
    (tmp_path / "a_bad.flow").write_text("emit (\n")
    (tmp_path / "b.flow").write_text(MESSY)
    (tmp_path / "c.flow").write_bytes(b"emit '\xff'\n")
    result = cli("fmt", ".", "nope.flow", cwd=tmp_path)
    assert result.status == 2
    assert (tmp_path / "b.flow").read_text() == TIDY
    assert "a_bad.flow:1:6: error: this `(` is not closed" in result.stderr, result.stderr
    assert ("error: cannot read c.flow: it is not UTF-8 text: the byte 0xff at c.flow:1:7 (invalid start byte; "
            "save the file as UTF-8)") in result.stderr, result.stderr
    assert "error: cannot read nope.flow: No such file or directory\n" in result.stderr
    assert "nothing was run" not in result.stderr and "Errno" not in result.stderr
    assert result.stderr.endswith("1 reformatted, 0 already formatted, 3 not formatted (see the errors above)\n")


def test_fmt_leaves_a_path_that_is_no_regular_file_as_it_is(tmp_path: Path) -> None:
    """`flowlang fmt /dev/null` read it as an empty flow, formatted it to a line break and renamed the
    formatted file over it: as root, /dev/null became a regular file for every program of the machine
    (found by hand-fuzzing the CLI's paths). A FIFO the same. A path that is no regular file is refused
    before it is read, and left as it was."""
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe.flow"
    os.mkfifo(fifo)

    def feed() -> None:  # the old code read the FIFO (and replaced it); the new one never opens it
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.write(fd, b"for each x in [1]\nemit x\nend\n")
        os.close(fd)

    for _ in range(50):  # a writer as soon as a reader opens it
        threading.Timer(0.02 * _, feed).start()
    proc = cli("fmt", str(fifo), cwd=tmp_path)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a file"
    assert proc.status == 2 and f"{fifo} is not a regular file: fmt rewrites .flow files only" in proc.stderr, \
        proc.stderr
    (tmp_path / "ok.flow").write_text("for each x in [1]\nemit x\nend\n")
    assert cli("fmt", "ok.flow", cwd=tmp_path).status == 0
    assert (tmp_path / "ok.flow").read_text() == "for each x in [1]\n  emit x\nend\n"


def test_replacing_a_users_file_writes_into_a_fifo_rather_than_over_it(tmp_path: Path) -> None:
    """replace_text (the REPL's :save, connectors import) renamed its temporary file over any path: a FIFO
    or a device (/dev/null, run as root) became a regular file. Such a path is written into."""
    import os
    import stat
    import threading

    from flowlang.file_replace import replace_text

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    replace_text(fifo, "emit 1\n")
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got == ["emit 1\n"]
    replace_text(tmp_path / "plain.flow", "emit 2\n")
    assert (tmp_path / "plain.flow").read_text() == "emit 2\n"
