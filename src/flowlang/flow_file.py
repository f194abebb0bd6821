"""Reading a .flow file's text: every way it can fail is a UsageError that names the file."""

from __future__ import annotations

import io
from pathlib import Path

from flowlang.errors import UsageError
from flowlang.source import MAX_SOURCE

MAX_FLOW_BYTES = MAX_SOURCE * 4  # UTF-8 of the most characters a flow may have: no flow is longer


def read_flow_text(file: Path) -> str:
    """The text of a flow file (UTF-8, any line ending a newline); a missing file, a folder, an unreadable
    or non-UTF-8 file, or one longer than any flow may be, is a UsageError saying so. At most
    MAX_FLOW_BYTES + 1 bytes are read: `flowlang check /dev/zero` (or a path to a device, or a file
    that grows without end) read until memory ran out, where a flow past MAX_SOURCE is refused anyway."""
    try:
        data = read_at_most(file, MAX_FLOW_BYTES + 1)
        if len(data) > MAX_FLOW_BYTES:
            raise UsageError(f"{file} is longer than {MAX_FLOW_BYTES:,} bytes, more than the {MAX_SOURCE:,} "
                             "characters a flow may have: is it a flow? (keep data in files)")
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
    except FileNotFoundError:
        raise UsageError(f"no such flow file: {file}") from None
    except IsADirectoryError:
        raise UsageError(f"{file} is a folder: give the .flow file in it") from None
    except OSError as e:
        raise UsageError(f"cannot read {file}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UsageError(not_utf8(str(file), e)) from None


def read_at_most(file: Path, limit: int) -> bytes:
    """The file's first `limit` bytes, read in chunks: read(limit) allocates all of `limit` at once (8 MB
    for each flow file loaded, which a test of a flat-memory read counted as the read's)."""
    parts: list[bytes] = []
    got = 0
    with file.open("rb") as fh:
        while got < limit and (part := fh.read(min(1 << 16, limit - got))):
            parts.append(part)
            got += len(part)
    return b"".join(parts)


def not_utf8(name: str, error: UnicodeDecodeError) -> str:
    """What a text file that is not UTF-8 says: the place of its first bad byte as name:line:col (a
    Latin-1 `é` in a string), where it said only 'at byte 9'."""
    before = bytes(error.object[:error.start]).decode("utf-8", errors="replace")
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return (f"cannot read {name}: it is not UTF-8 text: the byte {error.object[error.start]:#04x} at "
            f"{name}:{line}:{col} ({error.reason}; save the file as UTF-8)")
