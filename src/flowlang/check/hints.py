"""Did-you-mean hints of the checker (the rule itself: diagnostics.did_you_mean)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from flowlang.ast import KwArg
from flowlang.diagnostics import did_you_mean
from flowlang.lazy_dataclass import dataclass
from flowlang.source import Span


@dataclass(frozen=True)
class NearMiss:
    """A keyword or configuration key that is not allowed, at its name, with the name it was
    likely meant to be (a required one still missing first, else any allowed one)."""

    name: str
    span: Span
    hint: str
    meant: str | None


def near_misses(kwargs: Sequence[KwArg], allowed: Iterable[str], missing: Iterable[str]) -> list[NearMiss]:
    """The keywords not in `allowed`: one report each, so `upsert(tabel:)` is one mistake ("no
    argument 'tabel'; did you mean 'table'?"), not two (that and "needs 'table'")."""
    pool = sorted(set(allowed))
    left = [m for m in missing]
    found = []
    for k in kwargs:
        if k.name in pool:
            continue
        import difflib  # only when there is a mistake to name

        close = difflib.get_close_matches(k.name, left, n=1, cutoff=0.6) or \
            difflib.get_close_matches(k.name, pool, n=1, cutoff=0.6)
        meant = close[0] if close else None
        if meant in left:
            left.remove(meant)
        hint = f"did you mean '{meant}'?" if meant else f"allowed: {', '.join(pool) or 'none'}"
        found.append(NearMiss(k.name, Span(k.span.start, k.span.start + len(k.name)), hint, meant))
    return found


__all__ = ["NearMiss", "did_you_mean", "near_misses"]
