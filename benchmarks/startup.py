"""Benchmark: cold start of the `flowlang` command (`flowlang --version`, and `flowlang run` of a flow
that is `emit 1`) against `python -c pass` measured in the same run, alternating, each a fresh
process, with .pyc files as an installed package has them. Prints the median of each, the ratio to
`python -c pass`, and the goal (0.08 s and 0.25 s on the machine the goals were set on, where
`python -c pass` took 16 ms: 5x and 15.6x).

    python benchmarks/startup.py [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_PYTHON = 0.016  # `python -c pass` where the goals were measured (issue 15: 0.42 s was 26x)
GOALS = {"--version": 0.08, "run emit 1": 0.25}


# as installed packages run: from .pyc files (the first, untimed run of each command writes them)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): on a busy machine the CPU time is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "one.flow"
        flow.write_text("emit 1\n")
        python = [sys.executable, "-c", "pass"]
        script = Path(sys.executable).with_name("flowlang")  # the installed command, as people run it
        flowlang = [str(script)] if script.exists() else [sys.executable, "-m", "flowlang"]
        commands = {"python -c pass": python, "--version": [*flowlang, "--version"],
                    "run emit 1": [*flowlang, "run", str(flow), "--quiet", "--state-dir", str(Path(tmp) / "s")]}
        for argv in commands.values():  # warm the file cache and the .pyc files
            timed(argv, tmp)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeat):  # alternate: this machine's speed varies from minute to minute
            for name, argv in commands.items():
                times[name].append(timed(argv, tmp))
    wall = {name: statistics.median(t[0] for t in runs) for name, runs in times.items()}
    cpu = {name: statistics.median(t[1] for t in runs) for name, runs in times.items()}
    base_wall, base_cpu = wall["python -c pass"], cpu["python -c pass"]
    print(f"medians of {args.repeat} alternating runs; CPU = user + system time of the process")
    print(f"python -c pass:      wall {base_wall * 1000:6.1f} ms   CPU {base_cpu * 1000:6.1f} ms")
    for name, goal in GOALS.items():
        goal_ratio = goal / REFERENCE_PYTHON
        ratio = cpu[name] / base_cpu
        print(f"flowlang {name + ':':12s} wall {wall[name] * 1000:6.1f} ms   CPU {cpu[name] * 1000:6.1f} ms = "
              f"{ratio:4.1f}x python -c pass (wall {wall[name] / base_wall:4.1f}x)   goal {goal:.2f} s = "
              f"{goal_ratio:.1f}x: {'met' if ratio <= goal_ratio else 'NOT met'}")


if __name__ == "__main__":
    main()
