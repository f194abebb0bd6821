"""`flowlang run --metrics-file F`: the run's figures in Prometheus text format, written the way
node exporter's textfile collector wants it (a temporary file renamed over F, so a scrape never
reads half a file). One file per flow: point each cron line at its own `*.prom` file."""

from __future__ import annotations

import errno
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from flowlang.file_replace import special_file

STATUSES = ("ok", "partial", "failed", "interrupted")


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def write_metrics_file(path: Path, flow: str, kind: str, status: str, job_id: int | None, stats: Any,
                       ended_at: float, last_success_at: str | None) -> None:
    """Write F atomically; OSError when its folder cannot be written."""
    registry = CollectorRegistry()
    labels = {"flow": flow}

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, [*labels, *extra], registry=registry)

    records = gauge("flowlang_run_records", "Records of the last run, by what happened to them", ("outcome",))
    for outcome in ("read", "sent", "failed", "skipped", "emitted"):
        records.labels(flow=flow, outcome=outcome).set(int(getattr(stats, outcome)))
    gauge("flowlang_run_duration_seconds", "Duration of the last run").labels(**labels).set(float(stats.duration))
    state = gauge("flowlang_run_status", "1 for the last run's status, 0 for the others", ("status",))
    for name in STATUSES:
        state.labels(flow=flow, status=name).set(1 if name == status else 0)
    gauge("flowlang_run_last_end_timestamp_seconds", "When the last run ended").labels(**labels).set(ended_at)
    if job_id is not None:
        gauge("flowlang_run_job_id", "The last run's job id", ("kind",)).labels(flow=flow, kind=kind).set(job_id)
    success = _timestamp(last_success_at)
    if success is not None:
        gauge("flowlang_run_last_success_timestamp_seconds",
              "When the last run without a run error (ok or partial) started").labels(**labels).set(success)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a part of the folder's path is a file: mkdir says 'File exists'
        raise NotADirectoryError(errno.ENOTDIR, f"{_file_on_the_way(path.parent)} is a file, not a folder") from None
    if special_file(path):  # --metrics-file /dev/null, /dev/stdout: written into
        with path.open("wb") as fh:
            fh.write(generate_latest(registry))
        return
    write_to_textfile(str(path), registry)


def _file_on_the_way(folder: Path) -> Path:
    """The first part of a folder's path that is a file (what keeps the folder from being made)."""
    for part in reversed((folder, *folder.parents)):
        if part.exists() and not part.is_dir():
            return part
    return folder
