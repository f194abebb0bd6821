"""The CLI commands for editors and pictures: `graph FILE` (the flow's steps as SVG, Mermaid or DOT),
`lsp` (the language server on stdio) and `connectors schema` (the JSON Schema of connector files)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from flowlang.cli.console import Terminal
from flowlang.status import ExitStatus


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: Callable[[argparse.ArgumentParser], None]) -> None:
    graph = sub.add_parser("graph", help="the flow's steps as a diagram (Mermaid, Graphviz DOT or SVG) on stdout",
                           description="Print the flow's steps as a diagram: its triggers, then each statement, "
                           "blocks nested under their loop, if or try (the picture the serve console shows).")
    graph.add_argument("file")
    graph.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid",
                       help="mermaid (default; renders on GitHub), dot (for Graphviz) or svg (standalone)")
    common(graph)

    lsp = sub.add_parser("lsp", help="the language server for editors, on stdin/stdout (needs flowlang[lsp])",
                         description="Run the flowlang language server (diagnostics, completion, hover, go to "
                         "definition, formatting) over stdio, for VS Code, Neovim, Helix, Emacs...")
    lsp.add_argument("--stdio", action="store_true", help="accepted for editors that pass it (stdio is the default)")
    common(lsp)

    schema = sub.add_parser("connectors-schema", help=argparse.SUPPRESS, usage="flowlang connectors schema",
                            description="Print the JSON Schema of connector files (for taplo / Even Better TOML).")
    common(schema)


def cmd_graph(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.api import load
    from flowlang.picture import FORMATS

    flow = load(args.file, bindings=())
    picture = FORMATS[args.format](flow.module, list(flow.checked.triggers), flow.name)
    terminal.out(picture.rstrip("\n"))
    return int(ExitStatus.OK)


def cmd_lsp(args: argparse.Namespace, terminal: Terminal) -> int:
    try:
        from flowlang.lsp.server import serve_stdio
    except ImportError as e:
        terminal.error(f"error: the language server needs pygls and lsprotocol ({e.name} is missing): "
                       "pip install 'flowlang[lsp]'")
        return int(ExitStatus.INVALID)
    serve_stdio()
    return int(ExitStatus.OK)


def cmd_connectors_schema(args: argparse.Namespace, terminal: Terminal) -> int:
    from flowlang.connectors.declarative.schema import connector_schema

    terminal.json_out(json.dumps(connector_schema(), indent=2))
    return int(ExitStatus.OK)


COMMANDS = {"graph": cmd_graph, "lsp": cmd_lsp, "connectors-schema": cmd_connectors_schema}
