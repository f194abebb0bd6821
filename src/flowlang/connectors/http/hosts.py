"""`allowed_hosts`: a connection that names its hosts reaches only those, never a private or loopback
address behind a name, and follows no redirect elsewhere. Names are checked before a request; the
addresses a name resolves to are checked inside the connection's resolver (transport.py), on the
very answer the connection then uses, so a second lookup can never give another address (DNS
rebinding)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flowlang.errors import FlowRuntimeError


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or \
        ip.is_unspecified


class RefusedAddress(OSError):
    """A name resolved to an address allowed_hosts refuses (raised inside the resolver, so the
    connection is never made to it)."""


def _entry(entry: str) -> tuple[str, str]:
    """(host, port or "") of an allowed_hosts entry: "api.x.com", "api.x.com:8443", "*.x.com",
    "10.0.0.5", "[::1]", "[::1]:8080", "::1"."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest.lstrip(":")
    if entry.count(":") > 1:  # a bare IPv6 address
        return entry, ""
    host, _, port = entry.partition(":")
    return host, port


class HostGuard:
    """Refuses URLs whose host is not allowed, and names that resolve to internal addresses."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = [a.lower().strip() for a in allowed if a.strip()]
        self.entries = [_entry(a) for a in self.allowed]

    def listed(self, host: str, port: int | None) -> bool:
        host = host.strip("[]")
        for name, want_port in self.entries:
            if want_port and port is not None and str(port) != want_port:
                continue
            if name.startswith("*.") and (host.endswith(name[1:]) or host == name[2:]):
                return True
            if host == name or (_ip(host) is not None and _ip(host) == _ip(name)):
                return True
        return False

    async def check(self, url: str) -> None:
        """The URL's host is listed (its addresses are checked when the connection resolves it)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port
        except ValueError:
            port = None
        if not self.listed(host, port):
            raise FlowRuntimeError(f"the host {host!r} is not in this connection's allowed_hosts "
                                   f"({', '.join(self.allowed)})", "connector")

    def check_resolved(self, host: str, addresses: list[str]) -> None:
        """Called with what the resolver returned, before any of it is used: a name that resolves to a
        private, loopback or other internal address is refused (an address listed itself is allowed)."""
        if _ip(host) is not None:
            return  # an address named in allowed_hosts is allowed, whatever it is
        for text in addresses:
            address = _ip(text)
            if address is not None and _internal(address):
                raise RefusedAddress(f"the host {host!r} resolves to the internal address {address}; "
                                     "allowed_hosts refuses private and loopback addresses")
