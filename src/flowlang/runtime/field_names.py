"""How the field-typo warnings show a field's name: a name that is no plain name (a CSV header cell with
spaces, ' name ') is shown quoted, and read with brackets, since `r. name ` cannot be written."""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shown_name(name: str) -> str:
    """`name` as a list of fields shows it: as it is, or quoted when it is no plain name."""
    return name if _PLAIN.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def meant_field(variable: str, meant: str) -> str:
    """The did-you-mean of a field read, `meant` the close name the records have."""
    if _PLAIN.fullmatch(meant):
        return f"did you mean '{meant}'?"
    quoted = json.dumps(meant, ensure_ascii=False)
    spaces = " (the name has spaces around it, as the header cell has)" if meant != meant.strip() else ""
    return f"did you mean {quoted}? write {variable}[{quoted}]{spaces}"
