"""The error store keeps what a replay needs (issue 10, High 5): a failed record's record and only the
scope values its iteration reads, each value once however many errors hold it, at most
max_error_bytes per error (with a note), and `flowlang errors` lists a page at a time."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import flowlang
from conftest import cli
from flowlang.runtime.limits import Limits

# a list of about 15 KB in scope, and 20 records that fail
BIG = """flow "big"
let big = [{{n: i, name: "item number {{i}} padded to be a bit longer"}} for i in range(0, 300)]
let unused = [i for i in range(0, 5000)]
function size()
  return len(big)
end
for each r in range(0, 20)
  if r >= 0
    fail "bad {{r}} of {body}"
  end
end
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "big.flow"
    path.write_text(text)
    return path


def stored_bytes(path: Path) -> int:
    db = sqlite3.connect(path.parent / "state" / "flowlang.db")
    try:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
        total = db.execute("select sum(length(record) + length(scope)) from errors").fetchone()[0]
        if "error_values" in tables:
            total += db.execute("select coalesce(sum(length(value)), 0) from error_values").fetchone()[0]
        return int(total)
    finally:
        db.close()


def open_errors(path: Path) -> list[flowlang.runtime.store.StoredError]:  # type: ignore[name-defined]
    flow = flowlang.load(path)
    store = flow.store(path.parent / "state")
    try:
        return store.open_errors(flow.key)
    finally:
        store.close()


def test_a_value_in_scope_is_stored_once_however_many_records_fail(tmp_path: Path) -> None:
    flow = write(tmp_path, BIG.format(body="{len(big)}"))
    result = flowlang.load(flow).run(state_dir=tmp_path / "state")
    assert result.status == "partial" and len(result.errors) == 20
    one_list = len(json.dumps([{"n": i, "name": f"item number {i} padded to be a bit longer"} for i in range(300)]))
    # before: every error held its own copy of `big` and `unused` (20 x ~40 KB)
    assert stored_bytes(flow) < 2 * one_list
    errors = open_errors(flow)
    assert set(errors[0].scope) == {"big"}  # `unused` is never read by the loop: not kept
    assert len(errors[-1].scope["big"]) == 300


def test_a_value_read_through_a_function_is_kept(tmp_path: Path) -> None:
    flow = write(tmp_path, BIG.format(body="{size()}").replace("range(0, 20)", "range(0, 2)"))
    flowlang.load(flow).run(state_dir=tmp_path / "state")
    assert set(open_errors(flow)[0].scope) == {"big"}


