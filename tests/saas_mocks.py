"""Strict loopback mocks of GitHub's, Stripe's and Asana's REST APIs (aiohttp, on 127.0.0.1), for
the tests of flows written with declarative connectors. Each behaves as its maker documents and
refuses what the real API refuses, with the real error shapes:

- GitHub: bearer (or `token`) auth, JSON bodies, Link-header pages (`per_page` at most 100,
  `rel="next"`, `rel="last"`), `x-ratelimit-*` headers (reset in epoch seconds), secondary rate
  limits as 403 or 429 with `retry-after`, ETag and 304 for `If-None-Match`, 422 validation errors.
- Stripe: basic auth with the key as user (or bearer), form bodies with nested keys
  (`metadata[order_id]=1`, `items[0][price]=...`, `expand[]=...`), unknown parameters refused,
  lists with `has_more` and `starting_after`, `Idempotency-Key` replays (another body with the same
  key is a 400 `idempotency_error`), 429 rate limits, 402 card errors.
- Asana: bearer auth, `{"data": ...}` envelopes both ways, offset-token pages (`limit` 1..100,
  `next_page.offset`), `opt_fields`, 429 with `Retry-After`, 400 with an `errors` list.

    with GitHubMock() as gh:
        gh.url; gh.issues; gh.requests; gh.faults.append((3, 403))   # the 3rd request refused
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    """One request as the server got it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0

    def q(self, name: str) -> str | None:
        found = [v for k, v in self.query if k == name]
        return found[-1] if found else None


SEEN = web.RequestKey("seen", Seen)


