"""`flowlang connectors [NAME]`: the table of connectors, or one connector's keys and operations."""

from __future__ import annotations

from rich.table import Table

from flowlang.check.hints import did_you_mean
from flowlang.cli.console import Terminal
from flowlang.connectors.registry import ConnectorRegistry
from flowlang.diagnostics import printable
from flowlang.status import ExitStatus


def add_row(table: Table, *cells: str) -> None:
    """A row of text from connector files (titles, paths, descriptions): a control character is shown as its
    escape, never sent to the terminal (the table prints no markup either: Terminal.stdout_table)."""
    table.add_row(*(printable(cell) for cell in cells))


def show_connectors(registry: ConnectorRegistry, terminal: Terminal) -> int:
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("connector", "title", "from", "operations"):
        table.add_column(column)
    for spec in registry.all():
        add_row(table, spec.name, spec.title, spec.origin, str(len(spec.operations)))
    terminal.stdout_table(table)
    problems = registry.all_problems
    for problem in problems:
        terminal.error(problem)
    terminal.out("details: flowlang connectors NAME")
    return int(ExitStatus.OK if not problems else ExitStatus.INVALID)


def show_connector(registry: ConnectorRegistry, name: str, terminal: Terminal) -> int:
    spec = registry.get(name)
    broken = registry.broken.get(name)
    if broken is not None:  # as check says it: another connector of the name never stands in for the file
        terminal.error(f"error: the connector '{name}' cannot be used: {broken}")
        return int(ExitStatus.INVALID)
    if spec is None:
        hint = did_you_mean(name, registry.names())
        terminal.error(f"error: unknown connector '{name}'" + (f"; {hint}" if hint else ""))
        return int(ExitStatus.INVALID)
    terminal.out(f"{spec.name}: {spec.title} ({spec.origin})")  # out() escapes control characters
    if spec.docs:
        terminal.out(f"docs: {spec.docs}")
    config = Table(title="configuration (use NAME = " + spec.name + "(key: value, ...))", box=None,
                   padding=(0, 2), header_style="bold", title_justify="left")
    for column in ("key", "required", "secret", "description"):
        config.add_column(column)
    for key in spec.config:
        add_row(config, key.name, "yes" if key.required else "", "yes" if key.secret else "", key.description)
    terminal.stdout_table(config)
    ops = Table(title="operations", box=None, padding=(0, 2), header_style="bold", title_justify="left")
    for column in ("operation", "method", "path", "arguments", "notes"):
        ops.add_column(column, overflow="fold")
    generic = {"query", "headers", "body"} if spec.origin not in ("builtin", "binding") else set()
    for op in sorted(spec.operations.values(), key=lambda o: o.name):
        notes = []
        if op.name == spec.default_write:
            notes.append("default for send")
        if op.takes_batch:
            notes.append(f"batch (max {op.max_batch})" if op.max_batch else "batch")
        if op.returns_stream:
            notes.append("paginated stream")
        keywords = sorted(set(op.keywords or ()) - generic)
        args = list(op.params) + keywords + (["..."] if op.keywords is None else [])
        add_row(ops, op.name, op.method or "", op.path or "", ", ".join(args), "; ".join(notes) or op.description)
    terminal.stdout_table(ops)
    if generic:
        terminal.out("every operation also takes query: {...}, headers: {...} and body: (for call)")
    for note in spec.notes:
        terminal.out(note)
    return int(ExitStatus.OK)
