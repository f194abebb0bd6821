"""The flow-folder rule: files a flow names stay in the flow's folder. `file(path: ...)`, a
`sql(url: "sqlite:///...")` database, `import "..."` and `run "..."` all ask here, so one rule
decides for all of them (and `allow_outside: true` / `allow_outside` lifts it the same way).

A path is inside when it still is after `..` and symbolic links are resolved; a file with more
than one hard link may have a name outside, so it counts as outside too. A path that cannot name
a file at all (a NUL byte, a name longer than the system allows) is refused with a clear reason."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GLOB_STARTS = ("*", "?", "[")


class PathRefused(ValueError):
    """A path the rule refuses; `message` says why, for the caller to place (a diagnostic or a run error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def usable(raw: str) -> None:
    """Refuse text that cannot be a file name: a NUL byte, or a path or name longer than the system allows."""
    if "\x00" in raw:
        raise PathRefused(f"the path {shown(raw)} contains a NUL character, which no file name can")
    try:
        size = len(os.fsencode(raw))
    except UnicodeEncodeError as e:  # a lone surrogate ("\ud800" in a flow or in data): no byte of a name holds it
        raise PathRefused(f"the path {shown(raw)} cannot be a file name: {raw[e.start:e.end]!r} in it is half of a "
                          "UTF-16 surrogate pair, not a character (broken text)") from None
    limit = _limit("PC_PATH_MAX", 4096)
    if size >= limit:
        raise PathRefused(f"the path {shown(raw)} is longer than the {limit:,} bytes a path may have")
    longest = _limit("PC_NAME_MAX", 255)
    for part in Path(raw).parts:
        if len(os.fsencode(part)) > longest:
            raise PathRefused(f"the path {shown(raw)} has a name longer than the {longest} bytes a file name may have")


def outside_left_to_run(constants: Mapping[str, Any], given: set[str]) -> bool:
    """Whether `flowlang check` leaves a connection's constant path to the run: allow_outside is true, or
    given but computed (only the run knows it). One rule for every connector's folder_problem."""
    return ("allow_outside" in given and "allow_outside" not in constants) or constants.get("allow_outside") is True


def inside(base_dir: Path, raw: str, *, allow_outside: bool = False, switch: str = "allow_outside: true") -> Path:
    """The absolute path `raw` (relative to `base_dir`) names, refused when it leaves the flow's folder
    (unless allow_outside). A glob pattern is judged by its fixed start."""
    usable(raw)
    path = Path(raw)
    if not path.is_absolute():
        path = base_dir / path
    if allow_outside:
        return path
    fixed = str(path)
    for mark in GLOB_STARTS:
        fixed = fixed.split(mark)[0]
    folder = base_dir.resolve()
    try:
        resolved = Path(fixed or ".").resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise PathRefused(f"the path {shown(raw)} cannot be followed: {e}") from None
    if not resolved.is_relative_to(folder):
        raise PathRefused(f"the file {shown(raw)} is outside the flow's folder ({base_dir}); "
                          f"write {switch} to use it")
    if hard_linked(resolved):
        raise PathRefused(f"the file {shown(raw)} has other hard links, which may lie outside the flow's folder "
                          f"({base_dir}); copy it into the folder, or write {switch} to use it")
    return path


def hard_linked(path: Path) -> bool:
    """A regular file with more than one name."""
    try:
        info = path.stat()
    except OSError:
        return False
    return path.is_file() and info.st_nlink > 1


def shown(raw: str) -> str:
    """A path for a message: quoted, control characters escaped, cut when very long."""
    text = repr(raw)
    return text if len(text) <= 200 else text[:120] + "..." + text[-40:]


def _limit(name: str, default: int) -> int:
    try:
        return int(os.pathconf("/", name))
    except (OSError, ValueError, AttributeError):
        return default