class MockServer:
    """An aiohttp application on a free port of 127.0.0.1, run on a thread of its own."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.faults: list[tuple[int, int]] = []  # (number of the request, status to answer instead)
        self.lock = threading.RLock()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def fault(self, status: int, seen: Seen) -> web.Response:
        raise NotImplementedError

    @web.middleware
    async def _log(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(request.method, request.path, list(urllib.parse.parse_qsl(request.query_string,
                                                                               keep_blank_values=True)),
                    {k.lower(): v for k, v in request.headers.items()}, body)
        with self.lock:
            self.requests.append(seen)
            number = len(self.requests)
            fault = next((s for n, s in self.faults if n == number), None)
        request[SEEN] = seen
        response = self.fault(fault, seen) if fault is not None else await handler(request)
        seen.status = response.status
        return response

    def __enter__(self) -> MockServer:
        self._thread.start()

        async def start() -> str:
            app = web.Application(middlewares=[self._log])
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            return f"http://127.0.0.1:{port}"

        self.url = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for r in self.requests if r.method == method and re.fullmatch(pattern, r.path))


def jsonr(status: int, value: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(value), content_type="application/json",
                        headers=headers or {})


# ---- GitHub ----------------------------------------------------------------------------------------

GH_DOCS = "https://docs.github.com/rest"


class GitHubMock(MockServer):
    """GitHub's REST API for one repository's issues."""

    def __init__(self, token: str = "ghp_test", issues: int = 0, owner: str = "octo", repo: str = "hello") -> None:
        super().__init__()
        self.token = token
        self.owner, self.repo = owner, repo
        self.issues: list[dict[str, Any]] = [self._issue(n, f"Issue {n}", {}) for n in range(1, issues + 1)]
        self.limit, self.remaining, self.reset_in = 5000, 5000, 3600.0
        self.reset_at = 0.0  # while the limit is spent: the epoch second it resets

    def _issue(self, number: int, title: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": 1000 + number, "number": number, "title": title, "state": body.get("state", "open"),
                "body": body.get("body"), "labels": [{"name": n} for n in body.get("labels", [])],
                "user": {"login": "octocat"}, "created_at": "2024-01-01T00:00:00Z",
                "url": f"{self.url}/repos/{self.owner}/{self.repo}/issues/{number}"}

    def routes(self, app: web.Application) -> None:
        base = f"/repos/{self.owner}/{self.repo}"
        app.router.add_get(f"{base}/issues", self.list_issues)
        app.router.add_post(f"{base}/issues", self.create_issue)
        app.router.add_get(base + "/issues/{number}", self.get_issue)
        app.router.add_patch(base + "/issues/{number}", self.update_issue)
        app.router.add_get("/search/issues", self.search)

    def rate_headers(self) -> dict[str, str]:
        with self.lock:
            self.remaining = max(0, self.remaining - 1)
            reset = int(time.time() + self.reset_in)
            if self.remaining == 0:
                self.reset_at = reset
            return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(self.remaining),
                    "x-ratelimit-reset": str(reset), "x-ratelimit-used":
                    str(self.limit - self.remaining), "x-ratelimit-resource": "core"}

    def fault(self, status: int, seen: Seen) -> web.Response:
        """403 and 429: a secondary rate limit with retry-after; 4030: the primary limit spent
        (remaining 0, a reset ahead); 4031: a secondary limit said in the message alone."""
        if status == 403:  # a secondary rate limit, as GitHub documents it
            return jsonr(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                               "before you try again.", "documentation_url": GH_DOCS}, {"retry-after": "1"})
        if status == 429:
            return jsonr(429, {"message": "You have exceeded a secondary rate limit.", "documentation_url": GH_DOCS},
                         {"retry-after": "1"})
        if status == 4031:  # a secondary rate limit without retry-after (GitHub: "wait at least one minute")
            return jsonr(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                               "before you try again.", "documentation_url": GH_DOCS})
        if status == 4030:  # the primary limit spent: remaining 0, reset one second ahead (epoch seconds)
            return jsonr(403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": GH_DOCS},
                         {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                          "x-ratelimit-reset": str(int(time.time()) + 2)})
        return jsonr(status, {"message": "Server Error"})

    def refused(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return jsonr(401, {"message": "Bad credentials", "documentation_url": GH_DOCS})
        with self.lock:
            if self.reset_at and time.time() < self.reset_at:  # the limit is spent until its reset
                return jsonr(403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": GH_DOCS},
                             {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": "0",
                              "x-ratelimit-reset": str(int(self.reset_at))})
            if self.reset_at:
                self.reset_at, self.remaining = 0.0, self.limit
        accept = request.headers.get("Accept", "")
        if "application/vnd.github" not in accept and "application/json" not in accept:
            return jsonr(415, {"message": "Unsupported 'Accept' header", "documentation_url": GH_DOCS})
        return None

    def json_body(self, seen: Seen) -> Any:
        try:
            return json.loads(seen.body)
        except ValueError:
            return None

    async def list_issues(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        seen: Seen = request[SEEN]
        try:
            per_page = min(100, int(seen.q("per_page") or 30))
            page = int(seen.q("page") or 1)
        except ValueError:
            return jsonr(422, {"message": "Validation Failed", "documentation_url": GH_DOCS})
        state = seen.q("state") or "open"
        wanted = [w for w in (seen.q("labels") or "").split(",") if w]  # a comma-separated list; all must match
        with self.lock:
            rows = [i for i in self.issues if (state == "all" or i["state"] == state)
                    and all(w in [x["name"] for x in i["labels"]] for w in wanted)]
        last = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page: page * per_page]
        body = json.dumps(chunk)
        etag = 'W/"' + hashlib.sha1(body.encode()).hexdigest() + '"'
        headers = {"ETag": etag, **self.rate_headers()}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)

        def link(p: int) -> str:
            query = [(k, v) for k, v in seen.query if k != "page"] + [("page", str(p))]
            return f"{self.url}{seen.path}?{urllib.parse.urlencode(query)}"
        links = []
        if page < last:
            links += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            links += [f'<{link(1)}>; rel="first"', f'<{link(page - 1)}>; rel="prev"']
        if links:
            headers["Link"] = ", ".join(links)
        return web.Response(status=200, text=body, content_type="application/json", headers=headers)

    async def get_issue(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        number = int(request.match_info["number"])
        with self.lock:
            found = next((i for i in self.issues if i["number"] == number), None)
        if found is None:
            return jsonr(404, {"message": "Not Found", "documentation_url": GH_DOCS})
        return jsonr(200, found, self.rate_headers())

    async def create_issue(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        body = self.json_body(request[SEEN])
        if not isinstance(body, dict):
            return jsonr(400, {"message": "Problems parsing JSON", "documentation_url": GH_DOCS})
        if not body.get("title"):
            return jsonr(422, {"message": "Validation Failed", "errors": [
                {"resource": "Issue", "code": "missing_field", "field": "title"}], "documentation_url": GH_DOCS})
        unknown = set(body) - {"title", "body", "labels", "assignees", "milestone", "assignee", "type"}
        if unknown:
            return jsonr(422, {"message": "Validation Failed", "errors": [
                {"resource": "Issue", "code": "invalid", "field": sorted(unknown)[0]}], "documentation_url": GH_DOCS})
        with self.lock:
            issue = self._issue(len(self.issues) + 1, body["title"], body)
            self.issues.append(issue)
        return jsonr(201, issue, self.rate_headers())

    async def update_issue(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        number = int(request.match_info["number"])
        body = self.json_body(request[SEEN])
        if not isinstance(body, dict):
            return jsonr(400, {"message": "Problems parsing JSON", "documentation_url": GH_DOCS})
        with self.lock:
            found = next((i for i in self.issues if i["number"] == number), None)
            if found is None:
                return jsonr(404, {"message": "Not Found", "documentation_url": GH_DOCS})
            if "state" in body and body["state"] not in ("open", "closed"):
                return jsonr(422, {"message": "Validation Failed", "errors": [
                    {"resource": "Issue", "code": "invalid", "field": "state"}], "documentation_url": GH_DOCS})
            found.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
        return jsonr(200, found, self.rate_headers())

    async def search(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        q = request[SEEN].q("q")
        if not q:
            return jsonr(422, {"message": "Validation Failed", "errors": [
                {"resource": "Search", "field": "q", "code": "missing"}], "documentation_url": GH_DOCS})
        phrase = re.sub(r'\b[a-z]+:(?:"[^"]*"|\S+)', "", q).strip().strip('"').lower()  # the text without qualifiers
        state = "open" if "is:open" in q else "closed" if "is:closed" in q else None
        with self.lock:
            items = [i for i in self.issues if phrase in i["title"].lower() and state in (None, i["state"])]
        seen: Seen = request[SEEN]
        per_page, page = min(100, int(seen.q("per_page") or 30)), int(seen.q("page") or 1)  # as GitHub: 30 a page
        headers = self.rate_headers()
        if page * per_page < len(items):
            query = [(k, v) for k, v in seen.query if k != "page"] + [("page", str(page + 1))]
            headers["Link"] = f'<{self.url}{seen.path}?{urllib.parse.urlencode(query)}>; rel="next"'
        return jsonr(200, {"total_count": len(items), "incomplete_results": False,
                           "items": items[(page - 1) * per_page: page * per_page]}, headers)


# ---- Stripe ----------------------------------------------------------------------------------------

def stripe_error(status: int, message: str, type_: str = "invalid_request_error",
                 headers: dict[str, str] | None = None, **more: Any) -> web.Response:
    return jsonr(status, {"error": {"message": message, "type": type_, **more}},
                 {"Request-Id": f"req_{time.monotonic_ns()}", **(headers or {})})


class Unknown(ValueError):
    pass


def nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields as Stripe (Rack) reads them: a[b]=1 an object, a[]=1 or a[0]=1 a list; a name
    given twice without brackets is refused (Stripe answers "Invalid array")."""
    out: dict[str, Any] = {}
    plain: set[str] = set()
    for key, value in pairs:
        m = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if m is None:
            raise Unknown(key)
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        if len(parts) == 1:
            if parts[0] in out:
                raise ValueError(parts[0])  # a name given twice: Stripe wants name[]=
            plain.add(parts[0])
            out[parts[0]] = value
            continue
        holder: Any = out
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            kind: type = list if nxt == "" or nxt.isdigit() else dict
            if isinstance(holder, list):
                idx = int(part) if part.isdigit() else len(holder) - 1
                while len(holder) <= idx:
                    holder.append(kind())
                holder = holder[idx]
            else:
                holder = holder.setdefault(part, kind())
        last = parts[-1]
        if isinstance(holder, list):
            if last == "":
                holder.append(value)
            else:
                idx = int(last)
                while len(holder) <= idx:
                    holder.append(None)
                holder[idx] = value
        else:
            holder[last] = value
    return out


