"""The embedding API: load() and compile() give a Flow; Flow.run() / run_async() give a Result.

    flow = flowlang.load("orders.flow")
    result = flow.run(params={"since": "2024-05-01"}, bindings={"crm": client}, input=payload)
    result.ok, result.outputs, result.errors, result.stats
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from flowlang import ast
from flowlang.check import CheckedModule, check_module
from flowlang.compile import CompiledModule, ProgramCompiler, compile_program
from flowlang.environment import Environment, display_name
from flowlang.errors import CheckError, UsageError
from flowlang.flow_file import read_flow_text
from flowlang.runner import CompiledFlow, LoadChild, Result, RunSetup, execute, retry_errors
from flowlang.runtime.limits import Limits, StopFlag
from flowlang.runtime.masking import Masker
from flowlang.runtime.observe import NO_OBSERVER, RunObserver
from flowlang.runtime.run import RunContext, RunOptions
from flowlang.runtime.secrets import SecretProvider, default_chain
from flowlang.runtime.state_folder import state_dir_for
from flowlang.runtime.store import Store
from flowlang.runtime.tape import Tape
from flowlang.runtime.values import TOO_DEEP, from_python
from flowlang.source import Source
from flowlang.syncrun import run_sync
from flowlang.syntax import parse

SecretProviders = Callable[[Mapping[str, str], Mapping[str, str]], list[SecretProvider]]


class Flow:
    """A parsed and checked flow, ready to run any number of times."""

    def __init__(self, module: ast.Module, base_dir: Path, path: Path | None, environment: Environment,
                 bindings: Iterable[str] | None = None) -> None:
        self.module = module
        self.base_dir = base_dir
        self.path = path
        self.environment = environment
        self._checked: dict[frozenset[str] | None, CheckedModule] = {}
        self._compiled: dict[int, tuple[ProgramCompiler, CompiledModule]] = {}
        # without the names of its host bindings, any unknown connection may be one (run() checks again
        # against the bindings it is given, before anything runs)
        self.checked = self.checked_for(None if bindings is None else frozenset(bindings))

    @property
    def source(self) -> Source:
        return self.module.source

    @property
    def name(self) -> str:
        """The flow's name: its `flow "Name"` line, else the file's stem."""
        return self.checked.flow_name

    @property
    def key(self) -> str:
        """What identifies the flow in its state folder (state, jobs, errors, lock)."""
        return self.checked.flow_name

    def checked_for(self, bindings: frozenset[str] | None) -> CheckedModule:
        """Check against these host binding names (None: any unknown connection may be a binding)."""
        found = self._checked.get(bindings)
        if found is None:
            found = check_module(self.module, self.environment, self.base_dir, bindings, self.path)
            self._checked[bindings] = found
        return found

    def compiled_for(self, checked: CheckedModule) -> tuple[ProgramCompiler, CompiledModule]:
        found = self._compiled.get(id(checked))
        if found is None:
            found = self._compiled[id(checked)] = compile_program(checked)
        return found

    def compiled_flow(self, bindings: frozenset[str]) -> CompiledFlow:
        """Checked against these host binding names and compiled, for the runner. A host binding the
        flow calls that run() was not given is an unknown connection whose hint says to give it."""
        try:
            checked = self.checked_for(bindings)
        except CheckError as e:
            hints = {f"unknown connection '{name}'": f"a host binding of this flow: give it to run() as "
                     f"bindings={{'{name}': ...}}" for name in set(self.checked.host_operations) - bindings}
            if not hints:
                raise
            raise CheckError([dataclasses.replace(d, hint=hints[d.message]) if d.message in hints else d
                              for d in e.diagnostics]) from None
        program, compiled = self.compiled_for(checked)
        return CompiledFlow(self.key, self.name, self.path, self.base_dir, program, compiled, checked)

    def params(self) -> list[str]:
        return [p.name for p in self.checked.params]

    # ---- running ---------------------------------------------------------------------------------
    def options(self, params: Mapping[str, Any] | None = None, bindings: Mapping[str, Any] | None = None,
                input: Any = None, dry_run: bool = False, limit: int | None = None,
                secrets: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
                limits: Limits | None = None, masker: Masker | None = None,
                stop: StopFlag | None = None, secret_providers: SecretProviders | None = None,
                tape: Tape | None = None, observer: RunObserver | None = None) -> RunOptions:
        if params is not None and not isinstance(params, Mapping):
            raise UsageError(f"params= takes a mapping of names to values, not {type(params).__name__}")
        if bindings is not None and not isinstance(bindings, Mapping):
            raise UsageError(f"bindings= takes a mapping of names to objects (bindings={{'crm': client}}), "
                             f"not {type(bindings).__name__}")
        for what, given in (("params", params), ("bindings", bindings), ("secrets", secrets), ("env", env)):
            named(what, given)
        if type(dry_run) is not bool:  # dry_run="no" is truthy: a run meant to send nothing would send
            raise UsageError(f"dry_run= takes True or False, not {dry_run!r}")
        for name, text in (env or {}).items():
            if not isinstance(text, str):  # env.NAME is text or null (LANGUAGE.md 3), as os.environ holds
                raise UsageError(f"env: the value of {name!r} must be a string, got {type(text).__name__}")
        if limit is not None and (type(limit) is not int or limit < 0):  # bool too: limit=True is no count
            raise UsageError(f"limit= takes a whole number of 0 or more (records per loop), not {limit!r}")
        converted: dict[str, Any] = {}
        what, root, given = "input=", "input", input  # the argument being converted, for its error
        try:
            for k, v in (params or {}).items():
                what, root, given = f"the param {k}", k, v
                converted[k] = from_python(v)
            what, root, given = "input=", "input", input
            payload = from_python(input)
        except ValueError as e:  # which argument, and where in it: a list of 10,000 records holds the one
            at = _where_refused(given)
            raise UsageError(f"cannot pass {what} to the flow{f' (at {root}{at})' if at else ''}: {e}") from None
        for name, value in (secrets or {}).items():
            if not isinstance(value, str):  # named, never shown; masking and connectors take text
                raise UsageError(f"secrets: the value of {name!r} must be a string, got {type(value).__name__}")
        return RunOptions(params=converted, input=payload, dry_run=dry_run, limit=limit,
                          limits=limits or Limits(), secrets=dict(secrets or {}), env=env,
                          bindings=dict(bindings or {}), masker=masker, stop=stop or StopFlag(),
                          secret_providers=secret_providers or default_chain, tape=tape,
                          observer=observer or NO_OBSERVER)

    def setup(self, state_dir: str | Path | None, on_output: Callable[[Any], None] | None,
              collect: bool, watch: Callable[[RunContext], None] | None = None) -> RunSetup:
        if state_dir is not None and not isinstance(state_dir, str | os.PathLike):
            raise UsageError(f"state_dir= takes a folder's path (str or Path), not {type(state_dir).__name__}")
        if on_output is not None and not callable(on_output):
            raise UsageError(f"on_output= takes a function that gets each emitted value, "
                             f"not {type(on_output).__name__}")
        if type(collect) is not bool:
            raise UsageError(f"collect= takes True or False, not {collect!r}")
        return RunSetup(state_dir_for(self.path, state_dir), on_output, collect, env=dict(os.environ),
                        load_child=child_loader(self.environment), watch=watch)

    async def run_async(
        self,
        params: Mapping[str, Any] | None = None,
        bindings: Mapping[str, Any] | None = None,
        input: Any = None,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        state_dir: str | Path | None = None,
        secrets: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        on_output: Callable[[Any], None] | None = None,
        collect: bool = True,
        masker: Masker | None = None,
        stop: StopFlag | None = None,
        secret_providers: SecretProviders | None = None,
        tape: Tape | None = None,
        kind: str = "run",
        observer: RunObserver | None = None,
        watch: Callable[[RunContext], None] | None = None,
        resume: bool = False,
    ) -> Result:
        """Run the flow once as a job. Script mistakes raise CheckError / UsageError before anything
        runs; a run-level error is in result.error (result.ok is False). `secret_providers` builds the
        chain `secret.NAME` asks (default: `secrets`, then the environment; see flowlang.project).
        `tape` records the run or replays it (flowlang.testing); `kind` is the job's kind; `observer`
        gets the run's events (flowlang.telemetry.otel.Telemetry(...).observer()). `resume` continues the
        last job's checkpoints when it crashed or was interrupted (TESTING.md 4)."""
        if resume and (dry_run or limit is not None or tape is not None):
            raise UsageError("--resume continues a real run from its checkpoint; it cannot be combined with "
                             "--dry-run, --limit or --record")
        options = self.options(params, bindings, input, dry_run, limit, secrets, env, limits, masker, stop,
                               secret_providers, tape, observer)
        options.resume = resume
        return await self.run_job(options, self.setup(state_dir, on_output, collect, watch), kind)

    async def run_job(self, options: RunOptions, setup: RunSetup, kind: str = "run") -> Result:
        """One job from options() and setup() as they are or adjusted (a trigger, no lock): what
        run_async does, for callers that start jobs of their own kind. A setup without a child-flow
        loader gets this flow's."""
        return await execute(self.compiled_flow(frozenset(options.bindings)), options, self.with_loader(setup),
                             kind)

    async def retry_job(self, options: RunOptions, setup: RunSetup,
                        error_id: int | Iterable[int] | None = None) -> Result:
        """retry_async's job, from options() and setup(): all open errors, or the ids given."""
        ids = None if error_id is None else ([error_id] if isinstance(error_id, int) else list(error_id))
        return await retry_errors(self.compiled_flow(frozenset(options.bindings)), options,
                                  self.with_loader(setup), ids)

    def with_loader(self, setup: RunSetup) -> RunSetup:
        """`run "other.flow"` lines load their flows in this flow's environment."""
        if setup.load_child is not None:
            return setup
        return dataclasses.replace(setup, load_child=child_loader(self.environment))

    def run(self, params: Mapping[str, Any] | None = None, bindings: Mapping[str, Any] | None = None,
            input: Any = None, **kw: Any) -> Result:
        """run_async() for code without an event loop."""
        return run_sync(self.run_async(params, bindings, input, **kw))

    async def retry_async(self, error_id: int | Iterable[int] | None = None, *, state_dir: str | Path | None = None,
                          params: Mapping[str, Any] | None = None, bindings: Mapping[str, Any] | None = None,
                          secrets: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
                          on_output: Callable[[Any], None] | None = None, collect: bool = True,
                          stop: StopFlag | None = None, secret_providers: SecretProviders | None = None,
                          observer: RunObserver | None = None,
                          watch: Callable[[RunContext], None] | None = None, dry_run: bool = False,
                          masker: Masker | None = None) -> Result:
        """Run the failed iterations in the error store again (all open ones, or the ids given); those
        that succeed are resolved. With dry_run, show what would be sent and change nothing."""
        options = self.options(params, bindings, None, dry_run, None, secrets, env, None, masker, stop,
                               secret_providers, observer=observer)
        setup = self.setup(state_dir, on_output, collect, watch)
        if setup.state_dir is None:  # each run's store was in memory and ended with it: nothing kept to replay
            raise UsageError(f"{self.name}: a flow compiled from text without state_dir keeps its failed records "
                             "only for the run (in result.errors), so retry() has none to replay; give run() and "
                             "retry() the same state_dir= (or set FLOWLANG_STATE_DIR) to keep them")
        if error_id is not None:
            self.open_errors_named(setup.state_dir, error_ids(error_id))
        return await self.retry_job(options, setup, error_id)

    def open_errors_named(self, state_dir: Path, ids: list[int]) -> None:
        """An id that is no error of the flow's store stops the retry, as `flowlang retry --id` does: before,
        retry(999) (or retry("x")) replayed nothing and said ok."""
        store = Store(state_dir)
        try:
            missing = [i for i in ids if store.get_error(self.key, i) == (None, False)]
        finally:
            store.close()
        if missing:
            raise UsageError(f"no open error {', '.join(str(i) for i in missing)} of {self.name}")

    def retry(self, error_id: int | Iterable[int] | None = None, **kw: Any) -> Result:
        return run_sync(self.retry_async(error_id, **kw), "await flow.retry_async(...)")

    def store(self, state_dir: str | Path | None = None) -> Store:
        """The flow's store (jobs, state, errors); close it when done."""
        return Store(state_dir_for(self.path, state_dir))


