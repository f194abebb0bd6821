"""What happens once a run or retry has ended: the metrics file (`--metrics-file`) and the alerts
of flowlang.toml. Neither changes the command's exit status; a failure of either is logged."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang.runtime.state_folder import state_dir_for

if TYPE_CHECKING:  # the rest is imported when there is a metrics file or an alert to send
    from flowlang.api import Flow
    from flowlang.cli.console import Terminal
    from flowlang.project import Project
    from flowlang.runner import Result

log = logging.getLogger("flowlang.cli")


def after_run(args: argparse.Namespace, terminal: Terminal, flow: Flow, project: Project, result: Result,
              secrets: dict[str, str]) -> None:
    state_dir = state_dir_for(flow.path, getattr(args, "state_dir", None))
    test_run = bool(getattr(args, "dry_run", False)) or getattr(args, "limit", None) is not None
    metrics_file = getattr(args, "metrics_file", None)
    if metrics_file:
        from flowlang.runtime.store import Store
        from flowlang.telemetry.textfile import write_metrics_file

        store = Store(state_dir)
        try:
            last_success = store.last_success_at(flow.key)
        finally:
            store.close()
        try:
            write_metrics_file(Path(metrics_file), flow.name, result.kind, result.status, result.job_id, result.stats,
                               time.time(), last_success)
        except OSError as e:
            log.error(f"cannot write --metrics-file {metrics_file}: {e.strerror or e}",
                      extra={"flow": flow.name, "job_id": result.job_id})
    if project.alerts is None or test_run:
        return
    from flowlang.alerts import alert, report_of
    from flowlang.cli.signals import run_async_command
    from flowlang.runtime.secrets import SecretChain

    chain = SecretChain(project.secret_providers(secrets, dict(os.environ)), on_value=terminal.masker.add)
    report = report_of(flow.name, args.file, result, terminal.masker.mask)
    run_async_command(alert(project, report, state_dir, chain, terminal.masker.mask))
