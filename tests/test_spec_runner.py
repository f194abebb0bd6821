"""The spec runner itself: FLOWLANG_SPEC focuses it on some files, and a failing case shows its parsed tree."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import test_spec as spec_runner
from conftest import ROOT
from spec_cases import SpecCase, all_cases, focused


def test_focus_on_one_file_or_several() -> None:
    cases = all_cases()
    loops = focused(cases, "loops.flow")
    assert loops and {c.file for c in loops} == {"loops.flow"}
    assert focused(cases, "loops") == loops
    assert {c.file for c in focused(cases, "loops, null.flow")} == {"loops.flow", "null.flow"}
    assert focused(cases, "") == cases
    with pytest.raises(ValueError, match=r"names no spec file: nope\.flow"):
        focused(cases, "nope")


def test_the_environment_variable_selects_the_cases() -> None:
    env = {**os.environ, "FLOWLANG_SPEC": "null.flow"}
    collected = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
                                "--collect-only", "tests/test_spec.py"], cwd=ROOT, env=env, capture_output=True,
                               text=True)
    ids = [line for line in collected.stdout.splitlines() if "::test_spec" in line]
    assert ids and all("null.flow:" in line for line in ids), collected.stdout[-2000:]


def test_a_failing_case_shows_its_parsed_tree(caplog: pytest.LogCaptureFixture) -> None:
    case = SpecCase("made.flow", "wrong expectation", 1, "let total = 1 + 2\nemit total\n", outputs=[4])
    with pytest.raises(AssertionError) as failed:
        spec_runner.test_spec(case, caplog)
    message = str(failed.value)
    assert "expected [4]" in message
    assert "parsed tree of made.flow:1:wrong expectation" in message
    assert "Let@1:1(" in message and "Binary@1:13(op=+" in message and "Emit@2:1(" in message
