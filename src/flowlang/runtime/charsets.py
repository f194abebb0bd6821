"""The charset a Content-Type names, as the text it is read in: an HTTP answer's (connectors/http) and a
delivery's body (serve, `flowlang inbox --show`) alike."""

from __future__ import annotations

import codecs

ASCII_PROBE = rb'{}[]":, azAZ09 \u0041 +AEE-'  # JSON's characters, an escape, UTF-7's shift: read as they are


def charset_of(content_type: str) -> str | None:
    """The `charset=` of a Content-Type if it is a text encoding Python has that reads ASCII as ASCII (or
    UTF-16/32), else None (UTF-8 then): 'text/csv; charset="ISO-8859-1"' -> 'iso8859-1'. The sender names it:
    'base64', 'zlib' or 'rot13' are no text encodings (a LookupError from bytes.decode), 'idna' and
    'punycode' raised from bytes.decode, and 'unicode_escape' or 'utf-7' would rewrite what the body says."""
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() != "charset":
            continue
        try:
            name = codecs.lookup(value.strip().strip('"').strip().lower()).name
            if name.startswith(("utf-16", "utf-32")) or (
                    ASCII_PROBE.decode(name, errors="replace") == ASCII_PROBE.decode("ascii")):
                return name
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
        return None
    return None


__all__ = ["charset_of"]
