"""User functions: compiled once per program, called from expressions with their own frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowlang import ast
from flowlang.compile.expressions import Eval
from flowlang.compile.steps import NOTHING, Step
from flowlang.errors import LimitError
from flowlang.runtime.frame import Frame, ReturnSignal

if TYPE_CHECKING:
    from flowlang.check.program import FunctionInfo
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
        if run.depth >= run.limits.max_call_depth:
            raise LimitError(f"functions call each other more than {run.limits.max_call_depth} deep "
                             "(max_call_depth): is a recursion missing its end?", source=where.source,
                             span=where.span)
        frame = Frame([None] * self.info.frame.size, run.frames[self.module_index], run, caller.out)
        slots = frame.slots
        for slot, value in zip(self.info.param_slots, values, strict=False):
            slots[slot] = value
        run.depth += 1
        try:
            if self.direct is not None:
                return self.direct(frame)
            self.body.run(frame)
            return None
        except ReturnSignal as r:
            return r.value
        finally:
            run.depth -= 1


def compile_body(fn: CompiledFunction, compiler: Any) -> None:
    """Fill a CompiledFunction from its module's compiler (a StatementCompiler)."""
    node: ast.Function = fn.info.node
    fn.defaults = [compiler.expr(p.default) if p.default is not None else None for p in node.params]
    if len(node.body) == 1 and isinstance(node.body[0], ast.Return) and node.body[0].value is not None:
        fn.direct = compiler.expr(node.body[0].value)
        return
    fn.body = compiler.function_body(node.body)


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
