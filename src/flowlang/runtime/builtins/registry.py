"""Built-in functions with declared signatures, and the registry an environment builds from them.

A builtin's signature is its Python signature (names, defaults, *args); the checker validates
every call against it before the flow runs, so the functions only check value types.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import cache, cached_property
from typing import Any, TypeVar

from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.limits import VALUE_ITEMS
from flowlang.runtime.masking import register_derived
from flowlang.runtime.values import Secret, type_name

T = TypeVar("T")


class BuiltinError(ValueError):
    """A builtin refused its arguments; the caller adds the position. kind is `type` or `value`."""

    def __init__(self, message: str, kind: str = "value") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def check_items(count: int, fn: str, text: bool = False) -> None:
    """Refuse to build a list of `count` items (or, with `text`, a string of `count` characters) past
    the run's max_value_items: checked before the value is built, so no builtin can make a huge one."""
    limit = VALUE_ITEMS.get()
    if count > limit:
        value = f"a text of {count} characters" if text else f"a value of {count} items"
        raise BuiltinError(f"{fn}() would make {value}, more than the limit of {limit} (max_value_items)", "limit")


REQUIRED = inspect.Parameter.empty


class NotGiven:
    """The default of an optional argument that has no value of its own (null given is not the same:
    `range(1, null)` is refused, `range(1)` is range(n))."""

    def __repr__(self) -> str:
        return "not given"


NOT_GIVEN = NotGiven()


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any = REQUIRED
    variadic: bool = False


def params_of(fn: Callable[..., Any]) -> tuple[ParamSpec, ...]:
    """A Python function's parameters as a builtin's."""
    return tuple(ParamSpec(p.name, p.default, p.kind is inspect.Parameter.VAR_POSITIONAL)
                 for p in inspect.signature(fn).parameters.values())


