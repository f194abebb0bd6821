"""Records of one key in a `parallel` loop run one after another, in input order (OPERATIONS.md 2):
the lookup-then-create upsert creates each record once, and the later update of a record is never
overtaken by an earlier one. Records of different keys, and records without a key, still run at once.
Counted at the receiving side (a real server on 127.0.0.1)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, run_cli
from fakeapi import FakeApi, Request
from saas_mocks import GitHubMock

GH_ENV = {"GITHUB_TOKEN": "ghp_test"}  # the token GitHubMock takes


def lines(text: str) -> list[Any]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_a_parallel_lookup_then_create_creates_each_key_once(tmp_path: Path) -> None:
    """Under `parallel 4`, the three rows Alpha, Beta, Alpha ran at once: both Alphas looked up (the second
    waited for the first's lookup and got its null) and both created an issue. The second Alpha now
    starts when the first has ended, and finds the issue it made."""
    (tmp_path / "in.csv").write_text("title\nAlpha\nBeta\nAlpha\nAlpha\n")
    (tmp_path / "f.flow").write_text(
        'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second")\n'
        'use src = file(path: "in.csv")\n'
        'call src.read() as rows\n'
        'for each r in rows key r.title parallel 4\n'
        '  lookup gh.find_issue(q: "repo:octo/hello in:title {r.title}") as existing\n'
        '  if existing == null\n'
        '    send {title: r.title} to gh.create_issue(owner: "octo", repo: "hello") as made\n'
        '    emit ["created", r.title, made.number]\n'
        '  else\n'
        '    emit ["found", r.title, existing.number]\n'
        '  end\n'
        'end\n')
    with GitHubMock() as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert sorted(i["title"] for i in api.issues) == ["Alpha", "Beta"]  # one issue a title
    out = lines(proc.stdout)
    assert out[0][:2] == ["created", "Alpha"] and out[2:] == [["found", "Alpha", out[0][2]]] * 2


def ordering_server() -> tuple[FakeApi, list[tuple[str, int]], list[int]]:
    """PUT /customers/{id}: the first update of each customer answers after 0.3 s, the others at once;
    the server keeps the order updates arrive in, and the most updates in flight at once."""
    arrived: list[tuple[str, int]] = []
    in_flight = [0, 0]  # now, most
    seen: set[str] = set()
    lock = threading.Lock()

    def put(req: Request) -> tuple[int, dict[str, str], Any]:
        assert req.match is not None
        customer = req.match.group(1)
        with lock:
            first = customer not in seen
            seen.add(customer)
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.3 if first else 0.01)
        with lock:
            arrived.append((customer, req.body["version"]))
            in_flight[0] -= 1
        return 200, {}, {"id": customer, "version": req.body["version"]}

    api = FakeApi()
    api.route("PUT", r"/customers/(\w+)", put)
    return api, arrived, in_flight


def test_updates_of_one_record_arrive_in_input_order_under_parallel(tmp_path: Path) -> None:
    """Three versions of customer c1 and two of c2 in one input, `parallel 8`, keyed by the record's id:
    each customer's updates reach the server in input order (before, version 2 of c1 overtook the slow
    version 1, and version 1 was written last); different customers still ran at once."""
    events = [{"id": "c1", "version": 1}, {"id": "c2", "version": 1}, {"id": "c1", "version": 2},
              {"id": "c3", "version": 1}, {"id": "c1", "version": 3}, {"id": "c2", "version": 2}]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: env.BASE)\n'
        'use src = file(path: "events.jsonl")\n'
        'call src.read() as events\n'
        'for each e in events parallel 8\n'
        "  send {version: e.version} to api.put('/customers/{id}', id: e.id) as saved\n"
        '  emit [saved.id, saved.version]\n'
        'end\n')
    api, arrived, in_flight = ordering_server()
    with api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"BASE": api.url})
    assert proc.status == 0, proc.stderr
    for customer in ("c1", "c2"):
        versions = [v for c, v in arrived if c == customer]
        assert versions == sorted(versions), (customer, arrived)
    assert len(arrived) == 6  # each update once
    assert in_flight[1] >= 3  # c1, c2 and c3 were written at the same time
    assert lines(proc.stdout) == [[e["id"], e["version"]] for e in events]  # emitted in input order


@pytest.mark.parametrize("parallel", [" parallel 4", ""])
def test_a_failed_earlier_record_of_a_key_is_resolved_by_the_later_one(tmp_path: Path, parallel: str) -> None:
    """The first update of c1 fails (422), the second succeeds. A later success of a key resolved only the
    errors of runs before it, not one of its own run, so `flowlang retry` sent version 1 over version 2
    (and under `parallel` the second could end before the first failed). Now the failure comes first,
    the later success of the same key in the same run resolves it, and retry has nothing to send."""
    (tmp_path / "events.jsonl").write_text(
        '{"id": "c1", "version": 1, "bad": true}\n{"id": "c1", "version": 2}\n')
    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: env.BASE)\n'
        'use src = file(path: "events.jsonl")\n'
        'call src.read() as events\n'
        f'for each e in events{parallel}\n'
        "  send e to api.put('/customers/{id}', id: e.id)\n"
        'end\n')

    def put(req: Request) -> tuple[int, dict[str, str], Any]:
        if req.body.get("bad"):
            time.sleep(0.3)
            return 422, {}, {"error": "version 1 is refused"}
        return 200, {}, {"ok": True}

    api = FakeApi()
    api.route("PUT", r"/customers/(\w+)", put)
    with api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={"BASE": api.url})
        assert [r.body["version"] for r in api.requests] == [1, 2]
        assert proc.status == 3, proc.stderr  # a record failed
        assert 'error 1 (key \\"c1\\") resolved: the record went through' in proc.stderr
        shown = cli("errors", "f.flow", "--all", cwd=tmp_path)
        assert "a later success (job 1)" in shown.stdout, shown.stdout
        assert "1 open error" not in cli("errors", "f.flow", cwd=tmp_path).stdout
        retried = cli("retry", "f.flow", cwd=tmp_path, env={"BASE": api.url})
        assert retried.status == 0, retried.stderr
        assert [r.body["version"] for r in api.requests] == [1, 2]  # version 1 was not sent over version 2


def test_records_of_one_key_in_a_parallel_loop_filling_batches(tmp_path: Path) -> None:
    """`parallel 4` with `batch 3`: the second record of a key waits for the first, which waits for its
    batch; the loop sends what its buffers hold when every other iteration waits, so it never stalls.
    Every row once (counted in the table), each key's rows in input order."""
    events = [{"id": f"k{i % 3 if i < 12 else 0}", "v": i} for i in range(20)]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "f.flow").write_text(
        'use db = sql(url: "sqlite:///out.db")\n'
        'use src = file(path: "events.jsonl")\n'
        'call db.execute("create table if not exists t (seq integer primary key autoincrement, id text, v integer)")\n'
        'call src.read() as events\n'
        'for each e in events parallel 4\n'
        '  send e to db.insert(table: "t") batch 3\n'
        'end\n')
    proc = run_cli("run", "f.flow", cwd=tmp_path, timeout=60)  # a subprocess: a stalled loop fails the test
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(tmp_path / "out.db") as db:
        rows = db.execute("select id, v from t order by seq").fetchall()
    assert sorted(v for _, v in rows) == list(range(20))  # each once
    for key in ("k0", "k1", "k2"):
        versions = [v for k, v in rows if k == key]
        assert versions == sorted(versions), (key, rows)


