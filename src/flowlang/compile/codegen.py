"""Pure expression trees compiled to Python code objects (built from our own AST, never from user
text), for the hot paths of mappings. Anything this generator does not handle is embedded as the
closure the ExpressionCompiler makes for it.

Generated code carries no positions: when it raises anything but an already positioned
FlowRuntimeError, the expression is evaluated again by its closures, which raise the same error with
its exact place (expressions are pure, so evaluating one twice changes nothing).
"""

from __future__ import annotations

import re
import types
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flowlang import ast
from flowlang.check.scopes import Local, Outer
from flowlang.check.secret_names import is_secret_read
from flowlang.compile.steps import Eval
from flowlang.errors import FlowRuntimeError
from flowlang.runtime import operators as ops
from flowlang.runtime.builtins import Builtin
from flowlang.runtime.builtins.numbers import sum_
from flowlang.runtime.field_hints import field_hint, text_shown
from flowlang.runtime.field_misses import found_nothing, missed
from flowlang.runtime.frame import Frame, ReturnSignal
from flowlang.runtime.limits import CHECK_EVERY, checked, paced
from flowlang.runtime.operators import NeedsMaterialization
from flowlang.runtime.values import INT_BOUND, RecordStream, equal, interpolate, truthy, type_name

if TYPE_CHECKING:
    from flowlang.compile.expressions import ExpressionCompiler

MIN_NATIVE = 3  # below this many generated nodes a closure is just as fast


def _fld(value: Any, name: str) -> Any:
    if value is None:
        return None
    if type(value) is RecordStream:
        raise NeedsMaterialization(value)
    kind = type_name(value)
    hint = field_hint(kind, name)
    raise ValueError(f"cannot read field {name!r} of {kind}{text_shown(value)}{hint}")


def _ahead(value: Any) -> None:
    """A field read ahead of its place (Generator.shared) of a value that is not an object: null of null;
    anything else goes to the closures, which read it at its place (an error there, or never reached)."""
    if value is None:
        return None
    raise ValueError("read at its place")


def _idx(obj: Any, index: Any) -> Any:
    t = type(obj)
    if t is dict and type(index) is str:
        return obj.get(index)
    if t is list and type(index) is int:
        return obj[index] if -len(obj) <= index < len(obj) else None
    if obj is None:
        return None
    raise ValueError("slow path")


def _iter(value: Any) -> Any:
    t = type(value)
    if t is list:
        return value
    if t is dict:
        return list(value)
    if value is None:
        return ()
    if t is RecordStream:
        raise NeedsMaterialization(value)
    raise ValueError("cannot loop")


def _add_limited(a: Any, b: Any, f: Frame) -> Any:
    """+ beyond numbers; a string or list past max_value_items goes to the closure, which says so."""
    result = ops.add(a, b)
    if type(result) in (str, list) and len(result) > f.run.limits.max_value_items:
        raise ValueError("over the limit")
    return result


def _big() -> Any:
    raise ValueError("a whole number past MAX_DIGITS digits")  # the closure gives the located error


def _is_in(item: Any, container: Any) -> bool:
    """`item in container`, with the operands evaluated left first (as Python evaluates arguments)."""
    return ops.contains(container, item)


def _is_not_in(item: Any, container: Any) -> bool:
    return ops.not_contains(container, item)


