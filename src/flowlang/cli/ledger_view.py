"""`flowlang ledger FILE [--key K] [--forget K | --all] [--json]`: what `send ... once` and
`send ... if changed` recorded as sent, and forgetting keys so that they are sent again."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowlang.cli.console import Terminal
from flowlang.errors import UsageError
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.state_folder import state_dir_for
from flowlang.runtime.store import Store
from flowlang.status import ExitStatus

SHOWN = 120


def show_ledger(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.commands import _flow_key

    if args.forget is not None and args.all:
        raise UsageError("give --forget KEY or --all, not both")
    if not Path(args.file).is_file():
        raise UsageError(f"no such flow file: {args.file}")
    if args.forget is not None or args.all:
        return forget(args, terminal)
    flow = _flow_key(args.file)
    store = Store(state_dir_for(Path(args.file).resolve(), args.state_dir))
    try:
        entries = store.ledger.entries(flow, args.key)
    finally:
        store.close()
    if args.json:
        for e in entries:
            terminal.out(dumps({"connection": e.connection, "operation": e.operation, "key": e.key,
                                "status": e.status, "hash": e.hash, "answer": e.answer, "job_id": e.job_id,
                                "sent_at": e.sent_at}))
        return int(ExitStatus.OK)
    if not entries:
        terminal.out(f"{flow}: the ledger is empty" + (f" for key {args.key}" if args.key else ""))
        return int(ExitStatus.OK)
    pending = sum(1 for e in entries if e.status == "pending")
    terminal.out(f"{flow}: {len(entries)} ledger entr{'ies' if len(entries) != 1 else 'y'}"
                 + (f", {pending} pending (maybe sent: check, then --forget KEY)" if pending else ""))
    for e in entries:
        answer = dumps(e.answer)
        if len(answer) > SHOWN:
            answer = answer[:SHOWN - 3] + "..."
        terminal.out(f"{e.key}  {e.connection}.{e.operation}  {e.status} in job {e.job_id} at {e.sent_at}  "
                     f"hash {e.hash[:12]}  answer {answer}")
    return int(ExitStatus.OK)


def forget(args: argparse.Namespace, terminal: Terminal) -> int:
    """--forget K / --all: under the flow's lock (a run's `once` sends read and write these entries), and
    a job of kind `ledger` of its own, as the other changes made by hand are (OPERATIONS.md 5)."""
    from flowlang.cli.store_commands import opened

    with opened(args, lock=True) as (store, flow):
        count = store.ledger.forget(flow, None if args.all else args.forget)
        what = "every key" if args.all else f"key {args.forget}"
        if count:
            store.admin_job(flow, "ledger", f"forgot {what} ({count} entr{'ies' if count != 1 else 'y'})")
    if not count:
        terminal.message(f"{flow}: no ledger entry for {what}")
    else:
        terminal.message(f"{flow}: forgot {what} ({count} entr{'ies' if count != 1 else 'y'}); the next run sends "
                         f"{'them' if count != 1 else 'it'} again")
    return int(ExitStatus.OK)
