"""Date and time builtins. Datetimes are timezone-aware (UTC when the text has no offset)."""

from __future__ import annotations

import calendar
import re
import time as time_module
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flowlang.runtime.builtins.registry import Builtin, BuiltinError, check_items, need
from flowlang.runtime.tape import drawn
from flowlang.runtime.values import type_name

_ISO_SHAPE = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d(:\d\d){0,2}|$)", re.ASCII)  # ISO 8601's form, whatever the numbers


def blank(value: Any) -> bool:
    """An empty text, or one of only spaces: an empty CSV cell, which a date function reads as null, as
    number("") is (date(r.shipped_at) of a row not shipped yet failed the record)."""
    return type(value) is str and not value.strip()


_LOCAL_DATE = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(:\d{2})?)?")


def _local_shape(raw: str) -> str:
    """The parse_date() that reads a date written the way people write one (01/05/2024, 1.5.2024 14:30),
    which is no ISO 8601 text, or ''."""
    found = _LOCAL_DATE.fullmatch(raw)
    if found is None:
        return ""
    sep = found.group(2)
    year = "%Y" if len(found.group(4)) == 4 else "%y"
    clock = "" if found.group(5) is None else " %H:%M" + (":%S" if found.group(7) else "")
    first, second = int(found.group(1)), int(found.group(3))
    day_first = f"%d{sep}%m{sep}{year}{clock}"
    month_first = f"%m{sep}%d{sep}{year}{clock}"
    if first > 12:
        return f': read it with parse_date(x, "{day_first}")'
    if second > 12:
        return f': read it with parse_date(x, "{month_first}")'
    return f': read it with parse_date(x, "{day_first}"), or "{month_first}" when the month comes first'


def _parse_iso(text: str, fn: str, zone: tzinfo = UTC) -> datetime:
    raw = text.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            if zone is UTC:
                return datetime(d.year, d.month, d.day, tzinfo=UTC)
            value = datetime(d.year, d.month, d.day)
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        reason = str(e)
        if _ISO_SHAPE.match(raw) and ("out of range" in reason or "must be in" in reason):  # 2026-02-29
            raise BuiltinError(f"{fn}(): {text!r} is not a real date or time ({reason})") from None
        digits = raw.removeprefix("-")
        hint = (' (epoch seconds as text? datetime(int(s)), or datetime(int(s), unit: "ms") for milliseconds)'
                if digits.isascii() and digits.isdigit() and len(digits) > 8 else _local_shape(raw))
        raise BuiltinError(f"{fn}(): {text!r} is not an ISO 8601 date or time{hint}") from None
    return in_range(value, fn, text) if value.tzinfo is not None else on_clock(value, zone, fn, text)


def on_clock(wall: datetime, zone: tzinfo, fn: str, text: str) -> datetime:
    """A time of day without an offset, read on the clock of `zone`. A time the clocks skip (02:30
    when they move from 02:00 to 03:00) is an error; a time they show twice (when they move back) is
    the first of the two."""
    if zone is UTC:
        return wall.replace(tzinfo=UTC)
    value = wall.replace(tzinfo=zone, fold=0)
    try:
        back = value.astimezone(UTC).astimezone(zone)
    except OverflowError:
        raise BuiltinError(f"{fn}(): {text!r} is out of the range of dates (years 1 to 9999 in UTC)") from None
    if back.replace(tzinfo=None) != wall:
        raise BuiltinError(f"{fn}(): {text!r} is not a time on the clock of {zone}: the clocks skip it "
                           "(daylight saving time begins)")
    return value


def in_range(value: datetime, fn: str, text: str) -> datetime:
    """`value` (aware), refused when the instant it names is past the years 1 to 9999 in UTC
    ("9999-12-31T23:00:00-05:00"): Python builds it, then fails to compare or move it."""
    if value.year in (1, 9999):
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise BuiltinError(f"{fn}(): {text!r} is out of the range of dates (years 1 to 9999 in UTC)") from None
    return value


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
        return from_epoch(value, "s", fn)
    raise BuiltinError(f"{fn}() needs a datetime, date, ISO 8601 string or epoch seconds, got {type_name(value)}",
                       "type")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}


