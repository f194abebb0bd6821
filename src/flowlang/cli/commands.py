"""The CLI commands: run, check, fmt, errors, retry, connectors (repl is the REPL's own)."""

from __future__ import annotations

import argparse
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang.api import Flow, compile, load
from flowlang.cli.after_run import after_run
from flowlang.cli.console import Terminal
from flowlang.cli.options import parse_params, read_input, read_secrets
from flowlang.cli.progress import estimate, progress_display
from flowlang.cli.signals import run_async_command
from flowlang.cli.summary import show
from flowlang.environment import Environment
from flowlang.errors import FlowError, ScriptError, UsageError
from flowlang.flow_file import MAX_FLOW_BYTES, not_utf8, read_at_most, read_flow_text
from flowlang.project import Project, load_project
from flowlang.runner import text_params
from flowlang.runtime.limits import Limits, StopFlag
from flowlang.status import ExitStatus, exit_status, resumed_failed_text
from flowlang.telemetry.otel import from_environment as otel_from_environment

if TYPE_CHECKING:
    from flowlang.testing.recorder import Recorder


def show_run_error(terminal: Terminal, error: FlowError, debug: bool) -> None:
    terminal.error(error.render())
    if debug:
        terminal.message("".join(traceback.format_exception(error)))


def _secrets(args: argparse.Namespace, terminal: Terminal) -> dict[str, str]:
    secrets = read_secrets(getattr(args, "secrets", None))
    for value in secrets.values():
        terminal.masker.add(value)
    return secrets


def project_for(args: argparse.Namespace, flow: Flow) -> Project:
    """--config FILE, else the flowlang.toml nearest the flow (secret providers, alerts)."""
    return load_project(getattr(args, "config", None), flow.base_dir)


def load_flow(file: str, terminal: Terminal, resume: bool = False) -> Flow:
    """The flow FILE names; `-` reads it from stdin (it runs as if in the working folder; without a
    `flow "Name"` line it may not use what is kept under its name, cli/stdin_flow.py). Log lines
    carry the flow's name from here on, the mistakes found in it before it runs too (OPERATIONS.md 10)."""
    from flowlang.cli.stdin_flow import refuse_unnamed_kept
    from flowlang.cli.store_commands import declared_name, logged_name

    if file == "-":
        text = terminal.read_stdin()
        # its `flow "Name"`, as its jobs and errors are kept under it, also on the lines of a flow that does not check
        terminal.context = {"flow": declared_name(text) or "<stdin>", "job_id": None}
        flow = compile(text, name="<stdin>", bindings=())
        refuse_unnamed_kept(flow.module, resume)
        return flow
    terminal.context = {"flow": logged_name(Path(file)), "job_id": None}
    return load(file, bindings=())


def stdin_store(args: argparse.Namespace) -> None:
    """A flow from stdin keeps its jobs, state and failed records in the working folder's store (as a
    flow file there would), not in memory: `flowlang errors -` and `retry -` find them."""
    from flowlang.runtime.state_folder import state_dir_in

    if args.file == "-" and not args.state_dir:
        args.state_dir = str(state_dir_in(Path.cwd()))


