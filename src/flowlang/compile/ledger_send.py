"""`send ... once` and `send ... if changed`: a send that goes through the ledger (runtime/ledger.py).

`once` sends a record key at most once per connection and operation, across runs, reruns and
retries: a key already sent is skipped (`as NAME` gets the recorded answer); a key whose send was
interrupted by a kill is refused until someone checks (the record fails with a message saying so).
`if changed` sends only when the payload's hash differs from the last one sent for the key."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import PurePath
from typing import Any

from flowlang.compile.errors import Where
from flowlang.connectors.base import Connection
from flowlang.errors import FlowRuntimeError, LedgerKeyChanged
from flowlang.runtime.keys import ledger_keys
from flowlang.runtime.ledger import destination_text, ledger_operation, legacy_operation, payload_hash
from flowlang.runtime.run import RunContext
from flowlang.runtime.stats import StatementStats, count_sent
from flowlang.runtime.store import now_text
from flowlang.runtime.tape import drawn

MODE_WORDS = {"once": "once", "changed": "if changed"}
# what makes a ledger send's keys (compile/io.py key_by): as the ledger keeps it, spaces collapsed and the
# loops' variables written `_` (`_.number`); as the flow writes it (`key o.number`, `the loop's key
# o.number`, or None for the record's id); and the variable of its loop, for a message (`o`)
KeyBy = tuple[str, str | None, str | None]
# the ledger sends in flight in this process, by event loop, store, flow, connection, operation and key: a
# send of a key another send is sending (a `parallel` loop's other record of the key, a webhook flow's other
# run at `concurrency` above 1) waits for its answer, then asks the ledger, so it is skipped as sent; before,
# it found the key pending and failed, saying the job had stopped with the send in flight, and advised a
# --forget that would have sent the key a second time
IN_FLIGHT: dict[tuple[int, str, str, str, str, str], asyncio.Future[None]] = {}
Place = tuple[int, str, str, str, str, str]


def in_flight_place(run: RunContext, connection: str, op: str, k: str) -> Place:
    """Where IN_FLIGHT keeps a send of key `k` (op: the ledger's name of the operation)."""
    assert run.ledger is not None
    return (id(asyncio.get_running_loop()), run.ledger.place, run.flow, connection, op, k)


async def wait_in_flight(place: Place) -> None:
    """Until no other send of this process has the key in flight (IN_FLIGHT)."""
    while (sending := IN_FLIGHT.get(place)) is not None:
        await asyncio.shield(sending)


def claim_in_flight(places: list[Place]) -> asyncio.Future[None]:
    """The keys of a send about to go out, in flight until release_in_flight."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    for place in places:
        IN_FLIGHT[place] = done
    return done


def release_in_flight(places: list[Place], done: asyncio.Future[None]) -> None:
    """The send has its answer (or was cut off): the sends of its keys that wait ask the ledger now."""
    for place in places:
        if IN_FLIGHT.get(place) is done:
            del IN_FLIGHT[place]
    if not done.done():
        done.set_result(None)


def replayed_file_key(stored: str | None, key: Any) -> Any:
    """In a retry, the key of a pick-up's record as its error keeps it ([file, id], JSON text), when it is
    that record's id; else the id alone."""
    if stored is None:
        return key
    try:
        found = json.loads(stored)
    except ValueError:
        return key
    if type(found) is list and len(found) == 2 and type(found[0]) is str and found[1] == key:
        return found
    return key


def blank_key(value: Any) -> bool:
    """A key that is an empty text or blanks: no key at all, as null is. Taken as one, every such record
    shared it: the second was skipped by `send ... once` as sent, or replaced the first's open error."""
    return type(value) is str and not value.strip()


def record_key(value: Any, run: RunContext | None = None) -> Any:
    """The default key of a loop's record: its `id` when it is an object with one; a record of a file
    pick-up (run.record_files) is keyed within its file, [name, id], as files that each number their
    rows from 1 share their ids (b.csv's row 1 is not a.csv's)."""
    if type(value) is not dict:
        return None
    key = value.get("id")
    if blank_key(key):  # an empty id ("" from a CSV's empty cell) is none: such records would share one
        return None
    if key is None or run is None:
        return key
    name = run.record_files.get(id(value))
    return key if name is None else [name, key]


def webhook_job(run: RunContext) -> bool:
    trigger = run.job.get("trigger")
    return isinstance(trigger, dict) and trigger.get("kind") == "webhook"


def afterwards(run: RunContext, outside: bool) -> str:
    """What finishes the work once the ledger says what happened to a key: a retry of the failed record,
    or, for a send outside any loop (whose failure fails the run, and leaves no record to retry), the run
    again: for a webhook delivery of `flowlang serve`, a replay of it."""
    if not outside:
        return "flowlang retry finishes the record"
    if webhook_job(run):
        return f"{replay_command(run)} goes on"
    return "the next run goes on"


def replay_command(run: RunContext) -> str:
    """How a webhook job's delivery is run again: `flowlang inbox DIR --replay ID`, DIR the flow's folder."""
    parts = shlex.split(run.flow_file)  # as a command takes it: 'my flows/orders.flow', quoted
    folder = shlex.quote(str(PurePath(parts[0]).parent)) if parts else "."
    return f"flowlang inbox {folder} --replay ID of the delivery (#ID in flowlang inbox {folder} --failed)"


def already_sent(run: RunContext, conn: Connection, op: str, k: str, digest: str, mode: str,
                 stats: StatementStats, outside: bool = False, old: str | None = None,
                 key_by: KeyBy | None = None) -> tuple[bool, Any]:
    """Whether the ledger says this key is not to be sent (and its recorded answer). A key whose send was
    cut off in flight is refused (unless sending it again cannot do its work twice): the record fails,
    saying so (`outside`: a send outside any loop, see afterwards); so is one whose key is made by another
    expression than the destination's entries were (key_changed). `old`: the key's text as versions
    before wrote it, when that differs (runtime/keys.py): an entry kept under it counts as this key's."""
    entry = consulted(run, conn.name, op, k, old)
    if entry is None:
        key_changed(run, conn.name, op, mode, key_by)
    kept = entry.get("key", k) if entry is not None else k  # the text the commands below take to find it
    if entry is not None and entry["status"] == "pending" and entry.get("repeatable"):
        run.log("info", f"{conn.name}.{op}: key {kept} was in flight when job {entry['job_id']} stopped; sending it "
                "again cannot do its work twice (an idempotency key, or a PUT or DELETE), so it is sent again")
    elif entry is not None and entry["status"] == "pending":
        raise FlowRuntimeError(
            f"send ... {MODE_WORDS[mode]}: the send of key {kept} to {conn.name}.{op} in job {entry['job_id']} got no "
            f"answer that says whether it arrived (the job stopped while it was in flight, it timed out or lost its "
            f"connection, or it was answered 502, 503 or 504, or 2xx with a body that could not be read), so it "
            f"may have reached {conn.name}; check there, then run {settling(run, conn.name, op, kept, 'forget')} to "
            f"send it again (or, if it arrived, {settling(run, conn.name, op, kept, 'sent')}, and "
            f"{afterwards(run, outside)} without sending it)", "connector")
    if entry is not None and entry["status"] == "sent" and (mode == "once" or entry["hash"] == digest):
        stats.skipped += 1
        job = entry["job_id"]
        why = f"already sent in job {job}" if mode == "once" else f"unchanged since job {job}"
        run.log("debug", f"{conn.name}.{op}: key {k} skipped ({why})")
        place = (f"{conn.name}.{op.split(' ', 1)[0]}", mode, job)
        run.ledger_skips[place] = run.ledger_skips.get(place, 0) + 1
        if entry.get("damaged") is not None:
            run.log("warn", f"{conn.name}.{op}: key {kept} was sent in job {job}, but the answer the ledger kept "
                    f"for it is damaged in the store ({entry['damaged']}): skipped as sent, its answer (as NAME) "
                    "is null")
        return True, entry["answer"]
    if run.dry_run:  # the real run would have sent it by now and skip it: so does a dry run, and a plan
        sends = run.dry_sends
        place = (conn.name, op, k)
        before = sends.get(place)
        if before is not None and (mode == "once" or before == digest):
            stats.skipped += 1
            run.log("debug", f"{conn.name}.{op}: key {k} skipped (would be sent earlier in this run)")
            return True, None
        sends[place] = digest
    return False, None


def key_changed(run: RunContext, connection: str, op: str, mode: str, key_by: KeyBy | None) -> None:
    """A key the ledger has no entry for, made by another expression than every entry of its destination
    was (`key_by`, compile/io.py): the loop's `key` was added or changed since those runs (`for each o in
    orders` keyed by `id`, then `for each o in orders key o.number`, as the warning of two records with one
    key advises), so no entry matches any more and every record they sent would be sent again (5 orders
    sent once, then 5 times more). The run ends at the first such record, before that send sends anything. Only a
    send keyed by its loop (or the record's id) is compared, with the entries made so: one with its own
    `key EXPR` is taken as written (a send added beside another to the same destination is a new one)."""
    ledger = run.ledger
    if key_by is None or ledger is None:
        return
    made_by, written, var = key_by
    if made_by.startswith("key "):  # the send names its own key: taken as written (a second send to the
        return  # destination with a key of its own is a new send, not a changed one)
    place = (connection, op)
    made = run.ledger_key_bys.get(place)
    if made is None:  # as the runs before left it: the entries this run makes are of its own key
        made = run.ledger_key_bys[place] = {
            by for by in ledger.key_bys(run.flow, connection, op) if not by.startswith("key ")}
    if not made or made_by in made:
        return
    loop_var = var or "r"

    def as_written(by: str) -> str:  # `_` back to the loop's variable
        return f"{loop_var}.id" if by == "id" else re.sub(r"(?<![\w.])_(?!\w)", loop_var, by)

    def shown(by: str) -> str:
        return f"the record's id ({as_written(by)})" if by == "id" else f"`{as_written(by)}`"

    before = sorted(made)
    now = written or "the record's id"
    raise LedgerKeyChanged(
        f"send ... {MODE_WORDS[mode]} to {connection}.{op}: its key is {now} now, and the ledger's entries for "
        f"{connection}.{op} were keyed by {' and '.join(shown(by) for by in before)}, so none of them would match and "
        f"every record the runs before sent would be sent again; this send sent nothing. Give the send the key they "
        f"were keyed by (send ... key {as_written(before[0])} {MODE_WORDS[mode]}: the loop's "
        f"own key may change), or, to send every record again, forget them first: flowlang ledger "
        f"{run.flow_file} --all --to {shlex.quote(destination_text(connection, op))}")


def consulted(run: RunContext, connection: str, op: str, k: str, old: str | None = None) -> dict[str, Any] | None:
    """What the ledger holds for a key (status, job_id, hash, answer), drawn through the run's tape as
    `state` is: a recording keeps what the ledger said, and its replay (which has no ledger of its own)
    says the same, so a send the recorded run skipped is skipped in the replay too. A recorded answer
    for another key (the flow changed since) is not used. Found under the bare operation an earlier
    version kept a path's entries under (legacy_operation), or under the key's `old` text (`1.0` for
    1.0, before key texts were canonical: runtime/keys.py), when there is none under the key's own:
    then "key" says the text it is kept under."""
    def looked_up() -> dict[str, Any] | None:
        ledger = run.ledger
        if ledger is None:
            return None
        legacy = legacy_operation(op)
        entry = None
        for text in (k, old):
            if text is None:
                continue
            entry = ledger.get(run.flow, connection, op, text)
            if entry is None and legacy is not None:
                entry = ledger.get(run.flow, connection, legacy, text)
            if entry is not None:
                break
        if entry is None:
            return None
        found = {"status": entry.status, "job_id": entry.job_id, "hash": entry.hash, "answer": entry.answer}
        if entry.key != k:
            found["key"] = entry.key
        if entry.repeatable:
            found["repeatable"] = True
        return found if entry.damaged is None else {**found, "damaged": entry.damaged}

    asked = {"connection": connection, "operation": op, "key": k}
    found = drawn("ledger", lambda: {**asked, "entry": looked_up()})
    if type(found) is not dict or any(found.get(name) != value for name, value in asked.items()):
        return looked_up()
    entry = found.get("entry")
    return entry if type(entry) is dict else None


def settling(run: RunContext, connection: str, op: str, k: str, change: str) -> str:
    """The command that settles a pending key at its destination alone: `flowlang ledger orders.flow --forget
    SO-17 --to 'erp.post /orders'` (change: forget or sent). Without --to, --forget forgot the key at every
    destination: a record sent `once` to a database and then cut off in flight to an API was inserted again
    by the retry that followed the message's advice."""
    return (f"flowlang ledger {run.flow_file} --{change} {shlex.quote(k)} "
            f"--to {shlex.quote(destination_text(connection, op))}")


def kept_pending(run: RunContext, connection: str, op: str, k: str, mode: str = "once", outside: bool = False) -> str:
    """What a ledger send that may have arrived (FlowRuntimeError.uncertain) adds to its record's error; op:
    the ledger's name of the operation."""
    then = "a retry" if not outside else "the next run" if not webhook_job(run) else replay_command(run)
    return (f"; send ... {MODE_WORDS[mode]}: key {k} stays pending in the ledger, since the request may have reached "
            f"{connection}: check there, then run {settling(run, connection, op, k, 'forget')} to send it again "
            f"(or, if it arrived, {settling(run, connection, op, k, 'sent')}) before {then}")


def may_have_arrived(connection: str) -> str:
    """What a plain send (no `once`) that may have arrived (FlowRuntimeError.uncertain) adds to its record's
    error: `flowlang retry` sends it again, which the API may take as a second one."""
    return (f"; the request may have reached {connection} (no answer said it did not), so a retry may send it "
            "twice: check there first, and resolve the error if it arrived (send ... once keeps such a send "
            "pending instead)")


def needs_key(key: Any, mode: str, where: Where, written: str | None = None) -> None:
    """A ledger send's key is null: `written` is the key's expression when the send or its loop has one
    (`key r.sku`, whose value was null for this record), else the record had no id to take."""
    if (key is None or blank_key(key)) and written is not None:
        raise where.error(f"send ... {MODE_WORDS[mode]} needs the record's key, and its key ({written}) is "
                          f"{'null' if key is None else 'empty'} for this record: give every record one "
                          "(key r.sku ?? r.email)", "value")
    if key is None:
        raise where.error(f"send ... {MODE_WORDS[mode]} needs the record's key: write `key EXPR` after the "
                          "destination (or loop over records that have an id)", "value")


async def ledger_send(run: RunContext, conn: Connection, op: str, record: Any, args: list[Any],
                      kwargs: dict[str, Any], key: Any, mode: str, stats: StatementStats, where: Where,
                      written: str | None = None, outside: bool = False, key_by: KeyBy | None = None) -> Any:
    """Send one record through the ledger; returns the answer (the recorded one when skipped); `written`
    as needs_key takes it; `outside`: the send is in no loop (nor function), so its failure fails the run;
    `key_by`: what makes its key (key_changed)."""
    needs_key(key, mode, where, written)
    ledger = run.ledger
    if ledger is None:
        return await conn.send(op, record, args, kwargs)
    k, old = ledger_keys(key, run.mask)
    entry_op = ledger_operation(op, args)  # the ledger's name of the operation: with its path
    digest = payload_hash(record, args, kwargs)
    place = in_flight_place(run, conn.name, entry_op, k)
    await wait_in_flight(place)  # another send of the key is in flight in this process (IN_FLIGHT)
    skip, answer = already_sent(run, conn, entry_op, k, digest, mode, stats, outside, old, key_by)
    if skip:
        return answer
    if run.dry_run:
        answer = await conn.send(op, record, args, kwargs)
        count_sent(stats, 1, conn.sends_read(op))  # would be sent, as a dry run counts its other sends
        return answer
    job_id = run.job.get("id")
    before = ledger.get(run.flow, conn.name, entry_op, k) if mode == "changed" else None  # the last one sent
    # claimed before the request goes out (`if changed` too: a kill leaves it pending, not to be sent again)
    ledger.pending(run.flow, conn.name, entry_op, k, digest, job_id, now_text(), conn.repeatable(op, record, kwargs),
                   key_by[0] if key_by is not None else None)
    done = claim_in_flight([place])
    try:
        try:
            answer = await conn.send(op, record, args, kwargs)
        except FlowRuntimeError as e:  # the connector says it failed; a kill or a cancel leaves the key pending
            if e.uncertain:  # it may have arrived: kept pending, as a kill would leave it
                e.message += kept_pending(run, conn.name, entry_op, k, mode, outside)
                e.args = (e.message, *e.args[1:])
            elif mode == "once":
                ledger.release(run.flow, conn.name, entry_op, k)
            else:  # refused: the destination has what it had, and the ledger says so again
                ledger.restore(run.flow, conn.name, entry_op, k, before)
            raise
        run.flush_writes()  # what the ledger records as sent has reached the destination (a file's buffer)
        ledger.sent(run.flow, conn.name, entry_op, k, digest, answer, job_id, now_text(), run.mask)
    finally:  # the sends of the key that wait for this one ask the ledger now
        release_in_flight([place], done)
    count_sent(stats, 1, conn.sends_read(op))
    return answer
