"""Faults of the machine a run meets (issue 10): a clock behind the flow's last success, a full disk
under a file sink and under the store."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli
from flowlang.runtime.store import Store

DELTA = "emit {since: job.last_success_at}\nlet state.n = 1\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def jobs(folder: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in cli("jobs", "f.flow", "--json", cwd=folder).stdout.splitlines()]


# ---- the clock behind the last success --------------------------------------------------------
def test_a_run_under_a_clock_behind_the_last_success_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", DELTA)
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    store = Store(tmp_path / ".flowlang")  # as a run under a clock ten years ahead leaves it
    try:
        store.admin_job("f", "state", "a run under a clock ten years ahead", "2036-12-01T00:00:00Z")
    finally:
        store.close()
    for args in (("run", "f.flow"), ("run", "f.flow", "--dry-run"), ("run", "f.flow", "--limit", "1")):
        refused = cli(*args, cwd=tmp_path)
        assert refused.status == 1, refused.stderr
        assert "behind the last success of f (2036-12-01T00:00:00Z)" in refused.stderr
        assert "--last-success-at" in refused.stderr and "Traceback" not in refused.stderr
        assert refused.stdout == ""  # nothing ran
    assert [j["status"] for j in jobs(tmp_path)][:3] == ["failed", "failed", "failed"]
    shown = json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)
    assert shown["last_success_at"] == "2036-12-01T00:00:00Z"  # a refused run moves nothing
    assert cli("state", "f.flow", "--last-success-at", "2024-05-01T00:00:00Z", cwd=tmp_path).status == 0
    again = cli("run", "f.flow", cwd=tmp_path)
    assert again.status == 0 and json.loads(again.stdout) == {"since": "2024-05-01T00:00:00Z"}


def test_state_refuses_a_last_success_in_the_future(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", DELTA)
    future = cli("state", "f.flow", "--last-success-at", "2999-01-01T00:00:00Z", cwd=tmp_path)
    assert future.status == 2 and "is in the future" in future.stderr
    assert json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)["last_success_at"] is None


# ---- a full disk ------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (CI runs as root; elsewhere the tests are skipped when it cannot be mounted)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a small tmpfs under CI: {mounted.stderr}")
        pytest.skip(f"cannot mount a small tmpfs (not root?): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


SINK = ('use out = file(path: "out.jsonl")\nfor each i in range(0, 100000)\n'
        '  send {id: i, pad: "' + "x" * 60 + '"} to out\nend\n')


def whole_lines(path: Path) -> list[dict[str, object]]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), data[-80:]  # no torn line
    return [json.loads(x) for x in data.splitlines()]


def assert_disk_full_run(ran: object, folder: Path, state: list[str]) -> None:
    assert ran.status == 1, ran.stderr  # type: ignore[attr-defined]
    err = ran.stderr  # type: ignore[attr-defined]
    assert "internal error" not in err and "Traceback" not in err
    [job] = [json.loads(x) for x in cli("jobs", "f.flow", "--json", *state, cwd=folder).stdout.splitlines()]
    assert job["status"] == "failed"  # recorded, not left running


def test_a_full_disk_under_a_file_sink_fails_the_run_clearly_without_a_torn_line(small_disk: Path,
                                                                                 tmp_path: Path) -> None:
    write(small_disk, "f.flow", SINK)
    state = ["--state-dir", str(tmp_path / "state")]  # the store on another disk
    ran = cli("run", "f.flow", *state, cwd=small_disk)
    assert f"disk full writing {small_disk / 'out.jsonl'}" in ran.stderr
    assert_disk_full_run(ran, small_disk, state)
    written = whole_lines(small_disk / "out.jsonl")
    assert [r["id"] for r in written] == list(range(len(written)))  # whole records, in order
    [failed] = [json.loads(x) for x in cli("errors", "f.flow", "--json", *state, cwd=small_disk).stdout.splitlines()]
    assert "disk full writing" in failed["message"]  # the record in flight is kept
    # every record counted as sent is in the file or counted in the message as cut back, and the one
    # in flight comes right after them
    cut = re.search(r"the ([\d,]+) records? sent to it since its last write that reached the disk", ran.stderr)
    assert cut is not None, ran.stderr
    [job] = [json.loads(x) for x in cli("jobs", "f.flow", "--json", *state, cwd=small_disk).stdout.splitlines()]
    assert len(written) + int(cut.group(1).replace(",", "")) == job["stats"]["sent"] > 0
    assert failed["record"] == job["stats"]["sent"]


def test_a_full_disk_under_the_sink_and_the_store_records_the_job(small_disk: Path) -> None:
    write(small_disk, "f.flow", SINK)
    ran = cli("run", "f.flow", cwd=small_disk)  # the store in the flow's folder: the same small disk
    assert "disk full" in ran.stderr
    assert_disk_full_run(ran, small_disk, [])
    whole_lines(small_disk / "out.jsonl")


def test_a_full_disk_under_the_store_is_a_clear_error_and_each_failure_is_kept(small_disk: Path) -> None:
    write(small_disk, "f.flow", 'for each i in range(0, 100000)\n  fail "no {i}"\nend\n')
    ran = cli("run", "f.flow", cwd=small_disk)
    assert "the disk is full: the store" in ran.stderr and "the failed record was kept" in ran.stderr
    assert_disk_full_run(ran, small_disk, [])
    [job] = [json.loads(x) for x in cli("jobs", "f.flow", "--json", cwd=small_disk).stdout.splitlines()]
    kept = cli("errors", "f.flow", "--json", cwd=small_disk).stdout.splitlines()
    assert len(kept) == job["stats"]["failed"] > 0  # every record counted as failed is in the store


def test_a_full_disk_under_a_json_list_sink_leaves_a_list_that_parses(small_disk: Path, tmp_path: Path) -> None:
    """A JSON-list file (`out.json`) cut back on a full disk still ends in its `]`: a reader gets the
    records that reached the disk, in order, as one valid JSON list."""
    write(small_disk, "f.flow", SINK.replace("out.jsonl", "out.json"))
    state = ["--state-dir", str(tmp_path / "state")]
    ran = cli("run", "f.flow", *state, cwd=small_disk)
    assert f"disk full writing {small_disk / 'out.json'}" in ran.stderr
    assert_disk_full_run(ran, small_disk, state)
    written = json.loads((small_disk / "out.json").read_text())
    assert [r["id"] for r in written] == list(range(len(written)))  # those that reached the disk, in order


# ---- a full disk under a pick-up's archive ----------------------------------------------------
PICKUP = """use inbox = file(path: "in/*.csv", after: "{archive}", allow_outside: true)
use out = memory(records: [])
call inbox.read() as rows
for each r in rows
  send r to out
