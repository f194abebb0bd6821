"""The file connector's fast paths give what the slow rules give: CSV and JSON Lines files are read a
chunk of lines at a time (connectors/textlines.py), so every record, failed record and file:line must
be the same whatever the chunk's size (a row across chunks, a bad byte, a bare CR or a refused row in
any chunk); the usual CSV row is written as its cells joined, so its bytes must be those of the
cell-by-cell rules (csvrows.csv_cell through the csv module) for any row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowlang
from flowlang.connectors import textlines
from flowlang.connectors.csvrows import csv_cell, escaped

CHUNKS = [1, 2, 3, 7, 64, textlines.CHUNK]
READ = 'use src = file(path: "in.{fmt}"{options})\ncall src.read() as rows\nfor each r in rows\n  emit r\nend\n'
BAD_BYTES = '(give the file\'s encoding, e.g. encoding: "cp1252" or "latin-1")'

CSV_TEXT = (b'id,name,x\n1,a,q\n\n3,"two\nlines",x\n4,a\rb,y\n5,b\xff,z\n6,c\n7,"x"y,z\r\n8,d,w\r\n'
            b'9,"open\n10,z\n')
CSV_OUTPUTS = [{"id": "1", "name": "a", "x": "q"}, {"id": "3", "name": "two\nlines", "x": "x"},
               {"id": "4", "name": "a\rb", "x": "y"}, {"id": "8", "name": "d", "x": "w"}]
CSV_ERRORS = [
    (f"in.csv line 7: the bytes ff are not utf-8 text {BAD_BYTES}", {"id": "5", "name": "b\ufffd", "x": "z"}),
    ('in.csv line 8: the row has 2 cells, the header 3 (a ragged row; ragged: "keep" reads such rows)',
     {"id": "6", "name": "c", "x": None}),
    ('in.csv line 9: bad CSV: a " inside a quoted value must be doubled ("") (\',\' expected after \'"\')',
     {"_raw": '7,"x"y,z\r\n'}),
    ('in.csv line 11: bad CSV: a quoted value is never closed (the file ends inside it): is a " missing? (lines '
     '11 to 12 were read as this one row: the line after it, not read as record; fix the quote and read the file '
     'again)',
     {"_raw": '9,"open\n10,z\n'}),
]


def read(tmp_path: Path, fmt: str, options: str = "") -> flowlang.Result:
    return flowlang.compile(READ.format(fmt=fmt, options=options), base_dir=tmp_path).run(state_dir=tmp_path / "st")


@pytest.mark.parametrize("chunk", CHUNKS)
def test_csv_read_in_chunks_gives_the_same_records_failures_and_lines_whatever_the_chunk(
        tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textlines, "CHUNK", chunk)
    (tmp_path / "in.csv").write_bytes(CSV_TEXT)
    result = read(tmp_path, "csv")
    assert result.outputs == CSV_OUTPUTS
    assert [(e.message, e.record) for e in result.errors] == CSV_ERRORS


@pytest.mark.parametrize("chunk", [1, 5, textlines.CHUNK])
def test_a_long_csv_file_read_in_chunks_names_lines_past_the_first_chunk(
        tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textlines, "CHUNK", chunk)
    rows = [f"{n},name{n}\n".encode() for n in range(1, 20_001)]
    rows[14_999] = b"15000,bad\xe9\n"  # line 15,001
    rows[17_999] = b'18000,"un"closed\n'  # line 18,001
    rows[18_999] = b'19000,"a\rb\nc"\n'  # lines 19,001 and 19,002: a bare CR, a line break in a value
    rows[19_499] = b"19500\n"  # line 19,502: ragged
    (tmp_path / "in.csv").write_bytes(b"id,name\n" + b"".join(rows))
    result = read(tmp_path, "csv")
    assert len(result.outputs) == 19_997
    assert result.outputs[18_997] == {"id": "19000", "name": "a\rb\nc"}
    assert result.outputs[-1] == {"id": "20000", "name": "name20000"}
    assert [e.message.split(":")[0] for e in result.errors] == ["in.csv line 15001", "in.csv line 18001",
                                                                 "in.csv line 19502"]
    assert result.errors[1].record == {"_raw": '18000,"un"closed\n'}


@pytest.mark.parametrize("chunk", CHUNKS)
def test_json_lines_read_in_chunks_give_the_same_records_failures_and_lines_whatever_the_chunk(
        tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textlines, "CHUNK", chunk)
    (tmp_path / "in.jsonl").write_bytes(b'{"n": 1}\n\n{"n": "\xe9"}\n{"n": 3,\n  \n{"n": "a\\nb"}\r\n{"n": 5}')
    result = read(tmp_path, "jsonl")
    assert result.outputs == [{"n": 1}, {"n": "a\nb"}, {"n": 5}]
    assert [(e.message.split(":")[0], e.record) for e in result.errors] == [
        ("in.jsonl line 3", {"_raw": '{"n": "\ufffd"}'}), ("in.jsonl line 4", {"_raw": '{"n": 3,'})]
    assert BAD_BYTES in result.errors[0].message


@pytest.mark.parametrize("chunk", [1, 3, textlines.CHUNK])
def test_a_csv_in_cp1252_and_in_utf16_reads_alike_in_chunks(tmp_path: Path, chunk: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textlines, "CHUNK", chunk)
    for encoding in ("cp1252", "utf-16"):
        (tmp_path / "in.csv").write_bytes("id,name\r\n1,Zoë\r\n2,\"€\r\n5\"\r\n".encode(encoding))
        result = read(tmp_path, "csv", f', encoding: "{encoding}"')
        assert result.ok, result.errors
        assert result.outputs == [{"id": "1", "name": "Zoë"}, {"id": "2", "name": "€\r\n5"}]


def test_appending_to_a_csv_with_a_bad_byte_past_its_header_reads_the_header(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_bytes(b"id,name\n1,a\n2,b\xff\n")
    flow = 'use out = file(path: "out.csv", mode: "append")\nsend {name: "c", id: "3"} to out\n'
    result = flowlang.compile(flow, base_dir=tmp_path).run(state_dir=tmp_path / "st")
    assert result.ok, result.error
    assert (tmp_path / "out.csv").read_bytes() == b"id,name\n1,a\n2,b\xff\n3,c\n"


# ---- writing: the usual row joined, any row as the cell-by-cell rules write it ------------------------
KEYS = ["id", "=f", "note", "n"]
TEXT = st.text(st.sampled_from(["a", "Z", " ", ",", ";", "|", "\t", '"', "'", "=", "+", "-", "@", "\r", "\n",
                                "1", ".", "é", "€", "\x00", "\x0b"]), max_size=5)
VALUES = st.one_of(TEXT, st.integers(-5, 5), st.none(), st.booleans(), st.lists(st.integers(0, 2), max_size=2),
                   st.dictionaries(st.sampled_from(["k"]), TEXT, max_size=1))


@st.composite
def records(draw: st.DrawFn) -> tuple[list[dict[str, object]], str]:
    """Rows mostly of text with the header's keys (in any order), some with fewer keys or other values;
    the delimiter."""
    header = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=1))
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        keys = draw(st.permutations(header))
        if draw(st.integers(0, 5)) == 0:
            keys = keys[:draw(st.integers(1, len(keys)))]
        rows.append({k: draw(TEXT if draw(st.integers(0, 3)) else VALUES) for k in keys})
    rows[0] = {k: rows[0].get(k, "") for k in header}  # the first row gives the header
    return rows, draw(st.sampled_from([",", ";", "\t", "|", " "]))


def cell_by_cell(records: list[dict[str, object]], delimiter: str) -> bytes:
    """The file the cell-by-cell rules write: the first record's keys as the header (escaped), each row
    by column, quoted by the csv module as for a "\\r\\n" line end, each row then ended by "\\n"."""
    header = list(records[0])
    rows = [[escaped(k) for k in header]] + [[csv_cell(record.get(k)) for k in header]  # type: ignore[arg-type]
                                              for record in records]
    lines = []
    for row in rows:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(row)
        lines.append(out.getvalue()[:-2] + "\n")
    return "".join(lines).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(case=records())
def test_every_csv_row_is_written_as_the_cell_by_cell_rules_write_it(tmp_path_factory: pytest.TempPathFactory,
                                                                     case: tuple[list[dict[str, object]], str]) -> None:
    rows, delimiter = case
    folder = tmp_path_factory.mktemp("rows")
    (folder / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    flow = (f'use src = file(path: "in.jsonl")\nuse out = file(path: "out.csv", delimiter: {json.dumps(delimiter)})\n'
            "call src.read() as rows\nfor each r in rows\n  send r to out\nend\n")
    result = flowlang.compile(flow, base_dir=folder).run(state_dir=folder / "st")
    assert result.ok, result.errors or result.error
    assert (folder / "out.csv").read_bytes() == cell_by_cell(rows, delimiter)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(["a", "é", "\n", "\r", "\r\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
                                 "\x85", "\u2028", "\u2029", " "])).map("".join))
def test_a_chunk_splits_into_lines_at_lf_only(text: str) -> None:
    assert textlines.split_lines(text) == io.StringIO(text, newline="\n").readlines()


def test_the_usual_csv_row_is_not_written_in_a_dry_run_the_repl_turned_on(tmp_path: Path) -> None:
    """The usual row's fast path (no dry-run check of its own would be faster) after a row was written:
    a REPL's `:dry on` holds for the connections it has open, so the next rows are logged, not written."""
    from flowlang.repl.meta import run_meta
    from flowlang.repl.session import ReplSession

    session = ReplSession(base_dir=tmp_path)
    try:
        session.execute('use out = file(path: "out.csv")\n')
        session.execute('send {a: "1", b: "x"} to out\n')
        assert run_meta(session, ":dry on").ok
        session.execute('send {a: "2", b: "y"} to out\n')
        assert run_meta(session, ":dry off").ok
        session.execute('send {a: "3", b: "z"} to out\n')
    finally:
        session.close()
    assert (tmp_path / "out.csv").read_text() == "a,b\n1,x\n3,z\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_the_usual_csv_row_after_the_disk_filled_up_is_refused_not_buffered(tmp_path: Path) -> None:
    """Once a flush found the disk full, every later row fails as the slow path says (the fast path is
    off), and the run ends at the page: no row is taken as sent into a file that cannot hold it."""
    (tmp_path / "in.csv").write_text("n,m\n" + "".join(f"{i},x\n" for i in range(3000)))
    flow = flowlang.compile('use src = file(path: "in.csv")\n'
                            'use out = file(path: "/dev/full", format: "csv", allow_outside: true)\n'
                            "call src.read() as rows\nfor each r in rows\n  send r to out\nend\n", name="f.flow",
                            base_dir=tmp_path)
    result = flow.run(state_dir=tmp_path / "state")
    assert result.status == "failed" and result.error is not None
    assert "disk full writing /dev/full" in result.error.message, result.error.message
    assert "internal error" not in result.error.message
    assert result.stats.sent == 1000  # the first page's, cut back at its flush: none after it
