"""Secret masking: every known secret value, in plain, URL-encoded, base64 and JSON-escaped forms (and
as UTF-8 misread as Latin-1), becomes ***."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 3
MASK = "***"


class Masker:
    """Collects the secret values of one run and hides them in any text."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH or value in self._forms:
            return
        forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
        raw = value.encode()
        forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}  # inside JSON text
        misread = raw.decode("latin-1")  # UTF-8 read as Latin-1 (HTTP headers), as a server may echo it
        forms |= {misread, json.dumps(misread)[1:-1], json.dumps(misread, ensure_ascii=False)[1:-1]}
        for b64 in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = b64.decode("ascii")
            forms.add(text)
            forms.add(text.rstrip("="))
        self._forms |= {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
        self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        if not self._forms or not text:
            return text
        if self._pattern is None:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(f) for f in ordered))
        return self._pattern.sub(MASK, text)