def from_epoch(value: int | Decimal, unit: str, fn: str) -> datetime:
    """The instant `value` seconds (or ms, us) after 1970-01-01T00:00:00Z, exact to the microsecond."""
    micros = int(Decimal(value) * EPOCH_UNITS[unit])
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        hint = ' (for epoch milliseconds use datetime(n, unit: "ms"))' if unit == "s" else ""
        raise BuiltinError(f"{fn}(): {value} {unit} since 1970 is out of the range of dates{hint}") from None


def now() -> Any:
    """now(): the current time, in UTC.

    One value per call. `flowlang test` replays the times a recorded run saw, so a flow that uses now()
    tests the same every time. For "since the last run", `job.last_success_at` is usually what you want.

    Examples:
        now() - hours(24)
        format_date(now(), "%Y-%m-%dT%H:%M:%SZ")
    """
    return drawn("now", lambda: datetime.now(UTC))


def today() -> Any:
    """today(): the current date, in UTC.

    It is UTC's date, so a job run in Oslo between 00:00 and 01:00 (02:00 in summer) gets the date
    before Oslo's; the date on a zone's clock is date(to_zone(now(), "Europe/Oslo")).

    Examples:
        format_date(today(), "%Y%m%d")
    """
    return drawn("today", lambda: datetime.now(UTC).date())


def date_(value: Any) -> Any:
    """date(x): the date part of a datetime, a date or ISO 8601 text (null and "" give null).

    A number counts seconds since 1970, as in datetime(), so date(20240101) is 1970-08-23: read a
    YYYYMMDD number with parse_date(str(n), "%Y%m%d"). An empty text (an empty CSV cell, or only spaces)
    gives null, as number("") does; datetime(), parse_date(), format_date() and to_zone() read it so too.

    Examples:
        date("2024-05-01T10:00:00Z") -> "2024-05-01"
        date(datetime("2024-05-01T23:30:00-02:00")) -> "2024-05-01"
        date("") -> null
    """
    t = type(value)
    if t is str:
        if len(value) == 20 and value[19] == "Z":  # the common 2024-05-01T10:00:00Z
            try:
                return datetime.fromisoformat(value[:19]).date()
            except ValueError:
                pass
        if not value.strip():  # blank()
            return None
    elif value is None:
        return None
    elif t is date:
        return value
    return as_datetime(value, "date").date()


def datetime_(value: Any, unit: Any = "s", zone: Any = "UTC") -> Any:
    """datetime(x, unit: "s", zone: "UTC"): a datetime from ISO 8601 text, a date, or a number since 1970.

    A number counts seconds since 1970-01-01T00:00:00Z; unit: "ms" milliseconds (JavaScript, Java and
    many APIs), unit: "us" microseconds, exactly. Text without an offset is read on the clock of zone
    (UTC unless given: zone: "Europe/Oslo" reads "2024-05-01 14:30" as Oslo's 14:30); a time the clocks
    skip when daylight saving time begins is an error, one they show twice when it ends is the first.
    Text with an offset, a datetime and a number name their instant already. Digits past the
    microsecond are cut (.123456789 is .123456). Text that is not ISO 8601 fails the record
    (parse_date() reads other formats; epoch seconds as text: datetime(int(s))); "" (an empty CSV cell)
    gives null, as null does.

    Examples:
        datetime("2024-05-01T12:00:00+02:00") -> "2024-05-01T12:00:00+02:00"
        datetime("2024-05-01") -> "2024-05-01T00:00:00Z"
        datetime(1714564800) -> "2024-05-01T12:00:00Z"
        datetime(1714564800000, unit: "ms") -> "2024-05-01T12:00:00Z"
        datetime("2024-05-01T12:00:00+02:00") == datetime("2024-05-01T10:00:00Z") -> true
        datetime("2024-05-01 14:30", zone: "Europe/Oslo") -> "2024-05-01T14:30:00+02:00"
    """
    if value is None:
        return None
    _unit_rule(unit)
    clock = _clock_zone(zone, "datetime")
    if blank(value):
        return None
    if type(value) is int or type(value) is Decimal:
        return from_epoch(value, unit, "datetime")
    if type(value) is str:
        return _parse_iso(value, "datetime", clock)
    if type(value) is date and clock is not UTC:
        return on_clock(datetime(value.year, value.month, value.day), clock, "datetime", value.isoformat())
    return as_datetime(value, "datetime")


