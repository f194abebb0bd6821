"""List and object builtins. Field names may be dotted paths ("customer.email")."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flowlang.runtime.blob import Blob
from flowlang.runtime.builtins.registry import NOT_GIVEN, Builtin, BuiltinError, check_items, need
from flowlang.runtime.limits import CHECK_EVERY, busy, check_busy
from flowlang.runtime.operators import NeedsMaterialization, OperatorError, as_int, less
from flowlang.runtime.values import UNKEYED, EqualityKeys, RecordStream, Secret, equal, to_text, type_name


def _list_arg(value: Any, fn: str) -> list[Any]:
    if type(value) is RecordStream:
        raise NeedsMaterialization(value)
    if value is None:
        return []
    need(value, "list", fn)
    result: list[Any] = value
    return result


def _int(value: Any, fn: str, arg: str) -> int:
    try:
        return as_int(value, f"{fn}()'s {arg}")
    except OperatorError as e:
        raise BuiltinError(e.message, "type") from None


_INDEX = re.compile(r"-?[0-9]+", re.ASCII)  # a list index in a dotted path: ASCII digits ("²" is a name)


def path_get(value: Any, path: str) -> Any:
    """Follow a dotted path through objects (and list indexes); missing is null."""
    for part in path.split("."):
        if type(value) is dict:
            value = value.get(part)
        elif type(value) is list and _INDEX.fullmatch(part):
            i = int(part) if len(part) < 20 else len(value)  # past the end, unconverted
            value = value[i] if -len(value) <= i < len(value) else None
        else:
            return None
    return value


def list_(value: Any) -> Any:
    """list(x): a list of x's items: a record stream read into memory; null gives [].

    A `call ... as rows` of a paginated API or a file gives a record stream, read page by page as a loop
    needs it; list(rows) reads all of it at once (so len(), indexes and comprehensions can use it).

    Examples:
        list(null) -> []
        list([1, 2]) -> [1, 2]
    """
    if type(value) is dict:
        raise BuiltinError("list() of an object: use keys(), values() or items()", "type")
    return list(_list_arg(value, "list"))


def len_(value: Any) -> Any:
    """len(x): the number of items of a list, keys of an object, characters of a text or bytes of bytes.

    len(null) is 0. A secret is refused: its length would tell something of it (by `flowlang check`
    when the secret is written in the call: len(secret.K), len("Bearer {secret.T}")).

    Examples:
        len([1, 2, 3]) -> 3
        len("åsa") -> 3
        len({a: 1, b: 2}) -> 2
        len(null) -> 0
    """
    t = type(value)
    if value is None:
        return 0
    if t is list or t is dict or t is str or t is bytes or t is Blob:
        return len(value)
    if t is RecordStream:
        raise NeedsMaterialization(value)
    if t is Secret:  # its length would tell something of it, and show in outputs
        not_a_secret(value)
    raise BuiltinError(f"len() needs a list, object, string or bytes, got {type_name(value)}", "type")


def not_a_secret(value: Any) -> None:
    """len()'s rule of a secret, which `flowlang check` applies to `len(secret.K)` too (secret_checks)."""
    if type(value) is Secret:
        raise BuiltinError("len() does not measure a secret: its length would tell something of it (a secret is "
                           "used whole: in a header, a URL, a connection's configuration)", "type")


def first(items: Any) -> Any:
    """first(list): the first item, or null when the list is empty.

    Examples:
        first([1, 2]) -> 1
        first([]) -> null
    """
    values = _list_arg(items, "first")
    return values[0] if values else None


def last(items: Any) -> Any:
    """last(list): the last item, or null when the list is empty.

    Examples:
        last([1, 2]) -> 2
    """
    values = _list_arg(items, "last")
    return values[-1] if values else None


