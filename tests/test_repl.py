"""The REPL: the session engine, completion and meta-commands as plain functions; the screen driven
with prompt-toolkit's pipe input; piped stdin; and one real pseudo-terminal."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prompt_toolkit.application import create_app_session
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console
from syrupy.assertion import SnapshotAssertion

from conftest import cli
from flowlang.cli.console import Terminal
from flowlang.repl.app import build_prompt, interactive
from flowlang.repl.completion import candidates
from flowlang.repl.lexer import FlowLexer
from flowlang.repl.meta import run_meta
from flowlang.repl.session import NOTHING, ReplSession


@pytest.fixture
def session(tmp_path: Path) -> ReplSession:
    s = ReplSession(base_dir=tmp_path)
    yield s
    s.close()


def test_one_environment_across_inputs(session: ReplSession) -> None:
    assert session.execute("let x = 2\n").value is NOTHING
    assert session.execute("x * 21\n").value == 42
    session.execute("function twice(n)\n  return n * 2\nend\n")
    assert session.execute("twice(x)\n").value == 4
    session.execute("use m = memory(records: [{id: 1}, {id: 2}])\n")
    session.execute("call m.read() as rows\n")
    assert session.execute("[r.id for r in rows]\n").value == [1, 2]


def test_errors_keep_the_session_and_declare_nothing(session: ReplSession) -> None:
    bad = session.execute("let y = nope + 1\n")
    assert bad.error is not None and "unknown name 'nope'" in bad.error.render()
    assert "y" not in session.variables()
    failed = session.execute("let z = 1 / 0\n")
    assert failed.error is not None and "division by zero" in failed.error.message
    assert session.execute("1 + 1\n").value == 2


def test_a_refused_input_rolls_back_everything_it_declared(session: ReplSession, tmp_path: Path) -> None:
    bad = session.execute("use m = memory()\nlet a = 1\nfunction g(x)\n  return x\nend\nparam p = 2\nemit nope\n")
    assert bad.error is not None and "unknown name 'nope'" in bad.error.render()
    assert session.variables() == {} and session.connections() == {} and session.functions() == []
    again = session.execute("use m = memory()\nlet a = 1\nfunction g(x)\n  return x\nend\nparam p = 2\n"
                            "emit [g(a), p]\n")
    assert again.error is None, again.error.render()
    assert again.emitted == [[1, 2]]
    (tmp_path / "lib.flow").write_text("function h(x)\n  return y\nend\n")
    assert session.execute('import "lib.flow"\n').error is not None
    (tmp_path / "lib.flow").write_text("function h(x)\n  return x + 1\nend\n")
    fixed = session.execute('import "lib.flow"\nemit h(1)\n')
    assert fixed.error is None, fixed.error.render()
    assert fixed.emitted == [2]


def test_completeness_is_decided_by_the_parser(session: ReplSession) -> None:
    assert not session.is_complete("for each x in [1, 2]\n")
    assert not session.is_complete("let o = {a: 1,\n")
    assert session.is_complete("for each x in [1]\n  emit x\nend\n")
    assert session.is_complete("emit (\n1)\n")
    assert session.is_complete("emit 1 +\n")  # complete, but wrong: it is run and reported


def test_emitted_records_and_secrets(session: ReplSession) -> None:
    session.secrets["TOKEN"] = "s3cret"
    out = session.execute('emit {t: secret.TOKEN}\nemit "x"\n')
    assert [str(v) for v in out.emitted[0].values()] == ["***"]
    assert out.emitted[1] == "x"


def test_load_file_defines_without_running_loops(session: ReplSession, tmp_path: Path) -> None:
    flow = tmp_path / "f.flow"
    flow.write_text('param who = "world"\nuse out = memory()\nfunction greet(n)\n  return "hi {n}"\nend\n'
                    "for each n in [1, 2]\n  send {n: n} to out\nend\n")
    outcome = session.load_file(flow)
    assert outcome.error is None, outcome.error
    assert session.execute("greet(who)\n").value == "hi world"
    assert session.execute("call out.read() as got\n").error is None
    assert session.execute("len(got)\n").value == 0


def test_an_input_that_fails_at_run_time_declares_nothing(session: ReplSession) -> None:
    """`let z = 1 / 0` fails: z is not declared (before, it was, holding null, and :save kept the
    input after it that read z)."""
    assert session.execute("let z = 1 / 0\n").error is not None
    later = session.execute("z\n")
    assert later.error is not None and "unknown name 'z'" in str(later.error)
    assert session.execute("let z = 2\n").error is None
    assert session.execute("z + 1\n").value == 3
    session.execute("let z = int(\"x\")\n")  # fails: z keeps its value
    assert session.execute("z\n").value == 2


def test_save_writes_a_flow_that_checks(session: ReplSession, tmp_path: Path) -> None:
    """:save keeps the inputs that succeeded but the lines typed to see a value (a bare expression is
    not a statement of a .flow file: the saved file did not parse)."""
    for text in ("let xs = [1, 2,\n  3]\n", "xs\n", "len(xs) * 2\n", "function twice(a)\n  return a * 2\nend\n",
                 "twice(4)\n", "for each x in xs\n  emit twice(x)\nend\n"):
        outcome = session.execute(text)
        assert outcome.error is None, outcome.error
    saved = tmp_path / "kept.flow"
    assert "saved 3 input(s)" in run_meta(session, f":save {saved}").text
    assert saved.read_text() == ("let xs = [1, 2,\n  3]\nfunction twice(a)\n  return a * 2\nend\n"
                                 "for each x in xs\n  emit twice(x)\nend\n")
    checked = cli("check", str(saved), cwd=tmp_path)
    assert checked.status == 0, checked.stderr
    ran = cli("run", str(saved), cwd=tmp_path)
    assert ran.status == 0 and ran.stdout.split() == ["2", "4", "6"], ran.stderr


def test_meta_commands(session: ReplSession, tmp_path: Path) -> None:
    session.execute("let x = {a: 1}\n")
    session.execute("use m = memory()\n")
    assert "x = {\"a\":1}  (object)" in run_meta(session, ":vars").text
    assert "m = memory(...)" in run_meta(session, ":connectors").text
    assert "read()" in run_meta(session, ":ops m").text and "get(path)" in run_meta(session, ":ops http").text
    assert not run_meta(session, ":ops nothing").ok
    assert run_meta(session, ":dry on").text == "dry run is on" and session.dry_run
    saved = tmp_path / "kept.flow"
    assert "saved 2 input(s)" in run_meta(session, f":save {saved}").text
    assert saved.read_text() == "let x = {a: 1}\nuse m = memory()\n"
    run_meta(session, ":reset")
    assert session.variables() == {}
    assert run_meta(session, ":quit").quit
    assert "did you mean ':vars'" in run_meta(session, ":varz").text.replace("'vars'", "':vars'")
    flow = tmp_path / "r.flow"
    flow.write_text("emit 7\n")
    assert "7" in run_meta(session, f":run {flow}").text


def test_help_lists_commands_and_explains_a_name(session: ReplSession, snapshot: SnapshotAssertion) -> None:
    session.execute("use m = memory()\n")
    listing = run_meta(session, ":help").text
    for command in ("vars", "connectors", "ops", "load", "run", "dry", "reset", "save", "quit"):
        assert f"  :{command}" in listing  # each with its help text beside it
    assert ":help [NAME]" in listing
    asked = {name: run_meta(session, f":help {name}") for name in (
        "round", "m", "memory", "http.get", "m.write", ":vars", "save", "rund", "http.gett", "nope.read", ":nope")}
    assert all(asked[n].ok for n in ("round", "m", "memory", "http.get", "m.write", ":vars", "save"))
    assert not any(asked[n].ok for n in ("rund", "http.gett", "nope.read", ":nope"))
    assert asked["round"].text.startswith("round(value, places: 0)\nround(x, places): x rounded")
    assert "Examples:" in asked["round"].text and "round(2.5) -> 3" in asked["round"].text
    assert {n: r.text for n, r in asked.items() if n != "round"} == snapshot  # a docstring may change


def test_completion_of_meta_commands_and_help_names(session: ReplSession) -> None:
    session.execute("use m = memory()\n")
    assert candidates(session, ":he") == ("he", ["help"])
    assert candidates(session, ":help rou")[1] == ["round"]
    assert "m" in candidates(session, ":help ")[1] and "memory" in candidates(session, ":help mem")[1]
    assert candidates(session, ":help m.wr") == ("wr", ["write"])
    assert candidates(session, ":help http.g") == ("g", ["get"])


def test_completion(session: ReplSession) -> None:
    session.execute('let order = {customer: {email: "x"}, total: 1}\nuse api = http(base_url: "http://x")\n')
    assert "order" in candidates(session, "emit ord")[1]
    assert candidates(session, "emit low")[1] == ["lower"]
    assert "get" in candidates(session, "call api.")[1]
    assert candidates(session, "emit order.cu")[1] == ["customer"]
    assert candidates(session, "emit order.customer.")[1] == ["email"]
    assert "for" in candidates(session, "fo")[1]
    assert "inflow" in candidates(session, "use x = inf")[1]


def test_lexer_is_a_pygments_plugin() -> None:
    from pygments.lexers import get_lexer_by_name

    assert isinstance(get_lexer_by_name("flowlang"), FlowLexer)
    kinds = {str(t) for t, _ in FlowLexer().get_tokens('for each x in y\n  emit "a {x.b}" # c\nend\n')}
    assert "Token.Keyword" in kinds and "Token.Literal.String.Interpol" in kinds and "Token.Comment.Single" in kinds


def test_screen_with_pipe_input(session: ReplSession) -> None:
    out = io.StringIO()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text("let n = 20\n")
        pipe.send_text("for each i in [1, 2]\n")
        pipe.send_text("emit i + n\n")
        pipe.send_text("end\n")
        pipe.send_text(":vars\n")
        pipe.send_text("[{a: 1}, {a: 2}]\n")
        pipe.send_text("\x04")
        prompt = build_prompt(session, history=InMemoryHistory())
        terminal = Terminal(stdout=out, stderr=io.StringIO(), color=False)
        code = interactive(session, terminal, prompt, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert code == 0
    assert "21" in text and "22" in text and "n = 20" in text
    assert "2 records" in text  # a list of records is shown as a table


def test_a_history_file_that_cannot_be_written_keeps_the_session_going(session: ReplSession, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A history file on a full disk (or gone): each Enter showed prompt_toolkit's 'Unhandled exception in
    event loop ... OSError: [Errno 28] No space left on device ... Press ENTER to continue...' and the
    input never ran. The session says so once and keeps its inputs in memory."""
    import shutil

    for told in (False, True):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        out, err = io.StringIO(), io.StringIO()
        terminal = Terminal(stdout=out, stderr=err, color=False)
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            prompt = build_prompt(session, terminal) if told else build_prompt(session)
            shutil.rmtree(tmp_path / "data")  # the history's folder gone: its writes fail, as on a full disk
            pipe.send_text("let n = 20\n")
            pipe.send_text("n + 1\n")
            pipe.send_text("n * 2\n")
            pipe.send_text("\x04")
            code = interactive(session, terminal, prompt, Console(file=out, width=80, color_system=None))
        assert code == 0
        assert out.getvalue().split() == ["21", "40"], out.getvalue()
        notes = [line for line in err.getvalue().splitlines() if "history file" in line]
        assert len(notes) == told, err.getvalue()
    assert "cannot be written (No such file or directory); this session's inputs are kept in memory only" in notes[0]


