"""Files at the edges: CSV encodings (a byte order mark, Latin-1, Windows-1252, UTF-16) and
delimiters, a bad byte reported with the file and line, and large JSON lists read as a stream with
exact decimals and flat memory."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

import flowlang


def run(tmp_path: Path, text: str) -> flowlang.Result:
    path = tmp_path / "f.flow"
    path.write_text(text)
    return flowlang.load(path).run(state_dir=tmp_path / ".state")


ROWS = [{"name": "Zoë Müller", "city": "Düsseldorf", "note": "café – “quoted”"},
        {"name": "Ñandú", "city": "São Paulo", "note": "€ 5"}]


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", b"\xef\xbb\xbf"), ("utf-8", b""), ("cp1252", b""),
                                               ("utf-16", b"")])
def test_csv_in_an_encoding_with_a_delimiter(tmp_path: Path, encoding: str, bom: bytes) -> None:
    text = "name;city;note\r\n" + "".join(f"{r['name']};{r['city']};{r['note']}\r\n" for r in ROWS)
    (tmp_path / "in.csv").write_bytes(bom + text.encode(encoding))
    given = "" if encoding == "utf-8" else f', encoding: "{encoding}"'
    result = run(tmp_path, f"""
use src = file(path: "in.csv", delimiter: ";"{given})
use out = file(path: "out.csv", delimiter: ";"{given})
call src.read() as rows
for each r in rows
  emit r
  send r to out
end
""")
    assert result.ok, result.error
    assert result.outputs == ROWS
    assert (tmp_path / "out.csv").read_bytes().decode(encoding).replace("\r\n", "\n").lstrip("\ufeff") == \
        text.replace("\r\n", "\n")


def test_latin1_is_read_with_encoding_and_a_bad_byte_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_bytes("id,name\n1,Ann\n2,Jos\xe9\n".encode("latin-1"))
    result = run(tmp_path, 'use src = file(path: "old.csv")\ncall src.read() as rows\nfor each r in rows\n'
                           "  emit r.name\nend\n")
    assert not result.ok and result.error is not None
    message = result.error.message
    assert "old.csv line 3" in message and "e9" in message and "encoding:" in message, message
    assert "internal error" not in message
    result = run(tmp_path, 'use src = file(path: "old.csv", encoding: "latin-1")\ncall src.read() as rows\n'
                           "for each r in rows\n  emit r.name\nend\n")
    assert result.ok and result.outputs == ["Ann", "José"]


def test_an_unknown_encoding_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a\n1\n")
    result = run(tmp_path, 'use src = file(path: "a.csv", encoding: "klingon")\ncall src.read() as rows\n'
                           "emit list(rows)\n")
    assert result.error is not None and "'klingon' is not one Python knows" in result.error.message


def test_a_bad_byte_in_json_lines_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    result = run(tmp_path, 'use src = file(path: "a.jsonl")\ncall src.read() as rows\nemit list(rows)\n')
    assert result.error is not None and "a.jsonl line 2" in result.error.message


def test_json_lists_stream_with_exact_decimals(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b'\xef\xbb\xbf [ {"amount": 12345678901234567890.123456789, "n": 1},'
                                      b' {"amount": 0.1, "n": 2} ]')
    (tmp_path / "one.json").write_text('{"only": 1.50}')
    (tmp_path / "empty.json").write_text("  ")
    (tmp_path / "bad.json").write_text('[{"a": 1}, {"a": ]')
    result = run(tmp_path, """
use a = file(path: "a.json")
use one = file(path: "one.json")
use empty = file(path: "empty.json")
call a.read() as rows
emit [r.amount for r in rows]
call one.read() as o
emit list(o)
call empty.read() as e
emit len(list(e))
""")
    assert result.ok, result.error
    assert result.outputs == [[Decimal("12345678901234567890.123456789"), Decimal("0.1")], {"only": Decimal("1.50")},
                              0]
    assert type(result.outputs[0][1]) is Decimal
    result = run(tmp_path, 'use b = file(path: "bad.json")\ncall b.read() as rows\nemit len(list(rows))\n')
    assert result.error is not None and "bad JSON in bad.json" in result.error.message


def test_a_large_json_list_is_read_in_flat_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    pad = "x" * 400
    with big.open("w") as fh:
        fh.write("[")
        for i in range(40_000):
            fh.write(("," if i else "") + f'{{"id": {i}, "price": {i}.25, "pad": "{pad}"}}')
        fh.write("]")
    size = big.stat().st_size  # about 17 MB
    tracemalloc.start()
    try:
        result = run(tmp_path, 'use src = file(path: "big.json")\ncall src.read() as rows\nlet n = 0\n'
                               "let total = 0\nfor each r in rows\n  let n = n + 1\n  let total = total + r.price\n"
                               "end\nemit [n, total]\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok, result.error
    assert result.outputs == [[40_000, Decimal(sum(range(40_000))) + Decimal("0.25") * 40_000]]
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
