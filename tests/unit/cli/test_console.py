"""cli/console.py: the Terminal writes records to stdout, people's text to stderr, masks secrets."""

from __future__ import annotations

import io

from flowlang.cli.console import Terminal


def test_records_on_stdout_messages_on_stderr_masked() -> None:
    out, err = io.StringIO(), io.StringIO()
    terminal = Terminal(stdout=out, stderr=err, stdin=io.StringIO("piped"))
    terminal.masker.add("s3cr3t-\"value\"")
    terminal.record({"token": "s3cr3t-\"value\"", "n": 1})
    terminal.message("using s3cr3t-\"value\"")
    assert "s3cr3t" not in out.getvalue() + err.getvalue()
    assert out.getvalue().count("\n") == 1 and "using" in err.getvalue()


def test_stdin_is_the_given_stream() -> None:
    terminal = Terminal(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO("a\nb\n"))
    assert not terminal.stdin_is_terminal()
    assert terminal.read_stdin() == "a\nb\n"
    assert not terminal.rich  # stderr is not a terminal: plain text
