"""Shared fixtures and the two ways to run the CLI in a test:

- `cli(*args, cwd=, env=, stdin=)` runs `flowlang ARGS` in this process and returns
  CliResult(status, stdout, stderr). Use it for every CLI test that does not need a real process.
- `run_cli(...)`: the same in a real `python -m flowlang` subprocess, for what only a process shows
  (signals, the run lock across processes, real exit codes, `python -m`, pipes).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import NamedTuple

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


class CliResult(NamedTuple):
    """What `flowlang ARGS` did: its exit status and everything it wrote to stdout and stderr."""

    status: int
    stdout: str
    stderr: str

    @property
    def returncode(self) -> int:  # the name subprocess.CompletedProcess uses
        return self.status


@contextmanager
def _as_if_started(cwd: Path | None, env: dict[str, str] | None) -> Iterator[None]:
    """cwd, a clean environment (no FLOWLANG_*, plus env) and flowlang's loggers, restored afterwards."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    logger = logging.getLogger("flowlang")
    saved_log = (logger.handlers[:], logger.level, logger.propagate)
    try:
        for name in [k for k in os.environ if k.startswith("FLOWLANG_")]:
            del os.environ[name]
        os.environ.update({"NO_COLOR": "1", "COLUMNS": "120", **(env or {})})
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        logger.handlers[:], logger.level, logger.propagate = saved_log


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        stdin: str | None = None) -> CliResult:
    """`flowlang ARGS` in this process: much faster than run_cli, and what a new CLI test should use.

    The command gets a Terminal on in-memory stdin (`stdin`, else empty: not a terminal, like a pipe),
    stdout and stderr, as if started in `cwd` with the environment of run_cli. Anything that writes
    to sys.stdout / sys.stderr directly lands in the same captured text, so a leak cannot hide.
    Use run_cli only when the test needs a real process: signals, the run lock across processes,
    `python -m flowlang`, a pipe closed under the writer.

        result = cli("run", "f.flow", "--param", "n=1", cwd=tmp_path)
        assert result.status == 0 and result.stdout == "1\\n"
    """
    from flowlang.cli.console import Terminal
    from flowlang.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    terminal = Terminal(stdout=out, stderr=err, stdin=io.StringIO(stdin or ""))
    with _as_if_started(cwd, env), redirect_stdout(out), redirect_stderr(err):
        status = main(list(args), terminal)
    return CliResult(int(status), out.getvalue(), err.getvalue())