def cmd_run(args: argparse.Namespace, terminal: Terminal) -> int:
    terminal.json_lines = args.json_logs  # every stderr line of a run, from its first, is then one JSON object
    if args.file == "-" and args.input == "-":
        raise UsageError("the flow and --input cannot both come from stdin (-)")
    stdin_store(args)
    flow = load_flow(args.file, terminal, resume=getattr(args, "resume", False))
    project = project_for(args, flow)
    params = parse_params(args.param, text_params(flow.checked.params))
    payload = read_input(args.input, terminal.stdin)
    secrets = _secrets(args, terminal)
    if args.limit is not None and args.limit < 0:
        terminal.error("error: --limit must be 0 or more")
        return int(ExitStatus.INVALID)
    limits = Limits(max_seconds=args.max_seconds, max_record_seconds=args.max_record_seconds,
                    max_call_depth=args.max_call_depth, max_error_bytes=args.max_error_bytes or None)
    stop = StopFlag()
    recorder = None
    if args.record is not None and not args.record.strip():
        raise UsageError("--record needs the folder to write the cassette into (--record tests/orders)")
    if args.record and args.dry_run:
        from flowlang.testing.recorder import dry_record_refused

        raise UsageError(dry_record_refused("--record", "--dry-run"))
    if args.record:
        from flowlang.testing.recorder import Recorder

        recorder = Recorder(Path(args.record), flow.name, params, payload, args.limit, terminal.masker.mask)
    telemetry = otel_from_environment()
    live = not args.quiet and terminal.rich
    if live:
        show_estimate(terminal, flow, args.state_dir)
    terminal.context = {"flow": flow.name, "job_id": None}
    terminal.on_closed = lambda: stop.request("stdout closed")
    terminal.on_unwritable = lambda reason: stop.request(reason, failure=True)
    with progress_display(terminal, flow.name, live) as progress:
        result = run_async_command(flow.run_async(
            params, None, payload, dry_run=args.dry_run, limit=args.limit, state_dir=args.state_dir,
            secrets=secrets, limits=limits, on_output=terminal.record, collect=False, masker=terminal.masker,
            stop=stop, secret_providers=project.secret_providers, tape=recorder,
            observer=telemetry.observer() if telemetry else None,
            watch=progress.watch if progress is not None else None, resume=getattr(args, "resume", False)),
            stop, terminal)
    if telemetry is not None:
        telemetry.shutdown()
    terminal.context = {"flow": flow.name, "job_id": result.job_id}
    unsaved = False
    if recorder is not None and result.error is not None and not recorder.exchanged():
        # failed before its first exchange (a secret or an environment variable unset at a use): a replay,
        # which needs no secrets, would run on past that point and fail; an old cassette is worth more
        from flowlang.testing.cassette import FILE_NAME

        old = Path(args.record) / FILE_NAME
        terminal.error(f"error: nothing recorded: the run failed before its first exchange, so a replay of it "
                       f"could not pass; {old if old.exists() else 'no cassette'} was left as it was")
        unsaved = True
    elif recorder is not None:
        try:
            saved = recorder.save(finished=result.status in ("ok", "partial"))
        except FlowError as e:  # the run itself ended as it says below; only its cassette is missing
            terminal.error(f"error: {e.message}; the run itself ended ({result.status}, job {result.job_id}): "
                           "record again once the cassette can be written")
            unsaved = True
        else:
            said_recorded(terminal, recorder, saved, args.file, args.record)
    if terminal.closed:  # stdout went away: the run ended like an interrupted one, quietly (OPERATIONS.md 9)
        return int(ExitStatus.CLOSED_STDOUT)
    if result.error is not None:
        show_run_error(terminal, result.error, args.debug)
    if result.errors and not args.dry_run:
        terminal.message(f"{len(result.errors)} record{'s' if len(result.errors) != 1 else ''} failed; "
                         f"see: flowlang errors {args.file}", "yellow")
    elif result.resumed_failed:
        terminal.message(f"{resumed_failed_text(result.resumed_failed, result.resumed_from)}; see: flowlang errors "
                         f"{args.file}", "yellow")
    if result.resumable:
        terminal.message(f"continue from where it stopped with: flowlang run {args.file} --resume", "yellow")
    if not args.quiet:
        show(terminal, flow.name, result, args.json_logs)
    after_run(args, terminal, flow, project, result, secrets)
    status = exit_status(result)
    return int(ExitStatus.FAILED if unsaved and status == ExitStatus.OK else status)


def said_recorded(terminal: Terminal, recorder: Recorder, saved: Path, file: str, folder: str) -> None:
    if recorder.kept is not None:  # a run that did not finish: the cassette that was there stays
        terminal.message(kept_message(recorder, saved), "yellow")
    elif recorder.cut_short():  # a replay runs on to the end of what the cassette holds
        terminal.message(f"recorded {len(recorder.cassette.entries)} entries into {saved}, but the run was "
                         "stopped before its end, so a replay of it cannot pass: record a whole run (--limit N "
                         "records a smaller one)", "yellow")
    else:
        terminal.message(f"recorded {len(recorder.cassette.entries)} entries into {saved}; replay with: "
                         f"flowlang test {file} --cassette {folder}")
    if recorder.kept is None and recorder.ended("failed"):
        terminal.message(f"the run recorded into {saved} failed: its replay passes when the flow fails the same "
                         "way (record again once the run passes)", "yellow")


def kept_message(recorder: Recorder, saved: Path) -> str:
    assert recorder.kept is not None
    how = "failed" if recorder.ended("failed") else "was stopped before its end"
    return (f"the run {how}, so {recorder.kept} was left as it was (a recording of a run that did not finish "
            f"replaces no cassette: its replay would pass by failing the same way); this run's "
            f"{len(recorder.cassette.entries)} entries are in {saved} (move it to {recorder.kept.name} to "
            "replay it)")


