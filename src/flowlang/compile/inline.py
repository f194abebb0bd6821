"""Inline fast paths for operators: closures for +, -, *, comparisons and == against a literal,
with the number case computed in place and the general case in flowlang.runtime.operators."""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flowlang import ast
from flowlang.compile.errors import Where
from flowlang.compile.steps import Eval
from flowlang.errors import LimitError
from flowlang.runtime.frame import Frame
from flowlang.runtime.operators import OperatorError, computed
from flowlang.runtime.values import equal, type_name

COMPARE = {ast.BinOp.LT: "<", ast.BinOp.LE: "<=", ast.BinOp.GT: ">", ast.BinOp.GE: ">="}
NUMBERS = frozenset({int, Decimal})
PYTHON_OPS: dict[ast.BinOp, Callable[[Any, Any], Any]] = {
    ast.BinOp.ADD: operator.add, ast.BinOp.SUB: operator.sub, ast.BinOp.MUL: operator.mul,
    ast.BinOp.LT: operator.lt, ast.BinOp.LE: operator.le, ast.BinOp.GT: operator.gt, ast.BinOp.GE: operator.ge,
}


SYMBOLS = {ast.BinOp.ADD: "+", ast.BinOp.SUB: "-", ast.BinOp.MUL: "*"}


def literal_constant(node: ast.Expr) -> tuple[Any] | None:
    """A literal scalar on one side of ==, for a cheaper comparison."""
    if isinstance(node, ast.Literal) and (node.value is None or type(node.value) in (bool, str)):
        return (node.value,)
    return None


def equals_constant(left: Eval, constant: Any) -> Eval:
    if constant is None or type(constant) is bool:
        return lambda f: left(f) is constant
    def equals(f: Frame) -> bool:  # a text constant: a text compares inline, anything else as == says
        v = left(f)
        return v == constant if type(v) is str else equal(v, constant)
    return equals


def comparison(op: ast.BinOp, left: Eval, right: Eval, fn: Callable[[Any, Any], Any], where: Where) -> Eval:
    """<, <=, >, >= with numbers inline."""
    python_op = PYTHON_OPS[op]

    def compare(f: Frame) -> Any:
        a = left(f)
        b = right(f)
        if (type(a) in NUMBERS) & (type(b) in NUMBERS):
            return python_op(a, b)
        try:
            return fn(a, b)
        except OperatorError as e:
            raise where.error(e.message, e.kind) from None

    return compare


def constant(value: Any) -> Eval:
    return lambda f: value


def arithmetic(op: ast.BinOp, left: Eval, right: Eval, fn: Callable[[Any, Any], Any], where: Where) -> Eval:
    """+, -, * with the number case inline; a string or list past max_value_items is a limit error."""
    python_op = PYTHON_OPS[op]
    symbol = SYMBOLS[op]
    limit_check = op is ast.BinOp.ADD

    def arithmetic(f: Frame) -> Any:
        a = left(f)
        b = right(f)
        if (type(a) in NUMBERS) & (type(b) in NUMBERS):
            try:
                return computed(python_op, a, b, symbol)
            except OperatorError as e:
                raise where.error(e.message, e.kind) from None
        try:
            result = fn(a, b)
        except OperatorError as e:
            raise where.error(e.message, e.kind) from None
        if limit_check and type(result) in (str, list) and len(result) > f.run.limits.max_value_items:
            unit = "characters" if type(result) is str else "items"
            raise LimitError(f"a {type_name(result)} of {len(result)} {unit} is more than the limit of "
                             f"{f.run.limits.max_value_items} (max_value_items)", source=where.source,
                             span=where.span)
        return result

    return arithmetic
