"""All terminal I/O of the CLI in one injectable object (like httpie's Environment): stdin, JSON Lines
on stdout, messages, logs and summaries on stderr (rich on a terminal, plain text otherwise). Tests
give it in-memory streams (tests/conftest.py `cli`)."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from flowlang.diagnostics import printable
from flowlang.errors import FlowError, FlowRuntimeError
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.masking import Masker

if TYPE_CHECKING:  # rich is imported when something is drawn: `flowlang --version` stays fast
    from rich.console import Console
    from rich.table import Table


def wants_color(mode: str, is_tty: bool, environ: Mapping[str, str]) -> bool:
    """Colour on stderr: --color always/never wins; else a non-empty NO_COLOR turns it off
    (no-color.org), a non-empty FORCE_COLOR turns it on, and otherwise a terminal has it."""
    if mode in ("always", "never"):
        return mode == "always"
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return is_tty


class Terminal:
    """stdin for input (`--input -`, piped REPL statements), stdout for records, stderr for people
    (and, when not a terminal, for log collectors).

    `rich` says stderr is a person's terminal (live progress, tables, text logs); `color` whether
    stderr gets colour (NO_COLOR, FORCE_COLOR, --color)."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                 color: bool | None = None, stdin: IO[str] | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.is_tty = hasattr(self.stderr, "isatty") and self.stderr.isatty()
        self.rich = self.is_tty if color is None else color
        self.color = wants_color("auto", self.rich, os.environ) if color is None else color
        self.masker = Masker()
        self.json_lines = False  # set by setup_logging: every stderr line is then a JSON object
        self.context: dict[str, Any] = {"flow": None, "job_id": None}  # what JSON lines carry
        self.closed = False  # stdout went away (`| head`)
        self.on_closed: Callable[[], None] | None = None  # a run stops when its stdout goes away
        # a run stops when its stdout cannot be written (a full disk, a file past `ulimit -f`): its reason
        self.on_unwritable: Callable[[str], None] | None = None
        self.live: Any = None  # rich's Live of the progress line while it is drawn (progress.progress_display)

    @cached_property
    def err(self) -> Console:
        """The rich console on stderr (made on first use: rich is imported only when drawing)."""
        from rich.console import Console

        return Console(file=self.stderr, force_terminal=True if self.color else None, no_color=not self.color,
                       highlight=False, soft_wrap=True)

    def use_color(self, mode: str) -> None:
        """Apply --color auto|always|never (and NO_COLOR / FORCE_COLOR for auto)."""
        self.color = wants_color(mode, self.rich, os.environ)
        self.__dict__.pop("err", None)  # the next use makes the console with the new setting

    # ---- stdin -------------------------------------------------------------------------------
    def stdin_is_terminal(self) -> bool:
        """Whether a person types the input (else it is piped or redirected)."""
        return hasattr(self.stdin, "isatty") and self.stdin.isatty()

    def read_stdin(self) -> str:
        return self.stdin.read()

    # ---- stdout ------------------------------------------------------------------------------
    def record(self, value: Any) -> None:
        """One emitted value as a JSON line; any known secret in it is masked too. When stdout has
        gone away, the run is asked to stop (OPERATIONS.md 9) and further records are dropped."""
        if self.closed:
            return
        line = terminal_safe_json(self.masker.mask(dumps(self.masker.mask_value(value)))) + "\n"
        try:
            self._write_out(line, ascii_json)
        except (BrokenPipeError, ValueError):
            self.stdout_gone()
        except OSError as e:  # a full disk: this record's output is not written, so the record fails (kept)
            reason = unwritable(e)
            if self.on_unwritable is not None:
                self.on_unwritable(reason)  # and no new record starts: its sends would go out, its output not
            raise FlowRuntimeError(f"{reason}; the output of this record was not written (it is kept: retry it "
                                   "once the output can be written)", "connector") from None

    def out(self, text: str) -> None:
        """A line of a command's output; a closed stdout ends the command (quietly, status 141)."""
        if self.closed:
            raise BrokenPipeError("stdout is closed")
        try:
            self._write_out(printable(text, lines=True) + "\n", escaped_text)
        except (BrokenPipeError, ValueError):
            self.stdout_gone()
            raise BrokenPipeError("stdout is closed") from None
        except OSError as e:
            raise OutputNotWritten(unwritable(e)) from None

    def json_out(self, text: str) -> None:
        """A JSON line of a command's output (`errors --json`, `jobs --json`): as out() writes a line, but
        the characters a terminal acts on that JSON leaves as they are (DEL, C1 controls such as U+009B,
        line separators, bidirectional overrides) are written as JSON's own escapes (`\\u009b`), the same
        value: out()'s `\\x9b` is no JSON escape, so `errors --json` of a message holding one was a line
        that no JSON reader took. JSON escapes C0 controls itself."""
        if self.closed:
            raise BrokenPipeError("stdout is closed")
        try:
            self._write_out(terminal_safe_json(text) + "\n", ascii_json)
        except (BrokenPipeError, ValueError):
            self.stdout_gone()
            raise BrokenPipeError("stdout is closed") from None
        except OSError as e:
            raise OutputNotWritten(unwritable(e)) from None

    def _write_out(self, text: str, fallback: Callable[[str], str]) -> None:
        """Text on stdout; where stdout's encoding cannot hold a character (PYTHONIOENCODING=ascii, a
        Latin-1 terminal), the text as `fallback` writes it in ASCII, never as a closed stdout."""
        live = self.live
        if live is not None and getattr(self.stdout, "isatty", lambda: False)():
            # the progress line is on the same screen: erase it first, so that the record starts a line
            # of its own; rich draws the line again below it at its next refresh (under the same lock).
            # Live's lock and render are rich's own: a rich without them gets the record as it is
            lock: Any = getattr(live, "_lock", None)
            render: Any = getattr(live, "_live_render", None)
            if lock is not None and hasattr(render, "position_cursor"):
                with lock:
                    self.err.control(render.position_cursor())
                    render._shape = None  # nothing of it is on the screen now
                    self._write_stdout(text, fallback)
                return
        self._write_stdout(text, fallback)

    def _write_stdout(self, text: str, fallback: Callable[[str], str]) -> None:
        try:
            self.stdout.write(text)
        except UnicodeEncodeError:
            self.stdout.write(fallback(text))
        self.stdout.flush()

    def stdout_gone(self) -> None:
        self.closed = True
        if self.stdout is sys.stdout or self.stdout is sys.__stdout__:
            try:  # nothing more reaches the pipe, and Python's exit flush has nothing to complain about
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
        if self.on_closed is not None:
            self.on_closed()

    # ---- stderr ------------------------------------------------------------------------------
    def message(self, text: str, style: str | None = None, extra: dict[str, Any] | None = None) -> None:
        """Text for people on stderr; control characters from data are escaped (diagnostics.printable).
        `extra` are fields of its JSON line (such as `location`)."""
        text = self.masker.mask(text)
        if self.json_lines:
            level = "error" if style and "red" in style else ("warning" if style == "yellow" else "info")
            level, text, extra = json_fields(level, text, extra)
            self.json_line(level, text, extra=extra)
            return
        text = printable(text, lines=True)
        try:  # a closed stderr (the reader of a pipe gone) loses the message, as a JSON line's, not the command
            if self.color:
                from rich.text import Text

                self.err.print(Text(text, style=style or ""))
            else:
                self.stderr.write(text + "\n")
                self.stderr.flush()
        except (OSError, ValueError):  # a full disk under a redirected stderr loses the line too
            pass

    def error(self, text: str) -> None:
        self.message(text, "bold red")

    def json_line(self, level: str, text: str, flow: Any = None, job_id: Any = None,
                  extra: dict[str, Any] | None = None) -> None:
        """One JSON object on stderr (OPERATIONS.md 10): time, level, flow, job_id, message."""
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level,
                 "flow": flow if flow is not None else self.context.get("flow"),
                 "job_id": job_id if job_id is not None else self.context.get("job_id"), "message": text}
        entry.update(extra or {})
        try:
            self.stderr.write(json.dumps(entry, default=str) + "\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def table(self, table: Table) -> None:
        self.err.print(table)

    def stdout_table(self, table: Table) -> None:
        import io

        from rich.console import Console

        # drawn into text first, then written as any other output: rich writing to a closed stdout
        # itself (`flowlang connectors http | head -1`) ends the process with SystemExit(1), not 141
        drawn = io.StringIO()
        Console(file=drawn, force_terminal=False, no_color=True, width=200, soft_wrap=True,
                markup=False).print(table)  # cells hold data (a connector file's text): "[/]" is no markup
        self.out(drawn.getvalue().removesuffix("\n"))


class OutputNotWritten(FlowError):
    """stdout refused a command's output (a full disk, a file past `ulimit -f`): the command ends with the
    reason (exit 1), not as a bug in flowlang."""


def unwritable(error: OSError) -> str:
    """Why stdout could not be written, in words: 'stdout cannot be written: No space left on device'."""
    return f"stdout cannot be written: {error.strerror or error}"


class TerminalLogHandler(logging.Handler):
    """flowlang's log records on stderr: coloured lines on a terminal, JSON lines otherwise."""

    def __init__(self, terminal: Terminal, json_lines: bool) -> None:
        super().__init__()
        self.terminal = terminal
        self.json_lines = json_lines

    def emit(self, record: logging.LogRecord) -> None:
        from flowlang.runtime.run import current_flow, current_job_id

        try:
            text = self.terminal.masker.mask(record.getMessage())
            if self.json_lines:
                extra = {}
                for name in ("location", "summary"):
                    value = getattr(record, name, None)
                    if value:
                        extra[name] = value
                place = getattr(record, "place", None)  # the place the message names ('record failed at ...')
                if place and "location" not in extra:
                    extra["location"] = place
                level = {"warning": "warning"}.get(record.levelname.lower(), record.levelname.lower())
                level, text, fields = json_fields(level, text, extra)
                self.terminal.json_line(level, text, getattr(record, "flow", None) or current_flow(),
                                        getattr(record, "job_id", None) or current_job_id(), fields)
                return
            text = printable(text)  # one log record, one line (a newline in data cannot forge another)
            style = {"ERROR": "red", "WARNING": "yellow", "DEBUG": "dim"}.get(record.levelname)
            where = getattr(record, "location", None)
            prefix = f"{record.levelname.lower()}: " if record.levelno != logging.INFO else ""
            self.terminal.message(prefix + text + (f"  ({where})" if where else ""), style)
        except Exception:  # a log line must never break a run
            self.handleError(record)


# the headline of a message for people: 'f.flow:3:5: error: ...', 'error: ...', 'warning: ...'
# (a place holds no ": ", which a message's words before one would: "hook: f.flow was edited ... f.flow:3:10")
_HEADLINE = re.compile(r"(?:(?P<location>[^\s:](?:[^\n:]|:(?! ))*?:\d+:\d+): )?(?P<level>error|warning): ")


def json_fields(level: str, text: str, extra: dict[str, Any] | None) -> tuple[str, str, dict[str, Any] | None]:
    """A JSON log line's `level`, `message` and other fields of a message written for people: the
    level and the place its headline starts with are the line's `level` and `location`, not words
    of its `message` (which keeps the rest, the source line and its caret included)."""
    found = _HEADLINE.match(text)
    if found is None:
        return level, text, extra
    where = found.group("location")
    if where is not None:
        extra = {"location": where, **(extra or {})}
    return found.group("level"), text[found.end():], extra


_NOT_ASCII = re.compile("[^\x00-\x7f]")


def ascii_json(text: str) -> str:
    """JSON text with every character past ASCII as its escape (`\\u00e9`, a pair past U+FFFF): the
    same JSON value, in any encoding. (JSON's own syntax is ASCII: such characters are in strings.)"""
    return _NOT_ASCII.sub(lambda m: json.dumps(m.group())[1:-1], text)


# what JSON text may hold raw (in its strings) that a terminal acts on; C0 controls JSON escapes itself
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def terminal_safe_json(text: str) -> str:
    """JSON text with each of those characters as its \\u escape: the same JSON value, safe on a terminal."""
    if text.isascii():
        return text
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escaped_text(text: str) -> str:
    """Text for people with every character past ASCII as a Python-style escape (`\\xe9`)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")
