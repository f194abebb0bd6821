"""How `flowlang plan` shows a plan: per destination, the records and the first payloads; per
connection, the requests and the least time they take (or one JSON object with --json)."""

from __future__ import annotations

from flowlang.cli.console import Terminal
from flowlang.runner import Result
from flowlang.runtime.jsoncodec import dumps
from flowlang.testing.plan import Planner, costs, ledger_skips, plan_dict

PAYLOAD_SHOWN = 400


def show_plan(terminal: Terminal, name: str, planner: Planner, result: Result, as_json: bool) -> None:
    if as_json:
        terminal.record(plan_dict(planner, result.stats))
        return
    s = result.stats
    skipped = ledger_skips(planner, s)
    terminal.out(f"plan of {name}: read {s.read:,} records, nothing was written"
                 + ("" if result.status == "ok" else
                    f" ({result.status}, {s.failed:,} record{'s' if s.failed != 1 else ''} failed)")
                 + (f"; {skipped:,} send{'s' if skipped != 1 else ''} skipped: the ledger has "
                    f"{'them' if skipped != 1 else 'it'} (sent before with once, or unchanged with if changed)"
                    if skipped else ""))
    if not planner.destinations:
        terminal.out("no writes: the run would send nothing")
    for d in planner.destinations.values():
        batched = f" in {d.requests:,} requests" if d.requests != d.records else ""
        paths = f" to {d.paths_text}" if d.paths_text else ""
        terminal.out(f"\n{d.connection}.{d.op}  {d.label}: {d.records:,} record{'s' if d.records != 1 else ''}"
                     f"{batched}{paths}")
        for i, payload in enumerate(d.payloads, 1):
            text = terminal.masker.mask(dumps(payload))
            terminal.out(f"  {i}. {text if len(text) <= PAYLOAD_SHOWN else text[:PAYLOAD_SHOWN - 3] + '...'}")
        if d.records > len(d.payloads):
            terminal.out(f"  ... and {d.records - len(d.payloads):,} more (--json shows all)")
    lines = [line for cost in costs(planner, s) for line in cost.lines]
    if lines:
        terminal.out("\nrequests the run would make:")
        for line in lines:
            terminal.out(f"  {line}")
