"""Who is told when a run ends badly: `[alerts]` of flowlang.toml. One message per run that ended
as configured (failed, partial, interrupted), with the flow, the job, the counts, the first errors
grouped as `flowlang errors --group` groups them, and the command to see them; masked; at most one
per flow and target per `min_interval` (the runs held back are counted in the next message). A target that cannot be
reached is logged; it never changes the run's outcome."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flowlang.project import Project
from flowlang.project_schema import AlertsConfig
from flowlang.runtime.alert_log import give_back_alert_slot, take_alert_slot
from flowlang.runtime.error_groups import message_shape
from flowlang.runtime.secrets import SecretChain
from flowlang.runtime.store import Store
from flowlang.status import resumed_failed_text

log = logging.getLogger("flowlang.alerts")
FIRST_GROUPS = 5


class AlertSender(Protocol):
    @property
    def label(self) -> str: ...

    async def send(self, subject: str, text: str, data: dict[str, Any]) -> None: ...


class RunResult(Protocol):
    """What an alert reads of a finished run (flowlang.Result)."""

    status: str
    job_id: int | None
    errors: list[Any]
    error: Any
    left_open: str | None  # a retry's errors left open without a replay

    @property
    def stats(self) -> Any: ...


@dataclass
class RunReport:
    """A finished run as an alert tells it."""

    flow: str
    file: str
    job_id: int | None
    status: str
    counts: dict[str, int]
    duration: float
    groups: list[tuple[str, int]]
    run_error: str | None
    earlier: str | None = None  # a resumed run's: the records the job it resumed kept as failed, still open

    @property
    def subject(self) -> str:
        what = {"failed": "failed", "partial": "finished with failed records", "interrupted": "was interrupted"}
        return f"flowlang: {self.flow} {what.get(self.status, self.status)} (job {self.job_id})"

    def text(self, held_back: int) -> str:
        c = self.counts
        lines = [f"Flow: {self.flow} ({self.file})", f"Job: {self.job_id}, status {self.status}, "
                 f"{self.duration:.1f}s",
                 f"Records: read {c['read']}, sent {c['sent']}, failed {c['failed']}, skipped {c['skipped']}"]
        if self.run_error:
            lines.append(f"Run error: {self.run_error}")
        if self.groups:
            lines.append("First errors, grouped by message:")
            lines += [f"  {n} x {message}" for message, n in self.groups]
        if self.earlier:
            lines.append(f"Before the checkpoint it resumed from: {self.earlier}")
        if c["failed"] or self.earlier:
            lines.append(f"See them: flowlang errors {self.file} --group; retry: flowlang retry {self.file}")
        if held_back:
            lines.append(f"({held_back} more run{'s' if held_back != 1 else ''} ended so since the last alert "
                         "to this target; they were not sent separately)")
        return "\n".join(lines)

    def data(self, held_back: int) -> dict[str, Any]:
        return {"flow": self.flow, "file": self.file, "job_id": self.job_id, "status": self.status,
                "counts": self.counts, "duration": round(self.duration, 3),
                "errors": [{"message": m, "count": n} for m, n in self.groups], "run_error": self.run_error,
                "held_back": held_back, **({"earlier": self.earlier} if self.earlier else {})}


def report_of(flow: str, file: str, result: RunResult, mask: Callable[[str], str]) -> RunReport:
    stats = result.stats
    counts = {name: int(getattr(stats, name)) for name in ("read", "sent", "failed", "skipped")}
    run_error = (mask(str(getattr(result.error, "message", result.error))) if result.error is not None
                 else result.left_open)
    resumed_failed = getattr(result, "resumed_failed", 0)  # a run of the CLI's resumed with --resume
    earlier = None
    if resumed_failed:
        earlier = resumed_failed_text(resumed_failed, getattr(result, "resumed_from", None))
    return RunReport(flow, file, result.job_id, result.status, counts, float(stats.duration),
                     grouped(mask(str(getattr(e, "message", e))) for e in result.errors), run_error, earlier)


def grouped(messages: Iterable[str]) -> list[tuple[str, int]]:
    """The errors' messages grouped as `flowlang errors --group` groups them (runtime/error_groups.py: by
    their shape, "order 17 not found" and "order 18 not found" together), largest first: the first
    message of each, with the shape when the others differ, and how many."""
    first: dict[str, str] = {}
    counts: Counter[str] = Counter()
    differ: set[str] = set()
    for message in messages:
        shape = message_shape(message)
        if first.setdefault(shape, message) != message:
            differ.add(shape)
        counts[shape] += 1
    return [(first[shape] + (f" (all like: {shape})" if shape in differ else ""), n)
            for shape, n in counts.most_common(FIRST_GROUPS)]


def senders(config: AlertsConfig, chain: SecretChain, project_folder: Path) -> list[AlertSender]:
    """The configured targets, their credentials read through the secret chain."""
    from flowlang.connectors.alert_targets import SmtpTarget, WebhookTarget

    found: list[AlertSender] = []
    if config.email is not None:
        e = config.email
        password = chain.value(e.password_secret) if e.password_secret else None
        ca_file = str(project_folder / e.ca_file) if e.ca_file else None
        found.append(SmtpTarget(e.host, e.port, e.sender, list(e.to), e.starttls, e.tls, e.user, password, ca_file,
                                e.timeout))
    if config.webhook is not None:
        w = config.webhook
        if w.url_secret:
            found.append(WebhookTarget(chain.value(w.url_secret), f"(secret {w.url_secret})", w.format, w.timeout))
        elif w.url:
            found.append(WebhookTarget(w.url, w.url, w.format, w.timeout))
    return found


async def alert(project: Project, report: RunReport, state_dir: Path | None, chain: SecretChain,
                mask: Callable[[str], str], logger: logging.Logger = log) -> list[str]:
    """Send the report where the project says; returns one line per target (sent, held back, failed)."""
    from flowlang.connectors.alert_targets import AlertDeliveryError
    from flowlang.errors import FlowError

    config = project.alerts
    if config is None or report.status not in config.on:
        return []
    extra = {"flow": report.flow, "job_id": report.job_id}
    try:
        targets = senders(config, chain, project.folder)
    except FlowError as e:
        logger.warning(mask(f"alerts not sent: {e.message}"), extra=extra)
        return [f"not sent: {e.message}"]
    outcomes: list[str] = []
    store = Store(state_dir)
    try:
        for target in targets:
            now = time.time()
            may, held = take_alert_slot(store, report.flow, target.label, now, config.min_interval)
            if not may:
                outcomes.append(f"{target.label}: held back ({held} since the last alert)")
                logger.info(mask(f"alert to {target.label} held back: one was sent less than "
                                 f"{config.min_interval:g}s ago"), extra=extra)
                continue
            try:
                await target.send(mask(report.subject), mask(report.text(held)), report.data(held))
            except AlertDeliveryError as e:
                give_back_alert_slot(store, report.flow, target.label, now, held)  # held back by nothing delivered
                outcomes.append(f"{target.label}: failed")
                logger.warning(mask(f"alert not delivered: {e}"), extra=extra)
                continue
            outcomes.append(f"{target.label}: sent")
            logger.info(mask(f"alert sent: {target.label}"), extra=extra)
    finally:
        store.close()
    return outcomes
