"""A TCP proxy for network faults (there is no toxiproxy here): it forwards to an upstream server and
can reset a connection mid-response, swallow requests without answering, or trickle the answer a
byte at a time. Each fault applies to the first `times` connections, then it forwards normally."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Any


class FaultProxy:
    def __init__(self, upstream_port: int, mode: str, times: int = 1_000_000, delay: float = 0.2) -> None:
        self.upstream_port = upstream_port
        self.mode = mode  # "reset", "blackhole", "trickle" or "pass"
        self.times = times
        self.delay = delay
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        faulty = self.connections <= self.times
        mode = self.mode if faulty else "pass"
        try:
            request = await _read_request(reader)
            if mode == "blackhole":
                await asyncio.sleep(3600)
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write(request)
            await up_writer.drain()
            response = await _read_request(up_reader)  # the whole answer (its head and Content-Length body)
            up_writer.close()
            if mode == "reset":
                writer.write(response[: max(1, len(response) // 3)])
                await writer.drain()
                sock: Any = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if mode == "trickle":
                for i in range(len(response)):
                    writer.write(response[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(self.delay)
            else:
                writer.write(response)
                await writer.drain()
            writer.close()
        except (ConnectionError, asyncio.CancelledError):
            writer.transport.abort()

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """A whole request or answer: the head, then the body of its Content-Length (a server may write
    them apart, so one read() can end between them)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head.replace(b"keep-alive", b"close") + body
