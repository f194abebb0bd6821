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


# The suite's longest tests (5 s or more on a 2-core machine, from --durations), about longest first,
# tests that share a module's server (test_prism.py's two Prisms) side by side so that it starts once.
# They run before the rest: with `--dist worksteal` (pyproject) the two workers then end on short tests
# and finish together, instead of one running a long test found late (test_prism.py, test_quality.py)
# while the other waits. Only the order changes; a name missing here just runs in its place.
LONG_FIRST = (
    "test_serve_durability.py::test_1000_deliveries_50_at_a_time_while_the_flow_is_slow",
    "test_engine_differential.py::test_generated_code_and_closures_agree",
    "test_serve_durability.py::test_back_pressure_while_the_flow_burns_cpu",
    "test_sql.py::test_a_database_restarted_mid_run_loses_no_record_and_writes_none_twice",
    "test_quality.py::test_mypy_strict_is_clean",
    "test_fuzz_pipeline.py::test_pages_with_any_link_retry_after_and_next_give_an_allowed_end",
    "test_fuzz_pipeline.py::test_http_bodies_of_any_shape_give_an_allowed_end",
    "test_cpu_limits.py::test_max_record_seconds_stops_a_builtin_busy_with_a_big_list",
    "test_ledger.py::test_batched_once_under_kill_9_sends_no_duplicate",
    "test_sql.py::test_a_sqlite_file_another_process_holds_locked_is_waited_for",
    "test_serve_schedule.py::test_a_tick_while_the_previous_run_still_runs_is_skipped_and_logged",
    "test_remote_transfer.py::test_a_50_mb_file_goes_file_to_sftp_to_s3_with_flat_memory",
    "test_fuzz_pipeline.py::test_fmt_of_a_mutated_program_keeps_its_tree_or_refuses_it",
    "test_file_fast_paths.py::test_every_csv_row_is_written_as_the_cell_by_cell_rules_write_it",
    "test_crash_safety.py::test_kill_at_seeded_points_loses_nothing",
    "test_generated_programs.py::test_generated_programs_parse_and_format_round_trips",
    "test_memory_limits.py::test_records_after_the_memory_filled_fail_each_and_are_kept",
    "test_fuzz_pipeline.py::test_generated_programs_run_to_an_allowed_end",
    "test_progress.py::test_progress_says_the_wait_for_the_pace_a_429_set",
    "test_serve_failures.py::test_a_body_that_stalls_or_drips_gets_408_and_is_not_kept",
    "test_security.py::test_a_canary_secret_reaches_no_output",
    "test_prism.py::test_imported_github_connector_against_prism",
    "test_prism.py::test_github_stdlib_against_prism",
    "test_prism.py::test_imported_stripe_connector_against_prism",
    "test_prism.py::test_stripe_example_against_prism",
    "test_ledger.py::test_once_under_kill_9_sends_no_duplicate",
    "test_fuzz_pipeline.py::test_a_failure_message_of_any_text_is_kept",
    "test_cpu_limits.py::test_max_seconds_stops_comprehensions_and_recursion",
    "test_secret_providers.py::test_a_vault_token_http_cannot_carry_is_refused_unshown",
    "test_resume.py::test_a_limit_run_between_the_kill_and_the_resume_keeps_what_the_killed_run_wrote",
    "test_resume.py::test_a_webhook_job_between_the_kill_and_the_resume_keeps_what_the_killed_run_wrote",
    "test_record_replay.py::test_a_broken_mapping_fails_the_pytest_item_with_its_diff",
    "test_resume.py::test_a_file_destination_killed_after_a_checkpoint_loses_no_record",
    "test_masking_rules.py::test_a_400_kb_secret_is_learned_in_proportion_and_masked_in_every_form",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (pyproject): three workers for every two cores. The suite waits more than it computes
    (servers, subprocesses, kill points, back-off), so two workers on two cores used about one core:
    seven serve/resume/SaaS files took 105 s of wall and 105 s of CPU with two, 76 s with three (108 s
    of CPU). PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores * 3 // 2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FIRST)}

    def key(item: pytest.Item) -> int:
        name = item.nodeid.removeprefix("tests/").partition("[")[0]
        return rank.get(name, len(rank))

    items.sort(key=key)  # stable: the others keep their collection order


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
