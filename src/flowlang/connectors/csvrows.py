"""CSV rows and cells: the one place the rules for reading and writing CSV live (the file connector's,
so sftp and s3 files and pick-ups follow them too).

Reading: the first row is the header, every later row a record of strings by column; blank lines are
skipped. A line ends at "\\n" (or "\\r\\n"): a bare carriage return inside a value, quoted or not,
stays in the value. A row with a byte that is not of the file's encoding, or with more or fewer cells
than the header (a ragged row), is a BadRecord naming the file and the line: a loop fails that record
alone (it is kept in the error store) and goes on with the next. With `ragged: "keep"` a ragged row is
read: a missing cell is null, extra cells are kept as a list in the field `_extra`.
A row the csv module refuses (strict: a quote never closed, text after a closing quote) is a BadRecord
with its text in `_raw`; the read goes on at the next line.

Writing: a cell whose text, or any line inside it, starts with = + - @, a tab or a carriage return
gets a leading ' against spreadsheet formula injection (unless it is a number); header cells too.
A row of text cells with no delimiter, quote, CR or LF in any of them and none starting a formula is
its cells joined by the delimiter: the csv rules quote and escape nothing in it (but a row of one
empty cell, written ""). The file connector writes its usual row so, without a csv writer (its
send_now tests this rule, with formula_after's search)."""

from __future__ import annotations

import csv
import itertools
import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO

from flowlang.connectors.textlines import LineState, bad_bytes_message, line_chunks, lines, unmarked
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import Blob
from flowlang.runtime.jsoncodec import JsonDataError, binary_refused, dumps
from flowlang.runtime.values import BadRecord, Value, to_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
RAGGED = ("error", "keep")
EXTRA = "_extra"  # where ragged: "keep" puts the cells past the header's
RAW = "_raw"  # the text of a row the csv module cannot read (its record in the error store)
RAW_KEPT = 10_000  # characters of it kept
CR_MARK = "\ud800"  # a bare CR while the csv module splits the line (no decoded text holds a lone surrogate)
_BREAKS = re.compile(r"(\r\n|\r|\n)")


# ---- writing -------------------------------------------------------------------------------------
def csv_cell(value: Value) -> str:
    """A value as a CSV cell (objects and lists as JSON), escaped against formula injection."""
    if value is None:
        return ""
    t = type(value)
    if t is dict or t is list:
        try:
            return escaped(dumps(value, binary=False))
        except JsonDataError as e:
            raise FlowRuntimeError(str(e), "data") from None
    if t is bytes or t is Blob:
        raise FlowRuntimeError(binary_refused(value, "a CSV cell"), "data")
    return escaped(to_text(value))


def formula_after(delimiter: str) -> Callable[[str], object]:
    """A search of `delimiter` + a row joined by it for a cell that starts with a formula character (a
    CR is searched for apart)."""
    starts = "".join(FORMULA_STARTS).replace("\r", "")
    return re.compile(re.escape(delimiter) + "[" + re.escape(starts) + "]").search


def escaped(text: str) -> str:
    """The text with a leading ' where a spreadsheet would start a formula: at its start, and at the
    start of each line inside it (a reader that breaks rows at a bare CR sees those as cells)."""
    if text.startswith(FORMULA_STARTS) and not _numeric(text):
        text = "'" + text
    if "\r" not in text and "\n" not in text:
        return text
    parts = _BREAKS.split(text)
    for i in range(2, len(parts), 2):  # the text after each line break
        part = parts[i]
        if part.startswith(FORMULA_STARTS) and not _numeric(part):
            parts[i] = "'" + part
    return "".join(parts)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


# ---- reading -------------------------------------------------------------------------------------
def header_of(fh: IO[bytes], encoding: str, name: str, delimiter: str) -> list[str] | None:
    """The header row of an existing file (to append to it), as its cells are written."""
    return next(csv.reader(lines(fh, encoding, name), delimiter=delimiter), None)