HELPERS: dict[str, Any] = {
    "_fld": _fld, "_ahead": _ahead, "_miss": missed, "_nothing": found_nothing, "_idx": _idx, "_iter": _iter,
    "_paced": paced, "_checked": checked, "_Dec": Decimal,
    "_CHECK_EVERY": CHECK_EVERY, "_interp": interpolate,
    "_N": frozenset({int, Decimal}), "_B": INT_BOUND, "_NB": -INT_BOUND, "_big": _big,
    "_add": _add_limited, "_sub": ops.subtract, "_mul": ops.multiply, "_div": ops.divide, "_mod": ops.modulo,
    "_exact_add": ops.decimal_add, "_exact_sub": ops.decimal_subtract, "_exact_mul": ops.decimal_multiply,
    "_neg": ops.negate, "_eq": equal, "_lt": ops.less, "_le": ops.less_equal, "_gt": ops.greater,
    "_ge": ops.greater_equal, "_in": _is_in, "_not_in": _is_not_in, "_truthy": truthy,
    # what the slow form would raise alike: not worth evaluating again (a MemoryError would fill the memory
    # a second time before it fails)
    "_PASS": (FlowRuntimeError, NeedsMaterialization, ReturnSignal, MemoryError),
    "dict": dict, "type": type, "bool": bool, "str": str, "int": int,
}
ARITHMETIC = {ast.BinOp.ADD: ("+", "_add"), ast.BinOp.SUB: ("-", "_sub"), ast.BinOp.MUL: ("*", "_mul")}
BOOLEAN_OPS = frozenset({ast.BinOp.EQ, ast.BinOp.NE, ast.BinOp.LT, ast.BinOp.LE, ast.BinOp.GT, ast.BinOp.GE,
                         ast.BinOp.IN, ast.BinOp.NOT_IN})
ORDERING = {ast.BinOp.LT: ("<", "_lt"), ast.BinOp.LE: ("<=", "_le"), ast.BinOp.GT: (">", "_gt"),
            ast.BinOp.GE: (">=", "_ge")}


class Unsupported(Exception):
    """The node is embedded as a closure instead."""


