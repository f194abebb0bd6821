"""A checked program: the module, its resolution, its functions, imports and connections."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang import ast
from flowlang.check.scopes import Binding, FrameLayout, Resolution
from flowlang.connectors.base import ConnectorSpec
from flowlang.diagnostics import Diagnostic
from flowlang.lazy_dataclass import dataclass
from flowlang.source import Source

if TYPE_CHECKING:
    from flowlang.check.triggers import Trigger


@dataclass(eq=False)
class FunctionInfo:
    """A user function: its node, the module that defines it, and its frame."""

    name: str
    node: ast.Function
    module: CheckedModule
    frame: FrameLayout = field(default_factory=FrameLayout)
    param_slots: tuple[int, ...] = ()

    def bind_problems(self, n_positional: int, keywords: list[str]) -> list[str]:
        params = self.node.params
        names = [p.name for p in params]
        problems: list[str] = []
        if n_positional > len(params):
            problems.append(f"{self.name}() takes {len(params)} argument{'s' if len(params) != 1 else ''}, "
                            f"got {n_positional}")
        for k in keywords:
            if k not in names:
                problems.append(f"{self.name}() has no argument '{k}' (its arguments: {', '.join(names) or 'none'})")
            elif k in names[:n_positional]:
                problems.append(f"{self.name}() got '{k}' twice")
        filled = set(names[:n_positional]) | set(keywords)
        missing = [p.name for p in params if p.default is None and p.name not in filled]
        if missing:
            problems.append(f"{self.name}() needs {', '.join(repr(m) for m in missing)}")
        return problems


@dataclass(eq=False)
class CheckedModule:
    """One checked file (the flow, or a file it imports)."""

    module: ast.Module
    source: Source
    base_dir: Path
    frame: FrameLayout
    resolution: Resolution
    flow_name: str
    functions: dict[str, FunctionInfo] = field(default_factory=dict)  # defined here or imported
    own_functions: dict[str, FunctionInfo] = field(default_factory=dict)
    connections: dict[str, Binding] = field(default_factory=dict)  # declared by `use` here
    specs: dict[ast.Use, ConnectorSpec] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)  # what `check` shows without failing
    imports: dict[ast.Import, CheckedModule] = field(default_factory=dict)
    imported_connections: dict[ast.Import, list[tuple[Binding, Binding]]] = field(default_factory=dict)
    runs: dict[ast.RunFlow, Path] = field(default_factory=dict)
    params: list[ast.Param] = field(default_factory=list)
    host_operations: dict[str, set[str]] = field(default_factory=dict)
    triggers: list[Trigger] = field(default_factory=list)  # `trigger` lines, for flowlang serve
