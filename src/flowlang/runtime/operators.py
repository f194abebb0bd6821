"""Operator semantics: arithmetic, ordering and membership on flowlang values.

Each function takes evaluated operands and raises OperatorError naming both types; the compiled
expression adds the position.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, localcontext
from decimal import Overflow as DecimalOverflow
from typing import Any

from flowlang import ast
from flowlang.runtime.limits import busy
from flowlang.runtime.values import (  # MAX_DIGITS, INT_BOUND: the size of a whole number
    INT_BOUND,
    MAX_DIGITS,
    RecordStream,
    Secret,
    equal,
    format_duration,
    instant,
    type_name,
)


class OperatorError(ValueError):
    """An operator got operands it cannot combine. kind: `type` or `value`."""

    def __init__(self, message: str, kind: str = "type") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class NeedsMaterialization(Exception):
    """An expression met a lazy record stream where it needs the records in memory."""

    def __init__(self, stream: RecordStream) -> None:
        super().__init__(stream.label)
        self.stream = stream


def mismatch(verb: str, a: Any, b: Any) -> OperatorError:
    return OperatorError(f"cannot {verb} {type_name(a)} and {type_name(b)}")


def _is_num(t: type) -> bool:
    return t is int or t is Decimal




def too_large(what: str) -> OperatorError:
    return OperatorError(f"the result of {what} is too large (a whole number of more than {MAX_DIGITS:,} digits)",
                         "value")


def sized(result: Any, what: str) -> Any:
    """An arithmetic result, refused when it is a whole number past MAX_DIGITS digits: every number a
    flow holds stays small enough that the next operation on it is quick, and it can be written as
    text and JSON."""
    if type(result) is int and not -INT_BOUND < result < INT_BOUND:
        raise too_large(what)
    return result


# + - * with a decimal among the operands are exact: done first in this context of 28 digits (as
# Python's default), which refuses to lose a digit (Inexact is trapped), so the usual small numbers take
# one C call; a result that needs more digits is computed again with as many as it needs (exact_decimal).
# Python's own context would round 99999999999999999999999999999999 + 0.5 to 1.000000000000000000000000000E+32.
# (A result whose digits past the 28th are all zeros keeps its value, written with fewer of them.)
DECIMAL_FAST = Context(prec=28, traps=[Inexact, InvalidOperation, DivisionByZero, DecimalOverflow])
decimal_add, decimal_subtract, decimal_multiply = DECIMAL_FAST.add, DECIMAL_FAST.subtract, DECIMAL_FAST.multiply
_FAST_FORMS: dict[Callable[[Any, Any], Any], Callable[[Any, Any], Decimal]] = {
    operator.add: decimal_add, operator.sub: decimal_subtract, operator.mul: decimal_multiply}
QUOTIENT_DIGITS = 28  # a quotient that does not end keeps at least this many significant digits
QUOTIENT = Context(prec=QUOTIENT_DIGITS, traps=[InvalidOperation, DivisionByZero, DecimalOverflow])


def computed(compute: Callable[[Any, Any], Any], a: Any, b: Any, what: str) -> Any:
    """a <op> b on two numbers (operator.add, sub or mul): whole numbers with the size of the result
    checked, decimals exactly (exact_decimal); a decimal's overflow (an exponent past what decimals
    hold) said in words."""
    if type(a) is int and type(b) is int:
        return sized(compute(a, b), what)
    try:
        return _FAST_FORMS[compute](a, b)
    except DecimalOverflow as e:  # (an Inexact too) an exponent past what decimals hold
        raise OperatorError(f"cannot compute {what}: {arithmetic_problem(e)}", "value") from None
    except Inexact:
        return exact_decimal(compute, a, b, what)
    except ArithmeticError as e:
        raise OperatorError(f"cannot compute {what}: {arithmetic_problem(e)}", "value") from None


def digit_count(x: Decimal) -> int:
    """The digits of a finite decimal's coefficient (0.0500 has 3)."""
    return len(x.as_tuple().digits)


