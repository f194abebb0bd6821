"""REPL completion: keywords, names in scope, builtins, connector names, operations after
`conn.`, and fields of values held in variables after `var.`; meta-commands after `:`, and after
`:help ` the names it explains."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flowlang.repl.lexer import GLOBALS
from flowlang.repl.meta import COMMAND_HELP
from flowlang.repl.session import ReplSession
from flowlang.syntax import keywords

WORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\.?([A-Za-z_][A-Za-z0-9_]*)?$")


def candidates(session: ReplSession, text_before_cursor: str) -> tuple[str, list[str]]:
    """(the word being completed, sorted candidates) for the text left of the cursor."""
    meta = re.fullmatch(r"\s*:(\w*)", text_before_cursor)
    if meta:
        return meta.group(1), sorted(c for c in COMMAND_HELP if c.startswith(meta.group(1)))
    asked = re.fullmatch(r"\s*:help\s+([\w.]*)", text_before_cursor)
    if asked:
        return help_candidates(session, asked.group(1))
    match = re.search(r"([A-Za-z_][A-Za-z0-9_.]*)$", text_before_cursor)
    word = match.group(1) if match else ""
    if "." in word:
        head, _, partial = word.rpartition(".")
        return partial, sorted(n for n in members(session, head) if n.startswith(partial))
    pool: set[str] = set(keywords.reserved_words() | keywords.soft_words()) | set(GLOBALS)
    pool |= set(session.scope.visible())
    pool |= set(session.environment.builtins.names())
    pool |= set(session.functions())
    if re.search(r"\buse\s+\w+\s*=\s*\w*$", text_before_cursor):
        pool = set(session.environment.connectors_for(session.base_dir).names())
    return word, sorted(n for n in pool if n.startswith(word) and n != word)


def help_candidates(session: ReplSession, word: str) -> tuple[str, list[str]]:
    """What `:help` explains: builtins, connections, connectors, and `name.` their operations."""
    registry = session.environment.connectors_for(session.base_dir)
    if "." in word:
        head, _, partial = word.partition(".")
        spec = registry.get(session.connections().get(head, head))
        return partial, sorted(op for op in (spec.operations if spec else ()) if op.startswith(partial))
    pool = {*session.environment.builtins.names(), *session.connections(), *registry.names()}
    return word, sorted(n for n in pool if n.startswith(word))


def members(session: ReplSession, head: str) -> Iterable[str]:
    """What may follow `head.`: operations of a connection, fields of a variable's value."""
    parts = head.split(".")
    connections = session.connections()
    if len(parts) == 1 and parts[0] in connections:
        spec = session.environment.connectors_for(session.base_dir).get(connections[parts[0]])
        return list(spec.operations) if spec else []
    if parts[0] == "job":
        from flowlang.check.scopes import JOB_FIELDS

        return JOB_FIELDS
    if parts[0] == "env" and len(parts) == 1:
        return list(session.env)
    value = session.variables().get(parts[0]) if parts[0] != "state" else session.ctx.state
    for part in parts[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return []
    return []
