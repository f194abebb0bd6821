"""A small HTTP forward proxy on 127.0.0.1 for the tests: plain requests in absolute form
(`GET http://host/path`) and `CONNECT host:port` tunnels for HTTPS. It records what it was asked,
and the Proxy-Authorization it got.

    with Proxy() as proxy:
        proxy.url        # http://127.0.0.1:PORT
        proxy.seen       # ["GET http://127.0.0.1:5000/x", "CONNECT 127.0.0.1:5001", ...]
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Any


class Proxy:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.running = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.running = False
        self.server.close()

    def _serve(self) -> None:
        while self.running:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            header, _, rest = head.partition(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
            self.seen.append(f"{method} {target}")
            self.auth.append(headers.get("proxy-authorization"))
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream, rest)
                return
            # absolute form: GET http://host:port/path HTTP/1.1 -> origin form to the server
            without_scheme = target.split("://", 1)[1]
            hostport, _, path = without_scheme.partition("/")
            host, _, port = hostport.partition(":")
            upstream = socket.create_connection((host, int(port or 80)))
            kept = [x for x in lines[1:] if not x.lower().startswith(("proxy-", "connection:"))]
            request = "\r\n".join([f"{method} /{path} {version}", *kept, "Connection: close"]) + "\r\n\r\n"
            upstream.sendall(request.encode("latin-1") + rest)
            self._pipe(client, upstream, b"")
        except OSError:
            pass
        finally:
            client.close()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket, pending: bytes) -> None:
        if pending:
            b.sendall(pending)
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        finally:
            b.close()
