"""The REPL's engine: one environment across inputs (connections, variables, functions persist),
statement completeness decided by the parser, and each input checked, compiled and run. No I/O
here: callers show the outcome."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flowlang import ast
from flowlang.check.checker import Checker
from flowlang.check.program import CheckedModule
from flowlang.check.scopes import Kind, Scope
from flowlang.compile import ProgramCompiler
from flowlang.compile.steps import Step, run_step
from flowlang.environment import Environment, display_name
from flowlang.errors import FlowError, FlowRuntimeError, FlowSyntaxError, ScriptError
from flowlang.flow_file import read_flow_text
from flowlang.repl.definitions import LeftOut, definitions, names_read
from flowlang.runner import given_param, text_params
from flowlang.runtime.frame import Frame, counted
from flowlang.runtime.limits import StopFlag
from flowlang.runtime.masking import DERIVED, Masker
from flowlang.runtime.operators import NeedsMaterialization
from flowlang.runtime.run import RecordFailure, RunContext, RunOptions
from flowlang.runtime.values import RecordStream
from flowlang.source import Source
from flowlang.syntax import parse
from flowlang.syntax.errors import blocks_open_at_end

NOTHING = object()


@dataclass
class Kept:
    """One statement :save keeps, and the function or connection it defines (to be defined again)."""

    text: str
    defines: tuple[str, str] | None = None


def defines(stmt: ast.Stmt) -> tuple[str, str] | None:
    if isinstance(stmt, ast.Function):
        return ("function", stmt.name)
    if isinstance(stmt, ast.Use):
        return ("use", stmt.name)
    if isinstance(stmt, ast.Import):  # imported again: the file read again takes the first import's place
        return ("import", stmt.path)
    return None


def unknown_params(given: dict[str, Any], declared: Iterable[str], path: Path) -> str:
    """A note for the session's --params a flow it loads or runs does not declare (they are not given
    to it), or ''."""
    declared = list(declared)
    unknown = [name for name in given if name not in declared]
    if not unknown:
        return ""
    names = ", ".join(f"--param {name}" for name in unknown)
    has = f"its params: {', '.join(declared)}" if declared else "it declares none"
    return (f"note: {names} {'is not a param' if len(unknown) == 1 else 'are not params'} of {path} ({has}), "
            "so it does not get " + ("it" if len(unknown) == 1 else "them"))



@dataclass
class Outcome:
    """What one input did: the value of an expression, emitted records, failures, or the error."""

    value: Any = NOTHING
    emitted: list[Any] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    error: FlowError | None = None
    source: str = ""
    left_out: list[LeftOut] = field(default_factory=list)  # definitions of a loaded file that were not loaded
    notes: list[str] = field(default_factory=list)  # what the input did that a user may not expect

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures


class ReplSession:
    """An interactive environment; `execute(text)` runs one complete input."""

    def __init__(self, *, base_dir: Path | None = None, params: dict[str, Any] | None = None,
                 secrets: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 dry_run: bool = False, environment: Environment | None = None,
                 logger: logging.Logger | None = None, masker: Masker | None = None,
                 param_texts: dict[str, str] | None = None) -> None:
        self.environment = environment or Environment()
        self.base_dir = (base_dir or Path.cwd()).resolve()
        self.params = dict(params or {})
        # the command line's --param values as text, for a param whose default is a text (runner.text_params)
        self.param_texts = dict(param_texts or {})
        self.secrets = dict(secrets or {})
        self.env = dict(env or {})
        # one masker for the whole session (a :reset too): the caller masks what it shows with it, and
        # it learns every secret an input reads, from any provider, and each text made from one
        self.masker = masker if masker is not None else Masker()
        self.logger = logger or logging.getLogger("flowlang.repl")
        self.loop = asyncio.new_event_loop()
        self.history: list[list[Kept]] = []  # the statements of the inputs that succeeded, for :save
        self.saved_paths: set[Path] = set()  # the files :save wrote, which it may write again
        self.counter = 0
        self.left_out: list[LeftOut] = []  # what the last definitions_only compile left out
        self.interruptible = False  # the interactive screen turns Ctrl-C handling on
        self._dry_run = dry_run
        self._start()

    # ---- lifecycle ----------------------------------------------------------------------------
    def _start(self) -> None:
        empty = parse(Source("<repl>", ""), "repl")
        self.checker = Checker(empty, self.environment, self.base_dir, frozenset(), repl=True)
        self.checked: CheckedModule = self.checker.run()
        self.program = ProgramCompiler()
        self.compiled = self.program.module(self.checked)
        self.outputs: list[Any] = []
        options = RunOptions(params=self.params, dry_run=self._dry_run, secrets=self.secrets, env=self.env,
                             masker=self.masker)
        self.ctx = RunContext(
            flow="repl", base_dir=self.base_dir, options=options, env=self.env or {},
            job={"id": None, "flow": "repl", "started_at": None, "last_success_at": None,
                 "dry_run": self._dry_run, "params": dict(self.params)},
            state={}, emit=self.outputs.append, on_failure=lambda failure: None, logger=self.logger)
        self.ctx.log_failures = False  # each input's failed records are shown with it (Outcome.failures)
        self.out = counted(self.ctx, self.outputs.append)
        self.frame = Frame([], None, self.ctx, self.out)
        self.ctx.frames = [self.frame]

    def reset(self) -> None:
        """Forget everything (connections are closed)."""
        self.close_connections()
        self.history.clear()
        self._start()

    def close_connections(self) -> None:
        from flowlang.runner import close_all

        self.loop.run_until_complete(close_all(self.ctx))

    def close(self) -> None:
        self.close_connections()
        self.loop.close()

    @property
    def dry_run(self) -> bool:
        return self._dry_run

    @dry_run.setter
    def dry_run(self, value: bool) -> None:
        self._dry_run = value
        self.ctx.dry_run = value
        self.ctx.options = replace(self.ctx.options, dry_run=value)
        self.ctx.job["dry_run"] = value

    # ---- parsing ------------------------------------------------------------------------------
    def source(self, text: str, at: tuple[str, int] | None = None) -> Source:
        """An input's source: `<input N>`, or the name and first line it has where it was read (`<stdin>`
        and its line there, when the statements come from a pipe)."""
        self.counter += 1
        if at is not None:
            return Source(at[0], text, first_line=at[1])
        return Source(f"<input {self.counter}>", text)

    def is_complete(self, text: str) -> bool:
        """False while the parser says more lines could finish the input (open block or bracket)."""
        if not text.strip():
            return True
        try:
            parse(Source("<input>", text), "repl")
        except FlowSyntaxError as e:
            return not e.incomplete
        return True

    def breaks_inside_a_block(self, text: str) -> bool:
        """True when a complete input has a syntax error and a block of it is still open at its end
        (a body line that does not parse): the lines up to that block's `end` belong to the failed
        input, and are not statements of their own (a `send` of the body would run once, at the top)."""
        try:
            parse(Source("<input>", text), "repl")
        except FlowSyntaxError as e:
            return not e.incomplete and blocks_open_at_end(text) > 0
        return False

    # ---- running ------------------------------------------------------------------------------
    def _check(self, module: ast.Module) -> None:
        """Check new statements; on error nothing they declared is kept."""
        point = self.checker.checkpoint()
        self.checker.more(module)
        if self.checker.diagnostics:
            diagnostics = list(self.checker.diagnostics)
            self.checker.rollback(point)
            raise ScriptError(diagnostics)

    def compile(self, text: str, definitions_only: bool = False,
                at: tuple[str, int] | None = None) -> tuple[Step, ast.Module]:
        # a flow file is parsed as one (its `trigger` lines, which the REPL's inputs cannot hold, with it)
        module = parse(self.source(text, at), "module" if definitions_only else "repl")
        self.left_out = []
        if definitions_only:  # a flow file: its definitions, not its loops and I/O
            module, self.left_out = definitions(module)
        self._check(module)
        session_source = self.checked.source
        self.checked.source = module.source  # the places its steps report (a failed record's) are in this input
        try:
            step = self.program.extra(self.checked, module.statements)
            for stmt in module.statements:  # now, not at its first call, which may be a later input
                if isinstance(stmt, ast.Function) and stmt.name in self.checked.own_functions:
                    self.program.functions.get(self.checked.own_functions[stmt.name])
        finally:
            self.checked.source = session_source
        self.frame.ensure(self.checked.frame.size)
        for compiled in self.program.modules[len(self.ctx.frames):]:  # files this input imports
            self.ctx.frames.append(Frame([None] * compiled.checked.frame.size, None, self.ctx, self.out))
        return step, module

    def execute(self, text: str, definitions_only: bool = False,
                on_step: Callable[[asyncio.Task[Any]], None] | None = None,
                at: tuple[str, int] | None = None) -> Outcome:
        """Run one complete input. `on_step` gets the running task (to cancel it on Ctrl-C); `at` names
        where the input was read (see source())."""
        outcome = Outcome(source=text)
        point = self.checker.checkpoint()
        earlier = {name: b.slot for name, b in self.scope.names.items() if b.kind is Kind.CONNECTION}
        try:
            step, module = self.compile(text, definitions_only, at)
            outcome.left_out = self.left_out
            outcome.notes = self._set_new_params(module)
            replaced = list(self.checker.replaced)
        except FlowError as e:
            outcome.error = e
            self.checker.rollback(point)  # a param refused its --param value declares nothing
            return outcome
        self.ctx.last_value = NOTHING
        before = len(self.ctx.failures)
        self.outputs.clear()
        try:
            self._run(step, on_step)
        except FlowRuntimeError as e:
            outcome.error = self._at_input(e, module)
        except FlowError as e:
            outcome.error = e
        except asyncio.CancelledError:
            outcome.error = FlowRuntimeError("cancelled (Ctrl-C)", "internal")
        outcome.value = self.ctx.last_value
        outcome.emitted = list(self.outputs)
        outcome.failures = self.ctx.failures[before:]
        if outcome.value is not NOTHING and isinstance(outcome.value, RecordStream):
            outcome.value = self.loop.run_until_complete(outcome.value.materialize(limit=1000))
        if outcome.error is None:
            self._keep(module, replaced)
            outcome.notes += self._replaced(module, replaced, earlier)
            if outcome.value is None:
                outcome.notes += self._missing_field(module)
        else:  # an input that fails declares nothing: `let z = 1 / 0` leaves no z
            self.checker.rollback(point)
        return outcome

    def _missing_field(self, module: ast.Module) -> list[str]:
        """A note when an expression typed to see a field (`rows[0].emial`) was null because the object has
        no such field while it has a close one: the REPL showed `null` and no more, where a run warns."""
        stmt = module.statements[-1] if len(module.statements) == 1 else None
        if not (isinstance(stmt, ast.ExprStmt) and isinstance(stmt.expr, ast.Field)):
            return []
        obj = stmt.expr.obj
        probe: ast.Expr = obj
        while isinstance(probe, ast.Field | ast.Index):  # only a cheap object (a name, its fields and items)
            if isinstance(probe, ast.Index) and not isinstance(probe.index, ast.Literal):
                return []
            probe = probe.obj
        if not isinstance(probe, ast.Name):
            return []
        text = module.source.text[obj.span.start:obj.span.end]
        try:
            looked = self.execute(text)
        except Exception:  # a note is never worth an error of its own
            return []
        value = looked.value
        name = stmt.expr.name
        if looked.error is not None or not isinstance(value, dict) or name in value:
            return []
        from flowlang.diagnostics import closest

        meant = closest(name, [k for k in value if isinstance(k, str)])
        if meant is None:
            return []
        shown = ", ".join(list(value)[:8]) + (", ..." if len(value) > 8 else "")
        return [f"note: {text} has no field '{name}' (it has {shown}); did you mean '{meant}'?"]

    def _keep(self, module: ast.Module, replaced: list[str]) -> None:
        """What :save keeps of an input: its statements but the expressions typed to see a value (a
        line of only an expression is not a statement a .flow file may hold). A function or a `use`
        defined again takes the place of the earlier one, so the saved file defines each once."""
        text = module.source.text
        kept: list[Kept] = []
        for stmt in module.statements:
            if isinstance(stmt, ast.ExprStmt):
                continue
            entry = Kept(text[stmt.span.start:stmt.span.end].rstrip("\n"), defines(stmt))
            again = entry.defines is not None and (entry.defines[1] in replaced or entry.defines[0] == "import")
            earlier = self._kept(entry.defines) if again else None
            if earlier is not None:
                earlier.text = entry.text
            else:
                kept.append(entry)
        if kept:
            self.history.append(kept)

    def _kept(self, key: tuple[str, str] | None) -> Kept | None:
        return next((k for entries in self.history for k in entries if k.defines == key), None)

    def saved_text(self) -> str:
        """The inputs that succeeded, as the text of a flow (:save)."""
        return "\n".join(k.text for entries in self.history for k in entries)

    def _replaced(self, module: ast.Module, replaced: list[str], earlier: dict[str, int]) -> list[str]:
        """One note naming what this input defined again (by a definition or an `import` read again), and
        which earlier functions still call an old one; an old connection is closed."""
        items, still = [], []
        written = {stmt.name: i for i, stmt in enumerate(module.statements)
                   if isinstance(stmt, ast.Function | ast.Use | ast.Param)}
        for name in sorted(replaced, key=lambda n: written.get(n, len(module.statements))):  # as typed
            binding = self.scope.names.get(name)
            kind = binding.kind if binding is not None else None
            if kind is Kind.CONNECTION:
                items.append(f"connection {name}")
                self._close_slot(earlier.get(name))
                continue
            if kind is Kind.PARAM:
                items.append(f"param {name}")
                continue
            items.append(f"function {name}")
            new = self.checker.functions.get(name)
            callers = sorted(other for other, info in self.checked.own_functions.items()
                             if other != name and info is not new and info.node not in module.statements
                             and name in names_read(info.node.body))
            if callers:
                one = len(callers) == 1
                still.append(f"{', '.join(callers)}, defined before, still call{'s' if one else ''} the old "
                             f"{name}: define {'it' if one else 'them'} again to use the new one")
        if not items:
            return []
        closed = " (the old connection is closed)" if any(i.startswith("connection ") for i in items) else ""
        note = (f"note: {items[0]} is defined again: what runs from here on uses the new one{closed}"
                if len(items) == 1 else
                f"note: {', '.join(items)} are defined again: what runs from here on uses the new ones{closed}")
        return [note + "".join(f"; {s}" for s in still)]

    def _close_slot(self, slot: int | None) -> None:
        """Close the connection a slot held, unless another name of the session holds it too."""
        if slot is None or slot >= len(self.frame.slots):
            return
        old = self.frame.slots[slot]
        self.frame.slots[slot] = None
        if old is None or any(value is old for value in self.frame.slots) \
                or not any(conn is old for conn in self.ctx.connections):
            return
        self.ctx.connections[:] = [conn for conn in self.ctx.connections if conn is not old]
        try:
            self.loop.run_until_complete(old.close())
        except Exception as e:  # closing must not end the session
            self.ctx.log("warn", f"closing {old.name} failed: {e}")

    @staticmethod
    def _at_input(error: FlowRuntimeError, module: ast.Module) -> FlowRuntimeError:
        """A run-time error of this input is shown on its own line: its statements run in the
        session's module (named <repl>), but their spans are places in the input's text."""
        if error.source is not None and error.source.name == "<repl>" and error.span is not None \
                and error.span.end <= len(module.source.text):
            error.source = module.source
        return error

    def _set_new_params(self, module: ast.Module) -> list[str]:
        """Give the new params their --param values; a note for each one without a value or a default
        (a run would stop for it; here it is null)."""
        notes = []
        for stmt in module.statements:
            if isinstance(stmt, ast.Param) and stmt.name in self.params:
                slot = self.checked.resolution.slots[(stmt, 0)]  # as a run takes it: a time read, a kind refused
                given = self.param_texts[stmt.name] if stmt.name in self.param_texts and text_params([stmt]) \
                    else self.params[stmt.name]
                self.frame.slots[slot] = given_param(stmt.name, stmt.default, given)
            elif isinstance(stmt, ast.Param) and stmt.default is None:
                notes.append(f"note: param {stmt.name} is not given, so it is null here (a run would stop for "
                             f"it): flowlang repl --param {stmt.name}=VALUE")
        return notes

    def _run(self, step: Step, on_step: Callable[[asyncio.Task[Any]], None] | None) -> None:
        """Run a step; a record stream that an expression needs in memory is read, then the input
        runs again from the start (REPL inputs are single statements). With `interruptible`, Ctrl-C
        stops a loop at its next record and cancels what is waiting (a request)."""
        self.ctx.stop = StopFlag()
        derived = DERIVED.set(self.masker.learn_derived)  # copied into the tasks made below
        try:
            self._run_steps(step, on_step)
        finally:
            DERIVED.reset(derived)

    def _run_steps(self, step: Step, on_step: Callable[[asyncio.Task[Any]], None] | None) -> None:
        for _ in range(10):
            task = self.loop.create_task(self._with_params(step))
            if on_step is not None:
                on_step(task)
            previous = self._watch_ctrl_c(task) if self.interruptible else None
            try:
                self.loop.run_until_complete(task)
                return
            except NeedsMaterialization as e:
                self.loop.run_until_complete(self._materialize(e.stream))
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)

    def _watch_ctrl_c(self, task: asyncio.Task[Any]) -> Any:
        """A Python-level SIGINT handler: it runs between bytecodes, so even a loop that never awaits
        sees the stop at its next record; a waiting request is cancelled."""
        def interrupt(signum: int, frame: Any) -> None:
            self.ctx.stop.request("Ctrl-C")
            self.loop.call_soon_threadsafe(task.cancel)
        try:
            return signal.signal(signal.SIGINT, interrupt)
        except ValueError:  # not the main thread
            return None

    async def _with_params(self, step: Step) -> None:
        for p in self.compiled.params:
            if self.frame.slots[p.slot] is None and p.name not in self.params and p.default is not None:
                self.frame.slots[p.slot] = p.default(self.frame)
        try:
            await run_step(step, self.frame)
        finally:
            self.ctx.flush_writes()  # what an input sent to a file is in it when the prompt comes back

    async def _materialize(self, stream: RecordStream) -> None:
        records = await stream.materialize()
        for i, value in enumerate(self.frame.slots):
            if value is stream:
                self.frame.slots[i] = records

    # ---- files ------------------------------------------------------------------------------
    def load_file(self, path: Path) -> Outcome:
        """Definitions of a flow (params, connections, imports, functions, lets), without its loops. A
        file that cannot be read is a UsageError."""
        text = read_flow_text(path)
        old = self.base_dir
        self.base_dir = path.resolve().parent
        self.checker.base_dir = self.base_dir
        try:
            outcome = self.execute(text, definitions_only=True, at=(display_name(path), 1))
        finally:
            self.base_dir = old
            self.checker.base_dir = old
        if outcome.error is None:
            session_params = {name for name, b in self.scope.names.items() if b.kind is Kind.PARAM}
            own = [s.name for s in parse(Source(display_name(path), text), "module").statements
                   if isinstance(s, ast.Param)]
            note = unknown_params({k: v for k, v in self.params.items() if k not in session_params}, own,
                                  Path(display_name(path)))
            outcome.notes += [note] if note else []
        return outcome

    # ---- introspection (for :vars and completion) -----------------------------------------------
    @property
    def scope(self) -> Scope:
        return self.checker.scope

    def variables(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, binding in self.scope.names.items():
            if binding.kind is Kind.CONNECTION:
                continue
            out[name] = self.frame.slots[binding.slot] if binding.slot < len(self.frame.slots) else None
        return out

    def connections(self) -> dict[str, str]:
        return {name: (b.connector.name if b.connector else "?") for name, b in self.scope.names.items()
                if b.kind is Kind.CONNECTION}

    def functions(self) -> list[str]:
        return sorted(self.checker.functions)