def test_records_whose_keys_are_1_and_1_0_are_one_key_under_parallel(tmp_path: Path) -> None:
    """The ids 1, 1.0 and 1.00 are one key (flowlang finds them equal; runtime/keys.py): under `parallel 4`
    they ran at once (1 was told apart from the text "1.0"), each looked up, found nothing and created an
    issue. They run one after another now, and the first one's issue is found by the others."""
    (tmp_path / "in.jsonl").write_text('{"id": 1, "title": "Alpha"}\n{"id": 1.0, "title": "Alpha"}\n'
                                       '{"id": 1.00, "title": "Alpha"}\n{"id": 2, "title": "Beta"}\n')
    (tmp_path / "f.flow").write_text(
        'use gh = github(token: secret.GITHUB_TOKEN, base_url: env.GITHUB_BASE_URL, rate_limit: "50/second")\n'
        'use src = file(path: "in.jsonl")\n'
        'call src.read() as rows\n'
        'for each r in rows key r.id parallel 4\n'
        '  lookup gh.find_issue(q: "repo:octo/hello in:title {r.title}") as existing\n'
        '  if existing == null\n'
        '    send {title: r.title} to gh.create_issue(owner: "octo", repo: "hello")\n'
        '  end\n'
        'end\n')
    with GitHubMock() as api:
        proc = cli("run", "f.flow", cwd=tmp_path, env={**GH_ENV, "GITHUB_BASE_URL": api.url})
        assert proc.status == 0, proc.stderr
        assert sorted(i["title"] for i in api.issues) == ["Alpha", "Beta"]  # one issue a key