class Builtin:
    """A named function callable from flowlang expressions. Its parameters and summary are read
    from the Python function when first needed (reading every builtin's signature at import slowed
    each start of `flowlang`).

    `direct`, for a builtin of one argument: (types, function) where, for an argument of exactly one
    of those types, `function(argument)` is what `fn` gives (compiled code calls it without `fn`'s
    frame, e.g. `len` of a list; any other argument goes to `fn`).

    `with_constant`, for a builtin of two arguments: given a constant second argument, a function of the
    first that gives what `fn` gives with that constant (its checks of the constant made once, when the
    call is compiled: round(x, 2)), or None when it has none for that constant."""

    def __init__(self, name: str, fn: Callable[..., Any], params: tuple[ParamSpec, ...] | None = None,
                 doc: str | None = None, pure: bool = True,
                 direct: tuple[frozenset[type], Callable[[Any], Any]] | None = None,
                 constant_checks: Mapping[str, Callable[[Any], object]] | None = None,
                 secret_checks: frozenset[str] = frozenset(),
                 with_constant: Callable[[Any], Callable[[Any], Any] | None] | None = None) -> None:
        self.name = name
        self.with_constant = with_constant
        self.fn = fn
        self.pure = pure
        self.direct = direct
        self.constant_checks = constant_checks or {}
        self.secret_checks = secret_checks
        if params is not None:
            self.__dict__["params"] = params
        if doc is not None:
            self.__dict__["doc"] = doc

    @classmethod
    def of(cls, name: str, fn: Callable[..., Any], pure: bool = True,
           direct: tuple[frozenset[type], Callable[[Any], Any]] | None = None,
           constant_checks: Mapping[str, Callable[[Any], object]] | None = None,
           secret_checks: frozenset[str] = frozenset(),
           with_constant: Callable[[Any], Callable[[Any], Any] | None] | None = None) -> Builtin:
        """`constant_checks`: for a parameter, the rule the function applies to that argument (raising
        BuiltinError), so that `flowlang check` judges an argument written as a constant (a zone name,
        a pattern, a format) by it before the run, instead of every record failing at run time.
        `secret_checks`: the parameters whose rule refuses any secret (len's): check gives the rule a
        stand-in secret for an argument that is one whatever it holds (`len(secret.K)`)."""
        return cls(name, fn, pure=pure, direct=direct, constant_checks=constant_checks, secret_checks=secret_checks,
                   with_constant=with_constant)

    def constant_problem(self, param: str, value: Any) -> BuiltinError | None:
        """What the function would refuse in this constant argument, or None."""
        rule = self.constant_checks.get(param)
        if rule is None:
            return None
        try:
            rule(value)
        except BuiltinError as e:
            return e
        return None

    @cached_property
    def params(self) -> tuple[ParamSpec, ...]:
        return params_of(self.fn)

    @cached_property
    def doc(self) -> str:
        """The first line of the docstring: `name(args): what it gives`."""
        return self.help.splitlines()[0] if self.help else ""

    @cached_property
    def help(self) -> str:
        """The whole docstring: the summary line, paragraphs, and an `Examples:` section (one
        `expression -> result` a line) that docs/builtins.md shows and the tests run."""
        return inspect.getdoc(self.fn) or ""

    def __repr__(self) -> str:
        return f"Builtin({self.name!r})"

    @property
    def variadic(self) -> bool:
        return any(p.variadic for p in self.params)

    def signature(self) -> str:
        parts = []
        for p in self.params:
            if p.variadic:
                parts.append(f"{p.name}...")
            elif p.default is REQUIRED:
                parts.append(p.name)
            else:
                parts.append(f"{p.name}: {_show_default(p.default)}")
        return f"{self.name}({', '.join(parts)})"

    def bind_problems(self, n_positional: int, keywords: list[str]) -> list[str]:
        """What is wrong with a call of this many positional arguments and these keyword names."""
        fixed = [p for p in self.params if not p.variadic]
        problems: list[str] = []
        if not self.variadic and n_positional > len(fixed):
            most = len(fixed)
            takes = "no arguments" if most == 0 else f"at most {most} argument{'s' if most != 1 else ''}"
            problems.append(f"{self.signature()} takes {takes}, got {n_positional}")
        names = {p.name for p in fixed}
        for k in keywords:
            if k not in names:
                allowed = ", ".join(p.name for p in fixed) or "none"
                problems.append(f"{self.name}() has no argument '{k}' (its arguments: {allowed})")
            elif k in {p.name for p in fixed[:n_positional]}:
                problems.append(f"{self.name}() got '{k}' twice")
        filled = {p.name for p in fixed[:n_positional]} | set(keywords)
        missing = [p.name for p in fixed if p.default is REQUIRED and p.name not in filled]
        if self.variadic and n_positional >= 1 and not fixed:
            missing = []
        if missing:
            problems.append(f"{self.signature()} needs {', '.join(repr(m) for m in missing)}")
        if self.variadic and n_positional == 0 and not fixed and not keywords:
            problems.append(f"{self.signature()} needs at least one argument")
        return problems

    def order(self, args: list[T], kwargs: dict[str, T], default: Callable[[Any], T]) -> list[T]:
        """The call's arguments in the Python function's order: positionals, keywords by name, the
        defaults (as `default(value)` makes them) for the rest, and extra positionals for *args."""
        plan, variadic = self.arrange(len(args), list(kwargs))
        fixed = [p for p in self.params if not p.variadic]
        out: list[T] = []
        for spec, step in zip(fixed, plan, strict=True):
            if isinstance(step, int):
                out.append(args[step])
            elif isinstance(step, str):
                out.append(kwargs[step])
            else:
                out.append(default(spec.default))
        if variadic:
            out.extend(args[len(fixed):])
        return out

    def arrange(self, n_positional: int, keywords: list[str]) -> tuple[list[int | str | None], bool]:
        """How to build the Python call: for each fixed parameter, the positional index, the keyword
        name, or None for its default; and whether extra positionals go to *args."""
        fixed = [p for p in self.params if not p.variadic]
        plan: list[int | str | None] = []
        for i, p in enumerate(fixed):
            if i < n_positional:
                plan.append(i)
            elif p.name in keywords:
                plan.append(p.name)
            else:
                plan.append(None)
        return plan, self.variadic