def show_estimate(terminal: Terminal, flow: Flow, state_dir: str | None) -> None:
    """Before a run the last one suggests will take over a minute: how long, at least, and why."""
    store = flow.store(state_dir)
    try:
        text = estimate(store, flow.key)
    finally:
        store.close()
    if text is not None:
        terminal.message(text, "cyan")


def cmd_check(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.check_command import cmd_check as check

    return check(args, terminal)


def cmd_retry(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.store_commands import opened

    terminal.json_lines = args.json_logs  # every stderr line of a retry, from its first, is then one JSON object
    stdin_store(args)
    flow = load_flow(args.file, terminal)
    project = project_for(args, flow)
    params = parse_params(args.param, text_params(flow.checked.params))
    secrets = _secrets(args, terminal)
    ids = list(args.id)
    if ids:  # an id that is no open error stops the retry; one resolved meanwhile is skipped, saying so
        with opened(args, key=flow.key) as (store, key):
            found_ids = [(error_id, *store.get_error(key, error_id)) for error_id in ids]
        for error_id, found, resolved in found_ids:
            if found is None and not resolved:
                terminal.error(f"error: no open error {error_id}")
                return int(ExitStatus.INVALID)
        for error_id, found, _ in found_ids:
            if found is None:
                terminal.message(f"error {error_id} is already resolved: nothing to retry for it", "yellow")
        ids = [error_id for error_id, found, _ in found_ids if found is not None]
        if not ids:
            return int(ExitStatus.OK)
    stop = StopFlag()
    telemetry = otel_from_environment()
    terminal.context = {"flow": flow.name, "job_id": None}
    terminal.on_closed = lambda: stop.request("stdout closed")
    terminal.on_unwritable = lambda reason: stop.request(reason, failure=True)
    with progress_display(terminal, f"{flow.name} (retry)", not getattr(args, "quiet", False)) as progress:
        result = run_async_command(flow.retry_async(
            ids or None, state_dir=args.state_dir, params=params, secrets=secrets, on_output=terminal.record,
            collect=False, stop=stop, dry_run=args.dry_run, masker=terminal.masker,
            secret_providers=project.secret_providers,
            observer=telemetry.observer() if telemetry else None,
            watch=progress.watch if progress is not None else None), stop, terminal)
    if telemetry is not None:
        telemetry.shutdown()
    terminal.context = {"flow": flow.name, "job_id": result.job_id}
    if terminal.closed:
        return int(ExitStatus.CLOSED_STDOUT)
    after_run(args, terminal, flow, project, result, secrets)
    if result.error is not None:
        show_run_error(terminal, result.error, args.debug)
        return int(exit_status(result))
    still = len(result.errors)
    cannot = len(result.unreplayable)
    verb = "would resolve" if args.dry_run else "resolved"
    text = f"{flow.name}: retry (job {result.job_id}) {verb} {len(result.resolved)}, still failing {still}"
    if result.needs_edit:
        still += len(result.needs_edit)
        text += (f", to edit first {len(result.needs_edit)} (their records failed as they were read, or hold a "
                 "secret's text stored as ***: see the error lines above; left open)")
    if cannot:
        text += f", cannot be replayed {cannot} (left open: see the error lines above)"
    # the summary's level is the job's status (OPERATIONS.md 10): failed (an error it cannot replay) is error
    terminal.message(text, "bold red" if cannot else "yellow" if still else "bold")
    if cannot:
        return int(ExitStatus.FAILED)
    return int(ExitStatus.PARTIAL if still else ExitStatus.OK)


def cmd_fmt(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.options import flow_paths
    from flowlang.environment import display_name
    from flowlang.file_replace import replace_text
    from flowlang.syntax.format import format_text

    paths = flow_paths(args.files)
    if "-" in paths:  # stdin to stdout, like ruff format -
        if len(paths) > 1:
            raise UsageError("fmt - (stdin to stdout) takes no other files")
        text = terminal.read_stdin()
        formatted = format_text(text, "<stdin>")
        if args.check:
            return int(ExitStatus.FAILED if formatted != text else ExitStatus.OK)
        terminal.stdout.write(formatted)
        terminal.stdout.flush()
        return int(ExitStatus.OK)
    changed = broken = unwritten = 0
    for name in paths:  # a file that cannot be read or parsed is reported, and the others are formatted
        path = Path(name)
        if path.exists() and not path.is_file():  # a device, a FIFO: `flowlang fmt /dev/null` made it a file
            terminal.error(f"error: {name} is not a regular file: fmt rewrites .flow files only (it was left as "
                           "it was)" if not path.is_dir() else f"error: {name} is a folder: give the .flow files in it")
            broken += 1
            continue
        try:
            raw = read_at_most(path, MAX_FLOW_BYTES + 1)  # at most what a flow may hold (/dev/zero: refused)
            text = read_flow_text(path)  # as run reads it (any line ending is a newline)
        except UsageError as e:  # longer than a flow may be
            terminal.error(f"error: {e}")
            broken += 1
            continue
        except OSError as e:
            terminal.error(f"error: cannot read {name}: {e.strerror or e}")
            broken += 1
            continue
        except UnicodeDecodeError as e:
            terminal.error(f"error: {not_utf8(name, e)}")
            broken += 1
            continue
        newline = "\r\n" if b"\r\n" in raw else "\n"  # the file's own line endings are kept
        try:
            formatted = format_text(text, display_name(path))
        except ScriptError as e:
            terminal.message(e.render())
            broken += 1
            continue
        if formatted == text:
            continue
        changed += 1
        if args.check:
            terminal.message(f"would reformat {name}")
        else:
            try:  # whole or not at all: a full disk cut the flow short where the write stopped
                replace_text(path, formatted, newline)
            except OSError as e:
                terminal.error(f"error: cannot write {name}: {e.strerror or e} (the file was left as it was)")
                unwritten += 1
                continue
            terminal.message(f"reformatted {name}")
    unchanged = len(paths) - changed - broken
    verb = "would be reformatted" if args.check else "reformatted"
    terminal.message(f"{changed - unwritten} {verb}, {unchanged} already formatted"
                     + (f", {broken} not formatted (see the errors above)" if broken else "")
                     + (f", {unwritten} could not be written (left as they were)" if unwritten else ""))
    if broken:
        return int(ExitStatus.INVALID)
    return int(ExitStatus.FAILED if unwritten or (args.check and changed) else ExitStatus.OK)


def cmd_connectors(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.connectors_view import show_connector, show_connectors

    registry = Environment().connectors_for(Path(args.dir))
    if args.name:
        return show_connector(registry, args.name, terminal)
    return show_connectors(registry, terminal)


def cmd_connectors_import(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.connectors_tools import cmd_import

    return cmd_import(args, terminal)


def cmd_connectors_verify(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.connectors_tools import cmd_verify

    return cmd_verify(args, terminal)


def cmd_test(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.testing_view import run_tests

    return run_tests(args, terminal)


def cmd_plan(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.plan_view import show_plan
    from flowlang.testing.plan import Planner

    terminal.json_lines = args.json_logs  # every stderr line of a plan, from its first, is then one JSON object
    flow = load_flow(args.file, terminal)
    project = project_for(args, flow)
    params = parse_params(args.param, text_params(flow.checked.params))
    payload = read_input(args.input)
    secrets = _secrets(args, terminal)
    if args.limit is not None and args.limit < 0:
        terminal.error("error: --limit must be 0 or more")
        return int(ExitStatus.INVALID)
    planner = Planner(keep_all=args.json)
    stop = StopFlag()
    terminal.context = {"flow": flow.name, "job_id": None}
    terminal.on_closed = lambda: stop.request("stdout closed")
    result = run_async_command(flow.run_async(
        params, None, payload, dry_run=True, limit=args.limit, state_dir=args.state_dir, secrets=secrets,
        collect=False, masker=terminal.masker, stop=stop, secret_providers=project.secret_providers,
        tape=planner, kind="plan"), stop, terminal)
    terminal.context = {"flow": flow.name, "job_id": result.job_id}
    if result.error is not None:
        show_run_error(terminal, result.error, args.debug)
    show_plan(terminal, flow.name, planner, result, args.json)
    return int(exit_status(result))


def cmd_ledger(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.ledger_view import show_ledger

    return show_ledger(args, terminal)


def _flow_key(file: str) -> str:
    """The flow's key in its store; a flow with mistakes still has its errors listed (under its stem)."""
    from flowlang.cli.store_commands import flow_key

    return flow_key(file)
