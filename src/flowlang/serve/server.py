"""The HTTP side of serve (aiohttp.web): `POST /hooks/<flow>` (size limit, signature on the raw bytes,
duplicates, back-pressure, committed to the inbox before the 202), `GET /healthz`, `GET /metrics`;
the console's pages and actions are added by flowlang.serve.console."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from flowlang.connectors.http.transport import header_fields
from flowlang.errors import StoreError
from flowlang.runner import Result
from flowlang.runtime.jsoncodec import dumps, surrogates_escaped
from flowlang.runtime.store import now_text
from flowlang.serve.body_encoding import Refused, decoded
from flowlang.serve.flows import ServedFlow
from flowlang.serve.inbox import Delivery, Inbox
from flowlang.serve.metrics import CONTENT_TYPE, Metrics
from flowlang.serve.runs import Runs
from flowlang.serve.signatures import check, masked_headers

log = logging.getLogger("flowlang.serve")
T = TypeVar("T")
RETRY_AFTER_FULL = "5"
RETRY_AFTER_STOPPING = "30"
CHUNK = 1 << 16
BODY_TIMEOUT = 30.0  # seconds a delivery's body may take to arrive (--body-timeout); then 408
# bytes of deliveries' bodies serve holds at once while they arrive (before any signature is checked): 1,000
# clients each sending half of a 1MB body and waiting took serve to 630MB, and nothing bounded it but the
# number of connections; past it a delivery is a 503 (Retry-After) and its connection is closed
BODY_BUDGET = 256 * 1024 * 1024


@dataclass
class ServeState:
    """What the routes share."""

    flows: dict[str, ServedFlow]
    inbox: Inbox
    runs: Runs
    metrics: Metrics
    max_pending: int = 10_000
    body_timeout: float = BODY_TIMEOUT
    body_budget: int = BODY_BUDGET
    buffered: int = 0  # bytes of bodies being read now (read_limited)
    stopping: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


STATE: web.AppKey[ServeState] = web.AppKey("serve_state", ServeState)


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


class TooManyBodies(Exception):
    """The bodies being read at once hold more than BODY_BUDGET bytes."""


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit` bytes; TooManyBodies when the bodies being read at
    once would hold more than the budget."""
    if request.content_length is not None and request.content_length > limit:
        return None
    state = request.app[STATE]
    data = bytearray()
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            data += chunk
            state.buffered += len(chunk)
            if len(data) > limit:
                return None
            if state.buffered > state.body_budget:
                raise TooManyBodies(f"serve is reading more than {state.body_budget:,} bytes of bodies at once; "
                                    f"try again later")
        return bytes(data)
    finally:
        state.buffered -= len(data)


class BodyTimedOut(Exception):
    """A request's body did not all arrive within --body-timeout."""


async def read_within(request: web.Request, read: Awaitable[T]) -> T:
    """`read` (of the request's body), bounded by --body-timeout: a client stalled in its body, or sending it
    a few bytes at a time, held its request open for as long as it liked."""
    seconds = request.app[STATE].body_timeout
    try:
        async with asyncio.timeout(seconds):
            return await read
    except TimeoutError:
        raise BodyTimedOut(f"the body did not arrive within {seconds:g} seconds") from None


async def answer_and_close(request: web.Request, status: int, error: str,
                           headers: dict[str, str] | None = None) -> web.Response:
    """Answer and close the connection at once: not after aiohttp's 10 s of reading, for a tidy close, the
    rest of a body that does not come."""
    response = answer(status, {"error": error}, headers)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


