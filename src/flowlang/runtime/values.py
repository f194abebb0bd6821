"""Runtime values: type names, truthiness, structural equality, ordering and text conversion.

flowlang values are plain Python objects: None, bool, int, Decimal (never float), str, list,
dict (string keys, ordered), datetime (aware), date, timedelta, bytes (a binary answer or file,
never shown raw: its text is "<N bytes>"), plus Secret and RecordStream (whose pages may hold a
BadRecord: a record its source could not take as it is).
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import Blob
from flowlang.runtime.limits import VALUE_ITEMS, ValueTooLarge


def _load_c_walk() -> Callable[[Any, frozenset[type], type[Decimal], int], bool] | None:
    """The input check's walk in C, built at install where a C compiler is (hatch_build.py); None where
    it was not built, and the same walk in Python (is_plain_in_python) is used."""
    try:
        from flowlang._plain import is_plain as walk
    except ImportError:
        return None
    return walk


_c_is_plain = _load_c_walk()

NUMBER_TYPES = (int, Decimal)
Value = Any  # a flowlang value (see the module docstring)


class Secret:
    """A secret string: usable by connectors, shown as *** everywhere else. A text made by joining a
    secret with plain text ("https://h/x?key={secret.K}", "Bearer " + secret.T) is shown with only the
    secret's part as *** (`shown`): the rest of a URL stays readable."""

    __slots__ = ("_value", "name", "shown")

    def __init__(self, value: str, name: str | None = None, shown: str = "***") -> None:
        self._value = value
        self.name = name
        self.shown = shown

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return "Secret(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled")


class BadRecord:
    """A record a source read but cannot give as it is (a CSV row with a byte not of the file's
    encoding, or with more or fewer cells than the header): `record` is what could be read of it (kept
    in the error store), `message` says why and names the file and line. A loop fails it as that
    record and goes on with the next (compile/loops.py); any other reader of the stream stops at it
    with the message as a data error (RecordStream.pages)."""

    __slots__ = ("message", "record")

    def __init__(self, record: Value, message: str) -> None:
        self.record = record
        self.message = message

    def __repr__(self) -> str:
        return f"<bad record: {self.message}>"


CursorPages = Callable[[Any], AsyncIterator[tuple[list[Value], Any, Any]]]
"""Pages from a cursor (None: the first page), each with the cursor of its own request and of the next
page's request (None after the last page). Cursors are JSON-able: what a checkpoint keeps."""


class RecordStream:
    """A lazy, re-iterable sequence of records read page by page (an API list, a file, a query).

    `pages()` starts from the first page every time it is called. A stream that can start from a
    later page (an HTTP list) also has `cursor_pages` and a `source` naming the request it reads
    (TESTING.md 4: what `flowlang run --resume` continues from).
    """

    __slots__ = ("_pages", "cursor_pages", "label", "source")

    def __init__(self, pages: Callable[[], AsyncIterator[list[Value]]], label: str,
                 cursor_pages: CursorPages | None = None, source: str | None = None) -> None:
        self._pages = pages
        self.label = label
        self.cursor_pages = cursor_pages
        self.source = source

    def pages(self, keep_bad: bool = False) -> AsyncIterator[list[Value]]:
        """The pages from the first. A BadRecord in them is a data error (after the records before it),
        unless `keep_bad`: a loop takes it as a failed record."""
        return self._pages() if keep_bad else _without_bad(self._pages())

    async def materialize(self, limit: int | None = None) -> list[Value]:
        """All records in memory (at most `limit` when given)."""
        out: list[Value] = []
        async for page in self.pages():
            out.extend(page)
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    async def first(self) -> Value:
        async for page in self.pages():
            if page:
                return page[0]
        return None

    def __repr__(self) -> str:
        return f"<record stream {self.label}>"


async def _without_bad(pages: AsyncIterator[list[Value]]) -> AsyncIterator[list[Value]]:
    try:
        async for page in pages:
            if BadRecord in map(type, page):
                at = next(i for i, item in enumerate(page) if type(item) is BadRecord)
                if at:
                    yield page[:at]
                raise FlowRuntimeError(page[at].message, "data")
            yield page
    finally:
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()


def article(word: str) -> str:
    """The article for a word in a message: "an object", "a list"."""
    return "an" if word[:1] in "aeiou" else "a"