class Generator:
    """Turns one expression tree into Python source over a namespace of helpers and constants."""

    def __init__(self, compiler: ExpressionCompiler) -> None:
        self.compiler = compiler
        self.ns: dict[str, Any] = dict(HELPERS)
        self.count = 0
        self.native = 0
        self.closures = 0
        self.locals: dict[int, str] = {}  # comprehension slots held in Python locals
        # a comprehension variable whose fields are read: the name of its `is dict` test, computed
        # once per item (g_ListComp)
        self.local_tests: dict[int, str] = {}
        self.plain_fields: set[ast.Field] = set()  # steps of a chain checked at its end (g_Field)
        # local variables whose fields are read, each read once at the start with its `is dict` test:
        # slot -> (value name, test name); never a slot a comprehension of the expression binds (`bound`),
        # so no hoisted slot changes while the expression is evaluated
        self.hoisted: dict[int, tuple[str, str]] = {}
        self.hoisting = False
        self.bound: frozenset[int] = frozenset()
        # `x.name` of a hoisted variable read more than once in the trees (`o.items` in three fields): read
        # once at the start, after the variables; (slot, name) -> [value name, `is dict` test name, the
        # test used (a field of it is read)]
        self.repeated: frozenset[tuple[int, str]] = frozenset()
        self.shared: dict[tuple[int, str], list[Any]] = {}

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any) -> str:
        name = self.name("_k")
        self.ns[name] = value
        return name

    def closure(self, node: ast.Expr) -> str:
        self.closures += 1
        return f"{self.const(self.compiler.closure(node))}(f)"

    def test(self, node: ast.Expr) -> str:
        """Code for a condition as a Python bool, by the one rule of truth (flowlang.runtime.values.truthy);
        the call is left out where the node can only give a boolean."""
        code = self.gen(node)
        if isinstance(node, ast.Not | ast.Logical) or (isinstance(node, ast.Binary) and node.op in BOOLEAN_OPS) or \
                (isinstance(node, ast.Literal) and type(node.value) is bool):
            return code
        return f"_truthy({code})"

    def gen(self, node: ast.Expr) -> str:
        method = getattr(self, "g_" + type(node).__name__, None)
        if method is None:
            return self.closure(node)
        try:
            code: str = method(node)
        except Unsupported:
            return self.closure(node)
        self.native += 1
        return code

    # ---- nodes --------------------------------------------------------------------------------
    def g_Literal(self, node: ast.Literal) -> str:
        value = node.value
        if value is None or type(value) in (bool, int, str):
            return repr(value)
        return self.const(value)

    def g_Name(self, node: ast.Name) -> str:
        ref = self.compiler.checked.resolution.refs.get(node)
        if isinstance(ref, Local):
            return self.locals.get(ref.slot, f"s[{ref.slot}]")
        if isinstance(ref, Outer):
            return f"f.parent.slots[{ref.slot}]"
        raise Unsupported

    def g_Field(self, node: ast.Field) -> str:
        if isinstance(node.obj, ast.Name) and node.obj.name in ("env", "secret", "job", "state", "input") and \
                not isinstance(self.compiler.checked.resolution.refs.get(node.obj), Local | Outer):
            raise Unsupported
        if node in self.plain_fields:  # a step inside a chain whose end is checked
            return self.plain_field(node)
        chain = self.compiler.field_chain_of(node)
        if chain is not None:  # `o.a.b` on a local: one check at the end, the miss found by _nothing
            inner = node.obj
            while isinstance(inner, ast.Field):
                self.plain_fields.add(inner)
                inner = inner.obj
            r = self.name("_r")
            return f"({r} if ({r} := {self.plain_field(node)}) is not None else _nothing(f, {self.const(chain)}))"
        site = self.compiler.field_site(node)
        shared = self.shared_read(node) if site is not None else None
        if shared is not None and site is not None:  # read at the start: a null of an object is its miss
            (c, _, _), t, is_dict = shared
            return f"({c} if {c} is not None else _miss(f, {self.const(site)}, {t}) if {is_dict} else None)"
        if site is not None:  # a miss is counted (runtime/field_misses.py); a value costs one comparison
            held = self.held(node.obj)
            if held is not None:
                t, is_dict = held
                r = self.name("_r")
                got = f"({r} if ({r} := {t}.get({node.name!r})) is not None else _miss(f, {self.const(site)}, {t}))"
                return f"({got} if {is_dict} else _fld({t}, {node.name!r}))"
            obj = self.gen(node.obj)
            t, r = self.name("_t"), self.name("_r")
            got = f"({r} if ({r} := {t}.get({node.name!r})) is not None else _miss(f, {self.const(site)}, {t}))"
            return f"({got} if type({t} := {obj}) is dict else _fld({t}, {node.name!r}))"
        return self.plain_field(node)

    def shared_read(self, node: ast.Field) -> tuple[list[Any], str, str] | None:
        """For `x.name` read more than once, x a hoisted variable: its entry in Generator.shared (the names
        of the value read at the start...), the names of its variable and of its variable's `is dict` test."""
        if not isinstance(node.obj, ast.Name):
            return None
        ref = self.compiler.checked.resolution.refs.get(node.obj)
        if not isinstance(ref, Local) or (ref.slot, node.name) not in self.repeated or ref.slot in self.locals:
            return None
        held = self.held(node.obj)
        if held is None:
            return None
        entry = self.shared.get((ref.slot, node.name))
        if entry is None:
            entry = self.shared[(ref.slot, node.name)] = [self.name("_c"), self.name("_d"), False]
        return entry, held[0], held[1]

    def plain_field(self, node: ast.Field) -> str:
        shared = self.shared_read(node)
        if shared is not None:  # its value, or the read went to the closures at the start
            return str(shared[0][0])
        held = self.held(node.obj)
        if held is not None:
            t, is_dict = held
            return f"({t}.get({node.name!r}) if {is_dict} else _fld({t}, {node.name!r}))"
        obj = self.gen(node.obj)
        t = self.name("_t")
        return f"({t}.get({node.name!r}) if type({t} := {obj}) is dict else _fld({t}, {node.name!r}))"

    def held(self, obj: ast.Expr) -> tuple[str, str] | None:
        """For a local variable whose field is read: its value and `is dict` test, read once (hoisted);
        likewise a field of it read more than once (shared_read), whose own fields are read."""
        if isinstance(obj, ast.Field):
            shared = self.shared_read(obj)
            if shared is None:
                return None
            entry = shared[0]
            entry[2] = True  # its test is made at the start too
            return entry[0], entry[1]
        if not isinstance(obj, ast.Name):
            return None
        ref = self.compiler.checked.resolution.refs.get(obj)
        if not isinstance(ref, Local):
            return None
        if ref.slot in self.locals:  # a comprehension's item: its test is made once per item
            test = self.local_tests.get(ref.slot)
            if test is None:
                test = self.local_tests[ref.slot] = self.name("_d")
            self.native += 1
            return self.locals[ref.slot], test
        if not self.hoisting or ref.slot in self.bound:
            return None
        self.native += 1  # the name, as gen() counts it
        found = self.hoisted.get(ref.slot)
        if found is None:
            found = self.hoisted[ref.slot] = (self.name("_h"), self.name("_d"))
        return found

    def g_Index(self, node: ast.Index) -> str:
        o, i = self.name("_o"), self.name("_i")  # an object's key inline; anything else in _idx
        return (f"({o}.get({i}) if (type({o} := {self.gen(node.obj)}) is dict) & (type({i} := {self.gen(node.index)}) "
                f"is str) else _idx({o}, {i}))")

    def g_ListLit(self, node: ast.ListLit) -> str:
        return "[" + "".join(f"{self.gen(i)}, " for i in node.items) + "]"

    def g_ObjectLit(self, node: ast.ObjectLit) -> str:
        if not all(isinstance(p.key, ast.Literal) and isinstance(p.key.value, str) for p in node.pairs):
            raise Unsupported
        return "{" + "".join(f"{p.key.value!r}: {self.gen(p.value)}, " for p in node.pairs  # type: ignore[union-attr]
                             ) + "}"

    def g_Interpolated(self, node: ast.Interpolated) -> str:
        parts = [repr(p) if isinstance(p, str) else self.gen(p) for p in node.parts]
        return "_interp((" + "".join(f"{p}, " for p in parts) + "))"

    def g_ListComp(self, node: ast.ListComp, summed: bool = False) -> str:
        """A list comprehension; `summed`: sum() of it, added up as its items come (Generator.walker)."""
        comp = node.comp
        if len(comp.names) != 1:
            raise Unsupported
        slot = self.compiler.checked.resolution.slots[(comp, 0)]
        iterable = self.gen(comp.iterable)
        var = self.name("_v")
        before = self.closures
        self.locals[slot] = var
        try:
            element = self.gen(node.element)
            condition = self.test(comp.condition) if comp.condition is not None else None
        finally:
            del self.locals[slot]
            test = self.local_tests.pop(slot, None)
        if self.closures != before:  # a closure inside would read the slot, which a Python local skips
            raise Unsupported
        items = self.name("_l")
        walk = self.walker(var, test, element, condition, items, summed)
        # a short list is walked as it is after one check (as limits.paced), anything else by _iter and
        # _paced (what the comprehension walks is that choice, not the value it was made of)
        return (f"(({items} := ({items} if f.run.limits.max_record_seconds is None and not f.run.stop.hard "
                f"else _checked({items}, f.run.stop)) if type({items} := {iterable}) is list "
                f"and len({items}) < _CHECK_EVERY else _paced(_iter({items}), f.run.stop)), {walk})[1]")

    def walker(self, var: str, test: str | None, element: str, condition: str | None, items: str,
               summed: bool = False) -> str:
        """The call of a function of its own that walks a comprehension's items (a loop, not a Python
        comprehension: the names an element binds with := are its locals, where in a comprehension they
        would be cells of the generated function, made and freed at every call); the names of the
        generated function it reads are its arguments. `summed`: it gives the items' total as sum()'s fast
        path adds (whole numbers in Python, a decimal among them in DECIMAL_FAST, nulls left out);
        anything else (a text, a boolean, a digit lost, a total past MAX_DIGITS digits) goes to the
        closures, whose sum() gives its result or its error."""
        code = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "", f"{element} {condition or ''}")  # no texts
        bound = set(re.findall(r"\b(_[A-Za-z]+\d+) :=", code)) | {var, test}
        read = dict.fromkeys(re.findall(r"\b_[A-Za-z]+\d+\b", code))
        params = [n for n in read if n not in bound and n not in self.ns]
        name = self.name("_walk")
        args = "".join(f", {p}" for p in params)
        tested = f"        {test} = type({var}) is dict\n" if test is not None else ""  # once per item
        if summed:
            add = ("_x = {element}\n_t = type(_x)\nif _t is _Dec:\n    _total = _exact_add(_total, _x)\n"
                   "elif _t is int:\n    _total = _total + _x if type(_total) is int else _exact_add(_total, _x)\n"
                   "elif _x is not None:\n    raise ValueError('not a number')\n")
            indent = "        " if condition is None else "            "
            kept = "".join(indent + line + "\n" for line in add.format(element=element).splitlines())
            if condition is not None:
                kept = f"        if {condition}:\n{kept}"
            source = (f"def {name}(f, s, {items}{args}):\n    _total = 0\n"
                      f"    for {var} in {items}:\n{tested}{kept}"
                      "    if type(_total) is int and not _NB < _total < _B:\n        raise ValueError('too large')\n"
                      "    return _total\n")
        else:
            kept = f"        append({element})\n" if condition is None else \
                f"        if {condition}:\n            append({element})\n"
            # the list so far is a local, which the traceback's frame keeps while the error is handled: out of
            # memory, handling it found no memory either and the run failed with no line; freed before it goes
            loop = "".join("    " + line + "\n" for line in f"    for {var} in {items}:\n{tested}{kept}".splitlines())
            source = (f"def {name}(f, s, {items}{args}):\n    out = []\n    append = out.append\n    try:\n{loop}"
                      "    except BaseException:\n        out = append = None\n        raise\n    return out\n")
        try:
            self.ns[name] = build(source, self.ns, f"<flow {self.compiler.checked.source.name}>")
        except (SyntaxError, RecursionError, MemoryError):  # past what Python compiles: the closure
            raise Unsupported from None
        return f"{name}(f, s, {items}{args})"

    def g_Negate(self, node: ast.Negate) -> str:
        return f"_neg({self.gen(node.operand)})"

    def g_Not(self, node: ast.Not) -> str:
        return f"(not {self.test(node.operand)})"

    def g_Logical(self, node: ast.Logical) -> str:
        op = "and" if node.op is ast.LogicOp.AND else "or"
        return f"({self.test(node.left)} {op} {self.test(node.right)})"

    def g_Coalesce(self, node: ast.Coalesce) -> str:
        if is_secret_read(node.left):  # null when not set: the closure's (expressions.defaulted_secret)
            raise Unsupported
        t = self.name("_t")
        return f"({t} if ({t} := {self.gen(node.left)}) is not None else {self.gen(node.right)})"

    def g_Conditional(self, node: ast.Conditional) -> str:
        return f"({self.gen(node.then)} if {self.test(node.condition)} else {self.gen(node.otherwise)})"

    def g_Binary(self, node: ast.Binary) -> str:
        left, right = self.gen(node.left), self.gen(node.right)
        op = node.op
        if op in ARITHMETIC or op in ORDERING:
            symbol, helper = ARITHMETIC.get(op) or ORDERING[op]
            # a whole number written on the right (`len(xs) > 3`, `x * 100`): its type is known, and it
            # is used as it is written (right is its literal)
            whole_right = isinstance(node.right, ast.Literal) and type(node.right.value) is int
            a, b = self.name("_a"), right if whole_right else self.name("_b")
            extra = ", f" if helper == "_add" else ""
            native = f"{a} {symbol} {b}"
            if op in ARITHMETIC:
                # two whole numbers in Python; a decimal among them in DECIMAL_FAST, which refuses to round
                # (the closure computes it exactly); a whole number past MAX_DIGITS digits: the closure says so
                r, ta = self.name("_r"), self.name("_ta")
                whole = f"({r} if _NB < ({r} := {native}) < _B else _big())"
                if whole_right:
                    return (f"({whole} if ({ta} := type({a} := {left})) is int "
                            f"else _exact_{helper[1:]}({a}, {b}) if {ta} in _N else {helper}({a}, {b}{extra}))")
                tb = self.name("_tb")  # each operand's type taken once
                return (f"({whole} if (({ta} := type({a} := {left})) is int) & (({tb} := type({b} := {right})) is int) "
                        f"else _exact_{helper[1:]}({a}, {b}) if ({ta} in _N) & ({tb} in _N) "
                        f"else {helper}({a}, {b}{extra}))")
            if whole_right:
                return f"({native} if type({a} := {left}) in _N else {helper}({a}, {b}{extra}))"
            return (f"({native} if (type({a} := {left}) in _N) & (type({b} := {right}) in _N) "
                    f"else {helper}({a}, {b}{extra}))")
        if op is ast.BinOp.EQ or op is ast.BinOp.NE:
            negate = "not " if op is ast.BinOp.NE else ""
            if isinstance(node.right, ast.Literal) and (node.right.value is None or type(node.right.value) is bool):
                t = self.name("_t")  # bound first: `"x" is True` would make Python warn of a literal
                return f"(({t} := {left}) is {'not ' if negate else ''}{node.right.value!r})"
            if isinstance(node.right, ast.Literal) and type(node.right.value) is str:
                t, text = self.name("_t"), repr(node.right.value)  # a secret compares as its text (_eq)
                test = f"({t} == {text} if type({t} := {left}) is str else _eq({t}, {text}))"
                return f"(not {test})" if negate else test
            return f"({negate}_eq({left}, {right}))"
        if op is ast.BinOp.DIV:
            return f"_div({left}, {right})"
        if op is ast.BinOp.MOD:
            return f"_mod({left}, {right})"
        if op is ast.BinOp.IN:
            return f"_in({left}, {right})"
        return f"_not_in({left}, {right})"

    def g_FuncCall(self, node: ast.FuncCall) -> str:
        target = self.compiler.checked.resolution.calls[node]
        if not isinstance(target, Builtin):
            raise Unsupported
        if target.fn is sum_ and len(node.args) == 1 and not node.kwargs and isinstance(node.args[0], ast.ListComp):
            try:  # sum([... for x in xs]): added up as the items come, no list made
                code = self.g_ListComp(node.args[0], summed=True)
            except Unsupported:
                pass
            else:
                self.native += 1  # the comprehension, as gen() counts it
                return code
        if target.with_constant is not None and len(node.args) == 2 and not node.kwargs and \
                isinstance(node.args[1], ast.Literal):  # round(x, 2): the form for that constant
            form = target.with_constant(node.args[1].value)
            if form is not None:
                return f"{self.const(form)}({self.gen(node.args[0])})"
        values = target.order([self.gen(a) for a in node.args], {k.name: self.gen(k.value) for k in node.kwargs},
                              lambda value: self.g_Literal(ast.Literal(value, node.span)))
        if target.direct is not None and len(values) == 1:  # e.g. len of a list: no frame of the builtin's
            types, direct = target.direct
            t = self.name("_t")
            test = (f"type({t} := {values[0]}) is {self.const(next(iter(types)))}" if len(types) == 1
                    else f"type({t} := {values[0]}) in {self.const(types)}")
            return f"({self.const(direct)}({t}) if {test} else {self.const(target.fn)}({t}))"
        return f"{self.const(target.fn)}({', '.join(values)})"


