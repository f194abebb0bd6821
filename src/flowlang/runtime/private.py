"""Files flowlang keeps for the user alone (the store with its records, errors and state; the REPL
history) are created readable and writable by their owner only (0600), whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

MODE = 0o600


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 unless it exists (an existing file keeps its mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    except FileExistsError:
        return path
    os.close(fd)
    return path
