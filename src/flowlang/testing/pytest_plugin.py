"""The pytest plugin (entry point `pytest11`): each test folder's `flow.toml` is collected as a test
item that replays its flow against its cassette, and the `flowlang_replay` fixture replays a flow
from Python for custom assertions:

    def test_invoices(flowlang_replay):
        outcome = flowlang_replay("sync.flow", cassette="tests/all_paid")
        assert outcome.ok, outcome.problems
        assert all(w["record"]["amount"] > 0 for w in outcome.writes["api.post"])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowlang.errors import ScriptError, UsageError
from flowlang.testing.suite import CASE_FILE, ReplayCase, ReplayOutcome, readable_case, replay, run_case


class ReplayFailed(Exception):
    """A replay differed from its cassette."""

    def __init__(self, outcome: ReplayOutcome) -> None:
        super().__init__(outcome.name)
        self.outcome = outcome


class UnreadableCase(Exception):
    """A flow.toml that cannot be read (not TOML, an unknown key, no flow): its item fails with the reason,
    as `flowlang test DIR` fails that folder alone, instead of a collection error that stops the session."""


class FlowTestFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        case = readable_case(self.path)
        yield FlowTestItem.from_parent(self, name=case.name, case=case)


class FlowTestItem(pytest.Item):
    def __init__(self, *, case: ReplayCase, **kw: Any) -> None:
        super().__init__(**kw)
        self.case = case

    def runtest(self) -> None:
        if self.case.problem is not None:
            raise UnreadableCase(self.case.problem)
        outcome = run_case(self.case)
        if not outcome.ok:
            raise ReplayFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ReplayFailed):
            return f"the replay of {self.case.flow.name} differs from {self.case.cassette}:\n" + "\n".join(
                excinfo.value.outcome.problems)
        if isinstance(excinfo.value, UnreadableCase):  # the message names the flow.toml (and its line)
            return str(excinfo.value)
        if isinstance(excinfo.value, ScriptError):  # the flow does not check: its file:line:col, no traceback
            return excinfo.value.render()
        if isinstance(excinfo.value, UsageError):  # a param its flow lacks, a missing flow or cassette
            return f"{self.path}: {excinfo.value.message}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"flowlang test {self.case.name}"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == CASE_FILE:
        return FlowTestFile.from_parent(parent, path=file_path)
    return None


@pytest.fixture
def flowlang_replay(request: pytest.FixtureRequest) -> Callable[..., ReplayOutcome]:
    """replay(flow_path, cassette=DIR, params=None) -> ReplayOutcome; paths relative to the test file."""
    from flowlang.api import load

    here = Path(str(request.path)).parent

    def run(flow: str | Path, cassette: str | Path, params: dict[str, Any] | None = None) -> ReplayOutcome:
        return replay(load(here / flow, bindings=()), here / cassette, params)
    return run
