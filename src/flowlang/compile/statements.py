"""Statements -> Steps: let, emit, log, fail, skip/stop/return, if, try, map and bare expressions."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from flowlang import ast
from flowlang.check.scopes import Global, Local, Outer
from flowlang.compile.errors import Where
from flowlang.compile.expressions import ExpressionCompiler, whole_index
from flowlang.compile.inline import arithmetic
from flowlang.compile.steps import NOTHING, Eval, Step, block, run_step
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.field_misses import Reach, counter
from flowlang.runtime.frame import Frame, ReturnSignal, SkipSignal, StopSignal
from flowlang.runtime.jsoncodec import holds_secret
from flowlang.runtime.operators import BINARY, NeedsMaterialization
from flowlang.runtime.sharing import ALONE, UNSET, references
from flowlang.runtime.values import RecordStream, article, to_text, truthy, type_name


def emit_value(frame: Frame, value: Any, line: int) -> None:
    """`emit` of anything but one object (s_Emit handles that case inline): a non-empty list whose
    items are all objects emits each of them; a record stream must be read first
    (NeedsMaterialization); any other value, an empty list too, is one output (LANGUAGE.md 7)."""
    t = type(value)
    if t is list and value and all(type(x) is dict for x in value):
        for item in value:
            frame.out(item, line)
        return
    if t is RecordStream:
        raise NeedsMaterialization(value)
    frame.out(value, line)


def error_value(err: FlowRuntimeError, frame: Frame) -> dict[str, Any]:
    """What `on error as e` binds."""
    return {
        "message": frame.run.mask(err.message), "kind": err.kind, "status": err.status, "body": err.body,
        "line": err.line,
    }


# lines that declare rather than run (a trigger is for flowlang serve; a run ignores it)
DECLARATIONS = (ast.Function, ast.Param, ast.FlowDecl, ast.Trigger)


def may_end_iteration(node: ast.Stmt) -> bool:
    """Whether the statement can end its loop's iteration: a `skip`, `stop` or `fail` in it (one in an
    inner loop ends that loop's iteration)."""
    if isinstance(node, ast.Skip | ast.Stop | ast.Fail):
        return True
    if isinstance(node, ast.If):
        inner = [s for b in node.branches for s in b.body] + list(node.otherwise or ())
        return any(may_end_iteration(s) for s in inner)
    if isinstance(node, ast.Try):
        return any(may_end_iteration(s) for s in (*node.body, *node.handler))
    return False


