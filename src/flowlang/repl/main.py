"""`flowlang repl`: the interactive screen on a terminal, or statements from a pipe."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import IO

from flowlang.cli.console import Terminal
from flowlang.cli.options import param_texts, parse_params, read_secrets
from flowlang.repl.meta import is_meta, run_meta
from flowlang.repl.render import cannot_show, failure_lines, plain_text
from flowlang.repl.session import NOTHING, Outcome, ReplSession
from flowlang.runtime.jsoncodec import JsonDataError
from flowlang.source import lines_of


def make_session(args: argparse.Namespace, terminal: Terminal) -> ReplSession:
    secrets = read_secrets(getattr(args, "secrets", None))
    base = Path(args.file).resolve().parent if getattr(args, "file", None) else Path.cwd()
    items = getattr(args, "param", []) or []
    return ReplSession(base_dir=base, params=parse_params(items), param_texts=param_texts(items), secrets=secrets,
                       env=dict(os.environ), masker=terminal.masker)  # it learns each secret read, as it is read


def report(outcome: Outcome, out: IO[str], err: Terminal) -> bool:
    """Print what an input gave; False when a value could not be shown (the session goes on)."""
    shown = True
    for value in [*outcome.emitted, *([] if outcome.value is NOTHING else [outcome.value])]:
        try:
            out.write(err.masker.mask(plain_text(value)) + "\n")
        except JsonDataError as e:
            out.flush()
            err.message(cannot_show(e))
            shown = False
    out.flush()
    for note in outcome.notes:
        err.message(note)
    for line in failure_lines(outcome.failures):
        err.message(line)
    if outcome.error is not None:
        err.message(outcome.error.render())
    return shown


def run_piped(session: ReplSession, text: str, terminal: Terminal) -> int:
    """Statements from standard input, each run when the parser says it is complete."""
    failed = False
    buffer: list[str] = []
    first = 1  # the line of stdin the buffered input starts on: a message names <stdin>:LINE:COL
    for number, line in enumerate(lines_of(text.removesuffix("\n")), 1):  # U+2028 in a string is no line end
        if not buffer:
            first = number
        if not buffer and is_meta(line):
            result = run_meta(session, line)
            if result.text:
                (terminal.stdout if result.ok else terminal.stderr).write(terminal.masker.mask(result.text) + "\n")
            failed = failed or not result.ok
            if result.quit:
                break
            continue
        buffer.append(line)
        chunk = "\n".join(buffer) + "\n"
        if not chunk.strip() or not session.is_complete(chunk) or session.breaks_inside_a_block(chunk):
            continue  # more lines could finish it; or a block that failed goes on to its `end`, which fails it whole
        buffer = []
        outcome = session.execute(chunk, at=("<stdin>", first))
        shown = report(outcome, terminal.stdout, terminal)
        failed = failed or not outcome.ok or not shown
    if buffer and "\n".join(buffer).strip():
        outcome = session.execute("\n".join(buffer) + "\n", at=("<stdin>", first))
        shown = report(outcome, terminal.stdout, terminal)
        failed = failed or not outcome.ok or not shown
    return 1 if failed else 0


def repl_main(args: argparse.Namespace, terminal: Terminal) -> int:
    session = make_session(args, terminal)
    try:
        if args.file:
            loaded = session.load_file(Path(args.file))
            for note in [left.note() for left in loaded.left_out] + loaded.notes:
                terminal.message(note)
            if loaded.error is not None:
                terminal.message(loaded.error.render())
                if not terminal.stdin_is_terminal():
                    return 1
        if not terminal.stdin_is_terminal():
            return run_piped(session, terminal.read_stdin(), terminal)
        from flowlang.repl.app import interactive

        return interactive(session, terminal)
    finally:
        session.close()
