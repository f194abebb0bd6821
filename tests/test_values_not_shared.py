"""A path assignment (`let a.b = x`) changes only the variable it names (runtime/sharing.py): a list or
object held elsewhere too (another variable, a batch waiting to be written, another iteration of a
`parallel` loop, the list a loop reads, a function's caller, the host's input) is copied first. Before,
`let rec = template` then `let rec.id = i` changed `template` and every record already handed over:
a batch wrote the last record three times and lost the others, and a parallel loop sent ids of other
iterations. Counted at the receiving side (SQLite, a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import flowlang
from conftest import cli
from fakeapi import FakeApi


def lines(text: str) -> list[Any]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_a_batch_keeps_each_record_as_it_was_sent(tmp_path: Path) -> None:
    """The batch held the template itself three times: three rows of id 3 (1 and 2 lost)."""
    (tmp_path / "f.flow").write_text(
        'use db = sql(url: "sqlite:///out.db")\n'
        'call db.execute("create table t (id integer, status text)")\n'
        'let template = {status: "new"}\n'
        'for each i in [1, 2, 3]\n'
        '  let rec = template\n'
        '  let rec.id = i\n'
        '  send rec to db.insert(table: "t") batch 10\n'
        'end\n'
        'emit template\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    with sqlite3.connect(tmp_path / "out.db") as db:
        assert db.execute("select id, status from t order by rowid").fetchall() == [(1, "new"), (2, "new"), (3, "new")]
    assert lines(proc.stdout) == [{"status": "new"}]  # the template is as it was made


def test_parallel_iterations_do_not_change_each_others_records(tmp_path: Path) -> None:
    """Ten iterations at `parallel 4` shared the template through `let rec = template`: after the lookup's
    wait, each sent the id another iteration had set (0, 1, 2, 5 and 6 never arrived; 4 came four
    times). Each iteration now changes its own copy: every id once."""
    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: env.BASE)\n'
        'let template = {status: "new"}\n'
        'for each i in range(10) parallel 4\n'
        '  let rec = template\n'
        '  let rec.id = i\n'
        "  lookup api.get('/c/{n}', n: i) as c\n"
        '  send rec to api.post("/orders")\n'
        'end\n')
    with FakeApi({"c": [{"id": i} for i in range(10)]}) as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"BASE": api.url})
        assert proc.status == 0, proc.stderr
        sent = sorted(r.body["id"] for r in api.requests if r.method == "POST")
    assert sent == list(range(10))


def test_a_variable_the_loop_list_and_a_caller_keep_their_values(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text(
        'function stamped(o)\n'
        '  let o.stamped = true\n'
        '  return o\n'
        'end\n'
        'let a = {x: 1, inner: {y: 1}}\n'
        'let b = a\n'
        'let b.x = 2\n'
        'let b.inner.y = 2\n'
        'emit {a: a, b: b}\n'
        'let orders = [{n: 1}, {n: 2}]\n'
        'for each o in orders\n'
        '  let o.n = o.n * 10\n'
        '  emit o\n'
        'end\n'
        'emit orders\n'
        'emit {stamped: stamped(a), a: a}\n'
        'let j = job\n'
        'let j.flow = "other"\n'
        'emit job.flow\n'
        'let counts = {}\n'
        'for each w in ["a", "b", "a", "c", "a"]\n'
        '  let counts[w] = (counts[w] ?? 0) + 1\n'
        'end\n'
        'emit counts\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    assert lines(proc.stdout) == [
        {"a": {"x": 1, "inner": {"y": 1}}, "b": {"x": 2, "inner": {"y": 2}}},
        {"n": 10}, {"n": 20},
        {"n": 1}, {"n": 2},  # the list the loop read is as it was (a list of objects emits each)
        {"stamped": {"x": 1, "inner": {"y": 1}, "stamped": True}, "a": {"x": 1, "inner": {"y": 1}}},
        "f",
        {"a": 3, "b": 1, "c": 1},  # an object only its variable holds is changed in place, as before
    ]


def test_an_embedders_input_is_not_changed() -> None:
    payload = [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}]
    flow = flowlang.compile('for each o in input\n  let o.seen = true\n  emit o\nend\n'
                            'let first = input[0]\nlet first.id = 9\nemit first\n', name="f.flow")
    result = flow.run(input=payload)
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "tags": ["a"], "seen": True}, {"id": 2, "tags": [], "seen": True},
                              {"id": 9, "tags": ["a"]}]
    assert payload == [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}]


def test_a_variable_keeps_the_state_it_read(tmp_path: Path) -> None:
    """`let state = {...}` emptied and refilled the state object in place, so `let before = state` read
    the new state (a flow comparing the cursor before and after saw them equal); and so did a path
    assignment into state. The state committed is the last one either way."""
    (tmp_path / "f.flow").write_text(
        'let before = state\n'
        'let state = {cursor: 5}\n'
        'emit before\n'
        'let mid = state\n'
        'let state.cursor = 6\n'
        'emit [mid.cursor, state.cursor]\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    assert lines(proc.stdout) == [{}, [5, 6]]
    again = cli("run", "f.flow", cwd=tmp_path)
    assert lines(again.stdout) == [{"cursor": 6}, [5, 6]]  # committed: the state at the end


def test_a_list_built_item_by_item_costs_each_item_once_and_keeps_values(tmp_path: Path) -> None:
    """`let xs = xs + [i]` copied all the items before each new one: 100,000 items took 29 s (200,000
    about two minutes). A list only its variable holds now grows in place; one held elsewhere (another
    variable, the start of the iteration another variable saw, an output collected by the embedder, a
    caller, the list itself) is left as it was."""
    (tmp_path / "f.flow").write_text(
        'let xs = []\n'
        'for each i in range(200000)\n'
        '  let xs = xs + [i]\n'
        'end\n'
        'let kept = xs\n'
        'let xs = xs + [-1]\n'
        'function more(zs)\n'
        '  let zs = zs + [0]\n'
        '  return len(zs)\n'
        'end\n'
        'let ys = [0]\n'
        'for each i in range(2)\n'
        '  let b = ys\n'
        '  let ys = ys + [i]\n'
        '  let ys = ys + [ys]\n'
        '  emit b\n'
        'end\n'
        'emit {n: len(xs), last: xs[-1], kept: len(kept), more: more(kept), after: len(kept), ys: ys}\n')
    proc = cli("run", "f.flow", "--max-seconds", "30", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    assert lines(proc.stdout) == [[0], [0, 0, [0, 0]], {"n": 200001, "last": -1, "kept": 200000, "more": 200001,
                                                         "after": 200000, "ys": [0, 0, [0, 0], 1, [0, 0, [0, 0], 1]]}]
    flow = flowlang.compile('let ys = []\nfor each i in range(3)\n  let ys = ys + [i]\n  emit ys\nend\n')
    assert flow.run().outputs == [[0], [0, 1], [0, 1, 2]]  # each output as it was emitted


def test_a_failed_record_keeps_a_grown_list_as_its_iteration_started(tmp_path: Path) -> None:
    """The record that fails after growing a list in place is kept with the list as it was when its
    iteration started, so a retry replays it from there ("no 3" again, not "no 4")."""
    (tmp_path / "f.flow").write_text(
        'let xs = []\n'
        'for each i in range(4)\n'
        '  let xs = xs + [i]\n'
        '  if i == 2\n'
        '    fail "no {len(xs)}"\n'
        '  end\n'
        'end\n'
        'emit xs\n')
    ran = cli("run", "f.flow", cwd=tmp_path)
    assert ran.status == 3 and "no 3" in ran.stderr and lines(ran.stdout) == [[0, 1, 2, 3]]
    replayed = cli("retry", "f.flow", "--dry-run", cwd=tmp_path)
    assert "record failed at f.flow:5:5: no 3" in replayed.stderr, replayed.stderr


def test_a_variable_made_in_the_iteration_keeps_its_value_when_a_path_changes(tmp_path: Path) -> None:
    """In an outermost loop that assigns `xs`, a path assignment took one more holder of its value for
    the start of the iteration, without looking which value that start holds: after `let xs = [1]` and
    `let b = xs` (a new list, held by b and not by the start), `let xs[0] = 2` changed b too."""
    (tmp_path / "f.flow").write_text(
        'let xs = [0]\n'
        'let counts = {}\n'
        'for each i in range(2)\n'
        '  let xs = [1]\n'
        '  let b = xs\n'
        '  let xs[0] = 2\n'
        '  let counts["n"] = (counts["n"] ?? 0) + 1\n'
        '  emit {b: b, xs: xs}\n'
        'end\n'
        'emit counts\n')
    proc = cli("run", "f.flow", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    assert lines(proc.stdout) == [{"b": [1], "xs": [2]}, {"b": [1], "xs": [2]}, {"n": 2}]


def test_a_failed_record_keeps_a_counter_object_as_its_iteration_started(tmp_path: Path) -> None:
    """An object (or list) of the enclosing scope that the iteration changes in place (`let c["n"] = ...`,
    `let c.byi.last = ...`, `let xs[0] = ...`) was saved with the failed record as changed, so a retry
    counted the failed record twice ('at 4' where the run said 'at 3'). It is saved as the iteration
    found it: each key it replaced given back, a key it added taken away, a nested object as it was."""
    (tmp_path / "f.flow").write_text(
        'let c = {byi: {last: -1}}\n'
        'let xs = [0, 0]\n'
        'for each i in range(4)\n'
        '  let c["n"] = (c["n"] ?? 0) + 1\n'
        '  let c.byi.last = i\n'
        '  let c["added_{i}"] = true\n'
        '  let xs[0] = xs[0] + 1\n'
        '  if i == 2\n'
        '    fail "at {c.n} last {c.byi.last} keys {len(keys(c))} xs {xs[0]}"\n'
        '  end\n'
        'end\n'
        'emit [c.n, c.byi, xs]\n')
    ran = cli("run", "f.flow", cwd=tmp_path)
    assert ran.status == 3, ran.stderr
    assert "at 3 last 2 keys 5 xs 3" in ran.stderr
    assert lines(ran.stdout) == [[4, {"last": 3}, [4, 0]]]  # the run itself counts as before
    replayed = cli("retry", "f.flow", "--dry-run", cwd=tmp_path)
    assert "record failed at f.flow:9:5: at 3 last 2 keys 5 xs 3" in replayed.stderr, replayed.stderr


def test_a_retry_replays_a_record_against_the_state_its_iteration_started_with(tmp_path: Path) -> None:
    """A loop that skips what an earlier run did (`if it.id <= (state.max ?? 0) skip`) and moves the
    mark on: record 2 failed, record 3 moved state.max to 3, and `flowlang retry` replayed record 2
    against that newer state, so it was skipped and its error resolved ('retry resolved 1, still failing
    0') without the record ever written: lost, said to be retried. The error keeps the state as its
    iteration started (a change the iteration made before it failed given back, as for a variable),
    and the retry replays it against that; the state itself is not changed by a retry."""
    (tmp_path / "f.flow").write_text(
        'use out = file(path: "out.jsonl", mode: "append")\n'
        'for each it in [{id: 1}, {id: 2}, {id: 3}]\n'
        '  if it.id <= (state.max ?? 0)\n'
        '    skip\n'
        '  end\n'
        '  let state.max = it.id\n'
        '  let state.seen.last = it.id\n'
        '  if it.id == 2 and env.BAD == "yes"\n'
        '    fail "bad {it.id} at {state.max}"\n'
        '  end\n'
        '  send it to out\n'
        'end\n')
    ran = cli("run", "f.flow", cwd=tmp_path, env={"BAD": "yes"})
    assert ran.status == 3, ran.stderr
    assert lines((tmp_path / "out.jsonl").read_text()) == [{"id": 1}, {"id": 3}]
    again = cli("retry", "f.flow", "--log-format", "text", cwd=tmp_path, env={"BAD": "yes"})
    assert again.status == 3 and "bad 2 at 2" in again.stderr, again.stderr  # replayed from max 1, not skipped
    retried = cli("retry", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert retried.status == 0 and "resolved 1, still failing 0" in retried.stderr, retried.stderr
    assert lines((tmp_path / "out.jsonl").read_text()) == [{"id": 1}, {"id": 3}, {"id": 2}]
    state = cli("state", "f.flow", cwd=tmp_path)
    assert json.loads(state.stdout)["state"] == {"max": 3, "seen": {"last": 3}}
