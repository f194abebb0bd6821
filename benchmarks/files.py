"""Benchmark: file to file. A flow reading 100,000 rows of JSON Lines (and of CSV) and writing a
record of four of their fields to another file of the same format, against the same copy as a
plain `json` (and `csv`) loop, measured in the same run. Each run is a fresh process (so its peak
RSS is its own); flowlang's time is the run of the compiled flow, the plain loop's its loop; the two
alternate. Prints the best time of each, the ratio (goal: at most 2.0) and the peak RSS of each
process, also for a tenth of the rows: memory is flat when the two are about the same.

    python benchmarks/files.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLOWS = {
    "jsonl": """
use src = file(path: "in.jsonl")
use dst = file(path: "out.jsonl")
call src.read() as rows
for each r in rows
  send {id: r.id, email: r.email, amount: r.amount, city: r.city} to dst
end
""",
    "csv": """
use src = file(path: "in.csv")
use dst = file(path: "out.csv")
call src.read() as rows
for each r in rows
  send {id: r.id, email: r.email, amount: r.amount, city: r.city} to dst
end
""",
}
FIELDS = ["id", "name", "email", "amount", "city", "note"]
CITIES = ["Oslo", "Bergen", "Stockholm", "Berlin", "Lisbon"]


def generate(folder: Path, n: int) -> None:
    rng = random.Random(7)
    rows: list[dict[str, Any]] = [{"id": i, "name": f"Customer {i}", "email": f"user{i}@example.com",
             "amount": f"{rng.randint(100, 999999) / 100:.2f}", "city": rng.choice(CITIES),
             "note": "x" * rng.randint(0, 40)} for i in range(n)]
    with (folder / "in.jsonl").open("w") as fh:
        for row in rows:
            fh.write(json.dumps({**row, "amount": float(row["amount"])}) + "\n")
    with (folder / "in.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def plain_jsonl(folder: Path) -> None:
    with (folder / "in.jsonl").open() as src, (folder / "out.jsonl").open("w") as dst:
        for line in src:
            r = json.loads(line)
            dst.write(json.dumps({"id": r["id"], "email": r["email"], "amount": r["amount"], "city": r["city"]})
                      + "\n")


def plain_csv(folder: Path) -> None:
    with (folder / "in.csv").open(newline="") as src, (folder / "out.csv").open("w", newline="") as dst:
        writer = csv.writer(dst, lineterminator="\n")
        writer.writerow(["id", "email", "amount", "city"])
        for r in csv.DictReader(src):
            writer.writerow([r["id"], r["email"], r["amount"], r["city"]])


def child(kind: str, fmt: str, folder: Path) -> None:
    """One measured run in this process; prints `wall_seconds cpu_seconds peak_rss_kib`."""
    if kind == "plain":
        fn = plain_jsonl if fmt == "jsonl" else plain_csv
        start, cpu = time.perf_counter(), time.process_time()
        fn(folder)
    else:
        import flowlang

        flow = flowlang.compile(FLOWS[fmt], name="files.flow", base_dir=folder)
        start, cpu = time.perf_counter(), time.process_time()
        result = flow.run(state_dir=folder / "state", collect=False)
        assert result.ok, result.error
    print(time.perf_counter() - start, time.process_time() - cpu, peak_rss_kib())


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited over fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(kind: str, fmt: str, folder: Path) -> tuple[float, float, int]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, fmt, str(folder)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def check_same(fmt: str, folder: Path) -> None:
    """flowlang's output holds what the plain loop's does (numbers compared as numbers)."""
    flow_out = (folder / f"out.{fmt}").read_text()
    plain_jsonl(folder) if fmt == "jsonl" else plain_csv(folder)
    plain_out = (folder / f"out.{fmt}").read_text()
    if fmt == "jsonl":
        assert [json.loads(x) for x in flow_out.splitlines()] == [json.loads(x) for x in plain_out.splitlines()]
    else:
        assert flow_out == plain_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    n = args.records
    print(f"rows: {n:,}; best of {args.repeat} alternating runs, each a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        big.mkdir()
        small.mkdir()
        generate(big, n)
        generate(small, max(1, n // 10))
        for fmt in FLOWS:
            times: dict[str, list[float]] = {"plain": [], "flowlang": []}
            cpus: dict[str, list[float]] = {"plain": [], "flowlang": []}
            rss: dict[str, int] = {}
            for _ in range(args.repeat):  # alternate: this machine's speed varies from minute to minute
                for kind in times:
                    seconds, cpu, peak = measure(kind, fmt, big)
                    times[kind].append(seconds)
                    cpus[kind].append(cpu)
                    rss[kind] = max(rss.get(kind, 0), peak)
            check_same(fmt, big)
            _, _, small_rss = measure("flowlang", fmt, small)
            plain, flow = min(times["plain"]), min(times["flowlang"])
            pairs = sorted(f / p for f, p in zip(times["flowlang"], times["plain"], strict=True))
            cpu_ratio = min(cpus["flowlang"]) / min(cpus["plain"])
            loop = "csv" if fmt == "csv" else "json"
            print(f"{fmt:5s} plain {loop} loop: {plain:.3f} s ({n / plain:,.0f} rows/s), "
                  f"peak RSS {rss['plain'] / 1024:.0f} MiB")
            print(f"{fmt:5s} flowlang:        {flow:.3f} s ({n / flow:,.0f} rows/s), peak RSS "
                  f"{rss['flowlang'] / 1024:.0f} MiB ({small_rss / 1024:.0f} MiB for {max(1, n // 10):,} rows)")
            print(f"{fmt:5s} ratio (flowlang/plain): {flow / plain:.2f} wall, {cpu_ratio:.2f} CPU  (goal: at most "
                  f"2.0; wall pairs {', '.join(f'{r:.2f}' for r in pairs)})")


if __name__ == "__main__":
    main()