def _clock_zone(zone: Any, fn: str) -> tzinfo:
    """The zone of a `zone:` argument: the clock that text without an offset is read on."""
    need(zone, "string", fn, "zone")
    return time_zone(zone, fn)


def _unit_rule(unit: Any) -> None:
    need(unit, "string", "datetime", "unit")
    if unit not in EPOCH_UNITS:
        raise BuiltinError(f'datetime(): unit must be "s", "ms" or "us", got {unit!r}')


def _zone_rule(fn: str) -> Callable[[Any], object]:
    def rule(zone: Any) -> None:
        need(zone, "string", fn, "zone")
        time_zone(zone, fn)
    return rule


def to_zone(value: Any, zone: Any) -> Any:
    """to_zone(d, zone): the same instant on the clock of a zone: "UTC", an IANA name or an offset.

    Datetimes compare by the instant they name, so to_zone(d, zone) == d is always true; only the way
    it is shown (and format_date) changes.

    Examples:
        to_zone("2024-05-01T10:00:00Z", "Europe/Oslo") -> "2024-05-01T12:00:00+02:00"
        to_zone("2024-05-01T10:00:00Z", "-05:30") -> "2024-05-01T04:30:00-05:30"
        format_date(to_zone("2024-12-31T23:30:00Z", "Europe/Berlin"), "%Y") -> "2025"
    """
    if value is None:
        return None
    need(zone, "string", "to_zone", "zone")
    if blank(value):
        return None
    moment = as_datetime(value, "to_zone")
    try:
        return moment.astimezone(time_zone(zone))
    except OverflowError:
        raise BuiltinError(f"to_zone(): {moment.isoformat()} on the clock of {zone!r} is out of the range of "
                           "dates (years 1 to 9999)") from None


def time_zone(name: str, fn: str = "to_zone") -> tzinfo:
    """A zone by name: UTC/Z, an IANA name (Europe/Berlin) or a fixed offset (+02:00, -0530)."""
    zone = zone_named(name)
    if zone is None:
        raise BuiltinError(f"{fn}(): {unknown_zone(name)}")
    return zone


def unknown_zone(name: str) -> str:
    """What is said of a name that is no zone, with the zone it differs from by case or a letter or two,
    or the offset a "UTC+5" means."""
    import difflib  # only for a name that is no zone

    names, key = _zone_names(), name.strip().lower()
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.85)
    near = names.get(key) or _offset_meant(key) or (names[close[0]] if close else None)
    hint = f"; did you mean {near!r}?" if near else ""
    return (f"unknown time zone {name!r} (use \"UTC\", an IANA name like \"Europe/Berlin\" or an offset like "
            f"\"+02:00\"{hint})")


_UTC_PLUS = re.compile(r"(?:utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?")


def _offset_meant(key: str) -> str | None:
    """The offset "UTC+5" or "GMT-03:30" means, as a zone is written here (+05:00, -03:30)."""
    found = _UTC_PLUS.fullmatch(key)
    if found is None or int(found.group(2)) > 23 or int(found.group(3) or 0) > 59:
        return None
    return f"{found.group(1)}{int(found.group(2)):02d}:{found.group(3) or '00'}"


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    """The IANA zone names by their lower case (read once, when a name is not found)."""
    from zoneinfo import available_timezones

    return {n.lower(): n for n in sorted(available_timezones())}


