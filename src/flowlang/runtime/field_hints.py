"""What a message about a field of a value that has none adds: the function flowlang has for a field
other languages give values (`s.length`: len(s); `d.year`: format_date). Shared by the run and by
`flowlang check`, which says it of a constant (`"abc".length`) before the run."""

from __future__ import annotations

# fields other languages give values, and the function flowlang has for each
_LENGTH = ": values have no fields; len(x) gives its length"
_PARTS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}
FIELD_FUNCTIONS: dict[tuple[str, str], str] = {
    **{(kind, name): _LENGTH for kind in ("list", "string") for name in ("length", "size", "count", "len")},
    **{(kind, name): f': values have no fields; format_date(d, "{code}") gives it as text'
       for kind in ("datetime", "date") for name, code in _PARTS.items()
       if kind == "datetime" or name in ("year", "month", "day")},
}