def exact_decimal(compute: Callable[[Any, Any], Any], a: Any, b: Any, what: str) -> Decimal:
    """a <op> b (operator.add, sub or mul) with as many digits as its exact result has; past MAX_DIGITS,
    an error that says so (1E+3000 + 1E-3000 would need 6,002, with a carry)."""
    x, y = Decimal(a), Decimal(b)
    if compute is operator.mul:
        needed = digit_count(x) + digit_count(y)
    else:  # the larger's leading digit down to the finer's last one, and a carry
        exponent = min(x.as_tuple().exponent, y.as_tuple().exponent)
        needed = max(x.adjusted(), y.adjusted()) - int(exponent) + 2
    if needed > MAX_DIGITS:
        raise OperatorError(f"cannot compute {what} exactly: the result would have {needed:,} digits, more "
                            f"than the {MAX_DIGITS:,} a number may have (round() an operand first)", "value")
    wide = Context(prec=needed, traps=[InvalidOperation, DivisionByZero, DecimalOverflow])
    method = wide.multiply if compute is operator.mul else wide.add if compute is operator.add else wide.subtract
    try:
        return method(x, y)
    except ArithmeticError as e:
        raise OperatorError(f"cannot compute {what}: {arithmetic_problem(e)}", "value") from None


def whole(value: Decimal, what: str) -> int:
    """The integer of an integral decimal, refused past MAX_DIGITS digits (int(1e999999999) would
    build a billion digits)."""
    if value.adjusted() >= MAX_DIGITS:
        raise OperatorError(f"{what}: {value:.6E} is too large for a whole number (more than {MAX_DIGITS:,} "
                            "digits)", "value")
    return int(value)


def shift(moment: Any, delta: timedelta, sign: int = 1) -> Any:
    """A datetime or date moved by a duration, as elapsed time: a datetime on a zone's clock is moved
    in UTC and shown again on that clock, so `hours(1)` is one hour across a DST change too."""
    if type(moment) is date and (delta.seconds or delta.microseconds):  # date + hours(1) would drop them
        raise OperatorError(f"a date moves by whole days, not by {format_duration(delta)}: use datetime(d) "
                            "for a time of day", "value")
    try:
        if type(moment) is datetime and moment.tzinfo is not None and moment.tzinfo is not UTC:
            return (moment.astimezone(UTC) + sign * delta).astimezone(moment.tzinfo)
        return moment + sign * delta
    except OverflowError:
        raise OperatorError(f"the result is out of range: {type_name(moment)}s go from year 1 to 9999",
                            "value") from None


def between(a: Any, b: Any) -> timedelta:
    """The elapsed time from b to a (two datetimes or two dates)."""
    if type(a) is datetime:
        result: timedelta = a.astimezone(UTC) - b.astimezone(UTC)
        return result
    result = a - b
    return result


def add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if _is_num(ta) and _is_num(tb):
        return computed(operator.add, a, b, "+")
    if ta is tb and ta in (str, list):
        return a + b
    if ta is dict and tb is dict:
        return {**a, **b}
    if (ta is Secret or ta is str) and (tb is Secret or tb is str):
        left = a.reveal() if ta is Secret else a
        right = b.reveal() if tb is Secret else b
        return Secret(left + right, shown=(a.shown if ta is Secret else a) + (b.shown if tb is Secret else b))
    if ta in (datetime, date) and tb is timedelta:
        return shift(a, b)
    if ta is timedelta and tb in (datetime, date):
        return shift(b, a)
    if ta is timedelta and tb is timedelta:
        return _duration(operator.add, a, b)
    if _text_and_time(ta, tb) and _reads_as_time(a if ta is str else b):
        raise _text_is_no_time("add", a, b)
    if (ta in (datetime, date) and _is_num(tb)) or (_is_num(ta) and tb in (datetime, date)):
        raise _number_is_no_time("add", a, b)
    if (ta is str or ta is Secret) != (tb is str or tb is Secret) and ta not in (list, dict) \
            and tb not in (list, dict) and a is not None and b is not None:
        error = mismatch("add", a, b)  # text and a number (a date...): what JavaScript and Python users write
        raise OperatorError(error.message + ': to put a value into text write "total: {x}" (or "..." + str(x))')
    raise mismatch("add", a, b)


