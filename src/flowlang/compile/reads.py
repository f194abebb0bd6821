"""Which of a loop's visible variables its iteration reads: what the error store keeps of a failed
record's scope (a replay needs those and nothing else; OPERATIONS.md 1).

A variable counts when a name, an assignment target or a `parallel` count in the loop's body (or its
`key`) refers to it, or when a function of the same module that the body calls (directly or through
other functions) reads it as a module variable. `state` counts alike: the error keeps it as it was at
the start of the iteration, so a retry replays the record against that state, not a newer one. And
whether it reads the run's `input`, which a retry takes from the failed record's saved scope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowlang import ast
from flowlang.check.program import CheckedModule, FunctionInfo
from flowlang.check.scopes import Global, Local, Outer

WRITES_STATE = "state="  # among the names reads() gives: the body assigns the state, or into it


def slots_read(body: Iterable[Any], checked: CheckedModule) -> set[int]:
    """The module-frame slots that running `body` may read."""
    return reads(body, checked)[0]


def reads(body: Iterable[Any], checked: CheckedModule) -> tuple[set[int], set[str]]:
    """The module-frame slots that running `body` may read, and the globals it names (state, job, ...)."""
    res = checked.resolution
    names: set[str] = set()
    slots: set[int] = set()
    seen: set[int] = set()
    pending: list[FunctionInfo] = []

    def visit(tree: Any, own: bool) -> None:
        for node in ast.walk(tree):
            ref = res.refs.get(node)
            if isinstance(ref, Local if own else Outer):
                slots.add(ref.slot)
            elif type(ref) is Global:
                names.add(ref.name)
            if type(node) is ast.Let and (res.slots.get((node, 0)) == -1 or (
                    node.target.steps and type(res.refs.get(node.target)) is Global)):
                names.add(WRITES_STATE)  # `let state = ...`, `let state.x = ...` (the one global a flow sets)
            if type(node) is ast.FuncCall:
                info = res.calls.get(node)
                if type(info) is FunctionInfo and info.module is checked and id(info) not in seen:
                    seen.add(id(info))
                    pending.append(info)

    visit(tuple(body), True)
    while pending:
        visit(pending.pop().node.body, False)
    return slots, names


def globals_named(body: Iterable[Any], checked: CheckedModule, wanted: frozenset[str]) -> set[str]:
    """Which of the globals `wanted` ("input", "state") running `body` may read: a name of one in the body
    or in a function it calls (directly or through other functions, of any module). One walk for all."""
    found: set[str] = set()
    seen: set[int] = set()
    pending: list[tuple[Any, CheckedModule]] = [(tuple(body), checked)]
    while pending:
        tree, module = pending.pop()
        for node in ast.walk(tree):
            if type(node) is ast.Name and node.name in wanted:
                found.add(node.name)
                if found == wanted:
                    return found
            if type(node) is ast.FuncCall:
                info = module.resolution.calls.get(node)
                if type(info) is FunctionInfo and id(info) not in seen:
                    seen.add(id(info))
                    pending.append((info.node, info.module))  # its defaults too
    return found


def lets_a_retry_cannot_work_out(statements: Iterable[Any], checked: CheckedModule) -> set[int]:
    """The ids of the top-level `let` lines whose value a retry cannot work out: it runs only the flow's
    use, import, let and param lines, so a `let` that reads a variable a `call`, a `lookup` or a loop gave
    (`call src.read() as products` / `let by_sku = index_by(products, "sku")`), or another such `let`,
    would be worked out from a null: `{}`, where the run had the index. Left unset, the error's saved
    value fills it; when the error did not keep it (over max_error_bytes), the retry says so and leaves
    the error open (runner.values_lost) instead of replaying it with a wrong value. In the flow's order:
    a `let` after such a statement that gives the variable a value of its own (`let n = 0`) works it out."""
    res = checked.resolution
    unknown: set[int] = set()
    skipped: set[int] = set()
    for stmt in statements:
        if isinstance(stmt, ast.Use | ast.Import | ast.Function | ast.Param | ast.FlowDecl | ast.Trigger):
            continue
        if type(stmt) is ast.Let:
            slot = res.slots.get((stmt, 0))
            read = reads((stmt.value, stmt.target) if stmt.target.steps else (stmt.value,), checked)[0]
            if read & unknown:
                skipped.add(id(stmt))
                if slot is not None and slot >= 0:
                    unknown.add(slot)
            elif slot is not None and slot >= 0 and not stmt.target.steps:
                unknown.discard(slot)
            continue
        for node in ast.walk(stmt):  # what it assigns: `as x`, a `let` inside a block or a loop
            slot = res.slots.get((node, 0))
            if slot is not None and slot >= 0 and not isinstance(node, ast.ForEach):
                unknown.add(slot)
            if type(node) is ast.Let and node.target.steps:
                ref = res.refs.get(node.target)
                if isinstance(ref, Local):
                    unknown.add(ref.slot)
    return skipped
