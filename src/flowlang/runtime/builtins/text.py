"""Text builtins. A null text argument gives null; a secret argument gives a secret result."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flowlang.runtime.builtins.registry import Builtin, BuiltinError, check_items, need, secret_preserving
from flowlang.runtime.limits import VALUE_ITEMS, check_busy, within_record
from flowlang.runtime.operators import OperatorError, as_int
from flowlang.runtime.values import Secret, check_text_size, to_text, type_name

REGEX_SECONDS = 1.0  # the most one regex_match / regex_find / regex_replace may take
_GROUP_REFERENCE = re.compile(r"\\(?:g<[^>]*>|[0-9]{1,2})")  # \1, \g<name> in a replacement
_DOLLAR_REFERENCE = re.compile(r"\$(?:\{(\w+)\}|(\d{1,2})|<(\w+)>)")  # $1, ${name}, $<name>: other languages' spelling


def dollar_reference(pattern: str, replacement: str) -> tuple[str, str] | None:
    """The first `$1` (`${name}`, `$<name>`) in a replacement that names a group `pattern` has, and what
    flowlang writes for it: JavaScript, Java, .NET and SQL's spelling, which Python's replacement (and so
    regex_replace) takes for the text "$1" ("$3.$2.$1" gave "$3.$2.$1", not "05.03.2024"). None when
    there is none, or the pattern does not compile (that is said elsewhere)."""
    try:
        groups = re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    for m in _DOLLAR_REFERENCE.finditer(replacement):
        number, name = m.group(2), m.group(1) or m.group(3)
        if number is not None and 0 < int(number) <= groups.groups:
            return m.group(), f"\\{int(number)}"
        if name is not None and (name in groups.groupindex or (name.isdigit() and 0 < int(name) <= groups.groups)):
            return m.group(), f"\\g<{name}>"
    return None


def _engine() -> Any:
    """The `regex` engine (like `re`, with a timeout: a backtracking pattern cannot hang a run),
    imported when a flow first uses a regular expression."""
    import regex  # type: ignore[import-untyped]

    return regex


def timed_out(name: str, pattern: str) -> BuiltinError:
    """The error of a regex that ran out of time: the record's (max_record_seconds) when that ran out
    first (check_busy raises it), else the pattern's own second; a limit's (a `try` lets it through)."""
    check_busy()
    return BuiltinError(f"{name}(): the pattern {pattern[:80]!r} took longer than {REGEX_SECONDS:g}s on this text "
                        "(catastrophic backtracking?); simplify it, e.g. avoid nested repeats like (a+)+", "limit")


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    try:
        return _engine().compile(pattern)
    except _engine().error as e:
        raise BuiltinError(f"bad regular expression {pattern!r}: {e}") from None


def lower(s: Any) -> Any:
    """lower(s): s in lower case.

    Examples:
        lower("Ann@Example.COM") -> "ann@example.com"
        lower(null) -> null
    """
    if type(s) is str:
        return s.lower()
    if s is None:
        return None
    need(s, "string", "lower")
    return s.lower()


def upper(s: Any) -> Any:
    """upper(s): s in upper case.

    Examples:
        upper("no") -> "NO"
    """
    if type(s) is str:
        return s.upper()
    if s is None:
        return None
    need(s, "string", "upper")
    return s.upper()


def trim(s: Any) -> Any:
    """trim(s): s without leading and trailing whitespace (spaces, tabs, line breaks).

    Examples:
        trim("  dora@example.com ") -> "dora@example.com"
    """
    if s is None:
        return None
    need(s, "string", "trim")
    return s.strip()


def split(s: Any, sep: Any = None) -> Any:
    """split(s, sep): the parts of s between each sep (whitespace when sep is null).

    Without sep, runs of whitespace separate and leading or trailing whitespace gives no empty part;
    with sep, every sep separates, so two in a row give an empty part.

    Examples:
        split("a,b,,c", ",") -> ["a", "b", "", "c"]
        split("  Ann   Berg ") -> ["Ann", "Berg"]
        split("ann@example.com", "@")[1] -> "example.com"
    """
    if s is None:
        return None
    need(s, "string", "split")
    if sep is not None:
        need(sep, "string", "split", "sep")
        if sep == "":
            raise BuiltinError("split() needs a non-empty separator")
        check_items(s.count(sep) + 1, "split")
    return s.split(sep)


def join(items: Any, sep: Any = "") -> Any:
    """join(list, sep): the items as text, with sep between them (nulls are left out).

    Numbers, booleans, lists and objects are shown as `str()` shows them.

    Examples:
        join(["a", null, 3], "-") -> "a-3"
        join(["x", "y"]) -> "xy"
    """
    if items is None:
        return None
    need(items, "list", "join")
    need(sep, "string", "join", "sep")
    check_items(len(items), "join")
    secret = False  # a secret among the items: its text is joined, and the result is secret (as "{x}" is)
    texts = []
    for i in items:
        if type(i) is Secret:
            secret = True
            texts.append(i.reveal())
        elif i is not None:
            texts.append(to_text(i))
    check_items(sum(map(len, texts)) + len(sep) * max(len(texts) - 1, 0), "join", text=True)
    text = sep.join(texts)
    return Secret(text) if secret else text


def replace(s: Any, old: Any, new: Any) -> Any:
    """replace(s, old, new): every old in s replaced by new (new may be any value, shown as text).

    Examples:
        replace("2024-05-01", "-", "/") -> "2024/05/01"
        replace("Total: N", "N", 42) -> "Total: 42"
    """
    if s is None:
        return None
    need(s, "string", "replace")
    need(old, "string", "replace", "old")
    new_text = to_text(new)
    if len(new_text) > len(old):
        count = s.count(old) if old else len(s) + 1
        check_items(len(s) + count * (len(new_text) - len(old)), "replace", text=True)
    return s.replace(old, new_text)


def starts_with(s: Any, prefix: Any) -> Any:
    """starts_with(s, prefix): true when s begins with prefix (false for null).

    Examples:
        starts_with("INV-0042", "INV-") -> true
        starts_with(null, "INV-") -> false
    """
    if s is None:
        return False
    need(s, "string", "starts_with")
    need(prefix, "string", "starts_with", "prefix")
    return s.startswith(prefix)


def ends_with(s: Any, suffix: Any) -> Any:
    """ends_with(s, suffix): true when s ends with suffix (false for null).

    Examples:
        ends_with("report.csv", ".csv") -> true
    """
    if s is None:
        return False
    need(s, "string", "ends_with")
    need(suffix, "string", "ends_with", "suffix")
    return s.endswith(suffix)


def contains(container: Any, item: Any) -> Any:
    """contains(x, item): true when item is a substring of a string, an item of a list, or a key of an object.

    The same as the `in` operator with its sides swapped. null contains nothing.

    Examples:
        contains("ann@example.com", "@") -> true
        contains([1, 2, 3], 2) -> true
        contains({sku: "A-1"}, "sku") -> true
        contains(null, "x") -> false
    """
    from flowlang.runtime.operators import contains as op_contains

    if container is None:
        return False
    return op_contains(container, item)


def pad_left(s: Any, width: Any, fill: Any = " ") -> Any:
    """pad_left(s, width, fill): s (as text) padded on the left to width characters.

    fill is one character (a space by default). A text already as wide or wider is given unchanged.
    width is a whole number (6.0 counts; 6.5 is an error).

    Examples:
        pad_left(42, 6, "0") -> "000042"
        pad_left("abc", 2) -> "abc"
    """
    if s is None:
        return None
    need(width, "number", "pad_left", "width")
    need(fill, "string", "pad_left", "fill")
    if len(fill) != 1:
        raise BuiltinError("pad_left() needs a single fill character")
    size = _whole_arg(width, "pad_left()'s width")
    check_items(size, "pad_left", text=True)
    return to_text(s).rjust(size, fill)


def _whole_arg(value: Any, what: str) -> int:
    """A width or an index: a whole number (2.0 counts; 2.5 is an error, not 2; 1e999999 is refused,
    not built, which took seconds)."""
    try:
        return as_int(value, what)
    except OperatorError as e:
        raise BuiltinError(e.message, e.kind) from None


def substr(s: Any, start: Any, length: Any = None) -> Any:
    """substr(s, start, length): length characters of s from index start (to the end without length).

    0 is the first character; a negative start counts from the end. start and length are whole
    numbers (2.0 counts; 1.5 is an error, not 1).

    Examples:
        substr("2024-05-01", 0, 4) -> "2024"
        substr("INV-0042", -4) -> "0042"
        substr("abc", 5) -> ""
    """
    if s is None:
        return None
    need(s, "string", "substr")
    need(start, "number", "substr", "start")
    begin = _whole_arg(start, "substr()'s start")
    if begin < 0:
        begin = max(0, len(s) + begin)
    if length is None:
        return s[begin:]
    need(length, "number", "substr", "length")
    return s[begin : begin + max(0, _whole_arg(length, "substr()'s length"))]


def regex_match(s: Any, pattern: Any) -> Any:
    r"""regex_match(s, pattern): true when the regular expression matches somewhere in s (false for null).

    Anchor the pattern with ^ and $ to match the whole text. Write patterns in single quotes, where a
    backslash is kept as it is (`'\d+'`). A pattern that takes longer than 1 second on one text fails
    that record (catastrophic backtracking; a limit, which `try` does not catch).

    Examples:
        regex_match("INV-0042", '^INV-\d+$') -> true
        regex_match("order 7", '^\d+$') -> false
    """
    if s is None:
        return False
    need(s, "string", "regex_match")
    need(pattern, "string", "regex_match", "pattern")
    try:
        return _regex(pattern).search(s, timeout=within_record(REGEX_SECONDS)) is not None
    except TimeoutError:
        raise timed_out("regex_match", pattern) from None


def regex_find(s: Any, pattern: Any, group: Any = 0) -> Any:
    r"""regex_find(s, pattern, group): the first match of the regular expression in s, or null.

    With group (a whole number or a name), that group of the match; any other group (null, true, 1.5) is an error.

    Examples:
        regex_find("Order #123 paid", '#(\d+)', 1) -> "123"
        regex_find("no number here", '\d+') -> null
        regex_find("ref: AB-77", '(?P<code>[A-Z]+)-\d+', "code") -> "AB"
    """
    if s is None:
        return None
    need(s, "string", "regex_find")
    need(pattern, "string", "regex_find", "pattern")
    which = _group_arg(group)
    try:
        m = _regex(pattern).search(s, timeout=within_record(REGEX_SECONDS))
    except TimeoutError:
        raise timed_out("regex_find", pattern) from None
    if m is None:
        return None
    try:
        return m.group(which)
    except (IndexError, error_type()):
        raise BuiltinError(f"regex_find(): the pattern has no group {group}") from None


def _group_arg(group: Any) -> str | int:
    """regex_find's group: a name, or a whole number (1.0 counts; 1.5, true and null do not)."""
    if type(group) is str:
        return group
    if type(group) is Decimal and group.is_finite() and group == group.to_integral_value():
        return int(group) if group.adjusted() < 10 else 10**10  # no pattern has that many groups
    if type(group) is not int:
        shown = f" {group}" if type(group) is Decimal else ""
        raise BuiltinError(f"regex_find()'s group must be a whole number or a group's name, got "
                           f"{type_name(group)}{shown}", "type")
    return group