CUSTOMER_PARAMS = {"email", "name", "description", "phone", "metadata", "address", "expand", "preferred_locales",
                   "invoice_prefix", "tax_exempt", "shipping"}


class StripeMock(MockServer):
    """Stripe's customers, payment intents and their lists."""

    def __init__(self, key: str = "sk_test_123", customers: int = 0) -> None:
        super().__init__()
        self.key = key
        self.customers: list[dict[str, Any]] = []
        self.intents: list[dict[str, Any]] = []
        self.keys: dict[str, tuple[str, int, str]] = {}  # Idempotency-Key -> (params digest, status, body)
        self.running: set[str] = set()  # keys whose first request is still being worked on
        self.slow: list[float] = []  # seconds the next create_intent requests take, one each
        for n in range(customers):
            self.customers.append(self._customer({"email": f"c{n}@example.com", "name": f"Customer {n}"}))

    def _customer(self, params: dict[str, Any]) -> dict[str, Any]:
        n = len(self.customers) + 1
        return {"id": f"cus_{n:06d}", "object": "customer", "created": 1700000000 + n,
                "email": params.get("email"), "name": params.get("name"), "description": params.get("description"),
                "metadata": params.get("metadata") or {}, "preferred_locales": params.get("preferred_locales") or [],
                "address": params.get("address")}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/customers", self.list_customers)
        app.router.add_post("/v1/customers", self.create_customer)
        app.router.add_get("/v1/customers/search", self.search_customers)
        app.router.add_get("/v1/customers/{id}", self.get_customer)
        app.router.add_post("/v1/customers/{id}", self.update_customer)
        app.router.add_post("/v1/payment_intents", self.create_intent)
        app.router.add_get("/v1/payment_intents", self.list_intents)

    def fault(self, status: int, seen: Seen) -> web.Response:
        if status == 429:
            return stripe_error(429, "Request rate limit exceeded. Learn more about rate limits here "
                                "https://stripe.com/docs/rate-limits.", code="rate_limit")
        return stripe_error(status, "An unknown error occurred", "api_error")

    def refused(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        key = None
        if auth.startswith("Bearer "):
            key = auth[7:]
        elif auth.startswith("Basic "):
            user, _, _ = base64.b64decode(auth[6:]).decode().partition(":")
            key = user
        if not key:
            return stripe_error(401, "You did not provide an API key. You need to provide your API key in the "
                                "Authorization header, using Bearer auth.")
        if key != self.key:
            return stripe_error(401, f"Invalid API Key provided: {key[:8]}{'*' * 8}")
        return None

    def params(self, request: web.Request, allowed: set[str]) -> dict[str, Any] | web.Response:
        seen: Seen = request[SEEN]
        pairs = list(seen.query)
        if request.method == "POST":
            if seen.body and not request.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"):
                return stripe_error(400, "Invalid request: Stripe's API takes form-encoded bodies "
                                    "(Content-Type: application/x-www-form-urlencoded)")
            pairs += urllib.parse.parse_qsl(seen.body.decode(), keep_blank_values=True)
        try:
            params = nested(pairs)
        except Unknown as e:
            return stripe_error(400, f"Received unknown parameter: {e}", code="parameter_unknown", param=str(e))
        except ValueError as e:
            return stripe_error(400, "Invalid array", param=str(e))
        for name in params:
            if name not in allowed:
                return stripe_error(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
        for name in ("expand", "preferred_locales"):
            if name in params and not isinstance(params[name], list):
                return stripe_error(400, "Invalid array", param=name)
        if "metadata" in params and not isinstance(params["metadata"], dict | str):
            return stripe_error(400, "Invalid object", param="metadata")
        return params

    def replay(self, request: web.Request, params: dict[str, Any]) -> web.Response | tuple[str, str] | None:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return None
        digest = hashlib.sha256(json.dumps([request.path, params], sort_keys=True).encode()).hexdigest()
        with self.lock:
            old = self.keys.get(key)
            if old is None and key in self.running:
                return stripe_error(409, "There is currently another in-progress request using this Idempotent Key "
                                    "(that probably means you submitted twice, and the other request is still going "
                                    "through): " + key + ". Please try again later.", "idempotency_error",
                                    code="idempotency_key_in_use", headers={"Stripe-Should-Retry": "true"})
            if old is None:
                self.running.add(key)
        if old is None:
            return key, digest
        if old[0] != digest:
            return stripe_error(400, "Keys for idempotent requests can only be used with the same parameters they "
                                f"were first used with. Try using a key other than '{key}' if you meant to execute "
                                "a different request.", "idempotency_error")
        return web.Response(status=old[1], text=old[2], content_type="application/json",
                            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})

    def keep(self, mark: tuple[str, str] | None, response: web.Response) -> web.Response:
        if mark is not None:
            with self.lock:
                self.keys[mark[0]] = (mark[1], response.status, response.text or "")
                self.running.discard(mark[0])
        return response

    def expanded(self, obj: dict[str, Any], expand: list[str], prefix: str = "") -> dict[str, Any] | web.Response:
        for path in expand:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if rest not in ("customer", "default_source", "invoice_settings.default_payment_method"):
                    return stripe_error(400, f"This property cannot be expanded ({rest}).")
                if rest == "customer" and isinstance(obj.get("customer"), str):
                    obj = {**obj, "customer": next((c for c in self.customers if c["id"] == obj["customer"]),
                                                   obj["customer"])}
        return obj

    def listing(self, request: web.Request, rows: list[dict[str, Any]], allowed: set[str]) -> web.Response:
        params = self.params(request, allowed | {"limit", "starting_after", "ending_before", "expand"})
        if isinstance(params, web.Response):
            return params
        try:
            limit = int(params.get("limit", 10))
        except ValueError:
            return stripe_error(400, "Invalid integer: " + str(params.get("limit")), param="limit")
        if not 1 <= limit <= 100:
            return stripe_error(400, "This value must be greater than or equal to 1 and less than or equal to 100.",
                                param="limit")
        start = 0
        after = params.get("starting_after")
        if after is not None:
            idx = next((i for i, r in enumerate(rows) if r["id"] == after), None)
            if idx is None:
                return stripe_error(400, f"No such object: '{after}'", code="resource_missing", param="starting_after")
            start = idx + 1
        chunk = rows[start:start + limit]
        expand = params.get("expand", [])
        out = []
        for row in chunk:
            made = self.expanded(row, expand, "data.")
            if isinstance(made, web.Response):
                return made
            out.append(made)
        return jsonr(200, {"object": "list", "url": request.path, "has_more": start + limit < len(rows),
                           "data": out})

    async def list_customers(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        with self.lock:
            rows = list(self.customers)
        return self.listing(request, rows, {"email", "created"})

    async def search_customers(self, request: web.Request) -> web.Response:
        """Stripe's search: query (email:'...' here) required, pages by next_page."""
        if (no := self.refused(request)) is not None:
            return no
        params = self.params(request, {"query", "limit", "page", "expand"})
        if isinstance(params, web.Response):
            return params
        if not params.get("query"):
            return stripe_error(400, "Missing required param: query.", code="parameter_missing", param="query")
        m = re.fullmatch(r"email:'([^']*)'", params["query"])
        if m is None:
            return stripe_error(400, f"Invalid search query: {params['query']}", param="query")
        with self.lock:
            found = [c for c in self.customers if c["email"] == m.group(1)]
        return jsonr(200, {"object": "search_result", "url": request.path, "has_more": False, "next_page": None,
                           "data": found})

    async def get_customer(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        found = next((c for c in self.customers if c["id"] == request.match_info["id"]), None)
        if found is None:
            return stripe_error(404, f"No such customer: '{request.match_info['id']}'", code="resource_missing",
                                param="id")
        return jsonr(200, found)

    async def create_customer(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        params = self.params(request, CUSTOMER_PARAMS)
        if isinstance(params, web.Response):
            return params
        mark = self.replay(request, params)
        if isinstance(mark, web.Response):
            return mark
        with self.lock:
            customer = self._customer(params)
            self.customers.append(customer)
        return self.keep(mark, jsonr(200, customer))

    async def update_customer(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        params = self.params(request, CUSTOMER_PARAMS)
        if isinstance(params, web.Response):
            return params
        with self.lock:
            found = next((c for c in self.customers if c["id"] == request.match_info["id"]), None)
            if found is None:
                return stripe_error(404, f"No such customer: '{request.match_info['id']}'", code="resource_missing",
                                    param="id")
            meta = params.pop("metadata", None)
            found.update({k: v for k, v in params.items() if k != "expand"})
            if meta == "":
                found["metadata"] = {}
            elif isinstance(meta, dict):
                found["metadata"] = {**found["metadata"], **{k: v for k, v in meta.items() if v != ""}}
        return jsonr(200, found)

    async def create_intent(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        params = self.params(request, {"amount", "currency", "customer", "payment_method", "confirm", "metadata",
                                       "description", "expand", "automatic_payment_methods"})
        if isinstance(params, web.Response):
            return params
        for need in ("amount", "currency"):
            if need not in params:
                return stripe_error(400, f"Missing required param: {need}.", code="parameter_missing", param=need)
        mark = self.replay(request, params)
        if isinstance(mark, web.Response):
            return mark
        with self.lock:
            pause = self.slow.pop(0) if self.slow else 0.0
        if pause:
            await asyncio.sleep(pause)  # the work goes on when the client has given up waiting
        with self.lock:
            intent = {"id": f"pi_{len(self.intents) + 1:06d}", "object": "payment_intent",
                      "amount": int(params["amount"]), "currency": params["currency"],
                      "customer": params.get("customer"), "metadata": params.get("metadata") or {},
                      "status": "requires_payment_method"}
            if params.get("confirm") == "true" and params.get("payment_method") == "pm_card_chargeDeclined":
                response = stripe_error(402, "Your card was declined.", "card_error", code="card_declined",
                                        decline_code="generic_decline", param="",
                                        payment_intent={"id": intent["id"], "status": "requires_payment_method"})
                return self.keep(mark, response)
            if params.get("confirm") == "true":
                intent["status"] = "succeeded"
            self.intents.append(intent)
        made = self.expanded(intent, params.get("expand", []))
        if isinstance(made, web.Response):
            return made
        return self.keep(mark, jsonr(200, made))

    async def list_intents(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        with self.lock:
            rows = list(self.intents)
        return self.listing(request, rows, {"customer", "created"})


# ---- Asana -----------------------------------------------------------------------------------------

ASANA_HELP = ("For more information on API status codes and how to handle them, read the docs on errors: "
              "https://developers.asana.com/docs/errors")


def asana_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return jsonr(status, {"errors": [{"message": message, "help": ASANA_HELP}]}, headers)


TASK_FIELDS = {"name", "notes", "completed", "due_on", "assignee", "projects", "workspace", "parent", "tags",
               "html_notes", "start_on", "due_at", "followers", "custom_fields", "external"}


class AsanaMock(MockServer):
    """Asana's tasks of projects."""

    def __init__(self, token: str = "1/asana-pat", tasks: int = 0, project: str = "1200") -> None:
        super().__init__()
        self.token = token
        self.project = project
        self.tasks: list[dict[str, Any]] = []
        self.stories: list[dict[str, Any]] = []
        for n in range(tasks):
            self.tasks.append(self._task({"name": f"Task {n}", "projects": [project], "notes": f"n{n}"}))

    def _task(self, data: dict[str, Any]) -> dict[str, Any]:
        gid = str(1300000 + len(self.tasks) + 1)
        return {"gid": gid, "resource_type": "task", "resource_subtype": "default_task", "name": data.get("name", ""),
                "notes": data.get("notes", ""), "completed": bool(data.get("completed", False)),
                "due_on": data.get("due_on"), "projects": [{"gid": p, "resource_type": "project"}
                                                          for p in data.get("projects", [])],
                "created_at": "2024-01-01T00:00:00.000Z"}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/1.0/projects/{gid}/tasks", self.list_tasks)
        app.router.add_post("/api/1.0/tasks", self.create_task)
        app.router.add_get("/api/1.0/tasks/{gid}", self.get_task)
        app.router.add_put("/api/1.0/tasks/{gid}", self.update_task)
        app.router.add_post("/api/1.0/tasks/{gid}/stories", self.create_story)

    def fault(self, status: int, seen: Seen) -> web.Response:
        if status == 429:
            return asana_error(429, "You have made too many requests recently. Please, be chill.",
                               {"Retry-After": "1"})
        return asana_error(status, "Server Error")

    def refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return asana_error(401, "Not Authorized")
        return None

    def shaped(self, task: dict[str, Any], opt_fields: str | None) -> dict[str, Any]:
        if not opt_fields:
            return {k: task[k] for k in ("gid", "name", "resource_type", "resource_subtype")}
        names = opt_fields.split(",")
        return {"gid": task["gid"], **{k: task[k] for k in names if k in task}}

    def data(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = json.loads(request[SEEN].body)
        except ValueError:
            return asana_error(400, "Could not parse request data, invalid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return asana_error(400, "data: Missing input")
        unknown = set(body["data"]) - TASK_FIELDS
        if unknown:
            return asana_error(400, f"{sorted(unknown)[0]}: Unknown field")
        return body["data"]

    async def list_tasks(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        seen: Seen = request[SEEN]
        if request.match_info["gid"] != self.project:
            return asana_error(404, "project: Unknown object: " + request.match_info["gid"])
        raw_limit = seen.q("limit")
        with self.lock:
            rows = [t for t in self.tasks if any(p["gid"] == self.project for p in t["projects"])]
        if raw_limit is None:
            if seen.q("offset") is not None:
                return asana_error(400, "offset: Offset is only valid when limit is also given")
            if len(rows) > 1000:
                return asana_error(400, "The result is too large. You should use pagination (may require "
                                   "specifying a workspace)!")
            return jsonr(200, {"data": [self.shaped(t, seen.q("opt_fields")) for t in rows]})
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return asana_error(400, f"limit: Must be between 1 and 100, got {raw_limit}")
        limit = int(raw_limit)
        start = 0
        offset = seen.q("offset")
        if offset is not None:
            try:
                start = int(base64.urlsafe_b64decode(offset.encode()).decode().removeprefix("o:"))
            except ValueError:
                return asana_error(400, "offset: Your pagination token is invalid.")
        chunk = rows[start:start + limit]
        nxt = None
        if start + limit < len(rows):
            token = base64.urlsafe_b64encode(f"o:{start + limit}".encode()).decode()
            path = f"/projects/{self.project}/tasks?limit={limit}&offset={token}"
            nxt = {"offset": token, "path": path, "uri": f"{self.url}/api/1.0{path}"}
        return jsonr(200, {"data": [self.shaped(t, seen.q("opt_fields")) for t in chunk], "next_page": nxt})

    async def get_task(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        found = next((t for t in self.tasks if t["gid"] == request.match_info["gid"]), None)
        if found is None:
            return asana_error(404, "task: Unknown object: " + request.match_info["gid"])
        return jsonr(200, {"data": self.shaped(found, request[SEEN].q("opt_fields"))})

    async def create_task(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        data = self.data(request)
        if isinstance(data, web.Response):
            return data
        if not (data.get("workspace") or data.get("projects") or data.get("parent")):
            return asana_error(400, "You should specify one of workspace, parent, projects")
        with self.lock:
            task = self._task(data)
            self.tasks.append(task)
        return jsonr(201, {"data": task})

    async def create_story(self, request: web.Request) -> web.Response:
        """A comment on a task: {"data": {"text": ...}}."""
        if (no := self.refused(request)) is not None:
            return no
        try:
            body = json.loads(request[SEEN].body)
        except ValueError:
            return asana_error(400, "Could not parse request data, invalid JSON")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not (data.get("text") or data.get("html_text")):
            return asana_error(400, "text: Missing input")
        if not any(t["gid"] == request.match_info["gid"] for t in self.tasks):
            return asana_error(404, "task: Unknown object: " + request.match_info["gid"])
        with self.lock:
            story = {"gid": str(1400000 + len(self.stories) + 1), "resource_type": "story", "type": "comment",
                     "text": data.get("text"), "target": {"gid": request.match_info["gid"]}}
            self.stories.append(story)
        return jsonr(201, {"data": story})

    async def update_task(self, request: web.Request) -> web.Response:
        if (no := self.refused(request)) is not None:
            return no
        data = self.data(request)
        if isinstance(data, web.Response):
            return data
        with self.lock:
            found = next((t for t in self.tasks if t["gid"] == request.match_info["gid"]), None)
            if found is None:
                return asana_error(404, "task: Unknown object: " + request.match_info["gid"])
            found.update({k: v for k, v in data.items() if k in ("name", "notes", "completed", "due_on")})
        return jsonr(200, {"data": found})