def build(source: str, ns: dict[str, Any], filename: str) -> Eval:
    """A Python function from generated source, without exec: compile, then take the function's code."""
    module = compile(source, filename, "exec")
    code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    function: Eval = types.FunctionType(code, ns)
    return function


def bound_slots(compiler: ExpressionCompiler, nodes: list[ast.Expr]) -> frozenset[int]:
    """The slots the comprehensions in the trees bind: the only slots that change while the trees are
    evaluated (every other slot read there holds a variable in scope, which no comprehension reuses)."""
    slots = compiler.checked.resolution.slots
    bound: set[int] = set()
    seen: list[Any] = list(nodes)
    while seen:
        node = seen.pop()
        if isinstance(node, ast.ListComp | ast.ObjectComp):
            bound.update(slots[(node.comp, i)] for i in range(len(node.comp.names)))
        if isinstance(node, tuple | list):
            seen.extend(node)
        elif isinstance(node, ast.Node):
            seen.extend(getattr(node, name) for name in ast.fields(node))
    return frozenset(bound)


def repeated_reads(compiler: ExpressionCompiler, nodes: list[ast.Expr],
                   bound: frozenset[int]) -> frozenset[tuple[int, str]]:
    """The (slot, name) of each `x.name` the trees read more than once, x a variable no comprehension of
    theirs binds (Generator.shared)."""
    refs = compiler.checked.resolution.refs
    seen: dict[tuple[int, str], int] = {}
    todo: list[Any] = list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Field) and isinstance(node.obj, ast.Name):
            ref = refs.get(node.obj)
            if isinstance(ref, Local) and ref.slot not in bound:
                seen[(ref.slot, node.name)] = seen.get((ref.slot, node.name), 0) + 1
        if isinstance(node, tuple | list):
            todo.extend(node)
        elif isinstance(node, ast.Node):
            todo.extend(getattr(node, name) for name in ast.fields(node))
    return frozenset(key for key, n in seen.items() if n > 1)