def record_pages(fh: IO[bytes], encoding: str, name: str, delimiter: str, ragged: str,
                 size: int) -> Iterator[list[Value]]:
    """The file's records, `size` at a time: an object per row, or a BadRecord for a row that cannot be
    read as one. The usual row (as many cells as the header, no bad byte, no bare CR) costs one
    check: the lines with a bad byte or a marked CR are noted as each chunk of lines is read."""
    state = LineState()
    odd: deque[int] = deque()  # lines with a bad byte or a marked CR that no row has reached yet
    kept: deque[tuple[int, list[str]]] = deque()  # (number of the first line, lines): from the row being read on
    header: list[str] | None = None
    columns: list[str] = []  # the header's cells
    width = -1  # no row is as wide until the header is read
    last = 0  # the last line of the row before
    bad_at = 0  # the first entry of state.bad no row has reached

    def given() -> Iterator[list[str]]:
        """The chunks of lines, with each bare CR marked, kept back to the row being read."""
        number = 0  # lines given
        seen = 0  # entries of state.bad noted in `odd`
        for chunk in line_chunks(fh, encoding, name, state):
            marked: list[int] = []
            joined = "".join(chunk)
            if "\r" in joined and joined.count("\r") != joined.count("\r\n"):  # a bare CR, or a last line ending in one
                chunk, marked = _cr_marked(chunk, number)
            if seen < len(state.bad) or marked:
                odd.extend(sorted({*marked, *(line for line, _ in state.bad[seen:])}))
                seen = len(state.bad)
            while kept and kept[0][0] + len(kept[0][1]) <= last + 1:  # ends before the row being read
                kept.popleft()
            kept.append((number + 1, chunk))
            number += len(chunk)
            yield chunk

    reader = csv.reader(itertools.chain.from_iterable(given()), delimiter=delimiter, strict=True)
    page: list[Value] = []
    while True:
        try:
            for row in reader:
                first, last = last + 1, reader.line_num
                if odd and odd[0] <= last:  # a line of the row has a bad byte or a marked CR
                    while odd and odd[0] <= last:
                        odd.popleft()
                    row = [cell.replace(CR_MARK, "\r") for cell in row]
                    while bad_at < len(state.bad) and state.bad[bad_at][0] < first:  # lines of refused rows
                        bad_at += 1
                    bad = []
                    while bad_at < len(state.bad) and state.bad[bad_at][0] <= last:
                        bad.append(state.bad[bad_at])
                        bad_at += 1
                    if bad and row:
                        if header is None:
                            raise FlowRuntimeError(bad_bytes_message(name, bad[0][0], bad[0][1], encoding), "data")
                        cells = [unmarked(cell) for cell in row]
                        page.append(BadRecord(_loose(header, cells),
                                              bad_bytes_message(name, bad[0][0], bad[0][1], encoding)))
                        if len(page) >= size:
                            yield page
                            page = []
                        continue
                if len(row) == width:
                    page.append(dict(zip(columns, row)))  # noqa: B905 (as wide; a keyword costs zip ~1.5k instructions a row)
                elif not row:
                    continue
                elif header is None:
                    if any("\r" in cell for cell in row):
                        raise FlowRuntimeError(f"{name} line {first}: the header has a carriage return in a cell: "
                                               "a file whose lines end in a carriage return alone (an old Mac "
                                               "file) is not read; save it with \\n or \\r\\n line ends", "data")
                    twice = _repeated(row)
                    if twice is not None:
                        raise FlowRuntimeError(f"{name} line {first}: {twice}", "data")
                    header = columns = row
                    width = len(row)
                    continue
                elif ragged == "keep":
                    page.append(_loose(header, row))
                else:
                    page.append(BadRecord(_loose(header, row),
                                          f"{name} line {first}: the row has {len(row)} cell{'s' * (len(row) != 1)}, "
                                          f"the header {width} (a ragged row; ragged: \"keep\" reads such rows)"))
                if len(page) >= size:
                    yield page
                    page = []
        except csv.Error as e:  # the reader starts afresh at the next line
            first, last = last + 1, reader.line_num
            while odd and odd[0] <= last:
                odd.popleft()
            raw = unmarked("".join(_lines_of(kept, first, last))).replace(CR_MARK, "\r")
            message = f"{name} line {first}: bad CSV: {_said(str(e))}"
            if last > first:  # a quote never closed took the lines after it: none is a record of its own
                after = last - first
                message += (f" (lines {first:,} to {last:,} were read as this one row: the "
                            f"{f'{after:,} lines' if after > 1 else 'line'} after it, not read as "
                            f"record{'s' if after > 1 else ''}; fix the quote and read the file again)")
            if header is None:
                raise FlowRuntimeError(message, "data") from None
            page.append(BadRecord({RAW: raw if len(raw) <= RAW_KEPT else raw[:RAW_KEPT] + "..."}, message))
            if len(page) >= size:
                yield page
                page = []
            continue
        break
    if page:
        yield page


def _lines_of(kept: deque[tuple[int, list[str]]], first: int, last: int) -> Iterator[str]:
    """Lines `first` to `last` of the chunks kept."""
    for start, chunk in kept:
        if start + len(chunk) > first and start <= last:
            yield from chunk[max(first - start, 0):last - start + 1]


def _said(error: str) -> str:
    """The csv module's complaint, in words."""
    if error == "unexpected end of data":
        return 'a quoted value is never closed (the file ends inside it): is a " missing?'
    if "expected after" in error:
        return f'a " inside a quoted value must be doubled ("") ({error})'
    if error.startswith("field larger than field limit"):
        return f"a value is longer than {csv.field_size_limit():,} characters: is a closing \" missing?"
    return error


def _repeated(header: list[str]) -> str | None:
    """A header that names a column twice (or has two without a name): a record is an object, so it
    would keep one of the two cells and lose the other without a word."""
    seen: dict[str, int] = {}
    for number, cell in enumerate(header, 1):
        if cell in seen:
            which = f"are both named {cell!r}" if cell else "both have no name"
            return (f"columns {seen[cell]} and {number} of the header {which}: a record would keep only one "
                    "of their cells; name them apart")
        seen[cell] = number
    return None


def _loose(header: list[str], row: list[str]) -> dict[str, Value]:
    """A row of any length by column: a missing cell is null, cells past the header go to `_extra`."""
    record: dict[str, Value] = dict(zip(header, row, strict=False))
    for column in header[len(row):]:
        record[column] = None
    if len(row) > len(header):
        record[EXTRA] = row[len(header):]
    return record


def _cr_marked(chunk: list[str], before: int) -> tuple[list[str], list[int]]:
    """A chunk of lines with each bare CR inside them marked, so that the csv module keeps it in its
    value, and the numbers of the lines marked (`before` lines come before the chunk)."""
    out: list[str] = []
    marked: list[int] = []
    for number, line in enumerate(chunk, before + 1):
        n = len(line)
        end = n - 2 if line.endswith("\r\n") else n - 1 if line.endswith(("\n", "\r")) else n
        if line.find("\r", 0, end) >= 0:
            marked.append(number)
            line = line[:end].replace("\r", CR_MARK) + line[end:]
        out.append(line)
    return out, marked
