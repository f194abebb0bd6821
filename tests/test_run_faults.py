"""Faults of the machine a run meets (issue 10): a clock behind the flow's last success, a full disk
under a file sink and under the store."""

from __future__ import annotations

import json
from pathlib import Path

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