def test_an_error_over_max_error_bytes_leaves_out_the_largest_values_with_a_note_and_retry_works(
        tmp_path: Path) -> None:
    flow = write(tmp_path, BIG.format(body="{len(big)}").replace("range(0, 20)", "range(0, 2)"))
    result = flowlang.load(flow).run(state_dir=tmp_path / "state", limits=Limits(max_error_bytes=5_000))
    assert len(result.errors) == 2
    [first, _] = open_errors(flow)
    assert first.scope == {} and first.record == 0
    assert first.note is not None and "5,000-byte limit" in first.note and "big" in first.note
    listed = cli("errors", str(flow), "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert "note: over the 5,000-byte limit of one error (max_error_bytes): the value of big not kept" in listed.stdout
    as_json = cli("errors", str(flow), "--state-dir", str(tmp_path / "state"), "--json", cwd=tmp_path)
    assert "max_error_bytes" in json.loads(as_json.stdout.splitlines()[0])["note"]
    # the replay takes `big` from the flow's top-level lines: the record fails the same way, not otherwise
    fixed = write(tmp_path, BIG.format(body="{len(big)}").replace("range(0, 20)", "range(0, 2)")
                  .replace("if r >= 0", "if len(big) != 300"))
    again = flowlang.load(fixed).retry(state_dir=tmp_path / "state")
    assert again.ok and len(again.resolved) == 2


def test_a_huge_value_in_scope_costs_a_failed_record_no_time(tmp_path: Path) -> None:
    """Each failed record encoded, masked and hashed every value its iteration reads, three times over,
    before leaving out the ones past max_error_bytes: with a list of 2,000,000 numbers in scope each
    failure took seconds of CPU (5 of them about 15 s; a night of failures, hours). A value surely past
    the limit alone is now left out unencoded, with the same note."""
    flow = tmp_path / "huge.flow"
    flow.write_text('let xs = range(0, 2000000)\nlet small = [1, 2, 3]\nfor each r in range(0, 5)\n'
                    '  if len(xs) + len(small) > 0\n    fail "bad {r}"\n  end\nend\n')
    loaded = flowlang.load(flow)
    started = time.monotonic()
    result = loaded.run(state_dir=tmp_path / "state")
    took = time.monotonic() - started
    assert result.status == "partial" and len(result.errors) == 5
    assert took < 5, took
    errors = open_errors(flow)
    assert [e.record for e in errors] == [0, 1, 2, 3, 4]
    for error in errors:
        assert error.scope == {"small": [1, 2, 3]}
        assert error.note == ("over the 1,000,000-byte limit of one error (max_error_bytes): the value of xs not "
                              "kept; a retry takes them from the flow's top-level lines, or leaves the error "
                              "open where those do not work them out")


def test_the_cli_sets_max_error_bytes(tmp_path: Path) -> None:
    flow = write(tmp_path, BIG.format(body="{len(big)}").replace("range(0, 20)", "range(0, 1)"))
    done = cli("run", str(flow), "--state-dir", str(tmp_path / "state"), "--max-error-bytes", "1000", cwd=tmp_path)
    assert done.status == 3
    [error] = open_errors(flow)
    assert error.scope == {} and error.note is not None and "1,000-byte" in error.note
    cli("resolve", str(flow), "--all", "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    done = cli("run", str(flow), "--state-dir", str(tmp_path / "state"), "--max-error-bytes", "0", cwd=tmp_path)
    [error] = open_errors(flow)
    assert set(error.scope) == {"big"} and error.note is None  # 0: no cap


def test_errors_pages_with_limit_and_offset(tmp_path: Path) -> None:
    flow = write(tmp_path, BIG.format(body="{len(big)}").replace("range(0, 20)", "range(0, 7)"))
    flowlang.load(flow).run(state_dir=tmp_path / "state")
    ids = [e.id for e in open_errors(flow)]
    state = ["--state-dir", str(tmp_path / "state")]
    page = cli("errors", str(flow), *state, "--limit", "2", "--offset", "3", cwd=tmp_path)
    assert page.status == 0
    assert "big: 7 open errors (showing 4-5)" in page.stdout
    shown = [int(line.split()[0][1:]) for line in page.stdout.splitlines() if line.startswith("#")]
    assert shown == ids[3:5]
    rows = cli("errors", str(flow), *state, "--json", "--offset", "5", cwd=tmp_path).stdout.splitlines()
    assert [json.loads(r)["id"] for r in rows] == ids[5:]
    grouped = cli("errors", str(flow), *state, "--group", cwd=tmp_path).stdout
    assert "7 errors in 1 group" in grouped and "all like: bad <n> of <n>" in grouped  # differ only in numbers
    bad = cli("errors", str(flow), *state, "--limit", "-1", cwd=tmp_path)
    assert bad.status == 2 and "Traceback" not in bad.stderr


def test_purging_resolved_errors_forgets_values_no_error_holds(tmp_path: Path) -> None:
    flow = write(tmp_path, BIG.format(body="{len(big)}").replace("range(0, 20)", "range(0, 3)"))
    flowlang.load(flow).run(state_dir=tmp_path / "state")
    state = ["--state-dir", str(tmp_path / "state")]
    cli("resolve", str(flow), *state, "--all", cwd=tmp_path)
    store = flowlang.load(flow).store(tmp_path / "state")
    try:
        assert store.db.execute("select count(*) from error_values").fetchone()[0] == 1
        assert store.purge_resolved("big", days=0, keep=0) == 3
        assert store.db.execute("select count(*) from error_values").fetchone()[0] == 0
    finally:
        store.close()


def test_the_runs_input_kept_with_each_failure_is_encoded_once_a_run(tmp_path: Path) -> None:
    """A loop that reads `input` keeps the run's input with each failure (for its retry); it was encoded,
    masked and walked again for each: 858 failures of a 443 KB --input took 88 s where the same flow
    reading input outside its loop took 3 s. It is worked out once a run, and stored once."""
    payload = {"batch": "B1", "records": [{"id": i, "name": "x" * 40, "v": i % 30} for i in range(6000)]}
    timings = {}
    for name, text in (("inside", 'for each r in input.records\n  if r.v == 0\n    fail "bad {r.id} in {input.batch}"'
                                   "\n  end\nend\n"),
                       ("outside", 'let b = input.batch\nfor each r in input.records\n  if r.v == 0\n'
                                    '    fail "bad {r.id} in {b}"\n  end\nend\n')):
        flow = tmp_path / name / "f.flow"
        flow.parent.mkdir()
        flow.write_text(text)
        loaded = flowlang.load(flow)
        started = time.monotonic()
        result = loaded.run(state_dir=flow.parent / "state", input=payload)
        timings[name] = time.monotonic() - started
        assert result.status == "partial" and len(result.errors) == 200
    assert timings["inside"] < 3 * timings["outside"] + 1, timings
    db = sqlite3.connect(tmp_path / "inside" / "state" / "flowlang.db")
    try:
        (kept,) = db.execute("select count(*) from error_values where length(value) > 400000").fetchone()
    finally:
        db.close()
    assert kept == 1  # the input, once
