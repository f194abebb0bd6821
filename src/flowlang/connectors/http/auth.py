"""Authentication for HTTP requests: bearer, basic, API key (header or query) and OAuth2 client
credentials (the token is fetched, cached, refreshed before it expires and once after a 401: the
requests in flight that meet the same 401 share one new token)."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from flowlang.errors import FlowRuntimeError
from flowlang.runtime.masking import MIN_IN_TEXT
from flowlang.runtime.values import Secret, to_text, type_name

REFRESH_MARGIN = 60.0  # seconds before expiry a cached token is renewed (a tenth of a shorter lifetime)
DEFAULT_LIFETIME = 3600.0  # a token whose answer gives no usable expires_in


def reveal(value: Any) -> str:
    return value.reveal() if isinstance(value, Secret) else to_text(value)


@dataclass
class RequestAuth:
    """Headers and query parameters one request carries for authentication."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


NO_AUTH = RequestAuth()

TokenFetcher = Callable[[str, dict[str, str], dict[str, str]], Awaitable[tuple[int, Any]]]


class Auth:
    """Base: no authentication."""

    async def apply(self, fetch: TokenFetcher) -> RequestAuth:
        return RequestAuth()

    def fixed(self) -> RequestAuth | None:
        """What every request carries, when that never changes (read it, never change it); None when
        each request must ask `apply` (a token that is fetched and expires)."""
        return NO_AUTH

    def refreshable(self) -> bool:
        return False

    def invalidate(self, used: RequestAuth) -> None:
        """A request sent with `used` was answered 401: forget that token (not a newer one)."""

    def secrets(self) -> list[str]:
        return []


