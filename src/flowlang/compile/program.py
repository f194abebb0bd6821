"""The compiler's entry: a checked program -> compiled modules (one Step per module body),
compiled functions, params and the loop entries `flowlang retry` re-enters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowlang import ast
from flowlang.check.program import CheckedModule, FunctionInfo
from flowlang.compile.expressions import Eval, ExpressionCompiler
from flowlang.compile.functions import CompiledFunction, call_closure, compile_body
from flowlang.compile.io import IoCompiler
from flowlang.compile.loops import LoopCompiler, LoopInfo, sync_loop
from flowlang.compile.statements import DECLARATIONS
from flowlang.compile.steps import Step, block, stoppable


@dataclass
class CompiledParam:
    name: str
    slot: int
    default: Eval | None
    node: ast.Param


@dataclass
class LoopEntry:
    """A loop that `flowlang retry` can re-enter: its body, and the names its failures saved."""

    loop: LoopCompiler

    @property
    def info(self) -> LoopInfo:
        return self.loop.info


@dataclass(eq=False)
class CompiledModule:
    checked: CheckedModule
    index: int
    body: Step = field(default_factory=lambda: block([]))
    params: list[CompiledParam] = field(default_factory=list)
    loops: dict[str, LoopEntry] = field(default_factory=dict)
    prelude: Step = field(default_factory=lambda: block([]))  # use and import lines, for retry


class ModuleCompiler(IoCompiler):
    """Compiles one checked module."""

    def __init__(self, checked: CheckedModule, program: ProgramCompiler, compiled: CompiledModule) -> None:
        super().__init__(checked, program)
        self.compiled = compiled
        self.loop_stack: list[LoopInfo] = []
        self.in_function = False

    def function_body(self, stmts: tuple[ast.Stmt, ...]) -> Step:
        saved, self.in_function = self.in_function, True
        try:
            return self.body(stmts)
        finally:
            self.in_function = saved

    def s_ForEach(self, node: ast.ForEach) -> Step:
        res = self.checked.resolution
        slots = tuple(res.slots[(node, i)] for i in range(len(node.names)))
        iterable = self.expr(node.iterable)
        where = self.where(node.iterable.span)
        if self.in_function:
            return sync_loop(node, slots, iterable, self.body(node.body), where)
        line, col = self.checked.source.line_col(node.span.start)
        info = LoopInfo(f"{line}:{col}", line, self.checked.source.location(node.span), slots,
                        res.loop_scopes.get(node, ()))
        self.loop_stack.append(info)
        try:
            body = self.body(node.body)
        finally:
            self.loop_stack.pop()
        parallel = None
        if node.parallel is not None:
            value = node.parallel.value
            parallel = (lambda f: value) if isinstance(value, int) else self.read_ref(
                self.checked.resolution.refs.get(node.parallel), ast.Name(value, node.parallel.span))
        loop = LoopCompiler(node, info, iterable, body, where, parallel)
        self.compiled.loops[info.loop_id] = LoopEntry(loop)
        return loop.step()

    def compile_module(self) -> None:
        stmts = self.checked.module.statements
        res = self.checked.resolution
        for p in self.checked.params:
            default = self.expr(p.default) if p.default is not None else None
            self.compiled.params.append(CompiledParam(p.name, res.slots[(p, 0)], default, p))
        self.compiled.body = stoppable(
            [self.stmt(s) for s in stmts if not isinstance(s, DECLARATIONS)])
        self.compiled.prelude = block([self.stmt(s) for s in stmts if isinstance(s, ast.Use | ast.Import)])


class ProgramCompiler:
    """Compiles a program: the main module, the modules it imports, and every function once."""

    def __init__(self) -> None:
        self.modules: list[CompiledModule] = []
        self._by_checked: dict[int, CompiledModule] = {}
        self._compilers: dict[int, ModuleCompiler] = {}
        self._functions: dict[int, CompiledFunction] = {}

    def module(self, checked: CheckedModule) -> CompiledModule:
        found = self._by_checked.get(id(checked))
        if found is not None:
            return found
        compiled = CompiledModule(checked, len(self.modules))
        self.modules.append(compiled)
        self._by_checked[id(checked)] = compiled
        compiler = ModuleCompiler(checked, self, compiled)
        self._compilers[id(checked)] = compiler
        compiler.compile_module()
        return compiled

    def compiler_for(self, checked: CheckedModule) -> ModuleCompiler:
        self.module(checked)
        return self._compilers[id(checked)]

    def function(self, info: FunctionInfo) -> CompiledFunction:
        found = self._functions.get(id(info))
        if found is not None:
            return found
        module = self.module(info.module) if id(info.module) not in self._by_checked else \
            self._by_checked[id(info.module)]
        fn = CompiledFunction(info, module.index)
        self._functions[id(info)] = fn
        compile_body(fn, self._compilers[id(info.module)])
        return fn

    def function_call(self, compiler: ExpressionCompiler, node: ast.FuncCall, info: FunctionInfo) -> Eval:
        return call_closure(compiler, node, self.function(info))

    def extra(self, checked: CheckedModule, stmts: tuple[ast.Stmt, ...]) -> Step:
        """Compile more statements of an already compiled module (the REPL)."""
        compiler = self.compiler_for(checked)
        for s in stmts:
            if isinstance(s, ast.Param):
                default = compiler.expr(s.default) if s.default is not None else None
                self.module(checked).params.append(
                    CompiledParam(s.name, checked.resolution.slots[(s, 0)], default, s))
        return compiler.body(stmts)


def compile_program(checked: CheckedModule) -> tuple[ProgramCompiler, CompiledModule]:
    program = ProgramCompiler()
    return program, program.module(checked)


__all__ = ["Any", "CompiledModule", "LoopEntry", "ProgramCompiler", "compile_program"]