def generate(compiler: ExpressionCompiler, node: ast.Expr, slow: Eval) -> Eval | None:
    """A generated function for an expression, or None when closures serve as well."""
    gen = Generator(compiler)
    gen.hoisting = True
    gen.bound = bound_slots(compiler, [node])
    gen.repeated = repeated_reads(compiler, [node], gen.bound)
    try:
        body = gen.gen(node)
    except RecursionError:
        return None
    if gen.native < MIN_NATIVE:
        return None
    gen.ns["_where"] = compiler.where(node.span)  # its place, for a MemoryError (errors.out_of_memory)
    return _function(gen, f"return {body}", slow)


def generate_object(compiler: ExpressionCompiler, source: ast.Expr, pairs: list[tuple[str, ast.Expr]],
                    slow: Eval) -> Eval | None:
    """One function that evaluates a map's source and builds its object (map without nested paths)."""
    gen = Generator(compiler)
    gen.hoisting = True
    gen.bound = bound_slots(compiler, [source, *(value for _, value in pairs)])
    gen.repeated = repeated_reads(compiler, [source, *(value for _, value in pairs)], gen.bound)
    try:
        # a variable as the source: reading it does nothing, so it is not read
        src = None if isinstance(compiler.checked.resolution.refs.get(source), Local | Outer) else gen.gen(source)
        fields = "".join(f"{k!r}: {gen.gen(v)}, " for k, v in pairs)
    except RecursionError:
        return None
    if gen.native < MIN_NATIVE:
        return None
    gen.ns["_where"] = compiler.where(source.span)
    return _function(gen, f"return {{{fields}}}" if src is None else f"return ({src}, {{{fields}}})[1]", slow)


def _function(gen: Generator, statement: str, slow: Eval) -> Eval:
    gen.ns["_slow"] = slow
    held = "".join(f"        {value} = s[{slot}]\n        {is_dict} = type({value}) is dict\n"
                   for slot, (value, is_dict) in gen.hoisted.items())
    for (slot, name), (value, is_dict, tested) in gen.shared.items():  # after the variables they read
        of, of_dict = gen.hoisted[slot]
        held += f"        {value} = {of}.get({name!r}) if {of_dict} else _ahead({of})\n"
        if tested:
            held += f"        {is_dict} = type({value}) is dict\n"
    source = (
        "def generated(f):\n"
        "    s = f.slots\n"
        "    try:\n"
        f"{held}"
        f"        {statement}\n"
        "    except _PASS:\n"
        "        raise\n"
        "    except Exception:\n"
        "        return _slow(f)\n"
    )
    try:
        return build(source, gen.ns, f"<flow {gen.compiler.checked.source.name}>")
    except (SyntaxError, RecursionError, MemoryError):  # past what Python compiles (200 nested brackets)
        return slow