def test_piped_stdin() -> None:
    proc = cli("repl", stdin="let x = 2\nx * 21\nlet o = {a: [1, 2]}\nlen(o.a)\n")
    assert proc.status == 0 and proc.stdout.split() == ["42", "2"]
    bad = cli("repl", stdin="1 +\n2\n")
    assert bad.status == 1 and "expected an expression" in bad.stderr and "2" in bad.stdout


def test_piped_stdin_takes_a_line_separator_inside_a_string_as_text() -> None:
    """U+2028, U+2029 and U+0085 inside a string literal are text, as in a .flow file that `flowlang run`
    runs; the piped REPL split its input with str.splitlines(), which ends lines there, so the
    statement failed ("this string is not closed on its line") and later lines lost the variable."""
    proc = cli("repl", stdin='let s = "a\u2028b\u2029c\x85d"\r\nlen(s)\n:quit\r\n1 + 1\n')
    assert proc.status == 0, proc.stderr
    assert proc.stdout.split() == ["7"]  # and :quit ended it (a CRLF line end too)


class Screen:
    """A pseudo-terminal running the REPL, rendered by a VT100 emulator so tests read the screen."""

    def __init__(self, tmp_path: Path) -> None:
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "TERM": "xterm", "NO_COLOR": "1",
               "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.child = pexpect.spawn(sys.executable, ["-m", "flowlang", "repl"], env=env, encoding="utf-8",
                                   timeout=30, dimensions=(24, 80))
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.Stream(self.screen)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, needle: str, timeout: float = 20) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.stream.feed(self.child.read_nonblocking(4096, timeout=0.2))
            except pexpect.TIMEOUT:
                pass
            if needle in self.text():
                return self.text()
        raise AssertionError(f"{needle!r} never appeared on the screen:\n{self.text()}")


