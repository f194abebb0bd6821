"""A REST API on 127.0.0.1 for the tests: collections with CRUD, the five pagination styles, faults,
auth (bearer, basic, API key, OAuth2 client credentials), batches, redirects, and a request log.

    with FakeApi({"orders": [{"id": 1}]}) as api:
        api.url                      # http://127.0.0.1:PORT
        api.route("GET", "/x", lambda req: (200, {}, {"a": 1}))
        api.requests                 # every request: method, path, query, headers, body
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[["Request"], tuple[int, dict[str, str], Any]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes
    match: re.Match[str] | None = None
    at: float = field(default_factory=time.monotonic)
    query_string: str = ""  # as sent, to see a name that was sent twice


@dataclass
class FakeState:
    collections: dict[str, list[dict[str, Any]]]
    token: str | None = None
    requests: list[Request] = field(default_factory=list)
    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1000
    in_flight: int = 0
    max_in_flight: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeapi/1"
    disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms delayed-ACK stalls

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    @property
    def state(self) -> FakeState:
        return self.server.state  # type: ignore[attr-defined, no-any-return]

    def send_json(self, status: int, body: Any, headers: dict[str, Any] | None = None) -> None:
        """Answer with a body; a header whose value is a list is sent once for each of its values."""
        if isinstance(body, bytes):
            data = body
        elif body is None:
            data = b""
        else:
            data = to_json(body).encode()
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        for k, v in headers.items():
            for one in v if isinstance(v, list) else [v]:
                self.send_header(k, one)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _request(self, method: str) -> Request:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw, parse_float=Decimal)
            except ValueError:
                body = raw.decode(errors="replace")
        return Request(method, url.path, dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                       {k.lower(): v for k, v in self.headers.items()}, body, raw, query_string=url.query)

    def handle_method(self, method: str) -> None:
        req = self._request(method)
        state = self.state
        with state.lock:
            state.requests.append(req)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            key = f"{method} {self.path}"
            state.hits[key] = state.hits.get(key, 0) + 1
        try:
            for route_method, pattern, handler in state.routes:
                m = pattern.fullmatch(req.path)
                if m and route_method in (method, "*"):
                    req.match = m
                    status, headers, body = handler(req)
                    return self.send_json(status, body, headers)
            if state.token is not None and req.headers.get("authorization") != f"Bearer {state.token}":
                return self.send_json(401, {"error": "unauthorized"})
            status, headers, body = crud(state, req)
            self.send_json(status, body, headers)
        finally:
            with state.lock:
                state.in_flight -= 1

    def do_GET(self) -> None:
        self.handle_method("GET")

    def do_POST(self) -> None:
        self.handle_method("POST")

    def do_PUT(self) -> None:
        self.handle_method("PUT")

    def do_PATCH(self) -> None:
        self.handle_method("PATCH")

    def do_DELETE(self) -> None:
        self.handle_method("DELETE")

    def do_HEAD(self) -> None:
        self.handle_method("HEAD")


def to_json(value: Any) -> str:
    """JSON with Decimals written digit for digit (as a real API would)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, default=str)


def create(state: FakeState, records: list[dict[str, Any]], body: Any) -> dict[str, Any]:
    record = dict(body) if isinstance(body, dict) else {"value": body}
    with state.lock:
        if "id" not in record:
            state.next_id += 1
            record["id"] = state.next_id
        records.append(record)
    return record


def crud(state: FakeState, req: Request) -> tuple[int, dict[str, str], Any]:
    """Collections: GET /c (filtered by query), GET /c/ID, POST /c, POST /c/batch, PUT/PATCH/DELETE /c/ID."""
    parts = [urllib.parse.unquote(p) for p in req.path.split("/") if p]
    if not parts:
        return 404, {}, {"error": "no collection"}
    name = parts[0]
    records = state.collections.setdefault(name, []) if req.method == "POST" else state.collections.get(name)
    if records is None:
        return 404, {}, {"error": f"no collection {name}"}
    if len(parts) == 1 and req.method == "GET":
        return 200, {}, [r for r in records if all(str(r.get(k)) == v for k, v in req.query.items())]
    if len(parts) == 1 and req.method == "POST":
        return 201, {}, create(state, records, req.body)
    if len(parts) == 2 and parts[1] == "batch" and req.method == "POST":
        items = req.body.get("items") if isinstance(req.body, dict) else req.body
        results = []
        for item in items or []:
            if isinstance(item, dict) and item.get("fail"):
                results.append({"ok": False, "error": f"rejected {item.get('sku', '')}".strip()})
            else:
                results.append({"ok": True, "record": create(state, records, item)})
        return 200, {}, {"results": results}
    if len(parts) != 2:
        return 404, {}, {"error": "not found"}
    found = next((r for r in records if str(r.get("id")) == parts[1]), None)
    if found is None:
        return 404, {}, {"error": f"no {name} {parts[1]}"}
    if req.method == "GET":
        return 200, {}, found
    if req.method == "DELETE":
        records.remove(found)
        return 204, {}, None
    found.update(req.body if isinstance(req.body, dict) else {})
    return 200, {}, found


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # hundreds of connections at once (parallel loops) are not refused
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that goes away (a killed process, a timeout) is part of the tests


