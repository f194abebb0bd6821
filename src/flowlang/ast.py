"""The flowlang abstract syntax tree: frozen, slotted classes (dataclass-like, `Node`), one per
construct, each with a span.

Built only by flowlang.syntax.transformer; read by the checker, the compiler and the formatter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, dataclass_transform

from flowlang.source import Span

if TYPE_CHECKING:
    from flowlang.source import Source


# ---- the node base -----------------------------------------------------------------------
# Frozen slotted dataclasses cost ~0.5 ms each to create (their methods are generated with exec),
# which every start of `flowlang` paid for ~50 node classes. A metaclass makes the same classes
# (fields from the annotations, in order; defaults; __slots__; frozen; identity equality) without
# generating code, and type checkers see them as dataclasses (PEP 681).


@dataclass_transform(frozen_default=True, eq_default=False)
class _NodeMeta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _NodeMeta:
        annotations = namespace.get("__annotations__", {})
        names = tuple(k for k, v in annotations.items() if not str(v).startswith("ClassVar"))
        defaults = {k: namespace.pop(k) for k in names if k in namespace}
        namespace.update(__slots__=names, __match_args__=names, _fields=names, _defaults=defaults,
                         _required=sum(1 for k in names if k not in defaults))
        return super().__new__(mcs, name, bases, namespace)


class Node(metaclass=_NodeMeta):
    """The base of every node class: `fields(node)` names its fields in order."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]]
    _defaults: ClassVar[dict[str, Any]]
    _required: ClassVar[int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self._fields
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, got {len(args)}")
        put = object.__setattr__
        for name, value in zip(names, args, strict=False):
            put(self, name, value)
        if len(args) == len(names) and not kwargs:
            return
        for name in names[len(args):]:
            if name in kwargs:
                put(self, name, kwargs.pop(name))
            elif name in self._defaults:
                put(self, name, self._defaults[name])
            else:
                raise TypeError(f"{type(self).__name__}() needs {name!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}() has no field {next(iter(kwargs))!r}")

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._fields)})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy: by the constructor
        return type(self), tuple(getattr(self, n) for n in self._fields)


def fields(node: Node) -> tuple[str, ...]:
    """The names of a node's fields, in declaration order."""
    return node._fields


def walk(value: object) -> Iterator[Node]:
    """Every node under `value` (a node, or a tuple or list of them), itself included, through every
    field, in no particular order."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif isinstance(item, Node):
            yield item
            stack.extend(getattr(item, name) for name in item._fields)



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


class Literal(Node):
    """A constant: null, true/false, an integer, an exact decimal or a string without interpolation."""

    value: bool | int | Decimal | str | None
    span: Span


class Interpolated(Node):
    """A double-quoted string with `{expr}` parts; literal text parts are plain strings."""

    parts: tuple[str | Expr, ...]
    span: Span


class Name(Node):
    """A reference to a variable, parameter, connection or global (env, secret, job, state, input)."""

    name: str
    span: Span


class Field(Node):
    """`obj.name`: a field of an object (null when missing)."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


class Index(Node):
    """`obj[index]`: a list index (negative from the end) or an object key."""

    obj: Expr
    index: Expr
    span: Span


class KwArg(Node):
    """`name: value` in a call's arguments."""

    name: str
    value: Expr
    span: Span


