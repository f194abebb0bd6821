"""Date and time builtins. Datetimes are timezone-aware (UTC when the text has no offset)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flowlang.runtime.builtins.registry import Builtin, BuiltinError, need
from flowlang.runtime.values import type_name


def _parse_iso(text: str, fn: str) -> datetime:
    raw = text.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BuiltinError(f"{fn}(): {text!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_datetime(value: Any, fn: str) -> datetime:
    t = type(value)
    if t is datetime:
        result: datetime = value
        return result
    if t is date:
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if t is str:
        return _parse_iso(value, fn)
    if t is int or t is Decimal:
        return datetime.fromtimestamp(float(value), UTC)
    raise BuiltinError(f"{fn}() needs a datetime, date, ISO 8601 string or epoch seconds, got {type_name(value)}",
                       "type")


def now() -> Any:
    """now(): the current time (UTC)."""
    return datetime.now(UTC)


def today() -> Any:
    """today(): the current date (UTC)."""
    return datetime.now(UTC).date()


def date_(value: Any) -> Any:
    """date(x): the date part of a datetime or ISO 8601 string (null gives null)."""
    if value is None:
        return None
    if type(value) is date:
        return value
    if type(value) is str and len(value) == 20 and value[19] == "Z":  # the common 2024-05-01T10:00:00Z
        try:
            return datetime.fromisoformat(value[:19]).date()
        except ValueError:
            pass
    return as_datetime(value, "date").date()


def datetime_(value: Any) -> Any:
    """datetime(x): a datetime from an ISO 8601 string, a date or epoch seconds (null gives null)."""
    if value is None:
        return None
    return as_datetime(value, "datetime")


def format_date(value: Any, fmt: Any = "%Y-%m-%d") -> Any:
    """format_date(d, "%Y-%m-%d"): a date or datetime as text, strftime-style."""
    if value is None:
        return None
    need(fmt, "string", "format_date", "format")
    moment: date | datetime = value if type(value) is date else as_datetime(value, "format_date")
    try:
        return moment.strftime(fmt)
    except ValueError as e:
        raise BuiltinError(f"format_date(): {e}") from None


def parse_date(text: Any, fmt: Any) -> Any:
    """parse_date(s, fmt): a datetime read from text in a strptime-style format (UTC unless it says)."""
    if text is None:
        return None
    need(text, "string", "parse_date")
    need(fmt, "string", "parse_date", "format")
    try:
        value = datetime.strptime(text, fmt)
    except ValueError as e:
        raise BuiltinError(f"parse_date(): {e}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _duration(amount: Any, fn: str, unit: str) -> timedelta:
    need(amount, "number", fn)
    return timedelta(**{unit: float(amount) if type(amount) is Decimal else amount})


def days(n: Any) -> Any:
    """days(n): a duration of n days (datetime + days(1))."""
    return _duration(n, "days", "days")


def hours(n: Any) -> Any:
    """hours(n): a duration of n hours."""
    return _duration(n, "hours", "hours")


def minutes(n: Any) -> Any:
    """minutes(n): a duration of n minutes."""
    return _duration(n, "minutes", "minutes")


def seconds(n: Any) -> Any:
    """seconds(n): a duration of n seconds; seconds(duration) gives its length in seconds."""
    if type(n) is timedelta:
        total = Decimal(n.days * 86400 + n.seconds) + Decimal(n.microseconds) / 1_000_000
        return int(total) if total == total.to_integral_value() else total
    return _duration(n, "seconds", "seconds")


_TABLE: list[tuple[str, Callable[..., Any]]] = [
        ("now", now), ("today", today), ("date", date_), ("datetime", datetime_), ("format_date", format_date),
        ("parse_date", parse_date), ("days", days), ("hours", hours), ("minutes", minutes), ("seconds", seconds),
]
BUILTINS = tuple(
    Builtin.of(name, fn, pure=name not in ("now", "today")) for name, fn in _TABLE
)