@pytest.mark.skipif(sys.platform == "win32", reason="pexpect needs a POSIX pseudo-terminal")
def test_real_terminal_multiline_for_each(tmp_path: Path) -> None:
    term = Screen(tmp_path)
    try:
        term.wait_for("flow>")
        term.child.send("for each n in [5, 6]\r")
        screen = term.wait_for("....")  # the continuation prompt: the parser says the block is open
        assert "flow> for each n in [5, 6]" in screen
        term.child.send("emit n * 10\r")
        term.child.send("end\r")
        screen = term.wait_for("60")
        assert "....  emit n * 10" in screen and "....  end" in screen
        assert screen.index("50") < screen.index("60")
        term.child.send(":quit\r")
        term.child.expect(pexpect.EOF)
    finally:
        term.child.close()
    assert (tmp_path / "flowlang" / "history").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="pexpect needs a POSIX pseudo-terminal")
def test_ctrl_c_cancels_the_running_statement_and_keeps_the_session(tmp_path: Path) -> None:
    term = Screen(tmp_path)
    try:
        term.wait_for("flow>")
        term.child.send("let kept = 7\r")
        term.child.send("for each i in range(0, 4000000)\r")  # under max_value_items (5,000,000)
        term.child.send("let state.last = i\r")
        term.child.send("end\r")
        time.sleep(1.0)
        term.child.sendintr()
        screen = term.wait_for("stopped (Ctrl-C)")
        term.child.send("state.last < 3999999\r")  # the loop stopped early: it did not run to its end
        assert "true" in term.wait_for("true")
        term.child.send("kept + 1\r")
        assert "8" in term.wait_for("8")
        term.child.send(":quit\r")
        term.child.expect(pexpect.EOF)
    finally:
        term.child.close()
    assert "stopped (Ctrl-C)" in screen


@pytest.mark.skipif(sys.platform == "win32", reason="pexpect needs a POSIX pseudo-terminal")
def test_ctrl_c_while_a_long_value_is_shown_keeps_the_session(tmp_path: Path) -> None:
    """Ctrl-C while the screen was showing a long value (2,000,000 numbers, one a line) ended the session,
    its variables and connections lost ('interrupted'); it cuts the output and the session goes on."""
    term = Screen(tmp_path)
    try:
        term.wait_for("flow>")
        term.child.send("let kept = 7\r")
        term.child.send("range(2000000)\r")
        time.sleep(2.0)
        term.child.sendintr()
        term.wait_for("cancelled (Ctrl-C)")
        term.child.send('upper("kept {kept}")\r')
        assert '"KEPT 7"' in term.wait_for('"KEPT 7"')
        term.child.send(":quit\r")
        term.child.expect(pexpect.EOF)
    finally:
        term.child.close()


def test_save_indents_the_blocks_and_says_why_a_file_cannot_be_written(tmp_path: Path) -> None:
    """Blocks typed without indentation were saved so (the prompt shows an indent that is not in the text);
    a folder that does not exist gave 'error: FileNotFoundError: [Errno 2] ...'."""
    typed = "let a = 1\nfor each x in [1, 2]\nif x > a\nemit x\nend\nend\n"
    result = cli("repl", cwd=tmp_path, stdin=typed + ":save nowhere/kept.flow\n:save kept.flow\n")
    assert result.status == 1 and result.stdout == "2\nsaved 2 input(s) to kept.flow\n"
    assert "cannot save to nowhere/kept.flow: No such file or directory\n" in result.stderr, result.stderr
    assert "Error" not in result.stderr
    assert (tmp_path / "kept.flow").read_text() == (
        "let a = 1\nfor each x in [1, 2]\n  if x > a\n    emit x\n  end\nend\n")
    assert cli("fmt", "--check", "kept.flow", cwd=tmp_path).status == 0


def test_an_api_echoing_a_secret_from_the_environment_is_masked_in_the_repl(tmp_path: Path) -> None:
    """The REPL replaced its run's masker with the terminal's after the run had tied its secret providers
    to the first one, so a secret read from the environment (not from --secrets) was never learned by
    the masker that masks what the REPL prints: an API echoing it in its error showed it whole. Texts
    made from a secret (upper()) were not learned at all. The session now has one masker, from the
    start and across :reset, and learns each text made from a secret."""
    from fakeapi import FakeApi

    secret = "Rk3v9Wm2Lp8Tx5QnZZqq77"
    with FakeApi() as api:
        api.route("POST", "/in", lambda req: (422, {}, {"error": f"bad {req.body}"}))
        use = f'use api = http(base_url: "{api.url}", retry: 1)\n'
        result = cli("repl", cwd=tmp_path, env={"T": secret},
                     stdin=use + 'call api.post("/in", body: {s: secret.T, u: upper(secret.T)}) as r\n'
                           ":reset\n" + use + 'call api.post("/in", body: {s: secret.T, l: lower(secret.T)}) as r\n')
        sent = [r.body for r in api.requests]
    assert sent == [{"s": secret, "u": secret.upper()}, {"s": secret, "l": secret.lower()}]
    assert result.stderr.count("answered 422 Unprocessable Entity") == 2, result.stderr
    assert """{"error":"bad {'s': '***', 'u': '***'}"}""" in result.stderr
    assert """{"error":"bad {'s': '***', 'l': '***'}"}""" in result.stderr
    for form in (secret, secret.upper(), secret.lower(), secret[:12]):
        assert form not in result.stdout + result.stderr


def test_piped_statements_are_named_by_their_line_of_stdin_and_a_failed_record_by_its_place(
        tmp_path: Path) -> None:
    """Piped, an error was named by the count of inputs ('<input 4>:1:3'), not the line a user can find;
    a record that failed in a loop was 'record failed at <repl>:1:1' and said twice (a log line too); an
    error inside a function defined in an earlier input pointed at the input that called it."""
    typed = ("let xs = [1, 0]\n\n# a comment\nfunction inv(a)\n  return 1 / a\nend\n"
             "for each x in xs\n  emit inv(x)\nend\nlower(5)\ninv(0)\n")
    result = cli("repl", cwd=tmp_path, stdin=typed)
    assert result.status == 1 and result.stdout == "1\n"
    assert result.stderr == (
        "record failed at <stdin>:5:12: division by zero\n"
        "<stdin>:10:1: error: lower() needs a string, got number\n"
        " 10 | lower(5)\n"
        "    | ^^^^^^^^\n"
        "<stdin>:5:12: error: division by zero\n"
        " 5 |   return 1 / a\n"
        "   |            ^\n"), result.stderr