class _Compared:
    """A sort key compared by `less` (dates, mixed numbers and text that fail): every CHECK_EVERY-th
    comparison checks the time, since a sort of millions of them takes a while."""

    __slots__ = ("value",)
    count = 0  # comparisons made, of every sort (only its remainder matters)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Compared) -> bool:
        _Compared.count += 1
        if not _Compared.count % CHECK_EVERY:
            check_busy()
        try:
            return less(self.value, other.value)
        except OperatorError as e:
            raise BuiltinError(f"cannot sort: {e.message}", "type") from None


def sort(items: Any, desc: Any = False) -> Any:
    """sort(list, desc): the items in order, smallest first (largest first with desc: true); nulls last.

    The sort is stable, with desc too: equal items (1 and 1.0) keep their order. desc is true or
    false; any other value is an error, not taken for false. Texts sort by their characters' code
    points, as SQL's binary collation does: capitals before small letters ("B" before "a"), letters
    with accents after z, and digits as text, so CSV cells "10" and "9" sort "10" first: sort
    [number(x) for x in xs], or lower() the texts for an order regardless of case.

    Examples:
        sort([3, null, 1]) -> [1, 3, null]
        sort([1, 3, 2], desc: true) -> [3, 2, 1]
        sort(["b", "a"]) -> ["a", "b"]
    """
    values = _list_arg(items, "sort")
    return _ordered(values, lambda x: x, _desc_arg(desc, "sort"))


def _desc_arg(desc: Any, fn: str) -> bool:
    if type(desc) is not bool:
        raise BuiltinError(f"{fn}()'s desc must be true or false, got {type_name(desc)}", "type")
    return desc


NATIVE_ORDER = (frozenset({str}), frozenset({int}), frozenset({Decimal}), frozenset({int, Decimal}))


def _ordered(values: list[Any], key: Callable[[Any], Any], desc: bool) -> list[Any]:
    """values by key(value), nulls last; stable both ways (reverse=True keeps equal items in order).
    Keys that are all text or all numbers are sorted as Python orders them (as `less` does, at C
    speed); any other keys are compared by `less`, with the time checked as the sort goes."""
    keys = [key(x) for x in busy(values)]
    present = [i for i, k in enumerate(keys) if k is not None]
    nulls = [values[i] for i, k in enumerate(keys) if k is None]
    if frozenset(map(type, [keys[i] for i in present])) in NATIVE_ORDER:
        order = sorted(present, key=keys.__getitem__, reverse=desc)
        check_busy()  # the sort itself cannot check (in C): at once after it
    else:
        order = sorted(present, key=lambda i: _Compared(keys[i]), reverse=desc)
    return [values[i] for i in order] + nulls


def sort_by(items: Any, field: Any, desc: Any = False) -> Any:
    """sort_by(list, "field", desc): the records ordered by a field (a dotted path); nulls last.

    The sort is stable, with desc too: records with equal values keep their order. desc is true or
    false; any other value is an error, not taken for false. Texts compare as in sort(): a CSV
    column of numbers is text, so "10" comes before "9"; map the field with number() first
    (sort_by([r + {n: number(r.n)} for r in rows], "n")).

    Examples:
        sort_by([{n: 2}, {n: 1}], "n") -> [{"n": 1}, {"n": 2}]
        sort_by([{c: {n: 1}}, {c: {n: 2}}], "c.n", desc: true) -> [{"c": {"n": 2}}, {"c": {"n": 1}}]
        [r.id for r in sort_by([{n: 1, id: "a"}, {n: 2, id: "b"}, {n: 1, id: "c"}], "n", desc: true)] -> ["b", "a", "c"]
    """
    values = _list_arg(items, "sort_by")
    need(field, "string", "sort_by", "field")
    return _ordered(values, lambda x: path_get(x, field), _desc_arg(desc, "sort_by"))