def error_type() -> type[Exception]:
    error: type[Exception] = _engine().error
    return error


def regex_replace(s: Any, pattern: Any, replacement: Any) -> Any:
    r"""regex_replace(s, pattern, replacement): every match of the regular expression replaced.

    `\1` in the replacement is the text of group 1, `\g<name>` that of a named group; naming a
    group the pattern does not have is an error. `$1` and `${name}` (JavaScript's, Java's and .NET's
    spelling) are plain text here: `flowlang check` warns where one names a group of the pattern.

    Examples:
        regex_replace("+47 22 33 44 55", '[^0-9]', "") -> "4722334455"
        regex_replace("2024-05-01", '(\d+)-(\d+)-(\d+)', '\3.\2.\1') -> "01.05.2024"
        regex_replace("ref: AB-77", '(?P<code>[A-Z]+)-(\d+)', '\2/\g<code>') -> "ref: 77/AB"
    """
    if s is None:
        return None
    need(s, "string", "regex_replace")
    need(pattern, "string", "regex_replace", "pattern")
    need(replacement, "string", "regex_replace", "replacement")
    compiled = _regex(pattern)
    built = [0, 0]  # characters added, matches

    def expand(m: Any) -> str:  # counts what is built, so a short pattern cannot make a huge text
        text = m.expand(replacement)
        built[0] += len(text) - (m.end() - m.start())
        built[1] += 1
        check_items(len(s) + built[0], "regex_replace", text=True)
        return str(text)
    # the most the result can hold: every position a match giving the replacement's own text, and each
    # group reference the whole text once over all matches (they do not overlap). Within the limit, the
    # engine replaces in C, without a call per match (1,000,000 matches through expand took 5 s and
    # failed as if the pattern backtracked)
    references = len(_GROUP_REFERENCE.findall(replacement))
    own = len(_GROUP_REFERENCE.sub("", replacement)) + references  # + 1 each: an escaped \\ before a digit
    worst = len(s) + (len(s) + 1) * own + references * len(s)
    try:
        if worst <= VALUE_ITEMS.get():
            return str(compiled.sub(replacement, s, timeout=within_record(REGEX_SECONDS)))
        return compiled.sub(expand, s, timeout=within_record(REGEX_SECONDS))
    except TimeoutError:
        check_busy()  # the record's own time ran out first
        if built[1] >= 10_000:
            raise BuiltinError(f"regex_replace(): replacing {built[1]:,} matches (and more) took longer than "
                               f"{REGEX_SECONDS:g}s on this text of {len(s):,} characters", "limit") from None
        raise timed_out("regex_replace", pattern) from None
    except IndexError as e:  # the replacement names a group the pattern lacks (\9, \g<x>)
        raise BuiltinError(f"regex_replace(): bad replacement '{replacement}': {e}") from None
    except _engine().error as e:  # the pattern compiled, so this is the replacement ('x\', a bad escape)
        why = "no such group" if str(e) == "invalid group reference" else str(e)  # \9, said as expand says it
        raise BuiltinError(f"regex_replace(): bad replacement '{replacement}': {why}") from None


