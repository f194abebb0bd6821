"""runtime/state_folder.py: where a flow's state folder is."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlang.runtime.state_folder import STATE_DIR_ENV, state_dir_for

FLOW = Path("/srv/flows/orders.flow")


def test_the_given_folder_wins() -> None:
    assert state_dir_for(FLOW, "/tmp/states", {STATE_DIR_ENV: "/var/lib/x"}) == Path("/tmp/states")
    assert state_dir_for(None, Path("rel"), {}) == Path("rel")


def test_then_the_environment() -> None:
    assert state_dir_for(FLOW, None, {STATE_DIR_ENV: "/var/lib/x"}) == Path("/var/lib/x")
    assert state_dir_for(FLOW, "", {STATE_DIR_ENV: "/var/lib/x"}) == Path("/var/lib/x")


def test_then_beside_the_flow_file() -> None:
    assert state_dir_for(FLOW, None, {}) == Path("/srv/flows/.flowlang")
    assert state_dir_for(FLOW, None, {STATE_DIR_ENV: ""}) == Path("/srv/flows/.flowlang")


def test_a_flow_given_as_text_keeps_its_state_in_memory() -> None:
    assert state_dir_for(None, None, {}) is None


def test_it_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, "/from/env")
    assert state_dir_for(FLOW) == Path("/from/env")
    monkeypatch.delenv(STATE_DIR_ENV)
    assert state_dir_for(FLOW) == Path("/srv/flows/.flowlang")


def test_a_folder_of_flows_follows_the_same_rule() -> None:
    from flowlang.runtime.state_folder import state_dir_in

    assert state_dir_in(Path("/srv/flows"), None, {}) == Path("/srv/flows/.flowlang")
    assert state_dir_in(Path("/srv/flows"), None, {STATE_DIR_ENV: "/var/lib/x"}) == Path("/var/lib/x")
    assert state_dir_in(Path("/srv/flows"), "/given", {STATE_DIR_ENV: "/var/lib/x"}) == Path("/given")
