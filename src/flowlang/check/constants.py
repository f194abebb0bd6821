"""The value of an expression written as a constant (`-1`, `"60/minute"`, `["api.example.com"]`,
`{a: "x"}`), known before the run, so `flowlang check` can judge a connection's configuration by
the rule its connector applies when it opens (ConnectorSpec.value_problem)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flowlang import ast

UNKNOWN = (False, None)


def constant_value(expr: ast.Expr) -> tuple[bool, Any]:
    """(True, value) when `expr` is a constant, else (False, None)."""
    if isinstance(expr, ast.Literal):
        return True, expr.value
    if isinstance(expr, ast.Negate):
        known, value = constant_value(expr.operand)
        if known and type(value) in (int, Decimal):
            return True, -value
        return UNKNOWN
    if isinstance(expr, ast.ListLit):
        items = [constant_value(item) for item in expr.items]
        return (True, [v for _, v in items]) if all(k for k, _ in items) else UNKNOWN
    if isinstance(expr, ast.ObjectLit):
        out: dict[str, Any] = {}
        for pair in expr.pairs:
            if not (isinstance(pair.key, ast.Literal) and isinstance(pair.key.value, str)):
                return UNKNOWN
            known, value = constant_value(pair.value)
            if not known:
                return UNKNOWN
            out[pair.key.value] = value
        return True, out
    return UNKNOWN


__all__ = ["constant_value"]