def unique(items: Any) -> Any:
    """unique(list): the items without repeats, the first occurrence kept (== decides what repeats).

    Examples:
        unique([1, 2, 1, 3]) -> [1, 2, 3]
        unique([{a: 1}, {a: 1}]) -> [{"a": 1}]
    """
    out: list[Any] = []
    seen: set[Any] = set()
    keys = EqualityKeys()
    unkeyed: list[Any] = []  # the few values without a key (a stream): compared one by one
    for x in busy(_list_arg(items, "unique")):
        key = keys.key(x)
        if key is UNKEYED:
            if not any(equal(x, y) for y in unkeyed):
                unkeyed.append(x)
                out.append(x)
        elif key not in seen:
            seen.add(key)
            out.append(x)
    return out


def flatten(items: Any) -> Any:
    """flatten(list): the lists inside the list spliced in (one level).

    Examples:
        flatten([[1, 2], [3], 4]) -> [1, 2, 3, 4]
        flatten([[1, [2]]]) -> [1, [2]]
    """
    out: list[Any] = []
    values = _list_arg(items, "flatten")
    check_items(sum(len(x) if type(x) is list else 1 for x in values), "flatten")
    for x in values:
        if type(x) is list:
            out.extend(x)
        else:
            out.append(x)
    return out


def chunk(items: Any, size: Any) -> Any:
    """chunk(list, n): the items in lists of n (the last one may be shorter).

    Examples:
        chunk([1, 2, 3, 4, 5], 2) -> [[1, 2], [3, 4], [5]]
    """
    values = _list_arg(items, "chunk")
    n = _int(size, "chunk", "size")
    if n < 1:
        raise BuiltinError("chunk() needs a size of at least 1")
    return [values[i : i + n] for i in range(0, len(values), n)]


MAX_RANGE = 10_000_000


