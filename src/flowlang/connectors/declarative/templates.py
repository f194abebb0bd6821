"""The `{key}` placeholders of a connector file that are filled from its configuration (`base_url`,
`regions`, `[headers]`, `[auth]`) must name a key of `[config]`: a misspelt one (`"{tokn}"`) is a
mistake of the file, reported when it is loaded (so `flowlang check` shows it, and no run starts with
it), not when a run reaches its `use` line after other statements have already sent records."""

from __future__ import annotations

import re

from flowlang.connectors.declarative.models import AuthModel, ConnectorFile
from flowlang.connectors.http.header_check import header_problem
from flowlang.connectors.http.urls import placeholders
from flowlang.diagnostics import closest

AUTH_TEXTS = ("token", "user", "password", "name", "value", "token_url", "client_id", "client_secret", "scope")


def config_templates(model: ConnectorFile) -> list[tuple[tuple[str, ...], str]]:
    """Each text filled from the configuration, with its place in the file."""
    found: list[tuple[tuple[str, ...], str]] = [(("base_url",), model.base_url)]
    found += [(("regions", region), url) for region, url in model.regions.items()]
    found += [(("headers", header), value) for header, value in model.headers.items()]
    auth: AuthModel | None = model.auth
    if auth is not None:
        found += [(("auth", key), text) for key in AUTH_TEXTS if isinstance(text := getattr(auth, key), str)]
    return found


def unknown_placeholders(model: ConnectorFile) -> list[tuple[tuple[str, ...], str]]:
    """(place, problem) for each placeholder that names no configuration key."""
    known = set(model.config) | ({"region"} if model.regions else set())
    problems: list[tuple[tuple[str, ...], str]] = []
    for loc, text in config_templates(model):
        for name in placeholders(text):
            if name in known:
                continue
            meant = closest(name, known)
            declared = ", ".join(sorted(known)) or "none"
            problems.append((loc, f"'{{{name}}}' is not a key of [config] (it has: {declared})"
                             + (f" (did you mean '{{{meant}}}'?)" if meant else "")))
    return problems


def bad_headers(model: ConnectorFile) -> list[tuple[tuple[str, ...], str]]:
    """(place, problem) for each header HTTP cannot carry: a name that is not a token ("X Tenant") went
    out with every request and was answered 400 (a value's placeholders are judged once filled)."""
    tables: list[tuple[tuple[str, ...], dict[str, str]]] = [(("headers",), model.headers)]
    tables += [(("operations", name, "headers"), op.headers) for name, op in model.operations.items()]
    problems: list[tuple[tuple[str, ...], str]] = []
    for loc, headers in tables:
        for name, value in headers.items():
            problem = header_problem({name: value})
            if problem is not None:
                problems.append(((*loc, name), problem))
    return problems


BRACED = re.compile(r"\{[^{}]*\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")  # {metadata.order_id}, an idempotency key's


def brace_problem(text: str, name: re.Pattern[str] = NAME, filled: str = "the arguments or the record") -> str | None:
    """What is wrong with the braces of a template: a `{...}` that is no placeholder ('{item-id}', '{}')
    or a brace left open ('/items/{id') was sent as it is, %-encoded (GET /items/%7Bitem-id%7D), never
    filled; in an idempotency_key it was the same text for every record."""
    for m in BRACED.finditer(text):
        inner = m.group(0)[1:-1]
        if not name.fullmatch(inner):
            better = re.sub(r"[^A-Za-z0-9_.]" if name is DOTTED else r"[^A-Za-z0-9_]", "_", inner.strip()) \
                or "name"
            if better[0].isdigit():
                better = "_" + better
            return (f"'{m.group(0)}' is not a placeholder (a name of letters, digits and _, filled from "
                    f"{filled}), so it would be sent as it is: write '{{{better}}}'")
    rest = BRACED.sub("", text)
    if "{" in rest:
        return "holds a '{' that no '}' closes, so it would be sent as it is, never filled"
    if "}" in rest:
        return "holds a '}' that no '{' opens, so it would be sent as it is, never filled"
    return None


def before_query(url: str) -> str:
    """A URL or path up to its query, whose braces are judged: in the query they may be the API's own
    text, sent %-encoded as it reads it (a JSON filter, an Airtable formula's {Due Date})."""
    return url.partition("?")[0]


def bad_templates(model: ConnectorFile) -> list[tuple[tuple[str, ...], str]]:
    """(place, problem) for each base URL, path and idempotency_key whose braces make no placeholder, and
    each idempotency_key that holds none: the one key of every record ('create-item', or 'item-{sku'
    left open), so an API that keeps keys answered every record after the first with the first one's
    result, and the flow counted them sent."""
    problems: list[tuple[tuple[str, ...], str]] = []
    urls = [(("base_url",), model.base_url)] + [(("regions", r), u) for r, u in model.regions.items()]
    for loc, url in urls:
        problem = brace_problem(before_query(url), filled="the configuration")
        if problem is not None:
            problems.append((loc, problem))
    for name, op in model.operations.items():
        problem = brace_problem(before_query(op.path))
        if problem is not None:
            problems.append((("operations", name, "path"), problem))
        key = op.idempotency_key
        if key is None:
            continue
        problem = brace_problem(key, DOTTED)
        if problem is None and not BRACED.search(key):
            problem = (f"{key!r} holds no {{field}} of the record, so every record would send this one key and "
                       "an API that keeps keys would answer each record after the first with the first one's "
                       "result: write a template of the record's fields, such as 'item-{sku}'")
        if problem is not None:
            problems.append((("operations", name, "idempotency_key"), problem))
    return problems


__all__ = ["bad_headers", "bad_templates", "brace_problem", "config_templates", "unknown_placeholders"]
