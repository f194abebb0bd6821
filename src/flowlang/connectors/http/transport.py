"""The HTTP transport: an aiohttp session per connection (measured fastest here; see
docs/connectors.md), requests without automatic redirects, and aiohttp's errors sorted into
"surely not sent" and "maybe sent". TLS is checked against the system's CAs or a given CA bundle;
requests go through the connection's `proxy`, else the HTTP(S)_PROXY/NO_PROXY environment."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlang.connectors.http.hosts import RefusedAddress

if TYPE_CHECKING:
    import aiohttp

AddressCheck = Callable[[str, list[str]], None]


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


class TransportError(Exception):
    """The request failed without an HTTP answer; `sent` tells whether it may have reached the server."""

    def __init__(self, message: str, sent: bool, timeout: bool = False, refused: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.sent = sent
        self.timeout = timeout
        self.refused = refused  # allowed_hosts refused the address: never retried


class Transport:
    """Owns one aiohttp ClientSession, created on first use inside the running loop."""

    def __init__(self, timeout: float, verify: bool | str, max_connections: int = 100,
                 proxy: str | None = None, check_addresses: AddressCheck | None = None) -> None:
        self.timeout = timeout
        self.verify = verify
        self.proxy = proxy
        self.max_connections = max_connections
        self.check_addresses = check_addresses
        self._session: aiohttp.ClientSession | None = None

    def tls(self) -> ssl.SSLContext | bool:
        """True: the system's CAs; False: no check; a path: trust the CAs in that PEM bundle."""
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return bool(self.verify)

    def session(self) -> aiohttp.ClientSession:
        import aiohttp  # imported when a flow first talks HTTP: a flow that does not pays nothing

        if self._session is None or self._session.closed:
            # through a proxy, the proxy resolves the host: the names were checked, its address is its own
            check = self.check_addresses if self.proxy is None else None
            resolver = guarded_resolver(check) if check is not None else None
            connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=self.tls(), ttl_dns_cache=300,
                                             resolver=resolver)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=True, trust_env=self.proxy is None)
        return self._session

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                   timeout: float | None = None) -> Response:
        import aiohttp
        from yarl import URL

        session = self.session()
        limit = aiohttp.ClientTimeout(total=timeout or self.timeout)
        try:
            async with session.request(method, URL(url, encoded=True), headers=headers, data=body,
                                       allow_redirects=False, timeout=limit, proxy=self.proxy) as resp:
                data = await resp.read()
                return Response(resp.status, resp.reason or "", {k.lower(): v for k, v in resp.headers.items()},
                                data, str(resp.url))
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, RefusedAddress):
                raise TransportError(str(e.os_error), sent=False, refused=True) from None
            raise TransportError(f"cannot connect: {e.os_error or e}", sent=False) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise TransportError(f"no complete answer within {timeout or self.timeout:g}s (timeout)", sent=True,
                                 timeout=True) from None
        except aiohttp.InvalidURL as e:
            raise TransportError(f"invalid URL: {e}", sent=False) from None
        except aiohttp.ClientError as e:
            raise TransportError(f"connection failed: {type(e).__name__}: {e}", sent=True) from None
        except OSError as e:
            raise TransportError(f"connection failed: {e}", sent=True) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
