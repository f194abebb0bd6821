"""File pick-up: `file(path: "in/*.csv", after: "archive/")`. A file is archived (or deleted) only
when the run finished and every one of its records succeeded; a killed run (SIGKILL at random
points while records are being sent) never leaves a file archived before all its records reached
the destination, and a file whose records were all sent is not read again by the rerun."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import cli
from fakeapi import FakeApi, Request
from flowlang.connectors.storage import is_partial


def make_inbox(folder: Path, files: int, rows: int) -> dict[str, list[str]]:
    (folder / "in").mkdir(parents=True, exist_ok=True)
    ids: dict[str, list[str]] = {}
    for f in range(files):
        name = f"batch{f:02d}.csv"
        ids[name] = [f"{f}-{r}" for r in range(rows)]
        lines = ["id,amount"] + [f"{i},{r}" for r, i in enumerate(ids[name])]
        (folder / "in" / name).write_text("\n".join(lines) + "\n")
    return ids


FLOW = """use inbox = file(path: "in/*.csv", after: "archive/")
use out = file(path: "out/sent.jsonl", mode: "append")
call inbox.read() as rows
for each r in rows
  if r.amount == "bad"
    fail "bad amount in {r.id}"
  end
  send r to out
end
"""


def test_files_are_archived_only_when_all_their_records_succeeded(tmp_path: Path) -> None:
    make_inbox(tmp_path, 3, 4)
    bad = tmp_path / "in" / "batch01.csv"
    bad.write_text(bad.read_text().replace("1-2,2", "1-2,bad"))
    (tmp_path / "f.flow").write_text(FLOW)
    first = cli("run", "f.flow", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["batch00.csv", "batch02.csv"]
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["batch01.csv"]  # kept, to be read again
    bad.write_text(bad.read_text().replace("1-2,bad", "1-2,2"))  # fixed by hand
    second = cli("run", "f.flow", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert list((tmp_path / "in").iterdir()) == []
    sent = [json.loads(x)["id"] for x in (tmp_path / "out/sent.jsonl").read_text().splitlines()]
    assert sorted(sent) == sorted([f"{f}-{r}" for f in range(3) for r in range(4)] + ["1-0", "1-1", "1-3"])


def test_nothing_is_archived_by_a_dry_run_a_limit_or_a_failed_run(tmp_path: Path) -> None:
    make_inbox(tmp_path, 2, 3)
    (tmp_path / "f.flow").write_text(FLOW)
    assert cli("run", "f.flow", "--dry-run", cwd=tmp_path).returncode == 0
    assert cli("run", "f.flow", "--limit", "2", cwd=tmp_path).returncode == 0
    (tmp_path / "g.flow").write_text(FLOW.replace("send r to out", "send r to out\n  let x = 1 / 0"))
    assert cli("run", "g.flow", cwd=tmp_path).returncode == 3
    assert not (tmp_path / "archive").exists()
    assert len(list((tmp_path / "in").iterdir())) == 2


def test_after_delete_and_the_list_operation(tmp_path: Path) -> None:
    make_inbox(tmp_path, 2, 1)
    (tmp_path / "f.flow").write_text(
        'use inbox = file(path: "in/*.csv", after: "delete")\n'
        'call inbox.list() as files\nfor each f in files\n  emit f\nend\n'
        'call inbox.read() as rows\nfor each r in rows\n  emit r.id\nend\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert out[:2] == [{"name": "batch00.csv", "path": "in/batch00.csv", "size": 16},
                       {"name": "batch01.csv", "path": "in/batch01.csv", "size": 16}]
    assert out[2:] == ["0-0", "1-0"]
    assert list((tmp_path / "in").iterdir()) == []


def test_binary_pickup_gives_name_size_and_content(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.pdf").write_bytes(b"%PDF-1.7\x00\xff" * 10)
    (tmp_path / "in" / "b.pdf").write_bytes(b"\x89PNG")
    (tmp_path / "f.flow").write_text(
        'use inbox = file(path: "in/*.pdf", format: "bytes", after: "done/")\n'
        'use out = file(path: "out/", format: "bytes")\n'
        'call inbox.read() as files\nfor each f in files\n'
        '  send {name: "copy-" + f.name, content: f.content} to out\n'
        '  emit {name: f.name, path: f.path, size: f.size, kind: type_of(f.content)}\nend\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [
        {"name": "a.pdf", "path": "in/a.pdf", "size": 100, "kind": "bytes"},
        {"name": "b.pdf", "path": "in/b.pdf", "size": 4, "kind": "bytes"}]
    assert (tmp_path / "out" / "copy-a.pdf").read_bytes() == b"%PDF-1.7\x00\xff" * 10
    assert (tmp_path / "out" / "copy-b.pdf").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.pdf", "b.pdf"]


def test_a_folder_refuses_names_with_folders(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text('use out = file(path: "out/", format: "bytes")\n'
                                     'send {name: "../escape.bin", content: base64_decode("AAE=")} to out\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 1 and "a file name must be one name without folders" in proc.stderr
    assert not (tmp_path / "escape.bin").exists()


def test_after_needs_a_pattern(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text('use one = file(path: "in/a.csv", after: "archive/")\n'
                                     'call one.read() as rows\nemit rows\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 2 and "after: is for a pick-up of several files" in proc.stderr  # a check error


def test_a_pattern_without_after_and_an_after_without_a_pattern_are_check_errors(tmp_path: Path) -> None:
    """Both were found only when the run opened the file (exit 1, a failed job, after the lines before it
    ran: here a request to the API); written as constants, check and run refuse them first (exit 2)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id\n1\n")
    with FakeApi({"pings": []}) as api:
        for line, col, message in (
                ('use inbox = file(path: "in/*.csv")', 24, "file: a pick-up pattern needs after: the folder"),
                ('use inbox = file(path: "in/*.csv", after: "")', 43, "file: a pick-up pattern needs after:"),
                ('use inbox = file(path: "in/a.csv", after: "archive/")', 43,
                 "file after: is for a pick-up of several files")):
            (tmp_path / "f.flow").write_text(f'use api = http(base_url: "{api.url}")\ncall api.post("/pings")\n'
                                             f'{line}\ncall inbox.read() as rows\nemit rows\n')
            checked = cli("check", "f.flow", cwd=tmp_path)
            assert checked.returncode == 2 and f"f.flow:3:{col}: error: {message}" in checked.stderr, checked.stderr
            ran = cli("run", "f.flow", cwd=tmp_path)
            assert ran.returncode == 2 and message in ran.stderr
        assert api.requests == []
    ok = 'use inbox = file(path: "in/*.csv", after: env.AFTER)\ncall inbox.read() as rows\nemit rows\n'
    (tmp_path / "f.flow").write_text(ok)
    assert cli("check", "f.flow", cwd=tmp_path).returncode == 0  # computed: judged when the use runs


