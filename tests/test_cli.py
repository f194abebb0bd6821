"""The CLI: exit statuses, stdout/stderr separation, errors and retry (in-process, through `cli`), and
what needs a real process (the lock across processes, `python -m flowlang`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, run_cli


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def lines(text: str) -> list[object]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_records_on_stdout_logs_on_stderr(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'log "hello from the log"\nemit {a: 1}\nemit "two"\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == 0
    assert lines(proc.stdout) == [{"a": 1}, "two"]
    assert "hello from the log" in proc.stderr
    assert "hello" not in proc.stdout


def test_json_logs_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'flow "Logged"\nlog warn "careful"\nemit 1\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    warn = next(e for e in entries if e["message"] == "careful")
    assert warn["level"] == "warning" and warn["flow"] == "Logged" and isinstance(warn["job_id"], int)
    assert warn["location"] == "f.flow:2:1"
    summary = entries[-1]
    assert summary["summary"]["emitted"] == 1


def test_text_logs_on_request(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'log warn "careful"\n')
    proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert "warning: careful" in proc.stderr
    assert "run finished" in proc.stderr


@pytest.mark.parametrize(("text", "status"), [
    ("emit 1\n", 0),
    ("emit 1\nfail \"no\"\n", 1),
    ("emit nope\n", 2),
    ("emit (\n", 2),
    ("for each n in [1, 2]\n  fail \"x\"\nend\n", 3),
])
def test_exit_statuses(tmp_path: Path, text: str, status: int) -> None:
    write(tmp_path, "f.flow", text)
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == status, proc.stderr
    assert "Traceback" not in proc.stderr


def test_script_errors_are_reported_before_anything_runs(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'use out = file(path: "out.jsonl")\nsend {a: 1} to out\nemit custmer\n'
                              'let customer = 1\n')
    proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.status == 2
    assert proc.stdout == ""
    assert not (tmp_path / "out.jsonl").exists()
    assert "f.flow:3:6: error: unknown name 'custmer'" in proc.stderr
    assert " 3 | emit custmer" in proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'fail "boom"\n')
    plain = cli("run", "f.flow", cwd=tmp_path)
    debug = cli("run", "f.flow", "--debug", cwd=tmp_path)
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "param since\nemit since\n")
    assert cli("run", "f.flow", cwd=tmp_path).status == 2
    unknown = cli("run", "f.flow", "--param", "since=1", "--param", "other=2", cwd=tmp_path)
    assert unknown.status == 2 and "unknown param 'other'" in unknown.stderr
    assert cli("run", "missing.flow", cwd=tmp_path).status == 2
    assert cli("run", cwd=tmp_path).status == 2
    assert cli("nonsense", cwd=tmp_path).status == 2


def test_params_and_input(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "param n\nparam s = \"x\"\nemit {n: n, s: s, input: input}\n")
    write(tmp_path, "in.json", '{"ids": [1, 2]}')
    proc = cli("run", "f.flow", "--param", "n=[1,2]", "--param", "s=plain text", "--input", "in.json",
                   cwd=tmp_path)
    assert lines(proc.stdout) == [{"n": [1, 2], "s": "plain text", "input": {"ids": [1, 2]}}]


def test_a_value_that_looks_like_json_but_is_not_is_refused(tmp_path: Path) -> None:
    """`--param ids=[1,2` (a bracket lost) or `--param 'filter={status: "paid"}'` (a flowlang object,
    not JSON) was taken as a text, so the run started and failed as a job ('cannot loop over string',
    exit 1, a failed job for the alerts); `flowlang state --set` and `edit --set` stored such text. A
    value that starts with [ or { must be JSON now: exit 2 before anything runs, saying what is wrong;
    a text that starts so is given as a JSON string."""
    write(tmp_path, "f.flow", 'flow "F"\nparam ids = [1]\nfor each i in ids\n  emit i\nend\n')
    for raw in ("ids=[1,2", 'ids={status: "paid"}', "ids= [1, 2,]"):
        proc = cli("run", "f.flow", "--param", raw, "--log-format", "text", cwd=tmp_path)
        assert proc.status == 2, (raw, proc.stderr)
        assert f"--param {raw} is not valid JSON" in proc.stderr and "a text that starts with" in proc.stderr
        state = cli("state", "f.flow", "--set", raw, cwd=tmp_path)
        assert state.status == 2 and f"--set {raw} is not valid JSON" in state.stderr, state.stderr
    assert "no jobs yet" in cli("jobs", "f.flow", cwd=tmp_path).stdout
    assert lines(cli("run", "f.flow", "--param", "ids=[1, 2]", cwd=tmp_path).stdout) == [1, 2]
    text = cli("run", "f.flow", "--param", 'ids="[draft]"', cwd=tmp_path)
    # the JSON string is the text itself, which a param with a list default refuses before the run
    assert text.status == 2 and "param ids is a list (its default is one), got '[draft]'" in text.stderr
    assert cli("state", "f.flow", "--set", "since=2024-05-01", cwd=tmp_path).status == 0  # other text as before
    assert json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)["state"] == {"since": "2024-05-01"}


def test_a_state_or_record_set_too_deep_to_keep_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """`flowlang state --set` or `edit --set` of a path 3,000 names long (`z.x.x....d=1`, a script's loop
    gone wrong) ended in 'internal error: RecursionError ... this is a bug in flowlang' as the value was
    encoded for the store, after a job of kind state (status ok) was recorded for a change never made."""
    write(tmp_path, "f.flow", 'flow "F"\nfor each r in [{id: 1}]\n  fail "x"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).status == 3
    deep = "z." + "x." * 3000 + "d"
    for args in (("state", "f.flow", "--set", f"{deep}=1"), ("edit", "f.flow", "1", "--set", f"{deep}=1")):
        proc = cli(*args, "--log-format", "text", cwd=tmp_path)
        assert proc.status == 2, (args[0], proc.stderr[-300:])
        assert "would nest more than a few hundred levels deep" in proc.stderr and "nothing was changed" in proc.stderr
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)["state"] == {}
    assert [j["kind"] for j in lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout)] == ["run"]
    error = json.loads(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
    assert error["record"] == {"id": 1} and not error.get("history")


def test_a_long_value_that_is_not_json_is_said_in_part(tmp_path: Path) -> None:
    """`--set a=[[[...]]]` or `--param p=...` of thousands of characters that is not JSON (too deep to read)
    repeated the whole value in its error: 6,216 characters of brackets for one of 6,002."""
    write(tmp_path, "f.flow", 'flow "F"\nparam p = null\nemit p\n')
    deep = "[" * 3000 + "]" * 3000
    for args in (("state", "f.flow", "--set", f"a={deep}"), ("run", "f.flow", "--param", f"p={deep}")):
        proc = cli(*args, "--log-format", "text", cwd=tmp_path)
        assert proc.status == 2, (args[0], proc.stderr[-300:])
        assert len(proc.stderr) < 600, proc.stderr[:700]
        assert "... (a value of 6,000 characters) is not valid JSON" in proc.stderr, proc.stderr[:700]
    proc = cli("state", "f.flow", "--set", "a=[1,", "--log-format", "text", cwd=tmp_path)
    assert "error: --set a=[1, is not valid JSON" in proc.stderr, proc.stderr


def test_check_many_files(tmp_path: Path) -> None:
    write(tmp_path, "good.flow", "emit 1\n")
    write(tmp_path, "bad.flow", "emit x\n")
    assert cli("check", "good.flow", cwd=tmp_path).status == 0
    both = cli("check", "good.flow", "bad.flow", cwd=tmp_path)
    assert both.status == 2
    assert "bad.flow:1:6" in both.stderr and "1 of 2 files has errors" in both.stderr
    assert "1 of 1 file has errors" in cli("check", "bad.flow", cwd=tmp_path).stderr
    write(tmp_path, "worse.flow", "emit y\n")
    assert "2 of 2 files have errors" in cli("check", "bad.flow", "worse.flow", cwd=tmp_path).stderr


def test_check_of_a_folder_says_when_two_flows_share_a_name(tmp_path: Path) -> None:
    """Two flows of one folder named alike share their state, jobs and errors, and `flowlang serve` refuses
    the folder ('... have the same flow name'); `flowlang check DIR` said 'ok' for both."""
    write(tmp_path, "a.flow", 'flow "orders"\nemit 1\n')
    write(tmp_path, "b.flow", '\nflow "orders"\nemit 2\n')
    write(tmp_path, "sub/c.flow", 'flow "orders"\nemit 3\n')  # a folder of its own: a state folder of its own
    done = cli("check", ".", cwd=tmp_path)
    assert done.status == 2
    assert ("b.flow:2:1: error: a.flow has the same flow name 'orders'; flows that share a state folder need "
            "distinct names") in done.stderr
    assert "1 of 3 files has errors" in done.stderr and "sub/c.flow: ok (orders)" in done.stderr
    assert cli("check", "a.flow", cwd=tmp_path).status == 0


def test_errors_and_retry_resolve(tmp_path: Path) -> None:
    write(tmp_path, "blocked.csv", "ref\nB\n")
    write(tmp_path, "f.flow", """
use blocked = file(path: "blocked.csv")
use out = file(path: "out.jsonl", mode: "append")
for each ref in ["A", "B", "C"]
  lookup blocked.find(ref: ref) as b
  if b != null
    fail "{ref} is blocked"
  end
  send {ref: ref} to out
end
""")
    first = cli("run", "f.flow", cwd=tmp_path)
    assert first.status == 3
    listed = cli("errors", "f.flow", cwd=tmp_path)
    assert "B is blocked" in listed.stdout and "f.flow:7:5" in listed.stdout
    write(tmp_path, "blocked.csv", "ref\nZ\n")
    retried = cli("retry", "f.flow", cwd=tmp_path)
    assert retried.status == 0, retried.stderr
    assert "resolved 1" in retried.stderr
    assert "no open errors" in cli("errors", "f.flow", cwd=tmp_path).stdout
    sent = [json.loads(line)["ref"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(sent) == ["A", "B", "C"]
    again = cli("retry", "f.flow", cwd=tmp_path)
    assert again.status == 0 and "resolved 0" in again.stderr


def test_retry_one_error_by_id(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'for each n in [1, 2]\n  fail "bad {n}"\nend\n')
    cli("run", "f.flow", cwd=tmp_path)
    errors = [json.loads(x) for x in cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [e["message"] for e in errors] == ["bad 1", "bad 2"]
    one = cli("retry", "f.flow", "--id", str(errors[1]["id"]), cwd=tmp_path)
    assert one.status == 3
    after = [json.loads(x) for x in cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [e["attempts"] for e in after] == [1, 2]
    missing = cli("retry", "f.flow", "--id", "999", cwd=tmp_path)
    assert missing.status == 2


def test_state_dir_option_and_environment(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "let state.n = (state.n ?? 0) + 1\nemit state.n\n")
    elsewhere = tmp_path / "states"
    assert lines(cli("run", "f.flow", "--state-dir", str(elsewhere), cwd=tmp_path).stdout) == [1]
    assert lines(cli("run", "f.flow", "--state-dir", str(elsewhere), cwd=tmp_path).stdout) == [2]
    assert (elsewhere / "flowlang.db").is_file()
    assert not (tmp_path / ".flowlang").exists()
    env = {"FLOWLANG_STATE_DIR": str(elsewhere)}
    assert lines(cli("run", "f.flow", cwd=tmp_path, env=env).stdout) == [3]


def test_state_is_not_committed_when_the_run_fails(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "param boom = false\nlet state.n = (state.n ?? 0) + 1\nemit state.n\n"
                              "if boom\n  fail \"boom\"\nend\n")
    assert lines(cli("run", "f.flow", cwd=tmp_path).stdout) == [1]
    assert cli("run", "f.flow", "--param", "boom=true", cwd=tmp_path).status == 1
    assert lines(cli("run", "f.flow", cwd=tmp_path).stdout) == [2]


def test_dry_run_commits_no_state(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "emit job.dry_run\nlet state.n = (state.n ?? 0) + 1\nemit state.n\n")
    assert lines(cli("run", "f.flow", "--dry-run", cwd=tmp_path).stdout) == [True, 1]
    assert lines(cli("run", "f.flow", cwd=tmp_path).stdout) == [False, 1]


def test_second_run_of_the_same_flow_exits_75(tmp_path: Path) -> None:
    # the first run blocks reading a named pipe until the test writes to it
    os.mkfifo(tmp_path / "pipe.jsonl")
    write(tmp_path, "slow.flow", 'use src = file(path: "pipe.jsonl")\nemit "started"\ncall src.read() as rows\n'
                                 'for each r in rows\n  emit r\nend\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    first = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "slow.flow"], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == '"started"'
        # the first run holds the lock until the test writes to the pipe (below, after this run), so
        # the second run can only end here if it does not wait for the lock
        second = run_cli("run", "slow.flow", cwd=tmp_path)
        assert second.returncode == 75, second.stderr
        assert "another run" in second.stderr
        assert first.poll() is None  # still holding the lock: the refusal was not a race with its end
    finally:
        with (tmp_path / "pipe.jsonl").open("w") as pipe:
            pipe.write('{"n": 1}\n')
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    assert lines(out) == [{"n": 1}]


def test_limit(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "for each n in range(0, 100)\n  emit n\nend\nfor each m in [7, 8, 9]\n  emit m\nend\n")
    assert lines(cli("run", "f.flow", "--limit", "2", cwd=tmp_path).stdout) == [0, 1, 7, 8]


def test_secrets_file_is_masked(tmp_path: Path) -> None:
    write(tmp_path, "secrets.toml", 'TOKEN = "s3cr3t-value"\n')
    write(tmp_path, "f.flow", 'let t = secret.TOKEN\nlog "token {t} and {secret.TOKEN}"\nemit {t: t}\n'
                              'fail "failing with {t}"\n')
    proc = cli("run", "f.flow", "--secrets", "secrets.toml", cwd=tmp_path)
    assert proc.status == 1
    assert "s3cr3t-value" not in proc.stdout + proc.stderr
    assert lines(proc.stdout) == [{"t": "***"}]


def test_missing_secret_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "emit secret.NOT_SET_ANYWHERE_42\n")
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == 2  # a usage mistake: set the secret and run again
    assert "secret 'NOT_SET_ANYWHERE_42' is not set" in proc.stderr
    in_loop = write(tmp_path, "g.flow", "for each i in [1, 2]\n  emit secret.NOT_SET_ANYWHERE_42\nend\n")
    assert cli("run", str(in_loop), cwd=tmp_path).status == 3  # in a loop: failed records, kept for retry


def test_python_dash_m_and_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("flowlang ")


def test_connectors_listing() -> None:
    proc = cli("connectors")
    assert proc.status == 0
    for name in ("file", "memory"):
        assert name in proc.stdout
    one = cli("connectors", "file")
    assert "path" in one.stdout and "write" in one.stdout and "default for send" in one.stdout
    bad = cli("connectors", "fiel")
    assert bad.status == 2 and "did you mean 'file'" in bad.stderr


def test_an_unusable_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "emit 1\n")
    (tmp_path / "file").write_text("not a folder")
    proc = cli("run", "f.flow", "--state-dir", str(tmp_path / "file" / "sub"), cwd=tmp_path)
    assert proc.status == 1
    assert "cannot use the state folder" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    # the reason once, in words ("[Errno 20] Not a directory: '/tmp/.../file/sub'" repeated the path)
    # and which part is in the way ("Not a directory", or "File exists" for the file itself, said neither)
    assert (f"cannot use the state folder {tmp_path / 'file' / 'sub'}: {tmp_path / 'file'} is a file, not a "
            "folder (set --state-dir") in proc.stderr
    assert "Errno" not in proc.stderr
    itself = cli("run", "f.flow", "--state-dir", str(tmp_path / "file"), cwd=tmp_path)
    assert itself.status == 1 and f"{tmp_path / 'file'} is a file, not a folder" in itself.stderr
    assert "File exists" not in itself.stderr


def test_a_damaged_store_is_named_as_damaged(tmp_path: Path) -> None:
    """A store file that is not an SQLite database (damaged, or another file put there) was 'cannot use
    the state folder .flowlang: file is not a database (set --state-dir or FLOWLANG_STATE_DIR to a
    folder you can write)': it named the folder, not the file, and sent the user to permissions."""
    write(tmp_path, "f.flow", "emit 1\n")
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    store = tmp_path / ".flowlang" / "flowlang.db"
    store.write_bytes(b"\x00garbage" * 50)
    for name in (store.name + "-wal", store.name + "-shm"):
        (store.parent / name).unlink(missing_ok=True)
    for command in (("run", "f.flow", "--log-format", "text"), ("errors", "f.flow"), ("jobs", "f.flow")):
        proc = cli(*command, cwd=tmp_path)
        assert proc.status == 1 and proc.stdout == "", proc.stderr
        assert (f"the store {store} is damaged or is not a flowlang store (file is not a database); move it "
                "away to start a new one") in proc.stderr, proc.stderr
        assert "a folder you can write" not in proc.stderr


def test_run_another_flow_as_its_own_job(tmp_path: Path) -> None:
    write(tmp_path, "child.flow", 'flow "child"\nparam who = "nobody"\nlet state.n = (state.n ?? 0) + 1\n'
                                  'emit "hello {who} #{state.n}"\n')
    write(tmp_path, "main.flow", 'emit "before"\nrun "child.flow" with {who: "main"}\nemit "after"\n')
    first = cli("run", "main.flow", cwd=tmp_path)
    assert first.status == 0, first.stderr
    assert lines(first.stdout) == ["before", "hello main #1", "after"]
    assert lines(cli("run", "main.flow", cwd=tmp_path).stdout)[1] == "hello main #2"  # its own state
    write(tmp_path, "broken.flow", 'fail "the child broke"\n')
    write(tmp_path, "main2.flow", 'run "broken.flow"\nemit "not here"\n')
    failed = cli("run", "main2.flow", cwd=tmp_path)
    assert failed.status == 1 and "the flow broken.flow failed at broken.flow:1:1: the child broke" in failed.stderr
    write(tmp_path, "main3.flow", 'run "child.flow" with {whom: 1}\n')
    bad = cli("run", "main3.flow", cwd=tmp_path)  # refused before the run, as check refuses it
    assert bad.status == 2 and "child.flow has no param 'whom' (its params: who)" in bad.stderr


def test_input_from_stdin(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "for each r in input\n  emit r.n\nend\n")
    assert lines(cli("run", "f.flow", "--input", "-", cwd=tmp_path, stdin='[{"n": 1}, {"n": 2}]').stdout) == [1, 2]
    bad = cli("run", "f.flow", "--input", "-", cwd=tmp_path, stdin="{not json")
    assert bad.status == 2 and "--input - is not valid JSON" in bad.stderr
    assert "CSV" not in bad.stderr


def test_a_csv_file_given_as_input_is_sent_to_the_file_connector(tmp_path: Path) -> None:
    # an integration platform's "upload a CSV" habit: 'error: --input orders.csv is not valid JSON: Expecting
    # value at line 1 column 1', and nothing said where a CSV file is read
    write(tmp_path, "f.flow", "for each r in input\n  emit r\nend\n")
    write(tmp_path, "orders.csv", "id,total\n1,5\n")
    bad = cli("run", "f.flow", "--input", "orders.csv", "--log-format", "text", cwd=tmp_path)
    assert bad.status == 2
    assert ("error: --input orders.csv is not valid JSON: Expecting value at line 1 column 1 (--input takes JSON or "
            'JSON Lines; read a CSV file in the flow: use src = file(path: "orders.csv"), relative to the flow\'s '
            "folder, then call src.read() as rows)") in bad.stderr


def test_an_empty_input_file_says_it_is_empty(tmp_path: Path) -> None:
    """--input of an empty .json file (an export that wrote nothing) said 'is not valid JSON: Expecting
    value at line 1 column 1'; it says the file is empty and what no records are. An empty .jsonl file and
    an empty stdin are no records, as before."""
    write(tmp_path, "f.flow", "for each r in input\n  emit r\nend\n")
    write(tmp_path, "batch.json", " \n")
    write(tmp_path, "batch.jsonl", "")
    bad = cli("run", "f.flow", "--input", "batch.json", "--log-format", "text", cwd=tmp_path)
    assert bad.status == 2 and bad.stdout == ""
    assert ("error: --input batch.json is empty: it holds no JSON value (no records is [] in a .json file, or an "
            "empty .jsonl file)") in bad.stderr, bad.stderr
    assert cli("run", "f.flow", "--input", "batch.jsonl", cwd=tmp_path).status == 0


def test_an_input_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """--input of a JSON file that starts with a UTF-8 byte order mark (PowerShell 5's Out-File and
    Notepad write one) was refused, "--input in.json is not valid JSON: Unexpected UTF-8 BOM (decode
    using utf-8-sig)", though file() reads such a file; the mark is skipped, for JSON Lines and stdin too."""
    write(tmp_path, "f.flow", "for each r in input\n  emit r.n\nend\n")
    (tmp_path / "in.json").write_bytes(b'\xef\xbb\xbf[{"n": 1}, {"n": 2}]')
    (tmp_path / "in.jsonl").write_bytes(b'\xef\xbb\xbf{"n": 3}\n{"n": 4}\n')
    assert lines(cli("run", "f.flow", "--input", "in.json", cwd=tmp_path).stdout) == [1, 2]
    assert lines(cli("run", "f.flow", "--input", "in.jsonl", cwd=tmp_path).stdout) == [3, 4]
    assert lines(cli("run", "f.flow", "--input", "-", cwd=tmp_path, stdin='\ufeff[{"n": 5}]').stdout) == [5]


def test_a_flow_saved_with_a_byte_order_mark_runs(tmp_path: Path) -> None:
    """A .flow file that starts with a UTF-8 byte order mark (Windows Notepad writes one) was a syntax
    error, "unexpected character '\\ufeff'" at 1:1; the mark is not part of the flow, nor of its columns."""
    (tmp_path / "bom.flow").write_bytes(b"\xef\xbb\xbfemit 1\n")
    result = cli("run", "bom.flow", cwd=tmp_path)
    assert result.status == 0 and result.stdout == "1\n", result.stderr
    (tmp_path / "bad.flow").write_bytes(b"\xef\xbb\xbfemit foo\n")
    result = cli("check", "bad.flow", cwd=tmp_path)
    assert result.status == 2 and "bad.flow:1:6: error: unknown name 'foo'" in result.stderr
    (tmp_path / "lib.flow").write_bytes(b"\xef\xbb\xbffunction two()\n  return 2\nend\n")
    (tmp_path / "main.flow").write_text('import "lib.flow"\nemit two()\n')
    result = cli("run", "main.flow", cwd=tmp_path)
    assert result.status == 0 and result.stdout == "2\n", result.stderr


def test_json_lines_on_stdin_are_a_list_of_records(tmp_path: Path) -> None:
    """What `flowlang run` writes (JSON Lines) is an --input - the next flow can read: before, two lines
    or more were 'not valid JSON: Extra data'. A real pipe between two runs; a broken line is named."""
    import subprocess
    import sys

    write(tmp_path, "a.flow", "for each n in [1, 2, 3]\n  emit {n: n}\nend\n")
    write(tmp_path, "b.flow", "for each r in input\n  emit r.n * 10\nend\n")
    first = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "a.flow"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    second = subprocess.run([sys.executable, "-m", "flowlang", "run", "b.flow", "--input", "-"], cwd=tmp_path,
                            stdin=first.stdout, capture_output=True, text=True, timeout=60)
    assert first.wait(timeout=60) == 0
    assert second.returncode == 0, second.stderr
    assert lines(second.stdout) == [10, 20, 30]
    bad = cli("run", "b.flow", "--input", "-", cwd=tmp_path, stdin='{"n": 1}\n{"n": 2\n')
    assert bad.status == 2 and "--input - line 2 is not valid JSON" in bad.stderr


def test_a_pipe_carries_texts_with_line_separators_and_nights_with_no_record(tmp_path: Path) -> None:
    """`flowlang run export.flow | flowlang run load.flow --input -` failed as a whole (exit 2, nothing
    loaded, export's state already committed) when one record's text held U+2028, U+2029 or U+0085, as
    a note pasted from a web page may: flowlang writes them as they are (JSON allows it), and --input
    cut its lines with str.splitlines(), which ends a line there ('line 1 is not valid JSON:
    Unterminated string starting at at line 1 column 23'). And a night whose export emitted nothing
    failed the load with 'is not valid JSON: Expecting value' (exit 2) where a .jsonl file of no line
    is no record. Lines end at a line feed alone; an empty stdin is JSON Lines of no record."""
    write(tmp_path, "export.flow", 'param empty = false\n'
                                   'for each o in (if empty then [] else [{id: 1, note: "a\\u2028b"},\n'
                                   '  {id: 2, note: "c\\u0085d\\u2029e"}, {id: 3, note: "f"}])\n  emit o\nend\n')
    write(tmp_path, "load.flow", 'use out = file(path: "loaded.jsonl", mode: "append")\n'
                                 'for each r in input\n  send r to out\nend\nemit len(input)\n')
    for empty, expected in (("false", 3), ("true", 0)):
        first = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "export.flow", "--param", f"empty={empty}"],
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        second = subprocess.run([sys.executable, "-m", "flowlang", "run", "load.flow", "--input", "-"], cwd=tmp_path,
                                stdin=first.stdout, capture_output=True, text=True, timeout=60)
        assert first.wait(timeout=60) == 0
        assert second.returncode == 0, second.stderr
        assert lines(second.stdout) == [expected]
    loaded = [json.loads(line) for line in (tmp_path / "loaded.jsonl").read_text(encoding="utf-8").split("\n") if line]
    assert [r["note"] for r in loaded] == ["a\u2028b", "c\u0085d\u2029e", "f"]  # type: ignore[index]
    write(tmp_path, "saved.jsonl", '{"id": 4, "note": "g\u2028h"}\n{"id": 5, "note": "i"}\n')
    assert lines(cli("run", "load.flow", "--input", "saved.jsonl", cwd=tmp_path).stdout) == [2]
    bad = cli("run", "load.flow", "--input", "-", cwd=tmp_path, stdin='{"id": 1}\n{"note": "cut\n')
    assert bad.status == 2 and "line 2 is not valid JSON: Unterminated string starting at line 1 column 10" \
        in bad.stderr, bad.stderr


def test_a_real_pipe_in_and_real_exit_statuses(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "for each r in input\n  if r.n == 2\n    fail \"two\"\n  end\n  emit r.n\nend\n")
    proc = run_cli("run", "f.flow", "--input", "-", cwd=tmp_path, stdin='[{"n": 1}, {"n": 2}, {"n": 3}]')
    assert proc.returncode == 3, proc.stderr
    assert lines(proc.stdout) == [1, 3]
    assert run_cli("run", "missing.flow", cwd=tmp_path).returncode == 2


def test_the_in_process_helper_leaves_the_process_as_it_was(tmp_path: Path) -> None:
    import logging

    write(tmp_path, "f.flow", 'log "hi"\nemit env.ONLY_HERE\n')
    cwd, environ = os.getcwd(), dict(os.environ)
    handlers = logging.getLogger("flowlang").handlers[:]
    result = cli("run", "f.flow", cwd=tmp_path, env={"ONLY_HERE": "x"})
    assert result.status == 0 and lines(result.stdout) == ["x"] and "hi" in result.stderr
    assert os.getcwd() == cwd and dict(os.environ) == environ
    assert logging.getLogger("flowlang").handlers == handlers


def test_a_store_damaged_past_its_first_page_is_named_as_damaged(tmp_path: Path) -> None:
    """A store whose schema page is whole but whose other pages were overwritten (a torn copy, a disk
    that lost a block) opened, and the first statement to read such a page failed with 'internal error:
    DatabaseError: database disk image is malformed ... this is a bug in flowlang'. Every command
    says now that the store is damaged, naming it, as one damaged from its first byte."""
    write(tmp_path, "f.flow", "for each x in range(3)\n  emit x\nend\n")
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    store = tmp_path / ".flowlang" / "flowlang.db"
    data = bytearray(store.read_bytes())
    assert len(data) > 8192
    data[4096:] = b"\x5a" * (len(data) - 4096)
    store.write_bytes(bytes(data))
    for name in (store.name + "-wal", store.name + "-shm"):
        (store.parent / name).unlink(missing_ok=True)
    for command in (("run", "f.flow", "--log-format", "text"), ("retry", "f.flow", "--log-format", "text"),
                    ("jobs", "f.flow"), ("state", "f.flow"), ("ledger", "f.flow"), ("errors", "f.flow")):
        proc = cli(*command, cwd=tmp_path)
        assert proc.status == 1, (command, proc.status, proc.stdout, proc.stderr)
        assert (f"the store {store} is damaged or is not a flowlang store (database disk image is malformed); "
                "move it away to start a new one") in proc.stderr, (command, proc.stderr)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


RETRY_INPUT_FLOW = """
use api = http(base_url: "{url}")
let shop = input.shop
for each o in input.orders
  if o.total == null
    fail "order {{o.id}} has no total"
  end
  send {{id: o.id, total: o.total, shop: shop, region: input.region}} to api.post("/orders")
end
"""


def test_a_retry_gives_the_replayed_record_the_input_of_its_run(tmp_path: Path) -> None:
    # a webhook's body (or --input's payload) beside its records: the retry read input as null and sent
    # region null for the record the run would have sent with region "eu"
    from fakeapi import FakeApi
    with FakeApi({"orders": []}) as api:
        write(tmp_path, "f.flow", RETRY_INPUT_FLOW.format(url=api.url))
        write(tmp_path, "in.json", json.dumps({"shop": "acme", "region": "eu",
                                               "orders": [{"id": 1, "total": 5}, {"id": 2}]}))
        assert cli("run", "f.flow", "--input", "in.json", cwd=tmp_path).status == 3
        error = json.loads(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
        assert cli("edit", "f.flow", str(error["id"]), "--set", "total=7", cwd=tmp_path).status == 0
        retried = cli("retry", "f.flow", cwd=tmp_path)
        assert retried.status == 0, retried.stderr
        sent = [r.body for r in api.requests if r.method == "POST"]
    assert sent == [{"id": 1, "total": 5, "shop": "acme", "region": "eu"},
                    {"id": 2, "total": 7, "shop": "acme", "region": "eu"}]


def test_a_retry_whose_run_input_was_not_kept_leaves_the_error_open(tmp_path: Path) -> None:
    # an error stored without its run's input (by an older flowlang) is not replayed with input null
    import sqlite3

    from fakeapi import FakeApi
    with FakeApi({"orders": []}) as api:
        write(tmp_path, "f.flow", RETRY_INPUT_FLOW.format(url=api.url))
        write(tmp_path, "in.json", json.dumps({"shop": "acme", "region": "eu", "orders": [{"id": 2}]}))
        assert cli("run", "f.flow", "--input", "in.json", cwd=tmp_path).status == 3
        db = sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db")
        with db:
            (scope,) = db.execute("select scope from errors").fetchone()
            db.execute("update errors set scope = ?", (json.dumps({k: v for k, v in json.loads(scope).items()
                                                                   if k != "$input"}),))
        db.close()
        retried = cli("retry", "f.flow", cwd=tmp_path)
        assert retried.status == 1 and "cannot be replayed 1" in retried.stderr
        assert "the input of the run it failed in was not kept" in retried.stderr
        assert not [r for r in api.requests if r.method == "POST"]
    assert "1 open error" in cli("errors", "f.flow", cwd=tmp_path).stdout


def test_a_param_whose_default_is_a_text_takes_the_text_given(tmp_path: Path) -> None:
    """`--param project=1200000000000000` (the command examples/asana_tasks documents) was read as JSON, so
    the text param became a number and the task reached Asana as `projects: [1200000000000000]`, refused
    (Prism serving Asana's description: 400, 'data.projects.0 must be string'); `--param sku=true` or
    `=null` the same. A param whose default is a text takes the text as given (or a JSON string's text);
    the others read JSON as before."""
    write(tmp_path, "f.flow", 'param project = "1"\nparam tag = "{env.HOME}"\nparam n = 5\nparam any\n'
                              'emit {project: project, tag: tag, n: n, any: any}\n')
    for given, project in (("1200000000000000", "1200000000000000"), ("true", "true"), ("null", "null"),
                           ("1e3", "1e3"), ('"quoted"', "quoted"), ("[draft]", "[draft]")):
        proc = cli("run", "f.flow", "--param", f"project={given}", "--param", "tag=007", "--param", "n=7",
                   "--param", "any=[1]", cwd=tmp_path)
        assert proc.status == 0, (given, proc.stderr)
        assert lines(proc.stdout) == [{"project": project, "tag": "007", "n": 7, "any": [1]}], given
    repl = cli("repl", "--param", "project=12", stdin='param project = "x"\ntype_of(project)\n', cwd=tmp_path)
    assert repl.stdout.split() == ['"string"'], repl


def test_a_number_on_the_command_line_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    """`--param n=1e99999999999999999999` (and `edit --set a=...`) failed as JSON and was taken as the text
    '1e99999999999999999999': a param of no default became a string silently, one whose default is a
    number was 'param n is a number (its default is 5), got ...' (a number, as given). It is refused
    saying why; a param whose default is a text still takes the text."""
    write(tmp_path, "f.flow", 'param n\nparam name = "x"\nemit {n: n, name: name}\n')
    for given, why in (("1e99999999999999999999", "a number's exponent is too large to be read"),
                       ("9" * 5000, "a number has more than 4,300 digits")):
        proc = cli("run", "f.flow", "--param", f"n={given}", cwd=tmp_path)
        assert proc.status == 2 and proc.stdout == "", proc.stdout[:200]
        shown = given if len(given) < 90 else f"{given[:70]}... (a value of 5,000 characters)"  # not 5,000 nines
        assert f"--param n={shown}: the number cannot be read ({why})" in proc.stderr, proc.stderr[-300:]
    proc = cli("run", "f.flow", "--param", "n=1", "--param", "name=1e99999999999999999999", cwd=tmp_path)
    assert proc.status == 0 and lines(proc.stdout) == [{"n": 1, "name": "1e99999999999999999999"}], proc.stderr


def test_a_retry_takes_the_params_it_is_given(tmp_path: Path) -> None:
    """A run given the wrong `--param region=us` failed its records (404 at /us/orders); `flowlang retry
    --param region=eu` read the param line again and then replayed each record with the saved scope's
    region, 'us': the retry sent to /us/orders again, resolved nothing, and said nothing of the param it
    took and did not use. A param the retry is given keeps its value over the saved one."""
    from fakeapi import FakeApi

    with FakeApi() as api:
        api.route("POST", r"/eu/orders", lambda req: (201, {}, {"id": 1}))
        api.route("POST", r"/us/orders", lambda req: (404, {}, {"error": "no such region"}))
        write(tmp_path, "f.flow", f'param region = "eu"\nuse api = http(base_url: "{api.url}")\n'
                                  'for each o in [{"n": 1}, {"n": 2}]\n  send o to api.post("/{region}/orders")\n'
                                  '  emit {"n": o.n, "region": region}\nend\n')
        assert cli("run", "f.flow", "--param", "region=us", cwd=tmp_path).status == 3
        retried = cli("retry", "f.flow", "--param", "region=eu", cwd=tmp_path)
        assert retried.status == 0, retried.stderr
        assert lines(retried.stdout) == [{"n": 1, "region": "eu"}, {"n": 2, "region": "eu"}]
        assert [r.path for r in api.requests] == ["/us/orders", "/us/orders", "/eu/orders", "/eu/orders"]
