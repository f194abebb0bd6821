"""docs/tutorial.md runs as printed: its data, its flows and its commands in order, in a fresh folder,
and what the page shows (emitted records, exit statuses, the rows `sqlite3 crm.db` prints, the state)
is what they give. Times and job ids are left out; they differ from run to run."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
from pathlib import Path

from conftest import ROOT, cli

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]


def commands(script: str) -> list[tuple[list[str], list[str]]]:
    """`$ flowlang ...` / `$ sqlite3 ...` lines of a sh block, each with the lines printed after it."""
    out: list[tuple[list[str], list[str]]] = []
    for line in script.splitlines():
        if line.startswith("$ "):
            out.append((shlex.split(line[2:]), []))
        elif out:
            out[-1][1].append(line)
    return out


def sqlite_rows(db: Path, sql: str) -> list[str]:
    """The rows as the sqlite3 command prints them: the columns joined by |."""
    with sqlite3.connect(db) as conn:
        return ["|".join("" if v is None else str(v) for v in row) for row in conn.execute(sql)]


def test_the_tutorial_runs_as_printed(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    data = [text for info, text in blocks() if info == "" and text.startswith("id,email")]
    more = [text for info, text in blocks() if info == "" and text.startswith("2,bob")]
    (tmp_path / "data" / "customers.csv").write_text(data[0], encoding="utf-8")
    exit_status = 0
    ran = 0
    for info, text in blocks():
        if info == "flow":
            (tmp_path / "customers.flow").write_text(text, encoding="utf-8")
            continue
        if info == "flow error":  # the mistake, in place of the line it spoils
            lines = (tmp_path / "customers.flow").read_text(encoding="utf-8").splitlines()
            head = text.split("=")[0]
            lines = [text.rstrip("\n") if line.startswith(head) else line for line in lines]
            (tmp_path / "customers.flow").write_text("\n".join(lines) + "\n", encoding="utf-8")
            continue
        if info != "sh":
            continue
        for argv, shown in commands(text):
            if argv[0] == "flowlang":
                result = cli(*argv[1:], "--log-format", "text", cwd=tmp_path) if argv[1] in ("run", "retry") \
                    else cli(*argv[1:], cwd=tmp_path)
                exit_status = result.status
                ran += 1
                records = [line for line in shown if line.startswith("{\"id\"")]
                if argv[1] == "run" and records:
                    assert [json.loads(r) for r in result.stdout.splitlines()] == [json.loads(r) for r in records]
                if argv[1] == "check":
                    assert result.stdout + result.stderr == "".join(line + "\n" for line in shown)
                if argv[1] == "state":  # a change (--set) prints the state as it is now too
                    printed = [line for line in shown if line.startswith('{"state"')]
                    assert printed, f"the page shows no state line for {argv}; it prints {result.stdout!r}"
                    assert json.loads(result.stdout)["state"] == json.loads(printed[0])["state"], result.stdout
            elif argv[0] == "echo":
                assert shown == [str(exit_status)]
            elif argv[0] == "sqlite3":
                assert sqlite_rows(tmp_path / argv[1], argv[2]) == shown
                ran += 1
        if "state customers.flow --set" in text and more:  # then the next export arrives
            with (tmp_path / "data" / "customers.csv").open("a", encoding="utf-8") as f:
                f.write(more.pop())
    assert ran >= 12
