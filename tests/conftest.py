"""Shared fixtures: the project root and a helper to run the installed CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    return ROOT


def copy_example(name: str, tmp_path: Path) -> Path:
    """A copy of examples/NAME without its outputs or state, to run in a test."""
    import shutil

    target = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, target, ignore=shutil.ignore_patterns("out", ".flowlang"))
    return target


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m flowlang ARGS` in a real subprocess (stdout and stderr kept apart)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "120"})
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "flowlang", *args], cwd=cwd, env=full_env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)
