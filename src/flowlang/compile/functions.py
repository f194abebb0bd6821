"""User functions: their bodies (compiled without I/O; loops inside them are plain loops), the program's
table of compiled functions (each compiled once, when its first call is compiled), and call sites."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowlang import ast
from flowlang.compile.loops import ForEachCompiler
from flowlang.compile.steps import NOTHING, Eval, Step
from flowlang.errors import LimitError
from flowlang.runtime.frame import Frame, ReturnSignal
from flowlang.runtime.limits import check_time

if TYPE_CHECKING:
    from flowlang.check.program import CheckedModule, FunctionInfo
    from flowlang.compile.expressions import ExpressionCompiler


class CompiledFunction:
    """A function's body and frame layout; `body` is filled after creation so recursion works."""

    def __init__(self, info: FunctionInfo, module_index: int) -> None:
        self.info = info
        self.module_index = module_index
        self.body: Step = NOTHING
        self.direct: Eval | None = None  # a body that is just `return expr`
        self.defaults: list[Eval | None] = []

    def invoke(self, caller: Frame, values: list[Any], where: Any) -> Any:
        run = caller.run
        check_time(run.stop)
        if run.depth >= run.limits.max_call_depth:
            raise LimitError(f"functions call each other more than {run.limits.max_call_depth} deep "
                             "(max_call_depth): is a recursion missing its end?", source=where.source,
                             span=where.span)
        frame = Frame([None] * self.info.frame.size, run.frames[self.module_index], run, caller.out)
        slots = frame.slots
        for slot, value in zip(self.info.param_slots, values):  # noqa: B905 (one value a parameter: call_closure)
            slots[slot] = value
        run.depth += 1
        try:
            if self.direct is not None:
                return self.direct(frame)
            self.body.run(frame)
            return None
        except ReturnSignal as r:
            return r.value
        except RecursionError:  # Python's stack ran out before max_call_depth (set high): still the user's
            raise LimitError(too_deep_message(self.info.name, run.depth, run.limits.max_call_depth),
                             source=where.source, span=where.span) from None
        finally:
            run.depth -= 1


def too_deep_message(name: str, depth: int, most: int) -> str:
    """What a call says when Python's own stack runs out under a raised max_call_depth. Made at the
    deepest call that has room for it (a call with none lets the RecursionError go to its caller)."""
    return (f"{name}() calls itself too deeply: the stack ran out {depth} calls deep, before "
            f"max_call_depth ({most}): is a recursion missing its end?")


class FunctionCompiler(ForEachCompiler):
    """Adds function bodies to the statement compilers of a module."""

    def function_body(self, stmts: tuple[ast.Stmt, ...]) -> Step:
        saved, self.in_function = self.in_function, True
        try:
            return self.body(stmts)
        finally:
            self.in_function = saved


class FunctionTable:
    """The user functions of one program, each compiled once, by the compiler of the module that defines
    it, when the first call to it is compiled (recursion and calls into imported files included)."""

    def __init__(self, compiler_of: Callable[[CheckedModule], tuple[int, FunctionCompiler]]) -> None:
        self.compiler_of = compiler_of  # a module's index in the run's frames, and its compiler
        self.compiled: dict[int, CompiledFunction] = {}

    def get(self, info: FunctionInfo) -> CompiledFunction:
        found = self.compiled.get(id(info))
        if found is not None:
            return found
        index, compiler = self.compiler_of(info.module)
        fn = CompiledFunction(info, index)
        self.compiled[id(info)] = fn  # before the body: a recursive call finds it
        compile_body(fn, compiler)
        return fn

    def call(self, compiler: ExpressionCompiler, node: ast.FuncCall, info: FunctionInfo) -> Eval:
        return call_closure(compiler, node, self.get(info))


def compile_body(fn: CompiledFunction, compiler: FunctionCompiler) -> None:
    """Fill a CompiledFunction from the compiler of the module that defines it."""
    node: ast.Function = fn.info.node
    saved, compiler.in_function = compiler.in_function, True  # compiled from wherever its first call is
    try:
        fn.defaults = [compiler.expr(p.default) if p.default is not None else None for p in node.params]
        if len(node.body) == 1 and isinstance(node.body[0], ast.Return) and node.body[0].value is not None:
            fn.direct = compiler.expr(node.body[0].value)
            return
        fn.body = compiler.function_body(node.body)
    finally:
        compiler.in_function = saved


def call_closure(compiler: ExpressionCompiler, node: ast.FuncCall, fn: CompiledFunction) -> Eval:
    """The closure of one call site: arguments in parameter order, defaults from the defining module."""
    params = [p.name for p in fn.info.node.params]
    args = [compiler.expr(a) for a in node.args]
    kwargs = {k.name: compiler.expr(k.value) for k in node.kwargs}
    where = compiler.where(node.span)
    plan: list[tuple[str, Any]] = []
    for i, name in enumerate(params):
        if i < len(args):
            plan.append(("arg", args[i]))
        elif name in kwargs:
            plan.append(("arg", kwargs[name]))
        else:
            plan.append(("default", i))
    module_index = fn.module_index

    def call(f: Frame) -> Any:
        values = []
        for kind, item in plan:
            if kind == "arg":
                values.append(item(f))
            else:
                default = fn.defaults[item]
                values.append(default(f.run.frames[module_index]) if default is not None else None)
        return fn.invoke(f, values, where)

    return call
