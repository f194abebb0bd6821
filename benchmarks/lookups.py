"""Benchmark: 2,000 lookups with distinct keys through a `parallel 50` loop against a local aiohttp
server that answers after 10 ms, compared in the same run with a plain Python loop of the same 2,000
GETs on a bare aiohttp client at 50 in flight, and with the same flow at `parallel 1`.

    python benchmarks/lookups.py [--requests N] [--delay-ms D] [--width W]

The server runs in its own process (client and server still share this machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from typing import Any

import aiohttp
from aiohttp import web

import flowlang


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, delay: float) -> None:
    async def customer(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response([{"id": int(request.query["id"]), "name": "x"}])

    app = web.Application()
    app.router.add_get("/customers", customer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the benchmark server did not start")


async def bare_aiohttp(base: str, n: int, width: int) -> float:
    gate = asyncio.Semaphore(width)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width)) as session:
        async def one(i: int) -> Any:
            async with gate, session.get(f"{base}/customers", params={"id": i}) as resp:
                return (await resp.json())[0]

        start = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
    assert [r["id"] for r in results] == list(range(n))
    return elapsed


FLOW = """
use api = http(base_url: env.BASE)
for each i in input parallel {width}
  lookup api.get("/customers", query: {{id: i}}) as c
  emit c.id
end
"""


def flow_run(base: str, n: int, width: int) -> float:
    flow = flowlang.compile(FLOW.format(width=width), name="lookups.flow")
    start = time.perf_counter()
    result = flow.run(input=list(range(n)), env={"BASE": base})
    elapsed = time.perf_counter() - start
    assert result.ok, result.error
    assert result.outputs == list(range(n))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=10)
    parser.add_argument("--width", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port, args.delay_ms / 1000), daemon=True)
    server.start()
    try:
        wait_until_up(port)
        base = f"http://127.0.0.1:{port}"
        n, width = args.requests, args.width
        asyncio.run(bare_aiohttp(base, 200, width))  # warm up the server
        bare = min(asyncio.run(bare_aiohttp(base, n, width)) for _ in range(2))
        flow = min(flow_run(base, n, width) for _ in range(2))
        serial_n = max(1, n // 10)
        serial = flow_run(base, serial_n, 1)
        limit = n * args.delay_ms / 1000 / width
        print(f"lookups:                 {n:,} distinct keys, server delay {args.delay_ms:g} ms, {width} in flight")
        print(f"latency limit:           {limit:.2f} s  ({n / limit:,.0f} requests/s)")
        print(f"bare aiohttp loop:       {bare:.2f} s  ({n / bare:,.0f} requests/s)")
        print(f"flowlang parallel {width}:    {flow:.2f} s  ({n / flow:,.0f} requests/s)")
        print(f"ratio (flow/bare rate):  {bare / flow:.2f}  (target: at least 0.5)")
        print(f"flowlang parallel 1:     {serial:.2f} s for {serial_n:,}  ({serial_n / serial:,.0f} requests/s)")
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
