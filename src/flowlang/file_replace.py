"""Writing a user's file whole or not at all: `flowlang fmt` rewriting a flow, the REPL's `:save`, an
imported connector file. The text goes to `.NAME.part` beside the file and is renamed over it once it is
on the disk, so a full disk (or a file size limit) leaves the old file as it was, never cut short."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def special_file(path: Path) -> bool:
    """A device or a FIFO (/dev/null, /dev/stdout): a file replaced in one step is written into instead, as a
    shell's > does. Renamed over, /dev/null became a regular file of the machine, run as root (`flowlang fmt
    /dev/null` did it)."""
    return path.exists() and not path.is_file() and not path.is_dir()


def replace_text(path: Path, text: str, newline: str | None = None) -> None:
    """Write `text` to `path` (UTF-8; `newline` as open() takes it), replacing the file in one step. An
    OSError (ENOSPC, EFBIG, EROFS...) is raised with the file as it was and no temporary file left."""
    if special_file(path):  # the REPL's `:save /dev/stdout`
        with path.open("w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
        return
    part = path.with_name(f".{path.name}.part")
    try:
        with part.open("w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            shutil.copymode(path, part)  # an executable or private flow keeps its mode
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
