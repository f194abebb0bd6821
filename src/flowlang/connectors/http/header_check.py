"""What is wrong with a request's headers that HTTP cannot carry: a value with a line break, a
carriage return or a NUL (aiohttp refuses to send it, so a header cannot be split into two), or a name
that is not an HTTP token (a space, a colon, non-ASCII, empty: the server would refuse the request).
The message names the header, never its value (it may be a credential)."""

from __future__ import annotations

import re
from collections.abc import Mapping

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
FORBIDDEN = re.compile(r"[\r\n\x00]")
WHAT = {"\r": "a carriage return", "\n": "a line break", "\x00": "a NUL character"}


def header_problem(headers: Mapping[str, str]) -> str | None:
    """Why `headers` cannot be sent, or None."""
    for name, value in headers.items():
        if not TOKEN.fullmatch(name):
            inside = FORBIDDEN.search(name)
            held = f"it holds {WHAT[inside.group()]}; " if inside is not None else ""
            return (f"{name!r} is not a valid HTTP header name ({held}letters, digits and !#$%&'*+-.^_`|~ only, "
                    "no space or ':')")
        found = FORBIDDEN.search(value)
        if found is not None:
            what = WHAT[found.group()]
            hint = (" (it ends with one: a secret or a value read from a file with its newline? trim() it)"
                    if value.rstrip("\r\n") != value and not FORBIDDEN.search(value.rstrip("\r\n")) else "")
            return f"the header {name!r} holds {what} in its value, which an HTTP header cannot hold{hint}"
    return None


__all__ = ["header_problem"]
