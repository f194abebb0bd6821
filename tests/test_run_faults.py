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