def zone_named(name: str) -> tzinfo | None:
    """The zone `name` gives (UTC, an IANA name or a fixed offset), or None: one rule for to_zone(), the
    zone: of datetime() and parse_date(), and the tz: of a schedule."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    if text[:1] in "+-" and len(text) > 1:
        digits = text[1:].replace(":", "")
        if digits.isascii() and digits.isdigit() and len(digits) in (2, 4):  # "²²" is no offset
            hours, mins = int(digits[:2]), int(digits[2:] or 0)
            if hours < 24 and mins < 60:
                delta = timedelta(hours=hours, minutes=mins)
                return timezone(-delta if text[0] == "-" else delta)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # (and sysconfig): only a flow that names a zone

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("Europe")
        return None


def format_date(value: Any, fmt: Any = "%Y-%m-%d") -> Any:
    """format_date(d, fmt): a date or datetime as text, in a strftime format (default "%Y-%m-%d").

    %Y year, %m month, %d day, %H hour, %M minute, %S second, %z offset, %A weekday, %B month name (in
    English). ISO 8601 text is read as a datetime first. A code the C library does not know (%Q, a
    lone % at the end) is an error, as in parse_date(); %% is a literal %. A format with no code
    ("Q1"), or with another language's spelling in its text (YYYY, yyyy, MM, DD, dd, HH, hh, mm, ss:
    "YYYY-MM-DD", "%Y-MM-DD"), is an error whose message gives it in these codes ("%Y-%m-%d"), not a
    text written the same for every date. %Y writes a year before 1000
    in four digits (0999), as ISO 8601 does. %s is the seconds since 1970-01-01T00:00:00Z (a date's
    from its midnight in UTC), whatever the zone. A NUL character (`\\u0000`) in the format is an error (the C
    library would end the text there).

    Examples:
        format_date(datetime("2024-05-01T10:00:00Z"), "%d.%m.%Y") -> "01.05.2024"
        format_date("2024-05-01T10:00:00Z", "%Y-%m-%dT%H:%M:%SZ") -> "2024-05-01T10:00:00Z"
        format_date(date("2024-05-01")) -> "2024-05-01"
    """
    if value is None:
        return None
    _format_rule(fmt)
    if blank(value):
        return None
    moment: date | datetime = value if type(value) is date else as_datetime(value, "format_date")
    if "%s" in fmt:  # the C library reads the clock as the machine's local time: hours off outside UTC
        seconds = calendar.timegm(moment.utctimetuple() if type(moment) is datetime else moment.timetuple())
        fmt = _DIRECTIVE.sub(lambda m: str(seconds) if m.group() == "%s" else m.group(), fmt)
    if moment.year < 1000:
        fmt = _padded_years(fmt, moment)
    try:
        text = moment.strftime(fmt)
    except UnicodeEncodeError:
        raise  # broken text in the format: the call says so, as for every builtin
    except ValueError as e:
        raise BuiltinError(f"format_date(): {e}") from None
    check_items(len(text), "format_date", text=True)  # "%c" is 24 characters: a long format of codes grows 12 times
    return text


def _format_rule(fmt: Any) -> None:
    """What format_date() refuses in a format (judged once per format text: it runs for every record)."""
    need(fmt, "string", "format_date", "format")
    problem = _format_problem(fmt)
    if problem is not None:
        raise BuiltinError(problem)


@lru_cache(maxsize=256)
def _format_problem(fmt: str) -> str | None:
    """_format_rule's words for a format text, or None (a loop formats every record with the same few
    formats: its regular expressions cost more than the strftime itself)."""
    for code in _DIRECTIVE.findall(fmt):
        if not _known_directive(code):
            return (f"format_date(): '{code}' is not a format code (use %Y, %m, %d, %H, %M, %S, "
                    "%z, %A, %B, ...; %% for a literal %)")
    if "\x00" in fmt:  # the C library stops at it: "a\x00b" wrote "a"
        return "format_date(): the format holds a NUL character (\\u0000), which would end it there"
    codes = [c for c in _DIRECTIVE.findall(fmt) if c != "%%"]
    tokens = [t for part in _DIRECTIVE.split(fmt) for t in _OTHER_TOKENS.findall(part)]
    if codes and not tokens:
        return None
    written = _DIRECTIVE.sub(lambda m: m.group().replace("%", "\x00"), fmt)  # directives kept as they are
    meant = _OTHER_TOKENS.sub(lambda m: _TOKEN_CODES[m.group()], written).replace("\x00", "%")
    if not codes:
        return (f"format_date(): the format {fmt!r} has no format code, so every date would be written "
                f"as {fmt.replace('%%', '%')!r}: write " + (repr(meant) if tokens else "the codes")
                + " (%Y year, %m month, %d day, %H hour, %M minute, %S second)")
    return (f"format_date(): {tokens[0]!r} in the format {fmt!r} is written as it is, not as a part of "
            f"the date: write {meant!r} (%Y year, %m month, %d day, %H hour, %M minute, %S second)")


# the date parts of other languages' formats (Java, .NET, moment.js, Excel), as whole words of a format's
# text: format_date(d, "YYYY-MM-DD") wrote "YYYY-MM-DD" for every date
_TOKEN_CODES = {"yyyy": "%Y", "YYYY": "%Y", "yy": "%y", "YY": "%y", "MM": "%m", "dd": "%d", "DD": "%d",
                "HH": "%H", "hh": "%I", "mm": "%M", "ss": "%S"}
_OTHER_TOKENS = re.compile(r"(?<![A-Za-z])(?:" + "|".join(sorted(_TOKEN_CODES, key=len, reverse=True))
                           + r")(?![A-Za-z])")


def _padded_years(fmt: str, moment: date) -> str:
    """`fmt` with the year codes of a year before 1000 written out in four digits, as ISO 8601 and date()
    have them: the C library writes year 999 as '999' ('999-01-01', which date() refuses)."""
    year, iso_year = f"{moment.year:04d}", f"{moment.isocalendar()[0]:04d}"
    written = {"%Y": year, "%F": f"{year}-%m-%d", "%G": iso_year}
    return _DIRECTIVE.sub(lambda m: written.get(m.group(), m.group()), fmt)


_DIRECTIVE = re.compile(r"%[-_0^#]?[A-Za-z%]|%$")


@lru_cache(maxsize=256)
def _known_directive(code: str) -> bool:
    """The C library leaves a code it does not know as it is (%Q stays "%Q"): such a code is a typo."""
    return code != "%" and date(2000, 1, 1).strftime(code) != code


def parse_date(text: Any, fmt: Any, zone: Any = "UTC") -> Any:
    """parse_date(s, fmt, zone: "UTC"): a datetime read from text in a strptime format (UTC unless the text says).

    The format uses the codes of format_date(); text that does not fit the format fails the record. A
    code may appear once ("%d/%m/%d" is an error). A format must read a date: one with no year, month
    or day code ("%a", "%H:%M", "") is an error, not 1900-01-01, and so is one with no year code
    ("%d.%m", "%b %d"), not a date in 1900. %s is not read (epoch seconds in text:
    datetime(int(s))). %Z reads the zone names UTC and GMT; any other name
    (EST, which Python reads on a machine in New York) is an error without a %z offset beside it, not
    taken for UTC. Text without an offset is read on the clock of zone, as in datetime() (zone:
    "Europe/Oslo": a local time of Oslo). Spaces around the text are ignored (" 01.05.2024 ", as
    datetime() and number() ignore them), and "" (an empty CSV cell) gives null.

    Examples:
        parse_date("01.05.2024", "%d.%m.%Y") -> "2024-05-01T00:00:00Z"
        parse_date("05/01/2024 14:30", "%m/%d/%Y %H:%M") -> "2024-05-01T14:30:00Z"
        parse_date("2024-05-01 14:30 +0200", "%Y-%m-%d %H:%M %z") -> "2024-05-01T14:30:00+02:00"
        parse_date("01.05.2024 14:30", "%d.%m.%Y %H:%M", zone: "Europe/Oslo") -> "2024-05-01T14:30:00+02:00"
    """
    if text is None:
        return None
    need(text, "string", "parse_date")
    codes = _parse_format_codes(fmt)
    clock = _clock_zone(zone, "parse_date")
    if blank(text):  # after the format's and the zone's rules: a bad one is the flow's mistake, in every record
        return None
    try:
        value, text = _strptime(text, fmt)
    except ValueError as e:
        if str(e).startswith("offset must be a timedelta"):  # %z read +2500: Python names its own types
            raise BuiltinError(f"parse_date(): the offset in {text!r} is not between -24:00 and +24:00") from None
        raise BuiltinError(f"parse_date(): {_unfit(text, fmt, str(e))}") from None
    if "%j" in codes:
        _real_day_of_year(text, fmt, value)
    if "%Z" in codes and "%z" not in codes:  # with %z the offset is read, the name is a label
        _zone_name_is_utc(text, fmt)
    return in_range(value, "parse_date", text) if value.tzinfo is not None else on_clock(value, clock, "parse_date",
                                                                                         text)


def _unfit(text: str, fmt: str, reason: str) -> str:
    """Why strptime refused `text`, naming it: Python's "day is out of range for month" and "unconverted
    data remains: 0" said neither the text nor the format."""
    if repr(text) in reason:  # "time data '...' does not match format '...'"
        return reason
    if "out of range" in reason:
        return f"{text!r} is not a real date or time ({reason})"
    return f"{text!r} does not fit the format {fmt!r} ({reason})"


