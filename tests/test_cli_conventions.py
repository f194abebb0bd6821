"""The command line's conventions (issue 16; httpie, ruff, git): options spelled out in full,
did-you-mean for commands and options, examples in every --help, colour by NO_COLOR / FORCE_COLOR /
--color, `-` for stdin, folders for check and fmt, check's output formats and --secrets, and shell
completion scripts."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from conftest import ROOT, cli, run_cli
from flowlang.cli.console import wants_color
from flowlang.cli.main import build_parser

ESC = "\x1b["


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- parsing ------------------------------------------------------------------------------------
def test_an_abbreviated_option_is_refused_and_named(tmp_path: Path) -> None:
    write(tmp_path / "f.flow", "emit 1\n")
    result = cli("run", "--dry", "f.flow", cwd=tmp_path)
    assert result.status == 2 and result.stdout == ""  # not run as --dry-run (nor for real)
    assert "unrecognized arguments: --dry; options are spelled out in full: did you mean --dry-run?" \
        in result.stderr


def test_a_command_option_before_the_command_says_where_it_goes(tmp_path: Path) -> None:
    write(tmp_path / "f.flow", "emit 1\n")
    result = cli("--debug", "run", "f.flow", cwd=tmp_path)
    assert result.status == 2 and result.stdout == ""
    assert "--debug is an option of the command: put it after it (flowlang run --debug ...)" in result.stderr
    assert "did you mean --debug" not in result.stderr


def test_a_mistyped_option_gets_the_closest(tmp_path: Path) -> None:
    result = cli("check", "--formt", "json", "f.flow", cwd=tmp_path)
    assert result.status == 2 and "did you mean --format?" in result.stderr


def test_a_mistyped_command_gets_did_you_mean() -> None:
    result = cli("rn", "f.flow")
    assert result.status == 2
    assert "flowlang: error: no command 'rn'; did you mean 'run'?" in result.stderr
    assert "connectors-import" not in result.stderr  # the hidden spellings are not offered


def test_a_mistyped_choice_gets_did_you_mean(tmp_path: Path) -> None:
    result = cli("check", "f.flow", "--format", "githb", cwd=tmp_path)
    assert result.status == 2 and "no choice 'githb'; did you mean 'github'?" in result.stderr


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found: dict[str, argparse.ArgumentParser] = {"": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


@pytest.mark.parametrize("argv", [
    ["run", "f.flow", "--param", "a=1", "--param", "b=x", "--dry-run", "--limit", "3", "--debug"],
    ["secrets", "check", "f.flow", "--json"], ["errors", "f.flow", "--group"], ["serve", "flows"],
    ["connectors-import", "spec.json", "--name", "shop"], ["repl"], ["check", "a.flow", "b.flow"]])
def test_a_parser_of_one_command_parses_it_as_the_whole_one(argv: list[str]) -> None:
    one = build_parser(argv[0])
    assert one.commands is not None and list(one.commands.choices) == [argv[0]]  # the others are not built
    assert one.parse_args(argv) == build_parser().parse_args(argv)
    assert one.commands.choices[argv[0]].format_help() == build_parser().commands.choices[argv[0]].format_help()


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_help_ends_with_examples(name: str) -> None:
    result = cli(*([name] if name else []), "--help")
    assert result.status == 0
    examples = result.stdout.split("examples:\n", 1)[1]
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert lines and all(line.startswith("flowlang ") or line.startswith(("cat ", "echo ")) for line in lines)


def test_the_command_list_shows_no_hidden_command() -> None:
    """The hidden spellings (connectors-import, connectors-verify, connectors-schema: `connectors
    import` etc. are the ones shown) are not listed; Python 3.11 showed each as '==SUPPRESS=='."""
    result = cli("--help")
    assert result.status == 0
    assert "SUPPRESS" not in result.stdout and "connectors-" not in result.stdout
    assert cli("connectors-import", "--help").status == 0  # still a command


# ---- the reference: docs/cli.md -----------------------------------------------------------------
# Where docs/cli.md documents each command's options: the sections (by heading) that hold them.
SECTIONS = {
    "run": ["flowlang run", "flowlang run --record, flowlang test"], "plan": ["flowlang plan"],
    "ledger": ["flowlang ledger"], "test": ["flowlang run --record, flowlang test"], "check": ["flowlang check"],
    "fmt": ["flowlang fmt"], "errors": ["flowlang errors and retry"], "retry": ["flowlang errors and retry"],
    "resolve": ["Looking after the store"], "edit": ["Looking after the store"], "jobs": ["Looking after the store"],
    "state": ["Looking after the store"], "serve": ["flowlang serve and inbox"], "inbox": ["flowlang serve and inbox"],
    "connectors": ["flowlang connectors"], "connectors-import": ["flowlang connectors"],
    "connectors-verify": ["flowlang connectors"], "connectors-schema": ["flowlang connectors"],
    "secrets": ["flowlang secrets check"], "graph": ["flowlang graph"], "lsp": ["flowlang lsp"],
    "repl": ["flowlang repl"], "completion": ["Conventions"],
}
# the options every command has (or every command that opens the store): in "Conventions" and "State"
COMMON = {"--help", "--debug", "--log-format", "--color", "--state-dir"}


def doc_section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def long_options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                found |= long_options(nested)
    return found


@pytest.mark.parametrize("name", sorted(n for n in commands() if n))
def test_every_option_of_a_command_is_in_its_section_of_docs_cli_md(name: str) -> None:
    text = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    documented = "".join(doc_section(text, heading) for heading in SECTIONS[name])
    assert f"flowlang {name.replace('-', ' ')}" in documented or name == "completion"
    missing = sorted(o for o in long_options(commands()[name]) - COMMON
                     if not re.search(re.escape(o) + r"(?![\w-])", documented))
    assert not missing, f"flowlang {name}: {missing} not in docs/cli.md ({SECTIONS[name]})"


def test_the_common_options_are_documented_for_every_command() -> None:
    conventions = doc_section((ROOT / "docs/cli.md").read_text(encoding="utf-8"), "Conventions")
    for option in COMMON - {"--help"}:
        assert option in conventions, option


# ---- colour -------------------------------------------------------------------------------------
def test_color_rules() -> None:
    assert wants_color("auto", True, {}) is True
    assert wants_color("auto", False, {}) is False
    assert wants_color("auto", True, {"NO_COLOR": "1"}) is False
    assert wants_color("auto", True, {"NO_COLOR": ""}) is True  # no-color.org: only a non-empty value
    assert wants_color("auto", False, {"FORCE_COLOR": "1"}) is True
    assert wants_color("auto", False, {"NO_COLOR": "1", "FORCE_COLOR": "1"}) is False
    assert wants_color("always", False, {"NO_COLOR": "1"}) is True
    assert wants_color("never", True, {"FORCE_COLOR": "1"}) is False


def test_force_color_and_color_flag_reach_stderr(tmp_path: Path) -> None:
    write(tmp_path / "bad.flow", "emit custmer\n")
    plain = cli("check", "bad.flow", cwd=tmp_path)
    assert plain.status == 2 and ESC not in plain.stderr  # not a terminal (and NO_COLOR=1)
    forced = cli("check", "bad.flow", cwd=tmp_path, env={"NO_COLOR": "", "FORCE_COLOR": "1"})
    assert ESC in forced.stderr and "unknown name 'custmer'" in forced.stderr
    assert ESC in cli("check", "bad.flow", "--color", "always", cwd=tmp_path).stderr  # beats NO_COLOR
    never = cli("check", "bad.flow", "--color", "never", cwd=tmp_path, env={"NO_COLOR": "", "FORCE_COLOR": "1"})
    assert ESC not in never.stderr and "unknown name 'custmer'" in never.stderr


# ---- stdin and folders --------------------------------------------------------------------------
def test_run_reads_the_flow_from_stdin(tmp_path: Path) -> None:
    result = cli("run", "-", "--quiet", "--param", "n=4", cwd=tmp_path, stdin="param n = 1\nemit n * 10\n")
    assert result.status == 0 and result.stdout == "40\n"
    both = cli("run", "-", "--input", "-", cwd=tmp_path, stdin="emit 1\n")
    assert both.status == 2 and "cannot both come from stdin" in both.stderr


def test_a_flow_from_stdin_keeps_its_failed_records_in_the_working_folder(tmp_path: Path) -> None:
    """`cat job.flow | flowlang run -` kept its jobs and failed records in memory: they were gone when
    the run ended, while it said '2 records failed; see: flowlang errors -', which answered 'no such
    flow file: -'. A flow from stdin is kept in the working folder's store now (docs/cli.md: it runs
    as if it were in the working folder), and errors, jobs and retry take `-` with the flow on stdin."""
    flow = 'flow "From stdin"\nparam limit = 0\nfor each n in [1, 2]\n  if n > limit\n    fail "no {n}"\n  end\n' \
           '  emit n\nend\n'
    ran = run_cli("run", "-", "--log-format", "text", cwd=tmp_path, stdin=flow)
    assert ran.returncode == 3 and "see: flowlang errors -" in ran.stderr, ran.stderr
    assert (tmp_path / ".flowlang" / "flowlang.db").is_file()
    listed = run_cli("errors", "-", "--json", cwd=tmp_path, stdin=flow)
    assert [json.loads(line)["record"] for line in listed.stdout.splitlines()] == [1, 2], listed.stderr
    jobs = run_cli("jobs", "-", "--json", cwd=tmp_path, stdin=flow)
    assert [json.loads(line)["status"] for line in jobs.stdout.splitlines()] == ["partial"]
    (tmp_path / "job.flow").write_text(flow)  # the same flow as a file finds them too
    assert "From stdin: 2 open errors" in run_cli("errors", "job.flow", cwd=tmp_path).stdout
    fixed = flow.replace('fail "no {n}"', "emit -n")  # the mapping fixed: the loop is the same loop
    retried = run_cli("retry", "-", "--id", "1", "--log-format", "text", cwd=tmp_path, stdin=fixed)
    assert retried.returncode == 0 and retried.stdout == "-1\n1\n", retried.stderr
    assert "From stdin: 1 open error" in run_cli("errors", "job.flow", cwd=tmp_path).stdout


def test_a_flow_from_stdin_without_a_name_may_not_use_what_is_kept_under_its_name(tmp_path: Path) -> None:
    """Two flows piped on stdin without a `flow "Name"` line were one flow, `<stdin>`, in the store:
    `flowlang run - < a.flow` set state.since = 6 and `flowlang run - < b.flow`, another flow, read 6.
    Such a flow may not use `state`, `job.last_success_at`, `send ... once` / `if changed` nor --resume
    (refused before it runs, as `check -` refuses it); with a name it may, under that name."""
    a, b = "let state.since = 6\nemit 1\n", "emit state.since\n"
    ran = cli("run", "-", "--log-format", "text", cwd=tmp_path, stdin=a)
    assert ran.status == 2 and ran.stdout == "", ran.stderr
    assert ran.stderr.startswith("<stdin>:1:5: error: a flow read from stdin without a `flow \"Name\"` line cannot "
                                 "use `state`: what it keeps between runs is kept under its name, and every such "
                                 "flow is <stdin>, so one would read another's\n"), ran.stderr
    assert '= hint: give the flow a name of its own: flow "Name" as its first line' in ran.stderr
    for text, where in ((b, "1:6"), ("emit job.last_success_at ?? 0\n", "1:6"),
                        ("use m = memory()\nfor each r in [{id: 1}]\n  send r to m if changed\nend\n", "3:3")):
        for command in ("run", "check"):
            done = cli(command, "-", "--log-format", "text", cwd=tmp_path, stdin=text)
            assert done.status == 2 and f"<stdin>:{where}: error: a flow read from stdin without" in done.stderr
    resumed = cli("run", "-", "--resume", "--log-format", "text", cwd=tmp_path, stdin="emit 1\n")
    assert resumed.status == 2 and "cannot resume a flow read from stdin without a `flow \"Name\"`" in resumed.stderr
    assert cli("run", "-", cwd=tmp_path, stdin='flow "A"\n' + a).status == 0
    assert cli("run", "-", cwd=tmp_path, stdin='flow "B"\n' + b).stdout == "null\n"  # not A's 6
    assert cli("run", "-", cwd=tmp_path, stdin='flow "A"\n' + b).stdout == "6\n"


def test_check_reads_stdin(tmp_path: Path) -> None:
    assert cli("check", "-", cwd=tmp_path, stdin="emit 1\n").stderr == "-: ok (<stdin>)\n"
    bad = cli("check", "-", cwd=tmp_path, stdin="emit custmer\n")
    assert bad.status == 2 and "<stdin>:1:6: error: unknown name 'custmer'" in bad.stderr


def test_fmt_stdin_to_stdout(tmp_path: Path) -> None:
    result = cli("fmt", "-", cwd=tmp_path, stdin="if true\nemit 1\nend\n")
    assert result.status == 0 and result.stdout == "if true\n  emit 1\nend\n"
    assert cli("fmt", "-", "--check", cwd=tmp_path, stdin="if true\nemit 1\nend\n").status == 1
    assert cli("fmt", "-", "--check", cwd=tmp_path, stdin="emit 1\n").status == 0


def test_check_and_fmt_take_folders(tmp_path: Path) -> None:
    write(tmp_path / "flows/a.flow", "emit 1\n")
    write(tmp_path / "flows/deep/b.flow", "if true\nemit 2\nend\n")
    write(tmp_path / "flows/.flowlang/c.flow", "emit nope\n")  # hidden folders are skipped
    write(tmp_path / "flows/notes.txt", "not a flow\n")
    result = cli("check", "flows", cwd=tmp_path)
    assert result.status == 0
    assert result.stderr.splitlines() == ["flows/a.flow: ok (a)", "flows/deep/b.flow: ok (b)"]
    assert cli("fmt", "flows", "--check", cwd=tmp_path).status == 1
    assert cli("fmt", "flows", cwd=tmp_path).status == 0
    assert (tmp_path / "flows/deep/b.flow").read_text() == "if true\n  emit 2\nend\n"
    assert (tmp_path / "flows/.flowlang/c.flow").read_text() == "emit nope\n"
    (tmp_path / "empty").mkdir()
    empty = cli("check", "empty", cwd=tmp_path)
    assert empty.status == 2 and "no .flow files in empty" in empty.stderr


# ---- check --format -----------------------------------------------------------------------------
def test_check_format_json(tmp_path: Path) -> None:
    write(tmp_path / "ok.flow", "emit 1\n")
    write(tmp_path / "bad.flow", "let customer = 1\nemit custmer\n")
    result = cli("check", "ok.flow", "bad.flow", "--format", "json", cwd=tmp_path)
    assert result.status == 2
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"file": "bad.flow", "line": 2, "column": 6, "end_line": 2, "end_column": 13, "severity": "error",
         "code": "unknown-name", "message": "unknown name 'custmer'", "hint": "did you mean 'customer'?"}]


def test_check_format_github(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    write(tmp_path / "flows/bad.flow", "let customer = 1\nemit custmer\n")
    write(tmp_path / "flows/worse.flow", "emit \"a, b: {1 +}\"\n")
    result = cli("check", "flows", "--format", "github", cwd=tmp_path)
    assert result.status == 2
    assert all(line.startswith("::error file=flows/") for line in result.stdout.splitlines())
    assert result.stdout == snapshot


# ---- check --secrets ----------------------------------------------------------------------------
CANARY = "s3cr'et\"\\ünï-" + "x" * 80


def test_check_secrets_verifies_they_exist(tmp_path: Path) -> None:
    write(tmp_path / "f.flow", "let t = secret.API_TOKEN\nlet u = secret.OTHER\nemit 1\n")
    write(tmp_path / "secrets.toml", f"API_TOKEN = {json.dumps(CANARY)}\n")
    missing = cli("check", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path)
    assert missing.status == 2
    assert "f.flow:2:9: error: secret 'OTHER' is not found" in missing.stderr
    assert "API_TOKEN" not in missing.stderr and CANARY not in missing.stderr + missing.stdout
    found = cli("check", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path, env={"OTHER": "x"})
    assert found.status == 0 and CANARY not in found.stderr
    assert cli("check", "f.flow", cwd=tmp_path).status == 0  # without --secrets, not asked


# ---- completion ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = cli("completion", shell)
    assert result.status == 0
    long = "-l " if shell == "fish" else "--"
    for word in ("run", "check", f"{long}dry-run", f"{long}format", "github"):
        assert word in result.stdout


def test_bash_completion_completes_a_command(tmp_path: Path) -> None:
    script = write(tmp_path / "flowlang.bash", cli("completion", "bash").stdout)
    probe = (f"source {script}; COMP_WORDS=(flowlang ru); COMP_CWORD=1; COMP_LINE='flowlang ru'; "
             "COMP_POINT=${#COMP_LINE}; _shtab_flowlang; echo \"${COMPREPLY[@]}\"")
    done = subprocess.run([shutil.which("bash") or "bash", "-c", probe], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["run"]


def test_log_format_json_makes_every_stderr_line_of_any_command_json(tmp_path: Path) -> None:
    """OPERATIONS.md 10: with --log-format json every stderr line is one JSON object. It held for run,
    retry, plan, test and serve only: `flowlang resolve f.flow 999 --log-format json` wrote 'error: no open
    error #999 ...' as text, and check wrote its mistakes as text (or as one info line)."""
    (tmp_path / "f.flow").write_text('flow "F"\nemit 1\n')
    (tmp_path / "bad.flow").write_text("emit 1 +\nemit custmer\n")
    assert run_cli("run", "f.flow", cwd=tmp_path).returncode == 0
    for args in (["resolve", "f.flow", "999"], ["errors", "nothere.flow"], ["edit", "f.flow", "1", "--unset", "a"],
                 ["connectors", "nosuch"], ["ledger", "f.flow", "--forget", "k"], ["jobs", "nothere.flow"]):
        done = run_cli(*args, "--log-format", "json", cwd=tmp_path)
        lines = [json.loads(line) for line in done.stderr.splitlines()]  # each line one JSON object
        assert lines and all({"time", "level", "flow", "job_id", "message"} <= set(x) for x in lines), args
    checked = run_cli("check", "bad.flow", "--log-format", "json", cwd=tmp_path)
    lines = [json.loads(line) for line in checked.stderr.splitlines()]
    assert checked.returncode == 2
    assert [(x["level"], x.get("location")) for x in lines] == [("error", "bad.flow:1:9"), ("error", None)]
    assert lines[0]["message"].startswith("expected an expression")  # the level and place are fields


