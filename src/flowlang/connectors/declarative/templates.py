"""The `{key}` placeholders of a connector file that are filled from its configuration (`base_url`,
`regions`, `[headers]`, `[auth]`) must name a key of `[config]`: a misspelt one (`"{tokn}"`) is a
mistake of the file, reported when it is loaded (so `flowlang check` shows it, and no run starts with
it), not when a run reaches its `use` line after other statements have already sent records."""

from __future__ import annotations

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


__all__ = ["bad_headers", "config_templates", "unknown_placeholders"]