class StatementCompiler(ExpressionCompiler):
    """Compiles the statements of one module that do no I/O."""

    def line(self, node: Any) -> int:
        return self.checked.source.line_col(node.span.start)[0]

    def stmt(self, node: ast.Stmt) -> Step:
        method = getattr(self, "s_" + type(node).__name__)
        step: Step = method(node)
        return step

    branch_depth = 0  # >0: compiling the statements of an if or try branch in the innermost loop's body

    def body(self, stmts: tuple[ast.Stmt, ...]) -> Step:
        return block(self.steps(stmts))

    def steps(self, stmts: Sequence[ast.Stmt]) -> list[Step]:
        """The steps of a block's statements. In a loop, a statement that not every record reaches (in a
        branch, or after one that can end the iteration) and that holds a read whose misses are counted
        comes after a step counting the records that reach it (runtime/field_misses.py)."""
        out: list[Step] = []
        ended = False
        for s in stmts:
            if isinstance(s, DECLARATIONS):
                continue
            if (self.branch_depth or ended) and self.watched_loop() is not None:
                out.extend(self.reached_stmt(s))
            else:
                out.append(self.stmt(s))
                self.fuse_map_emit(out)
            ended = ended or may_end_iteration(s)
        return out

    def fuse_map_emit(self, out: list[Step]) -> None:
        """`map x to o` then `emit o` (a mapping's loop body) as one step: the object stored and emitted
        without a call of each statement's step and of the block between them."""
        if len(out) < 2:
            return
        mapped = self.maps_to_slot.get(out[-2].run)
        emitted = self.emits_slot.get(out[-1].run)
        if mapped is None or emitted is None or mapped[0] != emitted[0]:
            return
        (slot, built), (_, line, where) = mapped, emitted

        def map_emit(f: Frame) -> None:
            v = f.slots[slot] = built(f)  # an object (what emit takes as one output)
            try:
                f.out(v, line)
            except FlowRuntimeError as e:  # the output could not be taken (on_output): at the emit
                raise where.locate(e) from None
        out[-2:] = [Step.sync(map_emit)]

    def reached_stmt(self, node: ast.Stmt) -> list[Step]:
        outer = self.reach
        reach = self.reach = Reach(self.checked.source.location(node.span))
        try:
            step = self.stmt(node)
        finally:
            self.reach = outer
        if reach not in self.reaches_used:
            return [step]
        if step.is_async:  # a step of its own before it (a loop's batched send runs after what comes before)
            return [Step.sync(counter(reach)), step]
        return [Step.sync(counter(reach, step.run))]

    # ---- declarations handled elsewhere ------------------------------------------------------
    def s_FlowDecl(self, node: ast.FlowDecl) -> Step:
        return NOTHING

    def s_Param(self, node: ast.Param) -> Step:
        return NOTHING

    def s_Function(self, node: ast.Function) -> Step:
        return NOTHING

    # ---- assignments -----------------------------------------------------------------------
    def assigner(self, node: Any, where: Where) -> Any:
        """A function (frame, value) that stores into the variable `node` declared."""
        slot = self.checked.resolution.slots.get((node, 0))
        if slot is None:
            return None
        if slot == -1:
            def set_state(f: Frame, value: Any) -> None:
                if type(value) is not dict:
                    raise where.error(f"state must be an object, got {type_name(value)}")
                refuse_secret_in_state(value, where)
                if f.run.before_change is not None:
                    f.run.before_change()
                if f.run.state_undo is not None:  # a loop that changes state: what it replaces (LoopInfo.start)
                    f.run.note_state(((), f.run.state))
                f.run.state = value  # a variable holding the state before keeps that object
            return set_state

        def set_slot(f: Frame, value: Any) -> None:
            f.slots[slot] = value
        return set_slot

    def s_Let(self, node: ast.Let) -> Step:
        value = self.expr(node.value)
        where = self.where(node.target.span)
        if not node.target.steps:
            grown = self.grown_in_place(node, value)
            if grown is not None:
                return Step.sync(grown)
            store = self.assigner(node, where)

            def let(f: Frame) -> None:
                store(f, value(f))
            return Step.sync(let)
        return Step.sync(self.path_assign(node.target, value, where))

    def kept_position(self, slot: int) -> int | None:
        """The place of a variable among those the enclosing outermost loop keeps from the start of each
        iteration (LoopInfo.start), if it keeps it."""
        return None

    def grown_in_place(self, node: ast.Let, whole: Eval) -> Any:
        """`let xs = xs + more` of a list only `xs` holds (or `xs` and the start of the outermost
        iteration, whose saved copy is then cut back to its length): the items are added to that list,
        so a list built item by item costs each item once, not a copy of all the items before it
        (100,000 items took 29 s). Any other case (not lists, held elsewhere, past max_value_items, a
        list that holds itself after) is the `+` it reads."""
        value = node.value
        if not (isinstance(value, ast.Binary) and value.op is ast.BinOp.ADD and isinstance(value.left, ast.Name)):
            return None
        slot = self.checked.resolution.slots.get((node, 0))
        ref = self.checked.resolution.refs.get(value.left)
        if slot is None or slot < 0 or not isinstance(ref, Local) or ref.slot != slot:
            return None
        right = self.expr(value.right)
        operands: list[Any] = [None, None]
        plus = arithmetic(ast.BinOp.ADD, lambda f: operands[0], lambda f: operands[1], BINARY[ast.BinOp.ADD],
                          self.where(value.op_span))
        kept = self.kept_position(slot)

        def let_grow(f: Frame) -> None:
            slots = f.slots
            current = slots[slot]
            if type(current) is not list:
                slots[slot] = whole(f)
                return
            more = right(f)
            if type(more) is list and len(current) + len(more) <= f.run.limits.max_value_items:
                held = references(current)
                run = f.run
                if held <= ALONE or (held == ALONE + 1 and kept is not None and run.iteration_start is not None
                                     and run.iteration_start[kept] is current):
                    if run.before_change is not None:  # outputs already given out are not changed
                        run.before_change()
                    if held > ALONE:
                        run.grown.setdefault(id(current), len(current))
                    current.extend(more)
                    return
            operands[0], operands[1] = current, more  # the `+` of these values, its errors and its limit
            try:
                slots[slot] = plus(f)
            finally:
                operands[0] = operands[1] = None
        return let_grow

    def kept_at_iteration_start(self) -> frozenset[int]:
        """The slots whose values the enclosing outermost loop keeps from the start of each iteration
        (compile/loops.py: LoopInfo.start); none outside a loop."""
        return frozenset()

    def path_assign(self, target: ast.Target, value: Eval, where: Where) -> Any:
        """`let a.b[i] = x`: changes the list or object `a` holds, copying first each one on the path that
        is held anywhere else (runtime/sharing.py), so that only `a` sees the change."""
        ref = self.checked.resolution.refs[target]
        keys: list[tuple[bool, Any]] = [
            (True, s.name) if isinstance(s, ast.FieldStep) else (False, self.expr(s.index)) for s in target.steps]
        into_state = isinstance(ref, Global)
        slot = ref.slot if isinstance(ref, Local | Outer) else -1
        outer = isinstance(ref, Outer)
        # an outermost loop that assigns an enclosing variable keeps its value from the start of each
        # iteration (saved with a record that fails): that holder alone is not a reason to copy, when it
        # is that start that holds this very value (not another variable, after `let xs = [...]`)
        kept = None if outer else self.kept_position(slot)

        def let_path(f: Frame) -> None:
            v = value(f)
            kept_start: Any = None
            if into_state:
                refuse_secret_in_state(v, where)
            if f.run.before_change is not None:  # outputs already given out are not changed
                f.run.before_change()
            if into_state:
                container = f.run.state
                if references(container) > ALONE:  # `let before = state` keeps what it held
                    container = f.run.state = container.copy()
            else:
                slots = (f.parent if outer else f).slots  # type: ignore[union-attr]
                container = slots[slot]
                if container is None:
                    container = slots[slot] = {}
                elif (type(container) is dict or type(container) is list) and references(container) > ALONE:
                    start = f.run.iteration_start
                    if references(container) == ALONE + 1 and kept is not None and start is not None \
                            and start[kept] is container:
                        kept_start = container  # changed in place: what it replaces is noted first
                    else:
                        container = slots[slot] = container.copy()
            resolved = [k if const else k(f) for const, k in keys]
            if into_state and f.run.state_undo is not None:  # a loop that changes state: what this replaces
                replaced = replaced_at(container, resolved)
                if replaced is not None:
                    f.run.note_state(replaced)
            if kept_start is not None:
                note_replaced(f.run.replaced, kept_start, resolved[0])
            for key in resolved[:-1]:
                nxt = _get(container, key, where)
                if nxt is None:
                    nxt = {}
                    _set(container, key, nxt, where)
                elif (type(nxt) is dict or type(nxt) is list) and references(nxt) > ALONE:
                    nxt = nxt.copy()
                    _set(container, key, nxt, where)
                container = nxt
            _set(container, resolved[-1], v, where)

        return let_path

    # ---- output ------------------------------------------------------------------------------
    def s_Emit(self, node: ast.Emit) -> Step:
        value = self.expr(node.value)
        line = self.line(node)
        where = self.where(node.span)
        ref = self.checked.resolution.refs.get(node.value) if isinstance(node.value, ast.Name) else None
        if isinstance(ref, Local):
            slot = ref.slot

            def emit_local(f: Frame) -> None:
                v = f.slots[slot]
                try:
                    if type(v) is dict:  # one record: the common case
                        f.out(v, line)
                    else:
                        emit_value(f, v, line)
                except FlowRuntimeError as e:  # the output could not be taken (on_output): at this emit
                    raise where.locate(e) from None
            self.emits_slot[emit_local] = (slot, line, where)
            return Step.sync(emit_local)

        def emit(f: Frame) -> None:
            v = value(f)
            try:
                t = type(v)
                if t is dict:  # one record: the common case
                    f.out(v, line)
                elif t is list or t is RecordStream:
                    emit_value(f, v, line)
                else:  # one value (emit_value's last case, without its call)
                    f.out(v, line)
            except FlowRuntimeError as e:  # the output could not be taken (on_output): at this emit
                raise where.locate(e) from None
        return Step.sync(emit)

    def s_Log(self, node: ast.Log) -> Step:
        value = self.expr(node.value)
        level = node.level
        location = self.checked.source.location(node.span)
        return Step.sync(lambda f: f.run.log(level, to_text(value(f)), location))

    def s_ExprStmt(self, node: ast.ExprStmt) -> Step:
        value = self.expr(node.expr)

        def show(f: Frame) -> None:
            f.run.last_value = value(f)
        return Step.sync(show)

    # ---- control ------------------------------------------------------------------------------
    def s_Fail(self, node: ast.Fail) -> Step:
        message = self.expr(node.message)
        where = self.where(node.span)

        def fail(f: Frame) -> None:
            value = message(f)
            text = to_text(value)
            if not text.strip():  # `fail r.reason` of a record without one: not an empty error
                text = f"failed with no message (`fail` was given {'null' if value is None else 'an empty text'})"
            raise where.error(text, "fail")
        return Step.sync(fail)

    def s_Skip(self, node: ast.Skip) -> Step:
        def skip(f: Frame) -> None:
            raise SkipSignal()
        return Step.sync(skip)

    def s_Stop(self, node: ast.Stop) -> Step:
        def stop(f: Frame) -> None:
            raise StopSignal()
        return Step.sync(stop)

    def s_Return(self, node: ast.Return) -> Step:
        value = self.expr(node.value) if node.value is not None else (lambda f: None)

        def ret(f: Frame) -> None:
            raise ReturnSignal(value(f))
        return Step.sync(ret)

    def s_If(self, node: ast.If) -> Step:
        self.branch_depth += 1
        try:
            branches = [(self.expr(b.condition), self.body(b.body)) for b in node.branches]
            otherwise = self.body(node.otherwise) if node.otherwise is not None else None
        finally:
            self.branch_depth -= 1
        steps = [b for _, b in branches] + ([otherwise] if otherwise else [])
        if not any(s.is_async for s in steps):
            plan = [(c, b.run) for c, b in branches]
            other = otherwise.run if otherwise else None

            def if_sync(f: Frame) -> None:
                for cond, body in plan:
                    if truthy(cond(f)):
                        body(f)
                        return
                if other is not None:
                    other(f)
            return Step.sync(if_sync)

        async def if_async(f: Frame) -> None:
            for cond, body in branches:
                if truthy(cond(f)):
                    await run_step(body, f)
                    return
            if otherwise is not None:
                await run_step(otherwise, f)
        return Step.coroutine(if_async)

    def s_Try(self, node: ast.Try) -> Step:
        """try ... on error: every error but a limit's (of kind "limit": a LimitError, or a value a
        builtin or an interpolation would build past max_value_items), which fails the record."""
        self.branch_depth += 1
        try:
            body = self.body(node.body)
            handler = self.body(node.handler)
        finally:
            self.branch_depth -= 1
        slot = self.checked.resolution.slots.get((node, 0))
        if not body.is_async and not handler.is_async:
            def try_sync(f: Frame) -> None:
                try:
                    body.run(f)
                except FlowRuntimeError as e:
                    if e.kind == "limit":
                        raise
                    if slot is not None:
                        f.slots[slot] = error_value(e, f)
                    handler.run(f)
            return Step.sync(try_sync)

        async def try_async(f: Frame) -> None:
            try:
                await run_step(body, f)
            except FlowRuntimeError as e:
                if e.kind == "limit":
                    raise
                if slot is not None:
                    f.slots[slot] = error_value(e, f)
                await run_step(handler, f)
        return Step.coroutine(try_async)

    # ---- map ------------------------------------------------------------------------------------
    def s_MapStmt(self, node: ast.MapStmt) -> Step:
        source = self.expr(node.source)
        store = self.assigner(node, self.where(node.target_span))
        lines = [self.map_line(line) for line in node.lines]
        simple = all(kind == "set1" for kind, _, _ in lines)
        if simple:
            pairs = [(path, value) for _, path, value in lines]

            def build_object(f: Frame) -> dict[str, Any]:
                source(f)
                return {k: v(f) for k, v in pairs}

            built: Any = build_object
            if self.codegen:
                from flowlang.compile.codegen import generate_object

                nodes = [(line.path[0], line.value) for line in node.lines if isinstance(line, ast.MapAssign)]
                built = generate_object(self, node.source, nodes, build_object) or build_object

            slot = self.checked.resolution.slots.get((node, 0))
            if slot is not None and slot >= 0:  # a variable (assigner's set_slot, without its call)
                def map_to_slot(f: Frame) -> None:
                    f.slots[slot] = built(f)
                self.maps_to_slot[map_to_slot] = (slot, built)
                return Step.sync(map_to_slot)

            def map_simple(f: Frame) -> None:
                store(f, built(f))
            return Step.sync(map_simple)

        def map_build(f: Frame) -> None:
            source(f)
            out: dict[str, Any] = {}
            for kind, path, value in lines:
                if kind == "set1":
                    out[path] = value(f)
                elif kind == "set":
                    _set_path(out, path[0], value(f), path[1])
                elif kind == "spread":
                    _spread(out, value(f), path)
                else:
                    _drop_path(out, path)
            store(f, out)
        return Step.sync(map_build)

    def map_line(self, line: ast.MapLine) -> tuple[str, Any, Any]:
        if isinstance(line, ast.MapAssign):
            if len(line.path) == 1:
                return "set1", line.path[0], self.expr(line.value)
            return "set", (line.path, self.where(line.span)), self.expr(line.value)
        if isinstance(line, ast.MapSpread):
            return "spread", self.where(line.value.span), self.expr(line.value)
        return "drop", line.path, None


