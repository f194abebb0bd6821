"""`flowlang check PATH...`: parse and check flows (files, folders, `-` for stdin) without running
them; report as text, JSON lines or GitHub workflow annotations; with --secrets, verify every secret
the flows read is found."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from flowlang.api import Flow, compile, load
from flowlang.check.secret_names import defaulted_secrets, secret_uses
from flowlang.check.shapes import shape_warnings
from flowlang.cli.console import Terminal
from flowlang.cli.options import flow_paths, read_secrets
from flowlang.diagnostics import Diagnostic
from flowlang.environment import Environment
from flowlang.errors import ScriptError
from flowlang.project import load_project
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.secrets import SecretChain
from flowlang.status import ExitStatus


def cmd_check(args: argparse.Namespace, terminal: Terminal) -> int:
    env = Environment()
    fmt = getattr(args, "output_format", "text")
    paths = flow_paths(args.files)
    failed = 0
    names: dict[tuple[Path, str], str] = {}  # (the folder, the flow's name) -> the file that has it
    for path in paths:
        try:
            flow = _load(path, env, terminal)
            problems = _missing_secrets(flow, args, terminal) if args.secrets is not None else []
            problems.extend(_same_name(flow, path, names))
        except ScriptError as e:
            failed += 1
            _report(terminal, fmt, list(e.diagnostics), e.render())
            continue
        if problems:
            failed += 1
            _report(terminal, fmt, problems, "\n\n".join(d.render() for d in problems))
        else:
            warnings = [*flow.checked.warnings, *shape_warnings(flow.checked), *_served_warnings(flow)]
            if fmt != "text":
                _report(terminal, fmt, warnings, "")  # JSON lines or annotations of severity warning
                continue
            if terminal.json_lines:
                _report(terminal, fmt, warnings, "")
            else:
                for warning in warnings:
                    terminal.error(warning.render())
            terminal.message(f"{path}: ok ({flow.name})", "green")
    if failed:
        files = f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
        terminal.error(f"{failed} of {files} {'has' if failed == 1 else 'have'} errors")
        return int(ExitStatus.INVALID)
    return int(ExitStatus.OK)


def _load(path: str, env: Environment, terminal: Terminal) -> Flow:
    if path == "-":
        from flowlang.cli.stdin_flow import refuse_unnamed_kept

        flow = compile(terminal.read_stdin(), name="<stdin>", environment=env, bindings=())
        refuse_unnamed_kept(flow.module)  # as `flowlang run -` refuses it
        return flow
    return load(path, environment=env, bindings=())


def _served_warnings(flow: Flow) -> list[Diagnostic]:
    """What `flowlang serve` would refuse in a flow with triggers that a run takes (a param without default),
    and what it warns of (a webhook flow's file in overwrite mode)."""
    if not flow.checked.triggers:
        return []
    from flowlang.diagnostics import Severity
    from flowlang.serve.flows import overwritten_files, params_without_default

    return [*params_without_default(flow, Severity.WARNING), *overwritten_files(flow)]


def _same_name(flow: Flow, path: str, names: dict[tuple[Path, str], str]) -> list[Diagnostic]:
    """A flow with the name of another flow of its folder checked before it (serve.flows.same_name)."""
    from flowlang.serve.flows import same_name

    if path == "-":
        return []
    other = names.setdefault((Path(path).resolve().parent, flow.key), Path(path).name)
    return [] if other == Path(path).name else [same_name(flow, other)]


def _missing_secrets(flow: Flow, args: argparse.Namespace, terminal: Terminal) -> list[Diagnostic]:
    """A diagnostic at the first read of each secret no provider has (values are never shown)."""
    project = load_project(args.config, flow.base_dir)
    chain = SecretChain(project.secret_providers(read_secrets(args.secrets), dict(os.environ)),
                        on_value=terminal.masker.add)
    problems = []
    defaulted = defaulted_secrets(flow.checked)  # `secret.NAME ?? "d"` only: not set is no mistake
    for name, (source, span) in secret_uses(flow.checked).items():
        found = chain.locate(name)
        if found.found_in is None and (found.problem is not None or name not in defaulted):
            why = f"cannot be read: {found.problem}" if found.problem else "is not found"
            problems.append(Diagnostic("secret", f"secret '{name}' {why}", source, span,
                                       f"asked: {'; '.join(found.asked)}"))
    return problems


def _report(terminal: Terminal, fmt: str, diagnostics: list[Diagnostic], text: str) -> None:
    if fmt == "text" and terminal.json_lines:  # one JSON object a mistake, at its level, with its place
        for d in sorted(diagnostics, key=lambda d: (d.source.name, d.span.start)):
            style = "bold red" if d.severity.value == "error" else "yellow"
            terminal.message(d.render(), style, {"location": d.source.location(d.span)})
        return
    if fmt == "text":
        terminal.message(text)
        return
    for d in sorted(diagnostics, key=lambda d: (d.source.name, d.span.start)):
        if fmt == "github":
            terminal.out(github_annotation(d))
        else:
            terminal.json_out(dumps(as_json(d)))


def as_json(d: Diagnostic) -> dict[str, object]:
    end_line, end_col = d.source.line_col(max(d.span.start, d.span.end))
    return {"file": d.source.name, "line": d.line, "column": d.column, "end_line": end_line,
            "end_column": end_col, "severity": d.severity.value, "code": d.code, "message": d.message,
            "hint": d.hint}


def github_annotation(d: Diagnostic) -> str:
    """A workflow command GitHub Actions shows on the pull request's line
    (docs.github.com: workflow-commands, "Setting an error message")."""
    end_line, end_col = d.source.line_col(max(d.span.start, d.span.end))
    props = {"file": _github_path(d.source.name), "line": str(d.line), "col": str(d.column),
             "endLine": str(end_line), "endColumn": str(end_col), "title": f"flowlang {d.code}"}
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    kind = "error" if d.severity.value == "error" else "warning"
    return f"::{kind} " + ",".join(f"{k}={_escape(v, True)}" for k, v in props.items()) + f"::{_escape(message)}"


def _github_path(name: str) -> str:
    return Path(name).as_posix() if not name.startswith("<") else name


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text
