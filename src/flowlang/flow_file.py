"""Reading a .flow file's text: every way it can fail is a UsageError that names the file."""

from __future__ import annotations

from pathlib import Path

from flowlang.errors import UsageError


def read_flow_text(file: Path) -> str:
    """The text of a flow file (UTF-8); a missing file, a folder, an unreadable or non-UTF-8 file is
    a UsageError saying so."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such flow file: {file}") from None
    except IsADirectoryError:
        raise UsageError(f"{file} is a folder: give the .flow file in it") from None
    except OSError as e:
        raise UsageError(f"cannot read {file}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read {file}: it is not UTF-8 text ({e.reason} at byte {e.start})") from None
