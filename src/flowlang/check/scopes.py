"""Scopes, bindings and frame layouts: the resolver's data, and the Resolution the compiler reads.

Every variable gets a slot in a frame: the module's frame, or one frame per function call.
Blocks (loop bodies, if branches, try, comprehensions) make scopes inside the same frame.
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import TYPE_CHECKING, Any

from flowlang import ast
from flowlang.lazy_dataclass import dataclass
from flowlang.source import Span

if TYPE_CHECKING:
    from flowlang.check.program import FunctionInfo
    from flowlang.connectors.base import ConnectorSpec, OperationSpec
    from flowlang.runtime.builtins import Builtin

GLOBALS = ("env", "secret", "job", "state", "input")
JOB_FIELDS = ("id", "flow", "kind", "test", "started_at", "last_success_at", "dry_run", "params", "trigger",
              "plan")


class Kind(Enum):
    VARIABLE = "variable"
    PARAM = "param"
    CONNECTION = "connection"
    LOOP = "loop variable"
    ARGUMENT = "function argument"
    ERROR = "error"


class ScopeKind(Enum):
    MODULE = "module"
    FUNCTION = "function"
    BLOCK = "block"
    LOOP = "loop"
    PARALLEL = "parallel loop"
    COMPREHENSION = "comprehension"


@dataclass(eq=False)
class FrameLayout:
    """The slots of one frame; slot i holds the variable names[i]."""

    names: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.names)

    def allocate(self, name: str) -> int:
        self.names.append(name)
        return len(self.names) - 1


@dataclass(eq=False)
class Binding:
    """A declared name: where it lives and how it is used."""

    name: str
    kind: Kind
    frame: FrameLayout
    slot: int
    span: Span
    connector: ConnectorSpec | None = None
    uses: set[str] = field(default_factory=set)
    lookup: bool = False  # last assigned by `lookup ... as name`: one record (or null), never a list


@dataclass(eq=False)
class Scope:
    kind: ScopeKind
    parent: Scope | None
    frame: FrameLayout
    names: dict[str, Binding] = field(default_factory=dict)

    def find(self, name: str) -> tuple[Binding, list[Scope]] | None:
        """The binding of a name and the scopes walked to reach it (innermost first)."""
        walked: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            walked.append(scope)
            if name in scope.names:
                return scope.names[name], walked
            scope = scope.parent
        return None

    def visible(self) -> dict[str, Binding]:
        out: dict[str, Binding] = {}
        scope: Scope | None = self
        while scope is not None:
            for k, v in scope.names.items():
                out.setdefault(k, v)
            scope = scope.parent
        return out


@dataclass(frozen=True)
class Local:
    """A variable in the current frame."""

    slot: int


@dataclass(frozen=True)
class Outer:
    """A module variable read from inside a function."""

    slot: int


@dataclass(frozen=True)
class Global:
    """env, secret, job, state or input."""

    name: str


@dataclass(frozen=True)
class HostBinding:
    """A host object given when embedding (bindings={...})."""

    name: str


Ref = Local | Outer | Global | HostBinding


@dataclass
class Resolution:
    """What the checker learned that the compiler needs, keyed by AST node identity."""

    refs: dict[Any, Ref] = field(default_factory=dict)  # Name, Target, Operation -> where it lives
    slots: dict[tuple[Any, int], int] = field(default_factory=dict)  # (declaring node, i) -> slot
    calls: dict[ast.FuncCall, Builtin | FunctionInfo] = field(default_factory=dict)
    materialize: set[ast.CallStmt] = field(default_factory=set)
    loop_scopes: dict[ast.ForEach, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    pending_streams: list[tuple[ast.CallStmt, Binding]] = field(default_factory=list)
    op_specs: dict[ast.Operation, OperationSpec] = field(default_factory=dict)