def type_name(value: Value) -> str:
    """The flowlang name of a value's type, as error messages and type_of() say it."""
    if value is None:
        return "null"
    t = type(value)
    name = _TYPE_NAMES.get(t)
    if name is not None:
        return name
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "connection"


_TYPE_NAMES: dict[type, str] = {
    bool: "boolean", int: "number", Decimal: "number", str: "string", list: "list", dict: "object",
    datetime: "datetime", date: "date", timedelta: "duration", Secret: "secret", RecordStream: "stream",
    bytes: "bytes", Blob: "bytes",
}


def truthy(value: Value) -> bool:
    """Falsy: null false 0 "" [] {}; everything else is truthy."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    t = type(value)
    if t is int or t is Decimal or t is str or t is list or t is dict or t is bytes or t is Blob:
        return bool(value)
    return True


def equal(a: Value, b: Value) -> bool:
    """Structural equality: 1 == 1.0, no string/number coercion, booleans are not numbers, a secret equals
    its text (as `in` and the text builtins read it; the answer is a boolean, the text stays masked)."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            return a.keys() == b.keys() and all(equal(v, b[k]) for k, v in a.items())
        if ta is datetime:
            return bool(instant(a) == instant(b))
        return bool(a == b)
    if (ta is int or ta is Decimal) and (tb is int or tb is Decimal):
        return bool(a == b)
    if (ta is Secret and tb is str) or (ta is str and tb is Secret):  # its text, as `in` and starts_with read it
        return bool((a.reveal() if ta is Secret else a) == (b.reveal() if tb is Secret else b))
    return False


class _Unkeyed:
    """The key of a value that has no hash: equal() alone can compare it (see EqualityKeys)."""


UNKEYED = _Unkeyed()


class EqualityKeys:
    """Hashable keys that two values share exactly when equal() finds them equal (1 and 1.0 share
    one, true and 1 do not, an object's key order does not count), so unique() finds repeats in one
    pass instead of comparing every pair; UNKEYED for a value without one (a stream), which the
    caller compares with equal().

    A list or object is keyed once however often it is held (by identity, for the life of this
    object), and its key is a number standing for its items' keys: a list holding the same list
    twice, 60 times over (`let s = [s, s]`: 2**60 items as a tree), is keyed in time of its distinct
    parts, not of the tree."""

    def __init__(self) -> None:
        self._by_id: dict[int, Any] = {}
        self._numbers: dict[Any, int] = {}
        self._held: list[Any] = []  # the values keyed by identity stay alive, so no id is reused

    def key(self, value: Value) -> Any:
        t = type(value)
        if t is str:
            return value  # the only key that is a str
        if t is Secret:
            return value.reveal()  # equal to its text (equal()); the key stays in memory, never shown
        if t is int or t is Decimal:
            return ("number", value)  # hash(Decimal("1.0")) == hash(1), as equal() says
        if t is list or t is dict:
            found = self._by_id.get(id(value))
            if found is None:
                found = self._container(value)
                self._by_id[id(value)] = found
                self._held.append(value)
            return found
        if t is datetime:
            return ("datetime", instant(value))
        try:
            hash(value)
        except TypeError:
            return UNKEYED
        return (t, value)

    def _container(self, value: list[Any] | dict[str, Any]) -> Any:
        shape: Any
        if isinstance(value, list):
            parts = tuple(self.key(x) for x in value)
            if any(p is UNKEYED for p in parts):
                return UNKEYED
            shape = ("list", parts)
        else:
            pairs = frozenset((k, self.key(v)) for k, v in value.items())
            if any(p is UNKEYED for _, p in pairs):
                return UNKEYED
            shape = ("object", pairs)
        return self._numbers.setdefault(shape, len(self._numbers))


def instant(value: datetime) -> datetime:
    """A datetime as UTC, so that comparing two compares their instants: Python compares datetimes
    of one zone by wall time (01:30 before and after a DST change are "equal") and never finds a time
    in a repeated hour (fold) equal to a time in another zone."""
    return value.astimezone(UTC) if value.tzinfo is not None else value


def is_number(value: Value) -> bool:
    t = type(value)
    return t is int or t is Decimal


ORDERED_KINDS = {"number", "string", "datetime", "date", "duration"}


def comparable(a: Value, b: Value) -> bool:
    na, nb = type_name(a), type_name(b)
    return na == nb and na in ORDERED_KINDS


