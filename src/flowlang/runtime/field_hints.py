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

TEXT_SHOWN = 60  # characters of a text a message about its field shows


def text_shown(value: object) -> str:
    """How a message about a field of a text shows the text (after `of string`): its start, so an API's
    answer that was a page rather than JSON (`http()` gives a text/html answer as text) says so; '' for
    any other value, and for a secret (its text is never shown)."""
    if type(value) is not str:
        return ""
    import json

    start = json.dumps(value[:TEXT_SHOWN], ensure_ascii=False)
    return f" {start}" if len(value) <= TEXT_SHOWN else f" {start} (the start of {len(value):,} characters)"


def field_hint(kind: str, name: str) -> str:
    """What the run's message about field `name` of a value of `kind` (type_name) that has none adds."""
    return FIELD_FUNCTIONS.get((kind, name), "") or (list_field_hint(name) if kind == "list" else "")


def list_field_hint(name: str) -> str:
    """What a field read of a list adds (`c.tier` of what `call api.get("/customers", ...) as c` answered,
    a list of records): an item's field, each item's, or `lookup` for the first record."""
    if not name.isidentifier():
        return ""
    return (f": a list has no fields: read an item's, x[0].{name}, or each item's, [i.{name} for i in x] (what "
            "`call ... as x` answered is the whole list; `lookup ... as x` gives its first record)")
