"""`flowlang secrets check FILE`: each secret a flow reads, where it was found (or every provider
that was asked), never its value."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from flowlang.status import ExitStatus

if TYPE_CHECKING:
    from flowlang.cli.console import Terminal


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: object) -> None:
    secrets = sub.add_parser("secrets", help="see where a flow's secrets come from (values never shown)")
    actions = secrets.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="list each secret a flow reads and the provider that has it",
                               description="List each secret.NAME the flow (and its imports) reads, and where "
                               "it would come from: the --secrets file, the environment, or a provider of "
                               "flowlang.toml. Exit 0 when all are found, 2 when one is missing.")
    check.add_argument("file")
    check.add_argument("--secrets", metavar="FILE", help="a TOML file of secrets (NAME = \"value\")")
    check.add_argument("--config", metavar="FILE", help="the project file (default: the nearest flowlang.toml)")
    check.add_argument("--json", action="store_true", help="one JSON object per secret on stdout")
    if callable(common):
        common(check)


def cmd_secrets(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.api import load  # here, not at the top: building the parser stays cheap
    from flowlang.check.secret_names import defaulted_secrets, secret_uses
    from flowlang.cli.options import read_secrets
    from flowlang.project import load_project
    from flowlang.runtime.jsoncodec import dumps
    from flowlang.runtime.secrets import SecretChain

    flow = load(args.file, bindings=())
    project = load_project(args.config, flow.base_dir)
    given = read_secrets(args.secrets)
    chain = SecretChain(project.secret_providers(given, dict(os.environ)), on_value=terminal.masker.add)
    uses = secret_uses(flow.checked)
    defaulted = defaulted_secrets(flow.checked)
    missing = 0
    if not uses and not args.json:
        terminal.out(f"{flow.name}: reads no secrets")
    for name, (source, span) in uses.items():
        line, col = source.line_col(span.start)
        found = chain.locate(name)
        optional = found.found_in is None and found.problem is None and name in defaulted  # `secret.NAME ?? d`
        missing += found.found_in is None and not optional
        empty = found.found_in is not None and not (chain.value_or_none(name) or "").strip()
        if args.json:
            terminal.json_out(dumps({"name": name, "location": f"{source.name}:{line}:{col}",
                                     "found_in": found.found_in, "asked": found.asked, "problem": found.problem,
                                     "empty": empty, "default": name in defaulted}))
        elif found.found_in is not None:
            terminal.out(f"{name}  {source.name}:{line}:{col}  found in {found.found_in}"
                         + (", but empty (as a credential it is refused)" if empty else ""))
        else:
            why = (f"could not be read: {found.problem}" if found.problem
                   else "not set (every read has a default: secret.NAME ?? ...)" if optional else "MISSING")
            terminal.out(f"{name}  {source.name}:{line}:{col}  {why}; asked: {'; '.join(found.asked)}")
    if missing:
        terminal.error(f"{missing} secret{'s' if missing != 1 else ''} not found")
        return int(ExitStatus.INVALID)
    return int(ExitStatus.OK)
