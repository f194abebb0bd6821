"""`allowed_hosts`: a connection that names its hosts reaches only those, never a private or loopback
address behind a name, and follows no redirect elsewhere; checked before any connection is made."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
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


class HostGuard:
    """Refuses URLs whose host is not allowed."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = [a.lower().strip() for a in allowed if a.strip()]

    def listed(self, host: str, port: int | None) -> bool:
        for entry in self.allowed:
            name, _, want_port = entry.partition(":") if not entry.startswith("[") else (entry, "", "")
            if want_port and port is not None and str(port) != want_port:
                continue
            if name.startswith("*.") and (host.endswith(name[1:]) or host == name[2:]):
                return True
            if host == name:
                return True
        return False

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not self.listed(host, parts.port):
            raise FlowRuntimeError(f"the host {host!r} is not in this connection's allowed_hosts "
                                   f"({', '.join(self.allowed)})", "connector")
        literal = _ip(host)
        if literal is not None:
            return  # an address named in allowed_hosts is allowed, whatever it is
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as e:
            raise FlowRuntimeError(f"cannot resolve {host!r}: {e}", "connector") from None
        for info in infos:
            address = _ip(str(info[4][0]))
            if address is not None and _internal(address):
                raise FlowRuntimeError(f"the host {host!r} resolves to the internal address {address}; "
                                       "allowed_hosts refuses private and loopback addresses", "connector")
