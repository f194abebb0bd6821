"""URLs: joining a path to a base URL, filling '{name}' templates with percent-encoded segments,
query strings, and URLs shown with secrets masked."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit, urlunsplit

from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import is_binary
from flowlang.runtime.formcodec import form_pairs, query_value
from flowlang.runtime.jsoncodec import binary_refused
from flowlang.runtime.values import Secret, to_text

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote(text, safe="") leaves as it is


def segment(value: Any) -> str:
    """A value as one path segment: '/', '?', '#' and the rest are percent-encoded, and `.` and `..`
    (which a server or proxy would take as "this" or "the parent" folder) are sent as %2E and %2E%2E."""
    if isinstance(value, Secret):
        value = value.reveal()
    if is_binary(value):  # its text `<6 bytes>` would stand in for the data, as in a query (formcodec)
        raise FlowRuntimeError(binary_refused(value, "a path segment"), "data")
    text = to_text(value)
    if text in (".", ".."):
        return "%2E" * len(text)
    return quote(text, safe="")


def placeholders(template: str) -> list[str]:
    return list(_placeholders(template))


@lru_cache(maxsize=1024)  # a flow's few paths are asked at every request
def _placeholders(template: str) -> tuple[str, ...]:
    return tuple(PLACEHOLDER.findall(template))


def encoded(text: str) -> str:
    """`quote(text, safe="")`, without its work for text that needs no escape (a number, a name)."""
    return text if UNRESERVED.fullmatch(text) else quote(text, safe="")


DRY_RUN_NULL = ("; in a dry run a write sends nothing and its `as NAME` is null, so a value taken from its "
                "answer is null too (flowlang plan lists the writes that follow one)")


def fill(template: str, values: Mapping[str, Any], what: str = "path", dry_run: bool = False) -> str:
    """'/customers/{id}' with each value encoded as one segment; a missing value is an error (under
    --dry-run saying that a write's answer, which it did not get, is null)."""
    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values or values[name] is None:
            hint = DRY_RUN_NULL if dry_run and name in values else ""
            raise FlowRuntimeError(f"the {what} {template!r} needs a value for '{name}'{hint}", "value")
        return segment(values[name])
    return PLACEHOLDER.sub(replace, template)


def join(base_url: str | None, path: str, given_null: bool = False) -> str:
    """base + path by concatenation ("https://x/api" + "/orders" is "https://x/api/orders");
    an absolute URL is used as it is."""
    if path.startswith(("http://", "https://")):
        return path
    if not base_url:
        why = (": base_url: is null here (is the environment variable it is read from set?)" if given_null
               else " (or use a full http:// URL)")
        raise FlowRuntimeError(f"the path {path!r} needs a base_url{why}", "connector")
    if not path:
        return base_url
    base, _, base_query = base_url.partition("?")
    joined = base.rstrip("/") + "/" + path.lstrip("/")
    if not base_query:
        return joined
    # "https://x/api?api-version=2" + "/orders": the base URL's query goes after the path (concatenated,
    # it became part of the path's query: /api?api-version=2/orders); the path's own names win
    at, _, own = joined.partition("?")
    named = {pair.partition("=")[0] for pair in own.split("&") if pair}
    kept = [pair for pair in base_query.split("&") if pair and pair.partition("=")[0] not in named]
    return at + "?" + "&".join([*kept, *(p for p in own.split("&") if p)])


@lru_cache(maxsize=256)  # a flow's few parameter names are asked at every request
def encoded_name(name: str) -> str:
    return encoded(name)


def query_text(value: Any) -> str:
    """One query value, encoded: a whole number as its digits (nothing in them needs an escape)."""
    return str(value) if type(value) is int else encoded(query_value(value))


def with_query(url: str, query: Mapping[str, Any] | None, style: str = "repeat") -> str:
    """Add query parameters (null values are left out, lists repeat the name). A name already in the
    URL's query is replaced, never sent twice. With `style` "brackets" or "indices" (param_style), lists
    and objects are written as form bodies write them: tags[]=a or tags[0]=a, created[gte]=1."""
    if not query:
        return url
    fields: list[str] = []  # name=value, encoded as urlencode(quote_via=quote, safe="") would
    names: set[str] = set()
    for key, value in query.items():
        if value is None:
            continue
        if style != "repeat" and isinstance(value, list | dict):
            pairs = form_pairs(value, key, style) if any(v is not None for v in value) else []
            fields.extend(f"{encoded_name(n)}={encoded(v)}" for n, v in pairs)
            names.update(encoded_name(n) for n, _ in pairs)
            continue
        name = encoded_name(key)
        if isinstance(value, list):
            texts = [query_text(v) for v in value if v is not None]
            if not texts:
                continue
            fields.extend(f"{name}={text}" for text in texts)
        else:
            fields.append(f"{name}={query_text(value)}")
        names.add(name)
    if not fields:
        return url
    extra = "&".join(fields)
    if "?" not in url and "#" not in url:
        return f"{url}?{extra}"
    parts = urlsplit(url)
    kept = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in names)
    combined = f"{kept}&{extra}" if kept else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, combined, parts.fragment))


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, the port always written (https://x and https://x:443 are one origin)."""
    head = url.split("/", 3)
    return _origin("/".join(head[:3]) if len(head) > 3 else url)  # the part before the path decides


@lru_cache(maxsize=256)  # a connection asks for the origin of the same few hosts at every request
def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or DEFAULT_PORTS.get(scheme, 0)}"