def note_replaced(replaced: dict[int, dict[Any, Any]], container: Any, key: Any) -> None:
    """Before `let c[key]...` changes in place a list or object the start of the iteration holds: what it
    has at `key` (the first time in this iteration), so a record that fails is saved as it started. The
    note holds the old value, so a nested one is copied before it is changed (the copy-on-write rule)."""
    changes = replaced.get(id(container))
    if changes is None:
        changes = replaced[id(container)] = {}
    if type(container) is dict:
        if type(key) is str and key not in changes:
            changes[key] = container.get(key, UNSET)
        return
    i = whole_index(key)
    if i is not None and -len(container) <= i < len(container):
        i %= len(container)
        if i not in changes:
            changes[i] = container[i]


def replaced_at(container: Any, keys: list[Any]) -> tuple[tuple[Any, ...], Any] | None:
    """What `let c.k1.k2... = x` replaces in c: the path to the first level c lacks and sharing.UNSET, the
    path to a null it replaces by an object and None, or the whole path and the value at its end (list
    indexes counted from the start); None when the assignment fails before it changes anything."""
    path: list[Any] = []
    for n, key in enumerate(keys):
        if n and container is None:  # made an object by the assignment
            return tuple(path), None
        if type(container) is dict and type(key) is str:
            path.append(key)
            if key not in container:
                return tuple(path), UNSET
            container = container[key]
        elif type(container) is list and (i := whole_index(key)) is not None and -len(container) <= i < len(container):
            path.append(i % len(container))
            container = container[i]
        else:  # not a field or an item there: the assignment fails, changing nothing
            return None
    return tuple(path), container


