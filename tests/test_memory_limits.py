"""A run whose memory runs out (a real address-space limit, RLIMIT_AS, set in the child process as
`ulimit -v` sets it, 160 MB above the peak of a run of one line): the record that ran out fails at
its line with 'out of memory' and is kept in the error store, the records after it run; outside a
loop the run fails at the line (exit 1); never a traceback or an 'internal error'."""

from __future__ import annotations

import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from conftest import run_cli

HEADROOM = 160 * 1024 * 1024  # bytes of address space above what a run of one line takes at its peak

# a run of one line, which says at its exit the most address space it took (threads' stacks and
# libraries count: about 270 MB here)
PEAK = """import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmPeak:"):
            sys.stderr.write(line)
atexit.register(peak)
from flowlang.cli.main import main
sys.exit(main())
"""

# the third record builds four million objects (a gigabyte and more); the others build nothing
POISON = """for each k in range(5)
  let n = 0
  if k == 2
    let big = [{i: i, s: "x{i}"} for i in range(k * 2000000)]
    let n = len(big)
  end
  emit {k: k, n: n}
end
"""

# every record adds 300,000 texts to a variable around the loop, which keeps them: once the memory is
# full, each later record runs out of it in turn (and gives back what it took)
GROWING = """let all = {}
for each k in range(12)
  let all["k{k}"] = ["text number {i}" for i in range(300000)]
  emit k
end
"""

# outside a loop: the run fails at the line
TOP = """param n = 4
let big = [{i: i, s: "x{i}"} for i in range(n * 1000000)]
emit len(big)
"""


@functools.cache
def limit() -> int:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "one.flow").write_text("emit 1\n")
        ran = subprocess.run([sys.executable, "-c", PEAK, "run", "one.flow", "--log-format", "json"], cwd=folder,
                             capture_output=True, text=True, timeout=60)
    [kb] = [int(line.split()[1]) for line in ran.stderr.splitlines() if line.startswith("VmPeak:")]
    return kb * 1024 + HEADROOM


def limited(bytes_: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (bytes_, bytes_))


def run_limited(folder: Path, name: str, text: str) -> tuple[int, str, str]:
    (folder / f"{name}.flow").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    proc = subprocess.run([sys.executable, "-m", "flowlang", "run", f"{name}.flow", "--log-format", "json"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limited(limit()))
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err and "bug in flowlang" not in err, err
    assert "Exception ignored" not in err, err
    for line in err.splitlines():
        json.loads(line)  # every line on stderr is a JSON object (no text a library printed)


def open_errors(folder: Path, name: str) -> list[dict[str, object]]:
    listed = run_cli("errors", f"{name}.flow", "--json", cwd=folder)
    return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]


def test_a_record_that_runs_out_of_memory_fails_alone_at_its_line(tmp_path: Path) -> None:
    code, out, err = run_limited(tmp_path, "poison", POISON)
    assert code == 3, err
    assert [json.loads(line)["k"] for line in out.splitlines()] == [0, 1, 3, 4]
    assert_clean(err)
    assert "record failed at poison.flow:4:" in err and "out of memory" in err
    errors = open_errors(tmp_path, "poison")
    assert len(errors) == 1, errors
    assert "out of memory" in str(errors[0]["message"])
    assert errors[0]["record"] == 2
    assert str(errors[0]["location"]).startswith("poison.flow:4:")


def test_records_after_the_memory_filled_fail_each_and_are_kept(tmp_path: Path) -> None:
    code, out, err = run_limited(tmp_path, "growing", GROWING)
    assert code == 3, err
    assert_clean(err)
    emitted = [int(line) for line in out.splitlines()]
    assert 0 < len(emitted) < 12 and emitted == list(range(len(emitted))), emitted
    errors = open_errors(tmp_path, "growing")
    assert sorted(int(str(e["record"])) for e in errors) == list(range(len(emitted), 12)), errors
    assert all("out of memory" in str(e["message"]) and str(e["location"]).startswith("growing.flow:3:")
               for e in errors), errors


def test_a_run_out_of_memory_outside_a_loop_fails_at_its_line(tmp_path: Path) -> None:
    code, out, err = run_limited(tmp_path, "top", TOP)
    assert code == 1, err
    assert out == ""
    assert_clean(err)
    assert "top.flow:2:" in err and "out of memory" in err
    jobs = run_cli("jobs", "top.flow", "--json", cwd=tmp_path)
    job = json.loads(jobs.stdout.splitlines()[0])
    assert job["status"] == "failed", job
