"""Benchmark: 2,000 lookups with distinct keys through a `parallel 50` loop against a local server
that answers after 10 ms, compared in the same run with a plain Python loop of the same 2,000 GETs on
a bare aiohttp client at 50 in flight, and with the same flow at `parallel 1`. Prints the rate of
each and the client's CPU time per request (this process's user + system time: the server runs in
other processes), flowlang's against bare aiohttp (goal: at most 1.2).

    python benchmarks/lookups.py [--requests N] [--delay-ms D] [--width W] [--servers S]

The server is a minimal asyncio HTTP/1.1 responder (keep-alive, no framework), in S processes
sharing the port (SO_REUSEPORT), so that it is not what limits the rate: the client's CPU per
request is then the figure that compares the two clients.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from typing import Any

import aiohttp

import flowlang

Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, delay: float) -> None:
    """Answer GET /customers?id=N with [{"id": N, "name": "x"}] after `delay` seconds, keeping the
    connection open; one of several processes on the same port."""
    class Responder(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                target = head.split(b" ", 2)[1]
                number = target.rsplit(b"id=", 1)[-1].split(b"&", 1)[0]
                body = b'[{"id": ' + number + b', "name": "x"}]'
                answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)
                asyncio.get_running_loop().call_later(delay, self.answer, answer)

        def answer(self, data: bytes) -> None:
            if not self.transport.is_closing():
                self.transport.write(data)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Responder, "127.0.0.1", port, reuse_port=True)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the benchmark server did not start")


async def bare_aiohttp(base: str, n: int, width: int) -> Timing:
    gate = asyncio.Semaphore(width)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width)) as session:
        async def one(i: int) -> Any:
            async with gate, session.get(f"{base}/customers", params={"id": i}) as resp:
                return (await resp.json())[0]

        start, cpu = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert [r["id"] for r in results] == list(range(n))
    return elapsed


FLOW = """
use api = http(base_url: env.BASE)
for each i in input parallel {width}
  lookup api.get("/customers", query: {{id: i}}) as c
  emit c.id
end
"""


def flow_run(base: str, n: int, width: int) -> Timing:
    flow = flowlang.compile(FLOW.format(width=width), name="lookups.flow")
    start, cpu = time.perf_counter(), time.process_time()
    result = flow.run(input=list(range(n)), env={"BASE": base})
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert result.ok, result.error
    assert result.outputs == list(range(n))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=10)
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--servers", type=int, default=2, help="server processes sharing the port")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    servers = [multiprocessing.Process(target=serve, args=(port, args.delay_ms / 1000), daemon=True)
               for _ in range(args.servers)]
    for server in servers:
        server.start()
    try:
        wait_until_up(port)
        base = f"http://127.0.0.1:{port}"
        n, width = args.requests, args.width
        asyncio.run(bare_aiohttp(base, 200, width))  # warm up the server
        flow_run(base, 200, width)  # and flowlang's imports
        bares: list[Timing] = []
        flows: list[Timing] = []
        for _ in range(args.repeat):  # alternate: this machine's speed varies from minute to minute
            bares.append(asyncio.run(bare_aiohttp(base, n, width)))
            flows.append(flow_run(base, n, width))
        bare, flow = min(t[0] for t in bares), min(t[0] for t in flows)
        bare_cpu, flow_cpu = min(t[1] for t in bares), min(t[1] for t in flows)
        serial_n = max(1, n // 10)
        serial, _ = flow_run(base, serial_n, 1)
        limit = n * args.delay_ms / 1000 / width
        print(f"lookups:                 {n:,} distinct keys, server delay {args.delay_ms:g} ms, {width} in flight, "
              f"{args.servers} server processes; best of {args.repeat} alternating runs")
        print(f"latency limit:           {limit:.2f} s  ({n / limit:,.0f} requests/s)")
        print(f"bare aiohttp loop:       {bare:.2f} s  ({n / bare:,.0f} requests/s), "
              f"client CPU {bare_cpu / n * 1e6:.0f} us/request")
        print(f"flowlang parallel {width}:    {flow:.2f} s  ({n / flow:,.0f} requests/s), "
              f"client CPU {flow_cpu / n * 1e6:.0f} us/request")
        print(f"ratio (flow/bare rate):  {bare / flow:.2f}  (target: at least 0.5)")
        print(f"client CPU per request, flowlang/bare: {flow_cpu / bare_cpu:.2f}  (goal: at most 1.2)")
        print(f"flowlang parallel 1:     {serial:.2f} s for {serial_n:,}  ({serial_n / serial:,.0f} requests/s)")
    finally:
        for server in servers:
            server.terminate()
            server.join(5)


if __name__ == "__main__":
    main()
