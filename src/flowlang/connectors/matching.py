"""`find(field: value, ...)` for connectors that hold records locally (memory, file)."""

from __future__ import annotations

from typing import Any

from flowlang.runtime.values import equal, to_text


def matches(record: Any, fields: dict[str, Any]) -> bool:
    """A record matches when each given field is equal (numbers and their text count as equal,
    so a CSV's "7" matches 7)."""
    if type(record) is not dict:
        return False
    for key, wanted in fields.items():
        have = record.get(key)
        if equal(have, wanted):
            continue
        if have is not None and wanted is not None and to_text(have) == to_text(wanted):
            continue
        return False
    return True
