"""Statement checks: placement, scopes and assignments, blocks, loops, maps and functions."""

from __future__ import annotations

import copy
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Protocol

from flowlang import ast
from flowlang.check.expressions import ExpressionChecker
from flowlang.check.hints import did_you_mean
from flowlang.check.program import CheckedModule, FunctionInfo
from flowlang.check.scopes import (
    GLOBALS,
    Binding,
    FrameLayout,
    Global,
    Kind,
    Scope,
    ScopeKind,
)
from flowlang.connectors.base import ConnectorSpec
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.builtins import BuiltinRegistry
from flowlang.source import Span

LIBRARY_STATEMENTS = (ast.FlowDecl, ast.Use, ast.Let, ast.Function, ast.Import)
FUNCTION_FORBIDDEN = {
    ast.CallStmt: "call", ast.LookupStmt: "lookup", ast.Send: "send", ast.RunFlow: "run", ast.Emit: "emit",
}
TOP_LEVEL_ONLY = {ast.Param: "param", ast.Use: "use", ast.Function: "function", ast.Import: "import"}


# what a flow's name may not hold: C0 and C1 controls, line separators and lone surrogates (`flow "a\uD800"`
# ended every run in an internal error, the store unable to encode its name)
NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

class ConnectorLookup(Protocol):
    def get(self, name: str) -> ConnectorSpec | None: ...

    def names(self) -> list[str]: ...


class CheckEnvironment(Protocol):
    """What the checker needs from the environment."""

    builtins: BuiltinRegistry

    def connectors_for(self, base_dir: Path) -> ConnectorLookup: ...

    def parse_file(self, path: Path) -> ast.Module: ...


def sends_in_batches(stmts: tuple[ast.Stmt, ...]) -> bool:
    """A loop body with a `send ... batch N` of its own (not in an inner loop): the loop runs up to N
    iterations ahead to fill the batch, so it follows the rules of a parallel loop (OPERATIONS.md 7)."""
    for stmt in stmts:
        if isinstance(stmt, ast.Send) and stmt.batch is not None:
            return True
        if isinstance(stmt, ast.If) and (any(sends_in_batches(b.body) for b in stmt.branches) or (
                stmt.otherwise is not None and sends_in_batches(stmt.otherwise))):
            return True
        if isinstance(stmt, ast.Try) and (sends_in_batches(stmt.body) or sends_in_batches(stmt.handler)):
            return True
    return False


@dataclass(frozen=True)
class Ctx:
    top: bool = True
    function: FunctionInfo | None = None
    loop: ast.ForEach | None = None
    parallel: Scope | None = None  # body scope of the innermost parallel loop
    library: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A Checker's declarations at one moment (Checker.checkpoint)."""

    names: dict[str, Binding]
    slots: list[str]
    module: dict[str, dict[Any, Any] | list[Any]]  # copies of the CheckedModule's tables
    libraries: dict[Path, CheckedModule | None]