def _strptime(text: str, fmt: str) -> tuple[datetime, str]:
    """strptime, and again without the spaces around the text when it does not fit with them; the value
    and the text it was read from (which the checks after it read again)."""
    try:
        return datetime.strptime(text, fmt), text
    except ValueError:
        stripped = text.strip()
        if stripped == text:
            raise
    return datetime.strptime(stripped, fmt), stripped


# the codes that read a date's year, month or day (%c and %x a whole date of the locale)
_DATE_CODES = frozenset("YyGmbBdjcx")
# those that read its year (%c and %x a whole date of the locale, year included)
_YEAR_CODES = frozenset("YyGcx")


def _parse_format_codes(fmt: Any) -> list[str]:
    """The codes of a parse_date() format (not %%), refusing what parse_date() refuses in a format."""
    need(fmt, "string", "parse_date", "format")
    codes = [c for c in _DIRECTIVE.findall(fmt) if c != "%%"]
    twice = next((c for i, c in enumerate(codes) if c in codes[:i]), None)
    if twice is not None:  # Python's strptime fails on it inside its regex engine (and took minutes on a long one)
        raise BuiltinError(f"parse_date(): the format has {twice} more than once; a code may be read once")
    if "%s" in codes:  # format_date() writes it; Python's strptime said "'s' is a bad directive in format '%s'"
        raise BuiltinError('parse_date(): %s (seconds since 1970) is not read by a format: for epoch seconds '
                           'in text use datetime(int(s)) (datetime(int(s), unit: "ms") for milliseconds)')
    if not any(c[-1] in _DATE_CODES for c in codes):  # strptime made the date up: 1900-01-01
        raise BuiltinError(f"parse_date(): the format {fmt!r} reads no date (no year, month or day code), so "
                           "every text would be read as 1900-01-01: give the date's codes (%Y year, %m month, "
                           "%d day: \"%d.%m.%Y %H:%M\")")
    if not any(c[-1] in _YEAR_CODES for c in codes):  # strptime's year: 1900 (and 29 February is no day of it)
        raise BuiltinError(f"parse_date(): the format {fmt!r} reads no year, so every date would be in 1900: "
                           "give the year's code (%Y, or %y for two digits), or put the year into the text: "
                           "parse_date(s + \".2024\", \"%d.%m.%Y\")")
    return codes


