"""Expressions -> closures `(frame) -> value`. Dispatch on node type happens once, here."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flowlang import ast
from flowlang.check.scopes import Global, Local, Outer
from flowlang.compile.errors import Where
from flowlang.compile.inline import (
    COMPARE,
    arithmetic,
    comparison,
    constant,
    equals_constant,
    literal_constant,
)
from flowlang.compile.steps import Eval
from flowlang.diagnostics import BROKEN_TEXT, is_broken_text
from flowlang.errors import FlowRuntimeError, internal_error
from flowlang.runtime import operators as ops
from flowlang.runtime.builtins import Builtin, BuiltinError
from flowlang.runtime.field_hints import field_hint, text_shown
from flowlang.runtime.field_misses import FieldChain, FieldSite, Reach, found_nothing, missed
from flowlang.runtime.frame import Frame
from flowlang.runtime.jsoncodec import JsonDataError
from flowlang.runtime.limits import ValueTooLarge, paced
from flowlang.runtime.operators import NeedsMaterialization, OperatorError, arithmetic_problem
from flowlang.runtime.values import RecordStream, equal, interpolate, to_text, truthy, type_name
from flowlang.source import Span

if TYPE_CHECKING:
    from flowlang.check.program import CheckedModule, FunctionInfo
    from flowlang.compile.loops import LoopInfo
    from flowlang.compile.program import ProgramCompiler


def field_of(value: Any, name: str, where: Where) -> Any:
    """The slow path of `value.name` (dicts and null are handled inline)."""
    if type(value) is RecordStream:
        raise NeedsMaterialization(value)
    kind = type_name(value)
    hint = field_hint(kind, name)
    raise where.error(f"cannot read field '{name}' of {kind}{text_shown(value)}{hint}")


PAST_ANY_LIST = 10**19  # an index this far is past the end of every list (and of every text)


def whole_index(index: Any) -> int | None:
    """A list or string index as an int: a whole number, 1.0 included; one of more than 18 digits
    (1e999999) as PAST_ANY_LIST with its sign, not converted (int() of it took minutes); None when
    it is not a whole number."""
    t = type(index)
    if t is int:
        return int(index)
    if t is Decimal and index.is_finite() and index == index.to_integral_value():
        if index.adjusted() > 18:
            return -PAST_ANY_LIST if index < 0 else PAST_ANY_LIST
        return int(index)
    return None


def index_of(obj: Any, index: Any, where: Where) -> Any:
    t = type(obj)
    if t is list or t is str:
        i = whole_index(index)
        if i is None:
            raise where.error(f"a {'list' if t is list else 'string'} index must be a whole number, "
                              f"got {type_name(index)}")
        return obj[i] if -len(obj) <= i < len(obj) else None
    if t is dict:
        if type(index) is not str:
            if whole_index(index) is not None and to_text(index) in obj:  # group_by(rows, "id")[o.id], o.id a number
                raise where.error(f"an object key must be a string, got number {to_text(index)}: the object has the "
                                  f"key \"{to_text(index)}\", so write [str(...)] (group_by and index_by key by the "
                                  "value as text)")
            if whole_index(index) is not None:  # x[0] of one record where a list was meant
                raise where.error(f"an object key must be a string, got number {to_text(index)}: this is "
                                  "an object, not a list (a `lookup` gives one record, not a list)")
            raise where.error(f"an object key must be a string, got {type_name(index)}")
        return obj.get(index)
    if obj is None:
        return None
    if t is RecordStream:
        raise NeedsMaterialization(obj)
    raise where.error(f"cannot index {type_name(obj)}")


def iterate(value: Any, pairs: bool, where: Where) -> list[Any]:
    """The items a loop or comprehension walks over (pairs: two loop variables)."""
    t = type(value)
    if t is list:
        return value if not pairs else [_pair(x, where) for x in value]
    if t is dict:
        return [[k, v] for k, v in value.items()] if pairs else list(value)
    if value is None:
        return []
    if t is RecordStream:
        raise NeedsMaterialization(value)
    raise where.error(f"cannot loop over {type_name(value)}")


def _pair(item: Any, where: Where) -> list[Any]:
    if type(item) is list and len(item) == 2:
        return item
    raise where.error(f"two loop variables need [key, value] pairs, got {type_name(item)}")


class ExpressionCompiler:
    """Compiles the expressions of one checked module."""

    def __init__(self, checked: CheckedModule, program: ProgramCompiler) -> None:
        self.checked = checked
        self.program = program
        self.field_sites: dict[ast.Field, FieldSite | None] = {}
        self.repeated = 0  # >0: the node being compiled may run more than once per record (a comprehension)
        self.reach: Reach | None = None  # the statement being compiled counts the records that reach it
        self.reaches_used: set[Reach] = set()  # those that hold a read whose misses are counted
        # the steps of `map ... to o` and of `emit o` of a local variable, by their run: what
        # StatementCompiler.fuse_map_emit joins; (slot, the object's evaluator) and (slot, line, where)
        self.maps_to_slot: dict[Callable[[Frame], None], tuple[int, Eval]] = {}
        self.emits_slot: dict[Callable[[Frame], None], tuple[int, int, Where]] = {}

    def where(self, span: Span) -> Where:
        return Where(self.checked.source, span)

    def watched_loop(self) -> LoopInfo | None:
        """The loop whose records a field read here counts its misses against (field_misses.py): the
        innermost loop, when the read runs at most once per record of it."""
        return None

    def field_site(self, node: ast.Field) -> FieldSite | None:
        """The site of a field read whose misses are counted, decided when the node is first compiled (its
        closure comes first, in its real context; generated code asks again)."""
        if node in self.field_sites:
            return self.field_sites[node]
        loop = self.watched_loop() if self.count_misses and not self.repeated else None
        site = None
        if loop is not None:
            text = self.checked.source.text
            receiver = " ".join(text[node.obj.span.start:node.obj.span.end].split())
            site = FieldSite(node.name, receiver, isinstance(node.obj, ast.Name) and receiver in loop.names,
                             self.checked.source.location(node.name_span), loop.line, loop.listed, self.reach)
            if self.reach is not None:
                self.reaches_used.add(self.reach)
        self.field_sites[node] = site
        return site

    def field_chain_of(self, node: ast.Field) -> FieldChain | None:
        """`x.a.b` on a local variable with at least two reads whose misses are counted: its end is checked,
        and a miss found by walking it again (runtime/field_misses.py)."""
        steps: list[ast.Field] = []
        current: ast.Expr = node
        while isinstance(current, ast.Field):
            steps.append(current)
            current = current.obj
        ref = self.checked.resolution.refs.get(current) if isinstance(current, ast.Name) else None
        if not isinstance(ref, Local) or len(steps) < 2:
            return None
        steps.reverse()
        sites = tuple(self.field_site(s) for s in steps)
        if not any(sites):
            return None
        return FieldChain(ref.slot, tuple(s.name for s in steps), sites)

    codegen = True  # pure expression trees become Python code objects (flowlang.compile.codegen)
    count_misses = True  # field reads in loops count the records they found nothing in (field_misses.py)

    def expr(self, node: ast.Expr) -> Eval:
        """The fastest evaluator of an expression: generated code when it pays, else closures."""
        slow = self.closure(node)
        if self.codegen and not isinstance(node, ast.Literal | ast.Name):
            from flowlang.compile.codegen import generate

            fast = generate(self, node, slow)
            if fast is not None:
                return fast
        return slow

    def closure(self, node: ast.Expr) -> Eval:
        """The closure of one node (its children compiled by expr)."""
        method: Callable[[Any], Eval] = getattr(self, "x_" + type(node).__name__)
        return method(node)

    # ---- atoms --------------------------------------------------------------------------------
    def x_Literal(self, node: ast.Literal) -> Eval:
        value = node.value
        return lambda f: value

    def x_Interpolated(self, node: ast.Interpolated) -> Eval:
        parts: list[tuple[bool, Any]] = [
            (True, p) if isinstance(p, str) else (False, self.expr(p)) for p in node.parts]
        where = self.where(node.span)

        def interpolated(f: Frame) -> Any:
            values = tuple(part if const else part(f) for const, part in parts)  # outside: a deep call's own error
            try:
                return interpolate(values)
            except ValueTooLarge as e:
                raise where.error(e.message, e.kind) from None
            except (RecursionError, JsonDataError) as e:
                raise where.error(too_deep(e), "value") from None

        return interpolated

    def x_Name(self, node: ast.Name) -> Eval:
        return self.read_ref(self.checked.resolution.refs.get(node), node)

    def read_ref(self, ref: object, node: ast.Name) -> Eval:
        """A closure reading a resolved name."""
        if isinstance(ref, Local):
            slot = ref.slot
            return lambda f: f.slots[slot]
        if isinstance(ref, Outer):
            slot = ref.slot
            return lambda f: f.parent.slots[slot]  # type: ignore[union-attr]
        if isinstance(ref, Global):
            return self.global_value(ref.name, node)
        raise AssertionError(f"unresolved name {node.name}")

    def global_value(self, name: str, node: ast.Name) -> Eval:
        if name == "env":
            return lambda f: dict(f.run.env)
        if name == "job":
            return lambda f: f.run.job
        if name == "state":
            return lambda f: f.run.state
        if name == "input":
            return lambda f: f.run.input
        where = self.where(node.span)

        def secret_alone(f: Frame) -> Any:
            raise where.error("use secret.NAME to read one secret", "value")

        return secret_alone

    def x_Field(self, node: ast.Field) -> Eval:
        name = node.name
        if isinstance(node.obj, ast.Name):
            ref = self.checked.resolution.refs.get(node.obj)
            if isinstance(ref, Global) and ref.name in ("env", "secret", "job"):
                return self.global_field(ref.name, name, node)
        chain = self.field_chain(node)
        if chain is not None:
            return chain
        obj = self.expr(node.obj)
        where = self.where(node.name_span)
        site = self.field_site(node)
        if site is not None:
            def get_watched(f: Frame) -> Any:
                v = obj(f)
                if type(v) is dict:
                    r = v.get(name)
                    return r if r is not None else missed(f, site, v)
                if v is None:
                    return None
                return field_of(v, name, where)
            return get_watched

        def get_field(f: Frame) -> Any:
            v = obj(f)
            if type(v) is dict:
                return v.get(name)
            if v is None:
                return None
            return field_of(v, name, where)

        return get_field

    def field_chain(self, node: ast.Field) -> Eval | None:
        """`a.b.c` on a variable of this frame as one closure (the hot path of mappings)."""
        steps: list[ast.Field] = []
        current: ast.Expr = node
        while isinstance(current, ast.Field):
            steps.append(current)
            current = current.obj
        ref = self.checked.resolution.refs.get(current) if isinstance(current, ast.Name) else None
        if not isinstance(ref, Local):
            return None
        steps.reverse()
        slot = ref.slot
        names = tuple(s.name for s in steps)
        wheres = tuple(self.where(s.name_span) for s in steps)
        sites = tuple(self.field_site(s) for s in steps)
        if any(sites):
            return self.watched_chain(slot, names, wheres, sites, self.field_chain_of(node))
        if len(names) == 1:
            (name,) = names
            where = wheres[0]

            def get_one(f: Frame) -> Any:
                v = f.slots[slot]
                if type(v) is dict:
                    return v.get(name)
                if v is None:
                    return None
                return field_of(v, name, where)
            return get_one

        if len(names) == 2:
            n1, n2 = names

            def get_two(f: Frame) -> Any:
                v = f.slots[slot]
                if type(v) is dict:
                    v = v.get(n1)
                    if type(v) is dict:
                        return v.get(n2)
                    if v is None:
                        return None
                    return field_of(v, n2, wheres[1])
                if v is None:
                    return None
                return field_of(v, n1, wheres[0])
            return get_two

        def get_path(f: Frame) -> Any:
            v = f.slots[slot]
            for i, name in enumerate(names):
                if type(v) is dict:
                    v = v.get(name)
                elif v is None:
                    return None
                else:
                    return field_of(v, name, wheres[i])
            return v
        return get_path

    @staticmethod
    def watched_chain(slot: int, names: tuple[str, ...], wheres: tuple[Where, ...],
                      sites: tuple[FieldSite | None, ...], chain: FieldChain | None) -> Eval:
        """`a.b.c` whose reads count their misses (field_misses.py): one check of the value at the end."""
        if chain is None:
            (name,), (where,), (site,) = names, wheres, sites
            assert site is not None

            def get_one(f: Frame) -> Any:
                v = f.slots[slot]
                if type(v) is dict:
                    r = v.get(name)
                    return r if r is not None else missed(f, site, v)
                if v is None:
                    return None
                return field_of(v, name, where)
            return get_one

        steps = tuple(zip(names, wheres, strict=True))

        def get_path(f: Frame) -> Any:
            v = f.slots[slot]
            for name, where in steps:
                if type(v) is dict:
                    v = v.get(name)
                elif v is None:
                    return found_nothing(f, chain)
                else:
                    return field_of(v, name, where)
            return v if v is not None else found_nothing(f, chain)
        return get_path

    def global_field(self, kind: str, name: str, node: ast.Field) -> Eval:
        if kind == "env":
            return lambda f: f.run.env.get(name)
        if kind == "job":
            return lambda f: f.run.job.get(name)
        where = self.where(node.span)

        def read_secret(f: Frame) -> Any:
            try:
                return f.run.secret(name)
            except FlowRuntimeError as e:
                raise where.locate(e) from None

        return read_secret

    def defaulted_secret(self, node: ast.Expr) -> Eval | None:
        """`secret.NAME` on the left of `??`: null when no provider has it (one that failed still fails)."""
        if not (isinstance(node, ast.Field) and isinstance(node.obj, ast.Name)
                and isinstance(self.checked.resolution.refs.get(node.obj), Global) and node.obj.name == "secret"):
            return None
        name = node.name
        where = self.where(node.span)

        def read_secret_or_null(f: Frame) -> Any:
            try:
                return f.run.secret_or_null(name)
            except FlowRuntimeError as e:
                raise where.locate(e) from None

        return read_secret_or_null

    def x_Index(self, node: ast.Index) -> Eval:
        obj = self.expr(node.obj)
        index = self.expr(node.index)
        where = self.where(node.span)

        def get_index(f: Frame) -> Any:
            o = obj(f)
            i = index(f)
            if type(o) is dict and type(i) is str:
                return o.get(i)
            if type(o) is list and type(i) is int:
                return o[i] if -len(o) <= i < len(o) else None
            return index_of(o, i, where)

        return get_index

    # ---- collections ------------------------------------------------------------------------
    def x_ListLit(self, node: ast.ListLit) -> Eval:
        items = [self.expr(i) for i in node.items]
        return lambda f: [i(f) for i in items]

    def x_ObjectLit(self, node: ast.ObjectLit) -> Eval:
        if all(isinstance(p.key, ast.Literal) for p in node.pairs):
            pairs = [(str(p.key.value), self.expr(p.value)) for p in node.pairs]  # type: ignore[union-attr]
            if len(pairs) == 1:  # `query: {id: i}`: built without a comprehension's call
                (k0, v0), = pairs
                return lambda f: {k0: v0(f)}
            return lambda f: {k: v(f) for k, v in pairs}
        dynamic = [(self.expr(p.key), self.expr(p.value)) for p in node.pairs]
        return lambda f: {to_text(k(f)): v(f) for k, v in dynamic}

    def comprehension(self, comp: ast.CompFor) -> tuple[Eval, list[int], Eval | None, Where]:
        slots = [self.checked.resolution.slots[(comp, i)] for i in range(len(comp.names))]
        iterable = self.expr(comp.iterable)
        cond = self.repeated_expr(comp.condition) if comp.condition is not None else None
        return iterable, slots, cond, self.where(comp.iterable.span)

    def repeated_expr(self, node: ast.Expr) -> Eval:
        """An expression that may run more than once per record (a comprehension's element, a loop's key):
        its field reads count no misses."""
        self.repeated += 1
        try:
            return self.expr(node)
        finally:
            self.repeated -= 1

    def x_ListComp(self, node: ast.ListComp) -> Eval:
        iterable, slots, cond, where = self.comprehension(node.comp)
        element = self.repeated_expr(node.element)
        pairs = len(slots) == 2

        if cond is None and not pairs:
            target = slots[0]

            def map_list(f: Frame) -> Any:
                s = f.slots
                source = iterable(f)
                if type(source) is not list:
                    source = iterate(source, False, where)
                source = paced(source, f.run.stop)
                out: list[Any] = []
                append = out.append
                for item in source:
                    s[target] = item
                    append(element(f))
                return out
            return map_list

        def list_comp(f: Frame) -> Any:
            out = []
            s = f.slots
            source = iterable(f)
            items = source if type(source) is list and not pairs else iterate(source, pairs, where)
            for item in paced(items, f.run.stop):
                if pairs:
                    s[slots[0]], s[slots[1]] = item[0], item[1]
                else:
                    s[slots[0]] = item
                if cond is None or truthy(cond(f)):
                    out.append(element(f))
            return out

        return list_comp

    def x_ObjectComp(self, node: ast.ObjectComp) -> Eval:
        iterable, slots, cond, where = self.comprehension(node.comp)
        key = self.repeated_expr(node.key)
        value = self.repeated_expr(node.value)
        pairs = len(slots) == 2

        def object_comp(f: Frame) -> Any:
            out = {}
            s = f.slots
            for item in paced(iterate(iterable(f), pairs, where), f.run.stop):
                if pairs:
                    s[slots[0]], s[slots[1]] = item[0], item[1]
                else:
                    s[slots[0]] = item
                if cond is None or truthy(cond(f)):
                    k = key(f)
                    out[k if type(k) is str else to_text(k)] = value(f)
            return out

        return object_comp

    # ---- operators --------------------------------------------------------------------------
    def x_Negate(self, node: ast.Negate) -> Eval:
        operand = self.expr(node.operand)
        where = self.where(node.span)

        def negate(f: Frame) -> Any:
            try:
                return ops.negate(operand(f))
            except OperatorError as e:
                raise where.error(e.message, e.kind) from None

        return negate

    def x_Not(self, node: ast.Not) -> Eval:
        operand = self.expr(node.operand)
        return lambda f: not truthy(operand(f))

    def x_Binary(self, node: ast.Binary) -> Eval:
        left = self.expr(node.left)
        right = self.expr(node.right)
        where = self.where(node.op_span)
        op = node.op
        if op is ast.BinOp.EQ:
            found = literal_constant(node.right)
            if found is not None:
                return equals_constant(left, found[0])
            return structural(left, right, where, False)
        if op is ast.BinOp.NE:
            return structural(left, right, where, True)
        fn = ops.BINARY[op]
        if op in (ast.BinOp.ADD, ast.BinOp.SUB, ast.BinOp.MUL):
            return arithmetic(op, left, right, fn, where)
        if op in COMPARE:
            return comparison(op, left, right, fn, where)

        def binary(f: Frame) -> Any:
            a = left(f)
            b = right(f)
            try:
                return fn(a, b)
            except OperatorError as e:
                raise where.error(e.message, e.kind) from None
            except ArithmeticError as e:
                raise where.error(arithmetic_problem(e), "value") from None
            except RecursionError as e:  # `in` comparing lists or objects nested thousands deep
                raise where.error(too_deep(e), "value") from None

        return binary

    def x_Logical(self, node: ast.Logical) -> Eval:
        left = self.expr(node.left)
        right = self.expr(node.right)
        if node.op is ast.LogicOp.AND:
            return lambda f: truthy(left(f)) and truthy(right(f))
        return lambda f: truthy(left(f)) or truthy(right(f))

    def x_Coalesce(self, node: ast.Coalesce) -> Eval:
        left = self.defaulted_secret(node.left) or self.expr(node.left)
        right = self.expr(node.right)

        def coalesce(f: Frame) -> Any:
            v = left(f)
            return right(f) if v is None else v

        return coalesce

    def x_Conditional(self, node: ast.Conditional) -> Eval:
        cond = self.expr(node.condition)
        then = self.expr(node.then)
        otherwise = self.expr(node.otherwise)
        return lambda f: then(f) if truthy(cond(f)) else otherwise(f)

    # ---- calls --------------------------------------------------------------------------------
    def x_FuncCall(self, node: ast.FuncCall) -> Eval:
        target = self.checked.resolution.calls[node]
        if isinstance(target, Builtin):
            return self.builtin_call(node, target)
        return self.user_call(node, target)

    def builtin_call(self, node: ast.FuncCall, builtin: Builtin) -> Eval:
        evals = builtin.order([self.expr(a) for a in node.args], {k.name: self.expr(k.value) for k in node.kwargs},
                              constant)
        fn = builtin.fn
        name = builtin.name
        where = self.where(node.span)
        if len(evals) == 1:
            (a0,) = evals

            def call1(f: Frame) -> Any:
                a = a0(f)  # arguments outside the try: a recursion too deep in them is their own error
                try:
                    return fn(a)
                except (BuiltinError, OperatorError, ValueTooLarge) as e:
                    raise where.error(e.message, e.kind) from None
                except ArithmeticError as e:
                    raise where.error(f"{name}(): {arithmetic_problem(e)}", "value") from None
                except (RecursionError, JsonDataError) as e:
                    raise where.error(f"{name}(): {too_deep(e)}", "value") from None
                except UnicodeEncodeError as e:
                    raise encode_error(where, name, e) from None

            return call1
        if len(evals) == 2:
            b0, b1 = evals

            def call2(f: Frame) -> Any:
                a, b = b0(f), b1(f)
                try:
                    return fn(a, b)
                except (BuiltinError, OperatorError, ValueTooLarge) as e:
                    raise where.error(e.message, e.kind) from None
                except ArithmeticError as e:
                    raise where.error(f"{name}(): {arithmetic_problem(e)}", "value") from None
                except (RecursionError, JsonDataError) as e:
                    raise where.error(f"{name}(): {too_deep(e)}", "value") from None
                except UnicodeEncodeError as e:
                    raise encode_error(where, name, e) from None

            return call2

        def call(f: Frame) -> Any:
            values = [e(f) for e in evals]
            try:
                return fn(*values)
            except (BuiltinError, OperatorError, ValueTooLarge) as e:
                raise where.error(e.message, e.kind) from None
            except ArithmeticError as e:
                raise where.error(f"{name}(): {arithmetic_problem(e)}", "value") from None
            except (RecursionError, JsonDataError) as e:
                raise where.error(f"{name}(): {too_deep(e)}", "value") from None
            except UnicodeEncodeError as e:
                raise encode_error(where, name, e) from None

        return call

    def user_call(self, node: ast.FuncCall, info: FunctionInfo) -> Eval:
        return self.program.function_call(self, node, info)




def encode_error(where: Where, name: str, error: UnicodeEncodeError) -> Exception:
    """Broken text (half a surrogate pair, from the data) that reached an encoder inside a builtin:
    the data's fault, at the call; anything else that could not be encoded is a bug in flowlang."""
    if not is_broken_text(error):
        return where.locate(internal_error(error))
    bad = error.object[error.start:error.end]
    return where.error(f"{name}(): cannot encode {bad!r} as UTF-8: {BROKEN_TEXT}", "data")


def too_deep(error: RecursionError | JsonDataError) -> str:
    """What a value built thousands of levels deep (`let x = [x]` in a loop) makes an operation say:
    Python's recursion limit, or the JSON writer's depth limit, in words."""
    if isinstance(error, JsonDataError):
        return str(error)
    return "the value nests too deeply (lists or objects inside each other thousands of levels deep)"


def structural(left: Eval, right: Eval, where: Where, negate: bool) -> Eval:
    """== and != of any two values (structural, so it walks nested lists and objects)."""
    def same(f: Frame) -> bool:
        a, b = left(f), right(f)  # outside the try: only equal()'s own walk is "nests too deeply"
        try:
            return equal(a, b) is not negate
        except RecursionError as e:
            raise where.error(too_deep(e), "value") from None
    return same
