"""What `flowlang repl FILE` and `:load FILE` take of a flow: its definitions (flow, params, connections,
imports, functions, top-level lets), not its loops and I/O statements, and of those only the ones that
do not need a value such a statement gives (`let changed = [r for r in rows ...]` after `call ... as
rows`): each of them is left out, saying which name it needs, instead of failing the whole load."""

from __future__ import annotations

from collections.abc import Iterator

from flowlang import ast
from flowlang.lazy_dataclass import dataclass
from flowlang.source import Source

FILE_STATEMENTS = (ast.FlowDecl, ast.Param, ast.Use, ast.Import, ast.Function, ast.Let)
GIVERS = (ast.CallStmt, ast.LookupStmt, ast.Send, ast.MapStmt)  # top-level statements that bind a name


@dataclass(frozen=True)
class LeftOut:
    """A definition not loaded: what it defines, where, and the name it needs."""

    name: str
    location: str
    needs: str

    def note(self) -> str:
        return (f"note: left out {self.name} ({self.location}): it needs {self.needs}, which is not loaded "
                "(only definitions are: run the statement that makes it in the session)")


def names_read(node: object) -> Iterator[str]:
    """Every variable and function name an AST node reads (an over-approximation: a comprehension's own
    variable counts too)."""
    return (n.name for n in ast.walk(node) if isinstance(n, ast.Name | ast.FuncCall))


def given_name(stmt: ast.Stmt) -> str | None:
    if isinstance(stmt, ast.MapStmt):
        return stmt.target
    return getattr(stmt, "as_name", None) if isinstance(stmt, GIVERS) else None


def definitions(module: ast.Module) -> tuple[ast.Module, list[LeftOut]]:
    """The module's definitions that can be loaded, and those left out."""
    unloaded = {n for s in module.statements if (n := given_name(s)) is not None}
    kept: list[ast.Stmt] = []
    left: list[LeftOut] = []
    for stmt in module.statements:
        if not isinstance(stmt, FILE_STATEMENTS):
            continue
        if isinstance(stmt, ast.Let | ast.Function):
            own = {p.name for p in stmt.params} if isinstance(stmt, ast.Function) else set()
            needed = next((n for n in names_read(stmt) if n in unloaded and n not in own), None)
            if needed is not None:
                name = stmt.name if isinstance(stmt, ast.Function) else stmt.target.name
                if isinstance(stmt, ast.Function) or not stmt.target.steps:
                    unloaded.add(name)
                left.append(LeftOut(f"{'function' if isinstance(stmt, ast.Function) else 'let'} {name}",
                                    location(module.source, stmt), needed))
                continue
        kept.append(stmt)
    return ast.Module(tuple(kept), module.source, module.span), left


def location(source: Source, stmt: ast.Stmt) -> str:
    return source.location(stmt.span)


__all__ = ["FILE_STATEMENTS", "LeftOut", "definitions"]
