"""The HTTP transport: an aiohttp session per connection (measured fastest here; see
docs/connectors.md), requests without automatic redirects, and aiohttp's errors sorted into
"surely not sent" and "maybe sent". TLS is checked against the system's CAs or a given CA bundle;
requests go through the connection's `proxy`, else the HTTP(S)_PROXY/NO_PROXY environment."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    url: str


class TransportError(Exception):
    """The request failed without an HTTP answer; `sent` tells whether it may have reached the server."""

    def __init__(self, message: str, sent: bool, timeout: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.sent = sent
        self.timeout = timeout


class Transport:
    """Owns one aiohttp ClientSession, created on first use inside the running loop."""

    def __init__(self, timeout: float, verify: bool | str, max_connections: int = 100,
                 proxy: str | None = None) -> None:
        self.timeout = timeout
        self.verify = verify
        self.proxy = proxy
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def tls(self) -> ssl.SSLContext | bool:
        """True: the system's CAs; False: no check; a path: trust the CAs in that PEM bundle."""
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return bool(self.verify)

    def session(self) -> aiohttp.ClientSession:
        import aiohttp  # imported when a flow first talks HTTP: a flow that does not pays nothing

        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=self.tls(), ttl_dns_cache=300)
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
