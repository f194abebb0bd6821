"""JSON in and out with exact decimals: numbers with a fraction are read as Decimal and written
back digit for digit; keys keep their order. Also the tagged form the stores use, which keeps
datetimes, durations and secret references across a save and a load."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from flowlang.runtime.blob import Blob
from flowlang.runtime.values import RecordStream, Secret, bytes_text, format_datetime, format_duration, format_number

MAX_DEPTH = 500
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300  # Python's bound for reading a whole number
# a number like 1e99999999999999999999: its exponent is past what a decimal can hold (decimal.MAX_EMAX)
EXPONENT_PROBLEM = "a number's exponent is too large to be read"
LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_INT_DIGITS + 1))
LONE_SURROGATES = re.compile("[\ud800-\udfff]")  # half a UTF-16 pair: JSON's "\\ud800", not UTF-8 text


class JsonDataError(ValueError):
    """Text that is not the JSON it should be."""


def _no_constants(name: str) -> Any:
    raise JsonDataError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constants)  # one for every call
_decode = _DECODER.decode
# first bytes after which json.detect_encoding may say other than UTF-8: a NUL (UTF-16/32) or a byte order
# mark's first (EF: UTF-8's, read as utf-8-sig; FE, FF: UTF-16/32's); else only a NUL second byte does
_NOT_PLAIN_UTF8 = frozenset(b"\x00\xef\xfe\xff")


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping decimals exact; bad or absurdly nested input raises JsonDataError."""
    try:
        if isinstance(text, str):  # what json.loads does, without making a decoder per call
            if text.startswith("\ufeff"):
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            return _decode(text)
        if text and text[0] not in _NOT_PLAIN_UTF8 and text[1:2] != b"\0":  # what detect_encoding says is UTF-8
            return _decode(text.decode("utf-8", "surrogatepass"))
        return _decode(text.decode(json.detect_encoding(text), "surrogatepass"))  # UTF-8, -16 or -32 bytes
    except RecursionError:
        raise JsonDataError("the JSON nests too deeply to be read") from None
    except json.JSONDecodeError as e:
        # json's "Unterminated string starting at" and "Invalid control character at" end in "at" already
        raise JsonDataError(f"not valid JSON: {e.msg.removesuffix(' at')} at line {e.lineno} column {e.colno}") \
            from None
    except UnicodeDecodeError as e:
        raise JsonDataError(f"not valid UTF-8 text: {e.reason}") from None
    except JsonDataError:  # NaN, Infinity: said as it is
        raise
    except ArithmeticError:  # Decimal(): decimal.InvalidOperation, an exponent past decimal.MAX_EMAX
        raise JsonDataError(EXPONENT_PROBLEM) from None
    except ValueError:  # int(): a number past Python's digit limit
        raise JsonDataError(f"a number has more than {MAX_INT_DIGITS:,} digits") from None


def dumps(value: Any, *, secrets_as: str = "***", reveal_secrets: bool = False, binary: bool = True) -> str:
    """Compact JSON of a flowlang value; secrets become `secrets_as` (or, for requests to the
    system the secret is meant for, their value), streams their label. A bytes value reads
    `<N bytes>` (output for people); with `binary=False` (data for a destination: a request body, a
    file) it is a JsonDataError instead, since that text would stand in for the data."""
    parts: list[str] = []
    _encode(value, parts, None if reveal_secrets else secrets_as, 0, binary)
    text = "".join(parts)
    if not text.isascii() and LONE_SURROGATES.search(text) is not None:
        text = LONE_SURROGATES.sub(_escaped, text)  # only inside strings: JSON's own text is ASCII
    return text


def surrogates_escaped(text: str) -> str:
    """`text` with each lone surrogate written as its \\u escape (`\\ud800`), so it is UTF-8 text."""
    return text if text.isascii() else LONE_SURROGATES.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    """A lone surrogate as JSON writes it (`\\ud800`), as it came: the text stays encodable as UTF-8."""
    return f"\\u{ord(match.group()):04x}"


def _encode(value: Any, out: list[str], secret_text: str | None, depth: int, binary: bool = True) -> None:
    t = type(value)
    if t is str:
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif t is int:
        out.append(str(value))
    elif t is Decimal:
        out.append(_decimal(value))
    elif t is dict or t is list or t is tuple:
        if depth > MAX_DEPTH:
            raise JsonDataError("the value nests too deeply to be written as JSON")
        if t is dict:
            out.append("{")
            first = True
            for k, v in value.items():
                if not first:
                    out.append(",")
                first = False
                out.append(encode_basestring(str(k)))
                out.append(":")
                _encode(v, out, secret_text, depth + 1, binary)
            out.append("}")
        else:
            out.append("[")
            for i, v in enumerate(value):
                if i:
                    out.append(",")
                _encode(v, out, secret_text, depth + 1, binary)
            out.append("]")
    else:
        if not binary and isinstance(value, bytes | Blob):
            raise JsonDataError(binary_refused(value))
        out.append(encode_basestring(_scalar_text(value, secret_text)))