def str_(value: Any) -> Any:
    r"""str(x): x as text (null is "", lists and objects as compact JSON).

    Decimals are in plain notation (one with more than 4,300 digits left or right of the point in E
    notation, as in JSON: 1E+999999999), booleans true/false, datetimes ISO 8601 (Z for UTC). This is
    also how a value is shown inside a string ("{x}"). A secret stays a secret (shown as `***`). A
    text past max_value_items (5,000,000 characters) is refused before it is built.

    Examples:
        str(19.90) -> "19.90"
        str(null) -> ""
        str([1, {a: true}]) -> "[1,{\"a\":true}]"
        str(datetime("2024-05-01T10:00:00Z")) -> "2024-05-01T10:00:00Z"
    """
    if type_name(value) == "stream":
        raise BuiltinError("str() of a record stream: use list() first")
    if type(value) in (list, dict):
        check_text_size(value, "str()")  # before the text is built: it may hold one big value many times
    text = to_text(value)
    check_items(len(text), "str", text=True)
    return text


_TABLE: list[tuple[str, Callable[..., Any]]] = [
        ("lower", lower), ("upper", upper), ("trim", trim), ("split", split), ("join", join),
        ("replace", replace), ("starts_with", starts_with), ("ends_with", ends_with),
        ("contains", contains), ("pad_left", pad_left), ("substr", substr), ("regex_match", regex_match),
        ("regex_find", regex_find), ("regex_replace", regex_replace), ("str", str_),
]
# for a text argument, the result is the str method's (tests/test_builtin_fast_paths.py checks it)
_DIRECT: dict[str, tuple[frozenset[type], Callable[[Any], Any]]] = {
    "lower": (frozenset({str}), str.lower), "upper": (frozenset({str}), str.upper),
}


def _pattern_rule(fn: str) -> Callable[[Any], None]:
    """What fn() refuses in its pattern, for `flowlang check` to judge a constant one (a regex engine
    is imported only for a flow that has a regular expression)."""
    def rule(pattern: Any) -> None:
        need(pattern, "string", fn, "pattern")
        _regex(pattern)
    return rule


_CONSTANT_CHECKS: dict[str, dict[str, Callable[[Any], object]]] = {
    fn: {"pattern": _pattern_rule(fn)} for fn in ("regex_match", "regex_find", "regex_replace")
}
BUILTINS = tuple(
    Builtin.of(name, secret_preserving(fn), direct=_DIRECT.get(name), constant_checks=_CONSTANT_CHECKS.get(name))
    for name, fn in _TABLE
)