def test_a_json_log_line_of_an_error_keeps_its_level_and_place_out_of_its_message(tmp_path: Path) -> None:
    """A JSON line of an error said '"level": "error", "message": "error: no such flow file: x.flow"'
    and '"message": "f.flow:2:1: error: boom ..."' with no `location`: the level (and the place) were
    words of the message. They are the line's `level` and `location` fields; the message is the rest."""
    write(tmp_path / "f.flow", 'emit 1\nfail "boom"\n')
    write(tmp_path / "w.flow", "emit 1 +\n")
    WANTED = "expected an expression, found the end of the line"
    said = {}
    for args in (["run", "f.flow"], ["run", "x.flow"], ["check", "w.flow"], ["run", "w.flow"]):
        done = cli(*args, "--log-format", "json", cwd=tmp_path)
        said[" ".join(args)] = json.loads(done.stderr.splitlines()[0])
    assert [(x["level"], x["message"].split("\n")[0], x.get("location")) for x in said.values()] == [
        ("error", "boom", "f.flow:2:1"), ("error", "no such flow file: x.flow", None),
        ("error", WANTED, "w.flow:1:9"), ("error", WANTED, "w.flow:1:9")]
    assert said["run f.flow"]["message"].split("\n")[1:] == [' 2 | fail "boom"', "   | ^^^^^^^^^^^"]
