"""OPERATIONS.md 5-10 against the local API: the store commands, test runs, batches with a result per
record, chained flows, a closed stdout, JSON logs; and a kill -9 of `retry` against a sink without
idempotency keys (duplicates counted from what the sink received)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import flowlang
from conftest import cli
from fakeapi import FakeApi, Request, paged

RECORDS = [{"id": i} for i in range(1, 7)]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def lines(text: str) -> list[Any]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


# ---- 5. the store commands --------------------------------------------------------------------
def test_resolve_edit_jobs_and_errors_group(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'for each r in [{id: 1, n: 0}, {id: 2, n: 0}, {id: 3, n: 1}]\n'
                              '  if r.n == 0\n    fail "zero in {r.id}"\n  end\n  emit r.id\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    grouped = cli("errors", "f.flow", "--group", cwd=tmp_path).stdout
    assert "2 errors in 1 group" in grouped and "all like: zero in <n>" in grouped  # "zero in 1", "zero in 2"
    [first, second] = [e["id"] for e in lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)]
    edited = cli("edit", "f.flow", str(first), "--set", "n=5", cwd=tmp_path)
    assert edited.returncode == 0, edited.stderr
    # an id as `flowlang errors` shows it (#1), pasted from the listing, is that id (it was 'invalid int value')
    retried = cli("retry", "f.flow", "--id", f"#{first}", cwd=tmp_path)
    assert retried.returncode == 0 and lines(retried.stdout) == [1], retried.stderr
    done = cli("resolve", "f.flow", f"#{second}", "--reason", "sent by hand", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bad = cli("edit", "f.flow", "#x", "--set", "n=5", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid int value: '#x'" in bad.stderr, bad.stderr
    assert "no open errors" in cli("errors", "f.flow", cwd=tmp_path).stdout
    everything = lines(cli("errors", "f.flow", "--all", "--json", cwd=tmp_path).stdout)
    assert [e["resolved_reason"] for e in everything] == [f"retried (job {everything[0]['resolved_by']})",
                                                          "by hand: sent by hand"]
    jobs = lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout)
    assert [j["kind"] for j in jobs] == ["resolve", "retry", "edit", "run"]
    store = flowlang.load(tmp_path / "f.flow").store()
    try:
        [kept] = store.errors("f", include_resolved=True, ids=[first])
    finally:
        store.close()
    assert kept.history and kept.history[0]["record"]["n"] == 0  # the old record is kept


def test_resolve_match_that_finds_nothing_says_so_not_that_nothing_is_open(tmp_path: Path) -> None:
    """`flowlang resolve f.flow --all --match timeout` on a night of 2 open errors, neither about a timeout,
    said 'f: no open errors to resolve', as if the flow had none; and `--match` without `--all` was told
    to name the errors or give --all, not that --match goes with --all."""
    write(tmp_path, "f.flow", 'for each r in [{id: 1}, {id: 2}]\n  fail "order {r.id} not found"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    proc = cli("resolve", "f.flow", "--all", "--match", "timeout", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == "f: no open error's message contains 'timeout' (2 open errors: flowlang errors f.flow " \
        "--group)\n", proc.stdout
    alone = cli("resolve", "f.flow", "--match", "order", "--log-format", "text", cwd=tmp_path)
    assert alone.returncode == 2 and "--match goes with --all" in alone.stderr, alone.stderr
    assert "2 open errors" in cli("errors", "f.flow", cwd=tmp_path).stdout


def test_resolving_an_error_resolved_already_is_no_mistake(tmp_path: Path) -> None:
    """Resolving is idempotent (LANGUAGE.md 5), but `flowlang resolve f.flow 1` of an error resolved already
    (by a retry, a later run, by hand) said 'error: no open error #1 of f', as of an id that is no error of
    the flow, and exited 2, resolving none of the others named with it; `edit` said the same. resolve says
    who resolved it and goes on (exit 0); edit says it is resolved (exit 2); a wrong id is still refused."""
    write(tmp_path, "f.flow", 'for each r in [{id: 1}, {id: 2}]\n  fail "order {r.id} not found"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    assert cli("resolve", "f.flow", "1", "--reason", "sent by hand", cwd=tmp_path).returncode == 0
    again = cli("resolve", "f.flow", "1", "2", "--log-format", "text", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    [said, done] = again.stdout.splitlines()
    assert said.startswith("f: error #1 is resolved already (by job 2 at ") and said.endswith(
        ": by hand: sent by hand): left as it is"), said
    assert done.startswith("f: resolved 1 error (by hand; job ")
    assert "no open errors" in cli("errors", "f.flow", cwd=tmp_path).stdout
    edit = cli("edit", "f.flow", "2", "--set", "id=3", "--log-format", "text", cwd=tmp_path)
    assert edit.returncode == 2 and "error: error #2 of f is resolved (by job " in edit.stderr, edit.stderr
    wrong = cli("resolve", "f.flow", "1", "7", "--log-format", "text", cwd=tmp_path)
    assert wrong.returncode == 2 and "no open error #7 of f" in wrong.stderr, wrong.stderr


def test_an_id_or_count_past_the_stores_integers_is_a_usage_error(tmp_path: Path) -> None:
    """`--id 99999999999999999999999` (a typo, a pasted number) was an internal error (OverflowError:
    Python int too large to convert to SQLite INTEGER) in retry, resolve, edit, errors --offset and
    jobs --last; now the command line refuses it, naming the largest, and nothing changes."""
    write(tmp_path, "f.flow", 'for each r in [{id: 1}]\n  fail "no"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    huge = "9" * 23
    for command in (("retry", "f.flow", "--id", huge), ("retry", "f.flow", "--id", "-" + huge),
                    ("resolve", "f.flow", huge), ("edit", "f.flow", huge, "--set", "a=1"),
                    ("errors", "f.flow", "--offset", huge), ("errors", "f.flow", "--limit", huge),
                    ("jobs", "f.flow", "--last", huge), ("inbox", ".", "--replay", huge)):
        proc = cli(*command, cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert f"{huge} is past the largest number the store holds (9223372036854775807)" in proc.stderr, proc.stderr
    assert "invalid int value: 'x'" in cli("retry", "f.flow", "--id", "x", cwd=tmp_path).stderr
    assert "1 open error" in cli("errors", "f.flow", cwd=tmp_path).stdout
    assert [j["kind"] for j in lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout)] == ["run"]


def test_the_store_commands_find_a_named_flow_that_no_longer_checks(tmp_path: Path) -> None:
    """A flow is kept in its store under its `flow "Name"`. After an edit that broke it (a syntax or a
    check error), `errors` said 'no open errors', `jobs` 'no jobs yet' and `state` showed an empty
    state: they looked under the file's stem. They find the flow by its name line now."""
    good = 'flow "Nightly orders"\nfor each r in [{id: 1}]\n  fail "no"\nend\n'
    write(tmp_path, "orders.flow", good)
    assert cli("run", "orders.flow", cwd=tmp_path).returncode == 3
    assert cli("state", "orders.flow", "--set", "since=5", cwd=tmp_path).returncode == 0
    for broken in (good + "emit (\n", good + "emit nope\n", "# edited\n" + good.replace("for each", "for eahc")):
        write(tmp_path, "orders.flow", broken)
        errors = cli("errors", "orders.flow", cwd=tmp_path)
        assert "Nightly orders: 1 open error" in errors.stdout, (broken, errors.stdout, errors.stderr)
        jobs = lines(cli("jobs", "orders.flow", "--json", cwd=tmp_path).stdout)
        assert [j["kind"] for j in jobs] == ["state", "run"], jobs
        assert json.loads(cli("state", "orders.flow", cwd=tmp_path).stdout)["state"] == {"since": 5}
    resolved = cli("resolve", "orders.flow", "--all", cwd=tmp_path)
    assert "Nightly orders: resolved 1 error" in resolved.stdout, resolved.stdout + resolved.stderr
    write(tmp_path, "plain.flow", "emit (\n")  # no name line: the file's stem, as before
    assert "plain: no open errors" in cli("errors", "plain.flow", cwd=tmp_path).stdout


