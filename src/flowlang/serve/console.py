"""The console at `/`: server-rendered HTML for a person. It shows the flows with their triggers and next
ticks, a picture of each flow's steps, the recent jobs (status, counts, duration) and the open errors
with their record and message. Actions (run a flow now, retry an error, resolve an error) need the
console token: a bearer token, or the login form that sets a session cookie; forms carry a CSRF token.
Reading needs nothing on loopback (a request no proxy forwarded); from elsewhere it needs the token too."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from flowlang.errors import FlowError
from flowlang.picture import svg, trigger_text
from flowlang.runner import Result
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.store import LARGEST_ID, Store, StoredError, now_text
from flowlang.runtime.values import format_datetime
from flowlang.serve.flows import ServedFlow
from flowlang.serve.server import STATE, ServeState, read_within
from flowlang.serve.signatures import wire

COOKIE = "flowlang_console"
ACTION_WAIT = 30.0  # seconds an action waits for its job before the page says it is still running
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9rem} td,th{padding:.3rem .5rem;border-bottom:1px solid #eee;
text-align:left;vertical-align:top} th{background:#f6f6f6} .ok{color:#176b17} .failed,.crashed{color:#b00020}
.partial{color:#a15c00} pre{background:#f6f6f6;padding:.6rem;overflow:auto;max-height:24rem}
form.inline{display:inline} .notice{background:#eef6ff;padding:.5rem;border:1px solid #bcd} .muted{color:#777}
"""


@dataclass
class Sessions:
    """Console logins: session ids set by the login form, and the key CSRF tokens are derived with."""

    token: str | None
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    ids: set[str] = field(default_factory=set)

    def csrf(self, session: str) -> str:
        return hmac.new(self.key, session.encode(), hashlib.sha256).hexdigest()

    def notice_mark(self, notice: str) -> str:
        """The mark a notice's link carries: only a notice the console itself said is shown."""
        return hmac.new(self.key, b"notice:" + notice.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]

    def token_ok(self, given: str) -> bool:
        """`given` as sent: a header's bytes that are no UTF-8 made encode() fail, a 500 for the action."""
        return self.token is not None and hmac.compare_digest(wire(given), self.token.encode())


SESSIONS: web.AppKey[Sessions] = web.AppKey("console_sessions", Sessions)


def session_of(request: web.Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value is not None and value in request.app[SESSIONS].ids else None


def bearer_ok(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    # the scheme's name is case-insensitive (RFC 9110 11.1): 'bearer TOKEN' was refused, 403
    return scheme.lower() == "bearer" and request.app[SESSIONS].token_ok(token.strip())


# headers a reverse proxy adds to what it forwards (nginx's usual proxy_set_header lines, Caddy's, Traefik's,
# Apache's, HAProxy's): a request with one came from somebody else, whatever address it connects from
FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host", "x-forwarded-proto", "x-client-ip",
             "true-client-ip", "cf-connecting-ip", "via")


def loopback(request: web.Request) -> bool:
    """A person on this machine: a request from a loopback address that no proxy forwarded. The TLS proxy the
    README puts in front connects from 127.0.0.1 for every client on the internet, so the console, open
    errors' records and all, was theirs to read without the token."""
    if any(name in request.headers for name in FORWARDED):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def may_read(request: web.Request) -> bool:
    return loopback(request) or bearer_ok(request) or session_of(request) is not None


UNREADABLE_FORM = "the form cannot be read: its bytes are no text in the charset it names"


async def read_form(request: web.Request) -> Mapping[str, Any] | None:
    """The posted form, or None where it is no text in its charset (a raw b'\xff', `charset=zlib`):
    aiohttp's decoding raised, and the answer was a 500."""
    try:
        return await read_within(request, request.post())
    except (ValueError, LookupError):
        return None


async def may_act(request: web.Request) -> tuple[bool, str]:
    """Whether this POST may act, and why not."""
    sessions = request.app[SESSIONS]
    if sessions.token is None:
        return False, "actions are off: start serve with --console-token-file FILE"
    if bearer_ok(request):
        return True, ""
    session = session_of(request)
    if session is None:
        return False, "this action needs the console token: log in first"
    form = await read_form(request)
    if form is None:
        return False, UNREADABLE_FORM
    given = form.get("csrf")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), sessions.csrf(session).encode()):
        return False, "the form's CSRF token is missing or wrong: reload the page and try again"
    return True, ""


# ---- rendering ---------------------------------------------------------------------------------


def said_notice(request: web.Request) -> str | None:
    """The notice of the link an action redirected to, when the console made that link: any text in ?notice=
    was shown as the console's own notice ('/?notice=Your session expired: log in at https://...', a link
    anybody could send to the person on the machine, who needs no login to read)."""
    notice = request.query.get("notice")
    mark = request.query.get("mark", "")
    if notice is None or not hmac.compare_digest(mark.encode("utf-8", "surrogatepass"),
                                                 request.app[SESSIONS].notice_mark(notice).encode()):
        return None
    return notice


