"""Secret masking: every known secret value becomes *** in any text, in every form it may take.

Values are masked before they are encoded where the code has the value (`mask_value`), and text
that is already encoded is masked too (`Masker.mask`), in these forms of each secret: raw; inside a
JSON string, escaped once or twice, with non-ASCII raw or as `\\u` escapes (either case, surrogate
pairs), `/` and `<>&` raw or escaped; as Python writes it in a message (repr, ascii, the UTF-8 bytes' repr:
backslashes doubled, a quote escaped); percent-encoded (either case, `+` for a space, twice); escaped for
HTML or XML (`&quot;`, `&#39;`, `&amp;`, `&lt;`, ...); base64
(standard and URL-safe, whole, and the part fixed at each of the three byte alignments it can have
inside a longer encoded text); hex (either case). A piece of MIN_FRAGMENT characters or more of a
secret in its plain, JSON-escaped, Python-quoted or percent-encoded text is masked too (an API that
echoes the first 30 characters of a header, a driver's "near "...": syntax error"), except for a
secret that is a URL (its password is a secret of its own); a piece of a text made from a secret
where it stands alone. Text is cut only after it is masked (`cut`).

A text made from a secret (a part split() gave: `bob` of `bob<TAB>password`, `key` of
`prod-key-...`; upper() of one) is masked where it stands alone, not inside a longer word or number
(`monkey`, `keyboard`, `20245` keep their text), and one that is only digits not where it stands as a
number in JSON (`"year":2024`): such a text is often a short common word, and masking it everywhere
made JSON invalid and data wrong. Its base64 and hex are masked anywhere when 8 characters or more.

A secret (or a text made from one) shorter than MIN_IN_TEXT is masked only as a whole value
(`_Exact`): inside a text it is likely a word of flowlang's own messages. Of a secret longer
than LONG_SECRET, a piece is masked from LONG_FRAGMENT characters, and a form longer
than _LITERAL is looked for as text, not compiled: so learning one costs in proportion to its length."""

from __future__ import annotations

import base64
import json
import logging
import re
import string
import threading
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

MIN_SECRET_LENGTH = 3
MIN_IN_TEXT = 8  # a shorter secret ('admin', 'test') is masked as a whole value, not looked for inside text
MIN_ENCODED_CORE = 6  # a base64 fragment shorter than this is too likely to be something else
MIN_DERIVED_ENCODED = 8  # a derived text's base64 or hex shorter than this is not masked: likely data
MIN_FRAGMENT = 9  # a piece of a secret this long is masked where it shows (a cut echo, a token of it)
LONG_SECRET = 4096  # a secret longer than this (a key bundle of 400 KB) has its pieces masked from LONG_FRAGMENT
LONG_FRAGMENT = 32  # characters: every window of each form indexed took 800 MB and 8 s for 400 KB
_GRAM = 5  # the windows of a secret indexed to find its pieces; the text is probed every _STRIDE characters
_STRIDE = MIN_FRAGMENT - _GRAM + 1
_LITERAL = 256  # a form longer than this is looked for as text, not in the pattern (compiling it was 1 s per 100 KB)
_PROBE_HEAD = 40  # the first characters of each whole form whose windows tell that a text may hold it
MASK = "***"
MAX_DERIVED = 100  # texts made from secrets learned in one run (one made per record would grow without end)
# where a run takes texts made from a secret's text (upper(), substr(), replace(), the parts split()
# gives...): set by the runner for its job's task, so that an API echoing one has it masked as the
# secret itself would be
DERIVED: ContextVar[Callable[[str], None] | None] = ContextVar("flowlang_derived_secrets", default=None)
# the running job's masking, for what is logged where no run is at hand (debug_exception)
RUNNING_MASK: ContextVar[Callable[[str], str] | None] = ContextVar("flowlang_running_mask", default=None)
BYTES = "surrogatepass"  # a secret read from the environment may hold lone surrogates