class StatementChecker(ExpressionChecker):
    """Checks the statements of one module (I/O statements and imports: see flowlang.check.checker)."""

    def __init__(
        self,
        module: ast.Module,
        env: CheckEnvironment,
        base_dir: Path,
        bindings: frozenset[str] | None,
        stack: tuple[Path, ...] = (),
        library: bool = False,
        repl: bool = False,
        libraries: dict[Path, CheckedModule | None] | None = None,
    ) -> None:
        super().__init__(module.source, env.builtins)
        self.module = module
        self.env = env
        self.base_dir = base_dir
        self.bindings = bindings
        self.stack = stack
        self.library = library
        self.repl = repl
        self.libraries: dict[Path, CheckedModule | None] = {} if libraries is None else libraries  # per program
        self.connectors = env.connectors_for(base_dir)
        self.frame = FrameLayout()
        self.scope = Scope(ScopeKind.MODULE, None, self.frame)
        name = Path(module.source.name).stem if module.source.name else "flow"
        self.checked = CheckedModule(module, module.source, base_dir, self.frame, self.resolution, name)
        self.checked.functions = self.functions
        self.checked.warnings = self.warnings  # one list: the expressions' warnings are the module's
        self.state_assigned: list[Span] = []  # `let state = ...`, `call ... as state`
        # the REPL: functions, connections and params of earlier inputs, which an input may define again (each
        # name once an input); what it replaced, for the session's note
        self.replaceable: set[str] = set()
        self.replaced: list[str] = []

    # ---- entry points ----------------------------------------------------------------------
    def run(self) -> CheckedModule:
        self.statements(self.module.statements, self.scope, Ctx(library=self.library), top=True)
        self.finish()
        if self.checked.triggers:
            from flowlang.check.triggers import concurrent_state

            concurrent_state(self.checked.triggers, self.state_uses(),
                             lambda span: self.source.line_col(span.start)[0], self.error)
        return self.checked

    def state_uses(self) -> list[Span]:
        """Where this module names `state` (reads, writes, `as state`), and its imports of files whose
        functions do."""
        state = Global("state")
        uses = list(self.state_assigned)
        for node, ref in self.resolution.refs.items():
            if ref == state:
                uses.append(node.name_span if isinstance(node, ast.Target) else node.span)
        uses += [node.span for node, lib in self.checked.imports.items() if names_state(lib, set())]
        return uses

    def more(self, module: ast.Module) -> CheckedModule:
        """Check further statements against the same module scope (the REPL); their problems are in
        self.diagnostics (only theirs), and rollback() forgets what they declared."""
        self.diagnostics = []
        self.source = module.source
        self.replaceable = set(self.functions) | {name for name, b in self.scope.names.items()
                                                  if b.kind in (Kind.CONNECTION, Kind.PARAM)}
        self.replaced = []
        self.libraries.clear()  # an `import` typed again reads its file again (edited since, perhaps)
        self.statements(module.statements, self.scope, Ctx(), top=True)
        self.finish()
        return self.checked

    def finish(self) -> None:
        for call, binding in self.resolution.pending_streams:
            if self.repl or binding.uses - {"iterate", "send"}:
                self.resolution.materialize.add(call)
        self.resolution.pending_streams.clear()

    def checkpoint(self) -> Checkpoint:
        """What the module has declared so far (names, slots, functions, connections, params, imported
        files), to go back to with rollback()."""
        saved: dict[str, dict[Any, Any] | list[Any]] = {
            f.name: copy.copy(value) for f in fields(self.checked)
            if isinstance(value := getattr(self.checked, f.name), dict | list)}
        return Checkpoint(dict(self.scope.names), list(self.frame.names), saved, dict(self.libraries))

    def rollback(self, point: Checkpoint) -> None:
        """Forget every declaration made since the checkpoint (in place: compiled code shares these)."""
        self.scope.names.clear()
        self.scope.names.update(point.names)
        self.frame.names[:] = point.slots
        for name, value in point.module.items():
            current = getattr(self.checked, name)
            if isinstance(current, dict):
                current.clear()
                current.update(value)
            else:
                current[:] = value
        self.libraries.clear()
        self.libraries.update(point.libraries)

    # ---- statements -----------------------------------------------------------------------
    def statements(self, stmts: tuple[ast.Stmt, ...], scope: Scope, ctx: Ctx, top: bool = False) -> None:
        if top:
            self.hoist_functions(stmts, scope)
        for i, stmt in enumerate(stmts):
            self.placement(stmt, ctx, first=(i == 0 and top))
            getattr(self, "stmt_" + type(stmt).__name__)(stmt, scope, ctx)

    def block(self, stmts: tuple[ast.Stmt, ...], scope: Scope, ctx: Ctx, kind: ScopeKind = ScopeKind.BLOCK) -> Scope:
        inner = Scope(kind, scope, scope.frame)
        self.statements(stmts, inner, replace(ctx, top=False))
        return inner

    def placement(self, stmt: ast.Stmt, ctx: Ctx, first: bool) -> None:
        kind = type(stmt)
        if ctx.library and ctx.top and not isinstance(stmt, LIBRARY_STATEMENTS):
            self.error("library", "an imported file may only hold flow, use, let, function and import lines",
                       stmt.span, "move this line into the flow that imports the file")
        if kind in TOP_LEVEL_ONLY and not ctx.top:
            self.error("placement", f"`{TOP_LEVEL_ONLY[kind]}` belongs at the top level of the flow, not in a block",
                       stmt.span)
        if ctx.function is not None and kind in FUNCTION_FORBIDDEN:
            self.error("placement", f"a function cannot `{FUNCTION_FORBIDDEN[kind]}`: functions compute values; "
                       "do I/O and emit in the flow body", stmt.span)
        if isinstance(stmt, ast.FlowDecl) and not (ctx.top and first):
            self.error("placement", "`flow \"Name\"` must be the first line", stmt.span)
        if isinstance(stmt, ast.ExprStmt) and not self.repl:
            self.error("placement", "an expression alone does nothing here; use emit, log or let", stmt.span)

    def hoist_functions(self, stmts: tuple[ast.Stmt, ...], scope: Scope) -> None:
        for stmt in stmts:
            if not isinstance(stmt, ast.Function):
                continue
            if stmt.name in self.functions and not self.replaces(stmt.name):
                self.error("duplicate", f"the function '{stmt.name}' is defined twice", stmt.name_span)
                continue
            if self.builtins.get(stmt.name) is not None:
                self.error("duplicate", f"'{stmt.name}' is a builtin function; choose another name", stmt.name_span)
                continue
            info = FunctionInfo(stmt.name, stmt, self.checked)
            self.functions[stmt.name] = info
            self.checked.own_functions[stmt.name] = info

    def replaces(self, name: str) -> bool:
        """In the REPL, a function, a `use` connection or a param of an earlier input is defined again (a
        file loaded again): the new one is the name from here on (a name defined twice in one input, a
        loaded file's, stays an error)."""
        if name not in self.replaceable:
            return False
        self.replaceable.discard(name)
        self.replaced.append(name)
        return True

    def declare(self, name: str, kind: Kind, span: Span, scope: Scope, key: tuple[object, int]) -> Binding:
        slot = scope.frame.allocate(name)
        binding = Binding(name, kind, scope.frame, slot, span)
        scope.names[name] = binding
        self.resolution.slots[key] = slot
        return binding

    def assign(self, name: str, span: Span, scope: Scope, ctx: Ctx, key: tuple[object, int]) -> Binding | None:
        """`let name = ...` (and `as name`): assign the visible variable, or declare a new one."""
        if name in GLOBALS:
            if name != "state":
                self.error("read-only", f"'{name}' is read-only", span)
            else:
                self.resolution.slots[key] = -1
                self.state_assigned.append(span)
            return None
        found = scope.find(name)
        if found is None:
            return self.declare(name, Kind.VARIABLE, span, scope, key)
        binding, walked = found
        if binding.kind is Kind.CONNECTION:
            self.error("read-only", f"'{name}' is a connection and cannot be assigned", span)
            return None
        if binding.frame is not scope.frame:
            self.error("function-assign", f"a function cannot assign the flow's variable '{name}'", span,
                       "return the value instead")
            return None
        if ctx.parallel is not None and ctx.parallel in walked[:-1]:
            self.error("parallel-assign", f"cannot assign '{name}' inside a `parallel` loop (or one with a batched "
                       "send, which runs ahead): it belongs to the enclosing block and iterations run at the same "
                       "time", span,
                       "emit the value, or collect it with a plain loop")
        self.resolution.slots[key] = binding.slot
        binding.lookup = False
        return binding

    # ---- simple statements ------------------------------------------------------------------
    def stmt_FlowDecl(self, node: ast.FlowDecl, scope: Scope, ctx: Ctx) -> None:
        self.checked.flow_name = node.name
        bad = NAME_CONTROLS.search(node.name)
        if bad is not None:  # the store keys the flow's jobs, state and errors by it; every summary line shows it
            c = bad.group()
            why = ("half of a UTF-16 surrogate pair, not a character, which the store cannot keep"
                   if "\ud800" <= c <= "\udfff" else "a control character, which would break the lines that name it")
            self.error("flow-name", f"the flow's name holds {c!r}, {why}", node.span,
                       'give it a name of plain text: flow "Shop orders"')

    def stmt_Trigger(self, node: ast.Trigger, scope: Scope, ctx: Ctx) -> None:
        from flowlang.check.triggers import TriggerReader, WebhookTrigger

        trigger = TriggerReader(self.error).read(node)
        if trigger is None:
            return
        if isinstance(trigger, WebhookTrigger) and any(isinstance(t, WebhookTrigger) for t in self.checked.triggers):
            self.error("trigger", "a flow has one webhook trigger (list several verify schemes in it instead)",
                       node.span, "trigger webhook(verify: [github(secret.NEW), github(secret.OLD)])")
            return
        self.checked.triggers.append(trigger)
        timeout = next((k for k in node.kwargs if k.name == "timeout"), None)
        if isinstance(trigger, WebhookTrigger) and timeout is not None and trigger.respond != "outputs":
            from flowlang.diagnostics import Diagnostic, Severity

            written = any(k.name == "respond" for k in node.kwargs)  # respond: "accepted", the default, written
            self.checked.warnings.append(Diagnostic(
                "trigger", "timeout: is how long a delivery waits for the run's outputs, and this webhook answers "
                "at once (202)" + (' (respond: "accepted")' if written else ""), self.source, timeout.span,
                'write respond: "outputs" in place of "accepted", or leave timeout: out' if written
                else 'add respond: "outputs", or leave timeout: out', Severity.WARNING))

    def stmt_Param(self, node: ast.Param, scope: Scope, ctx: Ctx) -> None:
        if node.default is not None:
            self.expr(node.default, scope)
        found = scope.find(node.name)
        if node.name in GLOBALS or (found is not None
                                    and not (found[0].kind is Kind.PARAM and self.replaces(node.name))):
            self.error("duplicate", f"'{node.name}' is already defined", node.name_span)
            return
        self.declare(node.name, Kind.PARAM, node.name_span, scope, (node, 0))
        self.checked.params[:] = [p for p in self.checked.params if p.name != node.name]
        self.checked.params.append(node)

    def stmt_Let(self, node: ast.Let, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.value, scope)
        target = node.target
        for step in target.steps:
            if isinstance(step, ast.IndexStep):
                self.expr(step.index, scope)
        if not target.steps:
            self.assign(target.name, target.name_span, scope, ctx, (node, 0))
            return
        self.target_root(target, scope, ctx)

    def target_root(self, target: ast.Target, scope: Scope, ctx: Ctx) -> None:
        """`let a.b = ...` changes the object in `a`: a must exist (or be state)."""
        if target.name == "state":
            self.resolution.refs[target] = Global("state")
            return
        if target.name in GLOBALS:
            self.error("read-only", f"'{target.name}' is read-only", target.name_span)
            return
        found = scope.find(target.name)
        if found is None:
            self.error("unknown-name", f"unknown name '{target.name}'", target.name_span,
                       did_you_mean(target.name, [*scope.visible(), "state"]))
            return
        binding, walked = found
        if binding.kind is Kind.CONNECTION:
            self.error("read-only", f"'{target.name}' is a connection", target.name_span)
            return
        if ctx.parallel is not None and ctx.parallel in walked[:-1]:
            self.error("parallel-assign", f"cannot change '{target.name}' inside a `parallel` loop (or one with a "
                       "batched send, which runs ahead): it belongs to "
                       "the enclosing block and iterations run at the same time", target.name_span)
        binding.uses.add("other")
        self.resolution.refs[target] = self.frame_depth_ref(binding, scope)

    def stmt_Emit(self, node: ast.Emit, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.value, scope)

    def stmt_Log(self, node: ast.Log, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.value, scope)

    def stmt_Fail(self, node: ast.Fail, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.message, scope)

    def stmt_ExprStmt(self, node: ast.ExprStmt, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.expr, scope)

    def stmt_Skip(self, node: ast.Skip, scope: Scope, ctx: Ctx) -> None:
        if ctx.loop is None:
            self.error("placement", "`skip` is only allowed inside `for each`", node.span)

    def stmt_Stop(self, node: ast.Stop, scope: Scope, ctx: Ctx) -> None:
        if ctx.loop is None:
            self.error("placement", "`stop` is only allowed inside `for each`", node.span)

    def stmt_Return(self, node: ast.Return, scope: Scope, ctx: Ctx) -> None:
        if ctx.function is None:
            self.error("placement", "`return` is only allowed inside a function", node.span)
        if node.value is not None:
            self.expr(node.value, scope)

    # ---- blocks -----------------------------------------------------------------------------
    def stmt_If(self, node: ast.If, scope: Scope, ctx: Ctx) -> None:
        for branch in node.branches:
            self.expr(branch.condition, scope)
            self.block(branch.body, scope, ctx)
        if node.otherwise is not None:
            self.block(node.otherwise, scope, ctx)

    def stmt_Try(self, node: ast.Try, scope: Scope, ctx: Ctx) -> None:
        self.block(node.body, scope, ctx)
        handler = Scope(ScopeKind.BLOCK, scope, scope.frame)
        if node.error_name is not None:
            span = node.error_span or node.span
            self.declare(node.error_name, Kind.ERROR, span, handler, (node, 0))
        self.statements(node.handler, handler, replace(ctx, top=False))

    def stmt_ForEach(self, node: ast.ForEach, scope: Scope, ctx: Ctx) -> None:
        iterable_use = "iterate" if isinstance(node.iterable, ast.Name) else "other"
        self.expr(node.iterable, scope, iterable_use)
        self.check_constant_iterable(node.iterable)
        if self.looked_up(node.iterable, scope) is not None and isinstance(node.iterable, ast.Name) \
                and len(node.names) == 1:
            name = node.iterable.name
            self.lookup_warning(f"'{name}' is what a `lookup` found: the first record of the answer (an object) "
                                f"or null, not a list, so a loop over it walks the record's field names",
                                node.iterable.span, f"to loop over every record of the answer, give it by "
                                f"`call ... as {name}`")
        if node.parallel is not None:
            self.count(node.parallel, scope, "parallel")
            if ctx.function is not None:
                self.error("placement", "`parallel` loops are not allowed inside functions", node.parallel.span)
        kind = ScopeKind.PARALLEL if node.parallel is not None else ScopeKind.LOOP
        body = Scope(kind, scope, scope.frame)
        for i, (name, span) in enumerate(zip(node.names, node.name_spans, strict=True)):
            if name in GLOBALS:
                self.error("read-only", f"'{name}' is a built-in name; choose another loop variable", span)
            self.declare(name, Kind.LOOP, span, body, (node, i))
        if node.key is not None:
            self.expr(node.key, body)
        if ctx.function is None:
            visible = body.visible()
            self.resolution.loop_scopes[node] = tuple(
                (n, b.slot) for n, b in visible.items() if b.kind is not Kind.CONNECTION and b.frame is scope.frame)
        runs_ahead = node.parallel is not None or sends_in_batches(node.body)
        inner_ctx = replace(ctx, top=False, loop=node, parallel=body if runs_ahead else ctx.parallel)
        self.statements(node.body, body, inner_ctx)

    def count(self, count: ast.Count, scope: Scope, what: str) -> None:
        if isinstance(count.value, int):
            if count.value < 1:
                self.error("value", f"`{what}` needs a number of at least 1", count.span)
            return
        if count.value in ("null", "true", "false"):  # a constant, not a name: say what `what` takes
            self.error("value", f"`{what}` needs a whole number of at least 1 (or a variable or param holding one), "
                       f"got {count.value}", count.span)
            return
        name = ast.Name(str(count.value), count.span)
        self.resolve_name(name, scope)
        ref = self.resolution.refs.get(name)
        if ref is not None:
            self.resolution.refs[count] = ref

    def stmt_MapStmt(self, node: ast.MapStmt, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.source, scope)
        for line in node.lines:
            if isinstance(line, ast.MapAssign | ast.MapSpread):
                self.expr(line.value, scope)
        binding = self.assign(node.target, node.target_span, scope, ctx, (node, 0))
        if binding is not None:
            binding.uses.add("other")

    def stmt_Function(self, node: ast.Function, scope: Scope, ctx: Ctx) -> None:
        info = self.functions.get(node.name)
        if info is None or info.node is not node:
            return
        fscope = Scope(ScopeKind.FUNCTION, scope, info.frame)
        slots = []
        seen: set[str] = set()
        for p in node.params:
            if p.name in seen:
                self.error("duplicate", f"the argument '{p.name}' appears twice", p.span)
            seen.add(p.name)
            if p.default is not None:
                self.expr(p.default, scope)
            slots.append(self.declare(p.name, Kind.ARGUMENT, p.span, fscope, (p, 0)).slot)
        info.param_slots = tuple(slots)
        self.statements(node.body, fscope, Ctx(top=False, function=info, library=ctx.library))


def names_state(module: CheckedModule, seen: set[int]) -> bool:
    """Whether a checked file, or one it imports, names `state` anywhere (its functions' bodies too)."""
    if id(module) in seen:
        return False
    seen.add(id(module))
    state = Global("state")
    if any(ref == state for ref in module.resolution.refs.values()):
        return True
    return any(names_state(lib, seen) for lib in module.imports.values())
