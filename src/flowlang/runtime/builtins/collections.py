"""List and object builtins. Field names may be dotted paths ("customer.email")."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flowlang.runtime.blob import Blob
from flowlang.runtime.builtins.registry import Builtin, BuiltinError, check_items, need
from flowlang.runtime.operators import NeedsMaterialization, OperatorError, as_int, less
from flowlang.runtime.values import RecordStream, equal, to_text, type_name


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


def path_get(value: Any, path: str) -> Any:
    """Follow a dotted path through objects (and list indexes); missing is null."""
    for part in path.split("."):
        if type(value) is dict:
            value = value.get(part)
        elif type(value) is list and part.lstrip("-").isdigit():
            i = int(part)
            value = value[i] if -len(value) <= i < len(value) else None
        else:
            return None
    return value


def list_(value: Any) -> Any:
    """list(x): a list of x's items (a record stream read into memory; null gives [])."""
    if type(value) is dict:
        raise BuiltinError("list() of an object: use keys(), values() or items()", "type")
    return list(_list_arg(value, "list"))


def len_(value: Any) -> Any:
    """len(x): the number of items, keys, characters or bytes (0 for null)."""
    t = type(value)
    if value is None:
        return 0
    if t is list or t is dict or t is str or t is bytes or t is Blob:
        return len(value)
    if t is RecordStream:
        raise NeedsMaterialization(value)
    raise BuiltinError(f"len() needs a list, object, string or bytes, got {type_name(value)}", "type")


def first(items: Any) -> Any:
    """first(list): the first item, or null."""
    values = _list_arg(items, "first")
    return values[0] if values else None


def last(items: Any) -> Any:
    """last(list): the last item, or null."""
    values = _list_arg(items, "last")
    return values[-1] if values else None


def _sort_key_compare(a: Any, b: Any) -> int:
    if a is None or b is None:
        return (a is None) - (b is None)  # nulls last
    try:
        return -1 if less(a, b) else (1 if less(b, a) else 0)
    except OperatorError as e:
        raise BuiltinError(f"cannot sort: {e.message}", "type") from None


def sort(items: Any, desc: Any = False) -> Any:
    """sort(list, desc): the items in order (nulls last)."""
    values = _list_arg(items, "sort")
    ordered = sorted(values, key=functools.cmp_to_key(_sort_key_compare))
    return _desc(ordered, desc)


def _desc(ordered: list[Any], desc: Any) -> list[Any]:
    if desc is True:
        nulls = [x for x in ordered if x is None]
        return [x for x in reversed(ordered) if x is not None] + nulls
    return ordered


def sort_by(items: Any, field: Any, desc: Any = False) -> Any:
    """sort_by(list, "field", desc): the records ordered by a field (nulls last)."""
    values = _list_arg(items, "sort_by")
    need(field, "string", "sort_by", "field")
    keyed = sorted(
        values,
        key=functools.cmp_to_key(lambda a, b: _sort_key_compare(path_get(a, field), path_get(b, field))),
    )
    if desc is True:
        present = [x for x in keyed if path_get(x, field) is not None]
        return list(reversed(present)) + [x for x in keyed if path_get(x, field) is None]
    return keyed


def unique(items: Any) -> Any:
    """unique(list): the items without repeats, first occurrence kept."""
    out: list[Any] = []
    for x in _list_arg(items, "unique"):
        if not any(equal(x, y) for y in out):
            out.append(x)
    return out


def flatten(items: Any) -> Any:
    """flatten(list): lists inside the list spliced in (one level)."""
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
    """chunk(list, n): the items in lists of n."""
    values = _list_arg(items, "chunk")
    n = _int(size, "chunk", "size")
    if n < 1:
        raise BuiltinError("chunk() needs a size of at least 1")
    return [values[i : i + n] for i in range(0, len(values), n)]


MAX_RANGE = 10_000_000


def range_(start: Any, stop: Any = None, step: Any = 1) -> Any:
    """range(n) or range(a, b[, step]): whole numbers, half-open ([1, 2, 3] for range(1, 4))."""
    a = _int(start, "range", "start")
    if stop is None:
        a, b = 0, a
    else:
        b = _int(stop, "range", "stop")
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
    """keys(obj): the object's keys, in order."""
    return list(_object_arg(obj, "keys"))


def values(obj: Any) -> Any:
    """values(obj): the object's values, in order."""
    return list(_object_arg(obj, "values").values())


def items(obj: Any) -> Any:
    """items(obj): [key, value] pairs, in order (for k, v in items(obj))."""
    return [[k, v] for k, v in _object_arg(obj, "items").items()]


def has(obj: Any, path: Any) -> Any:
    """has(obj, "a.b"): true when the field exists (even when it is null)."""
    need(path, "string", "has", "path")
    *parents, last_key = path.split(".")
    target = path_get(obj, ".".join(parents)) if parents else obj
    return type(target) is dict and last_key in target


def get(obj: Any, path: Any, default: Any = None) -> Any:
    """get(obj, "a.b", default): the value at a dotted path, or default when it is null."""
    need(path, "string", "get", "path")
    found = path_get(obj, path)
    return default if found is None else found


def merge(*objects: Any) -> Any:
    """merge(a, b, ...): one object with the fields of each (later ones win); nulls are skipped."""
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
    """pick(obj, "a", "b") or pick(obj, ["a", "b"]): only those fields (missing ones left out)."""
    source = _object_arg(obj, "pick")
    return {k: source[k] for k in _names(fields, "pick") if k in source}


def omit(obj: Any, *fields: Any) -> Any:
    """omit(obj, "a", "b"): all fields but those."""
    source = _object_arg(obj, "omit")
    drop = set(_names(fields, "omit"))
    return {k: v for k, v in source.items() if k not in drop}


def _key_of(item: Any, field: str) -> str:
    return to_text(path_get(item, field))


def group_by(items: Any, field: Any) -> Any:
    """group_by(list, "field"): an object from each field value (as text) to its records."""
    need(field, "string", "group_by", "field")
    out: dict[str, list[Any]] = {}
    for x in _list_arg(items, "group_by"):
        out.setdefault(_key_of(x, field), []).append(x)
    return out


def index_by(items: Any, field: Any) -> Any:
    """index_by(list, "field"): an object from each field value (as text) to its record (last wins)."""
    need(field, "string", "index_by", "field")
    return {_key_of(x, field): x for x in _list_arg(items, "index_by")}


def count_by(items: Any, field: Any) -> Any:
    """count_by(list, "field"): an object from each field value (as text) to how many records have it."""
    need(field, "string", "count_by", "field")
    out: dict[str, int] = {}
    for x in _list_arg(items, "count_by"):
        key = _key_of(x, field)
        out[key] = out.get(key, 0) + 1
    return out


_TABLE: list[tuple[str, Callable[..., Any]]] = [
        ("list", list_), ("len", len_), ("first", first), ("last", last), ("sort", sort), ("sort_by", sort_by),
        ("unique", unique), ("flatten", flatten), ("chunk", chunk), ("range", range_), ("keys", keys),
        ("values", values), ("items", items), ("has", has), ("get", get), ("merge", merge), ("pick", pick),
        ("omit", omit), ("group_by", group_by), ("index_by", index_by), ("count_by", count_by),
]
BUILTINS = tuple(
    Builtin.of(name, fn) for name, fn in _TABLE
)
