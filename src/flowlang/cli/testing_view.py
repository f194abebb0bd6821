"""`flowlang test`: replay one flow against a cassette, or every test folder under a folder, and
show what differed (which request, which field, the old and the new value). The report is the
command's output, on stdout; stderr keeps to log lines (JSON lines when it is not a terminal)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowlang.cli.console import Terminal
from flowlang.cli.options import parse_params
from flowlang.cli.signals import run_async_command
from flowlang.cli.store_commands import logged_name
from flowlang.errors import ScriptError, UsageError
from flowlang.status import ExitStatus
from flowlang.testing.suite import ReplayCase, ReplayOutcome, discover, run_case_async


def text_params_of(flow: Path) -> set[str]:
    """The params of a flow file whose default is a text (--param gives them text); none when it cannot
    be read (its replay says why)."""
    from flowlang.api import load
    from flowlang.errors import FlowError
    from flowlang.runner import text_params

    try:
        return text_params(load(flow, bindings=()).checked.params)
    except (FlowError, OSError):
        return set()


def cases_of(args: argparse.Namespace) -> list[ReplayCase]:
    path = Path(args.path)
    if path.is_dir():
        if args.cassette:
            raise UsageError("--cassette goes with a flow file; a folder's tests name their cassettes in flow.toml")
        found = discover(path)
        if not found:
            raise UsageError(f"no test folders under {path} (a test folder holds a flow.toml naming its flow)")
        for case in found:
            if args.param:
                case.params.update(parse_params(args.param, text_params_of(case.flow)))
        return found
    if not path.is_file():
        raise UsageError(f"no such flow file or folder: {path}")
    if not args.cassette:
        raise UsageError(f"say which cassette to replay: flowlang test {path} --cassette DIR "
                         "(record one with flowlang run --record DIR)")
    params = parse_params(args.param, text_params_of(path)) if args.param else {}
    return [ReplayCase(path.name, path.parent, path.resolve(), Path(args.cassette), params)]


def show_outcome(terminal: Terminal, outcome: ReplayOutcome) -> None:
    if outcome.ok:
        terminal.out(f"PASS {outcome.name}")
        return
    terminal.out(f"{'UPDATED' if outcome.updated else 'FAIL'} {outcome.name}")
    for problem in outcome.problems:
        terminal.out("  " + problem.replace("\n", "\n  "))


def run_tests(args: argparse.Namespace, terminal: Terminal) -> int:
    terminal.json_lines = args.json_logs  # every stderr line is then one JSON object (OPERATIONS.md 10)
    given = Path(args.path)
    if given.name == "flow.toml" and given.is_file():  # a test folder's file: that folder ('say which cassette
        args.path = str(given.parent)                   # to replay: flowlang test t/flow.toml --cassette DIR')
    cases = cases_of(args)
    folders = Path(args.path).is_dir()
    failed = updated = 0
    for case in cases:
        if case.problem is not None:  # its flow.toml cannot be read: it fails alone
            failed += 1
            terminal.out(f"FAIL {case.name}")
            terminal.out("  " + case.problem.replace("\n", "\n  "))
            continue
        terminal.context = {"flow": logged_name(case.flow), "job_id": None}  # what its JSON log lines carry
        try:
            outcome = run_async_command(run_case_async(case, args.update))
        except (UsageError, ScriptError) as e:
            if not folders:
                raise
            # one test folder that cannot run (a param its flow lacks, a flow that does not check) fails
            # alone, named by its flow.toml; the other folders still run
            failed += 1
            said = e.render() if isinstance(e, ScriptError) else f"{case.folder / 'flow.toml'}: {e.message}"
            terminal.out(f"FAIL {case.name}")
            terminal.out("  " + said.replace("\n", "\n  "))
            continue
        show_outcome(terminal, outcome)
        if outcome.updated:
            updated += 1
        elif not outcome.ok:
            failed += 1
    total = len(cases)
    summary = f"{total - failed - updated} passed, {failed} failed"
    if updated:
        summary += f", {updated} updated (review the cassette diff)"
    terminal.out(summary)
    return int(ExitStatus.FAILED if failed else ExitStatus.OK)