def test_repl_of_a_flow_leaves_out_a_let_that_needs_a_call_and_names_the_file(tmp_path: Path) -> None:
    """`flowlang repl customers.flow` of the tutorial's delta flow failed as a whole with '<input 1>:12:27:
    error: unknown name 'rows'': its `let changed = [r for r in rows ...]` needs the `call ... as rows`,
    which loading does not run. Such a let (and what needs it) is left out with a note; the rest loads,
    and a mistake in the file is named by the file."""
    (tmp_path / "data.csv").write_text("id,at\n1,2026-01-01T00:00:00Z\n")
    (tmp_path / "f.flow").write_text(
        'use source = file(path: "data.csv")\nlet since = datetime("2025-01-01T00:00:00Z")\n'
        "call source.read() as rows\nlet changed = [r for r in rows if datetime(r.at) > since]\n"
        "let n = len(changed)\nfunction newer(rows)\n  return [r for r in rows if datetime(r.at) > since]\nend\n"
        "for each r in changed\n  emit r\nend\n")
    result = cli("repl", "f.flow", cwd=tmp_path, stdin="since\ncall source.read() as rows\nlen(newer(rows))\n")
    assert result.status == 0, result.stderr
    assert result.stdout == '"2025-01-01T00:00:00Z"\n1\n'
    assert result.stderr == (
        "note: left out let changed (f.flow:4:1): it needs rows, which is not loaded (only definitions are: "
        "run the statement that makes it in the session)\n"
        "note: left out let n (f.flow:5:1): it needs changed, which is not loaded (only definitions are: "
        "run the statement that makes it in the session)\n"), result.stderr
    (tmp_path / "g.flow").write_text('let since = datetme("2025-01-01")\n')
    broken = cli("repl", "g.flow", cwd=tmp_path, stdin="1\n")
    assert broken.status == 1 and broken.stderr.startswith("g.flow:1:13: error: unknown function 'datetme'")


def test_a_param_without_a_value_or_a_default_is_null_with_a_note(tmp_path: Path) -> None:
    """`param since` typed without --param since=... was null without a word (a run stops for it), so
    the statements after it failed or sent null further on."""
    result = cli("repl", cwd=tmp_path, stdin="param since\nsince\nparam n = 2\nn\n")
    assert result.status == 0 and result.stdout == "null\n2\n"
    assert result.stderr == ("note: param since is not given, so it is null here (a run would stop for it): "
                             "flowlang repl --param since=VALUE\n")
    given = cli("repl", "--param", "since=2024-05-01", cwd=tmp_path, stdin="param since\nsince\n")
    assert given.stdout == '"2024-05-01"\n' and given.stderr == ""


def test_load_and_run_of_a_folder_or_of_nothing_say_so(tmp_path: Path) -> None:
    """`:load data` (a folder) said 'no such file: data', and `:load` with no name 'no such file: .'."""
    (tmp_path / "data").mkdir()
    result = cli("repl", cwd=tmp_path, stdin=":load data\n:run data\n:load\n:run nope.flow\n")
    assert result.status == 1
    assert result.stderr == ("data is a folder, not a flow file\ndata is a folder, not a flow file\n"
                             "name a flow file: :load FILE\nno such file: nope.flow\n"), result.stderr


def test_a_served_flow_loads_and_a_typed_trigger_line_is_explained(tmp_path: Path) -> None:
    """`:load orders.flow` (and `flowlang repl orders.flow`) of a flow with `trigger` lines failed the whole
    load ('expected `call`, ... found `trigger`': the REPL parsed the file as its own input, which has no
    trigger lines), so a served flow could not be tried in the REPL; a trigger line typed in the REPL said
    'expected an operator, `(` or the end of the line, found `schedule`'."""
    (tmp_path / "orders.flow").write_text('flow "orders"\ntrigger webhook(verify: github(env.HOOK))\n'
                                          'trigger schedule("0 6 * * *")\nfunction twice(x)\n  return x * 2\nend\n'
                                          'for each o in input.orders\n  emit twice(o)\nend\n')
    loaded = cli("repl", cwd=tmp_path, stdin=":load orders.flow\ntwice(21)\n")
    assert loaded.status == 0, loaded.stderr
    assert loaded.stdout.splitlines()[-1] == "42" and "error" not in loaded.stderr
    opened = cli("repl", "orders.flow", cwd=tmp_path, stdin="twice(4)\n")
    assert opened.status == 0 and opened.stdout.splitlines()[-1] == "8", opened.stderr
    typed = cli("repl", cwd=tmp_path, stdin='trigger schedule("* * * * *")\nlet trigger = {a: 1}\ntrigger.a\n')
    assert ("<stdin>:1:1: error: a `trigger` line belongs in a flow file, for flowlang serve: the REPL runs no "
            "triggers") in typed.stderr
    assert typed.stdout.splitlines()[-1] == "1"  # `trigger` is still a name in the REPL


def test_a_long_object_is_pretty_printed_with_its_decimals_as_they_are(session: ReplSession) -> None:
    """A value shown over several lines kept its numbers exact: rich's print_json read the text back
    as Python's floats, so 19.990 showed as 19.99 and 0.10000000000000000000001 as 0.1."""
    out = io.StringIO()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text('{price: 19.990, exact: 0.10000000000000000000001, tiny: 1e-30, empty: [], none: {}, '
                       'text: "a,\\{b}:[c] \\"q\\" é", items: [1, [2, {}]], name: "long enough to pass 100"}\n')
        pipe.send_text("\x04")
        prompt = build_prompt(session, history=InMemoryHistory())
        terminal = Terminal(stdout=out, stderr=io.StringIO(), color=False)
        code = interactive(session, terminal, prompt, Console(file=out, width=200, color_system=None))
    assert code == 0
    assert out.getvalue().strip().splitlines() == [
        "{",
        '  "price": 19.990,',
        '  "exact": 0.10000000000000000000001,',
        '  "tiny": 0.000000000000000000000000000001,',
        '  "empty": [],',
        '  "none": {},',
        '  "text": "a,{b}:[c] \\"q\\" é",',
        '  "items": [',
        "    1,",
        "    [",
        "      2,",
        "      {}",
        "    ]",
        "  ],",
        '  "name": "long enough to pass 100"',
        "}",
    ]


DEEP = "[" * 700 + "]" * 700  # json_parse reads it; JSON is written at most 500 levels deep


