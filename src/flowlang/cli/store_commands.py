"""The commands that look after a flow's store (OPERATIONS.md 5): errors, resolve, edit, jobs, state.

Each change they make is recorded as a job of its own (kind resolve, edit or state)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowlang.cli.argparser import error_id, store_number
from flowlang.cli.console import Terminal
from flowlang.diagnostics import printable
from flowlang.errors import ScriptError, StoreError, UsageError
from flowlang.flow_file import MAX_FLOW_BYTES, read_at_most
from flowlang.runtime.error_groups import ErrorGroup
from flowlang.runtime.jsoncodec import JsonDataError, dumps, dumps_stored, from_stored, loads, to_stored
from flowlang.runtime.keys import trace_keys
from flowlang.runtime.lock import FlowLock
from flowlang.runtime.store import STATE_DB, Store, StoredError
from flowlang.runtime.values import format_datetime
from flowlang.status import ExitStatus


def flow_key(file: str) -> str:
    """The flow's key in its store (its `flow "Name"`, else the file's stem), even if the flow has errors now."""
    from flowlang.api import compile, load

    if file == "-":  # the flow on stdin, kept in the working folder's store as `flowlang run -` keeps it
        text = sys.stdin.read()
        try:
            return compile(text, name="<stdin>", bindings=()).key
        except ScriptError:
            return declared_name(text) or "<stdin>"
    if not Path(file).is_file():
        raise UsageError(f"no such flow file: {file}")
    try:
        return load(file, bindings=()).key
    except ScriptError:  # its `flow "Name"` line, as its log lines name it
        return logged_name(Path(file))


NAME_LINE = re.compile(r'^[ \t]*flow[ \t]+"')


def declared_name(text: str) -> str | None:
    """The `flow "Name"` of a flow that does not parse or check now (an edit broke it): its name line
    alone, parsed."""
    from flowlang.ast import FlowDecl
    from flowlang.source import Source
    from flowlang.syntax import parse

    line = next((line for line in text.splitlines() if NAME_LINE.match(line)), None)
    if line is None:
        return None
    try:
        module = parse(Source("<name line>", line + "\n"))
    except ScriptError:
        return None
    return next((s.name for s in module.statements if isinstance(s, FlowDecl)), None)


def logged_name(file: Path) -> str:
    """The flow a file's log lines carry before it is loaded, also when it does not check (OPERATIONS.md 10):
    its `flow "Name"`, as its jobs and errors are kept under it, else its stem."""
    try:
        # as much as a flow may hold: /dev/zero is said where it is loaded
        named = declared_name(read_at_most(file, MAX_FLOW_BYTES + 1).decode("utf-8", errors="replace"))
    except OSError:  # a missing file: said where it is loaded
        named = None
    return named or file.stem


def state_folder(file: str, state_dir: str | None) -> Path:
    from flowlang.runtime.state_folder import state_dir_in

    return state_dir_in(Path(file).resolve().parent, state_dir)


def reading_store(folder: Path | None) -> Store:
    """The store of a state folder, to read: an empty one in memory where the folder has none yet, so
    that reading never makes one (`flowlang jobs` of a flow never run made .flowlang/flowlang.db)."""
    if folder is None or not (folder / STATE_DB).is_file():
        return Store(None)
    try:
        return Store(folder)
    except StoreError:
        if os.access(folder, os.W_OK):  # the folder's own problem (a damaged file, a full disk): said as it is
            raise
        # a folder this user cannot write (a read-only mount, another user's store): 'unable to open
        # database file' before, so its errors and jobs could not be looked at
        return Store(folder, read_only=True)


@contextmanager
def opened(args: argparse.Namespace, lock: bool = False, key: str | None = None,
           terminal: Terminal | None = None) -> Iterator[tuple[Store, str]]:
    """The flow's store (and, for changes, the flow's lock: not while a run is going on; without the lock
    it only reads, and makes no store, reading_store); `key` when the
    flow is loaded already (a flow from stdin cannot be read twice). With `terminal`, its JSON log lines
    carry the flow from here on (OPERATIONS.md 10), and the job once the command made one (made_job)."""
    key = key if key is not None else flow_key(args.file)
    if terminal is not None:
        terminal.context = {"flow": key, "job_id": None}
    folder = state_folder(args.file, getattr(args, "state_dir", None))
    store = reading_store(folder) if not lock else Store(folder)
    held = FlowLock(folder, key) if lock else None
    try:
        if held is not None:
            held.acquire()
        yield store, key
    finally:
        if held is not None:
            held.release()
        store.close()


def made_job(terminal: Terminal, job: int) -> int:
    """The job a command that changes the store made: its JSON log lines carry it from here on."""
    terminal.context["job_id"] = job
    return job


def parse_value(raw: str, given: str) -> Any:
    """PATH=JSON values: JSON, else the text as a string, as `--param` reads them (options.json_or_text):
    `NaN`, `Infinity` and `-Infinity` are no JSON numbers (nor flowlang ones: numbers are finite
    decimals), so they are text. JSON in the store's tagged form (`{"$datetime": "..."}`) must hold what
    it tags."""
    from flowlang.cli.options import json_or_text

    parsed = json_or_text(raw, given)
    try:
        return from_stored(parsed)
    except JsonDataError as e:
        raise UsageError(f"cannot set {printable(raw)[:80]!r}: {e}") from None


def key_text(raw: str) -> list[str]:
    """--key K as the stored JSON texts of a key: K read as JSON (10, "A"; 1.0 in its canonical text, 1,
    and as an earlier version wrote it, runtime/keys.py) and K as a string."""
    texts = [dumps_stored(raw)]
    try:
        canonical, old = trace_keys(loads(raw), lambda text: text)
    except JsonDataError:
        return texts
    return [canonical, *([old] if old is not None else []), *texts]


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# ---- errors -----------------------------------------------------------------------------------
def error_json(e: StoredError) -> dict[str, Any]:
    return {"id": e.id, "key": e.key_value, "location": e.location, "loop": e.loop_id or e.loop,
            "message": e.message, "kind": e.kind, "status": e.status, "record": e.record, "job_id": e.job_id,
            "last_job_id": e.last_job_id, "created_at": e.created_at, "attempts": e.attempts,
            "resolved_at": e.resolved_at, "resolved_by": e.resolved_by, "resolved_reason": e.resolved_reason,
            "note": e.note, "history": e.history or [],
            **({"damaged": e.damaged} if e.damaged is not None else {})}


def cmd_errors(args: argparse.Namespace, terminal: Terminal) -> int:
    """List errors a page at a time from the store (memory stays flat), never their saved scopes."""
    if (args.limit is not None and args.limit < 0) or args.offset < 0:
        raise UsageError("--limit and --offset must be 0 or more")
    with opened(args, terminal=terminal) as (store, key):
        keys = key_text(args.key) if args.key is not None else None
        if args.json and args.group:  # one object per group: its first message, shape, count, where, first ids
            for group in paged(store.error_groups(key, include_resolved=args.all, key=keys), args):
                terminal.json_out(dumps({"message": group.message, "pattern": group.shape, "count": group.count,
                                    "location": group.location, "first_ids": group.ids[:5]}))
            return int(ExitStatus.OK)
        listed = store.iter_errors(key, include_resolved=args.all, key=keys, limit=args.limit, offset=args.offset)
        if args.json:
            for e in listed:
                terminal.json_out(dumps(error_json(e)))
            return int(ExitStatus.OK)
        total = store.count_errors(key, include_resolved=args.all, key=keys)
        what = "errors" if args.all else "open errors"
        if not total:
            terminal.out(f"{key}: no {what}" + (f" with key {args.key}" if args.key is not None else ""))
            return int(ExitStatus.OK)
        if args.group:
            groups = store.error_groups(key, include_resolved=args.all, key=keys)
            show_groups(terminal, key, total, len(groups), paged(groups, args), args)
        else:
            shown = page_note(total, args, "")
            terminal.out(f"{key}: {plural(total, 'open error' if not args.all else 'error')}{shown}")
            for e in listed:
                show_error(terminal, e)
        if store.count_errors(key, key=keys):
            terminal.out(f"retry them with: flowlang retry {args.file}")
    return int(ExitStatus.OK)


def page_note(count: int, args: argparse.Namespace, what: str) -> str:
    """' (showing 3-4)' for the page --offset and --limit give of `count` items, '' without them."""
    if args.limit is None and not args.offset:
        return ""
    last = min(count, args.offset + args.limit) if args.limit is not None else count
    return f" (showing {what}{args.offset + 1}-{last})" if last > args.offset else " (none on this page)"


def paged(groups: list[ErrorGroup], args: argparse.Namespace) -> list[ErrorGroup]:
    """With --group, --offset and --limit count groups (as they count errors without it)."""
    return groups[args.offset:None if args.limit is None else args.offset + args.limit]


def show_error(terminal: Terminal, e: StoredError) -> None:
    attempts = plural(e.attempts, "attempt")
    key = f"  key {dumps(e.key_value)}" if e.key is not None else ""
    terminal.out(f"#{e.id}  {e.location}{key}  (job {e.job_id}, {e.created_at}, {attempts})")
    terminal.out(f"    {printable(e.message)}")
    if e.damaged is not None:
        terminal.out(f"    damaged: {e.damaged}")
    record = dumps(e.record)
    terminal.out(f"    record: {record if len(record) <= 200 else record[:197] + '...'}")
    if e.note:
        terminal.out(f"    note: {e.note}")
    last = e.history[-1] if isinstance(e.history, list) and e.history else None
    if isinstance(last, dict):  # the records `flowlang edit` replaced, oldest first
        before = dumps(last.get("record"))
        terminal.out(f"    edited {plural(len(e.history or []), 'time')}, last in job {last.get('job_id')}; the "
                     f"record before it: {before if len(before) <= 200 else before[:197] + '...'} (errors --json "
                     "has each)")
    if e.resolved_at is not None:
        reason = f": {e.resolved_reason}" if e.resolved_reason else ""
        terminal.out(f"    resolved by job {e.resolved_by} at {e.resolved_at}{reason}")


def show_groups(terminal: Terminal, key: str, total: int, count: int, groups: list[ErrorGroup],
                args: argparse.Namespace) -> None:
    """Each group of the page: its count and first message; when its messages differ, what they have
    in common."""
    terminal.out(f"{key}: {plural(total, 'error')} in {plural(count, 'group')}{page_note(count, args, 'groups ')}")
    for group in groups:
        shown = ", ".join(f"#{i}" for i in group.ids[:5]) + (", ..." if group.count > 5 else "")
        terminal.out(f"{group.count:>6}  {printable(group.message)}")
        if group.varied:
            terminal.out(f"        all like: {printable(group.shape)}")
        terminal.out(f"        at {group.location}; {shown}")


# ---- resolve and edit -------------------------------------------------------------------------
def cmd_resolve(args: argparse.Namespace, terminal: Terminal) -> int:
    if args.match is not None and not args.all:
        raise UsageError("--match goes with --all (flowlang resolve FILE --all --match TEXT)")
    if not args.ids and not args.all:
        raise UsageError("name the errors to resolve (flowlang resolve FILE ID...) or give --all")
    if args.ids and args.all:
        raise UsageError("give error ids or --all, not both")
    with opened(args, lock=True, terminal=terminal) as (store, key):
        errors = store.errors(key, ids=args.ids or None, match=args.match)
        missing = sorted(set(args.ids) - {e.id for e in errors})
        # resolving is idempotent (LANGUAGE.md 5): one resolved already is said and left as it is
        done = {e.id: e for e in store.iter_errors(key, include_resolved=True, ids=missing)} if missing else {}
        missing = [i for i in missing if i not in done]
        if missing:
            raise UsageError(f"no open error {', '.join(f'#{i}' for i in missing)} of {key} "
                             f"(see flowlang errors {args.file})")
        for error_id, e in sorted(done.items()):
            terminal.out(f"{key}: error #{error_id} is resolved already ({resolved_by(e)}): left as it is")
        if not errors and done:
            return int(ExitStatus.OK)
        if not errors and args.match is not None and store.count_errors(key):  # others are open: say so
            terminal.out(f"{key}: no open error's message contains {args.match!r} "
                         f"({plural(store.count_errors(key), 'open error')}: flowlang errors {args.file} --group)")
            return int(ExitStatus.OK)
        if not errors:
            terminal.out(f"{key}: no open errors to resolve")
            return int(ExitStatus.OK)
        reason = f"by hand: {args.reason}" if args.reason else "by hand"
        job = made_job(terminal, store.admin_job(key, "resolve", f"resolved {plural(len(errors), 'error')} {reason}"))
        for e in errors:
            store.resolve(e.id, job, reason)
    terminal.out(f"{key}: resolved {plural(len(errors), 'error')} ({reason}; job {job})")
    return int(ExitStatus.OK)


def resolved_by(error: StoredError) -> str:
    """Who resolved an error, as flowlang errors --all says it: `by job 3 at ...: retried (job 3)`."""
    said = f"by job {error.resolved_by}" if error.resolved_by is not None else "resolved"
    if error.resolved_at:
        said += f" at {error.resolved_at}"
    return said + (f": {error.resolved_reason}" if error.resolved_reason else "")


_STEP = re.compile(r"\[(-?\d+)\]")


def path_steps(path: str) -> list[str | int]:
    """`customer.email`, `lines.1.qty` or `lines[1].qty`: names, and whole numbers that index a list."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        indexes = _STEP.findall("[" + rest) if rest else []
        if rest and "".join(f"[{i}]" for i in indexes) != "[" + rest:
            raise UsageError(f"bad path {path!r}: use names separated by dots, like customer.email or lines.0.qty")
        if name:
            steps.append(int(name) if re.fullmatch(r"-?\d+", name) else name)
        elif not indexes:
            raise UsageError(f"bad path {path!r}: use names separated by dots, like customer.email")
        steps.extend(int(i) for i in indexes)
    return steps


def _shown(steps: list[str | int]) -> str:
    return ".".join(str(s) for s in steps)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        return "a number"
    return type(value).__name__


def set_path(target: Any, path: str, value: Any, unset: bool = False) -> Any:
    """`a.b.c` in nested objects and lists (`lines.1.qty`): set or remove, as `let` into a path does
    (LANGUAGE.md): missing objects are made on the way, a list index must exist, and a path never
    goes through text, a number or a list (by name) by replacing it: that would lose the saved data."""
    steps = path_steps(path)
    if not isinstance(target, dict):
        raise UsageError(f"cannot set {path!r}: the saved value is not an object")
    node: Any = target
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        here = _shown(steps[:i]) or "the record"
        if isinstance(node, list):
            if not isinstance(step, int):
                raise UsageError(f"cannot {'unset' if unset else 'set'} {path!r}: {here} is a list of "
                                 f"{len(node)}; give an index, like {_shown([*steps[:i], 0, *steps[i + 1:]])}")
            if not -len(node) <= step < len(node):
                raise UsageError(f"cannot {'unset' if unset else 'set'} {path!r}: {here} is a list of "
                                 f"{len(node)}, it has no item {step}")
            if last:
                if unset:
                    del node[step]
                else:
                    node[step] = value
                return target
            node = node[step]
            if not isinstance(node, dict | list):  # before: 'internal error: TypeError: 'int' object does not ...'
                raise UsageError(f"cannot {'unset' if unset else 'set'} {path!r}: {_shown(steps[:i + 1])} is "
                                 f"{_kind(node)} ({printable(dumps(node))[:40]}), not an object; set "
                                 f"{_shown(steps[:i + 1])} itself to replace it")
            continue
        key = str(step)
        if last:
            if unset:
                if key not in node:
                    raise UsageError(f"cannot unset {path!r}: there is no {_shown(steps)}")
                del node[key]
            else:
                node[key] = value
            return target
        child = node.get(key)
        if child is None:
            if unset:
                raise UsageError(f"cannot unset {path!r}: there is no {_shown(steps[:i + 1])}")
            child = node[key] = {}
        elif not isinstance(child, dict | list):
            raise UsageError(f"cannot {'unset' if unset else 'set'} {path!r}: {_shown(steps[:i + 1])} is "
                             f"{_kind(child)} ({printable(dumps(child))[:40]}), not an object; set "
                             f"{_shown(steps[:i + 1])} itself to replace it")
        node = child
    return target


def storable(value: Any, what: str) -> None:
    """Refuse a value edited by --set that the store cannot encode (nested hundreds of levels deep: a
    path of thousands of names, or a JSON value of thousands of brackets), before a job is recorded.
    Before, the RecursionError of the encoding ended the command as 'internal error ... a bug in
    flowlang', after a job of the change (status ok) was recorded for a change never made."""
    try:
        dumps_stored(value)
    except (JsonDataError, RecursionError):
        raise UsageError(f"{what} would nest more than a few hundred levels deep (lists or objects inside "
                         "each other), which the store cannot keep: nothing was changed") from None


def assignments(items: list[str], option: str) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise UsageError(f"{option} needs PATH=JSON, got {item!r}")
        out.append((path.strip(), parse_value(raw, f"{option} {item}")))
    return out


def cmd_edit(args: argparse.Namespace, terminal: Terminal) -> int:
    changes = assignments(args.set, "--set")
    unsets = list(args.unset)
    if not changes and not unsets:
        raise UsageError("say what to change: flowlang edit FILE ID --set PATH=JSON (or --unset PATH)")
    with opened(args, lock=True, terminal=terminal) as (store, key):
        found = store.errors(key, ids=[args.id])
        if not found:
            done = list(store.iter_errors(key, include_resolved=True, ids=[args.id]))
            if done:
                raise UsageError(f"error #{args.id} of {key} is resolved ({resolved_by(done[0])}): only an open "
                                 f"error's record is edited for a retry (see flowlang errors {args.file} --all)")
            raise UsageError(f"no open error #{args.id} of {key} (see flowlang errors {args.file})")
        record = found[0].record
        for path, value in changes:
            record = set_path(record, path, value)
        for path in unsets:
            record = set_path(record, path, None, unset=True)
        storable(record, f"the record of error #{args.id}")
        job = made_job(terminal, store.admin_job(key, "edit", f"edited the record of error {args.id}"))
        store.edit_record(args.id, record, job)
    terminal.out(f"#{args.id} record: {dumps(record)}")
    terminal.out(f"the old record is kept in the error's history; retry it with: flowlang retry {args.file} "
                 f"--id {args.id}")
    return int(ExitStatus.OK)


# ---- jobs and state ---------------------------------------------------------------------------
def duration(job: dict[str, Any]) -> str:
    if not job["ended_at"]:
        return "-"
    try:
        start = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(job["ended_at"].replace("Z", "+00:00"))
    except ValueError:
        return "-"
    return f"{(end - start).total_seconds():.2f}s"


def cmd_jobs(args: argparse.Namespace, terminal: Terminal) -> int:
    if args.last < 1:
        raise UsageError("--last needs a number of at least 1")
    with opened(args, terminal=terminal) as (store, key):
        jobs = store.jobs(key, args.last)
    for job in jobs:
        job["dry_run"] = bool(job["dry_run"])
    if args.json:
        for job in jobs:
            terminal.json_out(dumps({**job, "duration": duration(job)}))
        return int(ExitStatus.OK)
    if not jobs:
        terminal.out(f"{key}: no jobs yet")
        return int(ExitStatus.OK)
    terminal.out(f"{'id':>6}  {'kind':<9} {'started':<27} {'duration':>9}  {'status':<12} counts")
    for job in jobs:
        s = job["stats"] or {}
        sent = "would send" if job["dry_run"] else "sent"  # a dry run, a plan, a retry --dry-run sent nothing
        counts = (f"read {s.get('read', 0)}, {sent} {s.get('sent', 0)}, failed {s.get('failed', 0)}"
                  if job["kind"] not in ("resolve", "edit", "state", "ledger") else (job["message"] or ""))
        if job.get("damaged"):
            counts = job["damaged"]
        if job.get("resumed_from"):
            counts += f" (resumed job {job['resumed_from']})"
        if job["dry_run"] and job["kind"] not in ("dry-run", "plan"):  # a retry --dry-run: its kind says retry
            counts += " (dry run: nothing sent)"
        terminal.out(f"{job['id']:>6}  {job['kind']:<9} {job['started_at']:<27} {duration(job):>9}  "
                     f"{job['status']:<12} {counts}")
    return int(ExitStatus.OK)


def cmd_state(args: argparse.Namespace, terminal: Terminal) -> int:
    sets = assignments(args.set, "--set")
    unsets = list(args.unset)
    changing = bool(sets or unsets or args.reset or args.last_success_at is not None)
    if args.reset and (sets or unsets):
        raise UsageError("--reset forgets the whole state; give it alone (or with --last-success-at)")
    with opened(args, lock=changing, terminal=terminal) as (store, key):
        if changing:
            change_state(store, key, args, sets, unsets, terminal)
        stored = store.stored_state(key)
        last = store.last_success_at(key)
        try:
            store.state_of(key, stored)
            damaged = None
        except StoreError as e:  # shown all the same, so that the damaged value can be set again or unset
            damaged = e
    # as stored, in the tagged form --set reads: a datetime cursor copied back stays a datetime
    terminal.json_out(dumps({"state": stored, "last_success_at": last}))
    if damaged is not None:
        terminal.error(f"error: {damaged}")
        return int(ExitStatus.FAILED)
    return int(ExitStatus.OK)


def changed_state(store: Store, key: str, sets: list[tuple[str, Any]], unsets: list[str]) -> dict[str, Any]:
    """The state with --set and --unset applied. A damaged state (a tag that holds no value of its
    kind) is changed in its stored form, and must read once changed: --set or --unset its bad value."""
    stored = store.stored_state(key)
    try:
        state: Any = store.state_of(key, stored)
    except StoreError:
        for path, value in sets:
            stored = set_path(stored, path, to_stored(value))
        for path in unsets:
            stored = set_path(stored, path, None, unset=True)
        return store.state_of(key, stored)
    for path, value in sets:
        state = set_path(state, path, value)
    for path in unsets:
        state = set_path(state, path, None, unset=True)
    return dict(state)


def change_state(store: Store, key: str, args: argparse.Namespace, sets: list[tuple[str, Any]],
                 unsets: list[str], terminal: Terminal) -> None:
    success_at = None
    if args.last_success_at is not None:
        success_at = moment_text(args.last_success_at)
    elif args.reset:
        success_at = ""  # the next run is a first run: job.last_success_at is null
    what = []
    if args.reset:
        what.append("reset the state")
    what += [f"set {p}" for p, _ in sets] + [f"unset {p}" for p in unsets]
    if args.last_success_at is not None:
        what.append(f"last_success_at = {success_at}")
    state = changed_state(store, key, sets, unsets) if (sets or unsets) and not args.reset else None
    if state is not None:
        storable(state, "the state")
    job = made_job(terminal, store.admin_job(key, "state", "; ".join(what), success_at))
    if args.reset:
        store.replace_state(key, None, job)
    elif state is not None:
        store.replace_state(key, state, job)
    terminal.message(f"{key}: {'; '.join(what)} (job {job})")


def moment_text(raw: str) -> str:
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--last-success-at needs a date and time like 2024-05-01T00:00:00Z, got {raw!r}") from None
    if when.tzinfo is None:
        raise UsageError(f"--last-success-at needs a time zone (2024-05-01T00:00:00Z), got {raw!r}")
    if when > datetime.now(UTC):
        raise UsageError(f"--last-success-at {raw} is in the future: the next run would read a window that skips "
                         "records (and is refused while the clock is behind it)")
    return format_datetime(when.astimezone(UTC))  # job.last_success_at is UTC, as a run's start is


def add_parsers(sub: Any, common: Any) -> None:
    """The store commands' command lines (called by cli.main.build_parser)."""
    errors = sub.add_parser("errors", help="list a flow's open record errors")
    errors.add_argument("file")
    errors.add_argument("--state-dir")
    errors.add_argument("--json", action="store_true", help="one JSON object per error on stdout")
    errors.add_argument("--all", action="store_true", help="resolved errors too, with who resolved them")
    errors.add_argument("--key", metavar="K", help="only the errors of this trace key")
    errors.add_argument("--group", action="store_true", help="group by message, with counts")
    errors.add_argument("--limit", type=store_number, metavar="N", help="show at most N errors (oldest first)")
    errors.add_argument("--offset", type=store_number, default=0, metavar="N", help="skip the first N errors")
    common(errors)

    resolve = sub.add_parser("resolve", help="resolve errors by hand (kept as resolved, with the reason)")
    resolve.add_argument("file")
    resolve.add_argument("ids", nargs="*", type=error_id, metavar="ID")
    resolve.add_argument("--all", action="store_true", help="every open error (with --match: those whose "
                         "message contains TEXT)")
    resolve.add_argument("--match", metavar="TEXT")
    resolve.add_argument("--reason", metavar="TEXT", help="why; kept with the error")
    resolve.add_argument("--state-dir")
    common(resolve)

    edit = sub.add_parser("edit", help="change an error's saved record before a retry (the old one is kept)")
    edit.add_argument("file")
    edit.add_argument("id", type=error_id, metavar="ID")
    edit.add_argument("--set", action="append", default=[], metavar="PATH=JSON")
    edit.add_argument("--unset", action="append", default=[], metavar="PATH",
                      help="remove a field (such as a ragged row's _extra)")
    edit.add_argument("--state-dir")
    common(edit)

    jobs = sub.add_parser("jobs", help="a flow's run history: id, kind, start, duration, status, counts")
    jobs.add_argument("file")
    jobs.add_argument("--last", type=store_number, default=20, metavar="N", help="the newest N jobs (default 20)")
    jobs.add_argument("--json", action="store_true", help="one JSON object per job on stdout")
    jobs.add_argument("--state-dir")
    common(jobs)

    state = sub.add_parser("state", help="show or change a flow's persisted state (e.g. for a backfill)")
    state.add_argument("file")
    state.add_argument("--set", action="append", default=[], metavar="PATH=JSON")
    state.add_argument("--unset", action="append", default=[], metavar="PATH")
    state.add_argument("--reset", action="store_true", help="forget the state and job.last_success_at")
    state.add_argument("--last-success-at", metavar="TIME", help="what job.last_success_at is on the next run")
    state.add_argument("--state-dir")
    common(state)


COMMANDS = {"errors": cmd_errors, "resolve": cmd_resolve, "edit": cmd_edit, "jobs": cmd_jobs, "state": cmd_state}