class _Server6(_Server):
    address_family = socket.AF_INET6


class FakeApi:
    """Start with `with FakeApi(...) as api:`; the server runs on a daemon thread (on 127.0.0.1, or
    on the address given as host, like "::1")."""

    def __init__(self, collections: dict[str, list[dict[str, Any]]] | None = None, token: str | None = None,
                 host: str = "127.0.0.1") -> None:
        self.state = FakeState({k: [dict(r) for r in v] for k, v in (collections or {}).items()}, token)
        self.host = host
        self.server = (_Server6 if ":" in host else _Server)((host, 0), _Handler)
        self.server.daemon_threads = True
        self.server.state = self.state  # type: ignore[attr-defined]
        # serve_forever looks for a shutdown every poll_interval: its default 0.5 s made each `with FakeApi()`
        # cost up to half a second at its end (150 fuzz examples each: over a minute of the suite)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.server_address[1]}"

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.state.requests if r.method == method and r.path == path)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.state.routes.append((method, re.compile(pattern), handler))

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def paged(records: list[dict[str, Any]], req: Request, style: str, base: str) -> tuple[int, dict[str, str], Any]:
    """Answer a list request in one of the pagination styles."""
    q = req.query
    if style == "offset":
        offset, limit = int(q.get("offset", 0)), int(q.get("limit", 2))
        return 200, {}, {"items": records[offset:offset + limit], "total": len(records)}
    if style == "cursor":
        start = int(q["cursor"]) if q.get("cursor") else 0
        limit = int(q.get("limit", 2))
        nxt = start + limit
        return 200, {}, {"results": records[start:nxt], "next_cursor": str(nxt) if nxt < len(records) else None}
    page, per = int(q.get("page", 1)), int(q.get("per_page", 2))
    chunk = records[(page - 1) * per: page * per]
    pages = max(1, -(-len(records) // per))
    next_url = f"{base}{req.path}?{urllib.parse.urlencode({**q, 'page': page + 1, 'per_page': per})}" \
        if page < pages else None
    if style == "page":
        return 200, {}, {"data": chunk, "page": page, "total_pages": pages}
    if style == "link":
        return 200, ({"Link": f'<{next_url}>; rel="next"'} if next_url else {}), chunk
    return 200, {}, {"records": chunk, "next": next_url}


def slow(seconds: float, handler: Handler) -> Handler:
    def wrapped(req: Request) -> tuple[int, dict[str, str], Any]:
        time.sleep(seconds)
        return handler(req)
    return wrapped


class RateLimited:
    """A handler for FakeApi.route that takes at most `per_second` requests in any second (a sliding
    window of the requests it took, as APIs count them) and refuses the others with 429, with
    `Retry-After: retry_after` when given. It keeps when each request arrived (`arrivals`, taken or
    not) and how many times each record was taken (`taken`, by its body's `key` field): a record
    taken twice is one sent twice."""

    def __init__(self, per_second: int, retry_after: str | None = None, key: str = "n") -> None:
        self.per_second = per_second
        self.retry_after = retry_after
        self.key = key
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.accepted: list[float] = []
        self.taken: dict[Any, int] = {}

    def __call__(self, req: Request) -> tuple[int, dict[str, str], Any]:
        now = time.monotonic()
        with self.lock:
            self.arrivals.append(now)
            if sum(1 for t in self.accepted[-self.per_second:] if now - t < 1.0) >= self.per_second:
                return 429, {"Retry-After": self.retry_after} if self.retry_after is not None else {}, \
                    {"error": "too many requests"}
            self.accepted.append(now)
            record = req.body.get(self.key) if isinstance(req.body, dict) else None
            self.taken[record] = self.taken.get(record, 0) + 1
        return 201, {}, {"ok": True}

    def most_in_a_second(self, after: float = 0.0) -> int:
        """The most requests that arrived in any one second, counting from `after` seconds past the first."""
        start = self.arrivals[0] + after if self.arrivals else 0.0
        times = [t for t in self.arrivals if t >= start]
        return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