def child_loader(environment: Environment) -> LoadChild:
    """How a run loads the flows its `run "other.flow"` lines name: read, checked, compiled."""
    def load_child(path: Path) -> CompiledFlow:
        return load(path, environment=environment, bindings=()).compiled_flow(frozenset())
    return load_child


def load(path: str | Path, *, environment: Environment | None = None, bindings: Iterable[str] | None = None) -> Flow:
    """Read, parse and check a .flow file (CheckError / FlowSyntaxError on mistakes). A connection the
    file names without a `use` line is a host binding given to run() (LANGUAGE.md: load the file, then
    run(bindings={"crm": client})), checked when run() is given its bindings; name them in `bindings` to
    have any other unknown connection reported now, as `flowlang check` does (bindings=() for none)."""
    file = Path(path)
    text = read_flow_text(file)
    env = environment or Environment()
    module = parse(Source(display_name(file), text, str(file.resolve())))
    return Flow(module, file.resolve().parent, file.resolve(), env,
                None if bindings is None else binding_names(bindings))


def compile(text: str, *, name: str = "<flow>", base_dir: str | Path | None = None,
            environment: Environment | None = None, bindings: Iterable[str] | None = None) -> Flow:
    """Parse and check flow text. Connections not opened with `use` are host bindings given to run();
    name them in `bindings` to have any other unknown connection reported now."""
    if not isinstance(text, str):
        raise UsageError(f"compile() takes the flow's text as str, not {type(text).__name__}"
                         + (" (decode the bytes first, or use flowlang.load(path))" if isinstance(text, bytes) else ""))
    if not isinstance(name, str):
        raise UsageError(f"compile() takes name= as text (the name errors show: name='orders'), "
                         f"not {type(name).__name__}")
    if base_dir is not None and not isinstance(base_dir, str | os.PathLike):
        raise UsageError(f"compile() takes base_dir= as a folder's path (str or Path), not {type(base_dir).__name__}")
    env = environment or Environment()
    module = parse(Source(name, text))
    flow = Flow(module, Path(base_dir) if base_dir else Path.cwd(), None, env)
    if bindings is not None:
        flow.checked = flow.checked_for(frozenset(binding_names(bindings)))
    return flow