def _zone_name_is_utc(text: str, fmt: str) -> None:
    """%Z reads UTC or GMT, and also the machine's own zone names (EST on a machine in New York),
    which Python then drops: 2024-01-01 EST was read as midnight UTC, 5 hours off. Only UTC and GMT
    say their offset."""
    name = time_module.strptime(text, fmt).tm_zone
    if name and name.upper() not in ("UTC", "GMT"):
        raise BuiltinError(f"parse_date(): the zone name {name!r} in {text!r} does not say its offset (only UTC "
                           "and GMT do): read an offset with %z (-0500, +01:00), or parse without the name and "
                           "give the zone with to_zone()")


def _real_day_of_year(text: str, fmt: str, value: datetime) -> None:
    """Refuse day 366 of a year of 365 days: Python's strptime moves it to January 1 of the next year."""
    day = time_module.strptime(text, fmt).tm_yday
    if day != value.timetuple().tm_yday:
        year = value.year - 1
        raise BuiltinError(f"parse_date(): {text!r} names day {day} of {year}, which has "
                           f"{365 + calendar.isleap(year)} days")


SECONDS_IN = {"days": 86400, "hours": 3600, "minutes": 60}


def _duration(amount: Any, fn: str, unit: str) -> timedelta:
    if type(amount) is timedelta:  # days(b - a), meant as the days between two dates
        raise BuiltinError(f"{fn}() needs a number, got duration: {fn}(n) makes a duration; the {unit} of one, d, "
                           f"are seconds(d) / {SECONDS_IN[unit]} (floor(...) for the whole {unit})", "type")
    need(amount, "number", fn)
    try:
        return timedelta(**{unit: float(amount) if type(amount) is Decimal else amount})
    except OverflowError:
        raise BuiltinError(f"{fn}({amount if len(str(amount)) < 40 else str(amount)[:30] + '...'}) is out of range: "
                           "a duration is at most 999,999,999 days") from None


