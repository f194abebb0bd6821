"""The HTTP transport: an aiohttp session per connection (measured fastest here; see
docs/connectors.md), requests without automatic redirects, and aiohttp's errors sorted into
"surely not sent" and "maybe sent". TLS is checked against the system's CAs or a given CA bundle;
requests go through the connection's `proxy`, else the HTTP(S)_PROXY/NO_PROXY environment. Every request
asks for JSON (Accept: application/json, the session's default header) unless its own headers say otherwise."""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flowlang.connectors.http.header_check import header_problem
from flowlang.connectors.http.hosts import RefusedAddress
from flowlang.connectors.http.urls import unreadable
from flowlang.runtime.limits import WRITE_NOTE
from flowlang.runtime.slots import Slots

if TYPE_CHECKING:
    import aiohttp

AddressCheck = Callable[[str, list[str]], None]


class Meter(Protocol):
    """What counts and reports each request a transport sends (the client's rate limit, traffic
    and the run's observer: client.RequestMeter)."""

    limited: bool  # admit must be awaited before each request

    async def admit(self) -> Any:
        """Wait for the rate limit; returns the ticket to release."""

    def release(self, ticket: Any) -> None:
        """The request that ticket let go has finished (answered, failed or cancelled)."""

    def sent(self, method: str, url: str, status: int | None, started: float, error: str | None = None) -> None:
        """One attempt ended (status None: no answer, `error` says why); `started`: time.monotonic()."""


def guarded_resolver(check: AddressCheck) -> Any:
    """An aiohttp resolver that checks the addresses it returns: the connection is made to exactly
    the addresses that were checked."""
    from aiohttp.abc import AbstractResolver, ResolveResult
    from aiohttp.resolver import ThreadedResolver

    class GuardedResolver(AbstractResolver):
        def __init__(self) -> None:
            self.inner = ThreadedResolver()

        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
            found = await self.inner.resolve(host, port, family)
            check(host, [str(r["host"]) for r in found])
            return found

        async def close(self) -> None:
            await self.inner.close()

    return GuardedResolver()


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    url: str
    started: float = 0.0  # time.monotonic() when it was sent (after its wait for the rate limit)


def header_fields(raw: Any) -> dict[str, str]:
    """A message's headers by lowercase name (an answer's here; a webhook delivery's in serve). A header
    sent more than once (two `Link` lines, say) is one value, its values joined with ", " in the order
    sent, as HTTP defines; `Set-Cookie`'s values, which hold commas themselves, are joined with a newline."""
    fields = dict(zip(map(str.lower, raw.keys()), raw.values()))  # noqa: B905 (one view each of one mapping)
    if len(fields) == len(raw):
        return fields
    fields = {}
    for k, v in raw.items():
        name = k.lower()
        before = fields.get(name)
        fields[name] = v if before is None else before + ("\n" if name == "set-cookie" else ", ") + v
    return fields


