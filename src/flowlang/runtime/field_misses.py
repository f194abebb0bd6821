"""Field reads that found nothing (issue 16): a read inside a loop counts the records in which it found
null or no such field, on that path only (a read or a chain `a.b.c` that finds a value pays one
comparison); at the end of
a run, a read that found nothing in every record of its loop that reached it (and some did) while the
records have a close name is a warning with did-you-mean ("'emial' was missing in all 2,000 records of
rows; they have email, ..."). A statement that not every record of the loop runs (in an `if` or `try`
branch, or after a statement that can `skip`, `stop` or `fail`) and holds such a read counts the records
that reach it, with one step before it (`Reach`); a read elsewhere is reached by every record the loop
took (one that failed before it makes the read quiet, never wrong).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowlang.diagnostics import closest
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.field_names import meant_field, shown_name

if TYPE_CHECKING:
    from flowlang.runtime.frame import Frame
    from flowlang.runtime.stats import Stats

KEYS_SHOWN = 6  # of the records' field names, in the warning


@dataclass(frozen=True, eq=False)
class FieldSite:
    """One `x.name` read in the body of a loop (not in a comprehension or a function: it runs at most once
    per record of that loop)."""

    name: str
    receiver: str  # the text of `x`, as written
    loop_variable: bool  # x is the loop's own variable: "they have ..."
    location: str  # file:line:col of the name
    loop_line: int  # the loop's line (its record count is in Stats.per_line)
    listed: str  # the text of the loop's list: "rows"
    reach: Reach | None = None  # the statement's count of the records that reached it; None: every record


@dataclass(frozen=True, eq=False)
class Reach:
    """A statement in a loop that not every record runs, holding a read whose misses are counted: how many
    records reached it is counted per run in RunContext.field_reached (by `reached`, a step before it)."""

    location: str  # file:line:col of the statement


def counter(reach: Reach, then: Callable[[Frame], None] | None = None) -> Callable[[Frame], None]:
    """What runs before the statement: one more record of the loop reached it; then the statement itself,
    when it is given (a synchronous one: a call fewer)."""
    if then is None:
        def reached(f: Frame) -> None:
            counts = f.run.field_reached
            counts[reach] = counts.get(reach, 0) + 1
        return reached
    run = then

    def reached_then(f: Frame) -> None:
        counts = f.run.field_reached
        counts[reach] = counts.get(reach, 0) + 1
        run(f)
    return reached_then


class Misses:
    """One site's misses in one run: how many records, the field names of the first, whether any record
    had the field (as null)."""

    __slots__ = ("count", "keys", "last", "present")

    def __init__(self, record: dict[str, Any]) -> None:
        self.count = 0
        self.keys = list(record)
        self.last: Any = None  # the object read last: the same record read twice counts once
        self.present = False


def missed(f: Frame, site: FieldSite, record: dict[str, Any]) -> None:
    """`record.name` found nothing: count it (returns the read's value, null)."""
    misses = f.run.field_misses
    found = misses.get(site)
    if found is None:
        found = misses[site] = Misses(record)
    elif found.last is record:
        return None
    found.last = record
    found.count += 1
    if not found.present and site.name in record:
        found.present = True
    return None


@dataclass(frozen=True, eq=False)
class FieldChain:
    """`x.a.b.c` on a local variable, whose reads count their misses: the code reads the chain as usual
    and checks only its end; when that is null, `found_nothing` walks it again to find the step that
    missed (expressions are pure: the second walk sees the same values)."""

    slot: int
    names: tuple[str, ...]
    sites: tuple[FieldSite | None, ...]


def found_nothing(f: Frame, chain: FieldChain) -> None:
    """The chain read null: count the miss at the step that found nothing (none when a value on the way
    was null itself or not an object). Returns null, the chain's value."""
    v: Any = f.slots[chain.slot]
    for name, site in zip(chain.names, chain.sites, strict=True):
        if type(v) is not dict:
            return None
        r = v.get(name)
        if r is None:
            if site is not None:
                missed(f, site, v)
            return None
        v = r
    return None


def warnings(misses: dict[FieldSite, Misses], reached_counts: dict[Reach, int],
             stats: Stats) -> list[tuple[str, str]]:
    """(message, location) of each read that found nothing in every record of its loop that reached it,
    where the records have a name close to it; in the order of the reads."""
    out: list[tuple[str, str]] = []
    for site, found in misses.items():
        counter = stats.per_line.get(site.loop_line)
        taken = counter.read if counter is not None and counter.kind == "for each" else 0
        came = taken if site.reach is None else reached_counts.get(site.reach, 0)
        if found.present or found.count != came or came == 0 or site.name in found.keys:
            continue
        meant = closest(site.name, found.keys)
        joined = one_joined_column(site.name, found.keys)
        if meant is None and joined is None:
            continue
        show = (lambda k: k) if joined is not None else shown_name  # 'id;name;email' is named as it is, below
        shown = ", ".join(show(k) for k in found.keys[:KEYS_SHOWN]) + (", ..." if len(found.keys) > KEYS_SHOWN else "")
        records = "the 1 record" if came == 1 else f"all {came:,} records"
        of = site.listed if came == taken else f"{site.listed} that reached it (of {taken:,})"
        if site.loop_variable:
            have = f"{'it has' if came == 1 else 'they have'} {shown}"
            read = f"'{site.name}'"
        else:
            have = f"{site.receiver} has {shown}"
            read = f"'{site.name}' (in {site.receiver}.{site.name})"
        if joined is not None:  # a CSV of ';' read with ',': one column named 'id;name', and r.id found nothing
            out.append((f"{read} was missing in {records} of {of}; {have}: one field whose name holds "
                        f"'{site.name}' between {joined!r}s, as a CSV file read with the wrong delimiter "
                        f"has (give the file's: delimiter: {joined!r})", site.location))
            continue
        out.append((f"{read} was missing in {records} of {of}; {have}; {meant_field(site.receiver, meant or '')}",
                    site.location))
    return out


JOINERS = (";", "\t", "|", ",")  # the delimiters a CSV file has, most often in this order


def one_joined_column(name: str, keys: list[str]) -> str | None:
    """The delimiter, when the records have one field whose name is several names joined by a CSV
    delimiter, `name` among them ('id;name' for r.id): a file read with the wrong delimiter, whose every
    field read found nothing while the did-you-mean found no close name for most of them."""
    if len(keys) != 1:
        return None
    key = keys[0]
    for delimiter in JOINERS:
        parts = [p.strip().strip('"') for p in key.split(delimiter)]
        if len(parts) > 1 and name in parts:
            return delimiter
    return None