def _not_a_key(key: Any) -> str:
    """The message of a key that is no text in an assignment into an object: `let seen[o.id] = true`, o.id
    a number, said only 'got number'."""
    if type(key) in (int, Decimal, bool):
        return (f"an object key must be a string, got {type_name(key)} {to_text(key)}: an object's keys are text, "
                f"so write [str(...)] to key by its text (\"{to_text(key)}\")")
    return f"an object key must be a string, got {type_name(key)}"


def _get(container: Any, key: Any, where: Where) -> Any:
    if type(container) is dict:
        if type(key) is not str:
            raise where.error(_not_a_key(key))
        return container.get(key)
    if type(container) is list:
        i = whole_index(key)
        if i is None:
            raise where.error(f"a list index must be a whole number, got {type_name(key)}")
        return container[i] if -len(container) <= i < len(container) else None
    raise where.error(f"cannot set a field inside {type_name(container)}")


def _set(container: Any, key: Any, value: Any, where: Where) -> None:
    if type(container) is dict:
        if type(key) is not str:
            raise where.error(_not_a_key(key))
        container[key] = value
        return
    if type(container) is list:
        i = whole_index(key)
        if i is None:
            raise where.error(f"a list index must be a whole number, got {type_name(key)}")
        if not -len(container) <= i < len(container):
            size = len(container)
            raise where.error(f"list index {to_text(key)} is out of range (the list has {size} "
                              f"item{'' if size == 1 else 's'})", "value")
        container[i] = value
        return
    raise where.error(f"cannot set a field inside {type_name(container)}")