def test_a_bad_line_edited_and_retried_is_not_sent_again_from_the_fixed_file(tmp_path: Path) -> None:
    """A JSON Lines line that failed as it was read has no id, so its error had no key; edited into a record
    and retried, its `once` send went into the ledger under its bare id ("2"), and the same record read
    from the file, fixed meanwhile, under ["b.jsonl","2"]: sent twice. The error keeps the record's file,
    and the retry keys it within that file, as its run would have."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "b.jsonl").write_text('{"id": "1", "n": 1}\n{bad json\n')
    (tmp_path / "f.flow").write_text('use inbox = file(path: "in/*.jsonl", after: "archive/")\nuse api = '
                                     'http(base_url: env.API)\ncall inbox.read() as rows\nfor each r in rows\n'
                                     '  send r to api.post("/tickets") once\nend\n')
    with FakeApi({"tickets": []}) as api:
        env = {"API": api.url}
        assert cli("run", "f.flow", cwd=tmp_path, env=env).returncode == 3
        edited = cli("edit", "f.flow", "1", "--set", 'id="2"', "--set", "n=2", "--unset", "_raw", cwd=tmp_path)
        assert edited.returncode == 0, edited.stderr
        (tmp_path / "in" / "b.jsonl").write_text('{"id": "1", "n": 1}\n{"id": "2", "n": 2}\n')  # fixed too
        retried = cli("retry", "f.flow", cwd=tmp_path, env=env)
        assert retried.returncode == 0, retried.stderr
        again = cli("run", "f.flow", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
        sent = [r.body["id"] for r in api.requests if r.method == "POST"]
    assert sorted(sent) == ["1", "2"]
    keys = [json.loads(x)["key"] for x in cli("ledger", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert sorted(keys) == ['["b.jsonl","1"]', '["b.jsonl","2"]']
    assert (tmp_path / "archive" / "b.jsonl").exists()


# ---- kill -9 -------------------------------------------------------------------------------------

KILL_FLOW = """use inbox = file(path: "in/*.csv", after: "archive/")
use api = http(base_url: env.API)
call inbox.read() as rows
for each r in rows
  send r to api.put("/items/{r.id}")
