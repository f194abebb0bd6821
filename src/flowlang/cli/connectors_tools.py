"""`flowlang connectors import SPEC --name NAME` and `flowlang connectors verify NAME --spec SPEC`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang.status import ExitStatus

if TYPE_CHECKING:  # the rest is imported by the commands: building the parser stays cheap
    from flowlang.cli.console import Terminal
    from flowlang.connectors.declarative.models import ConnectorFile


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: object) -> None:
    imp = sub.add_parser("connectors-import", help=argparse.SUPPRESS,
                         usage="flowlang connectors import SPEC --name NAME [options]",
                         description="Turn an OpenAPI 3 / Swagger 2 description (a file or URL) into a "
                         "connector file.")
    imp.add_argument("spec", metavar="SPEC", help="the description: a .json/.yaml file or an http(s) URL")
    imp.add_argument("--name", required=True, help="the connector's name (use NAME = NAME(...))")
    imp.add_argument("--tag", action="append", default=[], help="only operations with this tag (repeatable)")
    imp.add_argument("--path", action="append", default=[],
                     help="only operations with this path, or matching this glob (/repos/*); repeatable")
    imp.add_argument("--yes", action="store_true", help="take the default wherever the importer is unsure")
    imp.add_argument("-o", "--output", help="where to write (default: connectors/NAME.toml; - for stdout)")
    imp.add_argument("--force", action="store_true", help="replace an existing file")
    ver = sub.add_parser("connectors-verify", help=argparse.SUPPRESS,
                         usage="flowlang connectors verify NAME --spec SPEC",
                         description="Check a connector file against the API's description.")
    ver.add_argument("name", metavar="NAME", help="a connector name (stdlib or connectors/) or a .toml file")
    ver.add_argument("--spec", required=True, help="the description: a file or an http(s) URL")
    ver.add_argument("--dir", default=".", help="the flow folder whose connectors/ to look in (default: .)")
    for p in (imp, ver):
        common(p)  # type: ignore[operator]


def rewrite(argv: list[str]) -> list[str]:
    """`connectors import ...` -> `connectors-import ...`, also verify and schema (argparse cannot mix a NAME
    with subcommands)."""
    if len(argv) >= 2 and argv[0] == "connectors" and argv[1] in ("import", "verify", "schema"):
        return [f"connectors-{argv[1]}", *argv[2:]]
    return argv


def cmd_import(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.connectors.declarative.loader import ConnectorFileError, parse_model
    from flowlang.connectors.declarative.models import IDENTIFIER
    from flowlang.openapi.document import DescriptionError, load
    from flowlang.openapi.importer import Question, Selection, import_description

    if not IDENTIFIER.match(args.name):
        terminal.error(f"error: --name must be a name like my_api (letters, digits, _), got {args.name!r}")
        return int(ExitStatus.INVALID)
    target = Path(args.output) if args.output and args.output != "-" else Path("connectors") / f"{args.name}.toml"
    if args.output != "-" and target.exists() and not args.force:
        terminal.error(f"error: {target} exists; pass --force to replace it")
        return int(ExitStatus.INVALID)
    selection = Selection(args.tag, args.path)
    try:  # with --tag/--path, only the paths that may hold the operations asked for are validated and read
        doc = load(args.spec, keep=selection.keeps if args.tag or args.path else None)
    except DescriptionError as e:
        terminal.error(f"error: {e}")
        return int(ExitStatus.INVALID)
    interactive = not args.yes and sys.stdin.isatty()
    pending: list[Question] = []

    def ask(q: Question) -> str:
        if args.yes:
            q.how = "default, --yes"
            return q.default
        if not interactive:
            pending.append(q)
            q.how = "default"
            return q.default
        choices = f" [{'/'.join(q.choices)}]" if q.choices else ""
        terminal.message(f"{q.text}{choices} (default {q.default})")
        answer = input("> ").strip()
        if q.choices and answer and answer not in q.choices:
            terminal.message(f"not one of the choices; taking {q.default}", "yellow")
            answer = ""
        q.how = "answered" if answer else "default"
        return answer or q.default

    try:
        result = import_description(doc, args.name, ask, selection)
    except ValueError as e:
        terminal.error(f"error: {e}")
        return int(ExitStatus.INVALID)
    if pending:
        for q in pending:
            terminal.error(f"unsure: {q.text} (default: {q.default})")
        terminal.error("error: the importer has questions; run it at a terminal to answer them, or pass --yes "
                       "to take the defaults (they are written into the file as comments)")
        return int(ExitStatus.INVALID)
    try:
        model = parse_model(f"{args.name}.toml", result.text)
    except ConnectorFileError as e:  # a bug in the importer, shown plainly
        terminal.error(f"error: the generated file does not load: {e.message}")
        return int(ExitStatus.FAILED)
    if args.output == "-":
        terminal.out(result.text.rstrip("\n"))
    else:
        from flowlang.file_replace import replace_text

        target.parent.mkdir(parents=True, exist_ok=True)
        replace_text(target, result.text)  # a full disk leaves a file imported before as it was
        terminal.message(f"wrote {target}: {len(model.operations)} operations"
                         + (f", {len(result.questions)} unsure point(s) noted in the file" if result.questions
                            else ""))
    return int(ExitStatus.OK)


def connector_text(name: str, folder: Path) -> tuple[str, str] | None:
    """(file name, text) of a connector: a .toml path, the flow folder's connectors/, or the stdlib."""
    from flowlang.resources import stdlib_files

    path = Path(name)
    if name.endswith(".toml") and path.is_file():
        return str(path), path.read_text(encoding="utf-8-sig")  # a byte order mark (Notepad's) is skipped
    own = folder / "connectors" / f"{name}.toml"
    if own.is_file():
        return str(own), own.read_text(encoding="utf-8-sig")
    for file_name, text in stdlib_files():
        if file_name == f"{name}.toml":
            return f"stdlib/{file_name}", text
    return None


def cmd_verify(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.connectors.declarative.loader import ConnectorFileError, parse_model
    from flowlang.openapi.document import DescriptionError, load
    from flowlang.openapi.verify import paths_of, verify

    found = connector_text(args.name, Path(args.dir))
    if found is None:
        terminal.error(f"error: no connector file {args.name!r} (not a .toml file, not in connectors/, not in "
                       "the stdlib)")
        return int(ExitStatus.INVALID)
    file_name, text = found
    try:
        model: ConnectorFile = parse_model(file_name, text)
        doc = load(args.spec, keep=paths_of(model))  # only the paths the connector can mean are validated
    except ConnectorFileError as e:
        terminal.error(f"error: {e.message}")
        return int(ExitStatus.INVALID)
    except DescriptionError as e:
        terminal.error(f"error: {e}")
        return int(ExitStatus.INVALID)
    report = verify(model, doc)
    for note in report.notes:
        terminal.message(f"note: {note}")
    for problem in report.problems:
        terminal.error(f"{file_name}: {problem}")
    if report.problems:
        terminal.error(f"{len(report.problems)} problem(s) in {report.checked} operations of {file_name}")
        return int(ExitStatus.FAILED)
    terminal.message(f"{file_name}: {report.checked} operations match {args.spec}")
    return int(ExitStatus.OK)