class TransportError(Exception):
    """The request failed without an HTTP answer; `sent` tells whether it may have reached the server."""

    def __init__(self, message: str, sent: bool, timeout: bool = False, refused: bool = False,
                 final: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.sent = sent
        self.timeout = timeout
        self.refused = refused  # allowed_hosts refused the address: never retried
        self.final = final  # retrying cannot help (an answer past max_response_bytes)


MAX_RESPONSE_BYTES = 100_000_000  # the default limit of one answer's body, after decompression
MAX_CONNECTIONS = 100
READ_CHUNK = 1 << 16
MAX_TARGETS = 256  # URLs before the query kept parsed, per connection
PLAIN_QUERY = re.compile(r"[A-Za-z0-9_.~=&+-]*")  # yarl's with_query leaves these as they are
# what a request line cannot carry as it is: a space, a control character, non-ASCII, and the characters
# RFC 3986 never allows in a URL; written in a flow's literal path ("/sub items/ü"), they are %-encoded
UNSENDABLE = re.compile(r'[^\x21-\x7e]|["<>\\^`{|}]')
KEPT = ":/?#[]@!$&'()*+,;=%~"  # the URL's own structure and its %-escapes stay as they are


def sendable(url: str) -> str:
    """`url` with what a request line cannot carry %-encoded (UTF-8), the rest as it is."""
    if UNSENDABLE.search(url) is None:
        return url
    from urllib.parse import quote

    return quote(url, safe=KEPT, errors="surrogatepass")
def unreadable_answer(error: Exception) -> str:
    """What aiohttp found wrong in an answer it could not read (a bad status line, a header line past
    8190 bytes, a body that is not the gzip its Content-Encoding says, one cut short), on one line:
    without its "400, message=" (its own code, not the server's status) and without the bytes it
    quotes, which may be the start of a header that echoes a credential, cut where masking cannot see it."""
    text = str(error)
    inner = ANSWER_MESSAGE.search(text)
    if inner is not None:
        head = text[:inner.start()].rstrip("<: ").removesuffix("400,").rstrip("<:, ")
        head = head.rsplit("<", 1)[0].rstrip(": ") if "<" in head else head
        text = (head + ": " if head else "") + inner.group(2)
    words = []
    for line in text.replace("\\n", "\n").splitlines():
        line = line.strip().removeprefix("400, message").strip(": ")
        line = QUOTED_BYTES.split(line)[0].rstrip(": ")
        if line and not line.startswith("^"):
            words.append(line)
    return ": ".join(words).rstrip(".") or type(error).__name__


ANSWER_MESSAGE = re.compile(r"message=(['\"])(.*?)\1", re.S)  # aiohttp's repr of the parser's message
QUOTED_BYTES = re.compile(r"\bb\\?(['\"]|$)")  # b'HTTP/1.1 1000 Big': the bytes aiohttp quotes
NO_ENVIRONMENT: tuple[Any, Any, Any] = (None, None, None)  # (proxy, proxy_auth, login)


def plain_environment() -> bool:
    """True when no proxy variable is set and there is no .netrc (NETRC, ~/.netrc): aiohttp's
    trust_env would then add nothing to any request."""
    from urllib.request import getproxies

    from aiohttp.helpers import netrc_from_env

    return not getproxies() and netrc_from_env() is None


def utf8_basic(auth: Any) -> Any:
    """An aiohttp BasicAuth from the environment (a proxy variable's user:password, a .netrc login) as it
    is, or, when it holds a character past Latin-1 (which aiohttp encodes it in, failing with a
    UnicodeEncodeError that read as 'the host is not a valid DNS name'), its header in UTF-8."""
    if auth is None:
        return None
    try:
        f"{auth.login}:{auth.password}".encode("latin-1")
        return auth
    except UnicodeEncodeError:
        from base64 import b64encode

        return "Basic " + b64encode(f"{auth.login}:{auth.password}".encode("utf-8", "surrogatepass")).decode("ascii")


class Transport:
    """Owns one aiohttp ClientSession, created on first use inside the running loop.

    At most `max_connections` requests are on the wire at once: the others wait for a free slot
    *before* their timeout starts (a `parallel 10000` loop queues, it never times out waiting for the
    pool). An answer's body is read up to `max_response_bytes` after decompression (a gzip bomb
    stops there)."""

    def __init__(self, timeout: float, verify: bool | str, max_connections: int = MAX_CONNECTIONS,
                 proxy: str | None = None, check_addresses: AddressCheck | None = None,
                 max_response_bytes: int = MAX_RESPONSE_BYTES,
                 register_secret: Callable[[str], None] | None = None) -> None:
        self.timeout = timeout
        self.register_secret = register_secret  # the run's masker learns the passwords the environment gives
        self.verify = verify
        self.proxy = proxy
        self.max_connections = max_connections
        self.check_addresses = check_addresses
        self.max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._slots: Slots | None = None
        self._environment: dict[tuple[str, str | None], tuple[Any, Any, Any]] = {}
        self._timeout: Any = None  # the session's aiohttp.ClientTimeout
        self._url: Any = None  # yarl.URL, imported with aiohttp
        self._aiohttp: Any = None  # the aiohttp module, once send imported it
        self._targets: dict[str, Any] = {}  # a URL's part before the query, as a yarl.URL
        self._plain_environment = False  # no proxy variables and no .netrc: nothing for from_environment
        self._own_proxy: tuple[Any, Any, Any] | None = None  # (URL, proxy_auth, login) of the proxy: key

    def slots(self) -> Slots:
        """The connection slots (one per pooled connection)."""
        if self._slots is None:
            self._slots = Slots(self.max_connections)
        return self._slots

    def tls(self) -> ssl.SSLContext | bool:
        """True: the system's CAs; False: no check; a path: trust the CAs in that PEM bundle."""
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return bool(self.verify)

    def session(self) -> aiohttp.ClientSession:
        import aiohttp  # imported when a flow first talks HTTP: a flow that does not pays nothing

        if self._session is None or self._session.closed:
            from yarl import URL

            self._url = URL
            # through a proxy, the proxy resolves the host: the names were checked, its address is its own
            check = self.check_addresses if self.proxy is None else None
            resolver = guarded_resolver(check) if check is not None else None
            connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=self.tls(), ttl_dns_cache=300,
                                             resolver=resolver)
            self._timeout = aiohttp.ClientTimeout(total=self.timeout)
            self._plain_environment = plain_environment()
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers={"Accept": "application/json"},
                auto_decompress=True, trust_env=False)  # the environment is read by from_environment
        return self._session

    def own_proxy(self) -> tuple[Any, Any, Any]:
        """The connection's `proxy:` as (URL, None or a Proxy-Authorization header, login). aiohttp sends
        the credentials of a proxy URL in Latin-1, and failed on any other character ('中' in a password:
        an internal error for each request): such credentials are taken out of the URL and sent in UTF-8."""
        if self._own_proxy is None:
            from urllib.parse import unquote, urlsplit, urlunsplit

            assert self.proxy is not None
            parts = urlsplit(self.proxy)
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            try:
                f"{user}:{password}".encode("latin-1")
                self._own_proxy = (self.proxy, None, None)
            except UnicodeEncodeError:  # sent as the Proxy-Authorization header (aiohttp 3.14 deprecates BasicAuth)
                from base64 import b64encode

                plain = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
                header = "Basic " + b64encode(f"{user}:{password}".encode()).decode("ascii")
                self._own_proxy = (plain, header, None)
        return self._own_proxy

    def from_environment(self, url: Any) -> tuple[Any, Any, Any]:
        """What aiohttp's trust_env reads for a request (the HTTP(S)_PROXY/NO_PROXY proxy and its
        credentials, a ~/.netrc login for the host), read once per scheme and host of this
        connection: aiohttp reads them in a thread for every request, two thread hops each."""
        key = (url.scheme, url.host)
        found = self._environment.get(key)
        if found is None:
            from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env

            try:
                proxy, proxy_auth = get_env_proxy_for_url(url)
            except LookupError:
                proxy, proxy_auth = None, None
            try:
                login = basicauth_from_netrc(netrc_from_env(), url.host) if url.host else None
            except LookupError:
                login = None
            if self.register_secret is not None:  # a server echoing the header it got shows them masked
                for auth in (proxy_auth, login):
                    if auth is not None and auth.password:
                        self.register_secret(auth.password)
            found = self._environment[key] = (proxy, utf8_basic(proxy_auth), utf8_basic(login))
        return found

    def target(self, url: str) -> Any:
        """`url` as a yarl.URL, sent as it is written (encoded=True). The part before the query is
        parsed once: a flow asks the same few paths with different queries, and a query of plain
        characters (all a query flowlang encodes is, but for %-escapes) is only added to it."""
        head, _, query = url.partition("?")
        if not query or "#" in head or not PLAIN_QUERY.fullmatch(query):
            return self._url(sendable(url), encoded=True)
        base = self._targets.get(head)
        if base is None:
            base = self._url(sendable(head), encoded=True)
            if len(self._targets) < MAX_TARGETS:
                self._targets[head] = base
        return base.with_query(query)

    async def read_body(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        """The decompressed body, refused past max_response_bytes (announced or read)."""
        limit = self.max_response_bytes
        announced = resp.content_length
        if announced is not None and not resp.headers.get("Content-Encoding"):
            if announced > limit:
                raise TransportError(self.too_large(announced, announced=True), sent=True, final=True)
            return await resp.read()  # the body is exactly the announced length: at most the limit
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise TransportError(self.too_large(size), sent=True, final=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def too_large(self, size: int, announced: bool = False) -> str:
        """Why an answer was refused: its Content-Length said so before a byte was read, or the bytes read
        (after decompression) went past the limit."""
        how = f"its Content-Length is {size}; nothing of it was read" if announced else \
            f"{size} read, after decompression"
        return (f"the answer is more than {self.max_response_bytes} bytes ({how}); "
                "raise max_response_bytes on the connection if it is meant to be this big")

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                   timeout: float | None = None, meter: Meter | None = None) -> Response:
        """One request, once a connection slot is free (the wait for it is not request time) and,
        with a meter that has a rate limit, once the limit lets it go: taken once a connection is
        free, right before sending, so requests let through never queue up and then leave together.
        The meter counts and reports the attempt. All in this one coroutine: every await of a
        request passes through each coroutine on its way."""
        aiohttp = self._aiohttp
        if aiohttp is None:  # once: an import statement costs each request a look-up in sys.modules
            import aiohttp

            self._aiohttp = aiohttp
        slots = self._slots or self.slots()
        if not slots.take_now():
            await slots.take()
        try:
            ticket = await meter.admit() if meter is not None and meter.limited else None
            noted = WRITE_NOTE.get()  # a write under max_record_seconds: in flight from here (runtime/limits.py)
            try:
                started = time.monotonic()
                try:
                    session = self._session
                    if session is None or session.closed:
                        session = self.session()
                    limit = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout or self.timeout)
                    target = self.target(url)
                    proxy, proxy_auth, login = self.own_proxy() if self.proxy is not None else \
                        NO_ENVIRONMENT if self._plain_environment else self.from_environment(target)
                    if login is not None and any(k.lower() == "authorization" for k in headers):
                        login = None  # the connection's own auth wins over a .netrc login
                    if type(login) is str:  # a .netrc login past Latin-1, encoded in UTF-8 (utf8_basic)
                        headers = {**(headers or {}), "Authorization": login}
                        login = None
                    proxy_headers = None
                    if type(proxy_auth) is str:  # the connection's own proxy credentials, encoded in UTF-8:
                        # to the proxy's CONNECT for https, else with the request the proxy forwards (as
                        # aiohttp does with proxy_auth), a hop-by-hop header the proxy takes off
                        auth_header = {"Proxy-Authorization": proxy_auth}
                        if target.scheme == "https":
                            proxy_headers = auth_header
                        else:
                            headers = {**(headers or {}), **auth_header}
                        proxy_auth = None
                    if noted is not None:
                        noted[0].append(noted[1])
                    async with session.request(method, target, headers=headers or None, data=body,
                                               allow_redirects=False, timeout=limit, proxy=proxy,
                                               proxy_auth=proxy_auth, proxy_headers=proxy_headers,
                                               auth=login) as resp:
                        try:
                            announced = resp.content_length
                            if announced is not None and announced <= self.max_response_bytes and \
                                    not resp.headers.get("Content-Encoding"):
                                data = await resp.read()  # exactly the announced length: at most the limit
                            else:
                                data = await self.read_body(resp, url)
                        except BaseException:
                            resp.close()  # a connection cut (or refused) mid-body never goes back to the pool
                            raise
                        response = Response(resp.status, resp.reason or "", header_fields(resp.headers), data, url,
                                            started)
                except TransportError:
                    raise  # already sorted (an answer past max_response_bytes)
                except aiohttp.ClientConnectorError as e:
                    if isinstance(e.os_error, RefusedAddress):
                        raise TransportError(str(e.os_error), sent=False, refused=True) from None
                    raise TransportError(f"cannot connect: {e.os_error or e}", sent=False) from None
                except (TimeoutError, aiohttp.ServerTimeoutError):
                    raise TransportError(f"no complete answer within {timeout or self.timeout:g}s (timeout)",
                                         sent=True, timeout=True) from None
                except aiohttp.InvalidURL as e:
                    raise TransportError(f"invalid URL: {e}", sent=False) from None
                except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as e:
                    raise TransportError(f"connection failed: the answer could not be read: {unreadable_answer(e)}",
                                         sent=True) from None
                except aiohttp.ClientError as e:
                    raise TransportError(f"connection failed: {type(e).__name__}: {e}", sent=True) from None
                except OSError as e:
                    raise TransportError(f"connection failed: {e}", sent=True) from None
                except ValueError as e:  # aiohttp refuses a header value with a line break (header injection)
                    problem = header_problem(headers)
                    if problem is not None:
                        raise TransportError(problem, sent=False, final=True) from None
                    if isinstance(e, UnicodeError):  # the idna codec, resolving a host ("a..b", a label past 63)
                        raise TransportError(f"cannot connect: the host is not a valid DNS name ({e})", sent=False,
                                             final=True) from None
                    bad = unreadable(url)  # yarl: a port past 65535 or not a number (a redirect elsewhere)
                    if bad is not None:
                        raise TransportError(f"invalid URL: {bad}", sent=False, final=True) from None
                    raise
            except TransportError as e:
                if meter is not None:
                    meter.sent(method, url, None, started, e.message)
                if noted is not None and noted[1] in noted[0]:
                    noted[0].remove(noted[1])  # it failed, saying so: no longer in flight
                raise
            finally:
                if ticket is not None and meter is not None:
                    meter.release(ticket)
        finally:
            slots.release()
        if noted is not None and noted[1] in noted[0]:
            noted[0].remove(noted[1])  # answered
        if meter is not None:
            meter.sent(method, url, response.status, started)
        return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
