"""An embedding program's stderr: flowlang's log lines go where the program's logging sends them, and
nowhere without it (a library adds only a NullHandler; Python's last-resort handler printed every
failed record's line on the host's stderr)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import logging, sys
import flowlang
if sys.argv[1] == "configured":
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
result = flowlang.compile('for each o in [1, 2]\\n  fail "bad {o}"\\nend\\nlog "done"\\n', name="e.flow").run()
print("status", result.status, [e.message for e in result.errors])
"""


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=120)


def test_nothing_is_printed_unless_the_program_configures_logging() -> None:
    quiet = run("plain")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "status partial ['bad 1', 'bad 2']\n"
    assert quiet.stderr == ""


def test_a_program_that_configures_logging_gets_the_lines() -> None:
    loud = run("configured")
    assert loud.returncode == 0, loud.stderr
    lines = loud.stdout.splitlines()
    assert "flowlang.flow ERROR record failed at e.flow:2:3: bad 1" in lines
    assert "flowlang.flow INFO done" in lines
    assert lines[-1] == "status partial ['bad 1', 'bad 2']"
