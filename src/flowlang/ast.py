"""The flowlang abstract syntax tree: frozen, slotted dataclasses, one per construct, each with a span.

Built only by flowlang.syntax.transformer; read by the checker, the compiler and the formatter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING

from flowlang.source import Span

if TYPE_CHECKING:
    from flowlang.source import Source



class BinOp(Enum):
    """Binary operators that take two evaluated operands."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"


class LogicOp(Enum):
    """Short-circuit operators."""

    AND = "and"
    OR = "or"


# ---- expressions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Literal:
    """A constant: null, true/false, an integer, an exact decimal or a string without interpolation."""

    value: bool | int | Decimal | str | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Interpolated:
    """A double-quoted string with `{expr}` parts; literal text parts are plain strings."""

    parts: tuple[str | Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Name:
    """A reference to a variable, parameter, connection or global (env, secret, job, state, input)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """`obj.name`: a field of an object (null when missing)."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Index:
    """`obj[index]`: a list index (negative from the end) or an object key."""

    obj: Expr
    index: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class KwArg:
    """`name: value` in a call's arguments."""

    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class FuncCall:
    """`name(args, key: value)`: a call of a builtin or a user function."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ListLit:
    """`[a, b, c]`."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Pair:
    """`key: value` in an object literal; key is a Literal string or an Interpolated string
    (in an object comprehension a bare name is a Name, the variable)."""

    key: Expr
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ObjectLit:
    """`{a: 1, "two words": 2}`."""

    pairs: tuple[Pair, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CompFor:
    """`for x[, y] in iterable [if condition]` of a comprehension."""

    names: tuple[str, ...]
    iterable: Expr
    condition: Expr | None
    span: Span
    name_spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True, eq=False)
class ListComp:
    """`[element for x in xs if cond]`."""

    element: Expr
    comp: CompFor
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ObjectComp:
    """`{key: value for k, v in items(obj)}`."""

    key: Expr
    value: Expr
    comp: CompFor
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Negate:
    """`-a`."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Not:
    """`not a` (always a boolean)."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Binary:
    """Arithmetic and comparison: `a + b`, `a == b`, `a in b`, `a not in b`."""

    op: BinOp
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Logical:
    """`a and b`, `a or b` (short-circuit, result is a boolean)."""

    op: LogicOp
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Coalesce:
    """`a ?? b`: a unless it is null."""

    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Conditional:
    """`if cond then a else b`."""

    condition: Expr
    then: Expr
    otherwise: Expr
    span: Span


Expr = (
    Literal | Interpolated | Name | Field | Index | FuncCall | ListLit | ObjectLit | ListComp
    | ObjectComp | Negate | Not | Binary | Logical | Coalesce | Conditional
)


# ---- statements --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class FlowDecl:
    """`flow "Name"`."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Trigger:
    """`trigger webhook(...)` or `trigger schedule(...)`: how `flowlang serve` starts the flow (runs ignore it)."""

    kind: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    kind_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Param:
    """`param name [= default]`."""

    name: str
    default: Expr | None
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Use:
    """`use name = connector(key: value, ...)`."""

    name: str
    connector: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    name_span: Span
    connector_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class FieldStep:
    """`.name` in an assignment target."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class IndexStep:
    """`[expr]` in an assignment target."""

    index: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """What `let` assigns: a variable, or a path into one (`order.status`, `state.cursor`)."""

    name: str
    steps: tuple[FieldStep | IndexStep, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Let:
    """`let target = value`."""

    target: Target
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Operation:
    """`conn.op(args)` in call, lookup and send."""

    connection: str
    op: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    has_args: bool
    span: Span
    connection_span: Span
    op_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CallStmt:
    """`call conn.op(args) [as name]`."""

    operation: Operation
    as_name: str | None
    span: Span
    as_span: Span | None


@dataclass(frozen=True, slots=True, eq=False)
class LookupStmt:
    """`lookup conn.op(args) as name`: the first record, or null."""

    operation: Operation
    as_name: str
    span: Span
    as_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Count:
    """The N of `parallel N` and `batch N`: an integer literal or a parameter name."""

    value: int | str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Send:
    """`send value to conn[.op[(args)]] [key expr] [once | if changed] [as name] [batch N]`. `mode` is
    "once" or "changed" for a send that goes through the ledger, keyed by `key` (else the loop's record)."""

    value: Expr
    destination: Operation
    as_name: str | None
    batch: Count | None
    span: Span
    as_span: Span | None
    key: Expr | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class MapAssign:
    """`path = value` in a map body (a dotted path builds nested objects)."""

    path: tuple[str, ...]
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class MapSpread:
    """`...value` in a map body: copy all fields of an object."""

    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class MapDrop:
    """`drop path` in a map body."""

    path: tuple[str, ...]
    span: Span


MapLine = (
    MapAssign | MapSpread | MapDrop
)


@dataclass(frozen=True, slots=True, eq=False)
class MapStmt:
    """`map source to target` ... `end`."""

    source: Expr
    target: str
    lines: tuple[MapLine, ...]
    span: Span
    target_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Branch:
    """One `if` / `else if` condition with its block."""

    condition: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class If:
    """`if c` ... `else if c` ... `else` ... `end`."""

    branches: tuple[Branch, ...]
    otherwise: tuple[Stmt, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ForEach:
    """`for each x[, y] in iterable [key expr] [parallel N]` ... `end`. The key names what identifies
    a record in the error store (OPERATIONS.md 2)."""

    names: tuple[str, ...]
    iterable: Expr
    parallel: Count | None
    body: tuple[Stmt, ...]
    span: Span
    name_spans: tuple[Span, ...]
    key: Expr | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Skip:
    """`skip`: go on with the next iteration."""

    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Stop:
    """`stop`: leave the loop."""

    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Fail:
    """`fail message`."""

    message: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Try:
    """`try` ... `on error [as e]` ... `end`."""

    body: tuple[Stmt, ...]
    error_name: str | None
    handler: tuple[Stmt, ...]
    span: Span
    error_span: Span | None


@dataclass(frozen=True, slots=True, eq=False)
class Emit:
    """`emit value`: an output record (a list emits each item)."""

    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Log:
    """`log [level] value`."""

    level: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class FnParam:
    """A function parameter with an optional default."""

    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Function:
    """`function name(params)` ... `end`."""

    name: str
    params: tuple[FnParam, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Return:
    """`return [value]`."""

    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Import:
    """`import "path.flow"`."""

    path: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class RunFlow:
    """`run "other.flow" [with params]`."""

    path: str
    params: Expr | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ExprStmt:
    """A bare expression (REPL input only): its value is shown."""

    expr: Expr
    span: Span


Stmt = (
    FlowDecl | Trigger | Param | Use | Let | CallStmt | LookupStmt | Send | MapStmt | If | ForEach | Skip | Stop
    | Fail | Try | Emit | Log | Function | Return | Import | RunFlow | ExprStmt
)


@dataclass(frozen=True, slots=True, eq=False)
class Module:
    """A parsed flow file (or REPL input)."""

    statements: tuple[Stmt, ...]
    source: Source
    span: Span


# ---- dump for snapshot tests ---------------------------------------------------------


def dump(value: object, source: Source | None = None, indent: int = 0) -> str:
    """A readable, stable rendering of a tree (spans as line:col when a source is given)."""
    pad = "  " * indent
    if isinstance(value, tuple):
        if not value:
            return "()"
        if all(isinstance(v, str) for v in value):
            return "(" + ", ".join(repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        inner = "\n".join(pad + "  " + dump(v, source, indent + 1) for v in value)
        return "(\n" + inner + "\n" + pad + ")"
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, str) else str(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and not isinstance(value, Span):
        name = type(value).__name__
        if isinstance(value, Module):
            return "Module " + dump(value.statements, source, indent)
        parts = []
        where = ""
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.name == "span":
                if source is not None:
                    line, col = source.line_col(v.start)
                    where = f"@{line}:{col}"
                continue
            if f.name.endswith("_span") or f.name.endswith("_spans"):
                continue
            parts.append(f"{f.name}=" + dump(v, source, indent + 1))
        return f"{name}{where}(" + ", ".join(parts) + ")"
    return repr(value)