def days(n: Any) -> Any:
    """days(n): a duration of n days, to add to or subtract from a datetime or a date.

    Durations are shown in ISO 8601 (P1D). The difference of two datetimes is a duration too.

    Examples:
        datetime("2024-05-01T10:00:00Z") + days(1) -> "2024-05-02T10:00:00Z"
        days(1) -> "P1D"
    """
    return _duration(n, "days", "days")


def hours(n: Any) -> Any:
    """hours(n): a duration of n hours.

    Examples:
        datetime("2024-05-01T10:00:00Z") - hours(12) -> "2024-04-30T22:00:00Z"
        hours(1.5) -> "PT1H30M"
    """
    return _duration(n, "hours", "hours")


def minutes(n: Any) -> Any:
    """minutes(n): a duration of n minutes (a lag window: since - minutes(10)).

    Examples:
        datetime("2024-05-01T10:00:00Z") - minutes(10) -> "2024-05-01T09:50:00Z"
    """
    return _duration(n, "minutes", "minutes")


def seconds(n: Any) -> Any:
    """seconds(n): a duration of n seconds; seconds(duration) gives a duration's length in seconds.

    Examples:
        seconds(hours(2)) -> 7200
        seconds(datetime("2024-05-01T10:00:00Z") - datetime("2024-05-01T09:58:30Z")) -> 90
    """
    if type(n) is timedelta:
        total = Decimal(n.days * 86400 + n.seconds) + Decimal(n.microseconds) / 1_000_000
        return int(total) if total == total.to_integral_value() else total
    return _duration(n, "seconds", "seconds")


_TABLE: list[tuple[str, Callable[..., Any]]] = [
        ("now", now), ("today", today), ("date", date_), ("datetime", datetime_), ("format_date", format_date),
        ("parse_date", parse_date), ("to_zone", to_zone), ("days", days), ("hours", hours), ("minutes", minutes),
        ("seconds", seconds),
]
# the rules of arguments that `flowlang check` applies to a constant argument (a typo in a zone name
# or a format would otherwise fail every record at run time)
_CONSTANT_CHECKS: dict[str, dict[str, Callable[[Any], object]]] = {
    "datetime": {"unit": _unit_rule, "zone": _zone_rule("datetime")}, "to_zone": {"zone": _zone_rule("to_zone")},
    "format_date": {"fmt": _format_rule}, "parse_date": {"fmt": _parse_format_codes, "zone": _zone_rule("parse_date")},
}
BUILTINS = tuple(
    Builtin.of(name, fn, pure=name not in ("now", "today"), constant_checks=_CONSTANT_CHECKS.get(name))
    for name, fn in _TABLE
)
