"""Number builtins: conversion, rounding (half away from zero) and aggregates (nulls are ignored)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any

from flowlang.runtime.builtins.registry import Builtin, BuiltinError, need
from flowlang.runtime.operators import (
    OperatorError,
    add,
    arithmetic_problem,
    as_int,
    decimal_add,
    divide,
    exactly,
    less,
    sized,
    whole,
)
from flowlang.runtime.values import INT_BOUND, MAX_DIGITS, type_name


def number(value: Any) -> Any:
    """number(x): a number from text ("10.50", "7", "-1e3"); numbers pass; "" and null give null.

    Surrounding spaces are ignored. Whole numbers become integers, others exact decimals (the digits are
    kept: "10.50" stays 10.50). Text that is not a number fails the record, and so do digit separators
    and digits of other scripts ("2024_05", "1,000", "١٢٣"). CSV cells are text: convert them with
    number() before arithmetic or round(). An amount written for people is refused with the replace()
    that reads it: "1,234.50" says number(replace(x, ",", "")), "1.234,50" and "12,50" the decimal
    comma's, "$12.50" and "15%" to take the sign away.

    Examples:
        number("10.50") -> 10.50
        number(" 7 ") -> 7
        number("") -> null
        number("10.50") + 1 -> 11.50
    """
    return _number(value, "number")


def _number(value: Any, fn: str) -> Any:
    """number(value), its type errors naming `fn` (int() reads its argument as number() does)."""
    if value is None:
        return None
    t = type(value)
    if t is int or t is Decimal:
        return value
    need(value, "string number", fn)
    text = value.strip()
    if text == "":
        return None
    shown = repr(value) if len(value) <= 60 else repr(value[:50]) + f"... ({len(value):,} characters)"
    if not text.isascii() or "_" in text:  # Python reads "2024_05" as 202405 and "١٢٣" as 123; data does not
        raise BuiltinError(f"cannot read {shown} as a number{_written_otherwise(text, fn)}")
    digits = text.lstrip("+-")
    if digits.isdigit() and len(digits) > MAX_DIGITS:
        raise BuiltinError(f"cannot read {shown} as a number: a whole number may have at most {MAX_DIGITS:,} digits")
    try:
        if digits.isdigit():
            return int(text)
        result = Decimal(text)
    except (InvalidOperation, ValueError):
        raise BuiltinError(f"cannot read {shown} as a number{_written_otherwise(text, fn)}") from None
    if not result.is_finite():
        raise BuiltinError(f"cannot read {shown} as a number")
    return result


_THOUSANDS_COMMA = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")  # 1,234.50
_THOUSANDS_POINT = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?")  # 1.234,50 (German, Norwegian, ...)
_THOUSANDS_SPACE = re.compile(r"[+-]?\d{1,3}([ \u00a0\u202f']\d{3})+([.,]\d+)?")  # 1 234,50, 1'234.50
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")  # 12,50
# a sign before or after the amount; the amount's runs of digits, points and commas split by runs of spaces,
# so that each space has one reading (a pattern of spaces that overlapped took 4 s to refuse "1", 1,000
# spaces and "x", 30 s with 2,000: it runs for every record whose number() fails)
_CURRENCY = re.compile(r"^\s*(?:([$€£¥]|[A-Z]{3}\s)\s*)?([+-]?[\d.,]+(?:\s+[\d.,]+)*)"
                       r"\s*(?:([$€£¥%]|[A-Z]{3}|kr|,-)\s*)?$")


def _written_otherwise(text: str, fn: str = "number") -> str:
    """What number() says of an amount written for people: a thousands separator, a decimal comma, a
    currency or a percent sign, with the replace() that reads it ("" when the text is none of those)."""
    core = text
    found = _CURRENCY.match(text)
    sign = ""
    if found is not None and (found.group(1) or found.group(3)):
        core = found.group(2).strip()
        sign = (found.group(1) or found.group(3) or "").strip()
    if _THOUSANDS_COMMA.fullmatch(core) and re.fullmatch(r"[+-]?\d{1,3},\d{3}", core):  # 1,000: which one?
        how = (': it has "," between thousands, number(replace(x, ",", "")), or as a decimal comma, '
               'number(replace(x, ",", "."))')
    elif _THOUSANDS_COMMA.fullmatch(core):
        how = ': it has "," between thousands: number(replace(x, ",", ""))'
    elif _THOUSANDS_POINT.fullmatch(core) and "," in core:
        how = ': it has "." between thousands and a decimal comma: number(replace(replace(x, ".", ""), ",", "."))'
    elif _THOUSANDS_POINT.fullmatch(core) and core.count(".") > 1:
        how = ': it has "." between thousands: number(replace(x, ".", ""))'
    elif _THOUSANDS_SPACE.fullmatch(core):
        mark = next(c for c in core if c in " \u00a0\u202f'")
        point = ', ",", "."' if "," in core else ""
        shown = {" ": '" "', "\u00a0": '"\\u00a0" (a no-break space)', "\u202f": '"\\u202f" (a narrow no-break space)',
                 "'": '"\'"'}[mark]
        fix = f'replace(x, {shown.split(" (")[0]}, "")'
        how = (f": it has {shown} between thousands: number({fix})" if not point else
               f": it has {shown} between thousands and a decimal comma: number(replace({fix}{point}))")
    elif _DECIMAL_COMMA.fullmatch(core):
        how = ': it has a decimal comma: number(replace(x, ",", "."))'
    elif sign and re.fullmatch(r"[+-]?\d+(\.\d+)?", core):
        how = f": take the {sign!r} away first: number(replace(x, {sign!r}, \"\"))".replace("'", '"')
    else:
        return ""
    if sign and how and "take the" not in how:
        how += f" (and take the {sign!r} away)".replace("'", '"')
    return how.replace("number(", f"{fn}(")


def int_(value: Any) -> Any:
    """int(x): the whole part of a number or numeric text, toward zero.

    Text is read as number() reads it: surrounding spaces are ignored, "" (an empty CSV cell) and null
    give null, and text that is not a number fails the record.

    Examples:
        int("42") -> 42
        int(-2.7) -> -2
        int("19.99") -> 19
        int("") -> null
    """
    n = _number(value, "int")
    if n is None or type(n) is int:
        return n
    return _whole(n.to_integral_value(rounding=ROUND_DOWN), "int()")


def _whole(value: Decimal, what: str) -> int:
    try:
        return whole(value, what)
    except OperatorError as e:
        raise BuiltinError(e.message) from None


def _places(places: Any) -> int:
    try:
        return as_int(places, "round()'s places")
    except OperatorError as e:
        raise BuiltinError(e.message, "type") from None


_EXPONENTS = {d: Decimal(1).scaleb(-d) for d in range(-6, 13)}
# round()'s fast path: a quantize in this context gives the general path's result whenever the result
# fits its 28 digits (the general path's context has at least 28, so it never rounds such a result
# again); anything else (more digits, infinity, a signalling NaN) raises here and takes the general path
_ROUND_FAST = Context(prec=28, traps=[InvalidOperation, DivisionByZero, Overflow])


def round_(value: Any, places: Any = 0) -> Any:
    """round(x, places): x rounded to places decimals, half away from zero (2.5 -> 3, -2.5 -> -3).

    round(x) gives an integer. A negative places rounds to tens, hundreds, ... The rounding is exact
    (decimals, not binary floating point): round(2.675, 2) is 2.68. A decimal keeps places digits after
    the point (round(7.5, 2) is 7.50) and a whole number stays whole (round(7, 2) is 7), so for a text
    or a CSV cell that always shows two decimals (an amount for an accounting import), add 0.00 first:
    round(x + 0.00, 2) is 7.00 for 7.

    Examples:
        round(2.345, 2) -> 2.35
        round(2.675, 2) -> 2.68
        round(2.5) -> 3
        round(-2.5) -> -3
        round(1234, -2) -> 1200
        round(7, 2) -> 7
        round(7 + 0.00, 2) -> 7.00
    """
    if type(places) is int:
        if type(value) is int and places >= 0:
            return value
        exp = _EXPONENTS.get(places) if type(value) is Decimal else None
        if exp is not None:
            try:
                fast = value.quantize(exp, ROUND_HALF_UP, _ROUND_FAST)
            except ArithmeticError:
                pass
            else:
                if places <= 0:
                    return int(fast)
                return fast if fast else _ROUND_FAST.plus(fast)  # -0.00 -> 0.00, as the general path's `+`
    return _round(value, places)


def round_to(places: Any) -> Callable[[Any], Any] | None:
    """round(x, places) of a constant places of 1 to 12 decimals: round_'s fast path for it, with the
    checks of places made once (round_ itself for anything its fast path does not take)."""
    exp = _EXPONENTS.get(places) if type(places) is int else None
    if exp is None or places <= 0:
        return None
    quantize, plus = Decimal.quantize, _ROUND_FAST.plus

    def rounded(value: Any) -> Any:
        t = type(value)
        if t is Decimal:
            try:
                fast = quantize(value, exp, ROUND_HALF_UP, _ROUND_FAST)
            except ArithmeticError:
                return _round(value, places)
            return fast if fast else plus(fast)  # -0.00 -> 0.00, as the general path's `+`
        if t is int:
            return value
        return _round(value, places)
    return rounded


def _round(value: Any, places: Any) -> Any:
    """round() in general: any size (exact to MAX_DIGITS digits), and its errors."""
    if value is None:
        return None
    need(value, "number", "round")
    digits = _places(places)
    if type(value) is int and digits >= 0:
        return value
    exp = _EXPONENTS.get(digits) or Decimal(1).scaleb(-digits)
    exact = Decimal(value)
    try:
        result = exactly(lambda: exact.quantize(exp, rounding=ROUND_HALF_UP), exact.adjusted() + digits, "round()")
    except OperatorError as e:
        raise BuiltinError(e.message) from None
    return _whole(result, "round()") if digits <= 0 else result


def floor(value: Any) -> Any:
    """floor(x): the largest whole number not above x.

    Examples:
        floor(2.7) -> 2
        floor(-2.5) -> -3
    """
    if value is None:
        return None
    need(value, "number", "floor")
    if type(value) is int:
        return value
    return _whole(value.to_integral_value(rounding=ROUND_FLOOR), "floor()")


def ceil(value: Any) -> Any:
    """ceil(x): the smallest whole number not below x.

    Examples:
        ceil(2.1) -> 3
        ceil(-2.5) -> -2
    """
    if value is None:
        return None
    need(value, "number", "ceil")
    if type(value) is int:
        return value
    return _whole(value.to_integral_value(rounding=ROUND_CEILING), "ceil()")


def abs_(value: Any) -> Any:
    """abs(x): x without its sign.

    Examples:
        abs(-4.50) -> 4.50
    """
    if value is None:
        return None
    need(value, "number", "abs")
    return value.copy_abs() if type(value) is Decimal else abs(value)  # exact: abs() would round to 28 digits


def _values(args: tuple[Any, ...], fn: str) -> list[Any]:
    """The items of a single list argument, or the arguments themselves; nulls left out."""
    items: Any = args[0] if len(args) == 1 and type(args[0]) is list else list(args)
    if len(args) == 1 and args[0] is None:
        items = []
    if len(args) == 1 and type(args[0]) not in (list,) and args[0] is not None and fn in ("sum", "avg"):
        need(args[0], "list", fn)
    return [x for x in items if x is not None]


def _extreme(args: tuple[Any, ...], fn: str, pick_less: bool) -> Any:
    items = _values(args, fn)
    if not items:
        return None
    best = items[0]
    try:
        for x in items[1:]:
            if less(x, best) if pick_less else less(best, x):
                best = x
    except OperatorError as e:
        raise BuiltinError(f"{fn}(): {e.message}", "type") from None
    return best


def min_(*values: Any) -> Any:
    """min(list) or min(a, b, ...): the smallest value (nulls ignored; null when there is none).

    Numbers, texts, dates and datetimes compare; mixing kinds (a number and a text) is an error.

    Examples:
        min([3, null, 1]) -> 1
        min(2, 5) -> 2
        min([]) -> null
        min(["b", "a"]) -> "a"
    """
    return _extreme(values, "min", True)


def max_(*values: Any) -> Any:
    """max(list) or max(a, b, ...): the largest value (nulls ignored; null when there is none).

    Examples:
        max([3, null, 1]) -> 3
        max(datetime("2024-05-01"), datetime("2024-06-01")) -> "2024-06-01T00:00:00Z"
    """
    return _extreme(values, "max", False)


def sum_(items: Any) -> Any:
    """sum(list): the total of the numbers (nulls ignored; 0 for an empty list).

    Exact: decimals add up without rounding errors. A text in the list is an error (convert it with
    number() first).

    Examples:
        sum([1.10, 2.20, null]) -> 3.30
        sum([]) -> 0
        sum([number(l.qty) * number(l.price) for l in [{qty: "2", price: "9.95"}]]) -> 19.90
    """
    total: Any = 0
    if type(items) is list:
        try:
            for x in items:
                t = type(x)
                if t is Decimal:
                    total = decimal_add(total, x)  # refuses to lose a digit: the loop below adds exactly
                elif t is int:
                    if type(total) is int:
                        total += x
                    else:
                        total = decimal_add(total, x)
                elif x is not None:
                    break
            else:
                if type(total) is not int or -INT_BOUND < total < INT_BOUND:
                    return total
                return sized(total, "sum()")  # its error
        except Overflow:  # (an Inexact too)
            raise BuiltinError("sum(): the number is too large") from None
        except Inexact:
            pass
        except ArithmeticError as e:
            raise BuiltinError(f"sum(): {arithmetic_problem(e)}") from None
    values = items if type(items) is list else _values((items,), "sum")  # the list itself: its items' places
    total = 0
    for i, x in enumerate(values):
        t = type(x)
        if x is None:
            continue
        if t is not int and t is not Decimal:
            raise BuiltinError(f"sum() needs numbers, item {i} is {type_name(x)}{_text_items_hint(x)}", "type")
        try:
            total = add(total, x)
        except OperatorError as e:
            raise BuiltinError(f"sum(): {e.message}") from None
    return total


def avg(items: Any) -> Any:
    """avg(list): the mean of the numbers (nulls ignored; null for an empty list).

    Examples:
        avg([2, null, 4]) -> 3
        avg([]) -> null
    """
    values = _values((items,), "avg")
    if not values:
        return None
    try:
        total = sum_(items)
    except BuiltinError as e:  # said as avg()'s: 'sum() needs numbers' named a function the flow never called
        raise BuiltinError(e.message.replace("sum()", "avg()", 1), e.kind) from None
    return divide(total, len(values))


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


_TABLE: list[tuple[str, Callable[..., Any]]] = [
        ("number", number), ("int", int_), ("round", round_), ("floor", floor), ("ceil", ceil),
        ("abs", abs_), ("min", min_), ("max", max_), ("sum", sum_), ("avg", avg),
]
BUILTINS = tuple(
    Builtin.of(name, fn, with_constant=round_to if fn is round_ else None) for name, fn in _TABLE
)


def _text_items_hint(item: Any) -> str:
    """sum() and avg() of CSV cells (text): how to convert each item."""
    if type(item) is not str:
        return ""
    try:
        Decimal(item.strip().replace(",", ""))
    except ArithmeticError:
        return ""
    return " that looks like a number (CSV cells are text: convert each item, [number(r.amount) for r in rows])"
