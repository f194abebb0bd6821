"""The compiler's entry: a checked program -> compiled modules (one Step per module body),
compiled functions, params and the loop entries `flowlang retry` re-enters."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from flowlang import ast
from flowlang.check.program import CheckedModule, FunctionInfo
from flowlang.compile.expressions import ExpressionCompiler
from flowlang.compile.functions import FunctionCompiler, FunctionTable
from flowlang.compile.loops import LoopEntry, LoopInfo, find_loop, loop_stem, moved_errors, same_loops
from flowlang.compile.reads import lets_a_retry_cannot_work_out
from flowlang.compile.statements import DECLARATIONS
from flowlang.compile.steps import Eval, Step, block, stoppable
from flowlang.lazy_dataclass import dataclass


@dataclass
class CompiledParam:
    name: str
    slot: int
    default: Eval | None
    node: ast.Param


@dataclass(eq=False)
class CompiledModule:
    checked: CheckedModule
    index: int
    body: Step = field(default_factory=lambda: block([]))
    params: list[CompiledParam] = field(default_factory=list)
    loops: dict[str, LoopEntry] = field(default_factory=dict)
    # retry runs the use, import and let lines first (not a `let` built from a `call`'s answer or a loop's
    # work: compile/reads.py); (step, a failure may be skipped: a `let`)
    prelude_steps: list[tuple[Step, bool]] = field(default_factory=list)


class ModuleCompiler(FunctionCompiler):
    """Compiles one checked module: expressions (expressions.py, codegen.py), statements (statements.py),
    I/O (io.py), loops (loops.py) and function bodies (functions.py)."""

    def __init__(self, checked: CheckedModule, program: ProgramCompiler, compiled: CompiledModule) -> None:
        super().__init__(checked, program)
        self.compiled = compiled
        self.loop_stack: list[LoopInfo] = []
        self.loop_entries = compiled.loops

    def compile_module(self) -> None:
        stmts = self.checked.module.statements
        res = self.checked.resolution
        for p in self.checked.params:
            default = self.expr(p.default) if p.default is not None else None
            self.compiled.params.append(CompiledParam(p.name, res.slots[(p, 0)], default, p))
        self.compiled.body = stoppable(
            [self.stmt(s) for s in stmts if not isinstance(s, DECLARATIONS)])
        for name, entry in self.loop_entries.items():  # an error keeps how many loops share its loop's list
            entry.info.same = len(same_loops(self.loop_entries, name))
        unknown = lets_a_retry_cannot_work_out(stmts, self.checked)
        self.compiled.prelude_steps = [(self.stmt(s), isinstance(s, ast.Let)) for s in stmts
                                       if isinstance(s, ast.Use | ast.Import | ast.Let) and id(s) not in unknown]


class ProgramCompiler:
    """Compiles a program: the main module, the modules it imports, and every function once."""

    def __init__(self) -> None:
        self.modules: list[CompiledModule] = []
        self._by_checked: dict[int, CompiledModule] = {}
        self._compilers: dict[int, ModuleCompiler] = {}
        self.functions = FunctionTable(lambda checked: (self.module(checked).index, self._compilers[id(checked)]))

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

    def function_call(self, compiler: ExpressionCompiler, node: ast.FuncCall, info: FunctionInfo) -> Eval:
        return self.functions.call(compiler, node, info)

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


__all__ = [
    "Any",
    "CompiledModule",
    "LoopEntry",
    "ProgramCompiler",
    "compile_program",
    "find_loop",
    "loop_stem",
    "moved_errors",
    "same_loops",
]