def _show_default(value: Any) -> str:
    if value is NOT_GIVEN:
        return "(optional)"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


class BuiltinRegistry:
    """The builtins of one environment (never a module global)."""

    def __init__(self, builtins: Iterable[Builtin] = ()) -> None:
        self._table: dict[str, Builtin] = {}
        for b in builtins:
            self.add(b)

    def add(self, builtin: Builtin) -> None:
        self._table[builtin.name] = builtin

    def get(self, name: str) -> Builtin | None:
        return self._table.get(name)

    def names(self) -> list[str]:
        return sorted(self._table)

    def all(self) -> Mapping[str, Builtin]:
        return dict(self._table)


# ---- helpers for builtin implementations ------------------------------------------------


_KIND_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}), "number": frozenset({int, Decimal}), "list": frozenset({list}),
    "object": frozenset({dict}), "secret": frozenset({Secret}), "boolean": frozenset({bool}),
}


@cache
def _types_of(kinds: str) -> frozenset[type]:
    out: frozenset[type] = frozenset()
    for kind in kinds.split():
        out |= _KIND_TYPES.get(kind, frozenset())
    return out


def need(value: Any, kinds: str, fn: str, arg: str = "") -> None:
    """Raise a type error unless type_name(value) is one of the space-separated kinds."""
    if type(value) in _types_of(kinds):
        return
    actual = type_name(value)
    if actual not in kinds.split():
        where = f" for '{arg}'" if arg else ""
        wanted = " or ".join(kinds.split())
        article = "an" if wanted[0] in "aeiou" else "a"
        hint = _text_number_hint(value, kinds)
        raise BuiltinError(f"{fn}() needs {article} {wanted}{where}, got {actual}{hint}", "type")


def _text_number_hint(value: Any, kinds: str) -> str:
    """The commonest beginner error: a number read from a CSV file (or a form, a query) is text."""
    if not isinstance(value, str) or "number" not in kinds.split():
        return ""
    try:
        Decimal(value.strip().replace(",", ""))
    except ArithmeticError:
        return ""
    return " that looks like a number (CSV cells are text: use number(...) to convert it)"


def reveal_all(args: Iterable[Any]) -> tuple[list[Any], bool]:
    """Unwrap secrets for a text function; True when any argument was secret."""
    out: list[Any] = []
    secret = False
    for a in args:
        if isinstance(a, Secret):
            out.append(a.reveal())
            secret = True
        else:
            out.append(a)
    return out, secret


def kept_secret(result: Any) -> Any:
    """The result of a text function given a secret: its text is secret, and so is each text in a list
    it gives (split's parts). The run's masker learns each such text: masking of the whole secret
    would not find upper(secret.T), a substr() or a part in an API's answer that echoes it."""
    if isinstance(result, str):
        register_derived(result)
        return Secret(result)
    if isinstance(result, list):
        return [kept_secret(x) for x in result]
    if isinstance(result, dict):
        return {k: kept_secret(v) for k, v in result.items()}
    return result


def secret_preserving(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a text function: secrets in, secret out (the result is shown as ***)."""

    code = fn.__code__  # not inspect.signature: this runs for every text builtin at import
    plain_one = (code.co_argcount == 1 and not code.co_posonlyargcount and not code.co_kwonlyargcount
                 and not code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS))
    if plain_one:
        def one(value: Any) -> Any:
            if type(value) is not Secret:
                return fn(value)
            return kept_secret(fn(value.reveal()))

        one.__wrapped__ = fn  # type: ignore[attr-defined]  # inspect.signature(one) is fn's
        one.__doc__ = fn.__doc__
        one.__name__ = fn.__name__
        return one

    def wrapper(*args: Any) -> Any:
        for a in args:
            if type(a) is Secret:
                break
        else:
            return fn(*args)
        plain, _ = reveal_all(args)
        return kept_secret(fn(*plain))

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper
