"""Benchmark: 2,000 lookups with distinct keys through a `parallel 50` loop against a local server
that answers after 10 ms, compared in the same run with a plain Python loop of the same 2,000 GETs on
a bare aiohttp client at 50 in flight, and with the same flow at `parallel 1`. Prints the rate of
each and the client's CPU time per request (this process's user + system time, `time.process_time`:
the server runs in other processes), flowlang's against bare aiohttp (goal: at most 1.2).

    python benchmarks/lookups.py [--requests N] [--delay-ms D] [--width W] [--servers S] [--repeat R]

Both sides do the same work in the same window: the event loop and the HTTP session are made and
closed inside it (flowlang's `flow.run` does both), the session has the settings flowlang's HTTP
connection uses, and every answer's status is checked and its body read and decoded as JSON with
exact decimals. The flow is compiled outside the window. Runs alternate (bare, flow, bare, ...);
the figures are medians, and the ratio's range over the pairs is printed beside it. Each window
starts after a full garbage collection (gc.collect), as a fresh process would: otherwise the
garbage of the runs before sets off a full collection of the whole heap (about 35 ms here) in
whichever window it happens to land, 8-9% of a run, at random on either side.

The server is a minimal asyncio HTTP/1.1 responder (keep-alive, no framework), in S processes
sharing the port (SO_REUSEPORT), so that it is not what limits the rate; its own CPU per request is
printed too (from /proc), to show how far it is from a whole core.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import socket
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
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


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of the given processes so far (Linux /proc), or None elsewhere."""
    try:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the benchmark server did not start")


def json_decoder() -> Callable[[bytes], Any]:
    """JSON bytes to a value the way flowlang reads an answer: decimals exact, the encoding detected."""
    decode = json.JSONDecoder(parse_float=Decimal).decode
    return lambda body: decode(body.decode(json.detect_encoding(body), "surrogatepass"))


async def bare_lookups(base: str, n: int, width: int) -> list[Any]:
    """The same lookups written by hand: a session with the settings flowlang's HTTP connection uses
    (connection limit 100, 30 s total timeout, no trust_env, no redirects followed), `width` in
    flight, each answer's status checked and its body read and decoded as JSON."""
    decode = json_decoder()
    gate = asyncio.Semaphore(width)
    connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30),
                                     auto_decompress=True, trust_env=False) as session:
        async def one(i: int) -> Any:
            async with gate, session.get(f"{base}/customers", params={"id": i}, allow_redirects=False) as resp:
                body = await resp.read()
                if not 200 <= resp.status < 300:
                    raise RuntimeError(f"GET answered {resp.status}")
                return decode(body)[0]["id"]

        return await asyncio.gather(*(one(i) for i in range(n)))


def bare_run(base: str, n: int, width: int) -> Timing:
    """Timed like flow_run: the event loop and the session are made and closed inside the window."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    results = asyncio.run(bare_lookups(base, n, width))
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert results == list(range(n))
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
    gc.collect()
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
    parser.add_argument("--repeat", type=int, default=5)
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
        bare_run(base, 200, width)  # warm up the server
        flow_run(base, 200, width)  # and flowlang's imports
        bares: list[Timing] = []
        flows: list[Timing] = []
        pids = [s.pid for s in servers if s.pid is not None]
        server_before = cpu_seconds(pids)
        for _ in range(args.repeat):  # alternate: this machine's speed varies from minute to minute
            bares.append(bare_run(base, n, width))
            flows.append(flow_run(base, n, width))
        bare, flow = statistics.median(t[0] for t in bares), statistics.median(t[0] for t in flows)
        bare_cpu, flow_cpu = statistics.median(t[1] for t in bares), statistics.median(t[1] for t in flows)
        server_after = cpu_seconds(pids)
        pairs = sorted(f[1] / b[1] for b, f in zip(bares, flows, strict=True))
        rates = sorted(b[0] / f[0] for b, f in zip(bares, flows, strict=True))
        serial_n = max(1, n // 10)
        serial, _ = flow_run(base, serial_n, 1)
        limit = n * args.delay_ms / 1000 / width
        print(f"lookups:                 {n:,} distinct keys, server delay {args.delay_ms:g} ms, {width} in flight, "
              f"{args.servers} server processes; medians of {args.repeat} alternating pairs")
        print(f"latency limit:           {limit:.2f} s  ({n / limit:,.0f} requests/s)")
        print(f"bare aiohttp loop:       {bare:.2f} s  ({n / bare:,.0f} requests/s), "
              f"client CPU {bare_cpu / n * 1e6:.0f} us/request")
        print(f"flowlang parallel {width}:    {flow:.2f} s  ({n / flow:,.0f} requests/s), "
              f"client CPU {flow_cpu / n * 1e6:.0f} us/request")
        if server_before is not None and server_after is not None:
            server_us = (server_after - server_before) / (2 * n * args.repeat) * 1e6
            print(f"server:                  CPU {server_us:.0f} us/request over its {args.servers} processes "
                  f"(at the bare loop's rate: {server_us * n / bare / 1e6 / args.servers:.0%} of a core each)")
        print(f"ratio (flow/bare rate):  {bare / flow:.2f}  (pairs {rates[0]:.2f} to {rates[-1]:.2f}; "
              "target: at least 0.5)")
        print(f"client CPU per request, flowlang/bare: {flow_cpu / bare_cpu:.2f}  (pairs {pairs[0]:.2f} to "
              f"{pairs[-1]:.2f}; goal: at most 1.2)")
        print(f"flowlang parallel 1:     {serial:.2f} s for {serial_n:,}  ({serial_n / serial:,.0f} requests/s)")
    finally:
        for server in servers:
            server.terminate()
            server.join(5)


if __name__ == "__main__":
    main()
