"""Replay tests: one flow against one cassette (`replay`), and test folders (`<name>/flow.toml`)
found under a directory (`discover`), as `flowlang test` and the pytest plugin run them.

A test folder's flow.toml names the flow (relative to the folder), and may name the cassette
folder (default: the test folder itself) and params (default: those the cassette was recorded with):

    flow = "../../sync_orders.flow"
    cassette = "."
    [params]
    since = "2024-05-01"
    [env]                        # over the environment, for the flow's env.NAME
    REGION = "eu"
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlang.errors import FlowRuntimeError, UsageError
from flowlang.runtime.masking import Masker
from flowlang.runtime.values import from_python
from flowlang.syncrun import run_sync
from flowlang.testing.bindings import stand_in_bindings
from flowlang.testing.cassette import Cassette
from flowlang.testing.cassette_values import restored, stored
from flowlang.testing.destinations import operation_of
from flowlang.testing.replayer import Replayer

log = logging.getLogger("flowlang.testing")

if TYPE_CHECKING:
    from flowlang.api import Flow
    from flowlang.runner import Result

CASE_FILE = "flow.toml"


@dataclass
class ReplayCase:
    """One test folder."""

    name: str
    folder: Path
    flow: Path
    cassette: Path
    params: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why its flow.toml cannot be read: the folder fails alone
    env: dict[str, str] = field(default_factory=dict)  # its [env]: over the environment, for env.NAME


@dataclass
class ReplayOutcome:
    """What one replay found: ok when nothing differed from the cassette."""

    name: str
    problems: list[str]
    result: Result
    replayer: Replayer
    updated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def outputs(self) -> list[Any]:
        return self.replayer.outputs

    @property
    def writes(self) -> dict[str, list[dict[str, Any]]]:
        """What the run would have sent, per destination `connection.operation`, in the order it made them."""
        out: dict[str, list[dict[str, Any]]] = {}
        for entry in self.replayer.made.of_type("write"):
            out.setdefault(operation_of(entry), []).append(entry)
        return out


class StandInSecrets:
    """A replay talks to no one: `secret.NAME` is a stand-in, masked like the real value was."""

    label = "the replay's stand-ins"

    def where(self, name: str) -> str:
        return f"a stand-in for {name}"

    def get(self, name: str) -> str | None:
        # one word, no separator: split() of it gives it whole, no common word that masking would hide
        return "flowlangstandin" + "".join(c for c in name if c.isalnum())


def stand_ins(secrets: Any, env: Any) -> list[Any]:
    return [StandInSecrets()]


def read_case(path: Path) -> ReplayCase:
    """A flow.toml; a mistake in it is a UsageError naming the file (bad TOML at its line and column)."""
    from flowlang.connectors.declarative.loader import toml_problem

    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM first (an editor on Windows) is read
        data = tomllib.loads(text)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(toml_problem(str(path), text, e)) from None
    except RecursionError:
        raise UsageError(f"{path} is not valid TOML: it nests too deeply") from None
    flow = data.get("flow")
    if not isinstance(flow, str) or not flow:
        raise UsageError(f'{path}: needs flow = "path/to/the.flow" (relative to its folder)')
    cassette = data.get("cassette", ".")
    params = data.get("params", {})
    env = data.get("env", {})
    if not isinstance(cassette, str) or not isinstance(params, dict):
        raise UsageError(f"{path}: cassette is a folder name and [params] a table")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise UsageError(f'{path}: [env] is a table of texts (REGION = "eu")')
    unknown = sorted(set(data) - {"flow", "cassette", "params", "env"})
    if unknown:
        raise UsageError(f"{path}: unknown key {', '.join(unknown)} (keys: flow, cassette, params, env)")
    folder = path.parent
    return ReplayCase(folder.name, folder, (folder / flow).resolve(), (folder / cassette).resolve(), params,
                      env=env)


def discover(root: Path) -> list[ReplayCase]:
    """Every test folder under root (root itself may be one); one whose flow.toml cannot be read is a
    case with its `problem`, so that it fails alone."""
    if not root.is_dir():
        raise UsageError(f"no such folder: {root}")
    cases = [readable_case(p) for p in sorted(root.rglob(CASE_FILE)) if ".flowlang" not in p.parts]
    for case in cases:  # named by its place under root: two folders called smoke (a/smoke, b/smoke) are two names
        below = case.folder.relative_to(root)
        case.name = below.as_posix() if below.parts else root.resolve().name
    return cases


def readable_case(path: Path) -> ReplayCase:
    try:
        return read_case(path)
    except UsageError as e:
        return ReplayCase(path.parent.name, path.parent, path, path.parent, problem=e.message)


async def replay_async(flow: Flow, cassette_dir: Path, params: dict[str, Any] | None = None, *,
                       update: bool = False, name: str | None = None,
                       env: dict[str, str] | None = None) -> ReplayOutcome:
    """Run `flow` against the cassette in cassette_dir, offline; with update, rewrite its expectations.
    `env.NAME` reads the environment (with `env` over it), as a run does: the cassette does not hold it."""
    from flowlang.runner import RunSetup

    cassette = Cassette.load(cassette_dir)
    masker = Masker()
    replayer = Replayer(cassette, masker.mask)
    recorded = cassette.run
    given = dict(restored(recorded.get("params") or {}))
    given.update({k: from_python(v) for k, v in (params or {}).items()})
    limit = recorded.get("limit")  # recorded with --limit: the cassette holds that many records
    bindings = stand_in_bindings(flow, cassette)  # a host binding's calls are answered from the cassette
    options = flow.options(given, bindings, restored(recorded.get("input")), masker=masker, tape=replayer,
                           secret_providers=stand_ins, limit=limit if type(limit) is int else None)
    setup = RunSetup(None, collect=True, env={**os.environ, **(env or {})})
    result = await flow.run_job(options, setup, "test")
    problems = replayer.problems()
    error = result.error
    if error is not None and recorded_status(cassette) != "failed" and not any(error is m for m in replayer.misses):
        where = f" at {error.location}" if isinstance(error, FlowRuntimeError) and error.location else ""
        problems.insert(0, f"the run failed{where}: {error.message}")
    was = recorded.get("flow")
    if problems and isinstance(was, str) and was != flow.name:  # a rename alone passes
        problems.insert(0, f"the cassette was recorded from the flow {was!r}, and this flow is {flow.name!r}: "
                           "is it this flow's cassette?")
    if update and replayer.misses:
        problems.append("not updated: the replay made a request the cassette does not hold, and a cassette "
                        f"answers only what was recorded; record again (flowlang run {flow.path or 'FILE'} --record "
                        f"{cassette_dir})")
    outcome = ReplayOutcome(name or flow.name, problems, result, replayer)
    if update and problems and not replayer.misses:
        if params and replayer.made.of_type("run"):  # the expectations are those of these params: keep them
            replayer.made.run["params"] = stored(given)
        replayer.made.save(cassette_dir, masker.mask)
        outcome.updated = True
    return outcome


def recorded_status(cassette: Cassette) -> str | None:
    found = cassette.of_type("result")
    return str(found[-1].get("status")) if found else None


def replay(flow: Flow, cassette_dir: Path, params: dict[str, Any] | None = None, *,
           update: bool = False, env: dict[str, str] | None = None) -> ReplayOutcome:
    """replay_async() for code without an event loop."""
    return run_sync(replay_async(flow, cassette_dir, params, update=update, env=env), "await replay_async(...)")


async def run_case_async(case: ReplayCase, update: bool = False) -> ReplayOutcome:
    from flowlang.api import load

    return await replay_async(load(case.flow, bindings=()), case.cassette, case.params, update=update, name=case.name,
                              env=case.env)


def run_case(case: ReplayCase, update: bool = False) -> ReplayOutcome:
    return run_sync(run_case_async(case, update), "await run_case_async(...)")


async def record_async(flow: Flow, cassette_dir: Path, params: dict[str, Any] | None = None,
                       bindings: dict[str, Any] | None = None, input: Any = None, **run: Any) -> Result:
    """Run `flow` for real, as flow.run_async does (`run`: its keyword arguments), and write its cassette
    into cassette_dir, as `flowlang run --record` does: with host bindings, their calls are in it too, and
    replay() answers them from it. Every secret the run knows is masked in the cassette."""
    from flowlang.testing.recorder import Recorder, dry_record_refused

    if run.get("dry_run"):
        raise UsageError(dry_record_refused("record()", "dry_run=True"))
    masker = run.pop("masker", None) or Masker()
    recorder = Recorder(Path(cassette_dir), flow.name, dict(params or {}), input, run.get("limit"), masker.mask)
    result = await flow.run_async(params, bindings, input, masker=masker, tape=recorder, **run)
    saved = recorder.save(finished=result.status in ("ok", "partial"))
    if recorder.kept is not None:
        log.warning("the run %s, so %s was left as it was; this run's recording is in %s", result.status,
                    recorder.kept, saved)
    return result


def record(flow: Flow, cassette_dir: Path, params: dict[str, Any] | None = None,
           bindings: dict[str, Any] | None = None, input: Any = None, **run: Any) -> Result:
    """record_async() for code without an event loop."""
    return run_sync(record_async(flow, cassette_dir, params, bindings, input, **run), "await record_async(...)")
