"""How the sql connector reads PostgreSQL values that psycopg reads wrong or cannot read (psycopg
loaders registered on each connection).

- Intervals: psycopg reads an interval as a Python timedelta, a year as 365 days and a month as 30:
  '1 mon' read as 30 days and '1 year 2 mons 3 days' as 428 days, so a date plus it was wrong and the
  value written back was another interval. An interval with years or months has no flowlang value (a
  duration is a fixed length of time): it is read as its ISO 8601 text (P1Y2M3DT4H5M6.5S, as
  PostgreSQL's intervalstyle iso_8601 writes it, which PostgreSQL reads back); one of days and time
  alone is still a duration.
- Dates and timestamps a Python date cannot hold: 'infinity', '-infinity' (common in the valid_to of
  a history table), a date before year 1 ('0044-03-15 BC') or after 9999 failed the whole query
  ('timestamp too large (after year 10K)'): such a value is read as its text, which PostgreSQL reads
  back.
- Times of day a Python time cannot hold: PostgreSQL's '24:00:00' (the end of a day, as opening
  hours and shift tables keep it) failed the whole query ("can't parse time '24:00:00': hour must be
  in 0..23"): it is read as its text, as other times are ('24:00:00', '24:00:00+00' for timetz)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_PARTS = re.compile(r"(?:([-+]?\d+) years? ?)?(?:([-+]?\d+) mons? ?)?(?:([-+]?\d+) days? ?)?"
                    r"(?:([-+])?(\d+):(\d+):(\d+(?:\.\d+)?))?$")


def iso_interval(text: str) -> str:
    """An interval in PostgreSQL's output ('-1 years -2 mons +3 days -04:05:06.5') as ISO 8601
    (P-1Y-2M3DT-4H-5M-6.5S); the text itself when it is not in that form."""
    found = _PARTS.match(text.strip())
    if not found:
        return text
    years, months, days, sign, hours, minutes, seconds = found.groups()
    out = "P" + "".join(f"{int(n)}{unit}" for n, unit in ((years, "Y"), (months, "M"), (days, "D"))
                        if n and int(n))
    if hours is not None:
        minus = "-" if sign == "-" else ""
        second = seconds.rstrip("0").rstrip(".") if "." in seconds else seconds
        time = "".join(f"{minus}{n}{unit}" for n, unit in ((int(hours), "H"), (int(minutes), "M"),
                                                           (Decimal(second or 0), "S")) if n)
        out += f"T{time}" if time else ""
    return out if out != "P" else "PT0S"


def register_loaders(dbapi_connection: Any) -> None:
    """On a psycopg 3 connection: intervals with years or months, and dates, timestamps and times out
    of a Python value's range, read as their text."""
    adapters = getattr(dbapi_connection, "adapters", None)
    if adapters is None:  # another driver
        return
    import psycopg
    from psycopg.types.datetime import (
        DateLoader,
        IntervalLoader,
        TimeLoader,
        TimestampLoader,
        TimestamptzLoader,
        TimetzLoader,
    )

    for name, base in (("date", DateLoader), ("timestamp", TimestampLoader), ("timestamptz", TimestamptzLoader),
                       ("time", TimeLoader), ("timetz", TimetzLoader)):
        class OutOfRangeAsText(base):  # type: ignore[valid-type, misc]
            def load(self, data: Any) -> Any:
                try:
                    return super().load(data)
                except psycopg.DataError:  # infinity, BC, after 9999, 24:00:00
                    return bytes(data).decode("ascii", "replace")

        adapters.register_loader(name, OutOfRangeAsText)

    class CalendarIntervalLoader(IntervalLoader):
        def load(self, data: Any) -> Any:
            raw = bytes(data)
            if b"mon" in raw or b"year" in raw:
                return iso_interval(raw.decode("ascii", "replace"))
            return super().load(data)

    adapters.register_loader("interval", CalendarIntervalLoader)