end
"""


def archived_files(archive: Path) -> set[str]:
    """The files moved to the archive; not the pick-up's ledger, which a run killed between writing it
    and moving the files leaves there for the next run to finish, nor the ledger's temporary file
    (`..flowlang-pickup-NAME.json.part`) of a run killed while it wrote the ledger."""
    if not archive.exists():
        return set()
    return {p.name for p in archive.iterdir()
            if not p.name.startswith(".flowlang-pickup-") and not is_partial(p.name)}


def test_kill_9_never_archives_a_file_before_its_records_are_sent(tmp_path: Path) -> None:
    ids = make_inbox(tmp_path, 6, 25)
    (tmp_path / "f.flow").write_text(KILL_FLOW)
    received: dict[str, int] = {}
    rng = random.Random(14)
    with FakeApi() as api:
        def put(req: Request) -> tuple[int, dict[str, str], Any]:
            assert req.match is not None
            received[req.match[1]] = received.get(req.match[1], 0) + 1
            return 200, {}, {"ok": True}
        api.route("PUT", r"/items/([\w-]+)", put)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
        env["API"] = api.url
        archive = tmp_path / "archive"
        for attempt in range(12):
            counts_at_start = dict(received)
            archived_at_start = archived_files(archive)
            proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow", "--quiet"], cwd=tmp_path,
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if attempt < 5:  # kill after a random number of new records reached the server
                target = len(counts_at_start) + rng.randint(1, 60)
                deadline = time.monotonic() + 60
                while len(received) < target and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.002)
                proc.send_signal(signal.SIGKILL)
            proc.wait(120)
            # whatever the moment of the kill, each archived file has every one of its records at the server
            archived = archived_files(archive)
            for name in archived:
                assert all(i in received for i in ids[name]), f"{name} archived before all its records were sent"
            # a file archived before this run started was not read again by it
            for name in archived_at_start:
                assert all(received[i] == counts_at_start[i] for i in ids[name]), f"{name} was read again"
            if attempt >= 5 and proc.returncode == 0 and not list((tmp_path / "in").glob("*.csv")):
                break
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == sorted(ids)
    assert set(received) == {i for rows in ids.values() for i in rows}  # none lost


def test_a_retry_that_sends_the_last_failed_records_of_a_file_archives_it(tmp_path: Path) -> None:
    make_inbox(tmp_path, 3, 4)
    for name, row in (("batch01.csv", "1-2,2"), ("batch02.csv", "2-0,0")):
        path = tmp_path / "in" / name
        path.write_text(path.read_text().replace(row, row.split(",")[0] + ",bad"))
    (tmp_path / "f.flow").write_text(FLOW)
    first = cli("run", "f.flow", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["batch01.csv", "batch02.csv"]
    errors = {e["record"]["id"]: e["id"] for e in map(json.loads, cli(
        "errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines())}
    assert set(errors) == {"1-2", "2-0"}
    assert cli("edit", "f.flow", str(errors["1-2"]), "--set", 'amount="2"', cwd=tmp_path).returncode == 0
    one = cli("retry", "f.flow", "--id", str(errors["1-2"]), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["batch02.csv"]  # its last failure went through
    assert "batch01.csv" in {p.name for p in (tmp_path / "archive").iterdir()}
    again = cli("retry", "f.flow", cwd=tmp_path)  # batch02's record still fails: the file stays
    assert again.returncode == 3, again.stderr
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["batch02.csv"]
    assert cli("resolve", "f.flow", str(errors["2-0"]), "--reason", "sent by hand", cwd=tmp_path).returncode == 0
    assert cli("retry", "f.flow", cwd=tmp_path).returncode == 0  # nothing to replay; its errors are resolved
    assert list((tmp_path / "in").iterdir()) == []
    third = cli("run", "f.flow", cwd=tmp_path)  # nothing is read twice
    assert third.returncode == 0, third.stderr
    sent = [json.loads(x)["id"] for x in (tmp_path / "out/sent.jsonl").read_text().splitlines()]
    assert sorted(sent) == sorted([f"{f}-{r}" for f in range(3) for r in range(4) if f"{f}-{r}" != "2-0"])


def test_a_pickup_pattern_without_after_says_that_it_needs_one(tmp_path: Path) -> None:
    # before: "file after: must be a folder to move picked-up files to ... got ''", for a key not given
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id\n1\n")
    (tmp_path / "f.flow").write_text('use inbox = file(path: "in/*.csv")\ncall inbox.read() as rows\n')
    proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2 and "got ''" not in proc.stderr  # a constant path: a check error
    assert ("f.flow:1:24: error: file: a pick-up pattern needs after: the folder each file is moved to once all its "
            'records succeeded (after: "archive/"), or after: "delete"') in proc.stderr
    (tmp_path / "f.flow").write_text('use inbox = file(path: env.IN)\ncall inbox.read() as rows\n')
    proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"IN": "in/*.csv"})
    assert proc.returncode == 1 and "got ''" not in proc.stderr  # a computed one: when the use runs
    assert ("f.flow:1:1: error: file: a pick-up pattern needs after: the folder each file is moved to once all its "
            'records succeeded (after: "archive/"), or after: "delete"') in proc.stderr
    assert (tmp_path / "in" / "a.csv").exists()


def test_files_of_one_name_are_all_kept_in_the_archive_stamped_in_utc(tmp_path: Path) -> None:
    """Three in/*/a.csv archived by one run: the first as a.csv, the others stamped with the time in UTC
    (the machine here is in Kolkata) and counted on when the stamp is taken; a move onto a name that is
    there replaced that file (z's a.csv overwrote y's)."""
    for sub in "xyz":
        (tmp_path / "in" / sub).mkdir(parents=True)
        (tmp_path / "in" / sub / "a.csv").write_text(f"id,src\n1,{sub}\n")
    (tmp_path / "f.flow").write_text('use inbox = file(path: "in/*/*.csv", after: "archive/")\n'
                                     'call inbox.read() as rows\nfor each r in rows\n  emit r\nend\n')
    before = datetime.now(UTC).replace(microsecond=0)
    proc = cli("run", "f.flow", cwd=tmp_path, env={"TZ": "Asia/Kolkata"})
    after = datetime.now(UTC)
    assert proc.returncode == 0, proc.stderr
    archived = {p.name: p.read_text().split()[-1] for p in (tmp_path / "archive").iterdir()}
    assert sorted(archived.values()) == ["1,x", "1,y", "1,z"]  # every file, none replaced
    assert archived.pop("a.csv") == "1,x"
    for name in archived:
        found = re.fullmatch(r"a\.(\d{8}T\d{6}Z)(-2)?\.csv", name)
        assert found, name
        assert before <= datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) <= after