def subtract(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if _is_num(ta) and _is_num(tb):
        return computed(operator.sub, a, b, "-")
    if ta in (datetime, date) and tb is timedelta:
        return shift(a, b, -1)
    if ta is timedelta and tb is timedelta:
        return _duration(operator.sub, a, b)
    if ta is tb and ta in (datetime, date):
        return between(a, b)
    if _text_and_time(ta, tb):
        raise _text_is_no_time("subtract", a, b)
    if ta in (datetime, date) and _is_num(tb):
        raise _number_is_no_time("subtract", a, b)
    raise mismatch("subtract", a, b)


def _number_is_no_time(verb: str, a: Any, b: Any) -> OperatorError:
    """`today() + 1`: a number is not a day (nor a second), as it is in a spreadsheet or SQL's date + 1."""
    sign = "+" if verb == "add" else "-"
    return OperatorError(mismatch(verb, a, b).message + f": a number is no span of time: write d {sign} days(1) "
                         "(or hours(1), minutes(1), seconds(1))")


_TIMES = (datetime, date, timedelta)


def _text_and_time(ta: type, tb: type) -> bool:
    """A text on one side and a datetime, date or duration on the other: a date read from a file or
    given as a param (`param since`, `--param since=2024-05-01`) is text until datetime() reads it."""
    return (ta is str and tb in _TIMES) or (tb is str and ta in _TIMES)


_ISO_START = re.compile(r"\s*\d{4}-\d\d-\d\d")


def _reads_as_time(text: str) -> bool:
    """A text that starts as an ISO 8601 date does ("2024-05-01", "2024-05-01T10:00:00Z"): `"Due: " + d`
    is text and a date put together, whose hint is the one of text and a number."""
    return _ISO_START.match(text) is not None


def _text_is_no_time(verb: str, a: Any, b: Any) -> OperatorError:
    """The error of `since + days(1)` with since a text: the hint of text and a number ("total: {x}") was no
    help; it says to read the text as a datetime."""
    error = mismatch(verb, a, b)
    return OperatorError(error.message + ": a text is no date or time, even one that reads like one: write "
                         "datetime(x) (or date(x)) to read it, as in datetime(since) + days(1)")


def _duration(op: Callable[[Any, Any], Any], a: timedelta, b: Any) -> timedelta:
    try:
        result: timedelta = op(a, b)
    except (OverflowError, ValueError):  # past timedelta's range; a float too big for it
        raise OperatorError("the result is out of range: a duration is at most 999,999,999 days",
                            "value") from None
    return result


def multiply(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if _is_num(ta) and _is_num(tb):
        return computed(operator.mul, a, b, "*")
    if ta is timedelta and _is_num(tb):
        return _duration(operator.mul, a, int(b) if tb is int else float(b))
    raise mismatch("multiply", a, b)


def divide(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if not (_is_num(ta) and _is_num(tb)):
        raise mismatch("divide", a, b)
    if not b:
        raise OperatorError("division by zero", "value")
    if ta is int and tb is int and a % b == 0:
        return a // b
    x, y = Decimal(a), Decimal(b)
    digits = max(QUOTIENT_DIGITS, digit_count(x) + digit_count(y))  # 1/3 keeps 28 digits, a long dividend its own
    context = QUOTIENT if digits == QUOTIENT_DIGITS else \
        Context(prec=digits, traps=[InvalidOperation, DivisionByZero, DecimalOverflow])
    try:
        return context.divide(x, y)
    except ArithmeticError as e:
        raise OperatorError(f"cannot divide: {arithmetic_problem(e)}", "value") from None


def modulo(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if not (_is_num(ta) and _is_num(tb)):
        raise mismatch("take the remainder of", a, b)
    if not b:
        raise OperatorError("division by zero (in %)", "value")
    if ta is int and tb is int:
        return a % b
    x, y = Decimal(a), Decimal(b)
    magnitude = x.adjusted() - y.adjusted()
    if (x < 0) != (y < 0):  # the remainder is moved by y: as many digits as y and x together need
        magnitude = abs(magnitude)
    return exactly(lambda: _floored_remainder(x, y), magnitude, "%")


def _floored_remainder(a: Decimal, b: Decimal) -> Decimal:
    """a % b with the sign of b, as whole numbers have it (-7 % 3 is 2, so -7.0 % 3 is 2.0 too);
    Decimal's own % takes the sign of a."""
    result = a % b
    if result and (result < 0) != (b < 0):
        result += b
    return result


def exactly(compute: Callable[[], Decimal], magnitude: int, what: str) -> Decimal:
    """A decimal operation done with as many digits as its result needs (`magnitude`: about how many
    digits left of the point), up to MAX_DIGITS; past that, an error that says so."""
    digits = max(28, magnitude + 30)
    if digits > MAX_DIGITS:
        raise OperatorError(f"the number is too large for {what} (it would need {magnitude:,} digits; "
                            f"at most {MAX_DIGITS:,})", "value")
    try:
        with localcontext(prec=digits):
            return +compute()
    except ArithmeticError as e:
        raise OperatorError(f"cannot compute {what}: {arithmetic_problem(e)}", "value") from None


def arithmetic_problem(error: ArithmeticError) -> str:
    """What went wrong in a decimal or integer operation, in words (decimal's own text is a class list)."""
    if isinstance(error, DivisionByZero | ZeroDivisionError):
        return "division by zero"
    if isinstance(error, OverflowError | DecimalOverflow):
        return "the number is too large"
    if isinstance(error, InvalidOperation):
        return "the number is too large or not a number"
    return str(error) or type(error).__name__


def negate(a: Any) -> Any:
    t = type(a)
    if t is Decimal:
        return a.copy_negate()  # exact: no rounding, no overflow
    if t is int:
        return -a
    if t is timedelta:  # -(days(999999999) + hours(1)) is past timedelta.min: an OverflowError before
        return _duration(lambda d, _: -d, a, None)
    raise OperatorError(f"cannot negate {type_name(a)}")


ORDERED = {"number", "string", "datetime", "date", "duration"}


def _ordered(a: Any, b: Any) -> None:
    na, nb = type_name(a), type_name(b)
    if na != nb or na not in ORDERED:
        if _text_and_time(type(a), type(b)):  # r.created_at > job.last_success_at, created_at read as text
            raise OperatorError(f"cannot compare {na} and {nb}: a text is no date or time, even one that reads "
                                "like one: write datetime(x) (or date(x)) to read it, as in datetime(r.created_at) > "
                                "job.last_success_at")
        raise OperatorError(f"cannot compare {na} and {nb}")


def less(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if (ta is tb and (ta is str or ta is int)) or (_is_num(ta) and _is_num(tb)):
        return bool(a < b)
    _ordered(a, b)
    if ta is datetime:
        return bool(instant(a) < instant(b))
    return bool(a < b)


def less_equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if (ta is tb and (ta is str or ta is int)) or (_is_num(ta) and _is_num(tb)):
        return bool(a <= b)
    _ordered(a, b)
    if ta is datetime:
        return bool(instant(a) <= instant(b))
    return bool(a <= b)


def greater(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if not ((ta is tb and (ta is str or ta is int)) or (_is_num(ta) and _is_num(tb))):
        _ordered(a, b)
        if ta is datetime:
            return bool(instant(a) > instant(b))
    return bool(a > b)


def greater_equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if not ((ta is tb and (ta is str or ta is int)) or (_is_num(ta) and _is_num(tb))):
        _ordered(a, b)
        if ta is datetime:
            return bool(instant(a) >= instant(b))
    return bool(a >= b)


def not_equal(a: Any, b: Any) -> bool:
    return not equal(a, b)


def contains(container: Any, item: Any) -> bool:
    """`item in container`: list item, object key or substring; nothing is in null."""
    t = type(container)
    if t is list:
        return any(equal(item, x) for x in busy(container))
    if t is dict:
        if type(item) is not str:
            raise OperatorError(f"object keys are strings, not {type_name(item)}")
        return item in container
    if t is str or t is Secret:
        text = container.reveal() if t is Secret else container
        if isinstance(item, Secret):
            item = item.reveal()
        if type(item) is not str:
            raise OperatorError(f"cannot look for {type_name(item)} in a string")
        return item in text
    if container is None:
        return False
    if t is RecordStream:
        raise NeedsMaterialization(container)
    raise OperatorError(f"cannot look inside {type_name(container)} with `in`")


def not_contains(container: Any, item: Any) -> bool:
    return not contains(container, item)


def as_int(value: Any, what: str) -> int:
    """An integral number as int (1.0 counts), else OperatorError."""
    if type(value) is int:
        return int(value)
    if type(value) is Decimal and value.is_finite() and value == value.to_integral_value():
        return whole(value, what)
    raise OperatorError(f"{what} must be a whole number, got {type_name(value)}"
                        + (f" {value}" if type(value) is Decimal else ""))


BINARY: dict[ast.BinOp, Callable[[Any, Any], Any]] = {  # each operator's function (run, and check of constants)
    ast.BinOp.ADD: add, ast.BinOp.SUB: subtract, ast.BinOp.MUL: multiply,
    ast.BinOp.DIV: divide, ast.BinOp.MOD: modulo, ast.BinOp.EQ: equal, ast.BinOp.NE: not_equal,
    ast.BinOp.LT: less, ast.BinOp.LE: less_equal, ast.BinOp.GT: greater,
    ast.BinOp.GE: greater_equal, ast.BinOp.IN: lambda a, b: contains(b, a),
    ast.BinOp.NOT_IN: lambda a, b: not_contains(b, a),
}