def test_a_value_too_deep_to_show_is_an_error_and_the_session_goes_on(session: ReplSession) -> None:
    """Showing a value nested 700 deep ended the session with 'internal error: JsonDataError ... a bug
    in flowlang' (piped, exit 1, the inputs after it never run; on the screen the same)."""
    stdin = f"let v = json_parse('{DEEP}')\nemit {{x: v}}\nv\n[{{a: v}}]\n:vars\nemit 1\n"
    proc = cli("repl", stdin=stdin)
    assert proc.status == 1 and proc.stdout.splitlines()[-1] == "1"
    assert proc.stderr.count("cannot show this value: the value nests too deeply to be written as JSON") == 3
    assert "internal error" not in proc.stderr and "v = (the value nests too deeply" in proc.stdout

    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text(f"let v = json_parse('{DEEP}')\n")
        pipe.send_text("{x: v}\n")
        pipe.send_text("[{a: v}]\n")
        pipe.send_text("40 + 2\n")
        pipe.send_text("\x04")
        prompt = build_prompt(session, history=InMemoryHistory())
        terminal = Terminal(stdout=out, stderr=err, color=False)
        code = interactive(session, terminal, prompt, Console(file=out, width=80, color_system=None))
    assert code == 0 and out.getvalue().split() == ["42"]
    assert err.getvalue().count("cannot show this value") == 2


REPL_CANARY = 'repl-"tok\'\\en é😀 %41+/=' + "Kq7vX2" * 40  # quotes, a backslash, non-ASCII, '%+/=', 250 long


def echo_token(req: Any) -> tuple[int, dict[str, str], Any]:
    """An API answering with the Authorization header it was sent (as UTF-8, as it was sent)."""
    return 200, {}, {"token": req.headers["authorization"].encode("latin-1").decode()}


def no_piece_of(secret: str, text: str) -> None:
    """Neither the secret nor any 12 characters of its ASCII tail are in `text` (rich folds lines too)."""
    tail = secret[-200:]
    unfolded = "".join(line.strip(" │┃") for line in text.splitlines())
    for shown in (text, unfolded):
        assert secret not in shown
        assert not [tail[i:i + 12] for i in range(0, 188, 4) if tail[i:i + 12] in shown], shown


def test_vars_masks_a_secrets_text_a_variable_holds(tmp_path: Path) -> None:
    """`:vars` showed each value's JSON cut to 60 characters and never masked: a variable holding a
    record an API echoed the bearer token in showed `e = [{"token":"Bearer repl-\\"tok'\\\\en é😀 %41+/=Kq7v...`,
    piped and on the screen; and on the screen a value holding `[/x]` ended the session with rich's
    MarkupError (the text was read as markup)."""
    from fakeapi import FakeApi

    with FakeApi() as api:
        api.route("GET", "/me", echo_token)
        (tmp_path / "secrets.toml").write_text("T = " + json_text(REPL_CANARY) + "\n", encoding="utf-8")
        stdin = (f'use api = http(base_url: "{api.url}", auth: bearer(secret.T))\ncall api.get("/me") as e\n'
                 'let tail = substr(e.token, 40)\nlet m = "[/x] markup"\n:vars\n')
        piped = cli("repl", "--secrets", "secrets.toml", cwd=tmp_path, stdin=stdin)
        assert piped.status == 0, piped.stderr
        assert 'e = {"token":"Bearer ***"}  (object)' in piped.stdout and 'tail = "***"' in piped.stdout
        no_piece_of(REPL_CANARY, piped.stdout + piped.stderr)

        out, err = io.StringIO(), io.StringIO()
        session = ReplSession(base_dir=tmp_path, secrets={"T": REPL_CANARY})
        try:
            with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
                pipe.send_text(stdin + "\x04")
                prompt = build_prompt(session, history=InMemoryHistory())
                terminal = Terminal(stdout=out, stderr=err, color=False)
                terminal.masker = session.masker
                code = interactive(session, terminal, prompt, Console(file=out, width=40, color_system=None))
        finally:
            session.close()
    assert code == 0, err.getvalue()
    assert 'm = "[/x] markup"' in out.getvalue()
    no_piece_of(REPL_CANARY, out.getvalue() + err.getvalue())


