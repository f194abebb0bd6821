"""All terminal I/O of the CLI in one injectable object (like httpie's Environment): stdin, JSON Lines
on stdout, messages, logs and summaries on stderr (rich on a terminal, plain text otherwise). Tests
give it in-memory streams (tests/conftest.py `cli`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.masking import Masker


class Terminal:
    """stdin for input (`--input -`, piped REPL statements), stdout for records, stderr for people
    (and, when not a terminal, for log collectors)."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                 color: bool | None = None, stdin: IO[str] | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        is_tty = hasattr(self.stderr, "isatty") and self.stderr.isatty()
        self.rich = is_tty if color is None else color
        self.err = Console(file=self.stderr, force_terminal=self.rich, no_color=not self.rich,
                           highlight=False, soft_wrap=True)
        self.masker = Masker()

    # ---- stdin -------------------------------------------------------------------------------
    def stdin_is_terminal(self) -> bool:
        """Whether a person types the input (else it is piped or redirected)."""
        return hasattr(self.stdin, "isatty") and self.stdin.isatty()

    def read_stdin(self) -> str:
        return self.stdin.read()

    # ---- stdout ------------------------------------------------------------------------------
    def record(self, value: Any) -> None:
        """One emitted value as a JSON line; any known secret in it is masked too."""
        self.stdout.write(self.masker.mask(dumps(value)) + "\n")
        self.stdout.flush()

    def out(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    # ---- stderr ------------------------------------------------------------------------------
    def message(self, text: str, style: str | None = None) -> None:
        text = self.masker.mask(text)
        if self.rich:
            self.err.print(Text(text, style=style or ""))
        else:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def error(self, text: str) -> None:
        self.message(text, "bold red")

    def table(self, table: Table) -> None:
        self.err.print(table)

    def stdout_table(self, table: Table) -> None:
        Console(file=self.stdout, force_terminal=False, no_color=True, width=200, soft_wrap=True).print(table)


class TerminalLogHandler(logging.Handler):
    """flowlang's log records on stderr: coloured lines on a terminal, JSON lines otherwise."""

    def __init__(self, terminal: Terminal, json_lines: bool) -> None:
        super().__init__()
        self.terminal = terminal
        self.json_lines = json_lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.terminal.masker.mask(record.getMessage())
            if self.json_lines:
                entry = {
                    "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                    "level": record.levelname.lower(), "flow": getattr(record, "flow", None),
                    "job_id": getattr(record, "job_id", None), "message": text,
                }
                for extra in ("location", "summary"):
                    value = getattr(record, extra, None)
                    if value:
                        entry[extra] = value
                self.terminal.stderr.write(json.dumps(entry) + "\n")
                self.terminal.stderr.flush()
                return
            style = {"ERROR": "red", "WARNING": "yellow", "DEBUG": "dim"}.get(record.levelname)
            where = getattr(record, "location", None)
            prefix = f"{record.levelname.lower()}: " if record.levelno != logging.INFO else ""
            self.terminal.message(prefix + text + (f"  ({where})" if where else ""), style)
        except Exception:  # a log line must never break a run
            self.handleError(record)
