"""How an outermost loop over a record stream checkpoints and resumes (TESTING.md 4; the table and
its rules are runtime/checkpoints.py).

`LoopProgress` follows the pages the loop takes and the records it has finished *in order* (a
parallel or run-ahead loop finishes them out of order; only a finished prefix counts): once every
record of a page is done, the checkpoint moves to the next page's request. `resume_point` hands a
loop the checkpoint `flowlang run --resume` continues from, after checking that the loop reads the
same request it read then, and puts back the enclosing variables the loop assigns."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from flowlang import ast
from flowlang.check.scopes import Local
from flowlang.compile.errors import Where
from flowlang.errors import ResumeRefused
from flowlang.runtime.checkpoints import Checkpoint, Checkpointer, pages_from
from flowlang.runtime.frame import Frame
from flowlang.runtime.jsoncodec import from_stored
from flowlang.runtime.run import restore_saved
from flowlang.runtime.values import RecordStream


def assigned_slots(node: ast.ForEach, slots: dict[tuple[object, int], int],
                   refs: Mapping[object, object] | None = None) -> frozenset[int]:
    """The frame slots that statements inside the loop's body assign (`let x = ...`, `as x`), and with
    `refs` (the resolution's) those whose value they change in place (`let c["n"] = ...`)."""
    found: set[int] = set()
    seen: set[int] = set()

    def walk(value: Any) -> None:
        if isinstance(value, tuple | list):
            for item in value:
                walk(item)
            return
        if not isinstance(value, ast.Node) or id(value) in seen:
            return
        seen.add(id(value))
        slot = slots.get((value, 0))
        if slot is not None and slot >= 0 and not isinstance(value, ast.ForEach):
            found.add(slot)
        if refs is not None and isinstance(value, ast.Let) and value.target.steps:
            ref = refs.get(value.target)
            if isinstance(ref, Local):
                found.add(ref.slot)
        for name in ast.fields(value):
            walk(getattr(value, name))

    walk(node.body)
    return frozenset(found)


def stream_source(stream: RecordStream) -> str:
    return stream.source or stream.label


class LoopProgress:
    """One run of an outermost loop over a record stream, as its checkpoints see it."""

    def __init__(self, checkpointer: Checkpointer, loop_id: str, stream: RecordStream,
                 changed: tuple[tuple[str, int], ...], frame: Frame, start: Checkpoint | None) -> None:
        self.checkpointer = checkpointer
        self.loop_id = loop_id
        self.stream = stream
        self.source = stream_source(stream)
        self.changed = changed  # (name, slot) of the enclosing variables the loop assigns
        self.frame = frame
        self.start = start
        self.base_pages = start.pages if start is not None else 0
        self.base_records = start.records if start is not None else 0
        self.taken = 0  # records the loop was given in this run
        self.pages_done = 0
        # pages given and not yet all done: (records taken when the page is done, cursor of the next page)
        self.marks: deque[tuple[int, Any]] = deque()
        self.page_at: Any = start.cursor if start is not None else None
        self.page_offset = start.done if start is not None else 0
        self.page_first = 0  # `taken` when the current page began

    async def pages(self) -> AsyncGenerator[list[Any], None]:
        cursor, done = (self.start.cursor, self.start.done) if self.start is not None else (None, 0)
        async for records, at, nxt, skipped in pages_from(self.stream, cursor, done):
            self.page_at, self.page_offset, self.page_first = at, skipped, self.taken
            self.taken += len(records)
            self.marks.append((self.taken, nxt))
            yield records

    def scope(self) -> dict[str, Any]:
        slots = self.frame.slots
        return {name: slots[slot] for name, slot in self.changed if slot < len(slots)}

    def done(self, finished: int) -> None:
        """`finished` records taken so far are all done: checkpoint after the last page that is complete."""
        if not self.marks or self.marks[0][0] > finished:
            return
        nxt: Any = None
        taken = 0
        while self.marks and self.marks[0][0] <= finished:
            taken, nxt = self.marks.popleft()
            self.pages_done += 1
        if nxt is None:  # the last page: the loop marks itself finished when it ends
            return
        self.frame.run.flush_writes()  # the records a checkpoint says are done have reached their files
        self.checkpointer.save(self.loop_id, self.source, nxt, 0, self.base_pages + self.pages_done,
                               self.base_records + taken, self.scope(), self.frame.run.state)

    def stopped(self, finished: int) -> None:
        """A graceful stop: the first `finished` records taken are done and none after them started, so the
        checkpoint is the current page's request and how many of its records are done."""
        self.done(finished)
        if finished >= self.taken:  # every page given is done (done() kept the next one's request)
            return
        self.frame.run.flush_writes()  # the records a checkpoint says are done have reached their files
        self.checkpointer.save(self.loop_id, self.source, self.page_at,
                               self.page_offset + finished - self.page_first, self.base_pages + self.pages_done,
                               self.base_records + finished, self.scope(), self.frame.run.state)

    def finished(self) -> None:
        self.frame.run.flush_writes()  # the records a checkpoint says are done have reached their files
        self.checkpointer.save(self.loop_id, self.source, None, 0, self.base_pages + self.pages_done,
                               self.base_records + self.taken, self.scope(), self.frame.run.state, finished=True)


def resume_point(f: Frame, loop_id: str) -> Checkpoint | None:
    """The checkpoint this loop continues from in a `--resume` run, or None."""
    checkpointer = f.run.checkpointer
    return checkpointer.resume_point(loop_id) if checkpointer is not None else None


def restore_scope(f: Frame, point: Checkpoint, visible: tuple[tuple[str, int], ...]) -> None:
    """Put back the enclosing variables the loop had assigned when the checkpoint was written."""
    slots = dict(visible)
    for name, value in point.scope.items():
        slot = slots.get(name)
        if slot is not None and slot < len(f.slots):
            f.slots[slot] = restore_saved(from_stored(value, secret_refs=True), f.run)


def progress_of(f: Frame, loop_id: str | None, source: Any, point: Checkpoint | None,
                changed: tuple[tuple[str, int], ...], where: Where) -> LoopProgress | None:
    """The checkpointing of an outermost loop over a record stream in a job that keeps checkpoints;
    refuses to resume a loop that now reads another request than the one its checkpoint was taken on."""
    checkpointer = f.run.checkpointer
    if checkpointer is None or loop_id is None:
        return None
    if type(source) is not RecordStream:
        if point is not None:
            raise ResumeRefused(f"--resume: the checkpoint of this loop (job {point.job_id}) was taken reading "
                                f"{point.source}, but the loop now reads no record stream; run without --resume "
                                "to start from the beginning", "value", source=where.source, span=where.span)
        return None
    if point is not None:
        now = stream_source(source)
        if now != point.source:
            raise ResumeRefused(f"--resume: the checkpoint of this loop (job {point.job_id}) was taken reading "
                                f"{point.source}, but it now reads {now}; run without --resume to start from the "
                                "beginning", "value", source=where.source, span=where.span)
    return LoopProgress(checkpointer, loop_id, source, changed, f, point)
