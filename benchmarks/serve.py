"""Benchmark: accepted webhook deliveries per second. A real `flowlang serve` process (GitHub signature
checked, delivery committed to the inbox before the 202, the flow's runs going on at the same time)
against, in the same run, a bare aiohttp.web handler that only writes the same row to SQLite (WAL,
synchronous=FULL, one commit per request) and answers 202. The same client posts N signed deliveries
W at a time to each. Goal: flowlang at least half of the bare handler.

    python benchmarks/serve.py [--deliveries N] [--width W] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

SECRET = "bench-secret-" + "x" * 40
FLOW = 'flow "bench"\ntrigger webhook(verify: github(secret.BENCH_SECRET))\nemit input.n\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server(port: int, folder: str) -> None:
    db = sqlite3.connect(Path(folder) / "bare.db", isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=full")
    db.execute("create table if not exists deliveries (id integer primary key autoincrement, flow text, "
               "delivery_id text, received_at text, content_type text, headers text, body blob, "
               "status text default 'waiting')")

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        cur = db.execute("insert into deliveries(flow, delivery_id, received_at, content_type, headers, body) "
                         "values (?, ?, ?, ?, ?, ?)",
                         ("bench", request.headers.get("X-GitHub-Delivery"), time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          request.headers.get("Content-Type", ""), json.dumps(dict(request.headers)), body))
        return web.json_response({"job": cur.lastrowid}, status=202)

    app = web.Application()
    app.router.add_post("/hooks/bench", hook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def wait_until_up(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the benchmark server did not start")


async def post_all(url: str, n: int, width: int, tag: str) -> float:
    gate = asyncio.Semaphore(width)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width)) as session:
        bodies = [json.dumps({"n": i, "action": "opened", "issue": {"number": i, "title": "x" * 200}}).encode()
                  for i in range(n)]

        async def one(i: int) -> int:
            body = bodies[i]
            sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sig,
                       "X-GitHub-Delivery": f"{tag}-{i}", "X-GitHub-Event": "issues"}
            async with gate, session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        start = time.perf_counter()
        statuses = await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
    if set(statuses) != {202}:
        raise RuntimeError(f"answers other than 202: {sorted(set(statuses))}")
    return n / elapsed


def start_flowlang(folder: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    log = folder / "serve.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}, "BENCH_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "flowlang", "serve", str(folder), "--port", "0",
                             "--max-pending", "1000000", "--log-format", "text"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(1200):
        found = re.search(r"on http://127\.0\.0\.1:(\d+) ", log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1)), log
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.05)
    raise RuntimeError("flowlang serve did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deliveries", type=int, default=2000)
    ap.add_argument("--width", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare_port = free_port()
        bare = multiprocessing.Process(target=bare_server, args=(bare_port, tmp), daemon=True)
        bare.start()
        wait_until_up(bare_port)
        folder = Path(tmp) / "flows"
        folder.mkdir()
        (folder / "bench.flow").write_text(FLOW)
        proc, port, _ = start_flowlang(folder)
        try:
            bare_rates, flow_rates = [], []
            for r in range(a.rounds):  # alternate, so both see the same machine
                bare_rates.append(asyncio.run(post_all(f"http://127.0.0.1:{bare_port}/hooks/bench",
                                                       a.deliveries, a.width, f"b{r}")))
                flow_rates.append(asyncio.run(post_all(f"http://127.0.0.1:{port}/hooks/bench",
                                                       a.deliveries, a.width, f"f{r}")))
        finally:
            proc.terminate()
            proc.wait(120)
            bare.terminate()
    best_bare, best_flow = max(bare_rates), max(flow_rates)
    print(f"{a.deliveries} deliveries, {a.width} at a time, best of {a.rounds}")
    print(f"bare aiohttp.web + SQLite insert: {best_bare:8.0f} accepted/s")
    print(f"flowlang serve (verified, inbox): {best_flow:8.0f} accepted/s")
    print(f"ratio flowlang/bare: {best_flow / best_bare:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
