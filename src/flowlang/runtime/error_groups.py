"""How `flowlang errors --group` groups a flow's errors: by the shape of their message, the message with
the values in it replaced by placeholders, so that "order 17 not found" and "order 18 not found" are
one group of two (`order <n> not found`), shown with its first message as the example.

What counts as a value: a number (`17`, `12.50`; the digits of `P-2` or `ORD-0042`), an id that mixes
letters and digits (`cus_9fX2Qw`, a UUID, a hash), and a quoted text without spaces (`'A-1'`,
`"ann@x.org"`: values a flow puts in quotes). A quoted text with spaces (a message an API gave), a
JSON key (`"error":`) and the words around them are kept, so errors of different kinds stay apart."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flowlang.lazy_dataclass import dataclass

FIRST_IDS = 6  # ids kept per group (the CLI shows five and says whether there are more)

_QUOTED = re.compile(r"""(?<![\w'"`])(['"`])[^\s'"`]{1,200}\1(?!\s*:)(?![\w'"`])""")
# a word of letters and digits, maybe joined by _ or - (`cus_9fX2Qw`, a UUID): an id when it has 8
# characters or more; a shorter one keeps its letters and only its numbers are values (`P-2`: `P-<n>`)
_ID = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*(?![\w-])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
ID_LENGTH = 8


def message_shape(message: str) -> str:
    """The message with its values replaced: `bad ref '<value>' for order <n>`."""
    shape = _QUOTED.sub(lambda m: f"{m.group(1)}<value>{m.group(1)}", message)
    shape = _ID.sub(lambda m: "<id>" if len(m.group()) >= ID_LENGTH else m.group(), shape)
    return _NUMBER.sub("<n>", shape)


@dataclass
class ErrorGroup:
    """The errors of one message shape: how many, the first one's message and place, the first ids, and
    whether their messages differ (then the shape says what they have in common)."""

    shape: str
    message: str  # the first error's
    location: str  # the first error's
    count: int
    ids: list[int]
    varied: bool = False


def group_errors(rows: Iterable[tuple[int, str, str]]) -> list[ErrorGroup]:
    """(id, message, location) rows, oldest first, as groups, the largest first (then the oldest)."""
    groups: dict[str, ErrorGroup] = {}
    for error_id, message, location in rows:
        shape = message_shape(message)
        group = groups.get(shape)
        if group is None:
            groups[shape] = ErrorGroup(shape, message, location, 1, [error_id])
            continue
        group.count += 1
        if len(group.ids) < FIRST_IDS:
            group.ids.append(error_id)
        if message != group.message:
            group.varied = True
    return sorted(groups.values(), key=lambda g: (-g.count, g.ids[0]))