def test_errors_show_the_record_an_edit_replaced(tmp_path: Path) -> None:
    """`flowlang edit` says 'the old record is kept in the error's history', but no command showed that
    history: an edit that went wrong could not be undone by hand. `errors` shows the last record an
    edit replaced, and `errors --json` has every one (`history`: when, the edit's job, the record)."""
    write(tmp_path, "f.flow", 'for each r in [{id: 1, n: 0, email: "A@X"}]\n  fail "zero"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    [error] = lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
    assert error["history"] == []
    assert cli("edit", "f.flow", str(error["id"]), "--set", "n=5", cwd=tmp_path).returncode == 0
    assert cli("edit", "f.flow", str(error["id"]), "--unset", "email", cwd=tmp_path).returncode == 0
    [error] = lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
    assert error["record"] == {"id": 1, "n": 5}
    assert [h["record"] for h in error["history"]] == [{"id": 1, "n": 0, "email": "A@X"},
                                                       {"id": 1, "n": 5, "email": "A@X"}]
    edits = [j["id"] for j in lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout) if j["kind"] == "edit"]
    assert [h["job_id"] for h in error["history"]] == sorted(edits)
    shown = cli("errors", "f.flow", cwd=tmp_path).stdout
    assert (f'    edited 2 times, last in job {max(edits)}; the record before it: {{"id":1,"n":5,"email":"A@X"}} '
            "(errors --json has each)") in shown, shown