def _json_escaped(text: str) -> set[str]:
    """`text` inside a JSON string as encoders write it: non-ASCII raw or as `\\u` escapes (either
    case), `/` raw or escaped, `<>&` raw or escaped (Go)."""
    raw = json.dumps(text, ensure_ascii=False)[1:-1]
    ascii_only = json.dumps(text)[1:-1]
    upper = re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), ascii_only)
    forms = {raw, ascii_only, upper}
    forms |= {f.replace("/", "\\/") for f in forms}
    forms |= {f.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") for f in forms}
    return forms


_DOTNET_SHORT = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_DOTNET_ESCAPED = frozenset("\"&'+<>`")


class _DotnetTable(dict[int, str]):
    """Each character as System.Text.Json writes it, worked out once: str.translate() with it costs a
    tenth of a loop over the characters."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in _DOTNET_SHORT:
            out = _DOTNET_SHORT[char]
        elif char in _DOTNET_ESCAPED or code < 0x20 or code > 0x7E:
            raw = char.encode("utf-16-be", BYTES)
            out = "".join(f"\\u{raw[i]:02X}{raw[i + 1]:02X}" for i in range(0, len(raw), 2))
        else:
            out = char
        self[code] = out
        return out


_DOTNET = _DotnetTable()


def _dotnet_escaped(text: str) -> set[str]:
    """`text` inside a JSON string as .NET's System.Text.Json writes it by default (ASP.NET's error
    bodies): `"`, `&`, `'`, `+`, `<`, `>`, backquote, control characters and everything past ASCII as
    `\\uXXXX` in upper-case hex (a pair past U+FFFF), so `Ab3+x` is `Ab3\\u002Bx`; and the same in
    lower-case hex (Json.NET's escaping of HTML). Nothing when it is the text itself."""
    upper = text.translate(_DOTNET)
    if upper == text:
        return set()
    return {upper, re.sub(r"\\u([0-9A-F]{4})", lambda m: "\\u" + m.group(1).lower(), upper)}


def _python_escaped(text: str) -> set[str]:
    """`text` inside a Python string literal as repr() writes it in a message ("bad regular expression
    '...'", a KeyError): backslashes doubled, `'` escaped, or raw when repr chose "..." (and then `"`
    raw or escaped), non-printable (with ascii(), non-ASCII) characters as `\\x`, `\\u`, `\\U`; and
    the repr of its UTF-8 bytes."""
    raw = text.encode("utf-8", BYTES)
    # with both quotes in it, repr() writes '...' with each ' escaped: cut off the two added quotes
    quoted = {repr(text + "'\"")[1:-4], ascii(text + "'\"")[1:-4], repr(raw + b"'\"")[2:-4]}
    forms = set(quoted)
    for form in quoted:
        single_raw = form.replace("\\'", "'")
        forms |= {single_raw, single_raw.replace('"', '\\"')}
    return forms - {text}


def _url_encoded(text: str) -> set[str]:
    """Percent-encoded as the encoders APIs use write it: Python's and RFC 3986 (`~` raw), with `/`
    raw, with `+` for a space; PHP's urlencode (`~` as %7E, `+`), Java's URLEncoder (`*` raw, `~` as
    %7E, `+`) and JavaScript's encodeURIComponent (`!'()*~` raw); in either case, and encoded twice."""
    raw = text.encode("utf-8", BYTES)
    forms = {_quoted(raw, ""), _quoted(raw, "/"), _quoted(raw, " ").replace(" ", "+"),
             _quoted(raw, " ").replace(" ", "+").replace("~", "%7E"),
             _quoted(raw, " *").replace(" ", "+").replace("~", "%7E"),
             _quoted(raw, "!'()*~")}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return forms | {_quoted(f.encode("ascii"), "") for f in forms}  # encoded twice


_QUOTE_TABLES: dict[str, list[str]] = {}


def _quoted(raw: bytes, safe: str) -> str:
    """urllib.parse.quote(raw, safe) (`safe` of ASCII), by a table: quote() costs 100 ms for 400 KB."""
    table = _QUOTE_TABLES.get(safe)
    if table is None:
        table = _QUOTE_TABLES[safe] = [quote(bytes([b]), safe=safe) for b in range(256)]
    return "".join(map(table.__getitem__, raw))


def _markup_escaped(text: str) -> set[str]:
    """`text` in HTML or XML (an error page, a SOAP fault that echoes a credential): `&` as `&amp;`,
    `<` `>` as `&lt;` `&gt;` (or `>` raw), `"` and `'` raw or as any of their entities."""
    if not any(c in text for c in "&<>\"'"):
        return set()
    base = text.replace("&", "&amp;").replace("<", "&lt;")
    forms: set[str] = set()
    for gt in (">", "&gt;"):
        for quot in ('"', "&quot;", "&#34;", "&#x22;"):
            for apos in ("'", "&#39;", "&#x27;", "&apos;"):
                forms.add(base.replace(">", gt).replace('"', quot).replace("'", apos))
    return forms - {text}


def _text_forms(value: str) -> set[str]:
    """The secret as it appears in text: raw, JSON-escaped once and twice, URL-encoded, escaped for
    HTML or XML, non-ASCII as backslash escapes (`\\xe9`: text written where ASCII was wanted); also its
    UTF-8 bytes read as Latin-1 (how HTTP servers read a header, and may echo it)."""
    forms: set[str] = set()
    for text in {value, value.encode("utf-8", BYTES).decode("latin-1")}:
        once = _json_escaped(text) | _dotnet_escaped(text)
        forms |= {text} | once | {f for form in once for f in _json_escaped(form)} | _url_encoded(text)
        escaped = _ascii_escaped(text)
        forms |= {escaped} | _json_escaped(escaped)
        quoted = _python_escaped(text)  # and as a Python API's JSON error writes a repr() of it
        forms |= _markup_escaped(text) | quoted | {json.dumps(form, ensure_ascii=ascii_only)[1:-1]
                                                           for form in quoted for ascii_only in (True, False)}
    return forms


def _ascii_escaped(text: str) -> str:
    """`text` with each character past ASCII as a backslash escape (`\\xe9`, `\\u4e2d`, `\\U0001f600`)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _encoded_forms(value: str) -> set[str]:
    """The secret's bytes in base64 (whole, unpadded, and the part fixed at each alignment) and hex."""
    raw = value.encode("utf-8", BYTES)
    forms = {raw.hex(), raw.hex().upper()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        for k in range(3):
            text = encode(b"\0" * k + raw).decode("ascii")
            start = -(-8 * k // 6)
            end = (8 * (k + len(raw))) // 6
            core = text[start:end]
            if len(core) >= MIN_ENCODED_CORE:
                forms.add(core)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _fragment_forms(value: str) -> set[str]:
    """The forms of a secret in which a piece of it is looked for: plain (and its UTF-8 read as
    Latin-1), JSON-escaped, Python-quoted, percent-encoded, and its base64 and hex (base64 cut into
    lines of 76, as MIME writes it, holds it in pieces). None for a URL: its scheme and host are no
    secret, and would mask every message that names them."""
    if "://" in value:
        return set()
    forms = _encoded_forms(value)
    for text in {value, value.encode("utf-8", BYTES).decode("latin-1")}:
        forms |= {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], _ascii_escaped(text),
                  _quoted(text.encode("utf-8", BYTES), ""), repr(text + "'\"")[1:-4], *_dotnet_escaped(text)}
    return {f for f in forms if len(f) >= MIN_FRAGMENT}


class _Fragments:
    """Finds each piece of MIN_FRAGMENT characters or more of one secret's forms in a text.

    Every `_GRAM`-character window of each form is indexed; the text is probed only every `_STRIDE`
    characters (a piece of MIN_FRAGMENT characters always holds a window starting at such a place), and a
    window found is followed both ways as far as the form goes. So a text costs len/_STRIDE lookups however
    long the secret is (a pattern of every window, as before, cost milliseconds a line for a PEM key).
    With `alone` (a text made from a secret), only a piece that stands alone, not inside a longer word.
    Letters A-Z match either case: a database shows an identifier lowercased (PostgreSQL's `column
    "rk3v9wm2lp8tx5qn" does not exist` for a secret written into a query), an API may upper-case one."""

    def __init__(self, forms: set[str], alone: bool = False, piece: int = MIN_FRAGMENT) -> None:
        self.alone = alone
        self.piece = piece
        # a piece of MIN_FRAGMENT holds a window at a probed place of the text when every window of the form
        # is indexed; a longer piece holds an indexed window (one every `piece - _GRAM + 1` of the form)
        # when the text is probed everywhere
        every = 1 if piece == MIN_FRAGMENT else piece - _GRAM + 1
        self.stride = _STRIDE if piece == MIN_FRAGMENT else 1
        self.grams: dict[str, list[tuple[str, int]]] = {}
        for form in {_ascii_lower(f) for f in forms if len(f) >= piece}:
            for at in range(0, len(form) - _GRAM + 1, every):
                self.grams.setdefault(form[at:at + _GRAM], []).append((form, at))

    def mask(self, shown: str) -> str:
        grams = self.grams
        size = len(shown)
        piece = self.piece
        if not grams or size < piece:
            return shown
        text = _ascii_lower(shown)  # looked in; the pieces are cut out of `shown`
        get = grams.get
        pieces: list[tuple[int, int]] = []
        covered = 0  # the text before this is inside a piece found already
        for p in range(0, size - _GRAM + 1, self.stride):
            if p + _GRAM <= covered:
                continue
            hits = get(text[p:p + _GRAM])
            if hits is None:
                continue
            for form, at in hits:
                start, j = p, at
                while start > 0 and j > 0 and text[start - 1] == form[j - 1]:
                    start -= 1
                    j -= 1
                end, j = p + _GRAM, at + _GRAM
                while end < size and j < len(form) and text[end] == form[j]:
                    end += 1
                    j += 1
                if end - start >= piece and (not self.alone or _stands_alone(text, start, end)):
                    pieces.append((start, end))
                    covered = max(covered, end)
        if not pieces:
            return shown
        out: list[str] = []
        done = 0
        for start, end in sorted(pieces):
            if end <= done:
                continue
            if start >= done:
                out += (shown[done:start], MASK)
            done = end
        out.append(shown[done:])
        return "".join(out)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _ascii_lower(text: str) -> str:
    """`text` with A-Z as a-z and nothing else changed (str.lower() may change the length: 'İ')."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) and lowered.isascii() else text.translate(_ASCII_LOWER)


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is not part of a longer word or number."""
    word = _WORD.match
    return not ((start > 0 and word(text[start]) and word(text[start - 1]))
                or (end < len(text) and word(text[end - 1]) and word(text[end])))


class Masker:
    """Collects the secret values of one run and hides them in any text. Each value's forms are one
    pattern, compiled once when it is first needed (a value learned later does not compile the others
    again); the values are masked longest first, so a part of a secret never leaves the rest shown."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._compiled: dict[str, tuple[_Whole, _Fragments]] = {}
        self._patterns: tuple[tuple[_Whole, _Fragments], ...] | None = None
        self._derived = 0
        self._alone: set[str] = set()  # the learned texts made from a secret: masked where they stand alone
        self._exact: dict[str, _Exact] = {}  # secrets shorter than MIN_IN_TEXT: masked as whole values only
        self._lock = threading.RLock()  # a log line written while a pattern is made (a finalizer run by the
        # garbage collector, an asyncio task destroyed pending) masks again in the same thread

    def add(self, value: str) -> None:
        if len(value) < MIN_IN_TEXT:
            self._add_exact(value)
            return
        if value in self._values and value not in self._alone:
            return
        with self._lock:
            if value in self._alone:  # a secret itself: masked anywhere from now on
                self._alone.discard(value)
                self._compiled.pop(value, None)
            self._values.add(value)
            self._patterns = None

    def learn_derived(self, value: str) -> None:
        """A text made from a secret (upper(secret.T), a part of it): masked from now on, unless it shows
        a known secret already (its masking hides that part: "id {secret.T}" made per record is not
        learned each time), or MAX_DERIVED have been learned."""
        if (len(value) < MIN_SECRET_LENGTH or value in self._values or value in self._exact
                or self._derived >= MAX_DERIVED or self._whole(value) != value):
            return
        self._derived += 1
        if len(value) < MIN_IN_TEXT:
            self._add_exact(value)
            return
        with self._lock:
            self._values.add(value)
            self._alone.add(value)
            self._patterns = None

    def _add_exact(self, value: str) -> None:
        """A secret shorter than MIN_IN_TEXT: inside a text it is likely a word of the text ('admin',
        'run', 'error'), and masking it there made every message unreadable and told the word anyway. It
        is masked as a whole value (`_Exact`); one of one or two characters is not looked for at all (as
        a Secret the flow shows it is `***`)."""
        if len(value) < MIN_SECRET_LENGTH or value in self._exact:
            return
        exact = _Exact(value)
        with self._lock:
            self._exact[value] = exact

    def __bool__(self) -> bool:
        return bool(self._values or self._exact)

    def _all(self) -> tuple[tuple[_Whole, _Fragments], ...]:
        patterns = self._patterns
        if patterns is None:
            with self._lock:
                for value in self._values - self._compiled.keys():
                    derived = value in self._alone  # a text made from a secret: where it stands alone
                    piece = LONG_FRAGMENT if len(value) > LONG_SECRET else MIN_FRAGMENT
                    pieces = _Fragments(_fragment_forms(value), derived, piece)
                    self._compiled[value] = (_pattern(value, derived), pieces)
                patterns = tuple(self._compiled[v] for v in sorted(self._values, key=len, reverse=True))
                self._patterns = patterns
        return patterns

    def _whole(self, text: str) -> str:
        for whole, _ in self._all():
            text = whole.sub(text)
        return text

    def mask(self, text: str) -> str:
        if not text:
            return text
        exact = self._exact
        if exact and text in exact:  # a value that is exactly a short secret (a field, a header's value)
            return MASK
        if self._values:
            text = self._whole(text)
            for _, pieces in self._all():  # after every whole form: a piece never leaves the rest of one shown
                text = pieces.mask(text)
        if exact:  # after the longer secrets: a short one is never looked for inside one of them
            for short in tuple(exact.values()):
                text = short.sub(text)
        return text

    def mask_value(self, value: Any) -> Any:
        """A copy of a value (dicts, lists, text) with every secret in its text masked."""
        return mask_value(value, self.mask) if self._values or self._exact else value


class _Exact:
    """Where a secret shorter than MIN_IN_TEXT is masked in a text: where it is a whole value, never as
    a word inside a text (`user admin not found` is shown as it is). A whole value is:
    - the text, or a line of it, that is exactly the secret (or its base64 or hex);
    - a quoted string: `"admin"` (a JSON string value, also JSON-escaped, escaped twice as `\\"admin\\"`
      in JSON inside JSON, and base64 or hex) or `'admin'` (as Python's repr() quotes it in a message),
      but not a key (`"admin": 1`: followed by `:`);
    - the value of a query, a form or a `key=value` pair (`?token=admin&v=2`, percent-encoded too);
    - the password of a URL (`//bob:admin@db`, percent-encoded too);
    - the value after `: ` that ends a line (a header `X-Api-Key: admin`, `password: admin`)."""

    def __init__(self, value: str) -> None:
        raw = value.encode("utf-8", BYTES)
        encoded = {base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii"), raw.hex(),
                   raw.hex().upper()}
        encoded |= {f.rstrip("=") for f in encoded}
        python = _python_escaped(value) | {value}  # as repr() writes it, in '...' or "..."
        double = _json_escaped(value) | _dotnet_escaped(value) | python  # in "..."
        twice = {f for form in double for f in _json_escaped(form)}  # in \"...\" (JSON in JSON)
        single = python | {json.dumps(f, ensure_ascii=a)[1:-1] for f in python for a in (True, False)}  # in '...'
        url = _url_encoded(value) | {value}

        def one(forms: set[str]) -> str:
            return "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))

        not_key = r"(?!\s*:)"
        parts = [rf"^(?:{one({value} | encoded)})(?=\r?$)",  # a line that is exactly it
                 rf'(?<=")(?:{one(double | encoded)})(?="{not_key})',  # a quoted value, as JSON quotes it
                 rf"(?<=')(?:{one(single | encoded)})(?='{not_key})",  # as Python quotes it in a message
                 rf"""(?<==)(?:{one(url | encoded)})(?=[&#;,\s"'<>)\]}}]|$)""",  # a value of a query, a form
                 rf"(?<=:)(?:{one(url)})(?=@)",  # the password of a URL
                 rf"(?<=: )(?:{one({value} | encoded)})(?=\r?$)",  # the value ending a line, after ': '
                 rf'(?<=\\")(?:{one(twice)})(?=\\"{not_key})']  # JSON in a JSON string
        self.pattern = re.compile("|".join(parts), re.MULTILINE)
        self.probes = tuple(sorted({value} | double | single | url | twice | encoded, key=len))

    def sub(self, text: str) -> str:
        if not any(form in text for form in self.probes):
            return text
        return self.pattern.sub(MASK, text)


def _pattern(value: str, derived: bool) -> _Whole:
    """The forms of one value as one pattern, longest first; a derived text's where they stand alone.
    A form longer than _LITERAL is looked for as text (`_Whole.literal`), not compiled."""
    if not derived:
        forms = [(f, False) for f in _text_forms(value) | _encoded_forms(value)]
    else:
        text = _text_forms(value)
        encoded = {f for f in _encoded_forms(value) if len(f) >= MIN_DERIVED_ENCODED} - text
        forms = [(f, False) for f in encoded] + [(f, True) for f in text]
    forms = sorted(((f, a) for f, a in forms if len(f) >= MIN_SECRET_LENGTH), key=lambda fa: -len(fa[0]))
    short = [_alone(f) if alone else re.escape(f) for f, alone in forms if len(f) <= _LITERAL]
    literal = [(f, alone) for f, alone in forms if len(f) > _LITERAL]
    return _Whole(re.compile("|".join(short)) if short else None, literal, {f for f, _ in forms})


class _Whole:
    """One value's forms as a pattern, behind a quick test that a text may hold one of them: a text is
    probed every few characters for a window of a form's first `_PROBE_HEAD` characters (an occurrence
    of the form always holds one there), so a line that holds none (nearly every line) costs a few set
    lookups, not a search of the pattern's hundreds of forms (60 us a line for an 80-character canary)."""

    def __init__(self, pattern: re.Pattern[str] | None, literal: list[tuple[str, bool]], forms: set[str]) -> None:
        self.pattern = pattern
        self.literal = literal  # the long forms, longest first, each with whether it must stand alone
        self.shortest = min(map(len, forms), default=0)
        head = min(self.shortest, _PROBE_HEAD)
        self.size = min(_GRAM, head)
        self.step = max(1, head - self.size + 1)
        self.grams = frozenset(f[i:i + self.size] for f in forms
                               for i in range(min(len(f), _PROBE_HEAD) - self.size + 1))

    def sub(self, text: str) -> str:
        if not self.grams or len(text) < self.shortest:
            return text
        grams, size = self.grams, self.size
        for p in range(0, len(text) - size + 1, self.step):
            if text[p:p + size] in grams:
                for form, alone in self.literal:
                    if form in text:
                        text = _replaced_alone(text, form) if alone else text.replace(form, MASK)
                return self.pattern.sub(MASK, text) if self.pattern is not None else text
        return text


def _replaced_alone(text: str, form: str) -> str:
    """`text` with `form` masked where it stands alone (as `_alone` matches it)."""
    out: list[str] = []
    done = at = 0
    while (at := text.find(form, at)) >= 0:
        end = at + len(form)
        if _alone_at(text, at, end, form):
            out += (text[done:at], MASK)
            done = at = end
        else:
            at += 1
    return "".join(out) + text[done:]


def _alone_at(text: str, start: int, end: int, form: str) -> bool:
    """Whether `form` at text[start:end] is not inside a longer word or number (nor, only digits, a JSON number)."""
    word = _WORD.match
    if start > 0 and word(form[0]) and (word(text[start - 1]) or (form.isdigit() and text[start - 1] in ":[,")):
        return False
    return not (end < len(text) and word(form[-1]) and word(text[end]))


_WORD = re.compile(r"\w")


def _alone(form: str) -> str:
    """The pattern of a derived text's form where it stands alone: not inside a longer word or number,
    and (only digits) not as a number in JSON."""
    pattern = re.escape(form)
    if _WORD.match(form[0]):
        pattern = r"(?<!\w)" + (r"(?<![:\[,])" if form.isdigit() else "") + pattern
    if _WORD.match(form[-1]):
        pattern += r"(?!\w)"
    return pattern


def mask_value(value: Any, mask: Callable[[str], str]) -> Any:
    """`value` with `mask` applied to every string in it (keys too), before it is encoded."""
    t = type(value)
    if t is str:
        return mask(value)
    if t is dict:
        return {mask(k) if type(k) is str else k: mask_value(v, mask) for k, v in value.items()}
    if t is list or t is tuple:
        return [mask_value(v, mask) for v in value]
    return value


def cut(text: str, limit: int, mask: Callable[[str], str], total: int | None = None) -> str:
    """`text` masked, then cut to `limit` characters (a secret across the cut is masked whole)."""
    text = mask(text)
    if len(text) > limit:
        text = text[:limit] + (f"... ({total} bytes)" if total is not None else f"... ({len(text)} characters)")
    return text


def register_derived(value: str) -> None:
    """A text made from a secret's text, in the running job: masked from now on (`Masker.learn_derived`)."""
    add = DERIVED.get()
    if add is not None:
        add(value)


def debug_exception(logger: logging.Logger, message: str, error: BaseException,
                    mask: Callable[[str], str] | None = None) -> None:
    """An unexpected exception logged at debug level with its traceback masked (by `mask`, or the running
    job's): the record carries the exception and its text already formatted, masked, which a standard
    logging.Formatter of an embedding program prints as it is (it formats exc_info only when exc_text
    is unset), so a secret in the exception's message or its chain is not shown there."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    masking = mask or RUNNING_MASK.get() or (lambda text: text)
    record = logger.makeRecord(logger.name, logging.DEBUG, __file__, 0, masking(message), (),
                               (type(error), error, error.__traceback__))
    record.exc_text = masking("".join(traceback.format_exception(error)).rstrip("\n"))
    logger.handle(record)
