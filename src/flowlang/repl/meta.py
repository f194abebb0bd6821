"""REPL meta-commands (`:help`, `:vars`, ...) as plain functions over a session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flowlang.check.hints import did_you_mean
from flowlang.repl.session import ReplSession
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.values import type_name

HELP = """statements and expressions run as you type them; blocks and brackets continue on the next line.
  :help              this text
  :vars              variables and their values
  :connectors        connections in this session, and every connector available
  :ops NAME          the operations of a connection or connector
  :load FILE         load a flow's params, connections, imports and functions (its loops do not run)
  :run FILE          run a whole flow as a job and show its outputs
  :dry on|off        dry run: reads happen, writes are only logged
  :reset             forget everything
  :save FILE         write the inputs that succeeded as a .flow file
  :quit              leave (Ctrl-D does too)"""


@dataclass
class MetaResult:
    text: str = ""
    quit: bool = False
    ok: bool = True
    value: object = None


def short(value: object, width: int = 60) -> str:
    text = dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_help(session: ReplSession, arg: str) -> MetaResult:
    return MetaResult(HELP)


def cmd_vars(session: ReplSession, arg: str) -> MetaResult:
    values = session.variables()
    if not values:
        return MetaResult("no variables yet")
    return MetaResult("\n".join(f"{name} = {short(v)}  ({type_name(v)})" for name, v in sorted(values.items())))


def cmd_connectors(session: ReplSession, arg: str) -> MetaResult:
    lines = [f"{name} = {kind}(...)" for name, kind in sorted(session.connections().items())]
    registry = session.environment.connectors_for(session.base_dir)
    lines.append("available: " + ", ".join(registry.names()))
    return MetaResult("\n".join(lines))


def cmd_ops(session: ReplSession, arg: str) -> MetaResult:
    name = arg.strip()
    if not name:
        return MetaResult("usage: :ops NAME (a connection or a connector)", ok=False)
    kind = session.connections().get(name, name)
    spec = session.environment.connectors_for(session.base_dir).get(kind)
    if spec is None:
        pool = [*session.connections(), *session.environment.connectors_for(session.base_dir).names()]
        hint = did_you_mean(name, pool)
        return MetaResult(f"no connection or connector '{name}'" + (f"; {hint}" if hint else ""), ok=False)
    lines = []
    for op in sorted(spec.operations.values(), key=lambda o: o.name):
        where = f"  {op.method} {op.path}" if op.method and op.path != "(any)" else ""
        lines.append(f"{op.name}({', '.join(op.params)}){where}  {op.description}".rstrip())
    return MetaResult("\n".join(lines))


def cmd_load(session: ReplSession, arg: str) -> MetaResult:
    path = Path(arg.strip())
    if not path.is_file():
        return MetaResult(f"no such file: {path}", ok=False)
    outcome = session.load_file(path)
    if outcome.error is not None:
        return MetaResult(outcome.error.render(), ok=False)
    return MetaResult(f"loaded {path}: {', '.join(sorted(session.scope.names)) or 'nothing'}")


def cmd_run(session: ReplSession, arg: str) -> MetaResult:
    from flowlang.api import load

    path = Path(arg.strip())
    if not path.is_file():
        return MetaResult(f"no such file: {path}", ok=False)
    flow = load(path, environment=session.environment)
    result = session.loop.run_until_complete(flow.run_async(
        session.params if set(session.params) <= set(flow.params()) else {}, dry_run=session.dry_run,
        secrets=session.secrets))
    lines = [dumps(o) for o in result.outputs[:50]]
    if len(result.outputs) > 50:
        lines.append(f"... {len(result.outputs)} outputs in all")
    lines.append(f"{flow.name}: {result.status}; read {result.stats.read}, sent {result.stats.sent}, "
                 f"failed {result.stats.failed}")
    if result.error is not None:
        lines.append(result.error.render())
    return MetaResult("\n".join(lines), ok=result.ok)


def cmd_dry(session: ReplSession, arg: str) -> MetaResult:
    value = arg.strip().lower()
    if value not in ("on", "off", ""):
        return MetaResult("usage: :dry on|off", ok=False)
    if value:
        session.dry_run = value == "on"
    return MetaResult(f"dry run is {'on' if session.dry_run else 'off'}")


def cmd_reset(session: ReplSession, arg: str) -> MetaResult:
    session.reset()
    return MetaResult("everything is forgotten")


def cmd_save(session: ReplSession, arg: str) -> MetaResult:
    if not arg.strip():
        return MetaResult("usage: :save FILE", ok=False)
    path = Path(arg.strip())
    if path.suffix != ".flow":
        path = path.with_suffix(".flow")
    path.write_text("\n".join(session.history) + "\n", encoding="utf-8")
    return MetaResult(f"saved {len(session.history)} input(s) to {path}")


def cmd_quit(session: ReplSession, arg: str) -> MetaResult:
    return MetaResult(quit=True)


COMMANDS: dict[str, Callable[[ReplSession, str], MetaResult]] = {
    "help": cmd_help, "vars": cmd_vars, "connectors": cmd_connectors, "ops": cmd_ops, "load": cmd_load,
    "run": cmd_run, "dry": cmd_dry, "reset": cmd_reset, "save": cmd_save, "quit": cmd_quit, "q": cmd_quit,
    "exit": cmd_quit,
}


def is_meta(line: str) -> bool:
    return line.lstrip().startswith(":")


def run_meta(session: ReplSession, line: str) -> MetaResult:
    name, _, arg = line.strip()[1:].partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        hint = did_you_mean(name, COMMANDS)
        return MetaResult(f"unknown command :{name}" + (f"; {hint}" if hint else "") + " (:help lists them)",
                          ok=False)
    try:
        return command(session, arg)
    except Exception as e:  # a meta-command must not end the session
        from flowlang.errors import FlowError

        if isinstance(e, FlowError):
            return MetaResult(e.render(), ok=False)
        return MetaResult(f"error: {type(e).__name__}: {e}", ok=False)
