"""An OAuth2 provider and the API it guards, on 127.0.0.1 for the tests (aiohttp, in a thread of its
own): `POST /token` (client credentials) hands out tokens, `/api/...` answers 401 to a request whose
bearer token it did not hand out, or that expired or was revoked, and records every request.

    with AuthApi(lifetime=2) as api:
        api.url                  # http://127.0.0.1:PORT
        api.token_url            # .../token
        api.accepted("POST", "/api/items")   # bodies answered 200, once each as the server saw them
        api.tokens               # the tokens handed out, in order
        api.revoke_after = 10    # the 10th API request revokes every token first (the provider's
                                 # key rotation); with single = True a new token revokes the older ones
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: str
    status: int


class AuthApi:
    def __init__(self, lifetime: float = 3600, *, said_lifetime: Any = None, single: bool = False,
                 revoke_after: int | None = None, delay: Callable[[int], float] | None = None,
                 token_answer: Callable[[], web.StreamResponse] | None = None) -> None:
        self.lifetime = lifetime  # how long the server honours a token
        self.said_lifetime = lifetime if said_lifetime is None else said_lifetime  # expires_in
        self.single = single  # a new token revokes the older ones (some providers keep one per client)
        self.revoke_after = revoke_after
        self.delay = delay  # seconds the nth API request (from 1) waits before it is answered
        self.token_answer = token_answer  # answer the token request with this instead
        self.tokens: list[str] = []
        self.valid: dict[str, float] = {}  # token -> when it expires (monotonic)
        self.seen: list[Seen] = []
        self.token_requests: list[dict[str, str]] = []
        self._count = 0
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def accepted(self, method: str, path: str) -> list[str]:
        return [s.body for s in self.seen if s.method == method and s.path == path and s.status == 200]

    def refused(self) -> list[Seen]:
        return [s for s in self.seen if s.status == 401]

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if self.token_answer is not None:
            return self.token_answer()
        token = f"tok-{len(self.tokens) + 1}"
        if self.single:
            self.valid.clear()
        self.tokens.append(token)
        self.valid[token] = time.monotonic() + self.lifetime
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.said_lifetime})

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body = (await request.read()).decode()
        self._count += 1
        n = self._count
        if self.revoke_after is not None and n == self.revoke_after:
            self.valid.clear()
        authorization = request.headers.get("Authorization")
        token = (authorization or "").removeprefix("Bearer ")
        if self.delay is not None:
            await asyncio.sleep(self.delay(n))
        ok = time.monotonic() < self.valid.get(token, 0)
        self.seen.append(Seen(request.method, request.path, authorization, body, 200 if ok else 401))
        if not ok:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"ok": True, "n": n})

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_route("*", "/api/{tail:.*}", self._api)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self._runner = runner
        self.port = runner.addresses[0][1]
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def __enter__(self) -> AuthApi:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