def test_files_that_number_their_rows_alike_keep_their_own_errors(tmp_path: Path) -> None:
    """a.csv and b.csv both number their rows from 1: the refused row 1 of a.csv is not resolved by
    the ok row 1 of b.csv (it was: a.csv was archived and its row never sent), a.csv stays with its
    error keyed by its name, and a retry sends the row and archives the file."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,who\n1,a-1\n2,a-2\n")
    (tmp_path / "in" / "b.csv").write_text("id,who\n1,b-1\n2,b-2\n")
    (tmp_path / "f.flow").write_text(KILL_FLOW.replace('api.put("/items/{r.id}")', 'api.put("/items/{r.who}")'))
    refuse = {"a-1"}
    received: list[str] = []
    with FakeApi() as api:
        def put(req: Request) -> tuple[int, dict[str, str], Any]:
            assert req.match is not None
            if req.match[1] in refuse:
                return 422, {}, {"error": "refused"}
            received.append(req.match[1])
            return 200, {}, {"ok": True}
        api.route("PUT", r"/items/([\w-]+)", put)
        env = {"API": api.url}
        first = cli("run", "f.flow", cwd=tmp_path, env=env)
        assert first.returncode == 3, first.stderr
        assert "resolved" not in first.stderr
        assert sorted(received) == ["a-2", "b-1", "b-2"]
        assert [p.name for p in (tmp_path / "in").iterdir()] == ["a.csv"]  # kept, its row 1 failed
        assert [p.name for p in (tmp_path / "archive").iterdir()] == ["b.csv"]
        errors = [json.loads(x) for x in cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
        assert [(e["key"], e["record"]["who"], e["resolved_at"]) for e in errors] == [(["a.csv", "1"], "a-1", None)]
        listed = cli("errors", "f.flow", "--key", '["a.csv","1"]', cwd=tmp_path)
        assert listed.returncode == 0 and "a.csv" in listed.stdout, listed.stdout + listed.stderr
        refuse.clear()
        retried = cli("retry", "f.flow", cwd=tmp_path, env=env)
        assert retried.returncode == 0, retried.stderr
        assert sorted(received) == ["a-1", "a-2", "b-1", "b-2"]
        assert list((tmp_path / "in").iterdir()) == []
        assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["a.csv", "b.csv"]
        again = cli("run", "f.flow", cwd=tmp_path, env=env)  # nothing is read twice
        assert again.returncode == 0, again.stderr
        assert sorted(received) == ["a-1", "a-2", "b-1", "b-2"]


def test_an_explicit_key_of_a_pickup_keeps_its_meaning(tmp_path: Path) -> None:
    """`key r.id` is the key across the files, as written: the ok row 1 of b.csv resolves a.csv's."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,who\n1,bad\n")
    (tmp_path / "in" / "b.csv").write_text("id,who\n1,b-1\n")
    (tmp_path / "f.flow").write_text(FLOW.replace("for each r in rows", "for each r in rows key r.id")
                                     .replace('r.amount == "bad"', 'r.who == "bad"'))
    first = cli("run", "f.flow", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "resolved: the record went through" in first.stderr
    errors = [json.loads(x) for x in cli("errors", "f.flow", "--json", "--all", cwd=tmp_path).stdout.splitlines()]
    assert [(e["key"], e["resolved_at"] is not None) for e in errors] == [("1", True)]


def test_send_once_of_files_that_number_their_rows_alike_sends_each_row(tmp_path: Path) -> None:
    """`send r to api.put(...) once` keyed a pick-up's records by their id alone in the send ledger: with
    a.csv and b.csv each holding a row id 1, b.csv's row was skipped as already sent ('sent 1, skipped
    1') and b.csv archived with it never sent. Each row is keyed within its file, as its trace key is;
    a retry of a.csv's refused row finds its key again, and a rerun of a kept file sends nothing twice."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,who\n1,a-1\n2,a-2\n")
    (tmp_path / "in" / "b.csv").write_text("id,who\n1,b-1\n2,b-2\n")
    (tmp_path / "f.flow").write_text(KILL_FLOW.replace('api.put("/items/{r.id}")', 'api.post("/items") once'))
    refuse = {"a-2"}
    received: list[str] = []
    with FakeApi() as api:
        def post(req: Request) -> tuple[int, dict[str, str], Any]:
            if req.body["who"] in refuse:
                return 422, {}, {"error": "refused"}
            received.append(req.body["who"])
            return 200, {}, {"ok": True}
        api.route("POST", r"/items", post)
        env = {"API": api.url}
        first = cli("run", "f.flow", cwd=tmp_path, env=env)
        assert first.returncode == 3, first.stderr
        assert sorted(received) == ["a-1", "b-1", "b-2"]  # b-1 is not a-1 already sent
        again = cli("run", "f.flow", cwd=tmp_path, env=env)  # a.csv read again whole: a-1 not twice
        assert again.returncode == 3, again.stderr
        assert sorted(received) == ["a-1", "b-1", "b-2"]
        refuse.clear()
        retried = cli("retry", "f.flow", cwd=tmp_path, env=env)
        assert retried.returncode == 0, retried.stderr
        assert sorted(received) == ["a-1", "a-2", "b-1", "b-2"]
        ledger = cli("ledger", "f.flow", "--json", cwd=tmp_path)
        assert sorted(json.loads(json.loads(x)["key"]) for x in ledger.stdout.splitlines()) == [
            ["a.csv", "1"], ["a.csv", "2"], ["b.csv", "1"], ["b.csv", "2"]], ledger.stdout


def test_a_damaged_pickup_ledger_says_so_and_what_to_do(tmp_path: Path) -> None:
    """A pick-up ledger (archive/.flowlang-pickup-inbox.json) that is JSON but not the list of files a run
    wrote ({"x": 1}, [1], an entry without its path, null: a file edited or overwritten by hand) failed
    every run with 'internal error (TypeError: string indices must be integers ...); this is a bug in
    flowlang', and one cut short said only 'cannot read the pick-up ledger ...: Unterminated string'.
    Each is said to be damaged now, with what it is for and what moving it away does; nothing is read,
    sent or archived."""
    make_inbox(tmp_path, 1, 2)
    (tmp_path / "f.flow").write_text(FLOW)
    (tmp_path / "archive").mkdir()
    ledger = tmp_path / "archive" / ".flowlang-pickup-inbox.json"
    cases = {'{"x": 1}': "it holds an object, not a list of files", "[1]": "its entry 1 is not a file's path",
             '[{"size": 3, "stamp": "1"}]': "its entry 1 is not", "null": "it holds null",
             '[{"path": "in/batch00.cs': "Unterminated string"}
    for text, why in cases.items():
        ledger.write_text(text)
        proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
        assert proc.status == 1, proc.stderr
        assert ("f.flow:4:15: error: the pick-up ledger archive/.flowlang-pickup-inbox.json is damaged ("
                in proc.stderr and why in proc.stderr), proc.stderr
        assert "move it away, and the next run reads those files again" in proc.stderr
        assert "internal error" not in proc.stderr
        assert (tmp_path / "in" / "batch00.csv").exists() and not (tmp_path / "out").exists()
    ledger.unlink()
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    assert (tmp_path / "archive" / "batch00.csv").exists()