PLAIN_DIGITS = 4300  # a decimal with more digits left or right of the point reads in E notation (as in JSON)


def format_number(value: int | Decimal) -> str:
    """A number as text: decimals in plain notation (1E+3 reads 1000), except one that would need more
    than PLAIN_DIGITS digits (1e999999999 reads 1E+999999999, not a billion zeros)."""
    if not isinstance(value, Decimal):
        return str(value)
    if not -PLAIN_DIGITS < value.adjusted() < PLAIN_DIGITS:
        return str(value)
    return format(value, "f")


def text_size_floor(value: Any, limit: int) -> int:
    """At least how many characters the text of `value` has (its JSON, or how it reads in a string),
    counted only until it passes `limit`: a list holding the same big list a million times is found
    too large before any of its text is built, and the count stops after about `limit` steps."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            total += len(v) + 2
        elif t is list:
            total += 2 + len(v)
            if total <= limit:
                stack.extend(v)
        elif t is dict:
            total += 2 + len(v)
            if total <= limit:
                for k, x in v.items():
                    total += len(k) + 3
                    stack.append(x)
        elif t is int:
            total += 1 + v.bit_length() * 3 // 10
        elif t is Decimal:
            total += len(format_number(v)) if v.is_finite() else 3
        else:
            total += 1
        if total > limit:
            return total
    return total


def check_text_size(value: Any, what: str = "") -> None:
    """Refuse to build the text of a value past the run's max_value_items, before it is built. `what`
    names the builtin ("str()"); without it the value's type is named."""
    limit = VALUE_ITEMS.get()
    size = text_size_floor(value, limit)
    if size > limit:
        raise ValueTooLarge(f"{what or 'the text of a ' + type_name(value)} would make a text of at least {size} "
                            f"characters, more than the limit of {limit} (max_value_items)")



