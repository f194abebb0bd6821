"""REPL meta-commands (`:help`, `:vars`, ...) as plain functions over a session."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flowlang.check.hints import did_you_mean
from flowlang.connectors.base import ConnectorSpec, OperationSpec
from flowlang.errors import FlowError, ScriptError
from flowlang.file_replace import replace_text
from flowlang.repl.keyword_help import KEYWORD_HELP
from flowlang.repl.session import ReplSession, unknown_params
from flowlang.runtime.jsoncodec import JsonDataError, dumps
from flowlang.runtime.values import type_name
from flowlang.syntax.format import format_text

# Each command: its usage and what it does (`:help` lists them, `:help :NAME` shows one).
COMMAND_HELP: dict[str, tuple[str, str]] = {
    "help": (":help [NAME]", "this text; with NAME, the help of a builtin, a connector, an operation "
                             "(conn.op or connector.op) or a command"),
    "vars": (":vars", "variables and their values"),
    "connectors": (":connectors", "connections in this session, and every connector available"),
    "ops": (":ops NAME", "the operations of a connection or connector"),
    "load": (":load FILE", "load a flow's params, connections, imports and functions (its loops do not run)"),
    "run": (":run FILE", "run a whole flow as a job and show its outputs"),
    "dry": (":dry on|off", "dry run: reads happen, writes are only logged"),
    "reset": (":reset", "forget everything"),
    "save": (":save FILE", "write the inputs that succeeded as a .flow file"),
    "quit": (":quit", "leave (Ctrl-D does too)"),
}
HELP = "statements and expressions run as you type them; blocks and brackets continue on the next line.\n" + \
    "\n".join(f"  {usage:<18} {text}" for usage, text in COMMAND_HELP.values())


@dataclass
class MetaResult:
    text: str = ""
    quit: bool = False
    ok: bool = True
    value: object = None


def short(value: object, mask: Callable[[str], str], width: int = 60) -> str:
    """The value's JSON, its secrets masked before it is cut (a cut secret is no longer found whole)."""
    try:
        text = mask(dumps(value))
    except JsonDataError as e:  # nested hundreds deep: `:vars` lists the others
        return f"({e})"
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_help(session: ReplSession, arg: str) -> MetaResult:
    """`:help`, or `:help NAME`: a command, a builtin, a connection or connector, an operation."""
    name = arg.strip()
    if not name:
        return MetaResult(HELP)
    command = name.lstrip(":")
    if name.startswith(":") or (command in COMMAND_HELP and session.environment.builtins.get(command) is None):
        if command in COMMAND_HELP:
            usage, text = COMMAND_HELP[command]
            return MetaResult(f"{usage}  {text}")
        hint = did_you_mean(command, COMMAND_HELP)
        return MetaResult(f"no command :{command}" + (f"; {hint}" if hint else ""), ok=False)
    registry = session.environment.connectors_for(session.base_dir)
    head, dot, op = name.partition(".")
    if dot:
        kind = session.connections().get(head, head)
        spec = registry.get(kind)
        if spec is None:
            return MetaResult(f"no connection or connector '{head}'"
                              + _hint(head, [*session.connections(), *registry.names()]), ok=False)
        found = spec.operations.get(op)
        if found is None:
            return MetaResult(f"{spec.name} has no operation '{op}'" + _hint(op, spec.operations)
                              + f" (its operations: {', '.join(sorted(spec.operations))})", ok=False)
        return MetaResult(operation_help(spec, found))
    builtin = session.environment.builtins.get(name)
    if builtin is not None:
        return MetaResult(f"{builtin.signature()}\n{builtin.help}".rstrip())
    connection = session.connections().get(name)
    connector = registry.get(connection or name)
    if connector is not None:
        text = connector_help(connector)
        return MetaResult(f"{name} = {connector.name}(...), a connection of this session\n{text}"
                          if connection else text)
    if name in KEYWORD_HELP:
        form, text = KEYWORD_HELP[name]
        return MetaResult(f"{form}\n{text}")
    pool = [*session.environment.builtins.names(), *session.connections(), *registry.names(),
            *(f":{c}" for c in COMMAND_HELP), *KEYWORD_HELP]
    return MetaResult(f"no builtin, keyword, connection, connector or command '{name}'" + _hint(name, pool),
                      ok=False)


def _hint(name: str, pool: Iterable[str]) -> str:
    hint = did_you_mean(name, pool)
    return f"; {hint}" if hint else ""


def connector_help(spec: ConnectorSpec) -> str:
    """A connector's title, docs, configuration keys and operations, one a line."""
    lines = [f"{spec.name}: {spec.title} ({spec.origin})"]
    if spec.docs:
        lines.append(spec.docs)
    lines.append(f"use NAME = {spec.name}(key: value, ...), with:" if spec.config else "no configuration")
    for key in spec.config:
        marks = ", ".join(m for m, on in (("required", key.required), ("secret", key.secret)) if on)
        lines.append(f"  {key.name}{f' ({marks})' if marks else ''}  {key.description}".rstrip())
    lines.append("operations (:help " + spec.name + ".NAME for one):")
    for op in sorted(spec.operations.values(), key=lambda o: o.name):
        lines.append(f"  {op.name}({', '.join(op.params)})  {op.description}".rstrip())
    return "\n".join(lines)