def json_text(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def test_a_table_masks_its_column_names_and_shows_markup_as_text(tmp_path: Path) -> None:
    """A list of records printed as a table named its columns unmasked: an API that keys a record by
    the token it was sent showed the whole token in the header (folded over 19 lines of a 40-column
    screen); and a cell or a name holding `[/x]` ended the session with rich's MarkupError."""
    from fakeapi import FakeApi

    def echo(req: Any) -> tuple[int, dict[str, str], Any]:
        token = req.headers["authorization"].encode("latin-1").decode()
        return 200, {}, [{"id": 1, token: "yes", "[/k]": "[/x] and [bold]b"}]

    out, err = io.StringIO(), io.StringIO()
    session = ReplSession(base_dir=tmp_path, secrets={"T": REPL_CANARY})
    with FakeApi() as api:
        api.route("GET", "/keys", echo)
        try:
            with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
                pipe.send_text(f'use api = http(base_url: "{api.url}", auth: bearer(secret.T))\n'
                               'call api.get("/keys") as keys\nkeys\n40 + 2\n\x04')
                prompt = build_prompt(session, history=InMemoryHistory())
                terminal = Terminal(stdout=out, stderr=err, color=False)
                terminal.masker = session.masker
                code = interactive(session, terminal, prompt, Console(file=out, width=40, color_system=None))
        finally:
            session.close()
    shown = out.getvalue()
    assert code == 0 and "error" not in err.getvalue(), err.getvalue()
    assert "Bearer ***" in shown and "[/k]" in shown and "[/x] and" in shown and shown.split()[-1] == "42"
    no_piece_of(REPL_CANARY, shown)


def test_run_in_the_repl_masks_the_outputs_of_the_flow_it_runs(tmp_path: Path) -> None:
    """`:run FILE` printed the run's outputs as they were: a flow whose API echoed its bearer token
    (read from the environment, which the session itself never read) printed the whole token in
    `{"token":"Bearer repl-..."}`, where `flowlang run` of the same flow prints `Bearer ***`."""
    from fakeapi import FakeApi

    with FakeApi() as api:
        api.route("GET", "/me", echo_token)
        (tmp_path / "f.flow").write_text('use api = http(base_url: env.API, auth: bearer(secret.T))\n'
                                         'call api.get("/me") as e\nemit e\nemit [e.token]\n')
        result = cli("repl", cwd=tmp_path, env={"T": REPL_CANARY, "API": api.url}, stdin=":run f.flow\n")
    assert result.status == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ['{"token":"Bearer ***"}', '["Bearer ***"]'], result.stdout
    no_piece_of(REPL_CANARY, result.stdout + result.stderr)


def test_piped_a_block_whose_body_does_not_parse_fails_whole_and_runs_none_of_its_lines(tmp_path: Path) -> None:
    """A body line of a piped `for each` that did not parse ended the input there, and the rest of the
    body ran as statements of their own: the loop's `send` wrote one record, at the top, and its `end`
    said "`end` is a keyword and cannot name a variable". The block fails whole, at its first error."""
    stdin = ('use out = file(path: "sent.jsonl")\n'
             "for each i in [1, 2]\n"
             "  let x = i +\n"
             '  send {note: "body ran"} to out\n'
             '  emit "body ran"\n'
             "  if i > 1\n"
             "    emit i\n"
             "  end\n"
             "end\n"
             'emit "after"\n')
    proc = cli("repl", stdin=stdin, cwd=tmp_path)
    assert proc.status == 1 and proc.stdout == '"after"\n'
    assert proc.stderr == ("<stdin>:3:14: error: expected an expression, found the end of the line\n"
                           " 3 |   let x = i +\n"
                           "   |              ^\n")
    assert not (tmp_path / "sent.jsonl").exists()
    fine = cli("repl", stdin=stdin.replace("i +\n", "i + 1\n"), cwd=tmp_path)
    assert fine.status == 0 and fine.stdout == '"body ran"\n"body ran"\n2\n"after"\n'
    assert (tmp_path / "sent.jsonl").read_text().count("body ran") == 2


def test_piped_an_if_expression_missing_its_else_fails_alone(tmp_path: Path) -> None:
    """`if c then a` (no else) at the start of a line is a value, not a block: the inputs after it run
    (they were read into it as the body of a block left open, up to an `end` that never came)."""
    proc = cli("repl", stdin="if 1 then 2\nlet x = 3\nx\nif true\n  emit if x > 1 then 4 else 5\n  emit 1 +\nend\n6\n",
               cwd=tmp_path)
    assert proc.status == 1 and proc.stdout == "3\n6\n"
    assert proc.stderr.count("error:") == 2 and "<stdin>:1:12: error: expected `else`" in proc.stderr
    assert "<stdin>:6:11: error: expected an expression" in proc.stderr


def test_records_that_fail_alike_are_one_line_and_a_count(session: ReplSession) -> None:
    """A loop whose 1,000 records failed with the same message printed 1,000 'record failed at ...'
    lines (piped and on the screen); a run's log shows the first and a count."""
    stdin = "for each i in range(1000)\n  emit 10 / (i - i)\nend\nfor each i in [1, 2]\n  fail 'no {i}'\nend\n"
    proc = cli("repl", stdin=stdin)
    assert proc.status == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "record failed at <stdin>:2:11: division by zero",
        "1,000 records failed at <stdin>:2:11: division by zero (first: record 1, record 2, record 3, ...)",
        "record failed at <stdin>:5:3: no {i}",
        "2 records failed at <stdin>:5:3: no {i} (first: record 1, record 2)",
    ]
    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text("for each i in range(500)\n")
        pipe.send_text("emit 10 / (i - i)\n")
        pipe.send_text("end\n")
        pipe.send_text("\x04")
        prompt = build_prompt(session, history=InMemoryHistory())
        terminal = Terminal(stdout=out, stderr=err, color=False)
        interactive(session, terminal, prompt, Console(file=out, width=80, color_system=None))
    assert err.getvalue().count("record failed at <input 1>:2:9: division by zero") == 1  # no indent typed
    assert "500 records failed at <input 1>:2:9" in err.getvalue()


def test_repl_of_a_file_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    """`flowlang repl nope.flow` said "internal error: FileNotFoundError: [Errno 2] ... this is a bug in
    flowlang"; a file that is not UTF-8 the same. They are usage errors (exit 2), as for `flowlang run`;
    and `:load` of a file that is not UTF-8 says why, the session going on."""
    (tmp_path / "latin.flow").write_bytes(b'emit "caf\xe9"\n')
    missing = cli("repl", "nope.flow", stdin="1\n", cwd=tmp_path)
    assert missing.status == 2 and missing.stderr == "error: no such flow file: nope.flow\n"
    latin = cli("repl", "latin.flow", stdin="1\n", cwd=tmp_path)
    assert latin.status == 2
    assert latin.stderr == ("error: cannot read latin.flow: it is not UTF-8 text: the byte 0xe9 at latin.flow:1:10 "
                            "(invalid continuation byte; save the file as UTF-8)\n")
    folder = cli("repl", str(tmp_path), stdin="1\n", cwd=tmp_path)
    assert folder.status == 2 and "is a folder: give the .flow file in it" in folder.stderr
    loaded = cli("repl", stdin=":load latin.flow\n40 + 2\n", cwd=tmp_path)
    assert loaded.status == 1 and loaded.stdout == "42\n"
    assert "error: cannot read latin.flow: it is not UTF-8 text" in loaded.stderr and "internal" not in loaded.stderr


