"""The `http` connector: configuration keys, operations, and opening a connection."""

from __future__ import annotations

import base64
import logging
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices
from flowlang.connectors.http.auth import OAuth2ClientCredentials, make_auth
from flowlang.connectors.http.client import HttpClient, HttpSettings, header_text
from flowlang.connectors.http.connection import MAX_SETTING, REQUEST_KEYS, HttpConnection
from flowlang.connectors.http.header_check import header_problem
from flowlang.connectors.http.hosts import HostGuard
from flowlang.connectors.http.ratelimit import RateLimiter, parse_rate
from flowlang.connectors.http.retry import RetryPolicy
from flowlang.connectors.http.transport import MAX_CONNECTIONS, MAX_RESPONSE_BYTES
from flowlang.connectors.http.urls import segment
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.builtins.auth import TOKEN_URL_NOT_HTTP, token_url_is_http
from flowlang.runtime.formcodec import PARAM_STYLES
from flowlang.runtime.values import Secret, to_text, type_name

DEFAULT_TIMEOUT = 30.0


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, Secret):
        return value.reveal()
    if not isinstance(value, str):
        raise FlowRuntimeError(f"{key}: must be a string, got {type_name(value)}", "connector")
    return value


def _number(config: Mapping[str, Any], key: str, default: float, whole: bool = False) -> float:
    value = config.get(key)
    if value is None:
        return default
    if type_name(value) != "number" or not value > 0:  # NaN (`timeout = nan` in TOML) is no positive number
        shown = "nan" if value != value else to_text(value)
        if key == "retry" and type_name(value) == "number":  # retry: 0 meant "no retries"
            raise FlowRuntimeError(f"retry: is the number of attempts in all, at least 1 (retry: 1 makes one "
                                   f"attempt and no retry), got {shown}", "connector")
        unit = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|ms|m|min|minutes?)\s*", shown) \
            if isinstance(value, str) and key == "timeout" else None  # the one setting of seconds
        if unit is not None:  # timeout: "30s", as a Go duration or a YAML setting writes it
            n = unit.group(1)
            seconds = {"ms": f"{n} / 1000"}.get(unit.group(2)) or (
                n if unit.group(2).startswith("s") else f"{n} * 60")
            raise FlowRuntimeError(f"{key}: is a number of seconds, got the text {shown!r}: write {key}: {seconds}",
                                   "connector")
        got = shown if type_name(value) == "number" else f"{type_name(value)} {shown!r}" \
            if isinstance(value, str) else type_name(value)
        raise FlowRuntimeError(f"{key}: must be a positive number, got {got}", "connector")
    if value > MAX_SETTING:  # 1e400 is infinity as a float, and int() of it an OverflowError
        raise FlowRuntimeError(f"{key}: the number is too large (at most {MAX_SETTING:,})", "connector")
    if whole and value != int(value):  # retry: 1.5 was 1 attempt, without a word
        raise FlowRuntimeError(f"{key}: must be a whole number, got {to_text(value)}", "connector")
    return float(value)


def http_settings(config: Mapping[str, Any], services: RunServices) -> HttpSettings:
    """Settings shared by `http` and the declarative connectors (which add their own defaults)."""
    base_url = _text(config, "base_url")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise FlowRuntimeError(f"base_url must start with http:// or https://, got {base_url!r}", "connector")
    if base_url is not None:
        url_problem("base_url", base_url)
        if isinstance(config.get("base_url"), Secret):  # masked whole, but no request shows it whole
            for part in secret_url_parts(base_url):
                services.register_secret(part)
    headers = header_map(config.get("headers"))
    for name, value in headers.items():
        if isinstance(value, Secret):
            services.register_secret(value.reveal())
        elif isinstance(value, str) and name.lower() in CREDENTIAL_HEADERS:
            for credential in credential_parts(value):
                services.register_secret(credential)
    attempts = int(_number(config, "retry", RetryPolicy().attempts, whole=True))
    rate = _text(config, "rate_limit")
    verify = tls_verify(config.get("verify", True), services)
    proxy = proxy_url(config.get("proxy"), services)
    allowed = config.get("allowed_hosts")
    if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)):
        raise FlowRuntimeError('allowed_hosts: must be a list of host names, like ["api.example.com"]', "connector")
    auth = make_auth(config.get("auth"), services.register_secret)
    if isinstance(auth, OAuth2ClientCredentials):
        if not token_url_is_http(auth.token_url):
            raise FlowRuntimeError(TOKEN_URL_NOT_HTTP, "connector")
        url_problem("auth: the OAuth2 token_url", auth.token_url)
    return HttpSettings(
        guard=HostGuard(allowed) if allowed is not None else None,
        base_url=base_url, base_url_null="base_url" in config and config["base_url"] is None,
        auth=auth, headers=dict(headers),
        timeout=_number(config, "timeout", DEFAULT_TIMEOUT),
        policy=RetryPolicy(attempts=max(1, attempts), retry_after_cap=_number(
            config, "max_retry_wait", RetryPolicy().retry_after_cap)),
        limiter=RateLimiter(*parse_rate(rate)) if rate else None, verify=verify, proxy=proxy,
        max_response_bytes=int(_number(config, "max_response_bytes", MAX_RESPONSE_BYTES, whole=True)),
        max_connections=int(_number(config, "max_connections", MAX_CONNECTIONS, whole=True)),
        param_style=param_style(config.get("param_style")),
    )


