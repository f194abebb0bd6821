"""Whether a list or object that `let a.b = x` would change is held anywhere else: the copy-on-write
rule of path assignments. A flow's values behave as values: `let b = a` then `let b.x = 1` changes b
only; a record already handed to a batch, an output, the loop variable's list, another iteration of
a `parallel` loop or a function's caller keeps what it held. A list or object held by the assigned
variable alone is changed in place (so `let counts[k] = ...` in a loop stays cheap); one held
elsewhere too is copied first (a shallow copy at each level of the path, as `map`'s nested targets
do), and the variable holds the copy.

Held elsewhere is told by CPython's reference count, measured against the count of a value held by
one list entry in the same calling pattern (`ALONE`); where there is no reference count (another
Python), every path assignment copies."""

from __future__ import annotations

import sys
from typing import Any

_refcount = getattr(sys, "getrefcount", None)


def references(value: Any) -> int:
    """The reference count of a value, as the caller's one local name sees it."""
    return _refcount(value) if _refcount is not None else sys.maxsize


def _alone() -> int:
    holder: list[Any] = [{}]
    value = holder[0]  # as a path assignment holds what it changes: its holder's entry and one local
    return references(value)


ALONE = _alone()


UNSET = object()  # what a changed object had at a key it did not have (runtime/run.py: RunContext.replaced)


def as_it_was(value: Any, grown: dict[int, int], replaced: dict[int, dict[Any, Any]]) -> Any:
    """A list or object of the start of an iteration as it was then, where the iteration changed it in
    place since (a copy; the value itself when it did not): cut back to its length, its replaced keys
    given back what they held. Nested values need nothing: a path assignment copies a nested one that
    the record of what was replaced holds (the copy-on-write rule)."""
    length = grown.get(id(value)) if type(value) is list else None
    changes = replaced.get(id(value))
    if length is None and changes is None:
        return value
    copy: Any = value[:length] if type(value) is list else dict(value)
    for key, old in (changes or {}).items():
        if type(copy) is dict:
            if old is UNSET:
                copy.pop(key, None)
            else:
                copy[key] = old
        elif 0 <= key < len(copy):
            copy[key] = old
    return copy


def undone(value: Any, changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """The value (the run's state) as it was before `changes`, the (path, what it replaced) of each path
    assignment into it since, in order (compile/statements.replaced_at; an empty path: the whole value);
    a copy along each path changed, the value itself never changed."""
    for path, old in reversed(changes):
        value = old if not path else _with(value, path, old)
    return value


def _with(container: Any, path: tuple[Any, ...], old: Any) -> Any:
    if type(container) is dict:
        copy: Any = dict(container)
    elif type(container) is list:
        copy = list(container)
    else:  # not the shape the change found (cannot happen): left as it is
        return container
    key = path[0]
    if type(copy) is dict and type(key) is str:
        if len(path) > 1:
            copy[key] = _with(copy.get(key), path[1:], old)
        elif old is UNSET:
            copy.pop(key, None)
        else:
            copy[key] = old
    elif type(copy) is list and type(key) is int and 0 <= key < len(copy):
        copy[key] = _with(copy[key], path[1:], old) if len(path) > 1 else old
    return copy