def test_the_history_file_never_holds_a_secrets_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every input went to the history file as typed, so a secret's text pasted into one (a token to
    compare with, after `let t = secret.T`) stayed on the disk, where the session showed it as ***."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    out = io.StringIO()
    session = ReplSession(base_dir=tmp_path, secrets={"T": REPL_CANARY})
    try:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            pipe.send_text('let t = secret.T\n')
            pipe.send_text('t == "' + REPL_CANARY.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
            pipe.send_text("\x04")
            prompt = build_prompt(session)
            terminal = Terminal(stdout=out, stderr=io.StringIO(), color=False)
            terminal.masker = session.masker
            code = interactive(session, terminal, prompt, Console(file=out, width=80, color_system=None))
    finally:
        session.close()
    assert code == 0, out.getvalue()
    history = (tmp_path / "data" / "flowlang" / "history").read_text(encoding="utf-8")
    assert "+let t = secret.T" in history and '+t == "***"' in history
    no_piece_of(REPL_CANARY, history)


def test_a_param_given_to_the_repl_is_taken_as_a_run_takes_it(tmp_path: Path) -> None:
    """`flowlang repl f.flow --param since=2024-05-01` for `param since = now() - days(7)` gave the text,
    where a run reads it as a time (`since > d` failed in the session only); and `--param n=abc` for
    `param n = 1` was taken as the text. The session takes the value as a run does, and refuses the other."""
    (tmp_path / "f.flow").write_text("param since = now() - days(7)\nparam n = 1\n")
    proc = cli("repl", "f.flow", "--param", "since=2024-05-01", "--param", "n=2", cwd=tmp_path,
               stdin='type_of(since)\nsince > datetime("2024-04-30T00:00:00Z")\nn + 1\n')
    assert proc.status == 0 and proc.stdout.split() == ['"datetime"', "true", "3"], proc.stderr
    bad = cli("repl", "f.flow", "--param", "n=abc", cwd=tmp_path, stdin="1\n")
    assert bad.status == 1 and "error: param n is a number (its default is 1), got 'abc'" in bad.stderr
    typed = cli("repl", "--param", "n=abc", cwd=tmp_path, stdin="param n = 1\nn\nlet n = 5\nn\n")
    assert typed.status == 1 and typed.stdout == "5\n"  # the refused param declared nothing
    assert "error: param n is a number (its default is 1), got 'abc'" in typed.stderr


def test_piped_a_broken_block_ends_at_its_end_line_whatever_brackets_it_left_open(tmp_path: Path) -> None:
    """After 'function g(a) {' (a bracket left open by a line that does not parse), the block's `end`
    was not seen as one, so every input after it was read into the failed block and never ran; and in a
    map body `end = ...` names a field, it closes nothing."""
    proc = cli("repl", stdin="function g(a) {\n  return a\nend\n40 + 2\n", cwd=tmp_path)
    assert proc.status == 1 and proc.stdout == "42\n"
    assert proc.stderr.count("error:") == 1 and "<stdin>:1:15: error: a `function` block is not written" in proc.stderr
    mapped = cli("repl", stdin='map {a: 1} to o\n  end = 1 +\n  x = 2\nend\nemit "after"\n', cwd=tmp_path)
    assert mapped.status == 1 and mapped.stdout == '"after"\n'
    assert mapped.stderr.count("error:") == 1 and "<stdin>:2:12: error: expected an expression" in mapped.stderr


def test_save_never_writes_a_secrets_text(tmp_path: Path) -> None:
    """`:save` wrote the inputs as typed, so a secret's text pasted into one went into the .flow file
    (which is then committed), where the session showed it as ***."""
    (tmp_path / "secrets.toml").write_text("T = " + json_text(REPL_CANARY) + "\n", encoding="utf-8")
    literal = REPL_CANARY.replace("\\", "\\\\").replace('"', '\\"')
    stdin = f'let t = secret.T\nlet pasted = "{literal}"\nlet n = 1\n:save kept\n'
    result = cli("repl", "--secrets", "secrets.toml", cwd=tmp_path, stdin=stdin)
    assert result.status == 0, result.stderr
    assert ("saved 3 input(s) to kept.flow; an input held the text of a secret, saved as ***: read it with "
            "secret.NAME there") in result.stdout
    saved = (tmp_path / "kept.flow").read_text(encoding="utf-8")
    assert saved == 'let t = secret.T\nlet pasted = "***"\nlet n = 1\n', saved
    no_piece_of(REPL_CANARY, saved + result.stdout + result.stderr)


def test_help_of_a_word_of_the_language_gives_its_form(session: ReplSession) -> None:
    """`:help for` said "no builtin, connection, connector or command 'for'; did you mean 'floor'?", and so
    for every statement and for secret, env, job, state and input: a new user asking what `lookup` does
    got nothing. Each has its form and what it does."""
    assert run_meta(session, ":help for").text.startswith("for each x[, y] in expr [key expr] [parallel N] ... end\n")
    lookup = run_meta(session, ":help lookup")
    assert lookup.ok and "or null when there is none (a 404 is null)" in lookup.text
    for word in ("flow", "param", "use", "let", "call", "send", "map", "if", "skip", "stop", "fail", "try", "emit",
                 "log", "function", "return", "import", "run", "secret", "env", "job", "state", "input"):
        assert run_meta(session, f":help {word}").ok, word
    assert run_meta(session, ":help fro").text.endswith("did you mean 'for'?")


def test_a_function_or_a_connection_defined_again_replaces_the_old_one(tmp_path: Path) -> None:
    """Defining `function f` or `use m` a second time in a session said "the function 'f' is defined
    twice" / "'m' is already defined", so a user who found a bug in a function could not fix it
    without :reset (losing every variable). The new definition is the name for the statements after
    it, with a note; an earlier function that calls it still calls the old one (it was checked and
    compiled against it), and the note says so; :save writes each definition once, the last."""
    stdin = ("function f(x)\n  return x + 1\nend\nfunction g(x)\n  return f(x) * 2\nend\nf(1)\n"
             "function f(x)\n  return x * 10\nend\nf(1)\ng(1)\n"
             "use m = memory(records: [{a: 1}])\ncall m.read() as rows\nrows\n"
             "use m = memory(records: [{a: 2}])\ncall m.read() as rows\nrows\n"
             "function f(y, z)\n  return nope\nend\nf(1)\n"  # refused: f stays as it was
             "function h()\n  return 1\nend\nfunction h()\n  return 2\nend\nh()\n"
             ":save s.flow\n")
    result = cli("repl", cwd=tmp_path, stdin=stdin)
    assert result.stdout.splitlines() == ["2", "10", "4", '[{"a":1}]', '[{"a":2}]', "10", "2",
                                          "saved 6 input(s) to s.flow"], result.stdout
    assert result.status == 1  # the refused f
    assert result.stderr.splitlines()[:2] == [
        "note: function f is defined again: what runs from here on uses the new one; g, defined before, "
        "still calls the old f: define it again to use the new one",
        "note: connection m is defined again: what runs from here on uses the new one (the old connection "
        "is closed)"]
    assert "<stdin>:20:10: error: unknown name 'nope'" in result.stderr
    saved = (tmp_path / "s.flow").read_text()
    assert saved.count("function f(x)") == 1 and "x * 10" in saved and "x + 1" not in saved
    assert saved.count("use m =") == 1 and "[{a: 2}]" in saved and saved.count("function h") == 1
    assert cli("check", "s.flow", cwd=tmp_path).status == 0


def test_two_definitions_in_one_input_are_still_an_error(session: ReplSession) -> None:
    twice = session.execute("function f(x)\n  return 1\nend\nfunction f(x)\n  return 2\nend\n")
    assert twice.error is not None and "the function 'f' is defined twice" in twice.error.render()
    uses = session.execute("use m = memory()\nuse m = memory()\n")
    assert uses.error is not None and "'m' is already defined" in uses.error.render()
    session.execute("let v = 1\n")
    other = session.execute("use v = memory()\n")  # a variable is not a connection to replace
    assert other.error is not None and "'v' is already defined" in other.error.render()


def test_a_file_loaded_again_replaces_its_definitions(tmp_path: Path) -> None:
    """`:load f.flow` a second time, after editing the file, said "'n' is already defined" for its
    first param and loaded nothing of the edit."""
    flow = tmp_path / "f.flow"
    flow.write_text("param n = 1\nuse m = memory()\nfunction f(x)\n  return x + n\nend\n")
    stdin = f":load {flow.name}\nf(1)\n:load {flow.name}\nf(1)\n"
    first = cli("repl", "--param", "n=5", cwd=tmp_path, stdin=stdin)
    assert first.status == 0, first.stderr
    assert first.stdout.splitlines() == [
        "loaded f.flow: m, n", "6", "loaded f.flow: m, n",
        "note: param n, connection m, function f are defined again: what runs from here on uses the new "
        "ones (the old connection is closed)", "6"]


def test_load_and_run_say_which_params_of_the_session_a_file_does_not_declare(tmp_path: Path) -> None:
    """`flowlang repl --param since=... --param n=3` then `:run f.flow` (a flow of n alone) ran it with
    no params at all, n at its default 1, without a word: a session param the flow does not declare
    dropped all of them; and `:load` said nothing of a --param no param takes."""
    (tmp_path / "f.flow").write_text("param n = 1\nemit n\n")
    result = cli("repl", "--param", "since=2024-05-01", "--param", "n=3", cwd=tmp_path,
                 stdin=":run f.flow\n:load f.flow\n")
    assert result.status == 0, result.stderr
    note = "note: --param since is not a param of f.flow (its params: n), so it does not get it"
    assert result.stdout.splitlines() == [note, "3", "f: ok; read 0, sent 0, failed 0", "loaded f.flow: n", note]


def test_save_says_when_the_saved_file_does_not_check(tmp_path: Path) -> None:
    """A connection opened again with another connector after a statement that used it: the saved file
    opens it once, the last way, so that statement no longer checks; :save said only 'saved'."""
    result = cli("repl", cwd=tmp_path, stdin='use m = memory(records: [{a: 1}])\ncall m.read() as rows\n'
                                             'use m = http(base_url: "http://127.0.0.1:9")\n:save s.flow\n')
    assert result.stdout.splitlines() == [
        "saved 2 input(s) to s.flow",
        "note: the file does not check as saved (s.flow:2:8: error: http has no operation 'read'): edit it there"]
    fine = cli("repl", cwd=tmp_path, stdin="let x = 1\n:save t.flow\n")
    assert fine.stdout == "saved 1 input(s) to t.flow\n"



DEFINITIONS = ["function f(x)\n  return x + 1\nend", "function f(x, y = 2)\n  return x * y\nend",
               "function g(x)\n  return f(x) - 1\nend", "function f()\n  return nope\nend",
               "use m = memory(records: [{a: 1}])", "use m = memory()", "use m = http(base_url: \"http://127.0.0.1:9\")",
               "call m.read() as rows", "send {a: 2} to m", "param p = 2", "param p", "let p = 3", "let m = 1",
               "f(1)", "g(1)", "emit f(p ?? 1)", ":load lib.flow", ":save s.flow", 'import "lib2.flow"']


@settings(max_examples=int(os.environ.get("FLOWLANG_FUZZ_EXAMPLES", "30")), deadline=None,
          suppress_health_check=list(HealthCheck), database=None)
@given(inputs=st.lists(st.sampled_from(DEFINITIONS), min_size=1, max_size=12))
def test_any_sequence_of_definitions_and_redefinitions_is_taken_or_refused_and_save_tells_the_truth(
        tmp_path_factory: pytest.TempPathFactory, inputs: list[str]) -> None:
    """Functions, connections and params defined again in any order (a file loaded or imported again): each input
    runs or is refused with a message, never an internal error; and :save's file checks unless it says not."""
    folder = tmp_path_factory.mktemp("redefine")
    (folder / "lib.flow").write_text("param p = 5\nuse m = memory()\nfunction f(x)\n  return x\nend\n")
    (folder / "lib2.flow").write_text("use m = memory(records: [{a: 3}])\nfunction f(x, y = 1)\n  return x - y\nend\n")
    result = cli("repl", cwd=folder, stdin="\n".join([*inputs, ":save s.flow"]) + "\n")
    assert "internal error" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    checks = cli("check", "s.flow", cwd=folder).status == 0
    assert checks != result.stdout.rstrip().endswith("edit it there"), result.stdout


def test_an_import_typed_again_reads_its_file_again(tmp_path: Path) -> None:
    """`import "lib.flow"` a second time, after editing the file, said "the imported connection 'lm' is
    already defined" (and the file's functions stayed as first read). It reads the file again: its
    functions and connections replace the old ones, with the note, and :save keeps one import."""
    lib = tmp_path / "lib.flow"
    lib.write_text('use lm = memory(records: [{a: 1}])\nfunction lf(x)\n  return x + 1\nend\n')
    session = ReplSession(base_dir=tmp_path)
    try:
        assert session.execute('import "lib.flow"\n').error is None
        assert session.execute("lf(1)\n").value == 2
        lib.write_text('use lm = memory(records: [{a: 2}])\nfunction lf(x)\n  return x * 100\nend\n')
        again = session.execute('import "lib.flow"\n')
        assert again.error is None, again.error.render()
        assert again.notes == ["note: function lf, connection lm are defined again: what runs from here on uses "
                               "the new ones (the old connection is closed)"]
        assert session.execute("lf(1)\n").value == 100
        assert session.execute("call lm.read() as r\n").error is None
        assert session.execute("r\n").value == [{"a": 2}]
        assert session.saved_text().count('import "lib.flow"') == 1
    finally:
        session.close()


def test_save_never_replaces_a_file_the_session_did_not_write(tmp_path: Path) -> None:
    """`:save orders.flow` replaced an existing flow file whole with the session's inputs, silently: a
    flow the user had `:load`ed (whose loops the session never held) was lost, and `:save /tmp` wrote
    /tmp.flow beside the folder. A file the session did not write is refused; its own it writes again."""
    (tmp_path / "orders.flow").write_text('emit "precious"\n')
    (tmp_path / "folder").mkdir()
    typed = ("let x = 1\n:save orders.flow\n:save orders\n:save folder\n:save mine.flow\nlet y = 2\n"
             ":save mine.flow\n")
    result = cli("repl", cwd=tmp_path, stdin=typed)
    assert result.status == 1
    assert result.stdout == "saved 1 input(s) to mine.flow\nsaved 2 input(s) to mine.flow\n", result.stdout
    assert result.stderr.count("cannot save to orders.flow: the file exists and this session did not write it; "
                               "give another name, or remove the file first") == 2, result.stderr
    assert "cannot save to folder: it is a folder; give a file name" in result.stderr
    assert (tmp_path / "orders.flow").read_text() == 'emit "precious"\n'
    assert (tmp_path / "mine.flow").read_text() == "let x = 1\nlet y = 2\n"
    assert not (tmp_path / "folder.flow").exists()