def format_datetime(value: datetime) -> str:
    if value.tzinfo is not None and value.utcoffset() == timedelta(0):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def format_duration(value: timedelta) -> str:
    """ISO 8601 duration: P1DT2H3M4S."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, rest = value.days, value.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".") if value.microseconds else str(seconds)
    out = f"{sign}P{days}D" if days else f"{sign}P"
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M")) if n)
    if seconds or value.microseconds:
        time += f"{secs}S"
    if time:
        out += "T" + time
    return out if out not in ("P", "-P") else "PT0S"


def to_text(value: Value) -> str:
    """How a value reads inside a string: null is empty, decimals in plain notation, lists and objects
    as JSON, datetimes in ISO 8601, secrets as ***."""
    t = type(value)
    if t is str:
        return str(value)
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int or t is Decimal:
        return format_number(value)
    if t is datetime:
        return format_datetime(value)
    if t is date:
        return str(value.isoformat())
    if t is timedelta:
        return format_duration(value)
    if t is Secret:
        return str(value.shown)
    if t is RecordStream:
        return repr(value)
    if t is bytes or t is Blob:
        return bytes_text(value)
    from flowlang.runtime.jsoncodec import dumps

    check_text_size(value)
    return dumps(value)


def shown_number(value: Any) -> str:
    """A value where a whole number was wanted, for a message: a number as it reads (`0`, `2.5`),
    anything else by its type (`text`, `null`)."""
    return to_text(value) if type_name(value) == "number" else type_name(value)


def bytes_text(value: bytes | Blob) -> str:
    """How binary data reads in text and output: its size, never its raw bytes."""
    return f"<{len(value)} bytes>"


def _holds_secret(value: Any) -> bool:
    from flowlang.runtime.jsoncodec import holds_secret

    return holds_secret(value)


def interpolate(parts: tuple[Any, ...]) -> Any:
    """The text of a "...{x}..." string from its evaluated parts; secret in, secret out (LANGUAGE.md 6): a
    list or object holding a secret reads as its JSON with the secret's text in it, shown with it as ***,
    so the connector the text is sent to gets the secret (`"x{[secret.K]}y"` is x["the key"]y)."""
    out = []
    shown: list[str] = []  # the text as it is shown: each secret's part as its own shown text
    secret = False
    for v in parts:
        t = type(v)
        if t is str:
            out.append(v)
            shown.append(v)
        elif t is Secret:
            secret = True
            out.append(v.reveal())
            shown.append(v.shown)
        elif t is list or t is dict:  # its JSON (as to_text), each secret in it revealed in the text
            from flowlang.runtime.jsoncodec import dumps

            check_text_size(v)  # first: a value holding one big list many times is refused before it is walked
            text = dumps(v)
            if _holds_secret(v):
                secret = True
                out.append(dumps(v, reveal_secrets=True))
            else:
                out.append(text)
            shown.append(text)
        else:
            text = to_text(v)
            out.append(text)
            shown.append(text)
    size = sum(map(len, out))
    if size > VALUE_ITEMS.get():
        raise ValueTooLarge(f"the string would be {size} characters, more than the limit of {VALUE_ITEMS.get()} "
                            "(max_value_items)")
    text = "".join(out)
    return Secret(text, shown="".join(shown)) if secret else text


def utc_now() -> datetime:
    return datetime.now(UTC)


_PLAIN = frozenset({str, int, bool, Decimal, type(None), Secret, RecordStream, date, timedelta, bytes})
MAX_DIGITS = 4300  # digits a whole number, or an exact result, may have (Python's own bound for int <-> text)
INT_BOUND = 10 ** MAX_DIGITS  # a whole number's size must stay below it (a comparison of sizes: cheap)
_BIG_BITS = INT_BOUND.bit_length() - 1  # a whole number of fewer bits is below INT_BOUND


def _too_long() -> str:
    return f"a whole number of more than {MAX_DIGITS:,} digits is more than flowlang holds; give it as text"


TOO_DEEP = "the value nests too deeply"  # from_python's refusal past 200 levels (a cycle, too)


def from_python(value: Any, depth: int = 0) -> Value:
    """Convert a host Python value (a binding's return value, an input payload) to a flowlang value.

    Values that need no conversion are passed through, not copied: dicts and lists of plain JSON-like
    data are used as they are (a flow that assigns into them changes them)."""
    t = type(value)
    if t in _PLAIN:
        if t is Decimal and not value.is_finite():
            raise ValueError(_not_finite(value))
        if t is int and value.bit_length() >= _BIG_BITS and not -INT_BOUND < value < INT_BOUND:
            raise ValueError(_too_long())
        return value
    if (t is dict or t is list) and depth == 0 and is_plain(value):
        return value
    if depth > 200:
        raise ValueError(TOO_DEEP)
    if t is dict:
        out = None
        for k, v in value.items():
            c = from_python(v, depth + 1)
            if out is None and (c is not v or type(k) is not str):
                out = {}
                for k2, v2 in value.items():
                    if k2 is k:
                        break
                    out[k2] = v2
            if out is not None:
                _put_text_key(out, k, c)
        return value if out is None else out
    if t is list:
        converted = [from_python(v, depth + 1) for v in value]
        return value if all(c is v for c, v in zip(converted, value, strict=True)) else converted
    return _from_other(value, depth)


def _put_text_key(out: dict[str, Value], key: Any, value: Value) -> None:
    """Put a host dict's entry under its key as text, refusing two keys that become the same text
    (`{1: "a", "1": "b"}`): keeping either would lose the other's value."""
    text = key if type(key) is str else str(key)
    if text in out:
        which = f"one is {_key_repr(key)}" if type(key) is not str else f"one is {key!r}, the other is not text"
        raise ValueError(f"two keys of one dict are both {text!r} as text ({which}): a flowlang "
                         "object has text keys, so one of the two values would be lost; keep one of them")
    out[text] = value


def _key_repr(key: Any) -> str:
    return repr(key) if type(key) in (str, int, bool, float) or key is None else f"{type(key).__name__} {key!r}"


def is_plain_in_python(value: Any) -> bool:
    """True when a dict or list holds only values flowlang uses as they are, under text keys (a fast,
    flat walk). flowlang._plain is the same walk in C, used by is_plain where it was built."""
    stack = [value]
    pop = stack.pop
    push = stack.append
    plain = _PLAIN
    budget = 50_000_000  # containers pushed: a cyclic structure ends here (from_python refuses it), and the
    while stack:         # stack stays below it however wide the cycle ([a] * 100 pushes 100 a pop)
        v = pop()
        if type(v) is dict:
            for k, x in v.items():
                if type(k) is not str:  # a key from Python that is not text: from_python makes it text
                    return False
                tx = type(x)
                if tx is str:
                    continue
                if tx is int:
                    if x.bit_length() >= _BIG_BITS:  # past 4,300 digits maybe: from_python says which
                        return False
                elif tx is dict or tx is list:
                    budget -= 1
                    if budget < 0:
                        return False
                    push(x)
                elif tx is Decimal:
                    if not x.is_finite():  # NaN or Infinity: from_python refuses it
                        return False
                elif tx not in plain:
                    return False
        else:
            for x in v:
                tx = type(x)
                if tx is int:
                    if x.bit_length() >= _BIG_BITS:
                        return False
                elif tx is dict or tx is list:
                    budget -= 1
                    if budget < 0:
                        return False
                    push(x)
                elif tx is Decimal:
                    if not x.is_finite():
                        return False
                elif tx not in plain:
                    return False
    return True


def _choose_walk() -> Callable[[Any], bool]:
    walk = _c_is_plain
    if walk is None:
        return is_plain_in_python

    def is_plain_in_c(value: Any) -> bool:
        """True when a dict or list holds only values flowlang uses as they are (the walk in C)."""
        return walk(value, _PLAIN, Decimal, _BIG_BITS)

    return is_plain_in_c


is_plain = _choose_walk()  # what from_python asks


def _not_finite(value: Any) -> str:
    return f"{value} is not a number flowlang can hold (numbers are finite: no NaN or Infinity)"


def _from_other(value: Any, depth: int) -> Value:
    """A value of a type not used as it is: subclasses become their base type (an Enum its value), and
    the few other kinds a Python program commonly holds become what they read as."""
    if isinstance(value, Enum):  # (str, Enum) and IntEnum members too: the value, not the member
        return from_python(value.value, depth + 1)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(_not_finite(value))
        return Decimal(value)
    if value is None or isinstance(value, bool | Secret | RecordStream):
        return value
    if isinstance(value, str):  # a subclass: flowlang's text is exactly str (its fast paths check the type)
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):  # numpy's float64 too: float's own repr, not the subclass's
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(_not_finite(value))
        return Decimal(float.__repr__(value))
    if isinstance(value, datetime):  # naive: UTC; a subclass (pandas' Timestamp, pendulum's DateTime) made exact
        if type(value) is datetime:
            moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        else:
            moment = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                              value.microsecond, value.tzinfo or UTC, fold=value.fold)
        return in_range(moment) if moment.year in (1, 9999) else moment
    if isinstance(value, date):
        return value if type(value) is date else date(value.year, value.month, value.day)
    if isinstance(value, timedelta):
        return value if type(value) is timedelta else timedelta(value.days, value.seconds, value.microseconds)
    if isinstance(value, dict):
        out: dict[str, Value] = {}
        for k, v in value.items():
            _put_text_key(out, k, from_python(v, depth + 1))
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [from_python(v, depth + 1) for v in value]
    return _from_library(value, depth)


