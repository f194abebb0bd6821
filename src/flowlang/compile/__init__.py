"""The compiler: checked AST -> a tree of closures (Steps for statements, Evals for expressions)."""

from flowlang.compile.program import (
    CompiledModule,
    LoopEntry,
    ProgramCompiler,
    compile_program,
    find_loop,
    loop_stem,
    moved_errors,
    same_loops,
)

__all__ = [
    "CompiledModule",
    "LoopEntry",
    "ProgramCompiler",
    "compile_program",
    "find_loop",
    "loop_stem",
    "moved_errors",
    "same_loops",
]
