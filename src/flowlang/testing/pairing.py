"""Which recorded write (or output) a replayed one stands for, when the run made them in another order than
recorded (a parallel loop, a loop running ahead to fill batches) or changed them: the recorded one near its
place that differs from it in the fewest fields."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flowlang.runtime.jsoncodec import dumps

NEAR = 64  # how far from its place an item's counterpart is looked for: a parallel loop reorders that much
WEIGHED = 20  # differing items paired by their fields (those a report shows); the rest in order


Leaves = frozenset[tuple[str, type, Any]]
SCALARS = (str, int, float, bool, type(None))


def leaves(value: Any) -> Leaves:
    """Each field of `value` (as field_diff walks it: `customer.lines[2].sku`) with its type and value (its
    JSON text, when it is no scalar)."""
    out: list[tuple[str, type, Any]] = []

    def walk(value: Any, path: str) -> None:
        if type(value) is dict:
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif type(value) is list:
            for i, sub in enumerate(value):
                walk(sub, f"{path}[{i}]")
        else:
            out.append((path, type(value), value if type(value) in SCALARS else dumps(value)))
    walk(value, "")
    return frozenset(out)


def outward(center: int, end: int, free: Callable[[int], bool]) -> Iterator[int]:
    """The places in range(end) within NEAR of `center` that are `free`, the nearer first (the earlier of
    two as near)."""
    for d in range(NEAR + 1):
        if d and 0 <= center - d < end and free(center - d):
            yield center - d
        if center + d < end and free(center + d):
            yield center + d


def nearest(mine: Leaves, candidates: Iterator[int],
            theirs: Callable[[int], Leaves], enough: int = 2) -> tuple[int | None, int]:
    """Of `candidates` (the nearer first), the one whose leaves differ least from `mine` (a field changed
    counts twice, one added or missing once), the nearer of two as far, and how much it differs. The first
    that differs no more than `enough` is taken: one field (none differs in none: an item equal to a
    recorded one is that one), or as much as the item before it differed from its own (a mapping change
    changes each record alike). (None, 0) when there is no candidate."""
    best, fewest = None, 1 << 30
    for i in candidates:
        n = len(mine ^ theirs(i))
        if n < fewest:
            best, fewest = i, n
            if n <= max(enough, 2):
                break
    return best, fewest


def pair_up(old: list[Any], new: list[Any],
            places: tuple[list[Any], list[Any]] | None = None) -> list[tuple[int | None, int | None]]:
    """The items that differ, as (place in old, place in new): an item of new equal to one of old is no
    difference (wherever it is); each other item of new is paired with the item of old left near its place
    that differs from it in the fewest fields, so records made in another order than recorded show their
    own change, not their neighbour's (the first WEIGHED so; those after them, which a report only counts,
    in order). With `places` (the record each item of old and of new was for, in a loop that reorders its
    writes), an item is paired with the one of its record first. Items left over are new (None, j) or
    missing (i, None). In new's order, the missing last."""
    free: dict[str, list[int]] = {}
    for i, value in enumerate(old):
        free.setdefault(dumps(value), []).append(i)
    unmatched: list[int] = []
    for j, value in enumerate(new):
        same = free.get(dumps(value))
        if same:
            same.pop(0)
        else:
            unmatched.append(j)
    left = sorted(i for same in free.values() for i in same)
    unpaired = set(left)
    old_places, new_places = places or ([None] * len(old), [None] * len(new))
    of_record: dict[str, list[int]] = {}  # the items of old left, by the record each was for
    for i in left:
        if type(old_places[i]) is str:
            of_record.setdefault(old_places[i], []).append(i)
    cached: dict[int, Leaves] = {}

    def theirs(i: int) -> Leaves:
        if i not in cached:
            cached[i] = leaves(old[i])
        return cached[i]
    pairs: list[tuple[int | None, int | None]] = []
    for j in unmatched[:WEIGHED]:
        if not left:
            pairs.append((None, j))
            continue
        own = [i for i in of_record.get(new_places[j], []) if i in unpaired] if type(new_places[j]) is str else []
        best = own[0] if own else nearest(leaves(new[j]), outward(j, len(old), unpaired.__contains__), theirs)[0]
        if best is None:  # none near: the nearest place left
            best = min(left, key=lambda i: abs(i - j))
        left.remove(best)
        unpaired.discard(best)
        pairs.append((best, j))
    rest = unmatched[WEIGHED:]
    pairs += [(left[n] if n < len(left) else None, j) for n, j in enumerate(rest)]
    pairs += [(i, None) for i in left[len(rest):]]
    return pairs
