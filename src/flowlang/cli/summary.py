"""The run summary on stderr: records read, sent, failed, skipped and emitted, per statement."""

from __future__ import annotations

import logging

from flowlang.cli.console import Terminal
from flowlang.runner import Result

log = logging.getLogger("flowlang.cli")


def headline(name: str, result: Result, verb: str = "run") -> str:
    s = result.stats
    if result.kind in ("test", "dry-run") and verb == "run":
        verb = "test run" if result.kind == "test" else "dry run"
    state = {"ok": "finished", "partial": "finished with failed records", "failed": "failed",
             "interrupted": "stopped on request"}[result.status]
    sent = f"would send {s.sent}" if result.kind in ("dry-run", "plan") else f"sent {s.sent}"  # nothing was sent
    return (f"{name}: {verb} {state} in {s.duration:.2f}s: read {s.read}, {sent}, failed {s.failed}, "
            f"skipped {s.skipped}, emitted {s.emitted}")


def children_text(result: Result) -> str:
    """The chained flows whose records failed (OPERATIONS.md 8), named with their job and counts; of a resumed
    run, the records the job it resumed kept as failed, still open (what makes a run of no failure partial)."""
    from flowlang.status import resumed_failed_text

    resumed = f"; {resumed_failed_text(result.resumed_failed, result.resumed_from)}" if result.resumed_failed else ""
    return resumed + "".join(f"; {c.flow} (job {c.job_id}) had {c.failed} failed record{'s' if c.failed != 1 else ''}"
                             for c in result.children)


def show(terminal: Terminal, name: str, result: Result, json_logs: bool, verb: str = "run") -> None:
    if json_logs:  # the summary's level follows the outcome (OPERATIONS.md 10)
        level = {"ok": logging.INFO, "partial": logging.WARNING}.get(result.status, logging.ERROR)
        log.log(level, headline(name, result, verb) + children_text(result),
                extra={"flow": name, "job_id": result.job_id,
                       "summary": {**result.stats.as_dict(), "kind": result.kind,
                                   "children": [vars(c) for c in result.children],
                                   **({"resumed_from": result.resumed_from, "resumed_failed": result.resumed_failed}
                                      if result.resumed_from is not None else {})}})
        return
    terminal.message(headline(name, result, verb) + children_text(result), "bold" if result.ok else "yellow")
    rows = [(line, st) for line, st in sorted(result.stats.per_line.items())
            if st.read or st.sent or st.failed or st.skipped]
    if not rows or not terminal.rich:
        return
    from rich.table import Table  # here: a run on a pipe draws no table and needs no rich

    table = Table(box=None, padding=(0, 2), show_header=True, header_style="dim")
    for column in ("line", "statement", "read", "sent", "failed", "skipped", "emitted"):
        table.add_column(column, justify="right" if column != "statement" else "left")
    for line, st in rows:
        table.add_row(str(line), st.kind, str(st.read), str(st.sent), str(st.failed), str(st.skipped),
                      str(st.emitted))
    terminal.table(table)
