"""The `http` connector's connection: get, post, put, patch, delete and head on any URL of a base."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, RunServices
from flowlang.connectors.http.client import HttpClient
from flowlang.connectors.http.pagination import Paginator, page_spec
from flowlang.connectors.http.retry import IDEMPOTENT
from flowlang.connectors.http.urls import fill, placeholders
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import is_binary
from flowlang.runtime.jsoncodec import binary_refused
from flowlang.runtime.values import Value, to_text, type_name

MAX_SETTING = 10**15  # the largest number a setting (timeout, retry, max_connections, ...) takes
REQUEST_KEYS = ("query", "headers", "body", "form", "pages", "timeout", "idempotency_key")
REQUEST_OPTIONS = frozenset(REQUEST_KEYS)


def split_request(op: str, args: list[Value], kwargs: dict[str, Value]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(path, request options, template values) of a call like api.get("/x/{id}", id: 1, query: {...})."""
    if len(args) > 1:
        raise FlowRuntimeError(f"{op}() takes the path, then key: value arguments", "connector")
    path = args[0] if args else kwargs.get("path", "")
    if not isinstance(path, str):
        raise FlowRuntimeError(f"{op}() needs the path as a string, got {type_name(path)}", "connector")
    if REQUEST_OPTIONS.issuperset(kwargs):  # the usual call: request options only (read, never changed)
        return path, kwargs, {}
    options: dict[str, Any] = {}
    templates: dict[str, Any] = {}
    for k, v in kwargs.items():
        if k in REQUEST_OPTIONS:
            options[k] = v
        elif k != "path":
            templates[k] = v
    return path, options, templates


# the names other HTTP clients give the request options (Python's requests and httpx, axios, fetch, n8n), and
# the query parameters of pagination written as arguments (`page: 2`)
OTHER_CLIENTS = {"params": "query", "query_params": "query", "qs": "query", "querystring": "query",
                 "query_string": "query", "search_params": "query", "searchParams": "query", "json": "body",
                 "data": "body", "payload": "body", "content": "body", "header": "headers",
                 "pagination": "pages", "paginate": "pages", "idempotency": "idempotency_key",
                 "idempotencyKey": "idempotency_key", "form_data": "form", "page": "query", "per_page": "query",
                 "limit": "query", "offset": "query", "cursor": "query", "page_size": "query"}
OPTION_SHAPES = {"query": "the query string: query: {NAME: ...}", "body": "the JSON body: body: {...}",
                 "headers": "headers: {\"X-Key\": k}", "pages": "pagination: pages: {style: \"page\", ...}",
                 "form": "form fields: form: {a: 1}", "idempotency_key": "idempotency_key: \"order-{o.id}\""}


def unfilled_problem(path: str, name: str, names: list[str], sending: bool = False) -> tuple[str, str | None]:
    """(message, hint) of a keyword argument `name` of a request that is no request option and no
    placeholder of `path` (`api.get("/customers", params: {...})`, as Python's requests names the query),
    for the run and `flowlang check`."""
    from flowlang.diagnostics import closest

    message = (f"{name}: is no argument of a request: the path {path!r} has no {{{name}}} to fill (its "
               f"placeholders: {', '.join(names) or 'none'}; the request options: {', '.join(REQUEST_KEYS)})")
    meant = OTHER_CLIENTS.get(name) or closest(name, [*REQUEST_KEYS, *names])
    if meant is None:
        return message, None
    if meant == "body" and sending:
        return message, "a send sends its record as the body: send {...} to api.post(\"/path\")"
    if meant == "query" and name in OTHER_CLIENTS and OTHER_CLIENTS[name] == "query" and name not in (
            "params", "query_params", "qs", "querystring", "query_string", "search_params", "searchParams"):
        return message, f"did you mean the query parameter {name}? query: {{{name}: ...}}"
    shape = f" ({OPTION_SHAPES[meant]})" if meant in OPTION_SHAPES else ""
    return message, f"did you mean {meant}:?{shape}"


def fill_path(path: str, templates: Mapping[str, Any], record: Any = None, dry_run: bool = False) -> str:
    if not templates and "{" not in path:
        return path
    names = placeholders(path)
    extra = [k for k in templates if k not in names]
    if extra:
        message, hint = unfilled_problem(path, extra[0], names)
        raise FlowRuntimeError(message if hint is None else f"{message}; {hint}", "connector")
    if not names:
        return path
    values = dict(record) if isinstance(record, dict) else {}
    values.update(templates)
    return fill(path, values, dry_run=dry_run)


