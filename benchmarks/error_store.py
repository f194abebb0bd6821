"""Benchmark: the error store's size and `flowlang errors`' memory after N failures with a large list
in scope (issue 10, High 5), for a loop body that does not read the list and one that does.

    python benchmarks/error_store.py [--failures N] [--items M]

Prints the store's size on disk, the peak memory (max RSS) of `flowlang errors` and of
`flowlang errors --group`, and the list's own JSON size as the baseline: the store should hold the
list at most once, whatever N is.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOW = """flow "{name}"
let big = [{{n: i, name: "item number {{i}} padded to be a bit longer"}} for i in range(0, {items})]
for each r in range(0, {failures})
  if r >= 0
    fail "bad {{r}}{reads}"
  end
end
"""


def peak_rss_kb(*args: str, cwd: Path) -> tuple[int, float]:
    """The max RSS (KB) and wall time of `flowlang ARGS` in a child process of its own."""
    script = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=False); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", script, sys.executable, "-m", "flowlang", *args], cwd=cwd,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failures", type=int, default=1000)
    parser.add_argument("--items", type=int, default=3000)
    args = parser.parse_args()
    one = len(json.dumps([{"n": i, "name": f"item number {i} padded to be a bit longer"} for i in range(args.items)]))
    print(f"{args.failures} failures, a list of {args.items} items ({one / 1024:.0f} KB as JSON) in scope")
    for name, reads in (("unread", ""), ("read", " of {len(big)}")):
        with tempfile.TemporaryDirectory() as folder:
            cwd = Path(folder)
            (cwd / f"{name}.flow").write_text(FLOW.format(name=name, items=args.items, failures=args.failures,
                                                          reads=reads))
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flowlang", "run", f"{name}.flow", "--log-format", "json"],
                           cwd=cwd, capture_output=True, check=False)
            took = time.perf_counter() - started
            size = (cwd / ".flowlang" / "flowlang.db").stat().st_size
            listed, listed_s = peak_rss_kb("errors", f"{name}.flow", cwd=cwd)
            grouped, grouped_s = peak_rss_kb("errors", f"{name}.flow", "--group", cwd=cwd)
            print(f"body {'reads' if reads else 'does not read'} the list: run {took:.1f} s; store "
                  f"{size / 1e6:.2f} MB ({size / one:.1f}x the list); errors {listed / 1024:.0f} MB max RSS in "
                  f"{listed_s:.1f} s; errors --group {grouped / 1024:.0f} MB in {grouped_s:.1f} s")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
