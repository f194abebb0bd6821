"""The checker: names, scopes, connectors, operations and call signatures, all before anything runs."""

from __future__ import annotations

from pathlib import Path

from flowlang import ast
from flowlang.check.checker import Checker
from flowlang.check.program import CheckedModule, FunctionInfo
from flowlang.check.statements import CheckEnvironment


def check_module(
    module: ast.Module,
    env: CheckEnvironment,
    base_dir: Path,
    bindings: frozenset[str] | None,
    path: Path | None = None,
) -> CheckedModule:
    """Check a parsed flow; raises CheckError with every diagnostic found."""
    stack = (path,) if path is not None else ()
    return Checker(module, env, base_dir, bindings, stack).run_or_raise()


__all__ = ["CheckEnvironment", "CheckedModule", "Checker", "FunctionInfo", "check_module"]