end
"""


def inbox(folder: Path, files: int, rows: int) -> dict[str, bytes]:
    """CSV files in folder/in, by name."""
    made = {}
    for n in range(1, files + 1):
        text = "id,name\n" + "".join(f"{i},name number {i} of file {n}\n" for i in range(rows))
        made[f"f{n}.csv"] = write(folder / "in", f"f{n}.csv", text).read_bytes()
    return made


def last_read(folder: Path) -> int:
    return int(jobs(folder)[0]["stats"]["read"])  # type: ignore[index]


def fill(disk: Path) -> Path:
    """Write a file until the disk has no room left."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def assert_archived_whole(archive: Path, made: dict[str, bytes]) -> None:
    """Only whole copies in the archive: no file cut short, no temporary file left."""
    for path in archive.iterdir():
        if path.name.startswith(".flowlang-pickup-"):
            continue
        assert path.name in made, path.name
        assert path.read_bytes() == made[path.name], f"{path.name} was left torn in the archive"


def test_an_archive_that_fills_during_the_moves_leaves_no_torn_file_and_reads_nothing_again(
        small_disk: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    archive = small_disk / "archive"
    write(work, "f.flow", PICKUP.replace("{archive}", f"{archive}/"))
    made = inbox(work, 4, 9000)  # 300 KB each: the 1 MiB disk holds three
    ran = cli("run", "f.flow", cwd=work)
    assert ran.status == 0, ran.stderr  # every record was sent
    assert "Traceback" not in ran.stderr and "internal error" not in ran.stderr
    assert f"No space left on device: {archive}/f" in ran.stderr, ran.stderr
    assert "the next run archives them first, without reading them again" in ran.stderr
    assert_archived_whole(archive, made)
    left = sorted(p.name for p in (work / "in").glob("*.csv"))
    assert left and len(left) + len(list(archive.glob("*.csv"))) == 4
    again = cli("run", "f.flow", cwd=work)  # still full: fails before it reads anything
    assert again.status == 1 and f"No space left on device: {archive}/{left[0]}" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr and last_read(work) == 0
    assert_archived_whole(archive, made)
    for path in archive.glob("*.csv"):  # room again
        path.unlink()
    done = cli("run", "f.flow", cwd=work)
    assert done.status == 0, done.stderr
    assert last_read(work) == 0  # the files whose records were sent are not read again
    assert sorted(p.name for p in archive.glob("*.csv")) == left and not list((work / "in").glob("*.csv"))
    assert_archived_whole(archive, made)


def test_a_ledger_that_cannot_be_written_beside_the_archive_is_kept_beside_the_files(
        small_disk: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    archive = small_disk / "archive"
    archive.mkdir()
    write(work, "f.flow", PICKUP.replace("{archive}", f"{archive}/"))
    made = inbox(work, 3, 1000)
    filler = fill(small_disk)
    ran = cli("run", "f.flow", cwd=work)
    assert ran.status == 0, ran.stderr
    assert "Traceback" not in ran.stderr and "internal error" not in ran.stderr
    assert (f"cannot write the pick-up ledger: No space left on device: {archive}/.flowlang-pickup-inbox.json"
            in ran.stderr), ran.stderr
    assert (work / "in" / ".flowlang-pickup-inbox.json").exists()
    assert not [p for p in archive.iterdir()]  # nothing torn, no temporary file
    filler.unlink()
    done = cli("run", "f.flow", cwd=work)
    assert done.status == 0, done.stderr
    assert last_read(work) == 0  # the 3,000 records sent are not sent again
    assert sorted(p.name for p in archive.iterdir()) == sorted(made)
    assert_archived_whole(archive, made)
    assert not list((work / "in").iterdir())


# ---- a full disk under a --record cassette ----------------------------------------------------
RECORDED = ('param n = 10\nfor each k in range(n)\n  emit {k: k, pad: "' + "padding " * 25 + '{k}"}\nend\n')


def test_a_cassette_that_cannot_be_written_is_said_and_leaves_the_old_one(small_disk: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    write(work, "f.flow", RECORDED)
    cassette = small_disk / "cass" / "cassette.jsonl"
    small = cli("run", "f.flow", "--record", str(cassette.parent), cwd=work)
    assert small.status == 0 and cassette.exists(), small.stderr
    before = cassette.read_bytes()
    big = cli("run", "f.flow", "--param", "n=6000", "--record", str(cassette.parent), cwd=work)  # 1.3 MB
    assert big.status == 1, big.stderr
    assert "Traceback" not in big.stderr and "internal error" not in big.stderr
    assert f"cannot write the cassette: No space left on device: {cassette}" in big.stderr, big.stderr
    assert "the run itself ended (ok, job 2)" in big.stderr
    assert len(big.stdout.splitlines()) == 6000  # the run's own work is done and said
    assert cassette.read_bytes() == before  # the old cassette as it was, no temporary file beside it
    assert sorted(p.name for p in cassette.parent.iterdir()) == ["cassette.jsonl"]
    assert jobs(work)[0]["status"] == "ok"


def test_a_cassette_that_fills_the_disk_as_it_is_recorded_keeps_its_whole_lines(small_disk: Path,
                                                                                tmp_path: Path) -> None:
    """A run that sends is appended to its cassette as it goes (so that a kill leaves what it sent): when the
    disk fills in the middle, the file is cut back to its last whole line and the run goes on; the end says
    how many lines the cassette holds, and they load."""
    work = tmp_path / "work"
    write(work, "f.flow", 'use out = file(path: "out.jsonl")\nfor each k in range(6000)\n  send {k: k, pad: "'
          + "padding " * 25 + '{k}"} to out\nend\n')
    cassette = small_disk / "cass" / "cassette.jsonl"
    big = cli("run", "f.flow", "--record", str(cassette.parent), cwd=work)
    assert big.status == 1, big.stderr
    assert "Traceback" not in big.stderr and "internal error" not in big.stderr
    found = re.search(r"cannot write the cassette: No space left on device: (\S+) \(it holds the ([\d,]+) lines "
                      r"written as the run went, each one whole\)", big.stderr)
    assert found and found[1] == str(cassette), big.stderr
    assert len((work / "out.jsonl").read_text().splitlines()) == 6000  # the run's own work is done
    assert sorted(p.name for p in cassette.parent.iterdir()) == ["cassette.jsonl"]
    data = cassette.read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == int(found[2].replace(",", ""))
    from flowlang.testing.cassette import Cassette

    writes = Cassette.load(cassette.parent).of_type("write")
    assert 1000 < len(writes) < 6000 and [w["record"]["k"] for w in writes] == list(range(len(writes)))


# ---- stdout on a full disk, and a store past a file size limit ---------------------------------
def cli_to(stdout: Path, *args: str, cwd: Path) -> tuple[int, str]:
    """`flowlang ARGS` in this process, its stdout a real file (as `> out.jsonl` gives it), its stderr kept."""
    import io

    from flowlang.cli.console import Terminal
    from flowlang.cli.main import main

    err = io.StringIO()
    with stdout.open("w", encoding="utf-8") as out:
        terminal = Terminal(stdout=out, stderr=err, stdin=io.StringIO(""))
        saved = os.getcwd()
        os.chdir(cwd)
        try:
            status = main(list(args), terminal)
        finally:
            os.chdir(saved)
        try:
            out.close()
        except OSError:  # what the full disk still holds of the last line
            pass
    return int(status), err.getvalue()


@pytest.mark.parametrize("parallel", ["", " parallel 4", "batch"])
def test_a_stdout_on_a_full_disk_stops_the_run_and_keeps_the_record_whose_output_was_lost(
        small_disk: Path, tmp_path: Path, parallel: str) -> None:
    """`flowlang run f.flow > out.jsonl` on a disk that fills: each record after it was sent, then failed
    at its emit ('on_output raised OSError: [Errno 28] ...', 1,075 of 3,000 records), so a retry sent
    each again; and `flowlang errors` into it was 'internal error ... a bug in flowlang'. In a parallel
    loop (or one that fills batches), whose outputs go out in input order after their iterations, the error
    ended the run and the record was not kept (sent 756, emitted 755, failed 0, no open error)."""
    loop, send = ("", " batch 5") if parallel == "batch" else (parallel, "")
    write(tmp_path, "f.flow", f'use out = memory(records: [])\nfor each i in range(0, 20000){loop}\n'
          f'  send {{id: i}} to out{send}\n  emit {{id: i, pad: "' + "y" * 200 + '"}\nend\n')
    status, err = cli_to(small_disk / "out.jsonl", "run", "f.flow", cwd=tmp_path)
    assert status == 1, err
    assert "internal error" not in err and "on_output" not in err and "Traceback" not in err
    assert "the run stopped: stdout cannot be written: No space left on device" in err
    [job] = jobs(tmp_path)
    stats = job["stats"]
    assert isinstance(stats, dict)
    assert job["status"] == "failed" and 1 <= stats["failed"] <= (8 if parallel else 1)  # no new record after
    assert stats["sent"] == stats["emitted"] + stats["failed"] < 20000  # each record sent is out or kept
    kept = [json.loads(x) for x in cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [k["record"] for k in kept] == list(range(stats["emitted"], stats["sent"]))
    assert all("stdout cannot be written" in k["message"] for k in kept)
    status, err = cli_to(small_disk / "errors.txt", "jobs", "f.flow", cwd=tmp_path)
    assert (status, err) == (1, "error: stdout cannot be written: No space left on device\n")


def test_a_store_past_the_file_size_limit_is_a_clear_error_and_each_failure_is_kept(tmp_path: Path) -> None:
    """Under `ulimit -f`, the store's write-ahead log reached the limit: 'internal error: OperationalError:
    disk I/O error', the failure being stored lost (67 failed, 66 kept) and the job left running."""
    import resource
    import sys

    write(tmp_path, "f.flow", 'for each i in range(0, 1000)\n  let blob = pad_left("{i}", 60000, "x")\n'
          '  fail "no {i} {len(blob)}"\nend\n')
    limit = 1024 * 1024

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    ran = subprocess.run([sys.executable, "-m", "flowlang", "run", "f.flow", "--log-format", "text"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60, preexec_fn=limited)
    assert ran.returncode == 1, ran.stderr
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr
    assert "cannot be written (disk I/O error: the system refused the write" in ran.stderr
    assert "the failed record was kept" in ran.stderr
    [job] = jobs(tmp_path)
    stats = job["stats"]
    assert isinstance(stats, dict)
    assert job["status"] == "failed" and 0 < stats["failed"] < 1000
    kept = cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()
    assert len(kept) == stats["failed"]  # every record counted as failed is in the store


def test_fmt_on_a_full_disk_leaves_the_flow_as_it_was(small_disk: Path) -> None:
    """`flowlang fmt f.flow` rewrote the file in place: on a full disk it was cut where the write stopped
    (a 3,994-byte flow of 290 emits left as 4,096 bytes ending in 'emit {a: 230}\\n    emit {'), the rest
    of the user's flow gone, and the command said 'internal error: OSError ... a bug in flowlang'."""
    text = "for each i in [1]\nfor each j in [1]\n" + "".join(f"emit {{a: {i}}}\n" for i in range(290)) + "end\nend\n"
    flow = write(small_disk, "f.flow", text)
    fill(small_disk)
    ran = cli("fmt", str(flow), cwd=small_disk)
    assert ran.status == 1, ran.stderr
    assert f"error: cannot write {flow}: No space left on device (the file was left as it was)" in ran.stderr
    assert "1 could not be written" in ran.stderr and "internal error" not in ran.stderr
    assert flow.read_text() == text  # byte for byte
    assert sorted(p.name for p in small_disk.iterdir()) == ["f.flow", "filler"]  # no temporary file left


def test_appending_to_a_json_list_never_rewrites_the_records_already_in_it(tmp_path: Path) -> None:
    """A JSON file sink appending (mode: "append", or a retry or resume of an overwrite one) rewrote the
    whole file without its closing `]` first: a kill -9 in that write left a 90 MB list of 400,000 records
    empty (0 bytes), and under a file size limit of 1 MiB a 2.5 MB list was cut to 1 MiB mid-record, 11,600
    records lost and the rest no JSON. The `]` is cut off in place; the records stay as they were."""
    import resource
    import sys

    records = [{"id": i, "pad": "x" * 100} for i in range(6000)]
    out = write(tmp_path, "out.json", json.dumps(records, indent=1) + "\n")
    write(tmp_path, "f.flow", 'use out = file(path: "out.json", mode: "append")\nfor each i in range(3)\n'
          '  send {id: i} to out\nend\n')

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    ran = subprocess.run([sys.executable, "-m", "flowlang", "run", "f.flow", "--state-dir", str(tmp_path / "st"),
                          "--log-format", "text"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                         preexec_fn=limited)
    assert ran.returncode == 1 and "disk full writing" in ran.stderr and "File too large" in ran.stderr, ran.stderr
    kept = out.read_text()
    assert json.loads(kept.rstrip() + "]") == records  # each record as it was: a list a later run appends to
    ran = cli("run", "f.flow", "--state-dir", str(tmp_path / "st"), cwd=tmp_path)  # no limit: appended after them
    assert ran.status == 0, ran.stderr
    assert json.loads(out.read_text()) == [*records, {"id": 0}, {"id": 1}, {"id": 2}]


def test_a_store_on_a_read_only_file_system_can_still_be_read(small_disk: Path) -> None:
    """`flowlang errors`, `jobs`, `state` and `ledger` of a store on a read-only mount (a backup, another
    user's cron store) said 'cannot use the state folder ...: unable to open database file', so the
    night's errors could not be looked at: SQLite's write-ahead log wants a file beside the database.
    They read it as it is; a command that changes the store says the folder cannot be written."""
    write(small_disk, "f.flow", 'for each r in [{id: 1}, {id: 2}]\n  fail "no {r.id}"\nend\n')
    assert cli("run", "f.flow", cwd=small_disk).status == 3
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    assert remounted.returncode == 0, remounted.stderr
    listed = cli("errors", "f.flow", "--json", cwd=small_disk)
    assert listed.status == 0, listed.stderr
    assert [json.loads(x)["message"] for x in listed.stdout.splitlines()] == ["no 1", "no 2"]
    assert [j["status"] for j in jobs(small_disk)] == ["partial"]
    for command in (("state", "f.flow"), ("ledger", "f.flow"), ("errors", "f.flow", "--group")):
        assert cli(*command, cwd=small_disk).status == 0, command
    refused = cli("resolve", "f.flow", "1", cwd=small_disk)
    assert refused.status == 1 and "this process cannot write the folder (a read-only file system" in refused.stderr
    held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.islink(f"/proc/self/fd/{fd}")]  # a store refused at opening was left open: disk busy
    assert not [path for path in held if path.startswith(str(small_disk))], held
