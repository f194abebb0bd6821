"""A record key's canonical text: the one home of what the send ledger's keys (`send ... once`, `if
changed`) and the error store's trace keys are (OPERATIONS.md 2, TESTING.md 3).

Two keys flowlang finds equal (runtime/values.py equal()) are one key, so their text is one text: a
number is written canonically (1, 1.0 and 1.00 as `1`; 1.50 as `1.5`; -0.0 as `0`), an object's
fields in the order of their names (an object's key order does not count), a time as its instant in
UTC, and so inside a list or an object key (`key [r.a, r.b]`). Text and whole numbers, the common
keys, are kept as they are without a look inside.

Versions before 2026-12 wrote a key's numbers as they came (`1.0`), so an id that came as 1 one night
and as 1.0 (or 1.00 from a NUMERIC column) the next was sent again. What they wrote is still honoured:
`ledger_keys` and `trace_keys` give that old text beside the canonical one when the two differ, and
`canonical_stored` reads a stored trace key back into its canonical text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from flowlang.runtime.jsoncodec import (
    MAX_INT_DIGITS,
    JsonDataError,
    dumps,
    dumps_stored,
    from_stored,
    holds_secret,
    loads,
)
from flowlang.runtime.values import Secret, instant


def canonical_key(value: Any) -> Any:
    """`value` with each number, object and time inside it in its canonical form (see the module); the
    value itself when it is canonical already."""
    t = type(value)
    if t is str or t is int:
        return value
    if t is Decimal:
        return canonical_number(value)
    if t is list or t is tuple:
        items = [canonical_key(v) for v in value]
        return value if t is list and all(a is b for a, b in zip(items, value, strict=True)) else items
    if t is dict:
        fields = {k: canonical_key(value[k]) for k in sorted(value)}
        same = list(fields) == list(value) and all(fields[k] is v for k, v in value.items())
        return value if same else fields
    if t is datetime:
        moment = instant(value)
        return value if moment.tzinfo is value.tzinfo else moment
    return value


def canonical_number(value: Decimal) -> int | Decimal:
    """A decimal as its canonical number: a whole one as int (to the digits an int's text may have),
    another without its trailing zeros, exactly (Decimal.normalize would round to 28 digits)."""
    if not value.is_finite():
        return value  # no JSON number: the key's text cannot be written (as before)
    if not value:
        return 0  # 0.0, -0, 0E+5
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent < 0 and digits[-1]:
        return value  # 12.5: canonical as it is (the common decimal)
    zeros = len(digits) - len(bytes(digits).rstrip(b"\0"))
    if exponent < 0:
        zeros = min(zeros, -exponent)
    if exponent + zeros >= 0 and len(digits) + exponent <= MAX_INT_DIGITS:
        return int(value)
    if not zeros:
        return value
    return Decimal((sign, digits[:-zeros], exponent + zeros))


def key_json(value: Any, mask: Callable[[str], str]) -> str:
    """A key (a trace key, a ledger key that is not a text) as its canonical JSON text, masked as
    everything stored is. A key built from a secret keeps the rest of its text (`"***A1"`, `"***A2"`):
    written as {"$secret": null}, every such record would have the same key."""
    t = type(value)
    return _json(value if t is str or t is int else canonical_key(value), mask)


def _json(value: Any, mask: Callable[[str], str]) -> str:
    return mask(dumps(value, reveal_secrets=True) if holds_secret(value) else dumps_stored(value))


def trace_keys(value: Any, mask: Callable[[str], str]) -> tuple[str, str | None]:
    """A trace key's text, and the text versions before wrote for it when that differs (else None)."""
    t = type(value)
    if t is str or t is int:
        return _json(value, mask), None
    canonical = canonical_key(value)
    text = _json(canonical, mask)
    if canonical is value:
        return text, None
    old = _json(value, mask)
    return text, (old if old != text else None)


def ledger_keys(key: Any, mask: Callable[[str], str]) -> tuple[str, str | None]:
    """A record key as the ledger stores it: a text as it is (the number 1 and the text "1" are one
    key), anything else as its canonical JSON, masked as everything stored is; and the text versions
    before stored it under when that differs (else None), for a look-up to fall back on."""
    t = type(key)
    if t is str or isinstance(key, str):
        return mask(key), None
    if t is int:
        return mask(str(key)), None
    if isinstance(key, Secret):
        return mask(key.reveal()), None
    return trace_keys(key, mask)


def canonical_stored(text: str) -> str:
    """A trace key as a store keeps it (JSON text, maybe of a version that wrote `1.0`) in its canonical
    text; a text that cannot be read is kept as it is. A stored text or whole number is canonical already."""
    if text[:1] == '"' or ("." not in text and "e" not in text and "E" not in text and "-0" not in text
                           and "{" not in text):
        return text
    try:
        return dumps_stored(canonical_key(from_stored(loads(text))))
    except (JsonDataError, ValueError, TypeError, RecursionError):
        return text