def mapping(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FlowRuntimeError(f"{what}: must be an object, got {type_name(value)}", "connector")
    return value


def idempotency_key_of(value: Any) -> str | None:
    """The Idempotency-Key a call gives (None: none). A blank one (a record's empty field) is refused: it
    is no key (sent empty, or the same for every such record, so the API answers each with the first
    one's result), and a request with it was retried after a 503 or a timeout as safe to repeat."""
    if value is None:
        return None
    if is_binary(value):  # `<6 bytes>`: one key for every such record
        raise FlowRuntimeError(binary_refused(value, "an idempotency key"), "data")
    text = to_text(value)
    if not text.strip():
        raise FlowRuntimeError("idempotency_key: is blank, so it is no key (the API would take the request as one "
                               "without a key, and a retry could do its work twice): give each record a key of its "
                               "own, or leave idempotency_key: out", "connector")
    return text


def timeout_of(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) not in (int,) and type_name(value) != "number":
        raise FlowRuntimeError(f"timeout: must be a number of seconds, got {type_name(value)}", "connector")
    if not value > 0:  # 0 or less was taken, and gave the request no time limit at all
        raise FlowRuntimeError(f"timeout: must be a positive number of seconds, got {to_text(value)}", "connector")
    if value > MAX_SETTING:  # 1e400: float() of it is infinity, which no timer takes
        raise FlowRuntimeError(f"timeout: the number is too large (at most {MAX_SETTING:,})", "connector")
    return float(value)


async def ready(value: Value) -> Value:
    return value


class HttpConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, client: HttpClient, services: RunServices) -> None:
        super().__init__(name, spec)
        self.client = client
        self.services = services

    def write_count(self) -> int:
        return self.client.writes

    def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Coroutine[Any, Any, Value]:
        """Checks and builds the request at the call (a bad one raises there) and returns the
        client's coroutine itself: awaited, the answer's value (no coroutine of its own between the
        statement and the client: every await of a request passes through each one on its way)."""
        method = op.upper()
        path, options, templates = split_request(op, args, kwargs)
        query = options.get("query")
        filled = fill_path(path, templates, dry_run=self.services.dry_run) if templates or "{" in path else path
        url = self.client.url(filled, query if type(query) is dict else mapping(query, "query"))
        headers = options.get("headers")
        if headers is not None and type(headers) is not dict:
            mapping(headers, "headers")  # raises
        if options.get("pages") is not None:
            spec = page_spec(options["pages"])
            return ready(Paginator(self.client, method, url, None, headers, spec).stream(f"{self.name}.{op}({path!r})"))
        key = options.get("idempotency_key")
        body, form = options.get("body"), options.get("form")
        if form is not None:
            if body is not None:
                raise FlowRuntimeError(f"{op}() takes body: (JSON) or form: (form fields), not both", "connector")
            if not isinstance(form, dict):
                raise FlowRuntimeError(f"form: must be an object of fields, got {type_name(form)}", "connector")
        timeout = options.get("timeout")
        return self.client.request_value(method, url, headers=headers, body=form if form is not None else body,
                                         idempotency_key=idempotency_key_of(key),
                                         timeout=timeout_of(timeout) if timeout is not None else None,
                                         form=form is not None)

    def repeatable(self, op: str, record: Value, kwargs: dict[str, Value]) -> bool:
        key = kwargs.get("idempotency_key")
        return op.upper() in IDEMPOTENT or (key is not None and bool(to_text(key).strip()))

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        method = op.upper()
        path, options, templates = split_request(op, args, kwargs)
        if "body" in options:
            raise FlowRuntimeError("send gives the record as the body; do not pass body:", "connector")
        form = options.get("form", False)
        if not isinstance(form, bool):
            raise FlowRuntimeError("in a send, form: true sends the record as form fields (form: takes true or "
                                   f"false here, got {type_name(form)})", "connector")
        filled = fill_path(path, templates, record, self.services.dry_run)
        url = self.client.url(filled, mapping(options.get("query"), "query"))
        key = options.get("idempotency_key")
        answer = await self.client.request(method, url, headers=mapping(options.get("headers"), "headers"),
                                           body=record, idempotency_key=idempotency_key_of(key),
                                           timeout=timeout_of(options.get("timeout")), form=form)
        return answer.value

    async def close(self) -> None:
        await self.client.close()
