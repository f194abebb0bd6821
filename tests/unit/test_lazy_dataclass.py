"""flowlang.lazy_dataclass: a class is made a dataclass when first instantiated, and is then what
@dataclass makes (fields, defaults, factories, repr, eq, hash, frozen, inheritance, threads)."""

from __future__ import annotations

import copyreg
import dataclasses
import pickle
import threading

import pytest

from flowlang.lazy_dataclass import dataclass, made


@dataclass
class Point:
    """A mutable one."""

    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Key:
    name: str
    n: int = 1


@dataclass(eq=False)
class Box:
    value: int


@dataclass
class Point3(Point):
    z: int = 9


class Named(Point):
    """A plain subclass with its own __init__ that calls the dataclass one."""

    def __init__(self, name: str) -> None:
        super().__init__(1, 2)
        self.name = name


@dataclass
class Pending:
    a: int


def test_not_made_before_its_first_instance() -> None:
    assert not dataclasses.is_dataclass(Pending)
    assert Pending(3).a == 3
    assert dataclasses.is_dataclass(Pending) and [f.name for f in dataclasses.fields(Pending)] == ["a"]


def test_an_unpickled_instance_makes_it_too() -> None:
    @dataclass(frozen=True)
    class Unpickled:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)

    raw = copyreg.__newobj__(Unpickled)  # type: ignore[attr-defined]  # how pickle makes one: no __init__
    raw.__setstate__({"a": 1, "b": [2]})  # and then its state
    assert dataclasses.is_dataclass(Unpickled)
    assert raw == Unpickled(1, [2]) and repr(raw).endswith("Unpickled(a=1, b=[2])")
    with pytest.raises(dataclasses.FrozenInstanceError):
        raw.a = 2  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(Key("k"))) == Key("k")


def test_the_same_behaviour_as_a_dataclass() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    assert Point(1).tags is not Point(1).tags  # a factory per instance
    assert repr(Point(1, 2, ["a"])) == "Point(x=1, y=2, tags=['a'])"
    assert Point(1, 2) == Point(x=1, y=2) and Point(1) != Point(2)
    assert Point.__doc__ == "A mutable one."
    assert Point.__match_args__ == ("x", "y", "tags")
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, nope=2)  # type: ignore[call-arg]
    assert dataclasses.asdict(Point(1, 2)) == {"x": 1, "y": 2, "tags": []}
    assert dataclasses.replace(Point(1, 2), y=5) == Point(1, 5)
    assert pickle.loads(pickle.dumps(Point(1, 2))) == Point(1, 2)


def test_frozen_and_hashable() -> None:
    k = Key("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.name = "b"  # type: ignore[misc]
    assert {Key("a"), Key("a", 1), Key("b")} == {Key("a"), Key("b")}


def test_eq_false_is_identity() -> None:
    b = Box(1)
    assert b == b and Box(1) != Box(1)
    assert len({Box(1), Box(1)}) == 2


def test_subclasses() -> None:
    assert Point3(1) == Point3(1, 0, [], 9)
    assert [f.name for f in dataclasses.fields(Point3)] == ["x", "y", "tags", "z"]
    n = Named("n")
    assert (n.x, n.y, n.name) == (1, 2, "n")


def test_threads_making_it_at_once_all_get_instances() -> None:
    @dataclass
    class Late:
        a: int
        b: str = "b"

    results: list[object] = []
    start = threading.Barrier(8)

    def make(i: int) -> None:
        start.wait()
        results.append(Late(i))

    threads = [threading.Thread(target=make, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.a for r in results) == list(range(8))  # type: ignore[attr-defined]
    assert made(Late) is Late and dataclasses.is_dataclass(Late)
