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
