"""Auth helpers for `use`: each returns an auth description object that HTTP connectors read."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from flowlang.runtime.builtins.registry import Builtin, BuiltinError, ParamSpec, need, params_of

AUTH_TYPES = ("bearer", "basic", "api_key", "oauth2_client_credentials")
OAUTH2_METHODS = ("post", "basic")


def bearer(token: Any) -> Any:
    """bearer(token): the header `Authorization: Bearer <token>`, for `auth:` of an HTTP connection.

    Examples:
        bearer(secret.SHOP_TOKEN)
    """
    need(token, "string secret", "bearer", "token")
    return {"type": "bearer", "token": token}


def basic(user: Any, password: Any) -> Any:
    """basic(user, password): HTTP Basic authentication, for `auth:` of an HTTP connection.

    Examples:
        basic(env.ERP_USER, secret.ERP_PASSWORD)
    """
    need(user, "string secret", "basic", "user")
    need(password, "string secret", "basic", "password")
    return {"type": "basic", "user": user, "password": password}


def api_key(name: Any, value: Any, in_: Any = "header") -> Any:
    """api_key(name, value, in: "header"|"query"): an API key sent in a header (default) or the query string.

    Give the key as a secret: it is masked wherever it could be shown, in a URL's query string too.

    Examples:
        api_key("X-Api-Key", secret.CRM_KEY)
        api_key("api_key", secret.CRM_KEY, in: "query")
    """
    need(name, "string", "api_key", "name")
    need(value, "string secret", "api_key", "value")
    _key_place(in_)
    return {"type": "api_key", "name": name, "value": value, "in": in_}


def oauth2_client_credentials(token_url: Any, client_id: Any, client_secret: Any, scope: Any = None,
                              auth_method: Any = "post") -> Any:
    """oauth2_client_credentials(token_url, client_id, client_secret, scope, auth_method): OAuth2.

    The client credentials grant: a token is fetched from token_url, kept until shortly before it
    expires, and fetched again once after a 401. auth_method: "post" (the default) sends the client id
    and secret in the token request's form, "basic" as HTTP Basic client authentication (RFC 6749 2.3.1).

    Examples:
        oauth2_client_credentials("https://login.example.com/oauth/token", env.CLIENT_ID, secret.CLIENT_SECRET)
        oauth2_client_credentials(env.TOKEN_URL, env.ID, secret.SECRET, scope: "orders.read", auth_method: "basic")
    """
    need(token_url, "string", "oauth2_client_credentials", "token_url")
    need(client_id, "string secret", "oauth2_client_credentials", "client_id")
    need(client_secret, "string secret", "oauth2_client_credentials", "client_secret")
    if scope is not None:
        need(scope, "string", "oauth2_client_credentials", "scope")
    _oauth2_method(auth_method)
    return {"type": "oauth2_client_credentials", "token_url": token_url, "client_id": client_id,
            "client_secret": client_secret, "scope": scope, "auth_method": auth_method}


class _ApiKey(Builtin):
    """api_key(): its Python argument `in_` is `in` in a flow (read on first use, like every builtin's)."""

    @cached_property
    def params(self) -> tuple[ParamSpec, ...]:
        return tuple(ParamSpec("in", p.default, p.variadic) if p.name == "in_" else p for p in params_of(self.fn))


def _credential(fn: str, arg: str, what: str) -> Callable[[Any], None]:
    """The rule for a credential written as a constant: a string (or a secret), not empty or blanks (the
    connection refuses those when it opens: no request would carry a credential)."""
    def rule(value: Any) -> None:
        need(value, "string secret", fn, arg)
        if isinstance(value, str) and not value.strip():
            raise BuiltinError(f"auth: {what} is empty, so no request would carry a credential (a secret or an "
                               "environment variable set to nothing?)")
    return rule


BASIC_USER_COLON = ("auth: basic()'s user holds a ':', which HTTP Basic cannot carry: the server reads the user up "
                    "to the first ':' and the rest as the password, and answers 401 (RFC 7617); a 'user:password' "
                    "pair is given as basic(user, password)")


def _basic_user(value: Any) -> None:
    _credential("basic", "user", "basic()'s user")(value)
    if isinstance(value, str) and ":" in value:
        raise BuiltinError(BASIC_USER_COLON)


def _bearer_token(value: Any) -> None:
    _credential("bearer", "token", "the bearer token")(value)
    if isinstance(value, str) and value.lstrip().lower().startswith("bearer "):
        raise BuiltinError("auth: the bearer token starts with 'Bearer ', which bearer() adds itself: give the "
                           "token alone")


def _key_place(value: Any) -> None:
    if value not in ("header", "query"):
        raise BuiltinError('api_key() needs in: "header" or "query"')


def _token_url(value: Any) -> None:
    need(value, "string", "oauth2_client_credentials", "token_url")
    if not token_url_is_http(value):
        raise BuiltinError(TOKEN_URL_NOT_HTTP)


def _oauth2_method(value: Any) -> None:
    if value not in OAUTH2_METHODS:
        raise BuiltinError('oauth2_client_credentials() needs auth_method: "post" (the secret in the form) or '
                           '"basic" (HTTP Basic client authentication)')


TOKEN_URL_NOT_HTTP = "auth: the OAuth2 token_url must start with http:// or https://"


def token_url_is_http(url: str) -> bool:
    """A token endpoint is an absolute http(s) URL: it is not joined to base_url, and any other scheme
    (ftp://, a relative /oauth/token) failed every request with five connection attempts."""
    return url.startswith(("http://", "https://"))


BUILTINS = (
    Builtin.of("bearer", bearer, constant_checks={"token": _bearer_token}),
    Builtin.of("basic", basic, constant_checks={"user": _basic_user}),
    _ApiKey("api_key", api_key, constant_checks={"name": _credential("api_key", "name", "api_key()'s name"),
                                                 "value": _credential("api_key", "value", "the API key"),
                                                 "in": _key_place}),
    Builtin.of("oauth2_client_credentials", oauth2_client_credentials, constant_checks={
        "token_url": _token_url,
        "client_id": _credential("oauth2_client_credentials", "client_id", "the OAuth2 client_id"),
        "client_secret": _credential("oauth2_client_credentials", "client_secret", "the OAuth2 client_secret"),
        "auth_method": _oauth2_method}),
)