def binary_refused(value: bytes | Blob, where: str = "JSON") -> str:
    """Why a bytes value cannot be written into text data."""
    return (f"a bytes value ({len(value):,} bytes) cannot be written as {where}: its text would be "
            f"'{bytes_text(value)}', not the data; give base64_encode(b) (or send the bytes alone as the body "
            'of a request, or to a file with format: "bytes")')


def _scalar_text(value: Any, secret_text: str | None) -> str:
    if isinstance(value, Secret):
        if secret_text is None:
            return value.reveal()
        return value.shown if secret_text == "***" else secret_text  # "key=***&v=2" of a URL made with one
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, RecordStream):
        return repr(value)
    if isinstance(value, bytes | Blob):
        return bytes_text(value)
    if isinstance(value, bool | int | Decimal):  # subclasses
        return str(value)
    return f"<{type(value).__name__}>"


def _decimal(value: Decimal) -> str:
    """A decimal as a JSON number, in plain notation as it reads in a string (1E+3 is 1000, which an API
    taking a whole number accepts), but for one past PLAIN_DIGITS digits; trailing zeros are kept."""
    if not value.is_finite():
        raise JsonDataError(f"{value} is not a JSON number")
    text = str(value)
    return format_number(value) if "E" in text else text


# ---- the stores' tagged form -----------------------------------------------------------


def to_stored(value: Any, escaped: frozenset[str] | None = None,
              other: Callable[[Any], Any] | None = None) -> Any:
    """A JSON-able structure that keeps what plain JSON loses (datetimes, durations, secret names). An
    object of the data that has the shape of a tag (MongoDB's {"$date": ...}, an API's {"$secret": "X"})
    is kept as {"$object": {...}}, so it comes back as the object it was, not as a date or a secret.
    A form with tags of its own (the cassette's {"$bytes": ...}) gives them in `escaped` (with these) and
    `other`, which tags a value or returns None for the rules here."""
    t = type(value)
    if t is dict:
        keys = _ESCAPED if escaped is None else escaped
        inner = {k: to_stored(v, escaped, other) for k, v in value.items()}
        return {_OBJECT: inner} if len(value) == 1 and next(iter(value)) in keys else inner
    if t is list or t is tuple:
        return [to_stored(v, escaped, other) for v in value]
    if other is not None:
        tagged = other(value)
        if tagged is not None:
            return tagged
    if isinstance(value, datetime):
        return {"$datetime": format_datetime(value)}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$seconds": str(Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 10**6)}
    if isinstance(value, Secret):
        return {"$secret": value.name}
    return value


def from_stored(value: Any, secret_refs: bool = False) -> Any:
    """Undo to_stored. A secret comes back as {"$secret": name}, or with secret_refs (the values a retry
    replays) as a SavedSecret for restore_saved to read again by its name: an object of the data shaped
    like one ({"$object": {"$secret": ...}} in the store) is a plain object, never a secret to fetch.
    A tag whose value is not what it tags (`{"$seconds": "NaN"}`, `{"$datetime": "soon"}`: hand-written
    or damaged) raises JsonDataError."""
    t = type(value)
    if t is list:
        return [from_stored(v, secret_refs) for v in value]
    if t is dict:
        if len(value) == 1:
            (key, inner), = value.items()
            if key in _TAGS:
                return _untagged(key, inner)
            if key == "$secret" and secret_refs:
                return SavedSecret("", inner if type(inner) is str else None)
            if key == _OBJECT and type(inner) is dict:
                return {k: from_stored(v, secret_refs) for k, v in inner.items()}
        return {k: from_stored(v, secret_refs) for k, v in value.items()}
    return value


class SavedSecret(Secret):
    """A secret a saved value names (`{"$secret": "TOKEN"}` in the store), read again when it is replayed."""

    __slots__ = ()


_TAGS = ("$datetime", "$date", "$seconds")
_OBJECT = "$object"  # an object of the data shaped like a tag, kept as it was (to_stored)
_ESCAPED = frozenset((*_TAGS, "$secret", _OBJECT))
ESCAPED = _ESCAPED  # the tags an object of the data is escaped for (a form with more adds its own)


def _untagged(key: str, inner: Any) -> Any:
    try:
        if key == "$datetime" and type(inner) is str:  # without an offset it is UTC, as text is to datetime()
            moment = datetime.fromisoformat(inner.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
            moment.astimezone(UTC)  # OverflowError past the years 1 to 9999 in UTC (9999-12-31T23:00-05:00)
            return moment
        if key == "$date" and type(inner) is str:
            return date.fromisoformat(inner)
        if key == "$seconds" and type(inner) in (str, int, Decimal):
            seconds = Decimal(inner)
            if seconds.is_finite():
                return timedelta(seconds=float(seconds))
    except (ArithmeticError, ValueError, OverflowError):
        pass
    what = {"$datetime": ("a time", "an ISO 8601 time"), "$date": ("a date", "an ISO 8601 date"),
            "$seconds": ("a duration", "a finite number of seconds")}[key]
    raise JsonDataError(f'{{"{key}": {dumps(inner)[:40]}}} is not {what[0]}: "{key}" takes {what[1]}')


def holds_secret(value: Any) -> bool:
    """Whether a value is (or holds, however deep) a value made from a secret."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Secret):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return False


def dumps_stored(value: Any) -> str:
    return dumps(to_stored(value), secrets_as="***")
