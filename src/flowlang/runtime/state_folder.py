"""The state-folder rule: where a flow's jobs, state, errors and lock are kept. The API, the runner
(for child flows), the CLI's `errors` / `retry` and `serve` (for a folder of flows) all ask here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import overload

STATE_DIR_ENV = "FLOWLANG_STATE_DIR"


def state_dir_for(flow_path: Path | None, given: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Path | None:
    """--state-dir (or state_dir=), else FLOWLANG_STATE_DIR, else .flowlang/ beside the flow file;
    None (state in memory) for a flow given as text."""
    return state_dir_in(flow_path.parent if flow_path is not None else None, given, environ)


@overload
def state_dir_in(folder: Path, given: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path: ...
@overload
def state_dir_in(folder: None, given: str | Path | None = None,
                 environ: Mapping[str, str] | None = None) -> Path | None: ...


def state_dir_in(folder: Path | None, given: str | Path | None = None,
                 environ: Mapping[str, str] | None = None) -> Path | None:
    """The rule for flows kept in `folder` (None: not kept in a file)."""
    if given:
        return Path(given)
    from_env = (os.environ if environ is None else environ).get(STATE_DIR_ENV)
    if from_env:
        return Path(from_env)
    if folder is not None:
        return folder / ".flowlang"
    return None

