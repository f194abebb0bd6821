"""Name resolution and call checks inside expressions (the base of the Checker)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from flowlang import ast
from flowlang.check.constants import constant_value
from flowlang.check.hints import did_you_mean, near_misses
from flowlang.check.scopes import (
    GLOBALS,
    JOB_FIELDS,
    Binding,
    Global,
    Kind,
    Local,
    Outer,
    Resolution,
    Scope,
    ScopeKind,
)
from flowlang.check.secret_names import is_secret_text
from flowlang.diagnostics import Diagnostic, Severity
from flowlang.runtime.builtins import BuiltinRegistry
from flowlang.runtime.builtins.registry import REQUIRED, Builtin, BuiltinError
from flowlang.runtime.builtins.text import dollar_reference
from flowlang.runtime.field_hints import FIELD_FUNCTIONS
from flowlang.runtime.operators import BINARY, OperatorError
from flowlang.runtime.values import Secret, type_name
from flowlang.source import Source, Span

if TYPE_CHECKING:
    from flowlang.check.program import FunctionInfo

# builtins not called on constants at check: they build large results from small ones
NOT_CALLED_AT_CHECK = frozenset({"range", "pad_left", "bearer", "basic", "api_key", "oauth2_client_credentials"})


# the constants of Python, JavaScript, Ruby and SQL, as a newcomer writes them, and flowlang's spelling
OTHER_LANGUAGES_LITERALS = {"None": "null", "nil": "null", "undefined": "null", "NULL": "null", "Null": "null",
                            "True": "true", "TRUE": "true", "False": "false", "FALSE": "false"}


class ExpressionChecker:
    """Resolves names in expressions and checks calls against declared signatures."""

    def __init__(self, source: Source, builtins: BuiltinRegistry) -> None:
        self.source = source
        self.builtins = builtins
        self.diagnostics: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []  # what `check` shows without failing (CheckedModule.warnings)
        self.resolution = Resolution()
        self.functions: dict[str, FunctionInfo] = {}
        self.imported_lets: dict[str, str] = {}  # a top-level `let` of an imported file: its name -> the file

    # ---- reporting ---------------------------------------------------------------------------
    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.source, span, hint))

    def report_arguments(self, what: str, problems: list[str], kwargs: Sequence[ast.KwArg],
                         allowed: Iterable[str] | None, missing: list[str], call: Span) -> None:
        """A call's argument problems: an unknown keyword at its name (with did-you-mean, and
        without a second report of the required name it misspells), a keyword given twice at its second
        use, the rest at the call."""
        given: set[str] = set()
        for k in kwargs:
            if k.name in given:
                self.error("arguments", f"the argument '{k.name}' is given twice", k.span)
            given.add(k.name)
        if allowed is None:
            for p in problems:
                self.error("arguments", p, call)
            return
        misses = near_misses(kwargs, allowed, missing)
        covered = {m.meant for m in misses if m.meant in missing}
        pool = set(allowed)
        for m in misses:
            self.error("arguments", f"{what}() has no argument '{m.name}'", m.span, zone_hint(what, m.name, pool)
                       or m.hint)
        for p in problems:
            if "has no argument '" in p or (missing and covered >= set(missing) and " needs " in p):
                continue
            self.error("arguments", p, call)

    # ---- names ------------------------------------------------------------------------------
    def frame_depth_ref(self, binding: Binding, scope: Scope) -> Local | Outer:
        return Local(binding.slot) if binding.frame is scope.frame else Outer(binding.slot)

    def resolve_name(self, node: ast.Name, scope: Scope, use: str = "other") -> Binding | None:
        found = scope.find(node.name)
        if found is not None:
            binding, _ = found
            if binding.kind is Kind.CONNECTION:
                self.error("connection-value", f"'{node.name}' is a connection: use it in call, lookup or send",
                           node.span)
                return None
            binding.uses.add(use)
            self.resolution.refs[node] = self.frame_depth_ref(binding, scope)
            return binding
        if node.name in GLOBALS:
            self.resolution.refs[node] = Global(node.name)
            return None
        if node.name in self.functions or self.builtins.get(node.name) is not None:
            self.error("function-value", f"'{node.name}' is a function: call it as {node.name}(...)", node.span)
            return None
        candidates = [*scope.visible(), *GLOBALS]
        literal = OTHER_LANGUAGES_LITERALS.get(node.name)
        self.error("unknown-name", f"unknown name '{node.name}'", node.span,
                   (f"flowlang writes it {literal}" if literal else None)
                   or self.imported_let_hint(node.name) or did_you_mean(node.name, candidates))
        return None

    def imported_let_hint(self, name: str) -> str | None:
        """Why a top-level `let` of an imported file is not a name here: an import brings functions and
        connections only (the file's functions see its own names)."""
        file = self.imported_lets.get(name)
        if file is None:
            return None
        return (f"'{name}' is a `let` of {file}: an import brings in its functions and connections, not "
                f"its variables (return it from a function there, and call that)")

    # ---- expressions ------------------------------------------------------------------------
    def expr(self, node: ast.Expr, scope: Scope, use: str = "other") -> None:
        method = getattr(self, "expr_" + type(node).__name__)
        method(node, scope, use)

    def expr_Literal(self, node: ast.Literal, scope: Scope, use: str) -> None:
        pass

    def expr_Interpolated(self, node: ast.Interpolated, scope: Scope, use: str) -> None:
        for part in node.parts:
            if not isinstance(part, str):
                self.expr(part, scope)

    def expr_Name(self, node: ast.Name, scope: Scope, use: str) -> None:
        self.resolve_name(node, scope, use)

    def expr_Field(self, node: ast.Field, scope: Scope, use: str) -> None:
        self.expr(node.obj, scope)
        known, value = constant_value(node.obj)
        if known and value is not None and type(value) is not dict:  # `"x".a`, `5.total`: fails whenever it runs
            kind = type_name(value)
            self.error("constant-operation", f"cannot read field '{node.name}' of {kind}"
                       + FIELD_FUNCTIONS.get((kind, node.name), ""), node.name_span)
        is_global = isinstance(node.obj, ast.Name) and isinstance(self.resolution.refs.get(node.obj), Global)
        if is_global and isinstance(node.obj, ast.Name) and node.obj.name == "job" and node.name not in JOB_FIELDS:
            self.error("unknown-field", f"job has no field '{node.name}' (it has: {', '.join(JOB_FIELDS)})",
                       node.name_span, did_you_mean(node.name, JOB_FIELDS))

    def expr_Index(self, node: ast.Index, scope: Scope, use: str) -> None:
        self.expr(node.obj, scope)
        self.expr(node.index, scope)
        index = node.index
        if (isinstance(index, ast.Literal) and type(index.value) is int
                and self.looked_up(node.obj, scope) is not None and isinstance(node.obj, ast.Name)):
            name = node.obj.name
            self.lookup_warning(f"'{name}' is what a `lookup` found: the first record of the answer (an object) "
                                f"or null, not a list, so {name}[{index.value}] is no record of it",
                                node.span, f"read its fields ({name}.id); to loop over every record of the "
                                f"answer, give it by `call ... as {name}`")

    def looked_up(self, node: ast.Expr, scope: Scope) -> Binding | None:
        """The variable `node` names when a `lookup ... as` assigned it last (one record, or null)."""
        if not isinstance(node, ast.Name):
            return None
        found = scope.find(node.name)
        return found[0] if found is not None and found[0].lookup else None

    def lookup_warning(self, message: str, span: Span, hint: str) -> None:
        self.warnings.append(Diagnostic("lookup-one", message, self.source, span, hint, Severity.WARNING))

    def expr_FuncCall(self, node: ast.FuncCall, scope: Scope, use: str) -> None:
        for a in node.args:
            self.expr(a, scope)
        if (node.name == "len" and len(node.args) == 1 and node.name not in self.functions
                and self.looked_up(node.args[0], scope) is not None and isinstance(node.args[0], ast.Name)):
            name = node.args[0].name
            self.lookup_warning(f"'{name}' is what a `lookup` found: the first record of the answer (an object) "
                                f"or null, not a list, so len({name}) counts its fields, not records",
                                node.span, f"to ask whether it found one: if {name} == null")
        for k in node.kwargs:
            self.expr(k.value, scope)
        keywords = [k.name for k in node.kwargs]
        target = self.functions.get(node.name)
        n = len(node.args)
        if target is not None:
            self.resolution.calls[node] = target
            problems = target.bind_problems(n, keywords)
            names = [p.name for p in target.node.params]
            missing = [p.name for p in target.node.params[n:] if p.default is None and p.name not in keywords]
        else:
            builtin = self.builtins.get(node.name)
            if builtin is None:
                found = scope.find(node.name)
                if found is not None:
                    message = f"'{node.name}' is a {found[0].kind.value}, not a function"
                else:
                    message = f"unknown function '{node.name}'"
                pool = [*self.functions, *self.builtins.names()]
                self.error("unknown-function", message, node.name_span, did_you_mean(node.name, pool))
                return
            self.resolution.calls[node] = builtin
            problems = builtin.bind_problems(n, keywords)
            fixed = [p for p in builtin.params if not p.variadic]
            names = [p.name for p in fixed]
            missing = [p.name for p in fixed[n:] if p.default is REQUIRED and p.name not in keywords]
            if not problems:
                self.check_constant_arguments(builtin, node, names)
                self.check_constant_call(builtin, node)
                if builtin.name == "regex_replace":
                    self.check_dollar_reference(node, names)
        self.report_arguments(node.name, problems, node.kwargs, names, missing, node.span)

    def check_constant_call(self, builtin: Builtin, node: ast.FuncCall) -> None:
        """A builtin given only constants of types it refuses (`lower(5)`, `round(1, "x")`, `len(5)`,
        `days("1")`) fails whenever it runs: said at the call, with the message the run would give (the
        builtin itself judges them). As for operators, a value's problem (`date("2024-13-01")`) is left
        to the run, where a try may catch it. Builtins that build large results from small constants
        (range, pad_left) and those that are not pure are not called."""
        if not builtin.pure or builtin.name in NOT_CALLED_AT_CHECK:
            return
        args = [constant_value(a) for a in node.args]
        kwargs = {k.name: constant_value(k.value) for k in node.kwargs}
        if not all(known for known, _ in [*args, *kwargs.values()]):
            return
        try:
            values = builtin.order([v for _, v in args], {k: v for k, (_, v) in kwargs.items()}, lambda d: d)
            builtin.fn(*values)
        except (BuiltinError, OperatorError) as e:
            if e.kind == "type":
                self.error("constant-operation", e.message, node.span)
        except Exception:
            pass

    def check_dollar_reference(self, node: ast.FuncCall, names: list[str]) -> None:
        """A constant replacement of regex_replace() that writes a group as `$1` (another language's
        spelling, the text "$1" here) of a constant pattern that has that group: warned at the replacement."""
        given = {**dict(zip(names, node.args, strict=False)), **{k.name: k.value for k in node.kwargs}}
        if "pattern" not in given or "replacement" not in given:
            return
        (known_pattern, pattern), (known, replacement) = (constant_value(given["pattern"]),
                                                          constant_value(given["replacement"]))
        if not (known_pattern and known and type(pattern) is str and type(replacement) is str):
            return
        found = dollar_reference(pattern, replacement)
        if found is not None:
            written, meant = found
            self.warnings.append(Diagnostic(
                "regex-dollar", f"regex_replace(): {written} in the replacement is the text {written}, not a group "
                f"of the pattern (a group is written {meant} here)", self.source, given["replacement"].span,
                f"write {meant} for that group (single quotes keep the backslash: '{meant}')", Severity.WARNING))

    def check_constant_arguments(self, builtin: Builtin, node: ast.FuncCall, names: list[str]) -> None:
        """An argument written as a constant (a zone name, a pattern, a format) judged by the builtin's own
        rule for it: a typo there would fail every record at run time."""
        if not builtin.constant_checks:
            return
        given = [*zip(names, node.args, strict=False), *((k.name, k.value) for k in node.kwargs)]
        for param, expr in given:
            if param not in builtin.constant_checks:
                continue
            known, value = constant_value(expr)
            if param in builtin.secret_checks and is_secret_text(expr):
                known, value = True, Secret("")  # refused whatever the secret holds
            problem = builtin.constant_problem(param, value) if known else None
            if problem is not None:
                self.error("constant-argument", problem.message, expr.span)

    def expr_ListLit(self, node: ast.ListLit, scope: Scope, use: str) -> None:
        for item in node.items:
            self.expr(item, scope)

    def expr_ObjectLit(self, node: ast.ObjectLit, scope: Scope, use: str) -> None:
        seen: dict[str, Span] = {}
        for pair in node.pairs:
            if isinstance(pair.key, ast.Literal) and isinstance(pair.key.value, str):
                if pair.key.value in seen:
                    self.error("duplicate-key", f"the key '{pair.key.value}' appears twice in this object",
                               pair.key.span)
                seen[pair.key.value] = pair.key.span
            else:
                self.expr(pair.key, scope)
            self.expr(pair.value, scope)

    def check_constant_iterable(self, expr: ast.Expr) -> None:
        """A loop over a constant that is not a list, an object or null (`for each x in 5`) fails
        whenever it runs: said at the constant."""
        known, value = constant_value(expr)
        if known and value is not None and type(value) not in (list, dict):
            self.error("constant-operation", f"cannot loop over {type_name(value)}", expr.span)

    def comprehension_scope(self, comp: ast.CompFor, scope: Scope) -> Scope:
        self.expr(comp.iterable, scope)
        self.check_constant_iterable(comp.iterable)
        inner = Scope(ScopeKind.COMPREHENSION, scope, scope.frame)
        for i, (name, span) in enumerate(zip(comp.names, comp.name_spans, strict=True)):
            slot = scope.frame.allocate(name)
            inner.names[name] = Binding(name, Kind.LOOP, scope.frame, slot, span)
            self.resolution.slots[(comp, i)] = slot
        if comp.condition is not None:
            self.expr(comp.condition, inner)
        return inner

    def expr_ListComp(self, node: ast.ListComp, scope: Scope, use: str) -> None:
        inner = self.comprehension_scope(node.comp, scope)
        self.expr(node.element, inner)

    def expr_ObjectComp(self, node: ast.ObjectComp, scope: Scope, use: str) -> None:
        inner = self.comprehension_scope(node.comp, scope)
        self.expr(node.key, inner)
        self.expr(node.value, inner)

    def expr_Negate(self, node: ast.Negate, scope: Scope, use: str) -> None:
        self.expr(node.operand, scope)
        known, value = constant_value(node.operand)
        if known and type(value) not in (int, Decimal):  # `-"a"`, `-null`: fails whenever it runs
            self.error("constant-operation", f"cannot negate {type_name(value)}", node.span)

    def expr_Not(self, node: ast.Not, scope: Scope, use: str) -> None:
        self.expr(node.operand, scope)

    def expr_Binary(self, node: ast.Binary, scope: Scope, use: str) -> None:
        self.expr(node.left, scope)
        self.expr(node.right, scope)
        self.check_constant_operands(node)

    def check_constant_operands(self, node: ast.Binary) -> None:
        """An operator on two constants of types it refuses (`"a" * 3`, `"a" + 1`) fails whenever it
        runs: said at the operator, with the message the run would give (the same function judges them)."""
        left_known, left = constant_value(node.left)
        right_known, right = constant_value(node.right)
        if not (left_known and right_known):
            return
        try:
            BINARY[node.op](left, right)
        except OperatorError as e:
            if e.kind == "type":  # a value's problem (`1 / 0`) is left to the run, where a try may catch it
                self.error("constant-operation", e.message, node.op_span)
        except (ArithmeticError, RecursionError):  # 1 / 0, constants nested thousands deep: left to the run
            pass

    def expr_Logical(self, node: ast.Logical, scope: Scope, use: str) -> None:
        self.expr(node.left, scope)
        self.expr(node.right, scope)

    def expr_Coalesce(self, node: ast.Coalesce, scope: Scope, use: str) -> None:
        self.expr(node.left, scope)
        self.expr(node.right, scope)

    def expr_Conditional(self, node: ast.Conditional, scope: Scope, use: str) -> None:
        self.expr(node.condition, scope)
        self.expr(node.then, scope)
        self.expr(node.otherwise, scope)


ZONE_WORDS = frozenset({"zone", "tz", "timezone", "time_zone", "tzinfo", "tz_name"})
ON_A_CLOCK = {  # the functions that take no zone, and how their value is had on another clock
    "format_date": 'format the time on that clock: format_date(to_zone(d, "Europe/Oslo"), "%Y-%m-%d %H:%M")',
    "now": 'now() on another clock is to_zone(now(), "Europe/Oslo")',
    "today": 'today on another clock is date(to_zone(now(), "Europe/Oslo"))',
    "date": 'the date on another clock is date(to_zone(d, "Europe/Oslo"))',
}


def zone_hint(function: str, name: str, allowed: set[str]) -> str | None:
    """The hint of a time zone given as a keyword that the function does not take (`format_date(d, fmt,
    zone: ...)`, `now(tz: ...)`): `zone:` where it takes that, else to_zone()."""
    if name not in ZONE_WORDS:
        return None
    if "zone" in allowed:
        return "did you mean 'zone'?"
    return ON_A_CLOCK.get(function)