def test_jobs_tells_a_retry_dry_run_from_a_retry(tmp_path: Path) -> None:
    """`flowlang retry --dry-run` changes nothing, but `flowlang jobs` listed it as a retry like any other
    ('retry  ok  read 0, sent 1, failed 0'): it read as if the errors had been sent. Its line says
    'dry run: nothing sent' now, as `--json` had `dry_run: true`."""
    write(tmp_path, "f.flow", 'for each r in [{id: 1, n: 0}]\n  if r.n == 0\n    fail "zero"\n  end\n'
                              '  emit r.id\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
    [error] = lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
    assert cli("edit", "f.flow", str(error["id"]), "--set", "n=5", cwd=tmp_path).returncode == 0
    assert cli("retry", "f.flow", "--dry-run", cwd=tmp_path).returncode == 0
    assert "1 open error" in cli("errors", "f.flow", cwd=tmp_path).stdout  # nothing changed
    assert cli("retry", "f.flow", cwd=tmp_path).returncode == 0
    shown = cli("jobs", "f.flow", cwd=tmp_path).stdout.splitlines()
    assert "retry" in shown[1] and "dry run" not in shown[1]
    assert "retry" in shown[2] and shown[2].endswith("(dry run: nothing sent)"), shown


def test_edit_sets_an_item_of_a_list_and_never_replaces_data_on_the_way(tmp_path: Path) -> None:
    """`edit --set lines.1.qty=5` fixes one line of an order; before, it replaced the list of lines with
    {"1": {"qty": 5}}, and the retry sent an order without its lines. A path through text, a number or a
    list by name is refused (exit 2) and changes nothing; the retried order reaches the API whole, once."""
    orders = [{"id": "O1", "lines": [{"sku": "a", "qty": 1}]},
              {"id": "O2", "lines": [{"sku": "c", "qty": 1}, {"sku": "d", "qty": -1}, {"sku": "e", "qty": 2}]}]
    write(tmp_path, "orders.json", json.dumps(orders))
    with FakeApi() as api:
        write(tmp_path, "f.flow", f'use api = http(base_url: "{api.url}")\nuse src = file(path: "orders.json")\n'
                                  'call src.read() as orders\nfor each o in orders\n  for each l in o.lines\n'
                                  '    if l.qty < 0\n      fail "bad quantity {l.qty} of {l.sku}"\n    end\n  end\n'
                                  '  send o to api.post("/orders")\nend\n')
        assert cli("run", "f.flow", cwd=tmp_path).returncode == 3
        [error] = lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
        saved = error["record"]
        for bad, says in [("lines.x.qty=5", "lines is a list of 3; give an index, like lines.0.qty"),
                          ("lines.3.qty=5", "lines is a list of 3, it has no item 3"),
                          ("id.x=5", 'id is text ("O2"), not an object'),
                          ("lines.1.qty.x=5", "lines.1.qty is a number")]:
            refused = cli("edit", "f.flow", str(error["id"]), "--set", bad, cwd=tmp_path)
            assert refused.returncode == 2 and says in refused.stderr, (bad, refused.stderr)
            assert "Traceback" not in refused.stderr
        missing = cli("edit", "f.flow", str(error["id"]), "--unset", "lines.0.colour", cwd=tmp_path)
        assert missing.returncode == 2 and "there is no lines.0.colour" in missing.stderr, missing.stderr
        [unchanged] = lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
        assert unchanged["record"] == saved
        edited = cli("edit", "f.flow", str(error["id"]), "--set", "lines.1.qty=5", "--set", 'lines[-1].sku="z"',
                         cwd=tmp_path)
        assert edited.returncode == 0, edited.stderr
        assert cli("retry", "f.flow", cwd=tmp_path).returncode == 0
    received = [r.body for r in api.requests if r.method == "POST" and r.path == "/orders"]
    assert [r["id"] for r in received] == ["O1", "O2"]  # each order once
    assert received[1]["lines"] == [{"sku": "c", "qty": 1}, {"sku": "d", "qty": 5}, {"sku": "z", "qty": 2}]


def test_state_command_sets_and_resets_for_a_backfill(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "emit {since: job.last_success_at, cursor: state.cursor}\nlet state.cursor = 9\n")
    assert lines(cli("run", "f.flow", cwd=tmp_path).stdout) == [{"since": None, "cursor": None}]
    changed = cli("state", "f.flow", "--set", "cursor=3", "--last-success-at", "2024-05-01T00:00:00Z",
                      cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert lines(changed.stdout) == [{"state": {"cursor": 3}, "last_success_at": "2024-05-01T00:00:00Z"}]
    assert lines(cli("run", "f.flow", cwd=tmp_path).stdout) == [
        {"since": "2024-05-01T00:00:00Z", "cursor": 3}]
    assert cli("state", "f.flow", "--reset", cwd=tmp_path).returncode == 0
    assert lines(cli("run", "f.flow", cwd=tmp_path).stdout) == [{"since": None, "cursor": None}]
    bad = cli("state", "f.flow", "--last-success-at", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr



def test_a_last_success_set_with_an_offset_is_kept_in_utc(tmp_path: Path) -> None:
    """`--last-success-at 2026-05-01T00:00:00+05:30` was kept with its offset, so the documented
    `format_date(job.last_success_at, "%Y-%m-%dT%H:%M:%SZ")` gave 2026-05-01T00:00:00Z: a window
    starting 5.5 hours late, whose records were never read. It is the same instant in UTC now."""
    write(tmp_path, "f.flow", 'emit {since: job.last_success_at, '
                              'text: format_date(job.last_success_at, "%Y-%m-%dT%H:%M:%SZ")}\n')
    env = {"TZ": "Asia/Kolkata"}
    changed = cli("state", "f.flow", "--last-success-at", "2026-05-01T00:00:00+05:30", cwd=tmp_path, env=env)
    assert changed.returncode == 0, changed.stderr
    assert lines(changed.stdout) == [{"state": {}, "last_success_at": "2026-04-30T18:30:00Z"}]
    assert "last_success_at = 2026-04-30T18:30:00Z" in changed.stderr
    assert lines(cli("run", "f.flow", cwd=tmp_path, env=env).stdout) == [
        {"since": "2026-04-30T18:30:00Z", "text": "2026-04-30T18:30:00Z"}]


def test_a_tagged_time_without_an_offset_set_in_state_is_utc(tmp_path: Path) -> None:
    """`--set 'since={"$datetime": "2024-05-01T00:00:00"}'` was kept without a zone, and the run
    comparing it with now() ended in 'internal error (TypeError: can't compare offset-naive and
    offset-aware datetimes)'. It is UTC, as text without an offset is to datetime()."""
    write(tmp_path, "f.flow", 'emit {since: state.since, past: state.since < now(), '
                              'there: to_zone(state.since, "Asia/Kolkata")}\n')
    env = {"TZ": "Asia/Kolkata"}
    changed = cli("state", "f.flow", "--set", 'since={"$datetime": "2024-05-01T00:00:00"}', cwd=tmp_path, env=env)
    assert changed.returncode == 0, changed.stderr
    assert lines(changed.stdout) == [{"state": {"since": {"$datetime": "2024-05-01T00:00:00Z"}},
                                      "last_success_at": None}]
    done = cli("run", "f.flow", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [{"since": "2024-05-01T00:00:00Z", "past": True, "there": "2024-05-01T05:30:00+05:30"}]
    late = cli("state", "f.flow", "--set", 'since={"$datetime": "9999-12-31T23:00:00-05:00"}', cwd=tmp_path)
    assert late.returncode == 2 and "is not a time" in late.stderr and "internal error" not in late.stderr


def test_state_set_reads_nan_as_text_like_param_and_refuses_a_bad_tagged_value(tmp_path: Path) -> None:
    """NaN and Infinity are no JSON numbers (flowlang numbers are finite decimals): `state --set`
    keeps them as text, as `--param` does; a tagged value that holds no duration or time is refused
    (it was an internal error: "cannot convert float NaN to integer")."""
    write(tmp_path, "f.flow", "param p\nemit {p: p, a: state.a, b: state.b, c: state.c, d: state.d}\n")
    listed = cli("state", "f.flow", "--set", "d=[1, NaN]", cwd=tmp_path)  # a list, so it must be JSON
    assert listed.returncode == 2 and "--set d=[1, NaN] is not valid JSON (NaN is not a JSON number)" in listed.stderr
    done = cli("state", "f.flow", "--set", "a=NaN", "--set", "b=Infinity", "--set", "c=-Infinity",
                   "--set", 'd="[1, NaN]"', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout)[0]["state"] == {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "[1, NaN]"}
    ran = cli("run", "f.flow", "--param", "p=NaN", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert lines(ran.stdout) == [{"p": "NaN", "a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "[1, NaN]"}]
    for raw, said in (('{"$seconds": "NaN"}', '"$seconds" takes a finite number of seconds'),
                      ('{"$seconds": "-Infinity"}', '"$seconds" takes a finite number of seconds'),
                      ('{"$seconds": "1e999"}', '"$seconds" takes a finite number of seconds'),
                      ('{"$datetime": "soon"}', '"$datetime" takes an ISO 8601 time'),
                      ('{"$date": 5}', '"$date" takes an ISO 8601 date')):
        bad = cli("state", "f.flow", "--set", f"x={raw}", cwd=tmp_path)
        assert bad.returncode == 2, bad.stderr
        assert said in bad.stderr and "internal error" not in bad.stderr and "Traceback" not in bad.stderr
    shown = cli("state", "f.flow", cwd=tmp_path)
    assert "x" not in lines(shown.stdout)[0]["state"]  # nothing was set
    tagged = cli("state", "f.flow", "--set", 'x={"$seconds": 90}', cwd=tmp_path)
    assert lines(tagged.stdout)[0]["state"]["x"] == {"$seconds": "90"}

def test_resolved_errors_past_retention_are_purged(tmp_path: Path) -> None:
    from flowlang.runtime.store import Store

    write(tmp_path, "f.flow", "for each r in [{id: 1}]\n  fail \"no\"\nend\n")
    cli("run", "f.flow", cwd=tmp_path)
    cli("resolve", "f.flow", "--all", cwd=tmp_path)
    store = Store(tmp_path / ".flowlang")
    try:
        store.db.execute("update errors set resolved_at = '2000-01-01T00:00:00Z'")
        assert store.purge_resolved("f") == 1
        assert store.errors("f", include_resolved=True) == []
    finally:
        store.close()


# ---- 6. test runs -----------------------------------------------------------------------------
def test_limit_and_dry_run_are_test_jobs(tmp_path: Path) -> None:
    flow = flowlang.load(write(tmp_path, "f.flow", "emit job.last_success_at == null\nlet state.n = 1\n"
                                                   "for each x in [1, 2, 3]\n  emit x\nend\n"))
    test = flow.run(limit=1, state_dir=tmp_path / "s")
    assert test.kind == "test" and test.test and test.outputs == [True, 1]
    dry = flow.run(dry_run=True, state_dir=tmp_path / "s")
    assert dry.kind == "dry-run" and dry.outputs == [True, 1, 2, 3]
    real = flow.run(state_dir=tmp_path / "s")
    assert real.kind == "run" and not real.test and real.outputs == [True, 1, 2, 3]
    after = flow.run(limit=1, state_dir=tmp_path / "s")
    assert after.outputs == [False, 1]
    store = flow.store(tmp_path / "s")
    try:
        assert store.load_state(flow.key) == {"n": 1}
    finally:
        store.close()
    helped = cli("run", "--help", cwd=tmp_path)  # OPERATIONS.md 6: --help says a --limit run writes for real
    assert helped.returncode == 0 and "its writes are real" in " ".join(helped.stdout.split())


def test_a_limit_run_sends_each_of_its_records_whole() -> None:
    """`--limit 1` takes 'at most N records per loop', and an inner loop over an order's lines was a loop
    too: the order went to the API for real with the first of its three lines ({"lines": [1]}), a wrong
    order, since a --limit run's writes are real. An inner loop over a list in memory runs whole now;
    one that pulls records from a source (a paginated call inside the loop) still takes N of them."""
    pages = '{style: "page", size: 2, records: "data"}'
    with FakeApi() as api:
        api.route("GET", "/r", lambda req: paged(RECORDS, req, "page", api.url))
        flow = flowlang.compile(
            "use api = http(base_url: env.API)\n"
            "for each o in [{id: 1, lines: [1, 2, 3]}, {id: 2, lines: [4, 5]}]\n  let ls = []\n"
            "  for each l in o.lines\n    let ls = ls + [l]\n  end\n"
            '  send {id: o.id, lines: ls} to api.post("/orders")\n'
            f'  call api.get("/r", pages: {pages}) as s\n  for each r in s\n    emit r.id\n  end\nend\n')
        done = flow.run(limit=1, env={"API": api.url})
        assert done.kind == "test" and done.outputs == [1]
        assert [r.body for r in api.requests if r.method == "POST"] == [{"id": 1, "lines": [1, 2, 3]}]
        assert api.count("GET", "/r") == 1


def test_limit_and_stop_fetch_no_page_they_do_not_use() -> None:
    pages = '{style: "page", size: 2, records: "data"}'
    with FakeApi() as api:
        api.route("GET", "/r", lambda req: paged(RECORDS, req, "page", api.url))
        flow = flowlang.compile(f'use api = http(base_url: env.API)\ncall api.get("/r", pages: {pages}) as s\n'
                                "for each r in s\n  emit r.id\nend\n")
        assert flow.run(limit=4, env={"API": api.url}).outputs == [1, 2, 3, 4]
        assert api.count("GET", "/r") == 2  # 4 records are two pages: the third is never asked for
        stopping = flowlang.compile(f'use api = http(base_url: env.API)\ncall api.get("/r", pages: {pages}) '
                                    "as s\nfor each r in s\n  emit r.id\n  if r.id == 2\n    stop\n  end\nend\n")
        assert stopping.run(env={"API": api.url}).outputs == [1, 2]
        assert api.count("GET", "/r") == 3


# ---- 7. batches -------------------------------------------------------------------------------
SHOP = """name = "shop"
base_url = "{base_url}"

[config]
base_url = { required = true }

[operations.create_items]
method = "POST"
path = "/items/batch"
batch = { max = 100, body = "items", results = "results", ok = "ok", error = "error" }
"""


def test_a_dry_run_says_what_it_would_send_not_that_it_sent(tmp_path: Path) -> None:
    """A dry run's summary said 'dry run finished in 0.86s: read 100, sent 258, ...' and `flowlang jobs`
    'sent 258' while nothing was sent (the API received nothing): it says 'would send 258' now."""
    write(tmp_path, "f.flow", 'use api = http(base_url: env.API)\nfor each n in [1, 2, 3]\n'
                              '  send {n: n} to api.post("/orders")\nend\n')
    with FakeApi() as api:
        proc = cli("run", "f.flow", "--dry-run", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
        assert [r for r in api.requests if r.method == "POST"] == []
    assert proc.returncode == 0, proc.stderr
    assert "f: dry run finished in " in proc.stderr and "s: read 3, would send 3, failed 0" in proc.stderr
    assert "sent 3" not in proc.stderr
    jobs = cli("jobs", "f.flow", cwd=tmp_path).stdout
    assert "read 3, would send 3, failed 0" in jobs and "sent 3" not in jobs, jobs
    assert lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout)[0]["stats"]["sent"] == 3  # the figure


def test_a_batch_gives_each_record_its_result(tmp_path: Path) -> None:
    write(tmp_path, "connectors/shop.toml", SHOP)
    write(tmp_path, "f.flow", 'use shop = shop(base_url: env.API)\n'
                              'param items = [{sku: "A"}, {sku: "B"}, {sku: "C", fail: true}, {sku: "D"}, {sku: "E"}]\n'
                              "for each it in items\n  send it to shop.create_items batch 2 as created\n"
                              "  emit {sku: it.sku, id: created.record.id}\nend\n")
    with FakeApi() as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"API": api.url})
        batches = [r.body["items"] for r in api.requests if r.path == "/items/batch"]
    assert proc.returncode == 3, proc.stderr
    assert [o["sku"] for o in lines(proc.stdout)] == ["A", "B", "D", "E"]  # emit order kept, C not emitted
    assert [[i["sku"] for i in b] for b in batches] == [["A", "B"], ["C", "D"], ["E"]]
    assert len({o["id"] for o in lines(proc.stdout)}) == 4
    errors = lines(cli("errors", "f.flow", "--json", cwd=tmp_path).stdout)
    assert [(e["record"]["sku"], e["message"]) for e in errors] == [
        ("C", "shop.create_items refused the record: rejected C")]


def test_a_loop_with_a_batched_send_cannot_assign_outer_variables() -> None:
    try:
        flowlang.compile("let n = 0\nfor each x in [1]\n  send x to out batch 2\n  let n = n + 1\nend\n",
                         bindings=["out"])
    except flowlang.CheckError as e:
        assert "runs ahead" in str(e)
    else:
        raise AssertionError("an outer variable was assigned in a loop that runs ahead")


# ---- 8. chained flows -------------------------------------------------------------------------
def test_a_child_with_failed_records_makes_the_parent_partial(tmp_path: Path) -> None:
    write(tmp_path, "child.flow", 'for each r in [{id: 1}, {id: 2}]\n  if r.id == 2\n    fail "no"\n  end\nend\n')
    write(tmp_path, "parent.flow", 'run "child.flow"\nemit "after"\n')
    proc = cli("run", "parent.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert lines(proc.stdout) == ["after"]
    assert "child (job 2) had 1 failed record" in proc.stderr


def test_job_params_holds_the_params_the_run_runs_with_defaults_included(tmp_path: Path) -> None:
    """job.params held only the params given: `param n = 1` then `emit job.params` showed {}, and a
    child run with {who: "x"} showed {"who":"x"} without its defaults. It holds every param's value
    now, in the flow's order, a given time read as a time; a default that reads `job` is no loop."""
    write(tmp_path, "f.flow", 'param n = 1\nparam since = datetime("2024-01-01T00:00:00Z")\nparam who\n'
                              'param j = job\nemit job.params.n\nemit keys(job.params)\n'
                              'emit [job.params.since, job.params.who, job.params.j.flow]\n')
    proc = cli("run", "f.flow", "--param", "who=a", "--param", "since=2024-05-01T10:00:00+02:00", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc.stdout) == [1, ["n", "since", "who", "j"], ["2024-05-01T10:00:00+02:00", "a", "f"]]
    write(tmp_path, "child.flow", 'param who\nparam n = 2\nparam m = n + 1\nemit job.params\n')
    write(tmp_path, "parent.flow", 'run "child.flow" with {who: "x"}\n')
    proc = cli("run", "parent.flow", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc.stdout) == [{"who": "x", "n": 2, "m": 3}]


def test_a_child_that_fails_as_a_whole_is_named_at_its_own_line(tmp_path: Path) -> None:
    """A child that failed as a whole was reported at the parent's `run` line only ('the flow
    child.flow failed: cannot read 'seven' as a number'): where in the child was left out."""
    write(tmp_path, "child.flow", 'flow "Child"\nlet n = 1\nlet x = int("seven")\nemit x\n')
    write(tmp_path, "f.flow", 'run "child.flow"\nemit "after"\n')
    proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "f.flow:1:1: error: the flow child.flow failed at child.flow:3:9: cannot read 'seven' as a number" \
        in proc.stderr, proc.stderr


def test_a_run_line_without_a_param_the_child_needs_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """`run "child.flow"` of a child with `param n` (no default), or `with {n: 1, m: 2}` of a child that has
    no m, passed check; the run emitted what came before the line, then failed: 'the flow child.flow cannot
    run: missing param n'. Check says so at the line (or the key), before anything runs; a `with` that is
    not an object written out is left to the run."""
    write(tmp_path, "child.flow", "param n\nparam k = 1\nemit {child: n}\n")
    write(tmp_path, "f.flow", 'emit "before"\nrun "child.flow"\n')
    proc = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert ("f.flow:2:1: error: child.flow needs the param n, which this `run` does not give\n"
            ' 2 | run "child.flow"\n'
            "   | ^^^^^^^^^^^^^^^^\n"
            '   = hint: give it: run "child.flow" with {n: ...}') in proc.stderr, proc.stderr
    write(tmp_path, "f.flow", 'emit "before"\nrun "child.flow" with {n: 1, kk: 2}\n')
    proc = cli("check", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2
    assert ("f.flow:2:30: error: child.flow has no param 'kk' (its params: n, k)\n"
            ' 2 | run "child.flow" with {n: 1, kk: 2}\n'
            "   |                              ^^\n"
            "   = hint: did you mean 'k'?") in proc.stderr, proc.stderr
    write(tmp_path, "f.flow", 'let p = {n: 3}\nrun "child.flow" with {n: 1, k: 2}\nrun "child.flow" with p\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc.stdout) == [{"child": 1}, {"child": 3}]


# ---- 9. a closed stdout -----------------------------------------------------------------------
def test_a_closed_stdout_ends_the_run_quietly_with_141(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", "for each i in range(100000)\n  emit {i: i}\nend\n")
    command = f"{sys.executable} -m flowlang run f.flow | head -2 >/dev/null; echo status=${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "status=141" in proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr and "internal" not in proc.stderr
    assert "no open errors" in cli("errors", "f.flow", cwd=tmp_path).stdout
    jobs = lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout)
    assert jobs[0]["status"] == "interrupted" and jobs[0]["stats"]["read"] < 100000
    piped = subprocess.run(["bash", "-c", f"{sys.executable} -m flowlang jobs f.flow | head -0; "
                                          "echo status=${PIPESTATUS[0]}"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr


def test_a_closed_stdout_ends_connectors_tables_with_141(tmp_path: Path) -> None:
    """`flowlang connectors http | head -1` exited 1, without a word: its tables were written by rich,
    whose own handling of a closed stdout is SystemExit(1), so a `set -o pipefail` script saw a failure.
    Each table is drawn into text first and written as every other output: it ends quietly with 141."""
    for words in ("connectors http", "connectors file"):
        command = f"{sys.executable} -m flowlang {words} | head -1 >/dev/null; echo status=${{PIPESTATUS[0]}}"
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert "status=141" in proc.stdout, (words, proc.stdout, proc.stderr)
        assert proc.stderr == "", proc.stderr
    whole = cli("connectors", "http", cwd=tmp_path)
    assert whole.returncode == 0 and "operations" in whole.stdout
    assert whole.stdout.endswith("\n") and not whole.stdout.endswith("\n\n")


# ---- 10. JSON logs ----------------------------------------------------------------------------
def test_json_logs_are_all_json_with_flow_and_job_id(tmp_path: Path) -> None:
    write(tmp_path, "child.flow", 'log warn "from the child"\n')
    write(tmp_path, "f.flow", 'run "child.flow"\nfor each n in [1, 2]\n  log warn "checking {n}"\n'
                              '  if n == 2\n    fail "bad {n}"\n  end\nend\n')
    proc = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path)
    entries = [json.loads(x) for x in proc.stderr.splitlines() if x.strip()]  # every line is JSON
    assert all(e["flow"] and e["job_id"] is not None for e in entries), entries
    assert {e["flow"] for e in entries} == {"f", "child"}
    assert entries[-1]["level"] == "warning" and "finished with failed records" in entries[-1]["message"]
    retry = cli("retry", "f.flow", "--log-format", "json", cwd=tmp_path)
    for line in retry.stderr.splitlines():
        entry = json.loads(line)
        assert entry["flow"] == "f" and entry["job_id"] is not None


def test_json_logs_of_a_failed_record_carry_its_location(tmp_path: Path) -> None:
    """docs/cli.md: a JSON line carries `location` where it has a place; the line of a failed record (and the
    summing-up of records that failed alike) named its place in its message alone ('record failed at
    f.flow:5:5: bad 2'), so a log collector could not group a night's failures by line (found by an operator's
    trial of OPERATIONS.md 10). They carry it as `location`; the text lines are as they were."""
    write(tmp_path, "f.flow", 'for each n in [1, 2, 3, 4]\n  if n > 1\n    fail "bad"\n  end\nend\n')
    for command in (("run", "f.flow"), ("retry", "f.flow")):
        proc = cli(*command, "--log-format", "json", cwd=tmp_path)
        failed = [e for e in map(json.loads, proc.stderr.splitlines()) if e["level"] == "error"]
        assert [e["message"].split(":")[0] for e in failed] == ["record failed at f.flow", "3 records failed at f.flow"]
        assert {e["location"] for e in failed} == {"f.flow:3:5"}, failed
    text = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path).stderr
    assert "error: record failed at f.flow:3:5: bad\n" in text


def test_a_retrys_summary_line_has_the_level_of_its_jobs_status(tmp_path: Path) -> None:
    """A retry that could not replay an error is a failed job (exit 1, `flowlang jobs` says failed), but
    its summary line ('retry (job 3) resolved 0, still failing 0, cannot be replayed 1') was at level
    warning, where OPERATIONS.md 10 puts a failed job's summary at error: info ok, warning partial."""
    write(tmp_path, "f.flow", 'for each r in [{id: 1}, {id: 2}]\n  if r.id == 2 and env.BAD != null\n'
                              '    fail "bad"\n  end\n  emit r.id\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path, env={"BAD": "1"}).returncode == 3
    levels = []
    for env, status in (({"BAD": "1"}, 3), ({}, 0)):
        proc = cli("retry", "f.flow", "--log-format", "json", cwd=tmp_path, env=env)
        assert proc.returncode == status, proc.stderr
        levels.append(json.loads(proc.stderr.splitlines()[-1])["level"])
    assert cli("run", "f.flow", cwd=tmp_path, env={"BAD": "1"}).returncode == 3
    write(tmp_path, "f.flow", 'for each row in [{id: 1}, {id: 2}]\n  emit row.id\nend\n')  # the loop changed
    proc = cli("retry", "f.flow", "--log-format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    last = json.loads(proc.stderr.splitlines()[-1])
    assert "cannot be replayed 1" in last["message"]
    assert [*levels, last["level"]] == ["warning", "info", "error"]
    assert lines(cli("jobs", "f.flow", "--json", "--last", "1", cwd=tmp_path).stdout)[0]["status"] == "failed"


def test_the_sigterm_line_of_a_running_job_carries_its_job_id(tmp_path: Path) -> None:
    """Under JSON logs, SIGTERM's 'SIGTERM: finishing the records in flight, then stopping' line had
    `job_id` null while the job it stops was running (job 1), where every other line of the run carries
    it (OPERATIONS.md 10): the line was written from the event loop's own context, not the run's."""
    write(tmp_path, "f.flow", "for each i in range(4000000)\n  emit i\nend\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow", "--log-format", "json"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the run is going
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    entries = [json.loads(line) for line in err.splitlines()]
    assert any("SIGTERM: finishing the records in flight" in e["message"] for e in entries), entries
    assert all((e["flow"], e["job_id"]) == ("f", 1) for e in entries), entries


def test_json_logs_hold_the_errors_before_a_run_starts_too(tmp_path: Path) -> None:
    """A cron job's stderr is JSON lines; a flow that no longer checks after an edit, a missing file,
    a bad --input or a retry of an error that is not open printed plain text there (a rustc block of
    three lines), which a log collector could not read. Each is one JSON object now, a check error
    with its location; a recorded run's last lines carry its job id."""
    write(tmp_path, "bad.flow", 'for each r in [1]\n  emit lower(emial)\nend\n')
    write(tmp_path, "ok.flow", 'for each r in input\n  emit r\nend\n')
    write(tmp_path, "broken.json", '{"a": ')
    commands = [("run", "bad.flow"), ("run", "nothere.flow"), ("run", "ok.flow", "--input", "broken.json"),
                ("run", "ok.flow", "--input", "nothere.json"), ("plan", "bad.flow"), ("plan", "nothere.flow"),
                ("retry", "bad.flow"), ("retry", "ok.flow", "--id", "7"), ("test", "bad.flow", "--cassette", ".")]
    for command in commands:
        proc = cli(*command, "--log-format", "json", cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.stderr)
        entries = [json.loads(x) for x in proc.stderr.splitlines()]  # every line is one JSON object
        assert entries and entries[0]["level"] == "error", (command, entries)
        assert all(e["flow"] == Path(command[1]).stem for e in entries), (command, entries)  # as every line
    checked = [json.loads(x) for x in
               cli("run", "bad.flow", "--log-format", "json", cwd=tmp_path).stderr.splitlines()]
    assert checked[0]["location"] == "bad.flow:2:14" and "unknown name 'emial'" in checked[0]["message"]
    assert checked[0]["flow"] == "bad" and checked[-1]["message"] == "1 error; nothing was run"
    write(tmp_path, "one.json", "[1]")
    recorded = cli("run", "ok.flow", "--input", "one.json", "--record", "cas", "--log-format", "json",
                       cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    entries = [json.loads(x) for x in recorded.stderr.splitlines()]
    assert all(e["flow"] == "ok" and e["job_id"] == 1 for e in entries), entries


def test_json_logs_of_a_flow_that_does_not_check_carry_its_flow_name_line(tmp_path: Path) -> None:
    """A flow's jobs, errors and run lines are kept under its `flow "Name"`; when an edit broke it, the JSON
    lines of run, plan and retry said its file's stem ('nightly') instead, so a log collector's query for the
    flow's name missed the one night it did not check (found by an operator's trial of OPERATIONS.md 10)."""
    text = 'flow "Nightly orders"\nfor each r in [1]\n  emit lower(emial)\nend\n'
    write(tmp_path, "nightly.flow", text)
    for command in (("run", "nightly.flow"), ("plan", "nightly.flow"), ("retry", "nightly.flow"), ("run", "-"),
                    ("test", "nightly.flow", "--cassette", ".")):
        proc = cli(*command, "--log-format", "json", cwd=tmp_path, stdin=text if command[1] == "-" else None)
        assert proc.returncode == 2, (command, proc.stderr)
        entries = [json.loads(x) for x in proc.stderr.splitlines()]
        assert entries[0]["location"].endswith(":3:14"), entries
        assert {e["flow"] for e in entries} == {"Nightly orders"}, (command, entries)


def test_json_logs_give_a_failed_run_its_error_at_level_error(tmp_path: Path) -> None:
    write(tmp_path, "f.flow", 'let x = int("seven")\nemit x\n')
    proc = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path)
    entries = [json.loads(x) for x in proc.stderr.splitlines() if x.strip()]
    [error] = [e for e in entries if str(e.get("location")).startswith("f.flow:1:")]
    assert error["level"] == "error" and "cannot read 'seven' as a number" in error["message"], entries


# ---- kill -9 of retry, against a sink without idempotency keys --------------------------------
def test_retry_killed_and_run_again_delivers_each_record_at_most_once_more(tmp_path: Path) -> None:
    received: list[int] = []
    ready = {"open": False}

    def sink(req: Request) -> tuple[int, dict[str, str], Any]:
        if not ready["open"]:
            return 422, {}, {"error": "closed"}
        time.sleep(0.05)
        received.append(req.body["id"])  # no idempotency key: every delivery counts
        return 201, {}, {}

    write(tmp_path, "f.flow", "use api = http(base_url: env.API, retry: 1)\n"
                              "for each i in range(1, 41)\n  send {id: i} to api.post(\"/sink\")\nend\n")
    with FakeApi() as api:
        api.route("POST", "/sink", sink)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}, "API": api.url}
        assert subprocess.run([sys.executable, "-m", "flowlang", "run", "f.flow"], cwd=tmp_path, env=env,
                              capture_output=True, timeout=120).returncode == 3
        ready["open"] = True
        child = subprocess.Popen([sys.executable, "-m", "flowlang", "retry", "f.flow"], cwd=tmp_path, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(received) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = len(received)
        again = subprocess.run([sys.executable, "-m", "flowlang", "retry", "f.flow"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
    assert 10 <= killed_at < 40
    assert again.returncode == 0, again.stderr
    counts = Counter(received)
    assert set(counts) == set(range(1, 41))  # none lost
    assert sum(counts.values()) - 40 <= 1  # at most the one in flight when the retry was killed


def test_a_datetime_in_state_is_shown_as_set_reads_it_so_copying_it_back_keeps_a_time(tmp_path: Path) -> None:
    """`flowlang state` showed a datetime cursor as plain text ("2024-05-01T10:00:00Z"), so copying it back
    with `--set cursor='"..."'` made it a string, and `r.at > state.cursor` then failed on every record
    (a time compared with text). It is shown in the tagged form --set reads ({"$datetime": ...}), with
    a date and a duration, and an object of the data shaped like a tag; each set back is what it was."""
    from conftest import cli

    write(tmp_path, "events.jsonl", "".join(json.dumps({"id": i, "at": f"2024-05-01T1{i}:00:00Z"}) + "\n"
                                            for i in range(3)))
    write(tmp_path, "f.flow", """flow "cursor"
use src = file(path: "events.jsonl")
call src.read() as rows
let since = state.cursor ?? datetime("2000-01-01T00:00:00Z")
for each r in rows
  if datetime(r.at) > since
    emit {id: r.id}
    let state.cursor = datetime(r.at)
  end
end
let state.day = date("2024-05-01")
let state.wait = state.wait ?? seconds(90)
let state.raw = {"$date": "not a date"}
""")
    first = cli("run", "f.flow", cwd=tmp_path)
    assert first.status == 0 and lines(first.stdout) == [{"id": 0}, {"id": 1}, {"id": 2}], first.stderr
    shown = json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)["state"]
    assert shown == {"cursor": {"$datetime": "2024-05-01T12:00:00Z"}, "day": {"$date": "2024-05-01"},
                     "wait": {"$seconds": "90"}, "raw": {"$object": {"$date": "not a date"}}}
    for name, value in shown.items():  # copied back as shown
        assert cli("state", "f.flow", "--set", f"{name}={json.dumps(value)}", cwd=tmp_path).status == 0
    assert json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)["state"] == shown
    again = cli("run", "f.flow", cwd=tmp_path)
    assert again.status == 0 and again.stdout == "" and "failed 0" in again.stderr, again.stderr


def test_a_damaged_state_is_shown_as_stored_and_its_bad_value_can_be_set_again(tmp_path: Path) -> None:
    """A state whose stored tag holds no value of its kind ({"$datetime": "soon"}: written by hand or
    damaged) made every run say 'the saved state ... is damaged ...; see it with flowlang state, then
    set it again with flowlang state --set', but `flowlang state` and `--set` failed with that same
    message, so neither could be done (only --reset, losing the whole state). `state` now shows it as
    stored (exit 1, the message on stderr), a --set that leaves it damaged changes nothing, and a --set
    of the bad value mends it."""
    import sqlite3

    from conftest import cli

    write(tmp_path, "f.flow", "let state.b = (state.b ?? 0) + 1\nemit {a: state.a, b: state.b}\n")
    assert cli("run", "f.flow", cwd=tmp_path).status == 0
    with sqlite3.connect(tmp_path / ".flowlang" / "flowlang.db") as db:
        db.execute("""update state set value = '{"a": {"$datetime": "soon"}, "b": 1}'""")
    db.close()
    ran = cli("run", "f.flow", cwd=tmp_path)
    assert ran.status == 1 and "see it with flowlang state" in ran.stderr, ran.stderr
    shown = cli("state", "f.flow", cwd=tmp_path)
    assert shown.status == 1 and "is damaged" in shown.stderr and "Traceback" not in shown.stderr
    assert json.loads(shown.stdout)["state"] == {"a": {"$datetime": "soon"}, "b": 1}
    still = cli("state", "f.flow", "--set", "b=5", cwd=tmp_path)
    assert still.status == 1 and "is damaged" in still.stderr
    assert json.loads(cli("state", "f.flow", cwd=tmp_path).stdout)["state"]["b"] == 1  # nothing changed
    assert "set b" not in cli("jobs", "f.flow", cwd=tmp_path).stdout
    mended = cli("state", "f.flow", "--set", 'a={"$datetime": "2024-05-01T00:00:00Z"}', cwd=tmp_path)
    assert mended.status == 0, mended.stderr
    assert json.loads(mended.stdout)["state"] == {"a": {"$datetime": "2024-05-01T00:00:00Z"}, "b": 1}
    again = cli("run", "f.flow", cwd=tmp_path)
    assert again.status == 0 and lines(again.stdout) == [{"a": "2024-05-01T00:00:00Z", "b": 2}], again.stderr


def test_state_shows_a_secret_name_as_the_store_keeps_it(tmp_path: Path) -> None:
    """A secret assigned to state is kept as its name ({"$secret": "TOK"}, never its value); `state`
    showed it as {"$object": {"$secret": "TOK"}} (read and tagged again), the form of an object of the
    data shaped like a tag. It is shown as stored, and the value is nowhere in the output."""
    from conftest import cli

    # (a secret itself cannot be put into state since: test_a_secret_cannot_be_kept_in_state)
    write(tmp_path, "f.flow", 'let state.d = {"$secret": "X"}\n')
    ran = cli("run", "f.flow", cwd=tmp_path, env={"TOK": "canary-value-42"})
    assert ran.status == 0, ran.stderr
    shown = cli("state", "f.flow", cwd=tmp_path)
    assert shown.status == 0 and "canary-value-42" not in shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["state"] == {"d": {"$object": {"$secret": "X"}}}


def test_a_secret_cannot_be_kept_in_state(tmp_path: Path) -> None:
    """The store keeps a secret only by its name, so a secret put into state came back to the next run as
    the object {"$secret": "TOK"} (logged as such) where the flow expected the secret. Assigning one to
    state (or a value holding one) is refused at its line, and the state stays as it was."""
    (tmp_path / "s.flow").write_text('flow "s"\nlet state.n = 1\nlet state.t = "x{secret.TOK}"\n')
    (tmp_path / "t.flow").write_text('flow "t"\nlet state = {a: [secret.TOK]}\n')
    canary = "tok-'\"\\-é中-" + "k" * 60
    for name, where in (("s.flow", "s.flow:3:5"), ("t.flow", "t.flow:2:5")):
        ran = cli("run", name, cwd=tmp_path, env={"TOK": canary})
        assert ran.returncode == 1, ran.stderr
        assert f"{where}" in ran.stderr and "state cannot keep a secret" in ran.stderr, ran.stderr
        assert canary not in ran.stderr + ran.stdout
    shown = cli("state", "s.flow", cwd=tmp_path)
    assert json.loads(shown.stdout)["state"] == {}, shown.stdout  # the run failed: nothing committed


def test_edit_and_state_paths_through_a_list_item_that_is_no_object_say_so(tmp_path: Path) -> None:
    """`flowlang edit f.flow 1 --set lines.0.qty=2` where lines.0 is a number said 'internal error:
    TypeError: 'int' object does not support item assignment' (and so --unset, and state --set): a list's
    item was walked into as an object unchecked. It says what the item is, as for a field."""
    (tmp_path / "f.flow").write_text('for each r in [{lines: [5, {qty: 1}]}]\n  fail "x"\nend\n')
    assert cli("run", "f.flow", cwd=tmp_path).status == 3
    said = "cannot {} 'lines.0.qty': lines.0 is a number (5), not an object; set lines.0 itself to replace it"
    for args, verb in ((["--set", "lines.0.qty=2"], "set"), (["--unset", "lines.0.qty"], "unset")):
        edit = cli("edit", "f.flow", "1", *args, cwd=tmp_path)
        assert edit.status == 2 and said.format(verb) in edit.stderr, edit.stderr
    assert cli("edit", "f.flow", "1", "--set", "lines.1.qty=2", cwd=tmp_path).status == 0
    assert cli("state", "f.flow", "--set", "l=[1]", cwd=tmp_path).status == 0
    state = cli("state", "f.flow", "--set", "l.0.x=1", cwd=tmp_path)
    assert state.status == 2 and "cannot set 'l.0.x': l.0 is a number (1), not an object" in state.stderr


def test_reading_a_store_never_makes_one(tmp_path: Path) -> None:
    """`jobs`, `errors`, `state` and `ledger` of a flow never run made .flowlang/flowlang.db (and its 256 KiB
    reserve) to say 'no jobs yet'. They say the same now, and the folder stays as it was."""
    write(tmp_path, "f.flow", "emit 1\n")
    for command, said in ((("jobs",), "f: no jobs yet\n"), (("errors",), "f: no open errors\n"),
                          (("errors", "--all", "--json"), ""), (("jobs", "--json"), ""),
                          (("state",), '{"state":{},"last_success_at":null}\n'),
                          (("ledger",), "f: the ledger is empty\n"), (("retry", "--id", "1"), "")):
        proc = cli(command[0], "f.flow", *command[1:], cwd=tmp_path)
        assert proc.stdout == said, (command, proc)
        assert "Traceback" not in proc.stderr
        assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["f.flow"], command
    assert cli("state", "f.flow", "--set", "a=1", cwd=tmp_path).returncode == 0  # a change makes it
    assert (tmp_path / ".flowlang" / "flowlang.db").is_file()
    assert '"a":1' in cli("state", "f.flow", cwd=tmp_path).stdout


def test_a_blank_key_is_no_key_and_loses_no_record(tmp_path: Path) -> None:
    """A key that is an empty text (a CSV's empty email cell, an `id` of "") was taken as a key, shared by
    every such record: `send r to out key r.email once` skipped the second as already sent (1 of 2 written,
    'skipped 1'), and `for each r in rows key r.email` (or the default key, an `id` of "") kept one open
    error for two failed records, the first's replaced by the second's. A blank key is no key, as null is:
    the once send fails each such record, saying its key is empty; each failure is kept."""
    (tmp_path / "once.flow").write_text('use out = file(path: "out.jsonl", mode: "append")\n'
                                        'for each r in [{email: "", n: 1}, {email: " ", n: 2}, {email: "a", n: 3}]\n'
                                        '  send r to out key r.email once\nend\n')
    sent = cli("run", "once.flow", "--log-format", "text", cwd=tmp_path)
    assert sent.status == 3 and "its key (key r.email) is empty for this record" in sent.stderr, sent.stderr
    assert [json.loads(x)["n"] for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [3]
    (tmp_path / "keyed.flow").write_text('for each r in [{email: "", n: 1}, {email: "", n: 2}] key r.email\n'
                                         '  fail "bad {r.n}"\nend\n'
                                         'for each r in [{id: "", n: 3}, {id: "  ", n: 4}, {id: "  ", n: 5}]\n'
                                         '  fail "bad {r.n}"\nend\n')
    assert cli("run", "keyed.flow", cwd=tmp_path).status == 3
    errors = [json.loads(x) for x in cli("errors", "keyed.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    assert sorted(e["message"] for e in errors) == [f"bad {n}" for n in range(1, 6)]


def test_jobs_shows_a_run_killed_outright_as_crashed_before_the_next_run(tmp_path: Path) -> None:
    """A run killed with SIGKILL stays `running` in the store until the next run of the flow marks it
    crashed; `flowlang jobs` showed it as running meanwhile, the first thing one looks at after a night's
    kill. A job whose process is gone reads `crashed` (`recorded: "running"` in --json); the store is left
    as it is, and the next run records it so."""
    write(tmp_path, "f.flow", 'use api = http(base_url: env.API)\nfor each n in [1, 2, 3]\n'
                              '  lookup api.get("/x", query: {n: n}) as x\n  emit x\nend\n')
    pid: list[int] = []

    def killing(req: Request) -> tuple[int, dict[str, str], Any]:
        if req.query.get("n") == "2" and pid:
            os.kill(pid[0], signal.SIGKILL)
            time.sleep(0.2)
        return 200, {}, {"n": req.query.get("n")}

    with FakeApi() as api:
        api.route("GET", "/x", killing)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
        env["API"] = api.url
        proc = subprocess.Popen([sys.executable, "-m", "flowlang", "run", "f.flow"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pid.append(proc.pid)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        shown = cli("jobs", "f.flow", cwd=tmp_path)
        assert shown.stdout.splitlines()[1].split()[4] == "crashed", shown.stdout
        [job] = lines(cli("jobs", "f.flow", "--json", cwd=tmp_path).stdout)
        assert (job["status"], job["recorded"]) == ("crashed", "running")
        store = flowlang.load(tmp_path / "f.flow").store()
        try:
            assert store.db.execute("select status from jobs").fetchall() == [("running",)]  # reading changed nothing
        finally:
            store.close()
