"""CSV rows and cells: the one place the rules for reading and writing CSV live (the file connector's,
so sftp and s3 files and pick-ups follow them too).

Reading: the first row is the header, every later row a record of strings by column; blank lines are
skipped. A row with a byte that is not of the file's encoding, or with more or fewer cells
than the header (a ragged row), is a BadRecord naming the file and the line: a loop fails that record
alone (it is kept in the error store) and goes on with the next. With `ragged: "keep"` a ragged row is
read: a missing cell is null, extra cells are kept as a list in the field `_extra`.

Writing: a cell whose text starts with = + - @, a tab or a carriage return gets a leading ' against
spreadsheet formula injection (unless it is a number)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

from flowlang.connectors.textlines import LineState, bad_bytes_message, lines, unmarked
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.values import BadRecord, Value, to_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
RAGGED = ("error", "keep")
EXTRA = "_extra"  # where ragged: "keep" puts the cells past the header's


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
    """The text with a leading ' where a spreadsheet would start a formula."""
    if text.startswith(FORMULA_STARTS) and not _numeric(text):
        return "'" + text
    return text


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
    reader = csv.reader(lines(fh, encoding, name, state), delimiter=delimiter)
    header: list[str] | None = None
    width = 0
    bad_seen = 0
    last = 0  # the last line of the row before
    try:
        for row in reader:
            first, last = last + 1, state.number
            bad = state.bad[bad_seen:]
            bad_seen = len(state.bad)
            if not row:
                continue
            if header is None:
                if bad:
                    raise FlowRuntimeError(bad_bytes_message(name, bad[0][0], bad[0][1], encoding), "data")
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
    except csv.Error as e:
        raise FlowRuntimeError(f"bad CSV in {name} at line {reader.line_num}: {e}", "data") from None


def _loose(header: list[str], row: list[str]) -> dict[str, Value]:
    """A row of any length by column: a missing cell is null, cells past the header go to `_extra`."""
    record: dict[str, Value] = dict(zip(header, row, strict=False))
    for column in header[len(row):]:
        record[column] = None
    if len(row) > len(header):
        record[EXTRA] = row[len(header):]
    return record
