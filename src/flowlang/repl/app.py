"""The interactive screen: a prompt-toolkit session with highlighting, completion, persistent
history, continuation lines decided by the parser, Ctrl-C to cancel a running statement and
Ctrl-D to leave."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from rich.console import Console

from flowlang.cli.console import Terminal
from flowlang.repl.completion import candidates
from flowlang.repl.lexer import FlowLexer
from flowlang.repl.meta import is_meta, run_meta
from flowlang.repl.render import cannot_show, failure_lines, show
from flowlang.repl.session import NOTHING, Outcome, ReplSession
from flowlang.runtime.jsoncodec import JsonDataError
from flowlang.runtime.private import private_file

PROMPT = "flow> "
CONTINUATION = "....  "


class FlowCompleter(Completer):
    def __init__(self, session: ReplSession) -> None:
        self.session = session

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        word, found = candidates(self.session, document.text_before_cursor)
        for name in found[:200]:
            yield Completion(name, start_position=-len(word))


class MaskedFileHistory(FileHistory):
    """The history file, each input written with the session's known secrets masked: a secret's text
    typed or pasted into an input (a token to compare with) never reaches the disk."""

    def __init__(self, filename: str, mask: Callable[[str], str],
                 on_error: Callable[[str], None] | None = None) -> None:
        super().__init__(filename)
        self.mask = mask
        self.on_error = on_error
        self.failed = False  # the file refused a write: the session's inputs are kept in memory only

    def store_string(self, string: str) -> None:
        if self.failed:
            return
        try:
            super().store_string(self.mask(string))
        except OSError as e:  # a full disk: before, prompt_toolkit's traceback at every Enter, the input not run
            self.failed = True
            if self.on_error is not None:
                self.on_error(f"note: the history file {os.fsdecode(self.filename)} cannot be written "
                              f"({e.strerror or e}); this session's inputs are kept in memory only")


def history_file(mask: Callable[[str], str], on_error: Callable[[str], None] | None = None) -> History:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    folder = Path(base) / "flowlang"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return MaskedFileHistory(str(private_file(folder / "history")), mask, on_error)
    except OSError:
        return InMemoryHistory()


def key_bindings(session: ReplSession) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.text
        if is_meta(text) or session.is_complete(text + "\n"):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    return bindings


def build_prompt(session: ReplSession, terminal: Terminal | None = None, **kw: Any) -> PromptSession[str]:
    said = (lambda text: terminal.message(text, "yellow")) if terminal is not None else None
    return PromptSession(
        message=PROMPT, multiline=True, lexer=PygmentsLexer(FlowLexer), completer=FlowCompleter(session),
        complete_while_typing=False, history=kw.pop("history", None) or history_file(session.masker.mask, said),
        key_bindings=key_bindings(session), prompt_continuation=lambda width, line, soft: CONTINUATION,
        **kw)


def show_outcome(console: Console, terminal: Terminal, outcome: Outcome) -> None:
    for value in [*outcome.emitted, *([] if outcome.value is NOTHING else [outcome.value])]:
        try:
            show(console, value, terminal.masker.mask)
        except JsonDataError as e:
            terminal.error(cannot_show(e))
    for note in outcome.notes:
        terminal.message(note, "yellow")
    for line in failure_lines(outcome.failures):
        terminal.message(line, "yellow")
    if outcome.error is not None:
        terminal.message(outcome.error.render(), "red")


def run_input(session: ReplSession, text: str) -> Outcome:
    """Run one input; Ctrl-C cancels it and the session goes on."""
    running: list[Any] = []
    try:
        return session.execute(text, on_step=running.append)
    except KeyboardInterrupt:
        for task in running:
            task.cancel()
            try:
                session.loop.run_until_complete(task)
            except BaseException:  # the cancellation itself
                pass
        from flowlang.errors import FlowRuntimeError

        return Outcome(error=FlowRuntimeError("cancelled (Ctrl-C)", "internal"), source=text)



def interactive(session: ReplSession, terminal: Terminal, prompt: PromptSession[str] | None = None,
                console: Console | None = None) -> int:
    prompt = prompt or build_prompt(session, terminal)
    console = console or Console(file=terminal.stdout, highlight=True)
    session.interruptible = True
    terminal.message("flowlang repl: :help for commands, Ctrl-D to leave", "dim")
    while True:
        try:
            text = prompt.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        if not text.strip():
            continue
        try:
            if is_meta(text):
                result = run_meta(session, text)
                if result.text:  # masked as every output is (a variable may hold a secret's text an API echoed)
                    text = terminal.masker.mask(result.text)
                    if result.ok:
                        console.print(text, markup=False, highlight=False)
                    else:
                        terminal.error(text)
                if result.quit:
                    return 0
                continue
            show_outcome(console, terminal, run_input(session, text + "\n"))
        except KeyboardInterrupt:  # while a value is shown (a long list) or a command runs (:run): not the end
            cancel_pending(session)
            terminal.message("cancelled (Ctrl-C)", "yellow")


def cancel_pending(session: ReplSession) -> None:
    """What a Ctrl-C left running in the session's event loop (a :run's job) is cancelled, so it does not
    go on at the next input."""
    pending = [task for task in asyncio.all_tasks(session.loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        session.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
