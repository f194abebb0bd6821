"""`flowlang ledger FILE [--key K] [--forget K | --all | --sent K] [--to DEST] [--json]`: what `send ... once` and
`send ... if changed` recorded as sent, forgetting keys so that they are sent again, and recording a send
cut off in flight that did arrive as sent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlang.cli.console import Terminal
from flowlang.cli.store_commands import reading_store
from flowlang.diagnostics import did_you_mean
from flowlang.errors import UsageError
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.ledger import Destination, LedgerEntry, destination_text
from flowlang.runtime.state_folder import state_dir_for
from flowlang.status import ExitStatus

if TYPE_CHECKING:
    from flowlang.runtime.store import Store

SHOWN = 120


def show_ledger(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.cli.commands import _flow_key

    if sum((args.forget is not None, args.all, args.sent is not None)) > 1:
        raise UsageError("give one of --forget KEY, --all and --sent KEY")
    if args.key is not None and (args.forget is not None or args.all or args.sent is not None):
        change = ("--all" if args.all else f"--forget {args.forget}" if args.forget is not None
                  else f"--sent {args.sent}")
        raise UsageError(f"--key only narrows the listing; {change} names the key{'s' if args.all else ''} it "
                         f"changes itself: give {change} without --key")
    if args.file != "-" and not Path(args.file).is_file():  # `-`: the flow on stdin, as errors and jobs take it
        raise UsageError(f"no such flow file: {args.file}")
    if args.to is not None:
        destination(args.to)  # refused before anything is opened
    if args.forget is not None or args.all:
        return forget(args, terminal)
    if args.sent is not None:
        return mark_sent(args, terminal)
    flow = _flow_key(args.file)
    terminal.context = {"flow": flow, "job_id": None}
    store = reading_store(state_dir_for(Path(args.file).resolve(), args.state_dir))
    try:
        entries = store.ledger.entries(flow, args.key, destination(args.to))
        unknown = no_such_destination(store, flow, args.to) if not entries else ""
    finally:
        store.close()
    if args.json:
        for e in entries:
            terminal.json_out(dumps(entry_json(e)))
        return int(ExitStatus.OK)
    if not entries:
        terminal.out(f"{flow}: the ledger is empty" + (f" for key {args.key}" if args.key else "")
                     + (f" at {args.to}" if args.to is not None else "") + unknown)
        return int(ExitStatus.OK)
    pending = sum(1 for e in entries if e.status == "pending")
    terminal.out(f"{flow}: {len(entries)} ledger entr{'ies' if len(entries) != 1 else 'y'}"
                 + (f", {pending} pending (maybe sent: check, then --sent KEY if it arrived, else --forget KEY)"
                    if pending else ""))
    for e in entries:
        answer = dumps(e.answer) if e.damaged is None else f"damaged in the store ({e.damaged})"
        if len(answer) > SHOWN:
            answer = answer[:SHOWN - 3] + "..."
        terminal.out(f"{e.key}  {destination_text(e.connection, e.operation)}  {e.status} in job {e.job_id} "
                     f"at {e.sent_at}  hash {e.hash[:12]}  answer {answer}")
    return int(ExitStatus.OK)


def no_such_destination(store: Store, flow: str, to: str | None) -> str:
    """What a --to that names no destination of the flow's ledger (a typo: 'sink.create_item') adds to the
    message that nothing was found there, else nothing."""
    named = destination(to)
    if named is None or store.ledger.has_destination(flow, named):
        return ""
    known = store.ledger.destinations(flow)
    if not known:
        return ""
    hint = did_you_mean(to or "", known)
    return (f"; the ledger has no destination {to}" + (f" ({hint})" if hint else "") +
            f": its destinations are {', '.join(known[:10])}" + (", ..." if len(known) > 10 else ""))


def destination(text: str | None) -> Destination | None:
    """--to DEST: a destination as the listing names it, `db.insert` or `api.post /orders`."""
    if text is None:
        return None
    connection, dot, operation = text.partition(".")
    if not dot or not connection or not operation.strip():
        raise UsageError(f"--to {text}: name a destination as flowlang ledger lists it, CONNECTION.OPERATION "
                         "(db.insert, 'api.post /orders')")
    return connection, operation


def entry_json(e: LedgerEntry) -> dict[str, Any]:
    """One ledger entry as `--json` prints it (the listing, and what --forget / --all forgot)."""
    return {"connection": e.connection, "operation": e.operation, "key": e.key, "status": e.status,
            "hash": e.hash, "answer": e.answer, "job_id": e.job_id, "sent_at": e.sent_at,
            **({"damaged": e.damaged} if e.damaged is not None else {})}


def forget(args: argparse.Namespace, terminal: Terminal) -> int:
    """--forget K / --all: under the flow's lock (a run's `once` sends read and write these entries), and
    a job of kind `ledger` of its own, as the other changes made by hand are (OPERATIONS.md 5). With
    --json, one object on stdout: the flow, the key (null for --all), the job and the entries forgotten."""
    from flowlang.cli.store_commands import made_job, opened

    job = None
    with opened(args, lock=True, terminal=terminal) as (store, flow):
        key = None if args.all else args.forget
        to = destination(args.to)
        gone = store.ledger.entries(flow, key, to)
        count = store.ledger.forget(flow, key, to)
        what = ("every key" if args.all else f"key {args.forget}") + (f" at {args.to}" if to is not None else "")
        unknown = no_such_destination(store, flow, args.to) if not count else ""
        if count:
            entries = f"{count} entr{'ies' if count != 1 else 'y'}"
            job = made_job(terminal, store.admin_job(flow, "ledger", f"forgot {what} ({entries})"))
    if args.json:
        terminal.json_out(dumps({"flow": flow, "key": key, "to": args.to, "forgotten": count, "job_id": job,
                            "entries": [entry_json(e) for e in gone]}))
    if not count and args.all:  # 'no ledger entry for every key' said it the wrong way round
        terminal.message(f"{flow}: the ledger holds no entry{' at ' + args.to if to is not None else ''}: "
                         f"nothing to forget{unknown}")
    elif not count:
        terminal.message(f"{flow}: no ledger entry for {what}{unknown}")
    else:
        terminal.message(f"{flow}: forgot {what} ({count} entr{'ies' if count != 1 else 'y'}); the next run sends "
                         f"{'them' if count != 1 else 'it'} again")
    return int(ExitStatus.OK)


def mark_sent(args: argparse.Namespace, terminal: Terminal) -> int:
    """--sent K: the pending entries of a key (a send cut off in flight, which someone found at the
    destination) become sent, under the flow's lock and as a job of kind `ledger`; a retry then skips the
    send and runs the rest of the record's iteration. A key with no pending entry is refused (exit 2).
    With --json, one object on stdout: the flow, the key, the job and how many entries became sent."""
    from flowlang.cli.store_commands import made_job, opened
    from flowlang.runtime.store import now_text

    job = None
    with opened(args, lock=True, terminal=terminal) as (store, flow):
        to = destination(args.to)
        count = sum(e.status == "pending" for e in store.ledger.entries(flow, args.sent, to))
        what = f"key {args.sent}" + (f" at {args.to}" if args.to is not None else "")
        if count:  # the job first, so that the entries say which job marked them (not 'sent in job None')
            entries = f"{count} entr{'ies' if count != 1 else 'y'}"
            job = made_job(terminal, store.admin_job(flow, "ledger", f"marked {what} as sent ({entries})"))
            count = store.ledger.mark_sent(flow, args.sent, job, now_text(), to)
        unknown = no_such_destination(store, flow, args.to) if not count else ""
    if not count:
        raise UsageError(f"{flow}: no pending ledger entry for {what}{unknown} (only a send cut off in flight is "
                         f"pending: see flowlang ledger {args.file} --key KEY)")
    if args.json:
        terminal.json_out(dumps({"flow": flow, "key": args.sent, "to": args.to, "marked_sent": count, "job_id": job}))
    terminal.message(f"{flow}: marked {what} as sent ({count} entr{'ies' if count != 1 else 'y'}); "
                     "flowlang retry finishes its record without sending it again")
    return int(ExitStatus.OK)
