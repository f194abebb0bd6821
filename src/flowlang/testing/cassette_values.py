"""Values in a cassette's form: the stores' tagged form (jsoncodec.to_stored), and binary data (a file
read with format "bytes", an HTTP answer that is not text, a bytes value written) as
{"$bytes": "<base64>"}, so that a replay gets the bytes the run read, not their `<N bytes>` label.

An object of the data that has the shape of a tag ({"$bytes": ...} among them) is kept as
{"$object": {...}}, so it comes back as the object it was."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from flowlang.runtime.blob import Blob
from flowlang.runtime.jsoncodec import ESCAPED, JsonDataError, from_stored, to_stored

BYTES = "$bytes"
OBJECT = "$object"
TAG_SHAPED = ESCAPED | {BYTES}


def _bytes_tagged(value: Any) -> Any:
    if isinstance(value, bytes | Blob):
        data = value.whole() if isinstance(value, Blob) else bytes(value)
        return {BYTES: base64.b64encode(data).decode("ascii")}
    return None


def stored(value: Any) -> Any:
    """A flowlang value in the cassette's form (JSON-able, tagged): the stores' form and {"$bytes": ...}."""
    return to_stored(value, TAG_SHAPED, _bytes_tagged)


def restored(value: Any) -> Any:
    """Undo stored(); a {"$bytes": ...} that is not base64 raises JsonDataError (a hand-edited line)."""
    t = type(value)
    if t is list:
        return [restored(v) for v in value]
    if t is dict:
        if len(value) == 1:
            (key, inner), = value.items()
            if key == BYTES:
                return bytes_of(inner)
            if key == OBJECT and type(inner) is dict:
                return {k: restored(v) for k, v in inner.items()}
            if key in TAG_SHAPED:
                return from_stored(value)
        return {k: restored(v) for k, v in value.items()}
    return value


def bytes_of(inner: Any) -> bytes:
    if type(inner) is str:
        try:
            return base64.b64decode(inner, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise JsonDataError('{"$bytes": ...} holds binary data as base64 text, got ' + repr(inner)[:60])


def masked_bytes(inner: Any, mask: Callable[[str], str]) -> Any:
    """The base64 of binary data with every secret in it masked: the bytes are read as Latin-1 (one
    character a byte, so UTF-8 text in them reads as the masker's 'UTF-8 misread as Latin-1' form of a
    secret, and ASCII as itself), masked, and written back."""
    try:
        data = bytes_of(inner)
    except JsonDataError:
        return mask(inner) if type(inner) is str else inner
    text = data.decode("latin-1")
    hidden = mask(text)
    if hidden == text:
        return inner
    return base64.b64encode(hidden.encode("latin-1", "replace")).decode("ascii")
