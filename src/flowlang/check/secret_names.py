"""Which secrets a flow reads: every `secret.NAME` in the flow and the files it imports, with the
position of its first use. Run starts fetch them once; `flowlang secrets check` lists them."""

from __future__ import annotations

from flowlang import ast
from flowlang.check.program import CheckedModule
from flowlang.source import Source, Span


def secret_uses(checked: CheckedModule) -> dict[str, tuple[Source, Span]]:
    """NAME -> (source, span) of the first `secret.NAME` read, over the flow and its imports."""
    found: dict[str, tuple[Source, Span]] = {}
    seen: set[int] = set()
    pending = [checked]
    while pending:
        module = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        pending.extend(module.imports.values())
        for node in ast.walk(module.module):
            if isinstance(node, ast.Field) and isinstance(node.obj, ast.Name) and node.obj.name == "secret":
                current = found.get(node.name)
                if current is None or (current[0] is module.source and node.span.start < current[1].start):
                    found[node.name] = (module.source, node.span)
    return dict(sorted(found.items()))