class BearerAuth(Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    async def apply(self, fetch: TokenFetcher) -> RequestAuth:
        return RequestAuth(headers={"Authorization": f"Bearer {self.token}"})

    def fixed(self) -> RequestAuth | None:
        return RequestAuth(headers={"Authorization": f"Bearer {self.token}"})

    def secrets(self) -> list[str]:
        # a token shorter than MIN_IN_TEXT is masked only as a whole value, so an API echoing the header it
        # got ('"Authorization": "Bearer pw1"') showed it: its header's value is one too (a longer token is
        # masked anywhere, and shows as 'Bearer ***')
        return [self.token, *([f"Bearer {self.token}"] if len(self.token) < MIN_IN_TEXT else [])]


class BasicAuth(Auth):
    def __init__(self, user: str, password: str) -> None:
        self.value = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.password = password

    async def apply(self, fetch: TokenFetcher) -> RequestAuth:
        return RequestAuth(headers={"Authorization": f"Basic {self.value}"})

    def fixed(self) -> RequestAuth | None:
        return RequestAuth(headers={"Authorization": f"Basic {self.value}"})

    def secrets(self) -> list[str]:
        return [self.value, self.password]


class ApiKeyAuth(Auth):
    def __init__(self, name: str, value: str, where: str) -> None:
        self.name = name
        self.value = value
        self.where = where

    async def apply(self, fetch: TokenFetcher) -> RequestAuth:
        if self.where == "query":
            return RequestAuth(query={self.name: self.value})
        return RequestAuth(headers={self.name: self.value})

    def fixed(self) -> RequestAuth | None:
        if self.where == "query":
            return RequestAuth(query={self.name: self.value})
        return RequestAuth(headers={self.name: self.value})

    def secrets(self) -> list[str]:
        return [self.value]


# (loop id, loop, token URL, client's digest, scope, method) -> (token, monotonic time to renew it)
_TOKENS: dict[tuple[Any, ...], tuple[str, float]] = {}


class OAuth2ClientCredentials(Auth):
    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None,
                 on_token: Callable[[str], None], method: str = "post") -> None:
        if method not in ("post", "basic"):
            raise FlowRuntimeError(f'oauth2 auth_method must be "post" or "basic", got {method!r}', "connector")
        self.method = method
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.on_token = on_token
        self._token: str | None = None
        self._renew_at = 0.0  # monotonic
        self._lock = asyncio.Lock()
        self._key = self._cache_key()
        kept = _TOKENS.get(self._key) if self._key is not None else None
        if kept is not None and time.monotonic() < kept[1]:  # an earlier connection's token, still good
            self._token, self._renew_at = kept
            on_token(kept[0])

    def _cache_key(self) -> tuple[Any, ...] | None:
        """Where this client's token is kept for the next connection of the same event loop: each run of
        flowlang serve (a delivery, a tick) opens its connections anew, and each asked the token endpoint
        for a token of its own (a provider that limits token requests refused them). None outside a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        import hashlib

        digest = hashlib.sha256("\0".join([self.client_id, self.client_secret]).encode(
            "utf-8", "surrogatepass")).hexdigest()
        return (id(loop), loop, self.token_url, digest, self.scope, self.method)

    def secrets(self) -> list[str]:
        return [self.client_secret, self._basic(), *([self._token] if self._token else [])]

    def _basic(self) -> str:
        """RFC 6749 2.3.1: id and secret form-encoded, joined by ':', in base64."""
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return base64.b64encode(pair.encode()).decode("ascii")

    def refreshable(self) -> bool:
        return True

    def fixed(self) -> RequestAuth | None:
        return None

    def invalidate(self, used: RequestAuth) -> None:
        # only the token the refused request carried: another request in flight that met the same 401
        # may already have fetched the next one, which stays
        if self._token is not None and used.headers.get("Authorization") == f"Bearer {self._token}":
            if self._key is not None and _TOKENS.get(self._key, ("",))[0] == self._token:
                del _TOKENS[self._key]
            self._token = None

    async def apply(self, fetch: TokenFetcher) -> RequestAuth:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                await self._fetch(fetch)
        return RequestAuth(headers={"Authorization": f"Bearer {self._token}"})

    async def _fetch(self, fetch: TokenFetcher) -> None:
        form = {"grant_type": "client_credentials"}
        headers: dict[str, str] = {}
        if self.method == "basic":
            headers["Authorization"] = f"Basic {self._basic()}"
        else:
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        if self.scope:
            form["scope"] = self.scope
        status, body = await fetch(self.token_url, form, headers)
        if status >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            raise FlowRuntimeError(f"the OAuth2 token endpoint answered {status} without an access_token"
                                   + token_error(body), "http", status=status)
        self._token = str(body["access_token"])
        self.on_token(self._token)
        lifetime = token_lifetime(body.get("expires_in"))
        self._renew_at = time.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime / 10)
        if self._key is not None:
            for key in [k for k in _TOKENS if k[1].is_closed() or _TOKENS[k][1] <= time.monotonic()]:
                del _TOKENS[key]
            _TOKENS[self._key] = (self._token, self._renew_at)


def token_lifetime(expires_in: Any) -> float:
    """A token answer's expires_in in seconds (a number, or a text of one); DEFAULT_LIFETIME when it
    gives none that is a positive finite number."""
    if isinstance(expires_in, bool):
        return DEFAULT_LIFETIME
    try:
        lifetime = float(expires_in)
    except (TypeError, ValueError, OverflowError):
        return DEFAULT_LIFETIME
    return lifetime if math.isfinite(lifetime) and lifetime > 0 else DEFAULT_LIFETIME


def token_error(body: Any) -> str:
    """What a token endpoint said was wrong (RFC 6749 5.2: `error`, `error_description`), or what it
    answered instead of a token object: `: invalid_client (the client secret is wrong)`, or the keys of
    an object without a token."""
    if isinstance(body, dict):
        said = [to_text(body[k]) for k in ("error", "error_description") if body.get(k) not in (None, "")]
        if not said:
            return f" (the answer has {', '.join(map(str, body)) or 'no keys'})"
        text = said[0] + (f" ({said[1]})" if len(said) > 1 else "")
    elif isinstance(body, str) and body.strip():
        text = body.strip()
    elif body is None or isinstance(body, str):
        return ""
    else:
        return f" (the answer is {'a list' if isinstance(body, list) else to_text(body)[:100]})"
    return ": " + (text if len(text) <= 300 else text[:300] + "...")


def given(value: Any, what: str) -> str:
    """The text of a credential; an empty one (a secret or an environment variable set to nothing) is
    refused when the connection opens, not sent to be answered 401."""
    text = reveal(value)
    if not text.strip():
        raise FlowRuntimeError(f"auth: {what} is empty, so no request would carry a credential (a secret or "
                               "an environment variable set to nothing?)", "connector")
    return text


def bearer_token(value: Any) -> str:
    """The token of bearer auth. One given with its scheme ("Bearer eyJ...", as a token is often copied)
    went out as "Bearer Bearer eyJ..." and was answered 401 at every request: refused, without showing it."""
    text = given(value, "the bearer token")
    if text.lstrip().lower().startswith("bearer "):
        raise FlowRuntimeError("auth: the bearer token starts with 'Bearer ', which bearer() adds itself: give the "
                               "token alone", "connector")
    return text


def make_auth(value: Any, on_token: Callable[[str], None]) -> Auth:
    """The Auth for a `use ... auth:` value (from bearer(), basic(), api_key(), oauth2_...())."""
    if value is None:
        return Auth()
    if isinstance(value, str | Secret):
        return BearerAuth(bearer_token(value))
    if not isinstance(value, Mapping) or "type" not in value:
        raise FlowRuntimeError(f"auth must be bearer(...), basic(...), api_key(...) or "
                               f"oauth2_client_credentials(...), got {type_name(value)}", "connector")
    kind = value["type"]
    if kind == "bearer":
        return BearerAuth(bearer_token(value.get("token")))
    if kind == "basic":
        user = given(value.get("user"), "basic()'s user")
        if ":" in user:  # not shown: it may be a key given as the user
            from flowlang.runtime.builtins.auth import BASIC_USER_COLON

            raise FlowRuntimeError(BASIC_USER_COLON, "connector")
        return BasicAuth(user, reveal(value.get("password")))
    if kind == "api_key":
        where = str(value.get("in") or "header")
        if where not in ("header", "query"):
            raise FlowRuntimeError('api_key auth needs in: "header" or "query"', "connector")
        return ApiKeyAuth(given(value.get("name"), "api_key()'s name"), given(value.get("value"), "the API key"),
                          where)
    if kind == "oauth2_client_credentials":
        scope = value.get("scope")
        return OAuth2ClientCredentials(given(value.get("token_url"), "the OAuth2 token_url"),
                                       given(value.get("client_id"), "the OAuth2 client_id"),
                                       given(value.get("client_secret"), "the OAuth2 client_secret"),
                                       reveal(scope) if scope else None,
                                       on_token, str(value.get("auth_method") or "post"))
    raise FlowRuntimeError(f"unknown auth type {kind!r}", "connector")