def in_range(moment: datetime) -> datetime:
    """An aware datetime whose instant is in the years 1 to 9999 in UTC, as datetime() makes them: one
    at the edge whose offset puts its instant past them (0001-01-01T00:00+01:00, 9999-12-31T23:00-05:00)
    is refused. Taken in, it failed every comparison, subtraction and write with an OverflowError
    ('internal error ... a bug in flowlang')."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"the datetime {moment.isoformat()} is out of the range of dates (years 1 to 9999 "
                         "in UTC)") from None
    return moment


def _from_library(value: Any, depth: int) -> Value:
    """Values of the standard library's and common libraries' own kinds."""
    from uuid import UUID  # here: not imported at start-up for the rare path alone

    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, time_of_day):  # a time of day: its ISO 8601 text, as a database's time column is read
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic models
        return from_python(dump(), depth + 1)
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return from_python(dataclasses.asdict(value), depth + 1)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if hasattr(type(value), "__index__"):  # numpy's integers
        return operator.index(value)
    if isinstance(value, Iterable):
        return [from_python(v, depth + 1) for v in value]
    raise ValueError(f"cannot use a Python {type(value).__name__} as a flowlang value")


def to_python(value: Value) -> Any:
    """A flowlang value as plain Python for embedders (a copy of lists and objects, so that later
    changes in the flow do not reach an output already given out; secrets stay Secret)."""
    t = type(value)
    if t is dict:
        return {k: (v if type(v) in _PLAIN else to_python(v)) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _PLAIN else to_python(v) for v in value]
    return value