def base_prefix(url: str) -> str | None:
    """'https://x.com:8443/api' -> 'https://x.com:8443/': a URL that starts with it has that very
    authority (an authority ends at the first '/'), so that origin; None when the authority is not
    plain (user info, '?', '#', a backslash) or the URL is not http(s)."""
    head = url.split("/", 3)
    if len(head) < 3 or head[0] not in ("http:", "https:") or head[1] or not head[2] or \
            any(c in head[2] for c in "@?#\\"):
        return None
    return "/".join(head[:3]) + "/"


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def unreadable(url: str) -> str | None:
    """Why urlsplit cannot read `url` ('Invalid IPv6 URL', a port past 65535 or not a number), or None."""
    try:
        urlsplit(url).port  # noqa: B018  # reading the port is what checks it
    except ValueError as e:
        return str(e)
    return None


def shown_host(host: str) -> str:
    """A host_of() for messages: a user and password in it are `***@`."""
    scheme, _, netloc = host.partition("://")
    return f"{scheme}://***@{netloc.rsplit('@', 1)[-1]}" if "@" in netloc else host


def shown(url: str, mask: Any) -> str:
    """A URL for messages: user info removed, secrets masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return str(mask(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))))


def query_names(url: str) -> dict[str, str]:
    """The query parameters already in a URL, name -> (last) value, decoded."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))





def without_secrets(url: str, mask: Callable[[str], str]) -> str:
    """The URL without the query parameters that hold a secret, the others as they were, byte for byte:
    what a checkpoint keeps of a next page's URL (an API's Link header or next URL repeats the request's
    api_key=..., in whatever encoding it likes). Each parameter is decoded before the secret is looked
    for, so no encoding of it stays; a resume puts them back (with_secret_fields)."""
    parts = urlsplit(url)
    kept = [f for f in _fields(parts.query) if not _holds_secret(f, mask)]
    if len(kept) == len(_fields(parts.query)):
        return url
    return urlunsplit(parts._replace(query="&".join(kept)))


def with_secret_fields(url: str, request: str, mask: Callable[[str], str]) -> str:
    """A URL without_secrets() kept, with the query parameters of the request that hold a secret put
    back as the request has them (the connection's auth puts its own back on every request)."""
    held = [f for f in _fields(urlsplit(request).query) if _holds_secret(f, mask)]
    if not held:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="&".join([*_fields(parts.query), *held])))


def _fields(query: str) -> list[str]:
    return [f for f in query.split("&") if f] if query else []


def _holds_secret(field: str, mask: Callable[[str], str]) -> bool:
    name, _, value = field.partition("=")
    return any(mask(text) != text for text in (unquote_plus(name), unquote_plus(value)))