def _set_path(out: dict[str, Any], path: tuple[str, ...], value: Any, where: Where) -> None:
    """`a.b.c = value` in a map: objects are made where the path has none (or null), copied where it
    has one (a source object is never changed); any other value on the way is an error, as for `let`."""
    target = out
    for depth, key in enumerate(path[:-1]):
        nxt = target.get(key)
        if nxt is not None and type(nxt) is not dict:
            inside, kind = ".".join(path[:depth + 1]), type_name(nxt)
            raise where.error(f"cannot set {'.'.join(path)}: {inside} is {article(kind)} {kind}, not an object "
                              f"(set {inside} to an object first, or to null)", "value")
        nxt = target[key] = dict(nxt) if type(nxt) is dict else {}  # copy: never change a source object
        target = nxt
    target[path[-1]] = value


def _spread(out: dict[str, Any], value: Any, where: Where) -> None:
    if value is None:
        return
    if type(value) is not dict:
        raise where.error(f"`...` copies the fields of an object, got {type_name(value)}")
    out.update(value)


def _drop_path(out: dict[str, Any], path: tuple[str, ...]) -> None:
    target: Any = out
    for key in path[:-1]:
        nxt = target.get(key)
        if type(nxt) is not dict:
            return
        nxt = target[key] = dict(nxt)  # copy: never change a source object
        target = nxt
    target.pop(path[-1], None)


def refuse_secret_in_state(value: Any, where: Where) -> None:
    """`state` keeps no secret: the store would keep only its name, and the next run would read back an
    object ({"$secret": "TOK"}) where the flow expects the secret (the secret is there every run anyway)."""
    if type(value) in (str, int, bool, type(None)):
        return
    if holds_secret(value):
        raise where.error("state cannot keep a secret (the store keeps no secret's value, and the next run would "
                          "not have it): read secret.NAME where the run needs it", "value")
