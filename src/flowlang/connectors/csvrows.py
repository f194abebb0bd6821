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
gets a leading ' against spreadsheet formula injection (unless it is a number); header cells too."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import IO

from flowlang.connectors.textlines import LineState, bad_bytes_message, lines, unmarked
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.jsoncodec import dumps
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
        return escaped(dumps(value))
    return escaped(to_text(value))


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


def records(fh: IO[bytes], encoding: str, name: str, delimiter: str, ragged: str) -> Iterator[Value]:
    """The file's records: an object per row, or a BadRecord for a row that cannot be read as one."""
    state = LineState()
    marked = [0]  # lines in which a bare CR was marked
    taken: list[str] = []  # the lines of the row being read
    reader = csv.reader(_with_cr_marked(lines(fh, encoding, name, state), marked, taken), delimiter=delimiter,
                        strict=True)
    header: list[str] | None = None
    width = 0
    bad_seen = 0
    marks_seen = 0
    last = 0  # the last line of the row before
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # the reader starts afresh at the next line
            first, last = last + 1, state.number
            bad_seen = len(state.bad)
            raw = unmarked("".join(taken)).replace(CR_MARK, "\r")
            taken.clear()
            message = f"{name} line {first}: bad CSV: {_said(str(e))}"
            if header is None:
                raise FlowRuntimeError(message, "data") from None
            yield BadRecord({RAW: raw if len(raw) <= RAW_KEPT else raw[:RAW_KEPT] + "..."}, message)
            continue
        taken.clear()
        first, last = last + 1, state.number
        if marked[0] != marks_seen:
            marks_seen = marked[0]
            row = [cell.replace(CR_MARK, "\r") for cell in row]
        bad = state.bad[bad_seen:]
        bad_seen = len(state.bad)
        if not row:
            continue
        if header is None:
            if bad:
                raise FlowRuntimeError(bad_bytes_message(name, bad[0][0], bad[0][1], encoding), "data")
            if any("\r" in cell for cell in row):
                raise FlowRuntimeError(f"{name} line {first}: the header has a carriage return in a cell: "
                                       "a file whose lines end in a carriage return alone (an old Mac "
                                       "file) is not read; save it with \\n or \\r\\n line ends", "data")
            header, width = row, len(row)
            continue
        if bad:
            cells = [unmarked(cell) for cell in row]
            yield BadRecord(_loose(header, cells), bad_bytes_message(name, bad[0][0], bad[0][1], encoding))
        elif len(row) == width:
            yield dict(zip(header, row, strict=True))
        elif ragged == "keep":
            yield _loose(header, row)
        else:
            yield BadRecord(_loose(header, row),
                            f"{name} line {first}: the row has {len(row)} cell{'s' * (len(row) != 1)}, "
                            f"the header {width} (a ragged row; ragged: \"keep\" reads such rows)")


def _said(error: str) -> str:
    """The csv module's complaint, in words."""
    if error == "unexpected end of data":
        return 'a quoted value is never closed (the file ends inside it): is a " missing?'
    if "expected after" in error:
        return f'a " inside a quoted value must be doubled ("") ({error})'
    if error.startswith("field larger than field limit"):
        return f"a value is longer than {csv.field_size_limit():,} characters: is a closing \" missing?"
    return error


def _loose(header: list[str], row: list[str]) -> dict[str, Value]:
    """A row of any length by column: a missing cell is null, cells past the header go to `_extra`."""
    record: dict[str, Value] = dict(zip(header, row, strict=False))
    for column in header[len(row):]:
        record[column] = None
    if len(row) > len(header):
        record[EXTRA] = row[len(header):]
    return record


def _with_cr_marked(source: Iterator[str], marked: list[int], taken: list[str]) -> Iterator[str]:
    """Lines with each bare CR inside them marked, so that the csv module keeps it in its value (each
    one is also put in `taken`, for the record of a row the csv module refuses)."""
    for line in source:
        n = len(line)
        end = n - 2 if line.endswith("\r\n") else n - 1 if line.endswith(("\n", "\r")) else n
        if line.find("\r", 0, end) >= 0:
            marked[0] += 1
            line = line[:end].replace("\r", CR_MARK) + line[end:]
        taken.append(line)
        yield line
