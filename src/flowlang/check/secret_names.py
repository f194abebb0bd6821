"""Which secrets a flow reads: every `secret.NAME` in the flow and the files it imports, with the
position of its first use. Run starts fetch them once; `flowlang secrets check` lists them. A secret
read only as `secret.NAME ?? default` may be unset (the default is taken)."""

from __future__ import annotations

from typing import TypeGuard

from flowlang import ast
from flowlang.check.program import CheckedModule
from flowlang.source import Source, Span


def secret_uses(checked: CheckedModule) -> dict[str, tuple[Source, Span]]:
    """NAME -> (source, span) of the first `secret.NAME` read, over the flow and its imports."""
    found: dict[str, tuple[Source, Span]] = {}
    for module in _modules(checked):
        for node in ast.walk(module.module):
            if is_secret_read(node):
                current = found.get(node.name)
                if current is None or (current[0] is module.source and node.span.start < current[1].start):
                    found[node.name] = (module.source, node.span)
    return dict(sorted(found.items()))


def defaulted_secrets(checked: CheckedModule) -> set[str]:
    """The names of the secrets every read of which has a default (`secret.NAME ?? "d"`): one of them
    that is not set is no mistake."""
    defaulted: set[str] = set()
    required: set[str] = set()
    for module in _modules(checked):
        lefts = {id(node.left) for node in ast.walk(module.module) if isinstance(node, ast.Coalesce)}
        for node in ast.walk(module.module):
            if is_secret_read(node):
                (defaulted if id(node) in lefts else required).add(node.name)
    return defaulted - required


def is_secret_read(node: object) -> TypeGuard[ast.Field]:
    """Whether `node` is `secret.NAME`."""
    return isinstance(node, ast.Field) and isinstance(node.obj, ast.Name) and node.obj.name == "secret"


def is_secret_text(node: object) -> bool:
    """Whether `node` gives a secret whatever the secret holds: `secret.NAME`, a text it is interpolated
    into ("Bearer {secret.T}") or joined to with + (a secret stays a secret through both)."""
    if is_secret_read(node):
        return True
    if isinstance(node, ast.Interpolated):
        return any(is_secret_text(part) for part in node.parts if not isinstance(part, str))
    if isinstance(node, ast.Binary) and node.op is ast.BinOp.ADD:
        return (is_secret_text(node.left) and _text_or_secret(node.right)) or (
            is_secret_text(node.right) and _text_or_secret(node.left))
    return False


def _text_or_secret(node: ast.Expr) -> bool:
    return is_secret_text(node) or isinstance(node, ast.Interpolated) or (
        isinstance(node, ast.Literal) and isinstance(node.value, str))


def _modules(checked: CheckedModule) -> list[CheckedModule]:
    """The flow's module and those of the files it imports, each once."""
    out: list[CheckedModule] = []
    seen: set[int] = set()
    pending = [checked]
    while pending:
        module = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.append(module)
        pending.extend(module.imports.values())
    return out