def url_problem(key: str, url: str) -> None:
    """A URL that cannot be read ('http://[::1/x', a port past 65535) was an internal error at the first
    request; refused here, without showing the URL (it may be a secret, or hold one where the port goes)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # reading the port is what checks it
    except ValueError as e:
        said = "its port is not a whole number from 0 to 65535" if "Port" in str(e) else str(e)
        raise FlowRuntimeError(f"{key}: not a valid URL ({said})", "connector") from None
    if not parts.hostname:  # "http://": every request failed as "not an http:// or https:// URL"
        raise FlowRuntimeError(f"{key}: not a valid URL (it names no host)", "connector")
    if any(c.isspace() for c in parts.hostname):  # "exa mple.com": five attempts to resolve it, each record
        raise FlowRuntimeError(f"{key}: not a valid URL (its host holds a space)", "connector")


def param_style(value: Any) -> str:
    """param_style: how lists and objects are written into query strings and form bodies."""
    if value is None:
        return "repeat"
    if value not in PARAM_STYLES:
        raise FlowRuntimeError(f"param_style: must be one of {', '.join(repr(s) for s in PARAM_STYLES)} "
                               f"(tags=a&tags=b, tags[]=a, tags[0]=a, tags=a,b), got {to_text(value)!r}", "connector")
    return str(value)


def header_map(value: Any) -> dict[str, Any]:
    """headers: an object of header names and values (none when null) that HTTP can carry: a bad name
    or a line break in a value would fail (or reach the server with) every request of the connection."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FlowRuntimeError(f"headers: must be an object, got {type_name(value)}", "connector")
    problem = header_problem({name: header_text(v) for name, v in value.items() if v is not None})
    if problem is not None:
        raise FlowRuntimeError(f"headers: {problem}", "connector")
    return value


def verify_kind(value: Any) -> None:
    """What verify: must be, whatever its file (the file is judged where the run opens the connection)."""
    if not isinstance(value, bool) and (not isinstance(value, str) or not value):
        raise FlowRuntimeError('verify: must be true, false or the path of a CA bundle ("certs/ca.pem")', "connector")


def tls_verify(value: Any, services: RunServices) -> bool | str:
    """verify: true, false, or the path of a PEM CA bundle (relative to the flow's folder)."""
    verify_kind(value)
    if isinstance(value, bool):
        return value
    path = Path(value) if Path(value).is_absolute() else services.base_dir / value
    if not path.is_file():
        raise FlowRuntimeError(f"verify: the CA bundle {value!r} is not a file ({path})", "connector")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError) as e:
        raise FlowRuntimeError(f"verify: {value!r} is not a PEM bundle of CA certificates ({e})", "connector") from None
    return str(path)


# headers that carry a credential whatever their value was read from (a token from env.TOKEN rather than
# secret.TOKEN): their values are masked as secrets are
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "apikey",
                                "x-auth-token", "x-access-token", "private-token", "cookie"})
MIN_CREDENTIAL = 8  # shorter header values are not taken for a credential (masking them would hide data)


def credential_parts(value: str) -> list[str]:
    """A credential header's value to mask, and the token of `<scheme> <token>` (`Token abc...`), each of
    MIN_CREDENTIAL characters or more."""
    scheme, _, token = value.partition(" ")
    parts = [value] + ([token] if token and scheme.isalpha() else [])
    return [part for part in parts if len(part.strip()) >= MIN_CREDENTIAL]


CREDENTIAL_NAMES = ("key", "token", "secret", "sig", "code", "pass", "pwd", "auth", "credential", "session")
LONG_QUERY_VALUE = 16  # a query value this long in a secret URL is taken for a credential whatever its name


def secret_url_parts(url: str) -> list[str]:
    """The parts of a base URL given as a secret that requests show apart from the whole: each request
    puts the base URL's query after its own path (`/api/orders?code=...`), so the URL itself is never in
    a message whole. Its password, and the values of its query that are credentials: named as one
    (`code`, `api_key`, `sig`, `token`, ...) or of LONG_QUERY_VALUE characters or more (not an
    `api-version=2024-05-01`, which is masked nowhere), as written and decoded."""
    parts = urlsplit(url)
    found = [parts.password, unquote(parts.password)] if parts.password else []
    for field in parts.query.split("&"):
        name, _, value = field.partition("=")
        words = unquote(name.replace("+", " ")).lower()
        if value and (len(value) >= LONG_QUERY_VALUE or any(word in words for word in CREDENTIAL_NAMES)):
            found += [value, unquote(value.replace("+", " "))]
    return found