STORE_IDS = 2**63 - 1  # the largest id the store's integers hold


def error_ids(error_id: int | Iterable[int]) -> list[int]:
    """retry()'s error_id: one id or several, each a whole number of 1 or more. A text (error_id="12")
    was read as the ids '1' and '2' and matched none, 1.5 raised TypeError, True was error 1, and an id past
    the store's integers ended the retry as 'internal error (OverflowError ...)'."""
    if isinstance(error_id, str | bytes) or not isinstance(error_id, int | Iterable):
        raise UsageError(f"error_id= takes an error's id (a whole number) or a list of them, not {error_id!r}")
    ids = [error_id] if isinstance(error_id, int) else list(error_id)
    for i in ids:
        if type(i) is not int or not 1 <= i <= STORE_IDS:
            raise UsageError(f"error_id= takes errors' ids, whole numbers of 1 or more (flowlang errors FILE lists "
                             f"them), not {i!r}")
    return ids


def named(what: str, given: Mapping[str, Any] | None) -> None:
    """The keys of params=, bindings=, secrets= and env= are names (text): params={1: 2} raised
    TypeError from deep inside the run."""
    wrong = [k for k in (given or {}) if not isinstance(k, str)]
    if wrong:
        raise UsageError(f"{what}= takes names as text for its keys, got {wrong[0]!r}")


def binding_names(bindings: Iterable[str]) -> list[str]:
    """The host binding names given to load() or compile(): names, not one text (bindings="crm")."""
    if isinstance(bindings, str):
        raise UsageError(f"bindings takes a list of names (bindings=[{bindings!r}]), not one text")
    names = list(bindings)
    wrong = [n for n in names if not isinstance(n, str)]
    if wrong:
        raise UsageError(f"bindings takes the names of the host bindings as text, got {wrong[0]!r}")
    return names


def _where_refused(value: Any, depth: int = 0) -> str:
    """The path in a host value to the item from_python refuses ("[3].when"), or "" for the value itself:
    asked only once it was refused, one level at a time."""
    if depth > 50:
        return ""
    children: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        children = [(f".{k}" if isinstance(k, str) and k.isidentifier() else f"[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        children = [(f"[{i}]", v) for i, v in enumerate(value)]
    for step, child in children:
        try:  # at its depth, as from_python(value) met it: a cycle ends at 200 levels, not after a walk
            from_python(child, depth + 1)  # of 50,000,000 containers at each level (a minute, then 50 [0]s)
        except ValueError as e:
            return step if str(e) == TOO_DEEP else step + _where_refused(child, depth + 1)
    return ""
