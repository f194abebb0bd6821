"""One HTTP client per connection: builds each request (URL, auth, headers, JSON body), waits for
the rate limit, retries what may be retried, follows redirects safely, honours --dry-run, and turns
answers into values or HttpErrors that carry the status, method, masked URL and body."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from flowlang.connectors.base import RunServices
from flowlang.connectors.http.auth import NO_AUTH, Auth, RequestAuth, token_error
from flowlang.connectors.http.header_check import header_problem
from flowlang.connectors.http.hosts import HostGuard
from flowlang.connectors.http.pace import MIN_RATE, Pace, Refusing
from flowlang.connectors.http.ratelimit import RateLimiter, Ticket, shared
from flowlang.connectors.http.retry import (
    RETRY_STATUSES,
    RetryPolicy,
    may_retry_error,
    may_retry_status,
    rate_limit_wait,
    rate_limited,
    repeat_may_duplicate,
    retry_after_seconds,
)
from flowlang.connectors.http.transport import MAX_CONNECTIONS, MAX_RESPONSE_BYTES, Response, Transport, TransportError
from flowlang.connectors.http.urls import base_prefix, join, origin_of, shown, with_query
from flowlang.errors import CredentialsRefused, FlowRuntimeError, HttpError
from flowlang.runtime.blob import is_binary as binary_value
from flowlang.runtime.charsets import charset_of
from flowlang.runtime.formcodec import FormError, form_encode, form_pairs
from flowlang.runtime.jsoncodec import JsonDataError, binary_refused, dumps, loads
from flowlang.runtime.limits import RECORD_WRITES, WRITE_NOTE
from flowlang.runtime.masking import cut, mask_value
from flowlang.runtime.stats import Traffic
from flowlang.runtime.values import Secret, to_text, type_name

log = logging.getLogger("flowlang.http")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REDIRECTS = 5
BODY_SHOWN = 500


TEXT_TYPES = ("xml", "javascript", "x-www-form-urlencoded", "csv", "yaml")
HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_binary(body: bytes) -> bool:
    """Bytes that are not UTF-8 text, or hold control characters a terminal would act on."""
    head = body[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not merely a character cut at the end of the sample
            return True
        text = head[:e.start].decode("utf-8")
    return any((c < " " and c not in "\t\n\r") or c == "\x7f" for c in text)


@dataclass
class HttpSettings:
    base_url: str | None
    auth: Auth
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter | None = None
    verify: bool | str = True  # or the path of a CA bundle
    proxy: str | None = None
    guard: HostGuard | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_connections: int = MAX_CONNECTIONS
    param_style: str = "repeat"  # lists and objects in queries and forms: repeat, brackets or indices
    base_url_null: bool = False  # base_url: was given, as null (an environment variable that is not set)


@dataclass
class Answer:
    """A successful answer: the decoded body, and the response for headers (pagination)."""

    value: Any
    response: Response | None


async def nothing_sent() -> Answer:
    """The answer of a request a dry run only logs."""
    return Answer(None, None)


async def no_value() -> Any:
    """The value of a request a dry run only logs."""
    return None


@lru_cache(maxsize=64)
def media_type(content_type: str) -> str:
    """'application/json; charset=utf-8' -> 'application/json'."""
    return content_type.split(";", 1)[0].strip().lower()


def is_text_type(kind: str) -> bool:
    """Whether a media type that is not text/* is text all the same (XML, CSV, YAML, ...)."""
    return any(name in kind for name in TEXT_TYPES)  # here, not in decode: no cell there at every answer


def header_text(value: Any) -> str:
    if binary_value(value):  # its text `<6 bytes>` would stand in for the data
        raise FlowRuntimeError(binary_refused(value, "an HTTP header"), "data")
    return value.reveal() if isinstance(value, Secret) else to_text(value)


SHOWN_SAFE = "[]@:/,;*$!'()"  # what a form field shown in a log keeps as it is (an & or = is %-encoded)


def shown_body(body: Any, mask: Callable[[str], str], form: bool = False, style: str = "repeat") -> str:
    """A request body for a log line: secrets as ***, every known secret masked before encoding; form
    fields as they are sent (preferred_locales[]=en&metadata[a]=1), brackets and @ left unencoded so
    they read."""
    if isinstance(body, str | Secret):
        return mask(to_text(body))
    if form:
        pairs = form_pairs(hidden(mask_value(body, mask)), style=style)
        return mask("&".join(f"{quote(name, safe=SHOWN_SAFE)}={quote(value, safe=SHOWN_SAFE)}"
                             for name, value in pairs))
    return mask(dumps(mask_value(body, mask)))


def hidden(value: Any) -> Any:
    """A value with each Secret in it as *** (one made with plain text keeps that text: `Bearer ***`)."""
    if isinstance(value, Secret):
        return value.shown
    if type(value) is dict:
        return {k: hidden(v) for k, v in value.items()}
    if type(value) is list:
        return [hidden(v) for v in value]
    return value


def encode_body(body: Any, headers: dict[str, str], form: bool = False, style: str = "repeat") -> bytes | None:
    """The request body: JSON (decimals exact), text for a string, or form fields when `form` (lists
    written by `style`, the connection's param_style)."""
    if body is None:
        return None
    if form:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            return form_encode(body, style).encode()
        except FormError as e:
            raise FlowRuntimeError(f"{e}, got {type_name(body)}", "value") from None
    if isinstance(body, str | Secret):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return header_text(body).encode()
    if binary_value(body):  # a file or a binary answer sent on as it is (an upload)
        headers.setdefault("Content-Type", "application/octet-stream")
        return body if type(body) is bytes else body.whole()
    headers.setdefault("Content-Type", "application/json")
    try:
        return dumps(body, reveal_secrets=True, binary=False).encode()
    except JsonDataError as e:
        raise FlowRuntimeError(f"the request body: {e}", "data") from None


REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REFUSALS = 100  # rate-limit refusals of one request before it fails (they spend none of `retry`)
REFUSALS_TO_STOP = 10  # 401 answers, before any request of the run was accepted, that end the run
AWAY_AFTER = 30.0  # seconds without any answer of the connection's, after which a failed request is not tried again


def hop_headers(headers: dict[str, str], auth: RequestAuth) -> dict[str, str]:
    """The headers one hop sends: the request's, then the auth's; an empty value sends none."""
    send = {**headers, **auth.headers} if auth.headers else headers
    return {k: v for k, v in send.items() if v} if send else send


def revealed(value: Any) -> str:
    return value.reveal() if isinstance(value, Secret) else str(value)


class RequestMeter:
    """A connection's rate limit, its pace (learnt from rate-limit refusals), traffic counts and the run's
    observer around each request on the wire (Transport.send calls it: no coroutine of the client's
    between a statement and the session)."""

    def __init__(self, name: str, limiter: RateLimiter | None, traffic: Traffic, services: RunServices,
                 max_wait: float) -> None:
        self.name = name
        self.limiter = limiter
        self.pace = Pace(limiter.count / limiter.window if limiter is not None else None)
        self.max_wait = max_wait  # max_retry_wait: a pace whose API took nothing for this long sends no more
        self.limited = limiter is not None  # admit is awaited: a rate_limit, or a pace once refused
        self.held_until = 0.0  # monotonic time until which a rate-limited answer asked to send nothing
        self.traffic = traffic
        self.services = services

    def hold(self, until: float) -> None:
        """A rate-limited answer's wait (Retry-After): no request of the connection starts before `until`,
        those already waiting for their turn under the pace or the rate limit included."""
        self.held_until = max(self.held_until, until)
        self.limited = True

    def held(self) -> float:
        return self.held_until

    async def admit(self) -> Ticket | None:
        waited = 0.0
        try:
            while True:  # a hold set while this request waited for the pace: it waits, then takes a new turn
                held = self.held_until - time.monotonic()
                if held > 0:
                    self.traffic.waiting_until = max(self.traffic.waiting_until, self.held_until)
                    await asyncio.sleep(held)
                    waited += held
                if self.pace.rate is not None:
                    self.traffic.paced = self.pace.rate
                    waited += await self.pace.wait(self.max_wait, self.traffic)
                if self.held_until <= time.monotonic():
                    break
        except Refusing as e:
            raise TransportError(f"not sent: the API has refused every request of this connection for its rate "
                                 f"limit for {e.seconds:.0f}s, more than the {self.max_wait:g}s this connection waits "
                                 f"(max_retry_wait); one request every {1 / MIN_RATE:g}s is sent to see whether "
                                 "it takes them again", sent=False, final=True) from None
        ticket = None
        if self.limiter is not None:
            ticket, more = await self.limiter.acquire(self.traffic, self.held)
            waited += more
        self.traffic.waited += waited
        observer = self.services.observer
        if waited > 0.001 and observer.active:
            observer.rate_limited(self.name, waited)
        return ticket

    def release(self, ticket: Ticket | None) -> None:
        if self.limiter is not None and ticket is not None:
            self.limiter.release(ticket)

    def refused(self, started: float) -> None:
        """The API refused a request sent at `started` for its rate limit: the connection slows down."""
        rate = self.pace.refused(started)
        if rate is not None:
            self.limited = True
            log.info(f"{self.name}: the API refused a request for its rate limit: this connection's requests now "
                     f"go at most {rate:.3g} a second (shared by parallel loops), and faster again as they are taken")

    def sent(self, method: str, url: str, status: int | None, started: float, error: str | None = None) -> None:
        traffic = self.traffic
        traffic.requests += 1
        traffic.latency += time.monotonic() - started
        observer = self.services.observer
        if observer.active:
            mask = self.services.mask
            observer.request(self.name, method, shown(url, mask), status, time.monotonic() - started,
                             mask(error) if error is not None else None)


class HttpClient:
    """Sends requests for one connection."""

    def __init__(self, name: str, settings: HttpSettings, services: RunServices, json_api: bool = False) -> None:
        self.name = name
        # a connector file's API answers JSON: an HTML page in a 2xx answer (a login, proxy or maintenance
        # page) is an error, not a text value (http() takes pages as text)
        self.json_api = json_api
        self.settings = settings
        self.services = services
        guard = settings.guard
        self.transport = Transport(settings.timeout, settings.verify, proxy=settings.proxy,
                                   check_addresses=guard.check_resolved if guard is not None else None,
                                   max_response_bytes=settings.max_response_bytes,
                                   max_connections=settings.max_connections,
                                   register_secret=services.register_secret)
        counter = getattr(services, "traffic_for", None)
        self.traffic: Traffic = counter(name) if counter is not None else Traffic()
        # one limiter for the connections of this loop to the same API with the same credentials and rate:
        # the runs of flowlang serve keep to the API's limit together
        credentials = [*settings.auth.secrets(), *(f"{k.lower()}: {revealed(v)}" for k, v in settings.headers.items())]
        settings.limiter = shared(settings.limiter, settings.base_url, credentials)
        if settings.limiter is not None:
            self.traffic.interval = settings.limiter.interval
        for secret in settings.auth.secrets():
            services.register_secret(secret)
        self.meter = RequestMeter(name, settings.limiter, self.traffic, services, settings.policy.retry_after_cap)
        self.fixed_auth = settings.auth.fixed()  # None: asked of the auth at every request (OAuth2)
        self.writes = 0  # requests made that change data (Connection.write_count)
        self.spent_until = 0.0  # monotonic time of a spent rate limit's reset (X-RateLimit-Remaining: 0)
        self.spent_why = "X-RateLimit-Remaining: 0"  # what said so (or a refused request's Retry-After)
        # 401 answers on the connection's own origin before any request of this run was accepted: at
        # REFUSALS_TO_STOP its credentials are taken as refused and the run ends (CredentialsRefused)
        self.accepted = False
        self.refusals = 0
        # monotonic time since which no request of the connection got an answer (None: the last one did):
        # past AWAY_AFTER a request that fails without an answer is not tried again (as sql's database away)
        self.silent_since: float | None = None
        self.base_origin = origin_of(settings.base_url) if settings.base_url else None
        self.base_prefix = base_prefix(settings.base_url) if settings.base_url else None

    def own_origin(self, url: str) -> str:
        """The origin credentials go to: the base_url's (or, without one, the URL's own)."""
        return self.base_origin or origin_of(url)

    async def close(self) -> None:
        await self.transport.close()

    def admit(self, method: str, url: str) -> bool:
        """Whether `url` is on the connection's own origin; a URL on another origin (from data, a
        next link) is refused unless allowed_hosts lists its host, and then gets no credentials."""
        if not url.startswith(("http://", "https://")):
            raise HttpError(f"{method} {shown(url, self.services.mask)}: not an http:// or https:// URL",
                            status=None, method=method, url=shown(url, self.services.mask))
        if self.base_prefix is not None and url.startswith(self.base_prefix):
            return True  # the base_url's scheme://authority/ as written: its origin, without parsing
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (ValueError past 65535 or not a number)
        except ValueError as e:  # "http://[::1/x" from data (urlsplit's 'Invalid IPv6 URL'): was an internal error
            raise HttpError(f"{method}: the URL given is not a URL ({e}); nothing was sent", status=None,
                            method=method, url="") from None
        if origin_of(url) == (self.base_origin or origin_of(url)):  # own_origin
            return True
        guard = self.settings.guard
        if guard is not None and guard.listed((parts.hostname or "").lower(), parts.port):
            return False
        where = shown(url, self.services.mask)
        raise HttpError(f"{method} {where} refused: it is not on this connection's origin "
                        f"({self.own_origin(url)}, from base_url), and its credentials and headers go nowhere "
                        "else; to reach that host without them, list it in allowed_hosts",
                        status=None, method=method, url=where)

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        return with_query(join(self.settings.base_url, path, self.settings.base_url_null), query,
                          self.settings.param_style)

    def request(self, method: str, url: str, *, headers: Mapping[str, Any] | None = None, body: Any = None,
                changes_data: bool | None = None, idempotency_key: str | None = None,
                timeout: float | None = None, form: bool = False) -> Coroutine[Any, Any, Answer]:
        """Send (or, in a dry run, log) one request: awaited, the decoded answer, or HttpError. The
        request is checked and built at the call (a bad one raises there), sent when awaited (one
        coroutine fewer on the way of every request)."""
        return self._request(method, url, headers, body, changes_data, idempotency_key, timeout, form, True)

    def request_value(self, method: str, url: str, *, headers: Mapping[str, Any] | None = None, body: Any = None,
                      changes_data: bool | None = None, idempotency_key: str | None = None,
                      timeout: float | None = None, form: bool = False) -> Coroutine[Any, Any, Any]:
        """request, awaited as the answer's decoded value alone (None in a dry run): a caller that
        needs no headers returns it as it is, with no coroutine of its own around it."""
        return self._request(method, url, headers, body, changes_data, idempotency_key, timeout, form, False)

    def _request(self, method: str, url: str, headers: Mapping[str, Any] | None, body: Any,
                 changes_data: bool | None, idempotency_key: str | None, timeout: float | None, form: bool,
                 whole: bool) -> Coroutine[Any, Any, Any]:
        """request's work; `whole`: awaited as an Answer, else as its value."""
        method = method.upper()
        writes = method not in READ_METHODS if changes_data is None else changes_data
        if writes:
            self.writes += 1
        own = self.admit(method, url)
        added = self.settings.headers if own else None
        if added or headers:
            all_headers = {k: header_text(v) for k, v in {**(added or {}), **(headers or {})}.items()}
            if headers:  # the call's own (from data, perhaps): a bad name would reach the server
                problem = header_problem(all_headers)
                if problem is not None:
                    raise HttpError(f"{method} {shown(url, self.services.mask)}: {problem}", status=None,
                                    method=method, url=shown(url, self.services.mask))
        else:
            all_headers = {}
        if idempotency_key:
            all_headers["Idempotency-Key"] = idempotency_key
        data = encode_body(body, all_headers, form, self.settings.param_style)
        if writes and self.services.dry_run:
            text = f" {shown_body(body, self.services.mask, form, self.settings.param_style)}" if data else ""
            self.services.log_dry_run(self.name, self.services.mask(f"{method} {shown(url, self.services.mask)}{text}"))
            return nothing_sent() if whole else no_value()
        exchange = self._exchange(method, url, all_headers, data, bool(idempotency_key), timeout, own, whole)
        if writes:
            noting = RECORD_WRITES.get()  # under max_record_seconds: a stop in flight says it may have arrived
            if noting is not None and repeat_may_duplicate(method, bool(idempotency_key)):
                return self._noted(noting, exchange)
        return exchange

    async def _noted(self, noting: list[str], exchange: Coroutine[Any, Any, Any]) -> Any:
        """A write that may do its work twice, under max_record_seconds: the transport notes it in the record's
        RECORD_WRITES once it goes out, so that a record stopped while it is in flight says it may have arrived."""
        token = WRITE_NOTE.set((noting, self.name))
        try:
            return await exchange
        finally:
            WRITE_NOTE.reset(token)

    # ---- attempts -------------------------------------------------------------------------------
    async def _exchange(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                        keyed: bool, timeout: float | None, own: bool, whole: bool) -> Any:
        """The request sent, tried again while that may help, and its answer decoded (an Answer when
        `whole`, else its value); `own`: the URL is on the connection's own origin (admit). The
        first hop is sent from here and only a redirect goes through _follow: every await of a
        request passes through each coroutine on its way, so there are as few as can be."""
        policy = self.settings.policy
        guard = self.settings.guard
        refreshed = False
        attempt = 0
        refusals = 0  # of those attempts, the ones the API refused for its rate limit (they spend none of `retry`)
        while True:
            attempt += 1
            if self.spent_until and own:
                await self._wait_for_reset(method, url)
            try:
                if guard is not None:
                    await guard.check(url)
                auth = (self.fixed_auth or await self._auth()) if own else NO_AUTH
                response = await self.transport.send(method, with_query(url, auth.query) if auth.query else url,
                                                     hop_headers(headers, auth) if headers or auth.headers else headers,
                                                     data, timeout, self.meter)
                if response.status in REDIRECTS and response.headers.get("location"):
                    response = await self._follow(method, url, headers, data, timeout, response)
            except TransportError as e:
                if e.refused or e.final:
                    if e.final:
                        err = HttpError(self.services.mask(f"{method} {shown(url, self.services.mask)}: {e.message}"),
                                        status=None, method=method, url=shown(url, self.services.mask))
                        err.uncertain = e.sent and repeat_may_duplicate(method, keyed)  # it was answered
                        raise err from None
                    raise HttpError(f"{method} {shown(url, self.services.mask)} refused: {e.message}", status=None,
                                    method=method, url=shown(url, self.services.mask)) from None
                now = time.monotonic()
                if self.silent_since is None:
                    self.silent_since = now
                away = now - self.silent_since
                if away < AWAY_AFTER and attempt - refusals < policy.attempts \
                        and may_retry_error(e.sent, method, keyed):
                    await self._pause(policy.backoff(attempt - refusals),
                                      f"{e.message}; attempt {attempt - refusals} of {policy.attempts}", method, url)
                    continue
                err = HttpError(self.services.mask(f"{method} {shown(url, self.services.mask)} failed: {e.message}")
                                + tries(attempt, refusals)
                                + (f" (the API has not answered for {away:.0f} s)" if away >= AWAY_AFTER else ""),
                                status=None, method=method, url=shown(url, self.services.mask))
                err.uncertain = e.sent and repeat_may_duplicate(method, keyed)  # sent: it may have arrived
                raise err from None
            self.silent_since = None  # an answer: the API is there
            if 200 <= response.status < 300:  # the usual answer: no retry, refusal or error below applies to it
                if own:
                    self.meter.pace.accepted()
                    if (response.headers.get("x-ratelimit-remaining") or "").strip() == "0":
                        self._note_spent(response.headers)
                    if not self.accepted:
                        self.note_credentials(method, url, response)
                try:
                    value = self.decode(method, response)
                except HttpError as unread:  # a 2xx whose body cannot be read: the API took the request
                    unread.uncertain = repeat_may_duplicate(method, keyed)
                    raise
                return Answer(value, response) if whole else value
            if response.status == 401 and self.settings.auth.refreshable() and not refreshed:
                refreshed = True
                self.settings.auth.invalidate(auth)  # the token this request carried, not a newer one
                attempt -= 1
                continue
            paced = own and response.status in (403, 429) and rate_limited(response.status, response.headers,
                                                                            response.body)
            if paced:
                self.meter.refused(response.started)
            elif own and response.status < 500:
                self.meter.pace.accepted()
            again = self._may_wait(refusals) if paced else attempt - refusals < policy.attempts
            if again and may_retry_status(response.status, method, keyed, response.headers, response.body):
                wait = rate_limit_wait(response.headers, body=response.body) \
                    if response.status in (403, 429) else rate_limit_wait(response.headers)
                if wait is not None and wait > policy.retry_after_cap:
                    raise self.error(method, url, response, f" and asks to wait {wait:.0f}s, more than the "
                                     f"{policy.retry_after_cap:g}s this connection waits (max_retry_wait)")
                # a refusal for the rate limit without a wait: the connection's pace, cut, spaces the next try
                delay = wait if wait is not None else policy.backoff(1 if paced else attempt - refusals)
                # a rate-limited answer's wait holds every request of the connection, not this one alone: the
                # parallel requests sent meanwhile were each refused too
                if wait is not None and own and response.status in (403, 429) and \
                        time.monotonic() + wait > self.spent_until:
                    self.spent_until = time.monotonic() + wait
                    self.spent_why = f"a {response.status} answer's wait"
                    self.meter.hold(self.spent_until)
                if paced:
                    refusals += 1
                    why = f"answered {response.status} for the API's rate limit (refusal {refusals}, no attempt spent)"
                else:
                    why = f"answered {response.status}; attempt {attempt - refusals} of {policy.attempts}"
                await self._pause(delay, why, method, url)
                continue
            if paced and not again and refusals:
                raise self.error(method, response.url, response, f" (after {attempt} attempts, {refusals + 1} refused "
                                 f"for the rate limit{self._gave_up(refusals)})")
            if own and not self.accepted:
                self.note_credentials(method, url, response)
            if response.status in RETRY_STATUSES and response.status != 429 and repeat_may_duplicate(method, keyed):
                # a gateway's answer (the work may have been done behind it): not repeated, and uncertain
                err = self.error(method, response.url, response, tries(attempt, refusals))
                err.uncertain = True
                raise err
            if attempt > 1:  # say it was retried, not only how it ended (a 2xx returned above)
                raise self.error(method, response.url, response, tries(attempt, refusals))
            value = self.decode(method, response)
            return Answer(value, response) if whole else value

    def _may_wait(self, refusals: int) -> bool:
        """Whether a request the API refused for its rate limit is sent again: while the API takes other
        requests of the connection (none for max_retry_wait: it refuses them all), up to MAX_REFUSALS."""
        if self.settings.policy.attempts <= 1:  # retry: 1, no retries at all
            return False
        return refusals + 1 < MAX_REFUSALS and self.meter.pace.refusing_for() <= self.settings.policy.retry_after_cap

    def _gave_up(self, refusals: int) -> str:
        """Why a refused request was not sent again (_may_wait), for its error."""
        if refusals + 1 >= MAX_REFUSALS:
            return ""
        return (f"; the API has taken none of this connection's requests for {self.meter.pace.refusing_for():.0f}s, "
                f"more than the {self.settings.policy.retry_after_cap:g}s this connection waits (max_retry_wait)")

    def note_credentials(self, method: str, url: str, response: Response) -> None:
        """Until a request of the run is accepted: a 401 answer counts, and the REFUSALS_TO_STOP-th in a row
        ends the run (a revoked token made every record fail alike, one request each)."""
        if 200 <= response.status < 400:
            self.accepted = True
            return
        if response.status != 401:
            return
        self.refusals += 1
        if self.refusals < REFUSALS_TO_STOP:
            return
        said = self.error(method, response.url, response)
        raise CredentialsRefused(
            f"{said.message}; the connection '{self.name}' was answered 401 to all {self.refusals} requests of "
            "this run and none was accepted: its credentials are refused (a revoked, expired or wrong token?), "
            "so the run stops here rather than send every record to the same answer (the records not reached "
            "are read again by the next run; this one is kept: flowlang retry once the credentials are fixed)",
            status=401, method=method, url=said.url, body=said.body)

    def _note_spent(self, headers: Mapping[str, str]) -> None:
        """An answer that says the rate limit is spent (X-RateLimit-Remaining: 0, as GitHub's last
        allowed request does): no request of the connection starts before its reset."""
        wait = rate_limit_wait(headers)
        if wait and time.monotonic() + wait > self.spent_until:
            self.spent_until = time.monotonic() + wait
            self.spent_why = "X-RateLimit-Remaining: 0"

    async def _wait_for_reset(self, method: str, url: str) -> None:
        """Wait for the reset of a spent rate limit before a request (GitHub asks not to send any
        meanwhile), or fail it at once when that is longer than max_retry_wait."""
        left = self.spent_until - time.monotonic()
        if left <= 0:
            self.spent_until = 0.0
            return
        cap = self.settings.policy.retry_after_cap
        where = shown(url, self.services.mask)
        if left > cap:
            raise HttpError(f"{method} {where} not sent: the API's rate limit is spent ({self.spent_why}) "
                            f"for {left:.0f}s more, more than the {cap:g}s this connection waits (max_retry_wait)",
                            status=None, method=method, url=where)
        log.info(self.services.mask(f"{self.name}: {method} {where} waits {left:.2f}s for the reset of the spent "
                                    f"rate limit ({self.spent_why})"))
        self.traffic.waited += left
        await asyncio.sleep(left)

    async def _pause(self, seconds: float, why: str, method: str, url: str) -> None:
        self.traffic.retries += 1
        log.info(self.services.mask(f"{self.name}: {method} {shown(url, self.services.mask)} {why}; "
                                    f"retrying in {seconds:.2f}s"))
        if self.services.observer.active:
            self.services.observer.retry(self.name, method, shown(url, self.services.mask), seconds,
                                         self.services.mask(why))
        await asyncio.sleep(seconds)

    async def _auth(self) -> RequestAuth:
        return await self.settings.auth.apply(self._fetch_token)

    async def _fetch_token(self, token_url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if self.settings.guard is not None:
            await self.settings.guard.check(token_url)
        body = urlencode(form).encode()
        policy = self.settings.policy
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.transport.send("POST", token_url, {
                    "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json", **headers},
                    body)
            except TransportError as e:  # the request waiting for the token was not sent: it may be tried again
                said = "answered" if e.final and e.sent else "could not be reached"  # past max_response_bytes
                raise TransportError(f"the OAuth2 token endpoint {shown(token_url, self.services.mask)} {said}: "
                                     f"{e.message}", sent=False, timeout=e.timeout, refused=e.refused,
                                     final=e.final) from None
            # a provider that is busy (429, 503 with Retry-After) or behind a gateway that is (502, 504): asked
            # again, as any request is; each record failed 'answered 503 without an access_token' at once
            wait = retry_after_seconds(response.headers.get("retry-after"))
            if response.status not in RETRY_STATUSES or attempt >= policy.attempts \
                    or (wait is not None and wait > policy.retry_after_cap):
                break
            await self._pause(wait if wait is not None else policy.backoff(attempt),
                              f"the OAuth2 token endpoint answered {response.status}; attempt {attempt} of "
                              f"{policy.attempts}", "POST", token_url)
        try:
            value = loads(response.body) if response.body else None
        except JsonDataError:  # not JSON: its text (binary data by its size), for the error to show
            value = self.snippet(response.body) if is_binary(response.body) else \
                response.body.decode("utf-8", errors="replace")
        if response.status < 400 and isinstance(value, dict) and value.get("access_token"):
            return response.status, value
        masked = mask_value(value, self.services.mask)  # an error may echo the client secret
        if response.status in (400, 401) and not self.accepted:  # RFC 6749 5.2: invalid_client, invalid_grant
            self.refused_token(token_url, response.status, masked)
        return response.status, masked

    def refused_token(self, token_url: str, status: int, body: Any) -> None:
        """A token request refused (400, 401) before any request of the run was accepted counts as a 401
        does (note_credentials): a wrong client secret asked the token endpoint again for every record,
        10,000 refusals and 10,000 failed records for a night's rows, the run 'partial'."""
        self.refusals += 1
        if self.refusals < REFUSALS_TO_STOP:
            return
        where = shown(token_url, self.services.mask)
        raise CredentialsRefused(
            f"the OAuth2 token endpoint {where} answered {status} without an access_token{token_error(body)}; the "
            f"connection '{self.name}' was refused to all {self.refusals} requests of this run and none was "
            "accepted: its client credentials are refused (a wrong or revoked client id or secret?), so the run "
            "stops here rather than ask again for every record (the records not reached are read again by the "
            "next run; this one is kept: flowlang retry once the credentials are fixed)",
            status=status, method="POST", url=where, body=body)

    async def _follow(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                      timeout: float | None, response: Response) -> Response:
        """The redirects of an attempt whose first hop to `url` answered `response` (a redirect);
        credentials go only to the connection's own origin, and a redirect to another origin keeps
        only the Content-Type. Every request asks for JSON (Accept: application/json, the
        transport's default) unless its headers say otherwise."""
        origin = self.own_origin(url)
        current = url
        for _ in range(MAX_REDIRECTS):
            location = response.headers.get("location")
            if response.status not in REDIRECTS or not location:
                return response
            try:
                current = urljoin(current, location)
                urlsplit(current).port  # noqa: B018 (ValueError: a port past 65535 or not a number)
            except ValueError as e:  # "http://[::1" (urlsplit's 'Invalid IPv6 URL'): was an internal error
                raise TransportError(f"a {response.status} redirect to a Location that is not a URL ({e})",
                                     sent=True) from None
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, data = "GET", None
            if self.settings.guard is not None:
                await self.settings.guard.check(current)
            same_host = origin_of(current) == origin
            auth = (self.fixed_auth or await self._auth()) if same_host else NO_AUTH
            kept = headers if same_host else {"Content-Type": headers.get("Content-Type", "")}
            response = await self.transport.send(method, with_query(current, auth.query), hop_headers(kept, auth),
                                                 data, timeout, self.meter)
        if response.status not in REDIRECTS or not response.headers.get("location"):
            return response
        # final: a redirect loop answers every attempt the same (5 attempts were 30 requests and 3 s of backoff)
        raise TransportError(f"more than {MAX_REDIRECTS} redirects", sent=True, final=True)

    # ---- answers ----------------------------------------------------------------------------------
    def decode(self, method: str, response: Response) -> Any:
        """A 2xx body as a value: JSON (decimals exact), text for text types, bytes for binary types
        (a PDF, an image, application/octet-stream), null when empty."""
        if not 200 <= response.status < 300:
            raise self.error(method, response.url, response)
        body = response.body
        if not body or (body[:1].isspace() and not body.strip()) or method == "HEAD":
            return None
        content_type = response.headers.get("content-type", "")
        kind = media_type(content_type)
        if kind and "json" not in kind:
            if self.json_api and kind in HTML_TYPES:
                raise HttpError(f"{method} {shown(response.url, self.services.mask)} answered {response.status} with "
                                f"an HTML page (Content-Type: {kind}), not the JSON of an API answer (a login, proxy "
                                f"or maintenance page?): {self.snippet(response.body)}",
                                status=response.status, method=method, url=shown(response.url, self.services.mask),
                                body=self.snippet(response.body))
            if kind.startswith("text/") or is_text_type(kind):  # in the charset it names
                return response.body.decode(charset_of(content_type) or "utf-8", errors="replace")
            return response.body
        try:
            try:
                return loads(response.body)
            except JsonDataError:  # JSON is UTF-8 (RFC 8259), but a server may send, and say, latin-1
                declared = charset_of(content_type)
                if declared is None or declared == "utf-8" or not _not_utf(response.body):
                    raise
                return loads(response.body.decode(declared, errors="replace"))
        except JsonDataError as e:
            if not kind and is_binary(response.body):
                return response.body
            raise HttpError(f"{method} {shown(response.url, self.services.mask)} answered {response.status} with a "
                            f"body that is not valid JSON ({e}): {self.snippet(response.body)}",
                            status=response.status, method=method, url=shown(response.url, self.services.mask),
                            body=self.snippet(response.body)) from None

    def snippet(self, body: bytes) -> str:
        """The start of a body for a message: text masked first, then cut; binary data by its size only."""
        if is_binary(body):
            return f"<{len(body)} bytes of binary data>"
        return cut(body.decode("utf-8", errors="replace"), BODY_SHOWN, self.services.mask, len(body))

    def error(self, method: str, url: str, response: Response, extra: str = "") -> HttpError:
        try:
            body: Any = loads(response.body) if response.body.strip() else None
        except JsonDataError:
            body = self.snippet(response.body)
        where = shown(url, self.services.mask)
        detail = self.snippet(response.body)
        message = f"{method} {where} answered {response.status} {response.reason}{extra}"
        if detail:
            message += f": {detail}"
        body = mask_value(body, self.services.mask)
        return HttpError(message, status=response.status, method=method, url=where, body=body)


def _not_utf(body: bytes) -> bool:
    """Whether the bytes are not UTF-8 (nor UTF-16 or -32, which JSON may be too)."""
    import json

    try:
        body.decode(json.detect_encoding(body))
    except UnicodeDecodeError:
        return True
    return False


def tries(attempt: int, refusals: int) -> str:
    """How many times a request that failed was sent, for its error: the refusals for the rate limit, which spend
    none of `retry`, said apart (a 429 then a 500 said 'after 2 attempts' of a POST the 500 was not retried for)."""
    if refusals:
        return f" (after {attempt} attempts, {refusals} refused for the rate limit)"
    return f" (after {attempt} attempts)" if attempt > 1 else ""