def proxy_url(value: Any, services: RunServices) -> str | None:
    """proxy: "http://[user:password@]host:port"; its password is masked everywhere."""
    if value is None:
        return None
    if isinstance(value, Secret):
        value = value.reveal()
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise FlowRuntimeError('proxy: must be a URL like "http://proxy.example.com:3128"', "connector")
    url_problem("proxy", value)
    parts = urlsplit(value)
    if parts.password:
        services.register_secret(parts.password)
        services.register_secret(unquote(parts.password))
        services.register_secret(value)
        basic = f"{unquote(parts.username or '')}:{unquote(parts.password)}"
        for encoding in ("utf-8", "latin-1"):  # aiohttp sends proxy credentials in latin-1
            raw = basic.encode(encoding, errors="replace")
            services.register_secret(base64.b64encode(raw).decode("ascii"))
    return value


# the keys whose constant values `flowlang check` judges by http_settings' rules; of verify and headers
# only their kind (verify's file is looked for where the run opens it); auth given as a text, a number or an
# object (a helper's call, bearer(...), is judged by the helper)
CHECKED_KEYS = frozenset({"base_url", "auth", "timeout", "retry", "rate_limit", "proxy", "max_response_bytes",
                          "max_connections", "allowed_hosts", "param_style", "max_retry_wait"})
KIND_CHECKS = {"verify": verify_kind, "headers": header_map}


class _Checking:
    """The RunServices of a check: http_settings applied to one constant, nothing opened or kept."""

    dry_run = True
    appending = False
    base_dir = Path(".")
    logger = logging.getLogger("flowlang.check")
    observer: Any = None

    def mask(self, text: str) -> str:
        return text

    def register_secret(self, value: str) -> None:
        pass

    def log_dry_run(self, connection: str, description: str) -> None:
        pass


def config_value_problem(key: str, value: Any) -> str | None:
    """What http_settings would refuse in one configuration value known before the run, or None."""
    if key not in CHECKED_KEYS and key not in KIND_CHECKS:
        return None
    try:
        if key in KIND_CHECKS:
            KIND_CHECKS[key](value)
        else:
            http_settings({key: value}, _Checking())
    except FlowRuntimeError as e:
        return e.message
    return None


async def open_http(name: str, config: Mapping[str, Any], services: RunServices) -> Connection:
    return HttpConnection(name, HTTP, HttpClient(name, http_settings(config, services), services), services)


HTTP_CONFIG = (
    ConfigKey("base_url", description="prefix of every path (a path may also be a full URL)"),
    ConfigKey("auth", secret=True, description="bearer(t), basic(u, p), api_key(name, value, in: ...) or "
              "oauth2_client_credentials(...)"),
    ConfigKey("headers", description="headers sent with every request"),
    ConfigKey("timeout", description=f"seconds for a whole request (default {DEFAULT_TIMEOUT:g})"),
    ConfigKey("retry", description=f"attempts in all for retryable failures (default {RetryPolicy().attempts}); "
              "a rate-limit refusal (429) spends none"),
    ConfigKey("max_retry_wait", description=f"the longest wait a rate-limited answer may ask for (Retry-After, "
              f"X-RateLimit-Reset), in seconds (default {RetryPolicy().retry_after_cap:g}); a longer one fails the "
              "request at once"),
    ConfigKey("rate_limit", description='at most this many requests, e.g. "60/minute" (shared by parallel loops)'),
    ConfigKey("verify", description='check TLS certificates (default true); or the path of a CA bundle '
              '("certs/ca.pem")'),
    ConfigKey("proxy", secret=True, description='an HTTP proxy for every request ("http://host:3128"); by default '
              "HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment"),
    ConfigKey("max_response_bytes", description=f"the largest answer body read, after decompression (default "
              f"{MAX_RESPONSE_BYTES:,}); a bigger one fails the request"),
    ConfigKey("max_connections", description=f"requests on the wire at once (default {MAX_CONNECTIONS}); more "
              "wait for a free one, and that wait is not request time"),
    ConfigKey("allowed_hosts", description='only these hosts (["api.example.com", "*.example.com"]); no private '
              "or loopback address behind a name, no redirect elsewhere"),
    ConfigKey("param_style", description='lists and objects in queries and form bodies: "repeat" (default: '
              'tags=a&tags=b), "brackets" (tags[]=a, created[gte]=1: Stripe, Rails, PHP), "indices" (tags[0]=a) '
              'or "comma" (tags=a,b: GitHub, Asana)'),
)


def _verb(method: str, changes: bool) -> OperationSpec:
    return OperationSpec(method.lower(), f"{method} a path (keywords fill '{{name}}' templates)", params=("path",),
                         keywords=None, changes_data=changes, method=method, path="(any)", encode_interpolated=segment)


HTTP = ConnectorSpec(
    name="http",
    title="Any HTTP JSON API",
    origin="builtin",
    config=HTTP_CONFIG,
    operations={
        "get": _verb("GET", False), "head": _verb("HEAD", False), "post": _verb("POST", True),
        "put": _verb("PUT", True), "patch": _verb("PATCH", True), "delete": _verb("DELETE", True),
    },
    open=open_http,
    value_problem=config_value_problem,
    notes=(f"request options: {', '.join(REQUEST_KEYS)}; other keywords fill '{{name}}' in the path",),
)