def range_(start: Any, stop: Any = NOT_GIVEN, step: Any = 1) -> Any:
    """range(n) or range(a, b, step): whole numbers from a (0) up to b, not including b.

    Examples:
        range(3) -> [0, 1, 2]
        range(1, 4) -> [1, 2, 3]
        range(10, 0, -5) -> [10, 5]
    """
    if stop is NOT_GIVEN:  # range(n): n is where it stops
        a, b = 0, _int(start, "range", "n")
    else:
        a, b = _int(start, "range", "start"), _int(stop, "range", "stop")
    s = _int(step, "range", "step")
    if s == 0:
        raise BuiltinError("range() step cannot be 0")
    count = max(0, (b - a + s - (1 if s > 0 else -1)) // s)  # len(range(...)) fails past sys.maxsize
    if count > MAX_RANGE:
        raise BuiltinError(f"range() of {count:,} numbers is more than {MAX_RANGE:,}")
    check_items(count, "range")
    return list(range(a, b, s))


def _object_arg(value: Any, fn: str) -> dict[str, Any]:
    if value is None:
        return {}
    need(value, "object", fn)
    result: dict[str, Any] = value
    return result


def keys(obj: Any) -> Any:
    """keys(obj): the object's keys, in order.

    Examples:
        keys({a: 1, b: 2}) -> ["a", "b"]
    """
    return list(_object_arg(obj, "keys"))


def values(obj: Any) -> Any:
    """values(obj): the object's values, in order.

    Examples:
        values({a: 1, b: 2}) -> [1, 2]
    """
    return list(_object_arg(obj, "values").values())


def items(obj: Any) -> Any:
    """items(obj): the object's [key, value] pairs, in order.

    `for each k, v in obj` loops over the same pairs.

    Examples:
        items({a: 1, b: 2}) -> [["a", 1], ["b", 2]]
        [k for k, v in items({a: 1, b: null}) if v != null] -> ["a"]
    """
    return [[k, v] for k, v in _object_arg(obj, "items").items()]


def has(obj: Any, path: Any) -> Any:
    """has(obj, "a.b"): true when the field exists at the dotted path, even when its value is null.

    `obj.a.b == null` cannot tell a missing field from a null one; has() can.

    Examples:
        has({a: {b: null}}, "a.b") -> true
        has({a: 1}, "b") -> false
    """
    need(path, "string", "has", "path")
    *parents, last_key = path.split(".")
    target = path_get(obj, ".".join(parents)) if parents else obj
    return type(target) is dict and last_key in target


def get(obj: Any, path: Any, default: Any = None) -> Any:
    """get(obj, "a.b", default): the value at a dotted path, or default when it is missing or null.

    A number in the path (digits 0-9, with - to count from the end) is a list index ("lines.0.sku").
    Use it for field names only known at run time; otherwise `obj.a.b ?? default` says the same.

    Examples:
        get({a: {b: 2}}, "a.b") -> 2
        get({}, "a.b", 0) -> 0
        get({lines: [{sku: "A-1"}]}, "lines.0.sku") -> "A-1"
        get({"first name": "Ann"}, "first name") -> "Ann"
    """
    need(path, "string", "get", "path")
    found = path_get(obj, path)
    return default if found is None else found


def merge(*objects: Any) -> Any:
    """merge(a, b, ...): one object with the fields of each (later ones win); nulls are skipped.

    One level deep: a field holding an object is replaced, not merged. In a map block, `...a` does
    the same for one object.

    Examples:
        merge({a: 1, b: 2}, {b: 3}) -> {"a": 1, "b": 3}
        merge({a: 1}, null) -> {"a": 1}
    """
    out: dict[str, Any] = {}
    for i, o in enumerate(objects):
        if o is None:
            continue
        need(o, "object", "merge", f"argument {i + 1}")
        out.update(o)
    return out


def _names(args: tuple[Any, ...], fn: str) -> list[str]:
    names: list[str] = []
    for a in args:
        if type(a) is list:
            names.extend(to_text(x) for x in a)
        else:
            need(a, "string", fn)
            names.append(a)
    return names


def pick(obj: Any, *fields: Any) -> Any:
    """pick(obj, "a", "b") or pick(obj, ["a", "b"]): only those fields (missing ones are left out).

    Examples:
        pick({id: 1, name: "Ann", secret: "x"}, "id", "name") -> {"id": 1, "name": "Ann"}
        pick({id: 1}, ["id", "email"]) -> {"id": 1}
    """
    source = _object_arg(obj, "pick")
    return {k: source[k] for k in _names(fields, "pick") if k in source}


def omit(obj: Any, *fields: Any) -> Any:
    """omit(obj, "a", "b") or omit(obj, ["a", "b"]): all fields but those.

    Examples:
        omit({id: 1, name: "Ann", internal: true}, "internal") -> {"id": 1, "name": "Ann"}
    """
    source = _object_arg(obj, "omit")
    drop = set(_names(fields, "omit"))
    return {k: v for k, v in source.items() if k not in drop}


class _GroupNames:
    """The object key a value of group_by(), index_by() or count_by() goes under: its text, one text
    for the values == calls equal. A number's is its shortest text (1, 1.0 and 1.00 are "1", 2.50 is
    "2.5", -0.0 is "0"); another value's the text of the first of its equals (two datetimes of one
    instant, [1] and [1.0]). Unequal values of one text (the number 1 and the text "1") share it:
    an object's keys are text."""

    def __init__(self) -> None:
        self._keys = EqualityKeys()
        self._names: dict[Any, str] = {}

    def of(self, value: Any) -> str:
        t = type(value)
        if t is str:
            return value  # type: ignore[no-any-return]
        if t is int:
            return to_text(value)
        if t is Decimal:
            return "0" if value.is_zero() else to_text(value.normalize())
        key = self._keys.key(value)
        if key is UNKEYED:
            return to_text(value)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = to_text(value)
        return name


def _key_of(item: Any, field: str, names: _GroupNames) -> str:
    return names.of(path_get(item, field))


def _keyed(items: Any, fn: str) -> Any:
    """The items of group_by(), index_by() or count_by(): each an object or a list (its path may be an
    index: "0") or null (keyed as a missing field is). A number, a text or another value has no field,
    so it went under the key "" without a word (index_by([1, 2], "a") was {"": 2}): it is an error
    naming the item."""
    for i, x in enumerate(busy(_list_arg(items, fn))):
        if type(x) is not dict and type(x) is not list and x is not None:
            raise BuiltinError(f"{fn}() needs a list of objects, item {i} is {type_name(x)} (it has no fields to "
                               "key by)", "type")
        yield x


def group_by(items: Any, field: Any) -> Any:
    """group_by(list, "field"): an object from each value of the field (as text) to its records, in order.

    Values that are equal (==) are one group: 1, 1.0 and 1.00 are the group "1", 2.50 is "2.5" (a
    number's shortest text), two datetimes of one instant are the first one's text. An object's keys
    are text, so the number 1 and the text "1" are one group too. index_by() and count_by() key so too.
    Each item is an object (or a list, keyed by an index path such as "0"); null goes under "", as a
    missing field does; a number or a text is an error naming the item.

    Examples:
        group_by([{c: "no"}, {c: "se"}, {c: "no"}], "c") -> {"no": [{"c": "no"}, {"c": "no"}], "se": [{"c": "se"}]}
        group_by([{n: 1}, {n: 1.0}, {n: 2.50}], "n") -> {"1": [{"n": 1}, {"n": 1.0}], "2.5": [{"n": 2.50}]}
    """
    need(field, "string", "group_by", "field")
    out: dict[str, list[Any]] = {}
    names = _GroupNames()
    for x in _keyed(items, "group_by"):
        out.setdefault(_key_of(x, field, names), []).append(x)
    return out


def index_by(items: Any, field: Any) -> Any:
    """index_by(list, "field"): an object from each value of the field (as text) to its record (the last wins).

    The lookup table for joining two lists in memory: index one list once, then read
    `table[str(x.id)]` for each record of the other. Equal values are one key, as in group_by():
    1.0 and 1 are "1" (read a table of such ids with `table[str(int(x.id))]`).

    Examples:
        index_by([{id: 1, n: "a"}, {id: 2, n: "b"}], "id") -> {"1": {"id": 1, "n": "a"}, "2": {"id": 2, "n": "b"}}
        index_by([{id: 7, n: "a"}], "id")["7"].n -> "a"
    """
    need(field, "string", "index_by", "field")
    names = _GroupNames()
    return {_key_of(x, field, names): x for x in _keyed(items, "index_by")}


def count_by(items: Any, field: Any) -> Any:
    """count_by(list, "field"): an object from each value of the field (as text) to how many records have it.

    Equal values are counted as one, as in group_by(): 2 and 2.00 are "2".

    Examples:
        count_by([{s: "paid"}, {s: "open"}, {s: "paid"}], "s") -> {"paid": 2, "open": 1}
    """
    need(field, "string", "count_by", "field")
    out: dict[str, int] = {}
    names = _GroupNames()
    for x in _keyed(items, "count_by"):
        key = _key_of(x, field, names)
        out[key] = out.get(key, 0) + 1
    return out


_TABLE: list[tuple[str, Callable[..., Any]]] = [
        ("list", list_), ("len", len_), ("first", first), ("last", last), ("sort", sort), ("sort_by", sort_by),
        ("unique", unique), ("flatten", flatten), ("chunk", chunk), ("range", range_), ("keys", keys),
        ("values", values), ("items", items), ("has", has), ("get", get), ("merge", merge), ("pick", pick),
        ("omit", omit), ("group_by", group_by), ("index_by", index_by), ("count_by", count_by),
]
# len() of a list, an object or a text is Python's len (bytes and the rest go through len_)
_DIRECT: dict[str, tuple[frozenset[type], Callable[[Any], Any]]] = {"len": (frozenset({list, dict, str}), len)}
_SECRET_CHECKS: dict[str, Callable[[Any], object]] = {"value": not_a_secret}
BUILTINS = tuple(
    Builtin.of(name, fn, direct=_DIRECT.get(name), constant_checks=_SECRET_CHECKS if name == "len" else None,
               secret_checks=frozenset(_SECRET_CHECKS) if name == "len" else frozenset()) for name, fn in _TABLE
)
