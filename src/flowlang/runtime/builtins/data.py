"""Data builtins: JSON, base64, hashing, identifiers, types and coalesce."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any
from urllib.parse import quote

from flowlang.diagnostics import BROKEN_TEXT
from flowlang.runtime.blob import Blob
from flowlang.runtime.builtins.registry import Builtin, BuiltinError, check_items, need, secret_preserving
from flowlang.runtime.formcodec import FormError, form_encode, query_value
from flowlang.runtime.jsoncodec import JsonDataError, dumps, holds_secret, loads
from flowlang.runtime.tape import drawn
from flowlang.runtime.values import Secret, check_text_size, type_name


def json_parse(text: Any) -> Any:
    """json_parse(s): the value a JSON text holds (decimals exact, key order kept).

    For a JSON document inside a field (a CSV cell, a MySQL JSON column, a webhook's form field). Text
    that is not JSON fails the record. A secret holding JSON (a service account's key file) gives its
    value with each text in it a secret, shown as *** (its keys, numbers and booleans as they are).

    Examples:
        json_parse('{"total": 19.90, "tags": ["a"]}') -> {"total": 19.90, "tags": ["a"]}
        json_parse('{"total": 19.90}').total -> 19.90
    """
    if text is None:
        return None
    need(text, "string", "json_parse")
    try:
        return loads(text)
    except JsonDataError as e:
        raise BuiltinError(f"json_parse(): {e}") from None


def json_string(value: Any) -> Any:
    r"""json_string(x): x as compact JSON text (the inverse of json_parse).

    A value holding a secret gives a secret: its JSON holds the secret's value (what a request gets),
    and it is shown as ***. A bytes value in it is refused: give base64_encode(b).

    Examples:
        json_string({a: [1, 2], b: null}) -> "{\"a\":[1,2],\"b\":null}"
    """
    check_text_size(value, "json_string()")  # before the text is built: a list may hold the same big value many times
    secret = holds_secret(value)  # then the JSON holds its value, and is a secret itself (as "{x}" is)
    try:  # JSON text is data (for a request, a file): a bytes value's `<6 bytes>` would stand in for it
        text = dumps(value, reveal_secrets=secret, binary=False)
    except JsonDataError as e:
        raise BuiltinError(f"json_string(): {e}") from None
    check_items(len(text), "json_string", text=True)
    return Secret(text) if secret else text


def base64_encode(text: Any) -> Any:
    """base64_encode(x): the base64 of a text's UTF-8 bytes, or of bytes (a binary answer or file).

    Examples:
        base64_encode("user:pass") -> "dXNlcjpwYXNz"
    """
    if text is None:
        return None
    if type(text) is Blob:
        text = text.whole()
    if type(text) is bytes:
        check_items(4 * -(-len(text) // 3), "base64_encode", text=True)
        return base64.b64encode(text).decode("ascii")
    need(text, "string", "base64_encode")
    raw = utf8(text, "base64_encode")
    check_items(4 * -(-len(raw) // 3), "base64_encode", text=True)
    return base64.b64encode(raw).decode("ascii")


def utf8(text: str, fn: str) -> bytes:
    """The UTF-8 bytes of a text; half a surrogate pair (broken text in the data) fails the record."""
    try:
        return text.encode()
    except UnicodeEncodeError as e:
        raise BuiltinError(f"{fn}(): cannot encode {e.object[e.start:e.end]!r} as UTF-8: {BROKEN_TEXT}",
                           "data") from None


def url_encode(value: Any) -> Any:
    """url_encode(x): text percent-encoded for a URL (a space is %20), or an object as form fields.

    Paths and query strings of HTTP operations are encoded already; this is for building a URL or a
    form body by hand. An object gives `a=1&b=x+y` (nested objects as `a[b]=...`).

    Examples:
        url_encode("a b/c?d") -> "a%20b%2Fc%3Fd"
        url_encode({a: 1, b: "x y"}) -> "a=1&b=x+y"
    """
    if value is None:
        return None
    if isinstance(value, Secret):
        return Secret(str(url_encode(value.reveal())))
    if isinstance(value, dict):
        try:
            return form_encode(value)
        except FormError as e:
            raise BuiltinError(f"url_encode(): {e}") from None
    if isinstance(value, list | bytes):
        raise BuiltinError(f"url_encode() needs a string, number or object, got {type_name(value)}", "type")
    encoded = quote(utf8(query_value(value), "url_encode"), safe="")  # at most 12 characters for one
    check_items(len(encoded), "url_encode", text=True)
    return encoded


_URLSAFE = str.maketrans("-_", "+/")


def base64_decode(text: Any) -> Any:
    """base64_decode(s): the UTF-8 text that base64 s encodes.

    Also base64url (- and _ for + and /, as a JWT's parts and many APIs' tokens are written), without
    its = padding, and base64 cut into lines (MIME's 76 characters, an e-mail's or a SOAP message's).

    Examples:
        base64_decode("dXNlcjpwYXNz") -> "user:pass"
        base64_decode("aGVsbG8gd29ybGQ") -> "hello world"
        base64_decode("PDw_Pz4-") -> "<<??>>"
        base64_decode("aGk") -> "hi"
    """
    if text is None:
        return None
    need(text, "string", "base64_decode")
    if not text.isascii():
        raise BuiltinError("base64_decode(): not valid base64 (base64 is ASCII letters, digits, +, / and =)")
    data = "".join(text.split())  # the line breaks of MIME's base64
    if ("-" in data or "_" in data) and "+" not in data and "/" not in data:  # base64url
        data = data.translate(_URLSAFE)
    if len(data) % 4 in (2, 3) and not data.endswith("="):  # base64url leaves its padding out
        data += "=" * (4 - len(data) % 4)
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise BuiltinError(f"base64_decode(): not valid base64 UTF-8 text ({e})") from None


def sha256(text: Any) -> Any:
    """sha256(s): the hex SHA-256 digest of s's UTF-8 bytes.

    A stable key or fingerprint for a record: sha256(json_string(r)).

    Examples:
        sha256("abc") -> "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    """
    if text is None:
        return None
    need(text, "string", "sha256")
    return hashlib.sha256(utf8(text, "sha256")).hexdigest()


def uuid() -> Any:
    """uuid(): a new random UUID (version 4), as text.

    `flowlang test` replays the UUIDs a recorded run drew.

    Examples:
        uuid()
    """
    import uuid as uuid_module  # here: importing uuid at start-up costs more than a run of `emit 1`

    return drawn("uuid", lambda: str(uuid_module.uuid4()))


def type_of(value: Any) -> Any:
    """type_of(x): the kind of a value, as text.

    One of "null", "boolean", "number", "string", "list", "object", "datetime", "date", "duration",
    "stream", "secret", "bytes".

    Examples:
        type_of(1.5) -> "number"
        type_of("1.5") -> "string"
        type_of(null) -> "null"
        type_of(datetime("2024-05-01")) -> "datetime"
    """
    return type_name(value)


def coalesce(*values: Any) -> Any:
    """coalesce(a, b, ...): the first value that is not null (null when all are).

    Only null is passed over: "" and 0 are values. `a ?? b` is the same for two values.

    Examples:
        coalesce(null, "", "x") -> ""
        coalesce(null, null) -> null
    """
    return next((v for v in values if v is not None), None)


BUILTINS = (
    Builtin.of("json_parse", secret_preserving(json_parse)),
    Builtin.of("json_string", json_string),
    Builtin.of("base64_encode", secret_preserving(base64_encode)),
    Builtin.of("base64_decode", secret_preserving(base64_decode)),
    Builtin.of("url_encode", url_encode),
    Builtin.of("sha256", secret_preserving(sha256)),
    Builtin.of("uuid", uuid, pure=False),
    Builtin.of("type_of", type_of),
    Builtin.of("coalesce", coalesce),
)

__all__ = ["BUILTINS", "BuiltinError"]
