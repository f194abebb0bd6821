"""`@dataclass` whose methods are made when the class is first instantiated, not at import.

The standard decorator compiles each class's __init__, __repr__, __eq__ (and, frozen, __setattr__,
__delattr__, __hash__) with exec: ~0.5 ms a class, which every start of `flowlang` paid for the ~55
dataclasses its modules define, though a short run makes instances of only some of them. This
decorator takes the same arguments (`frozen`, `eq`, `slots`) and, at the first instantiation of
the class (or of a subclass; an unpickled one too), applies `dataclasses.dataclass` to it with them: from then on the
class is exactly what @dataclass makes. Until then only the class exists: `dataclasses.fields()`
and `is_dataclass()` of the class itself need a real @dataclass (`slots=True` is one at once).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T", bound=type)

_PENDING: dict[type, dict[str, bool]] = {}  # class -> its @dataclass arguments, until first made
_LOCK = threading.Lock()


@overload
def dataclass(cls: T, /) -> T: ...


@overload
def dataclass(*, frozen: bool = False, eq: bool = True, slots: bool = False) -> Callable[[T], T]: ...


@dataclass_transform(field_specifiers=(dataclasses.field,))
def dataclass(cls: T | None = None, /, *, frozen: bool = False, eq: bool = True,
              slots: bool = False) -> T | Callable[[T], T]:
    def wrap(cls: T) -> T:
        for base in cls.__mro__[1:]:
            made(base)  # a dataclass reads its bases' fields when it is made
        if slots or "__init__" in cls.__dict__ or "__new__" in cls.__dict__:
            return dataclasses.dataclass(cls, frozen=frozen, eq=eq, slots=slots)  # type: ignore[return-value]
        _PENDING[cls] = {"frozen": frozen, "eq": eq}
        owner = cls

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            made(owner)
            owner.__init__(self, *args, **kwargs)  # type: ignore[misc]  # the generated __init__

        def __setstate__(self: Any, state: Any) -> None:  # unpickling skips __init__: it starts here
            made(owner)
            values, slot_values = state if isinstance(state, tuple) else (state, None)
            for name, value in {**(values or {}), **(slot_values or {})}.items():
                object.__setattr__(self, name, value)

        for method in (__init__, __setstate__):
            method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
            setattr(cls, method.__name__, method)
        return cls

    return wrap if cls is None else wrap(cls)


def made(cls: type) -> type:
    """`cls` with its dataclass methods (made now if they were not yet)."""
    if cls in _PENDING:
        with _LOCK:  # another thread making it waits here, then finds it made
            options = _PENDING.get(cls)
            if options is not None:
                del cls.__init__, cls.__setstate__  # type: ignore[misc,attr-defined]  # @dataclass adds __init__
                dataclasses.dataclass(cls, **options)
                del _PENDING[cls]
    return cls
