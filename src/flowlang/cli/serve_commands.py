"""The CLI commands of flowlang serve: `serve DIR` (webhooks, schedules, console) and `inbox DIR`
(list deliveries, --failed, --show ID, --replay ID)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang.cli.argparser import seconds, store_number
from flowlang.errors import LockedError, StoreError, UsageError
from flowlang.status import ExitStatus

if TYPE_CHECKING:  # the rest is imported by the commands: building the parser stays cheap
    from flowlang.cli.console import Terminal
    from flowlang.serve.inbox import Inbox


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: Callable[[argparse.ArgumentParser], None]) -> None:
    serve = sub.add_parser("serve", help="receive webhooks and run schedules for a folder of flows, with a console")
    serve.add_argument("folder", metavar="DIR")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0 picks a free one)")
    serve.add_argument("--state-dir", help="jobs, state, errors and the inbox (default: DIR/.flowlang; also "
                       "FLOWLANG_STATE_DIR)")
    serve.add_argument("--secrets", metavar="FILE", help="a TOML file of secrets (NAME = \"value\")")
    serve.add_argument("--max-pending", type=int, default=10_000, metavar="N",
                       help="answer 503 with Retry-After while N deliveries wait (default 10000)")
    serve.add_argument("--body-timeout", type=float, metavar="SECONDS",
                       help="answer 408 to a request (a delivery, a console form) whose body has not arrived "
                       "within SECONDS, close a connection that sends no whole headers within SECONDS "
                       "(default 30)")
    serve.add_argument("--max-record-seconds", type=seconds, metavar="S",
                       help="in every run, a loop iteration that takes longer fails that record (as flowlang run's)")
    serve.add_argument("--config", metavar="FILE", help="the project file (default: the flowlang.toml nearest DIR)")
    serve.add_argument("--console-token-file", metavar="FILE",
                       help="a file holding the token the console's actions need (without it: read-only)")
    common(serve)

    inbox = sub.add_parser("inbox", help="list the webhook deliveries of a served folder; replay one")
    inbox.add_argument("folder", metavar="DIR")
    inbox.add_argument("--flow", help="only this flow (its file stem)")
    inbox.add_argument("--failed", action="store_true", help="only deliveries whose run failed")
    inbox.add_argument("--replay", type=store_number, metavar="ID", help="run this delivery again, now")
    inbox.add_argument("--show", type=store_number, metavar="ID",
                       help="one delivery whole: its headers (credentials masked as stored) and its body")
    inbox.add_argument("--state-dir")
    inbox.add_argument("--secrets", metavar="FILE", help="a TOML file of secrets (for --replay; --show masks them)")
    inbox.add_argument("--config", metavar="FILE", help="the project file (default: the flowlang.toml nearest DIR)")
    inbox.add_argument("--json", action="store_true", help="one JSON object per delivery on stdout")
    common(inbox)


def read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read --console-token-file {path}: {e}") from None
    if len(token) < 16:
        raise UsageError(f"the console token in {path} is shorter than 16 characters")
    return token


def cmd_serve(args: argparse.Namespace, terminal: Terminal) -> int:
    import asyncio

    from flowlang.cli.options import read_secrets
    from flowlang.project import load_project
    from flowlang.runtime.watchdog import stop_signals
    from flowlang.serve.server import BODY_TIMEOUT
    from flowlang.serve.service import ServeOptions, Service

    terminal.json_lines = args.json_logs  # its own lines (the SIGTERM one) are JSON as its logs are (OPERATIONS.md 10)
    secrets = read_secrets(args.secrets)
    token = read_token(args.console_token_file)
    for value in [*secrets.values(), *([token] if token else [])]:
        terminal.masker.add(value)
    project = load_project(getattr(args, "config", None), Path(args.folder).resolve())
    options = ServeOptions(Path(args.folder), args.host, args.port, Path(args.state_dir) if args.state_dir else None,
                           secrets, args.max_pending, token, secret_providers=project.secret_providers,
                           body_timeout=BODY_TIMEOUT if args.body_timeout is None else args.body_timeout,
                           max_record_seconds=args.max_record_seconds, project=project)
    service = Service(options)
    loop = asyncio.new_event_loop()
    try:
        for s in service.flows:
            for scheme in s.schemes:
                for value in scheme.secrets:
                    terminal.masker.add(value)
        signals = {"count": 0}

        def on_signal(name: str) -> None:
            signals["count"] += 1
            if signals["count"] == 1:
                service.request_stop()  # first: the stop never waits on (or fails with) writing its line
                terminal.message(f"{name}: stopping (running jobs finish; again to stop them too)", "yellow")
            else:
                service.runs.stop_runs(name)

        for sig in stop_signals():
            loop.add_signal_handler(sig, on_signal, sig.name)
        return loop.run_until_complete(service.run())
    finally:
        loop.close()


def cmd_inbox(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.environment import command_path
    from flowlang.runtime.jsoncodec import dumps
    from flowlang.serve.inbox import INBOX_DB, Inbox
    from flowlang.serve.service import state_folder

    folder = Path(args.folder)
    if folder.is_file():  # a flow's file: the inbox is its folder's, and --flow picks the flow
        raise UsageError(f"{folder} is a file: inbox takes the folder serve serves (flowlang inbox "
                         f"{command_path(folder.parent)} --flow {folder.stem})")
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    state = state_folder(folder, Path(args.state_dir) if args.state_dir else None)
    if not (state / INBOX_DB).is_file():  # reading makes none (it made .flowlang/inbox.db, 'no deliveries')
        raise UsageError(f"no inbox in {state}: no flowlang serve has served {folder} with this state folder "
                         "(serve makes it when it starts; give the --state-dir that serve was given)")
    inbox = Inbox(state)
    try:
        if args.replay is not None:
            return _replay(args, terminal, inbox)
        if args.show is not None:
            return _show(args, terminal, inbox)
        flow = args.flow[:-len(".flow")] if args.flow is not None and args.flow.endswith(".flow") else args.flow
        rows = inbox.listing(flow, args.failed, limit=1000)
        if flow is not None and not rows:
            _known_flow(folder, flow, inbox)
    finally:
        inbox.close()
    if args.json:
        for d in rows:
            terminal.json_out(dumps({"id": d.id, "flow": d.flow, "delivery_id": d.delivery_id,
                                     "received_at": d.received_at, "status": d.status, "job_id": d.job_id,
                                     "attempts": d.attempts, "message": d.message, "bytes": len(d.body)}))
        return int(ExitStatus.OK)
    if not rows:
        terminal.out("no deliveries" + (" whose run failed" if args.failed else ""))
        return int(ExitStatus.OK)
    for d in rows:
        job = f"job {d.job_id}" if d.job_id is not None else "no job yet"
        terminal.out(f"#{d.id}  {d.flow}  {d.status}  {d.received_at}  id {d.delivery_id or '-'}  {job}  "
                     f"{len(d.body):,} bytes")
        if d.message:
            terminal.out(f"    {d.message}")
    if any(d.status == "failed" for d in rows):
        terminal.out(f"run one again with: flowlang inbox {args.folder} --replay ID")
    return int(ExitStatus.OK)


def _show(args: argparse.Namespace, terminal: Terminal, inbox: Inbox) -> int:
    """`--show ID`: what a delivery brought, to see why its run failed before replaying it: its line as the
    listing shows it, its headers as stored (credentials and signatures masked at arrival) and its body as
    text in the charset its Content-Type declares; the --secrets given are masked in both."""
    from flowlang.cli.options import read_secrets
    from flowlang.runtime.charsets import charset_of
    from flowlang.runtime.jsoncodec import dumps

    d = inbox.get(args.show)
    if d is None:
        raise UsageError(f"no delivery {args.show} in the inbox")
    for value in read_secrets(args.secrets).values():
        terminal.masker.add(value)
    mask = terminal.masker.mask
    body = d.body.decode(charset_of(d.content_type) or "utf-8", errors="replace")
    headers = {name: mask(value) for name, value in d.headers.items()}
    if args.json:
        terminal.json_out(mask(dumps({"id": d.id, "flow": d.flow, "delivery_id": d.delivery_id,
                                      "received_at": d.received_at, "status": d.status, "job_id": d.job_id,
                                      "attempts": d.attempts, "message": d.message, "bytes": len(d.body),
                                      "content_type": d.content_type, "headers": headers, "body": body})))
        return int(ExitStatus.OK)
    job = f"job {d.job_id}" if d.job_id is not None else "no job yet"
    terminal.out(f"#{d.id}  {d.flow}  {d.status}  {d.received_at}  id {d.delivery_id or '-'}  {job}  "
                 f"{len(d.body):,} bytes")
    if d.message:
        terminal.out(f"    {mask(d.message)}")
    for name, value in headers.items():
        terminal.out(f"{name}: {value}")
    terminal.out("")
    terminal.out(mask(body))
    return int(ExitStatus.OK)


def _known_flow(folder: Path, flow: str, inbox: Inbox) -> None:
    """`--flow NAME` that names no flow of the folder (nor one the inbox has deliveries of) is a mistake,
    not an empty inbox: 'no deliveries' for a misspelt name hid the deliveries of the right one."""
    from flowlang.diagnostics import did_you_mean

    names = sorted({p.stem for p in folder.glob("*.flow")} | set(inbox.flow_names()))
    if flow in names:
        return
    hint = did_you_mean(flow, names)
    raise UsageError(f"no flow '{flow}' in {folder} (--flow takes a flow's file stem: "
                     f"{', '.join(names) if names else 'it has none'})" + (f"; {hint}" if hint else ""))


def serve_holds(folder: Path) -> bool:
    """Whether a flowlang serve serves this state folder now (it holds serve.lock). It asks without
    taking the lock (FlowLock.held), so a serve starting at that moment still starts."""
    from flowlang.serve.service import serve_lock_file

    try:
        return serve_lock_file(folder).held()
    except StoreError:
        return False


def _replay(args: argparse.Namespace, terminal: Terminal, inbox: object) -> int:
    from flowlang.cli.options import read_secrets
    from flowlang.cli.signals import run_async_command
    from flowlang.project import load_project
    from flowlang.serve.flows import load_folder
    from flowlang.serve.inbox import Inbox
    from flowlang.serve.runs import run_delivery
    from flowlang.serve.service import SERVE_LOCK_PATIENCE, replay_lock_file, state_folder

    assert isinstance(inbox, Inbox)
    d = inbox.get(args.replay)
    if d is None:
        raise UsageError(f"no delivery {args.replay} in the inbox")
    secrets = read_secrets(args.secrets)
    for value in secrets.values():
        terminal.masker.add(value)
    project = load_project(getattr(args, "config", None), Path(args.folder).resolve())
    flows = {f.route: f for f in load_folder(Path(args.folder), secrets, None, project.secret_providers, d.flow)}
    served = flows.get(d.flow)
    if served is None:
        raise UsageError(f"delivery {d.id} is for the flow '{d.flow}', which is no longer in {args.folder}")
    folder = state_folder(Path(args.folder), Path(args.state_dir) if args.state_dir else None)
    replaying = replay_lock_file(folder)
    # first: a serve that starts from here on waits for this replay's end (one starting holds it a moment)
    replaying.acquire(patience=SERVE_LOCK_PATIENCE, shared=True)
    try:
        if d.status in ("waiting", "running") and serve_holds(folder):  # it would run twice: by serve, and here
            raise UsageError(f"delivery {d.id} is {d.status} in the inbox of the flowlang serve that serves "
                             f"{folder}: serve runs it; replay it once it has run")
        inbox.mark(d.id, "running").result()
        try:
            result = run_async_command(run_delivery(served, d, inbox, folder, secrets,
                                                    providers=project.secret_providers, masker=terminal.masker))
        except LockedError:  # not run (a run of the flow goes on): as it was, not 'running' for serve to run
            inbox.mark(d.id, d.status if d.status in ("done", "failed") else "waiting", d.job_id, d.message).result()
            raise
    finally:
        replaying.release()
    terminal.message(f"{d.flow}: delivery {d.id} ran again as job {result.job_id}: {result.status}",
                     "bold" if result.ok else "yellow")
    if result.error is not None:
        terminal.message(result.error.render())
    from flowlang.status import exit_status

    return int(exit_status(result))