def operation_help(spec: ConnectorSpec, op: OperationSpec) -> str:
    """One operation: its call, method and path, what it does, its keywords and how it sends or reads."""
    lines = [f"{spec.name}.{op.name}({', '.join(op.params)})"
             + (f"  {op.method} {op.path}" if op.method and op.path and op.path != "(any)" else "")]
    if op.description:
        lines.append(op.description)
    keywords = sorted(set(op.keywords or ()) - set(op.params))
    if keywords or op.keywords is None:
        lines.append("keywords: " + ", ".join(keywords + (["any"] if op.keywords is None else [])))
    if op.required:
        lines.append("required: " + ", ".join(op.required))
    notes = [text for text, on in (("changes data (not sent in a dry run)", op.changes_data),
                                   ("the default for send", op.name == spec.default_write),
                                   (f"takes a batch (at most {op.max_batch})" if op.max_batch else "takes a batch",
                                    op.takes_batch),
                                   ("a paginated stream (read as `for each` goes)", op.returns_stream)) if on]
    if notes:
        lines.append("; ".join(notes))
    return "\n".join(lines)


def cmd_vars(session: ReplSession, arg: str) -> MetaResult:
    values = session.variables()
    if not values:
        return MetaResult("no variables yet")
    mask = session.masker.mask
    return MetaResult("\n".join(f"{name} = {short(v, mask)}  ({type_name(v)})" for name, v in sorted(values.items())))


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


def not_a_flow_file(path: Path, command: str) -> str:
    if not str(path) or str(path) == ".":
        return f"name a flow file: :{command} FILE"
    if path.is_dir():
        return f"{path} is a folder, not a flow file"
    return f"no such file: {path}"


def cmd_load(session: ReplSession, arg: str) -> MetaResult:
    path = Path(arg.strip())
    if not path.is_file():
        return MetaResult(not_a_flow_file(path, "load"), ok=False)
    outcome = session.load_file(path)
    if outcome.error is not None:
        return MetaResult(outcome.error.render(), ok=False)
    notes = "".join("\n" + note for note in [left.note() for left in outcome.left_out] + outcome.notes)
    return MetaResult(f"loaded {path}: {', '.join(sorted(session.scope.names)) or 'nothing'}{notes}")


def cmd_run(session: ReplSession, arg: str) -> MetaResult:
    from flowlang.api import load

    path = Path(arg.strip())
    if not path.is_file():
        return MetaResult(not_a_flow_file(path, "run"), ok=False)
    flow = load(path, environment=session.environment, bindings=())
    declared = flow.params()
    given = {name: value for name, value in session.params.items() if name in declared}
    result = session.loop.run_until_complete(flow.run_async(
        given, dry_run=session.dry_run,
        secrets=session.secrets, masker=session.masker))  # the session learns the run's secrets as it reads them
    mask = session.masker
    lines = [note for note in [unknown_params(session.params, declared, path)] if note]
    lines += [mask.mask(dumps(mask.mask_value(o))) for o in result.outputs[:50]]  # as a run's stdout masks them
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
    if path.is_dir():  # '/tmp' became /tmp.flow, a file beside the folder
        return MetaResult(f"cannot save to {path}: it is a folder; give a file name (:save {path / 'session.flow'})",
                          ok=False)
    if path.suffix != ".flow":
        path = path.with_suffix(".flow")
    if path.exists() and path.resolve() not in session.saved_paths:
        # a flow file of the user's (one :load read, whose loops the session never held) was replaced whole
        return MetaResult(f"cannot save to {path}: the file exists and this session did not write it; give "
                          "another name, or remove the file first", ok=False)
    text = session.saved_text() + "\n"
    try:
        text = format_text(text, path.name)  # indented as `flowlang fmt` does, whatever was typed
    except FlowError:  # pragma: no cover - each input parsed on its own; kept as typed
        pass
    masked = session.masker.mask(text)  # a secret's text typed into an input never reaches a file
    try:
        replace_text(path, masked)  # a full disk leaves the file saved before as it was
    except OSError as e:
        return MetaResult(f"cannot save to {path}: {e.strerror or e}", ok=False)
    session.saved_paths.add(path.resolve())
    note = ("; an input held the text of a secret, saved as ***: read it with secret.NAME there"
            if masked != text else "")
    return MetaResult(f"saved {len(session.history)} input(s) to {path}{note}{saved_problem(session, text, path)}")


def saved_problem(session: ReplSession, text: str, path: Path) -> str:
    """Each input checked in the session, but together they may not: a connection opened again with
    another connector after statements that used it (the file opens it once, the last way). The first
    problem of the saved file, or ''."""
    from flowlang.api import compile

    try:
        compile(text, name=str(path), base_dir=session.base_dir, environment=session.environment)
    except FlowError as e:
        first = e.diagnostics[0].headline() if isinstance(e, ScriptError) and e.diagnostics else e.message
        return f"\nnote: the file does not check as saved ({first}): edit it there"
    return ""


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
        if isinstance(e, FlowError):
            return MetaResult(e.render(), ok=False)
        return MetaResult(f"error: {type(e).__name__}: {e}", ok=False)