@web.middleware
async def bounded_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Any route's body read that timed out (the console's forms) is a 408 and nothing of it is kept."""
    try:
        return await handler(request)
    except BodyTimedOut as e:
        log.warning(f"{request.method} {request.path}: refused (408): {e}")
        return await answer_and_close(request, 408, str(e))
    except RequestPayloadError:
        # a body aiohttp cannot decode as it reads it ('Content-Encoding: gzip' on bytes that are not gzip):
        # it was an unhandled exception, '500 Internal Server Error' and 'Unhandled exception' in the log
        said = "its body does not match its Content-Length, chunked or compressed encoding"
        encoding = request.headers.get("Content-Encoding")
        log.warning(f"{request.method} {request.path}: refused (400): {said}"
                    + (f" (Content-Encoding: {header_text(encoding)})" if encoding else ""))
        return await answer_and_close(request, 400, f"the request's body cannot be read: {said}")


def header_text(value: str) -> str:
    """A header's value as text to keep: bytes of it that are no UTF-8 (aiohttp reads them as lone
    surrogates) as `\xff`, and a body field's lone surrogate (a JSON "\ud800") as its escape. SQLite
    takes no lone surrogate: the inbox's writer died of one in a delivery id, and serve answered nothing
    again. Two ids that differ in such bytes stay two."""
    if value.isascii():
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # not from a header's bytes
        return surrogates_escaped(value)


def body_field(body: bytes, name: str) -> Any:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value.get(name) if isinstance(value, dict) else None


def not_served_yet(folder: Path | None, route: str, added: bool) -> str:
    """Why a flow of the folder gets a 404 though its file is there: serve reads the flows and their
    triggers at its start (an edit is taken later only when its triggers stay as they were)."""
    # a file stem of the folder only: '/hooks/..%2F..%2Fhome%2Fx' (the route is the segment unquoted) told
    # anybody who can post a webhook whether /home/x.flow exists, anywhere on the disk
    if folder is None or route in ("", ".", "..") or "/" in route or "\\" in route:
        return ""
    try:
        there = (folder / f"{route}.flow").is_file()
    except (OSError, ValueError):  # a NUL in the name
        there = False
    if not there:
        return ""
    what = "was added to the folder after serve started" if added else "had no webhook trigger when serve started"
    return f" ({route}.flow {what}: serve reads the flows and their triggers at its start; restart it to serve it)"


async def hook(request: web.Request) -> web.Response:
    state = request.app[STATE]
    route = request.match_info["flow"]
    served = state.flows.get(route)
    if served is None or served.webhook is None:
        return answer(404, {"error": f"no flow with a webhook trigger is called '{route}'"
                                     f"{not_served_yet(state.extra.get('folder'), route, served is None)}"})
    metrics = state.metrics
    if state.stopping:
        metrics.answered(route, 503)
        return answer(503, {"error": "serve is stopping"}, {"Retry-After": RETRY_AFTER_STOPPING})
    webhook = served.webhook
    try:
        body = await read_within(request, read_limited(request, webhook.max_body))
    except BodyTimedOut as e:
        metrics.answered(route, 408)
        log.warning(f"{route}: delivery refused (408): its body did not arrive within {state.body_timeout:g}s")
        return await answer_and_close(request, 408, str(e))
    except TooManyBodies as e:
        metrics.answered(route, 503)
        log.warning(f"{route}: delivery refused (503): {e}")
        return await answer_and_close(request, 503, str(e), {"Retry-After": RETRY_AFTER_FULL})
    if body is None:
        metrics.answered(route, 413)
        return answer(413, {"error": f"the body is larger than max_body ({webhook.max_body:,} bytes)"})
    headers = header_fields(request.headers)  # a header sent twice: both values, as an answer's headers
    verdict = check(served.schemes, headers, body, time.time())
    if not verdict.ok:
        metrics.answered(route, 401)
        log.warning(f"{route}: delivery refused (401): {verdict.reason}")
        return answer(401, {"error": verdict.reason})
    try:  # unzipped only now: the signature is of the bytes as they came (SERVE.md)
        body = decoded(body, request.headers.get("Content-Encoding"), webhook.max_body)
    except Refused as e:
        metrics.answered(route, e.status)
        log.warning(f"{request.method} {request.path}: refused ({e.status}): {e.reason}"
                    f" (Content-Encoding: {header_text(request.headers.get('Content-Encoding', ''))})")
        return answer(e.status, {"error": f"the request's body cannot be read: {e.reason}" if e.status == 400
                                 else e.reason})
    if any(s.preset == "slack" for s in served.schemes) and body_field(body, "type") == "url_verification":
        challenge = body_field(body, "challenge")
        metrics.answered(route, 200)
        return answer(200, {"challenge": challenge if isinstance(challenge, str) else ""})
    delivery_id = verdict.delivery_id
    if delivery_id is None and verdict.id_field is not None:
        found = body_field(body, verdict.id_field)
        delivery_id = str(found) if isinstance(found, str | int) and not isinstance(found, bool) else None
    # a blank id is none: the second delivery with 'X-GitHub-Delivery: ' (or a Stripe event's "id": "") was
    # taken for a duplicate of the first, answered 200 and never run
    delivery_id = header_text(delivery_id) if delivery_id is not None and delivery_id.strip() else None
    if state.runs.pending >= state.max_pending:
        # a provider's retry of a delivery already in the inbox is a duplicate, full or not: a 503 for it
        # counts as a failed delivery to the provider (Shopify removes a webhook after enough of them)
        first = state.inbox.seen(route, delivery_id) if delivery_id is not None else None
        if first is not None:
            metrics.answered(route, 200)
            return answer(200, {"duplicate": True, "delivery": first[0], "job": first[1]})
        metrics.answered(route, 503)
        return answer(503, {"error": f"{state.max_pending:,} deliveries are waiting; try again later"},
                      {"Retry-After": RETRY_AFTER_FULL})
    state.runs.reserve()
    kept = {name: header_text(value) for name, value in headers.items()}
    delivery = Delivery(0, route, delivery_id, now_text(), header_text(request.headers.get("Content-Type", "")),
                        masked_headers(kept, served.schemes, served.mask), body)
    waiter: Future[Result | None] | None = Future() if webhook.respond == "outputs" else None
    # the run's job id once its job has started (None if it ends without one): the answer names the job
    # when it is known. When the flow has nothing to do, the answer waits (a little) for that, so a 202
    # means the run is under way, not only queued; behind other deliveries it answers at once
    started: Future[int | None] = Future()
    idle = waiter is None and state.runs.queues[route].idle

    def committed(inbox_id: int, duplicate: bool) -> None:
        if not duplicate:
            delivery.id = inbox_id
            state.runs.enqueue(delivery, waiter, started)

    try:
        inbox_id, duplicate, first_job = await asyncio.wrap_future(state.inbox.accept(delivery, committed))
    except StoreError as e:
        state.runs.release()
        metrics.answered(route, 503)
        log.error(f"{route}: {e.message}")
        return answer(503, {"error": "the inbox cannot be written"}, {"Retry-After": RETRY_AFTER_FULL})
    if duplicate:
        state.runs.release()
        metrics.answered(route, 200)
        return answer(200, {"duplicate": True, "delivery": inbox_id, "job": first_job})
    if waiter is not None:
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(waiter), webhook.timeout)
        except TimeoutError:
            result = None
        if result is not None:
            metrics.answered(route, 200)
            text = dumps({"delivery": inbox_id, "job": result.job_id, "status": result.status,
                          "outputs": result.outputs})
            return web.Response(status=200, text=text, content_type="application/json")
    elif idle:
        await asyncio.wait([asyncio.wrap_future(started)], timeout=START_WAIT)  # (not cancelled at the timeout)
    job = started.result() if started.done() and not started.cancelled() else None
    metrics.answered(route, 202)
    return answer(202, {"delivery": inbox_id, "job": job})


START_WAIT = 0.05  # seconds a 202 waits at most for an idle flow's run to start
HEALTH_WAIT = 5.0  # seconds /healthz waits for a write round trip through the inbox


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        await asyncio.wait_for(asyncio.wrap_future(state.inbox.check_writable()), HEALTH_WAIT)
    except StoreError as e:
        return answer(503, {"ok": False, "error": str(e)})
    except TimeoutError:
        return answer(503, {"ok": False, "error": f"the inbox cannot be written: no write went through within "
                                                   f"{HEALTH_WAIT:g}s (is another process holding it?)"})
    return answer(200, {"ok": True, "pending": state.runs.pending, "stopping": state.stopping})


async def metrics_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.Response(body=state.metrics.text(), headers={"Content-Type": CONTENT_TYPE})


def build_app(state: ServeState) -> web.Application:
    biggest = max((f.webhook.max_body for f in state.flows.values() if f.webhook is not None), default=1_000_000)
    app = web.Application(client_max_size=biggest + CHUNK, middlewares=[bounded_bodies])
    app[STATE] = state
    app.router.add_post("/hooks/{flow}", hook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app