def page(title: str, body: str, request: web.Request, notice: str | None = None) -> web.Response:
    session = session_of(request)
    who = ('<form class="inline" method="post" action="/logout"><button>log out</button></form>' if session
           else '<a href="/login">log in</a> to act')
    note = f'<p class="notice" id="notice">{escape(notice)}</p>' if notice else ""
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<style>{STYLE}</style></head><body><p class="muted"><a href="/">flowlang serve</a> · {who}</p>'
            f'<h1>{escape(title)}</h1>{note}{body}</body></html>')
    return web.Response(text=html, content_type="text/html",
                        headers={"X-Frame-Options": "DENY", "Content-Security-Policy":
                                 "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
                                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


def button(request: web.Request, action: str, label: str, name: str) -> str:
    session = session_of(request)
    csrf = f'<input type="hidden" name="csrf" value="{request.app[SESSIONS].csrf(session)}">' if session else ""
    return (f'<form class="inline" method="post" action="{escape(action)}">{csrf}'
            f'<button name="{escape(name)}" id="{escape(name)}">{escape(label)}</button></form>')


def short(value: Any, limit: int = 160) -> str:
    text = dumps(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def job_row(route: str, job: dict[str, Any]) -> str:
    stats = job.get("stats") or {}
    try:
        duration = f"{float(stats['duration']):.2f}s"
    except (KeyError, TypeError, ValueError):
        duration = ""
    counts = f"{stats.get('read', 0)} / {stats.get('sent', 0)} / {stats.get('failed', 0)}" if stats else ""
    status = escape(str(job["status"]))
    return (f'<tr class="job" data-flow="{escape(route)}" data-status="{status}"><td>{job["id"]}</td>'
            f'<td>{escape(route)}</td><td>{escape(str(job["kind"]))}</td><td class="{status}">{status}</td>'
            f'<td>{escape(str(job["started_at"]))}</td><td>{duration}</td><td>{counts}</td>'
            f'<td>{escape(str(job.get("message") or ""))}</td></tr>')


def error_row(request: web.Request, route: str, e: StoredError) -> str:
    link = f"/errors/{quote(route)}/{e.id}"
    path = f"{quote(route)}/{e.id}"  # a file stem as a URL's segment ('what? #1' is what%3F%20%231)
    return (f'<tr class="error" data-id="{e.id}"><td><a href="{link}">#{e.id}</a></td><td>{escape(route)}</td>'
            f'<td>{escape(e.location)}</td><td>{escape(e.message)}</td><td><code>{escape(short(e.record))}</code></td>'
            f'<td>{e.attempts}</td><td>{button(request, f"/actions/retry/{path}", "Retry", f"retry-{e.id}")} '
            f'{button(request, f"/actions/resolve/{path}", "Resolve", f"resolve-{e.id}")}</td></tr>')


def store_of(state: ServeState) -> Store:
    folder = state.extra["state_dir"]
    assert isinstance(folder, Path)
    return Store(folder)


def flow_section(request: web.Request, served: ServedFlow, state: ServeState, open_count: int) -> str:
    scheduler = state.extra["scheduler"]
    triggers = list(served.flow.checked.triggers)
    lines = []
    for t in triggers:
        lines.append(escape(trigger_text(t)))
    if served.webhook is not None:
        lines.append(f"<code>POST /hooks/{escape(quote(served.route))}</code>")
    ticks = [format_datetime(t) for t in scheduler.next_ticks(served.route)]
    nxt = f"next tick {escape(', '.join(ticks))}" if ticks else ""
    return (f'<tr class="flow" data-route="{escape(served.route)}"><td><b>{escape(served.name)}</b><br>'
            f'<span class="muted">{escape(served.route)}.flow</span></td><td>{"<br>".join(lines) or "none"}</td>'
            f'<td class="next">{nxt}</td><td>{open_count}</td>'
            f'<td>{button(request, f"/actions/run/{quote(served.route)}", "Run now", f"run-{served.route}")}</td></tr>')


async def index(request: web.Request) -> web.Response:
    if not may_read(request):
        raise web.HTTPFound("/login")
    state = request.app[STATE]
    store = store_of(state)
    try:
        jobs: list[tuple[str, dict[str, Any]]] = []
        errors: list[tuple[str, StoredError]] = []
        counts: dict[str, int] = {}
        for route, served in state.flows.items():
            jobs += [(route, j) for j in store.jobs(served.flow.key, 30)]
            found = store.open_errors(served.flow.key)
            counts[route] = len(found)
            errors += [(route, e) for e in found[:50]]
    finally:
        store.close()
    jobs.sort(key=lambda rj: rj[1]["id"], reverse=True)
    flows = "".join(flow_section(request, f, state, counts[r]) for r, f in state.flows.items())
    pictures = "".join(f'<h3>{escape(f.name)}</h3>{svg(f.flow.module, list(f.flow.checked.triggers), f.name)}'
                       for f in state.flows.values())
    body = (f'<h2>Flows</h2><table id="flows"><tr><th>flow</th><th>triggers</th><th>next</th><th>open errors</th>'
            f'<th></th></tr>{flows}</table>'
            f'<h2>Recent jobs</h2><table id="jobs"><tr><th>job</th><th>flow</th><th>kind</th><th>status</th>'
            f'<th>started</th><th>duration</th><th>read / sent / failed</th><th>message</th></tr>'
            f'{"".join(job_row(r, j) for r, j in jobs[:50])}</table>'
            f'<h2>Open errors</h2><table id="errors"><tr><th>error</th><th>flow</th><th>where</th><th>message</th>'
            f'<th>record</th><th>attempts</th><th></th></tr>{"".join(error_row(request, r, e) for r, e in errors)}'
            f'</table><h2>Steps</h2>{pictures}'
            f'<p class="muted">inbox: {state.runs.pending} waiting · <a href="/metrics">metrics</a> · '
            f'<a href="/healthz">health</a></p>')
    return page("flowlang serve", body, request, said_notice(request))


def error_number(request: web.Request) -> int | None:
    """The {id} of an error's URL; None where it can be no error's (not a number, past the store's)."""
    try:
        error_id = int(request.match_info["id"])
    except ValueError:
        return None
    return error_id if 0 < error_id <= LARGEST_ID else None


async def error_page(request: web.Request) -> web.Response:
    if not may_read(request):
        raise web.HTTPFound("/login")
    state = request.app[STATE]
    served = state.flows.get(request.match_info["flow"])
    if served is None:
        return no_flow(request)
    error_id = error_number(request)
    if error_id is None:
        return no_error(request, served.route, request.match_info["id"], False)
    store = store_of(state)
    try:
        found, resolved = store.get_error(served.flow.key, error_id)
    finally:
        store.close()
    if found is None:
        text = f"error {error_id} is resolved" if resolved else f"no error {error_id}"
        response = page(f"{served.name}: error {error_id}", f"<p>{escape(text)}</p>", request)
        if not resolved:
            response.set_status(404)  # as an unknown flow's page: a link to nothing is not found
        return response
    record = json.dumps(json.loads(dumps(found.record)), indent=2, ensure_ascii=False)
    scope = json.dumps(json.loads(dumps(found.scope)), indent=2, ensure_ascii=False)
    route = served.route
    body = (f'<p><b>{escape(found.message)}</b></p><p>at {escape(found.location)} (kind {escape(found.kind)}, '
            f'job {found.job_id}, {escape(found.created_at)}, {found.attempts} attempt(s))</p>'
            f'<h2>Record</h2><pre id="record">{escape(record)}</pre><h2>Variables</h2><pre>{escape(scope)}</pre>'
            f'<p>{button(request, f"/actions/retry/{quote(route)}/{error_id}", "Retry", f"retry-{error_id}")} '
            f'{button(request, f"/actions/resolve/{quote(route)}/{error_id}", "Resolve", f"resolve-{error_id}")}</p>')
    return page(f"{served.name}: error {error_id}", body, request, said_notice(request))


# ---- login -------------------------------------------------------------------------------------


LOGIN_FORM = ('<form method="post" action="/login"><label>console token <input type="password" name="token" '
              'id="token" autocomplete="off"></label> <button id="login">log in</button></form>')


async def login_form(request: web.Request) -> web.Response:
    return page("log in", LOGIN_FORM, request, said_notice(request))


async def login(request: web.Request) -> web.Response:
    sessions = request.app[SESSIONS]
    form = await read_form(request)
    if form is None:
        response = page("log in", LOGIN_FORM, request, UNREADABLE_FORM)
        response.set_status(400)
        return response
    given = form.get("token")
    if not isinstance(given, str) or not sessions.token_ok(given.strip()):
        response = page("log in", LOGIN_FORM, request, "wrong console token")
        response.set_status(403)
        return response
    session = secrets.token_urlsafe(32)
    sessions.ids.add(session)
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/")
    raise response


async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    if session is not None:
        request.app[SESSIONS].ids.discard(session)
    response = web.HTTPSeeOther("/")
    response.del_cookie(COOKIE, path="/")
    raise response


# ---- actions -----------------------------------------------------------------------------------


def for_script(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json") or "Authorization" in request.headers


def not_done(request: web.Request, status: int, why: str) -> web.Response:
    """An action that did nothing: `status` with {"error": why} for a script, a page saying why for a
    browser. (A missing error answered 200 {"ok": true, "notice": "no error N"}, as if it had been done.)"""
    if for_script(request):
        return web.json_response({"error": why}, status=status)
    title = {403: "not allowed", 404: "not found"}.get(status, "not done")
    links = '<a href="/login">log in</a> · ' if status == 403 else ""
    response = page(title, f'<p>{links}<a href="/">back</a></p>', request, why)
    response.set_status(status)
    return response


def refused(request: web.Request, why: str) -> web.Response:
    return not_done(request, 403, why)


def no_flow(request: web.Request) -> web.Response:
    """An action on a flow that is not served: 404, as JSON for a script (it said aiohttp's '404: Not Found'
    in plain text), as a page for a browser."""
    return not_done(request, 404, f"no served flow is called '{request.match_info['flow']}'")


def no_error(request: web.Request, route: str, error_id: int | str, resolved: bool) -> web.Response:
    """An action on an error that is not open: 404 for one the flow never had, 409 for one resolved already."""
    if resolved:
        return not_done(request, 409, f"error {error_id} of '{route}' was already resolved")
    return not_done(request, 404, f"no error {error_id} in the flow '{route}'")


def done(request: web.Request, notice: str, back: str = "/") -> web.Response:
    if "Authorization" in request.headers:
        return web.json_response({"ok": True, "notice": notice})
    mark = request.app[SESSIONS].notice_mark(notice)
    raise web.HTTPSeeOther(f"{back}?notice={quote(notice)}&mark={mark}")


async def wait_job(state: ServeState, coro: Any) -> Result | None:
    future = state.runs.call(coro)
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(future), ACTION_WAIT)
    except TimeoutError:
        return None
    assert isinstance(result, Result)
    return result


async def run_now(request: web.Request) -> web.Response:
    ok, why = await may_act(request)
    if not ok:
        return refused(request, why)
    state = request.app[STATE]
    route = request.match_info["flow"]
    if route not in state.flows:
        return no_flow(request)
    try:
        result = await wait_job(state, state.runs.run_job(route, "run", {"kind": "run", "by": "console"}))
    except FlowError as e:  # a run of the flow holds its lock: nothing ran (it answered 200 {"ok": true})
        return not_done(request, 409, f"{route}: cannot run: {e.message}")
    if result is None:
        return done(request, f"{route}: started; still running")
    return done(request, f"{route}: job {result.job_id} {result.status}")


async def retry(request: web.Request) -> web.Response:
    ok, why = await may_act(request)
    if not ok:
        return refused(request, why)
    state = request.app[STATE]
    route, error_id = request.match_info["flow"], error_number(request)
    served = state.flows.get(route)
    if served is None:
        return no_flow(request)
    if error_id is None:
        return no_error(request, route, request.match_info["id"], False)
    store = store_of(state)
    try:
        found, resolved = store.get_error(served.flow.key, error_id)
    finally:
        store.close()
    if found is None:  # before: a retry job ran, retried nothing, and said 'error N failed again'
        return no_error(request, route, error_id, resolved)
    try:
        result = await wait_job(state, state.runs.run_job(route, "retry", None, error_id, retry=True))
    except FlowError as e:
        return not_done(request, 409, f"{route}: cannot retry error {error_id}: {e.message}")
    if result is None:
        return done(request, f"{route}: retry of error {error_id} is still running")
    if error_id in result.resolved:
        return done(request, f"error {error_id} resolved by job {result.job_id}")
    return done(request, f"error {error_id} failed again (job {result.job_id})",
                f"/errors/{quote(route)}/{error_id}")


async def resolve(request: web.Request) -> web.Response:
    ok, why = await may_act(request)
    if not ok:
        return refused(request, why)
    state = request.app[STATE]
    route, error_id = request.match_info["flow"], error_number(request)
    served = state.flows.get(route)
    if served is None:
        return no_flow(request)
    if error_id is None:
        return no_error(request, route, request.match_info["id"], False)
    store = store_of(state)
    try:
        found, resolved = store.get_error(served.flow.key, error_id)
        if found is not None:
            store.resolve(error_id, 0)
    finally:
        store.close()
    if found is None:
        return no_error(request, route, error_id, resolved)
    return done(request, f"error {error_id} resolved by hand at {now_text()}")


def add_console(app: web.Application) -> None:
    state = app[STATE]
    token = state.extra.get("console_token")
    app[SESSIONS] = Sessions(token if isinstance(token, str) else None)
    app.router.add_get("/", index)
    app.router.add_get("/errors/{flow}/{id}", error_page)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/actions/run/{flow}", run_now)
    app.router.add_post("/actions/retry/{flow}/{id:\\d+}", retry)
    app.router.add_post("/actions/resolve/{flow}/{id:\\d+}", resolve)