class FuncCall(Node):
    """`name(args, key: value)`: a call of a builtin or a user function."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    name_span: Span


class ListLit(Node):
    """`[a, b, c]`."""

    items: tuple[Expr, ...]
    span: Span


class Pair(Node):
    """`key: value` in an object literal; key is a Literal string or an Interpolated string
    (in an object comprehension a bare name is a Name, the variable)."""

    key: Expr
    value: Expr
    span: Span


class ObjectLit(Node):
    """`{a: 1, "two words": 2}`."""

    pairs: tuple[Pair, ...]
    span: Span


class CompFor(Node):
    """`for x[, y] in iterable [if condition]` of a comprehension."""

    names: tuple[str, ...]
    iterable: Expr
    condition: Expr | None
    span: Span
    name_spans: tuple[Span, ...]


class ListComp(Node):
    """`[element for x in xs if cond]`."""

    element: Expr
    comp: CompFor
    span: Span


class ObjectComp(Node):
    """`{key: value for k, v in items(obj)}`."""

    key: Expr
    value: Expr
    comp: CompFor
    span: Span


class Negate(Node):
    """`-a`."""

    operand: Expr
    span: Span


class Not(Node):
    """`not a` (always a boolean)."""

    operand: Expr
    span: Span


class Binary(Node):
    """Arithmetic and comparison: `a + b`, `a == b`, `a in b`, `a not in b`."""

    op: BinOp
    left: Expr
    right: Expr
    span: Span
    op_span: Span


class Logical(Node):
    """`a and b`, `a or b` (short-circuit, result is a boolean)."""

    op: LogicOp
    left: Expr
    right: Expr
    span: Span


class Coalesce(Node):
    """`a ?? b`: a unless it is null."""

    left: Expr
    right: Expr
    span: Span


class Conditional(Node):
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


class FlowDecl(Node):
    """`flow "Name"`."""

    name: str
    span: Span


class Trigger(Node):
    """`trigger webhook(...)` or `trigger schedule(...)`: how `flowlang serve` starts the flow (runs ignore it)."""

    kind: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    kind_span: Span


class Param(Node):
    """`param name [= default]`."""

    name: str
    default: Expr | None
    span: Span
    name_span: Span


class Use(Node):
    """`use name = connector(key: value, ...)`."""

    name: str
    connector: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    name_span: Span
    connector_span: Span


class FieldStep(Node):
    """`.name` in an assignment target."""

    name: str
    span: Span


class IndexStep(Node):
    """`[expr]` in an assignment target."""

    index: Expr
    span: Span


class Target(Node):
    """What `let` assigns: a variable, or a path into one (`order.status`, `state.cursor`)."""

    name: str
    steps: tuple[FieldStep | IndexStep, ...]
    span: Span
    name_span: Span


class Let(Node):
    """`let target = value`."""

    target: Target
    value: Expr
    span: Span


class Operation(Node):
    """`conn.op(args)` in call, lookup and send."""

    connection: str
    op: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    has_args: bool
    span: Span
    connection_span: Span
    op_span: Span


class CallStmt(Node):
    """`call conn.op(args) [as name]`."""

    operation: Operation
    as_name: str | None
    span: Span
    as_span: Span | None


class LookupStmt(Node):
    """`lookup conn.op(args) as name`: the first record, or null."""

    operation: Operation
    as_name: str
    span: Span
    as_span: Span


class Count(Node):
    """The N of `parallel N` and `batch N`: an integer literal or a parameter name."""

    value: int | str
    span: Span


class Send(Node):
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


class MapAssign(Node):
    """`path = value` in a map body (a dotted path builds nested objects)."""

    path: tuple[str, ...]
    value: Expr
    span: Span


class MapSpread(Node):
    """`...value` in a map body: copy all fields of an object."""

    value: Expr
    span: Span


class MapDrop(Node):
    """`drop path` in a map body."""

    path: tuple[str, ...]
    span: Span


MapLine = (
    MapAssign | MapSpread | MapDrop
)


class MapStmt(Node):
    """`map source to target` ... `end`."""

    source: Expr
    target: str
    lines: tuple[MapLine, ...]
    span: Span
    target_span: Span


class Branch(Node):
    """One `if` / `else if` condition with its block."""

    condition: Expr
    body: tuple[Stmt, ...]
    span: Span


class If(Node):
    """`if c` ... `else if c` ... `else` ... `end`."""

    branches: tuple[Branch, ...]
    otherwise: tuple[Stmt, ...] | None
    span: Span


class ForEach(Node):
    """`for each x[, y] in iterable [key expr] [parallel N]` ... `end`. The key names what identifies
    a record in the error store (OPERATIONS.md 2)."""

    names: tuple[str, ...]
    iterable: Expr
    parallel: Count | None
    body: tuple[Stmt, ...]
    span: Span
    name_spans: tuple[Span, ...]
    key: Expr | None = None


class Skip(Node):
    """`skip`: go on with the next iteration."""

    span: Span


class Stop(Node):
    """`stop`: leave the loop."""

    span: Span


class Fail(Node):
    """`fail message`."""

    message: Expr
    span: Span


class Try(Node):
    """`try` ... `on error [as e]` ... `end`."""

    body: tuple[Stmt, ...]
    error_name: str | None
    handler: tuple[Stmt, ...]
    span: Span
    error_span: Span | None


class Emit(Node):
    """`emit value`: an output record (a list emits each item)."""

    value: Expr
    span: Span


class Log(Node):
    """`log [level] value`."""

    level: str
    value: Expr
    span: Span


class FnParam(Node):
    """A function parameter with an optional default."""

    name: str
    default: Expr | None
    span: Span


class Function(Node):
    """`function name(params)` ... `end`."""

    name: str
    params: tuple[FnParam, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


class Return(Node):
    """`return [value]`."""

    value: Expr | None
    span: Span


class Import(Node):
    """`import "path.flow" [allow_outside]`."""

    path: str
    span: Span
    allow_outside: bool = False  # the file may lie outside the flow's folder


class RunFlow(Node):
    """`run "other.flow" [allow_outside] [with params]`."""

    path: str
    params: Expr | None
    span: Span
    allow_outside: bool = False  # the file may lie outside the flow's folder


class ExprStmt(Node):
    """A bare expression (REPL input only): its value is shown."""

    expr: Expr
    span: Span


Stmt = (
    FlowDecl | Trigger | Param | Use | Let | CallStmt | LookupStmt | Send | MapStmt | If | ForEach | Skip | Stop
    | Fail | Try | Emit | Log | Function | Return | Import | RunFlow | ExprStmt
)


class Module(Node):
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
    if isinstance(value, Node):
        name = type(value).__name__
        if isinstance(value, Module):
            return "Module " + dump(value.statements, source, indent)
        parts = []
        where = ""
        for field_name in value._fields:
            v = getattr(value, field_name)
            if field_name == "span":
                if source is not None:
                    line, col = source.line_col(v.start)
                    where = f"@{line}:{col}"
                continue
            if field_name.endswith("_span") or field_name.endswith("_spans"):
                continue
            parts.append(f"{field_name}=" + dump(v, source, indent + 1))
        return f"{name}{where}(" + ", ".join(parts) + ")"
    return repr(value)
