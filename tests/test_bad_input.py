"""Bad input gets a clear diagnostic, a failed record or a failed run, never "internal error ... a bug
in flowlang" (issue 10, Low): huge numbers in builtins and JSON, damaged store rows, deep nesting,
odd paths and connector files; an exception that escapes a run still lands in result.error with the
job recorded; control characters never reach a terminal raw; files stay in the flow's folder."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import warnings
from pathlib import Path

import pytest

import flowlang
from conftest import cli
from flowlang.errors import FlowSyntaxError, ScriptError

BIG = "1" + "0" * 30


def run_text(text: str, tmp_path: Path) -> flowlang.Result:
    (tmp_path / "f.flow").write_text(text)
    return flowlang.load(tmp_path / "f.flow").run(state_dir=tmp_path / "state")


@pytest.mark.parametrize(("expr", "message"), [
    ("round(1e5000)", "too large for round()"),
    ("1e5000 % 3", "too large for %"),
    (f"days({BIG})", "out of range"),
    ("hours(1e400)", "out of range"),
    (f"range(0, {BIG})", "more than 10,000,000"),
    (f"len(range(0, {BIG}))", "more than 10,000,000"),
    ('base64_decode("é")', "not valid base64"),
    ("range(1, null)", "range()'s stop must be a whole number, got null"),  # was [0], as if range(1)
    ("range(null)", "range()'s n must be a whole number, got null"),
    ("range(1, 5, null)", "range()'s step must be a whole number, got null"),
    ("range(1, 5, 0)", "step cannot be 0"),
])
def test_huge_numbers_and_bad_text_in_builtins_fail_with_the_position(expr: str, message: str,
                                                                      tmp_path: Path) -> None:
    result = run_text(f"emit {expr}\n", tmp_path)
    assert result.status == "failed" and result.error is not None
    assert message in result.error.message and "internal" not in result.error.message
    assert result.error.line == 1 and "f.flow:1:" in (result.error.location or "")


def test_exact_results_of_large_numbers_are_still_computed(tmp_path: Path) -> None:
    result = run_text("emit [1e400 % 3, round(1e400) % 7, 5.5 % 2, round(2.5), round(-2.5), round(1.2345, 2)]\n",
                      tmp_path)
    assert result.ok, result.error
    assert result.outputs == [[1, 10**400 % 7, __import__("decimal").Decimal("1.5"), 3, -3,
                               __import__("decimal").Decimal("1.23")]]


@pytest.mark.parametrize("layout", ["list", "jsonl", "object"])
def test_a_json_number_past_4300_digits_is_a_data_error(layout: str, tmp_path: Path) -> None:
    digits = "7" * 5000
    name = "big.jsonl" if layout == "jsonl" else "big.json"
    text = {"list": f'[{{"a": 1}}, {{"a": {digits}}}]', "jsonl": f'{{"a": 1}}\n{{"a": {digits}}}\n',
            "object": f'{{"a": {digits}}}'}[layout]
    (tmp_path / name).write_text(text)
    result = run_text(f'use f = file(path: "{name}")\ncall f.read() as rows\nfor each r in rows\n  emit r\nend\n',
                      tmp_path)
    if layout == "jsonl":  # a line is a record of its own: it fails alone, the others go through
        assert result.status == "partial" and result.outputs == [{"a": 1}]
        assert "big.jsonl line 2" in result.errors[0].message
        assert "more than 4,300 digits" in result.errors[0].message, result.errors[0].message
        return
    assert result.status == "failed" and result.error is not None
    assert "more than 4,300 digits" in result.error.message, result.error.message


@pytest.mark.parametrize("layout", ["list", "jsonl", "object", "http"])
@pytest.mark.parametrize("number", ["1e99999999999999999999", "-2.5E-99999999999999999999"])
def test_a_json_number_whose_exponent_no_decimal_holds_is_a_data_error(layout: str, number: str,
                                                                       tmp_path: Path) -> None:
    # Decimal() refuses an exponent past decimal.MAX_EMAX with InvalidOperation, not ValueError: it was
    # "internal error (InvalidOperation: ...); this is a bug in flowlang", and a JSON Lines file lost
    # every record after it
    if layout == "http":
        from fakeapi import FakeApi

        with FakeApi({}) as api:
            api.route("GET", "/n", lambda req: (200, {}, f'[{{"a": {number}}}]'.encode()))
            result = run_text(f'use api = http(base_url: "{api.url}")\ncall api.get("/n") as x\nemit x\n',
                              tmp_path)
        assert result.status == "failed" and result.error is not None and result.error.kind != "internal"
        assert "not valid JSON (a number's exponent is too large to be read)" in result.error.message
        assert result.error.line == 2
        return
    name = "e.jsonl" if layout == "jsonl" else "e.json"
    text = {"list": f'[{{"a": 1}}, {{"a": {number}}}]', "jsonl": f'{{"a": 1}}\n{{"a": {number}}}\n{{"a": 3}}\n',
            "object": f'{{"a": {number}}}'}[layout]
    (tmp_path / name).write_text(text)
    result = run_text(f'use f = file(path: "{name}")\ncall f.read() as rows\nfor each r in rows\n  emit r\nend\n',
                      tmp_path)
    if layout == "jsonl":
        assert result.status == "partial" and result.outputs == [{"a": 1}, {"a": 3}]
        assert [e.message for e in result.errors] == ["e.jsonl line 2: a number's exponent is too large to be read"]
        return
    assert result.status == "failed" and result.error is not None and result.error.kind == "data"
    assert result.error.message == "bad JSON in e.json: a number's exponent is too large to be read"


def test_a_long_run_of_digits_in_a_json_string_is_read(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(json.dumps([{"a": 1}, {"s": "2" * 6000}, {"b": 3}]))
    result = run_text('use f = file(path: "d.json")\ncall f.read() as rows\nfor each r in rows\n  emit keys(r)\nend\n',
                      tmp_path)
    assert result.ok, result.error
    assert result.outputs == [["a"], ["s"], ["b"]]


@pytest.mark.parametrize("name", ["bad.json", "bad.csv", "bad.jsonl"])
def test_invalid_utf8_in_a_data_file_is_a_data_error(name: str, tmp_path: Path) -> None:
    body = b'[{"a": "\xff\xfe"}]' if name.endswith(".json") else (b"a,b\n\xff,2\n" if name.endswith(".csv")
                                                                  else b'{"a": "\xff"}\n')
    (tmp_path / name).write_bytes(body)
    result = run_text(f'use f = file(path: "{name}")\ncall f.read() as rows\nfor each r in rows\n  emit r\nend\n',
                      tmp_path)
    if not name.endswith(".json"):  # a CSV row or JSON line is a record of its own: it fails alone
        assert result.status == "partial" and [e.kind for e in result.errors] == ["data"]
        return
    assert result.status == "failed" and result.error is not None and result.error.kind == "data"


@pytest.mark.parametrize(("name", "encoding", "says"), [
    ("excel.csv", "utf-16", 'a UTF-16 byte order mark (ff fe): it is UTF-16 text, not UTF-8; give encoding: "utf-16"'),
    ("lines.jsonl", "utf-16", 'a UTF-16 byte order mark (ff fe)'),
    ("wide.jsonl", "utf-32", 'a UTF-32 byte order mark (ff fe 00 00): it is UTF-32 text, not UTF-8; '
                             'give encoding: "utf-32"'),
    ("bare.csv", "utf-16-le", "every other byte of the file's start is a NUL byte (69 00 64 00 2c 00 6e 00 ...): "
                              'it is UTF-16 text without a byte order mark, not UTF-8; give encoding: "utf-16-le"'),
    ("bare.jsonl", "utf-16-be", 'without a byte order mark, not UTF-8; give encoding: "utf-16-be"'),
])
def test_a_utf16_file_read_as_utf8_says_which_encoding_to_give(name: str, encoding: str, says: str,
                                                                 tmp_path: Path) -> None:
    """A CSV that Excel saved as "Unicode Text" (UTF-16 with a byte order mark) failed 'the bytes ff fe are
    not utf-8 text (give the file's encoding, e.g. encoding: "cp1252" or "latin-1")', a hint that reads it
    as mojibake; without the mark, the NUL after each character is UTF-8, and the file was read without a
    word into records such as {"i\\u0000d\\u0000": "\\u00001\\u0000"} (a JSON Lines file: a failed record a line)."""
    text = "id,name\n1,café\n2,b\n" if name.endswith(".csv") else '{"id": 1, "name": "café"}\n{"id": 2, "name": "b"}\n'
    (tmp_path / name).write_bytes(text.encode(encoding))
    flow = 'use f = file(path: "{name}"{enc})\ncall f.read() as rows\nfor each r in rows\n  emit r.name\nend\n'
    result = run_text(flow.format(name=name, enc=""), tmp_path)
    assert result.status == "failed" and result.error is not None and result.error.kind == "data", result.errors
    assert f"{name}: the file starts with {says}" in str(result.error) or says in str(result.error), str(result.error)
    assert result.outputs == [] and result.errors == []
    read = run_text(flow.format(name=name, enc=f', encoding: "{encoding}"'), tmp_path)
    assert read.ok and read.outputs == ["café", "b"], (read.error, read.errors)


@pytest.mark.parametrize("name", ["orders.csv", "orders.jsonl"])
def test_a_utf8_file_read_as_utf16_is_a_data_error_not_an_empty_read(name: str, tmp_path: Path) -> None:
    """A UTF-8 CSV given `encoding: "utf-16"` (its bytes decode as one line of CJK characters: no line end)
    was read as a header and no record: 0 read, the run ok, every order of the file gone without a word
    (found by fuzzing data files with odd encodings). It is a data error saying what the file likely is."""
    text = "id,name\n1,a\n2,b\n" if name.endswith(".csv") else '{"id": 1, "n": "a"}\n{"id": 2, "n": "b"}\n'
    assert len(text) % 2 == 0  # an odd count of bytes is no UTF-16 at all: refused as before
    (tmp_path / name).write_bytes(text.encode())
    flow = ('use f = file(path: "{name}", encoding: "{enc}")\ncall f.read() as rows\nfor each r in rows\n'
            '  emit r.id\nend\n')
    result = run_text(flow.format(name=name, enc="utf-16"), tmp_path)
    assert result.status == "failed" and result.error is not None and result.error.kind == "data", result.outputs
    assert f"{name}: the file is not utf-16 text: its line ends (0a bytes) read as no line end in utf-16, and it " \
           "has no NUL byte" in str(result.error) and "is it UTF-8? leave encoding out" in str(result.error)
    (tmp_path / name).write_bytes(text.encode("utf-16"))  # the file in UTF-16 reads as before
    read = run_text(flow.format(name=name, enc="utf-16"), tmp_path)
    assert read.ok and read.outputs in (["1", "2"], [1, 2]), (read.error, read.errors)


def test_a_nul_inside_a_utf8_files_cell_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "n.csv").write_bytes(b"id,name\n1,a\x00b\n")
    result = run_text('use f = file(path: "n.csv")\ncall f.read() as rows\nfor each r in rows\n  emit r.name\nend\n',
                      tmp_path)
    assert result.ok and result.outputs == ["a\x00b"]


def test_a_flow_path_to_an_endless_file_is_refused_after_a_bounded_read(tmp_path: Path) -> None:
    """`flowlang check zero.flow`, a link to /dev/zero (or a device, or a file that grows without end), read
    until memory ran out: the 2,000,000 characters a flow may have were counted only once it was all read.
    At most 8,000,000 bytes (those characters' UTF-8 at most) are read; a longer file is refused saying so,
    and a flow under the cap reads as before (CRLF line ends, a bad byte's line and column)."""
    (tmp_path / "zero.flow").symlink_to("/dev/zero")
    proc = cli("check", "zero.flow", cwd=tmp_path)
    assert proc.status == 2 and "zero.flow is longer than 8,000,000 bytes, more than the 2,000,000 characters a " \
        "flow may have" in proc.stderr, proc.stderr
    for command in ("run", "graph", "plan", "retry"):  # each read it whole, run twice
        proc = cli(command, "zero.flow", "--log-format", "text", cwd=tmp_path)
        assert proc.status in (1, 2) and "zero.flow is longer than 8,000,000 bytes" in proc.stderr, command
    proc = cli("fmt", "zero.flow", cwd=tmp_path)  # fmt rewrites regular files only (01be6d6): it reads none of it
    assert proc.status == 2 and "zero.flow is not a regular file: fmt rewrites .flow files only" in proc.stderr
    (tmp_path / "crlf.flow").write_bytes(b'emit 1\r\nemit "\xc3\xa9"\r\n')
    assert [json.loads(line) for line in cli("run", "crlf.flow", cwd=tmp_path).stdout.splitlines()] == [1, "\xe9"]
    (tmp_path / "lat.flow").write_bytes(b'emit 1\nemit "\xe9"\n')
    assert "the byte 0xe9 at lat.flow:2:7" in cli("check", "lat.flow", cwd=tmp_path).stderr
    (tmp_path / "long.flow").write_text("#" * 2_000_001)  # under the bytes read, over the characters: as before
    assert "the script is 2,000,001 characters long" in cli("check", "long.flow", cwd=tmp_path).stderr


def test_a_nul_in_a_file_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="NUL"):  # a constant, by check
        run_text('use f = file(path: "a\\u0000b.json")\ncall f.read() as rows\nemit list(rows)\n', tmp_path)
    result = run_text('let p = "a\\u0000b.json"\nuse f = file(path: p)\ncall f.read() as rows\nemit list(rows)\n',
                      tmp_path)
    assert result.error is not None and "NUL" in result.error.message


@pytest.mark.parametrize("where", ["flowlang.runner.set_params", "flowlang.runtime.store.Store.open_keys"])
def test_an_exception_that_escapes_a_run_lands_in_result_error_with_the_job_recorded(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(where, bug)  # in the run's body, and while the run is set up
    flow = flowlang.compile("emit 1\n", bindings=())
    result = flow.run(state_dir=tmp_path / "state")
    assert result.status == "failed" and result.error is not None
    assert "internal error (RuntimeError: a bug)" in result.error.message
    assert isinstance(result.error.__cause__, RuntimeError)
    db = sqlite3.connect(tmp_path / "state" / "flowlang.db")
    assert db.execute("select id, status from jobs").fetchall() == [(result.job_id, "failed")]
    db.close()


def test_a_damaged_state_row_fails_the_run_clearly_and_records_the_job(tmp_path: Path) -> None:
    run_text("let state.n = 1\nemit 1\n", tmp_path)
    db = sqlite3.connect(tmp_path / "state" / "flowlang.db")
    db.execute("update state set value = '{not json'")
    db.commit()
    db.close()
    result = run_text("let state.n = 1\nemit 1\n", tmp_path)
    assert result.status == "failed" and result.error is not None
    assert "saved state of the flow f is damaged" in result.error.message
    db = sqlite3.connect(tmp_path / "state" / "flowlang.db")
    assert db.execute("select status from jobs order by id desc limit 1").fetchone() == ("failed",)
    db.close()


def test_one_damaged_error_row_is_reported_and_the_others_stay_usable(tmp_path: Path) -> None:
    flow = "for each r in [{id: 1}, {id: 2}, {id: 3}]\n  fail \"bad {r.id}\"\nend\n"
    result = run_text(flow, tmp_path)
    assert len(result.errors) == 3
    db = sqlite3.connect(tmp_path / "state" / "flowlang.db")
    db.execute("update errors set record = '[1, ', scope = 'nope' where id = 2")
    db.commit()
    db.close()
    listed = cli("errors", "f.flow", "--state-dir", "state", cwd=tmp_path)
    assert listed.status == 0, listed.stderr
    assert listed.stdout.count("bad ") == 3 and "damaged: its saved record is damaged" in listed.stdout
    as_json = [json.loads(line) for line in cli("errors", "f.flow", "--state-dir", "state", "--json",
                                                 cwd=tmp_path).stdout.splitlines()]
    assert [e.get("damaged") is not None for e in as_json] == [False, True, False]
    (tmp_path / "f.flow").write_text("for each r in [{id: 1}, {id: 2}, {id: 3}]\n  emit r.id\nend\n")
    retried = cli("retry", "f.flow", "--state-dir", "state", "--log-format", "text", cwd=tmp_path)
    assert retried.status == 1, retried.stderr  # one error could not be replayed
    assert "error 2: its saved record is damaged" in retried.stderr
    assert [json.loads(line) for line in retried.stdout.splitlines()] == [1, 3]


def test_a_record_too_deep_to_store_is_kept_cut_and_the_run_goes_on(tmp_path: Path) -> None:
    deep: object = 1
    for _ in range(600):
        deep = [deep]
    (tmp_path / "deep.json").write_text(json.dumps([{"id": 1, "v": deep}, {"id": 2, "v": 1}]))
    flow = 'use f = file(path: "deep.json")\ncall f.read() as rows\nfor each r in rows\n  fail "bad"\nend\n'
    for _ in range(2):  # the second run replaces the keyed errors: the store keeps working
        result = run_text(flow, tmp_path)
        assert result.status == "partial" and len(result.errors) == 2, result.error
    listed = cli("errors", "f.flow", "--state-dir", "state", cwd=tmp_path)
    assert listed.status == 0 and "stored cut at that depth" in listed.stdout


def test_emit_of_a_literal_compared_with_true_gives_no_python_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = flowlang.compile('emit "x" == true\nemit "x" != null\nemit 1 == false\n', bindings=()).run()
    assert result.outputs == [False, True, False]


def test_a_long_flat_row_of_operators_is_named_as_one_with_what_to_write_instead() -> None:
    """`a + b + ...` of 150 terms reads as no nesting at all: the message says it is the row of
    operators (each one a level for flowlang), where it crosses the limit, and what to write."""
    with pytest.raises(FlowSyntaxError) as caught:
        flowlang.compile("emit " + " + ".join(["1"] * 150) + "\n", bindings=())
    diagnostic = caught.value.diagnostics[0]
    assert "nests more than 100 levels deep" in diagnostic.message
    assert "this expression joins 150 operands with + or -, and each operator counts as one level" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (1, 6 + 4 * 98)  # its 99th operand: the limit counts from 1
    hint = diagnostic.hint or ""
    assert "sum([a, b, ...])" in hint and "join([a, b, ...])" in hint
    with pytest.raises(FlowSyntaxError) as caught:
        flowlang.compile("let x = 1\nif " + " and ".join(["x == 1"] * 120) + "\n  emit 1\nend\n", bindings=())
    assert "joins 120 operands with and" in caught.value.diagnostics[0].message
    assert flowlang.compile("emit " + " + ".join(["1"] * 90) + "\n", bindings=()).run().outputs == [90]


@pytest.mark.parametrize("text", [
    "emit [" + "-" * 480 + "1]\n",
    'emit "{' + "-" * 1000 + '1}"\n',
    "emit " + "+".join(["1"] * 400) + "\n",
    "emit " + "not " * 300 + "true\n",
    "emit " + "lower(" * 200 + '"A"' + ")" * 200 + "\n",
    "for each x in [1]\n" * 120 + "emit 1\n" + "end\n" * 120,
])
def test_deep_nesting_is_one_clear_diagnostic_with_its_place(text: str, tmp_path: Path) -> None:
    with pytest.raises(FlowSyntaxError) as caught:
        flowlang.compile(text, bindings=())
    diagnostic = caught.value.diagnostics[0]
    assert "nests more than 100 levels deep" in diagnostic.message
    assert diagnostic.column > 1 or diagnostic.line > 1
    (tmp_path / "deep.flow").write_text(text)
    checked = cli("check", "deep.flow", cwd=tmp_path)
    assert checked.status == 2 and "deep.flow:" in checked.stderr and "internal" not in checked.stderr


@pytest.mark.parametrize("text", [
    "emit [" + "-" * 96 + "1]\n",
    "emit " + "+".join(["1"] * 95) + "\n",
    'for each q in ["a"]\n  emit ' + " + ".join(["q"] * 95) + "\nend\n",
    "emit " + "[" * 97 + "1" + "]" * 97 + "\n",
])
def test_nesting_just_under_the_limit_runs(text: str) -> None:
    result = flowlang.compile(text, bindings=()).run()
    assert result.ok, result.error


def test_check_of_an_import_with_a_very_long_path_is_a_diagnostic(tmp_path: Path) -> None:
    for path in ("a/" * 3000 + "x.flow", "b" * 300 + ".flow", "a/" * 1500 + "x.flow"):
        (tmp_path / "f.flow").write_text(f'import "{path}"\n')
        checked = cli("check", "f.flow", cwd=tmp_path)
        assert checked.status == 2 and "f.flow:1:1" in checked.stderr and "internal" not in checked.stderr


@pytest.mark.parametrize(("name", "body"), [
    ("deep.toml", ("a = " + "[" * 5000 + "]" * 5000 + "\n").encode()),
    ("latin.toml", b'name = "caf\xe9"\n'),
])
def test_a_connector_file_nested_deep_or_not_utf8_is_reported(name: str, body: bytes, tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / name).write_bytes(body)
    (tmp_path / "f.flow").write_text("emit 1\n")
    listed = cli("connectors", "--dir", str(tmp_path), cwd=tmp_path)
    assert listed.status == 2 and f"connectors/{name}:" in listed.stdout + listed.stderr
    assert "internal" not in listed.stderr


def test_a_connector_files_text_is_shown_as_written_with_no_markup_or_escape_sequences(tmp_path: Path) -> None:
    """`flowlang connectors NAME` printed its tables through rich's markup: a description holding "[/]"
    ended the command with 'internal error: MarkupError: closing tag '[/]' ... has nothing to close', one
    holding "[red]...[/red]" or "fields[name]" lost those brackets (and the http keys' own
    'created[gte]=1' read 'created=1'), and an escape sequence reached the terminal."""
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(
        'name = "shop"\nbase_url = "http://127.0.0.1:9"\n[operations.get_item]\nmethod = "GET"\npath = "/items/{id}"\n'
        'description = "\\u001b[2Jone item [/] by id, [red]x[/red], ?fields[name]=a"\n')
    shown = cli("connectors", "shop", "--dir", str(tmp_path), cwd=tmp_path)
    assert shown.status == 0, shown.stderr
    assert "internal" not in shown.stderr
    assert "\\x1b[2Jone item [/] by id, [red]x[/red], ?fields[name]=a" in shown.stdout
    assert "\x1b" not in shown.stdout
    assert "created[gte]=1" in shown.stdout


# ---- control characters ------------------------------------------------------------------------------


def test_control_characters_from_data_cannot_forge_a_text_log_line_or_reach_the_terminal(tmp_path: Path) -> None:
    forged = '\\n\\{\\"level\\": \\"info\\", \\"message\\": \\"all good\\"}\\u001b[2J\\u001b]0;owned\\u0007'
    (tmp_path / "f.flow").write_text(f'for each r in [{{id: 1}}]\n  log "got {forged}"\n  fail "bad {forged}"\nend\n')
    ran = cli("run", "f.flow", "--state-dir", "state", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 3
    assert "\x1b" not in ran.stderr and "\x07" not in ran.stderr and "\\x1b[2J" in ran.stderr
    assert not any(line.startswith('{"level"') for line in ran.stderr.splitlines())
    listed = cli("errors", "f.flow", "--state-dir", "state", cwd=tmp_path)
    assert "\x1b" not in listed.stdout and "\\x1b" in listed.stdout
    assert not any(line.startswith('{"level"') for line in listed.stdout.splitlines())
    grouped = cli("errors", "f.flow", "--state-dir", "state", "--group", cwd=tmp_path)
    assert "\x1b" not in grouped.stdout


def test_printable_escapes_every_control_character_once() -> None:
    from flowlang.diagnostics import printable

    assert printable("plain é ü 日本") == "plain é ü 日本"
    assert printable("a\nb\x1b[31m\u202e\x9b\x00\x7f") == "a\\nb\\x1b[31m\\u202e\\x9b\\x00\\x7f"
    assert printable("line one\nline\x1btwo", lines=True) == "line one\nline\\x1btwo"



def test_json_output_of_text_with_c1_controls_is_json_a_terminal_cannot_be_driven_by(tmp_path: Path) -> None:
    """`flowlang errors --json` of a message holding U+0085 or U+009B (C1 controls, as an API's Latin-1
    answer read as UTF-8 holds them) printed them as `\\x85`, which is no JSON escape: 'Invalid \\escape'
    from every JSON reader (found by a canary secret echoed in its Latin-1 bytes). They are JSON's own
    escapes (`\\u0085`), the same value, so the line is JSON and no raw control reaches a terminal; an
    emitted record holding U+009B (a terminal's CSI) likewise. With PYTHONIOENCODING=ascii, past ASCII is
    `\\u00e9`, not `\\xe9`."""
    from conftest import run_cli

    text = "bad \x85 \x9b[31m red \u2028 é ☃ 😀"
    written = "bad \\u0085 \\u009b[31m red \\u2028 é ☃ 😀"
    (tmp_path / "f.flow").write_text(f'flow "c1"\nfor each r in [{{id: 1}}]\n  emit {{m: "{written}"}}\n'
                                     f'  fail "{written}"\nend\n')
    ran = cli("run", "f.flow", cwd=tmp_path)
    assert ran.status == 3, ran.stderr
    assert json.loads(ran.stdout) == {"m": text} and "\x9b" not in ran.stdout and "\\u009b" in ran.stdout
    for args in (("errors", "f.flow", "--json"), ("errors", "f.flow", "--json", "--group"),
                 ("jobs", "f.flow", "--json")):
        shown = cli(*args, cwd=tmp_path)
        assert shown.status == 0, shown.stderr
        lines = [json.loads(line) for line in shown.stdout.splitlines()]  # before: Invalid \escape
        assert "\x85" not in shown.stdout and "\x9b" not in shown.stdout
        if args[0] == "errors":
            assert lines[0]["message"] == text
    ascii_out = run_cli("errors", "f.flow", "--json", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert ascii_out.stdout.isascii() and json.loads(ascii_out.stdout)["message"] == text


# ---- the flow's folder ----------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    (tmp_path / "lib.flow").write_text("function g(x)\n  return x + 1\nend\n")
    return flows


@pytest.mark.parametrize("line", ['import "../lib.flow"', 'run "../lib.flow"'])
def test_import_and_run_stay_in_the_flows_folder_unless_allow_outside(line: str, outside: Path) -> None:
    (outside / "f.flow").write_text(f"{line}\nemit 1\n")
    checked = cli("check", "f.flow", cwd=outside)
    assert checked.status == 2 and "outside the flow's folder" in checked.stderr
    assert "allow_outside" in checked.stderr
    (outside / "f.flow").write_text(f"{line} allow_outside\nemit 1\n")
    assert cli("check", "f.flow", cwd=outside).status == 0


def test_an_allowed_import_outside_the_folder_works(outside: Path) -> None:
    (outside / "f.flow").write_text('import "../lib.flow" allow_outside\nemit g(1)\n')
    ran = cli("run", "f.flow", cwd=outside)
    assert ran.status == 0 and ran.stdout == "2\n"


@pytest.mark.parametrize("url", ["sqlite:///../x.db", "sqlite:///{abs}"])
def test_a_sqlite_file_stays_in_the_flows_folder_unless_allow_outside(url: str, outside: Path) -> None:
    url = url.format(abs=outside.parent / "x.db")
    (outside / "f.flow").write_text(f'use db = sql(url: "{url}")\ncall db.execute("create table t (a)")\n')
    ran = cli("run", "f.flow", "--state-dir", "state", cwd=outside)
    assert ran.status == 2 and 'f.flow:1:19"' in ran.stderr  # a constant url: refused by check, at the url
    assert "outside the flow's folder" in ran.stderr
    assert not (outside.parent / "x.db").exists()
    (outside / "f.flow").write_text(f'use db = sql(url: "{url}", allow_outside: true)\n'
                                    'call db.execute("create table t (a)")\n')
    assert cli("run", "f.flow", "--state-dir", "state", cwd=outside).status == 0
    assert (outside.parent / "x.db").exists()


def test_a_sqlite_file_inside_the_folder_and_in_memory_are_fine(outside: Path) -> None:
    for url in ("sqlite:///data/in.db", f"sqlite:///{outside / 'abs.db'}", "sqlite://", "sqlite:///:memory:"):
        (outside / "f.flow").write_text(f'use db = sql(url: "{url}")\ncall db.execute("create table t (a)")\n')
        ran = cli("run", "f.flow", "--state-dir", "state", cwd=outside)
        assert ran.status == 0, (url, ran.stderr)


def test_a_hard_link_to_a_file_elsewhere_is_outside(outside: Path) -> None:
    secret = outside.parent / "secret.csv"
    secret.write_text("a\n1\n")
    os.link(secret, outside / "link.csv")
    (outside / "f.flow").write_text('use f = file(path: "link.csv")\ncall f.read() as rows\nemit list(rows)\n')
    ran = cli("run", "f.flow", "--state-dir", "state", cwd=outside)
    assert ran.status == 2 and "hard links" in ran.stderr  # a constant path: refused by check
    (outside / "f.flow").write_text('let p = "link.csv"\nuse f = file(path: p, mode: "overwrite")\nsend {a: 2} to f\n')
    ran = cli("run", "f.flow", "--state-dir", "state", cwd=outside)
    assert ran.status == 1 and "hard links" in ran.stderr
    assert secret.read_text() == "a\n1\n"  # not overwritten through the link


# ---- permissions --------------------------------------------------------------------------------------


def test_the_store_and_the_repl_history_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0o022)
    try:
        run_text("emit 1\n", tmp_path)
        mode = stat.S_IMODE((tmp_path / "state" / "flowlang.db").stat().st_mode)
        assert mode == 0o600, oct(mode)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        from flowlang.repl.app import history_file

        history_file(lambda text: text)
        assert stat.S_IMODE((tmp_path / "data" / "flowlang" / "history").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_script_errors_stay_script_errors() -> None:
    with pytest.raises(ScriptError):
        flowlang.compile("emit (\n", bindings=())


def test_an_emitted_value_nested_too_deeply_for_json_fails_its_record_at_the_emit(tmp_path: Path) -> None:
    """`flowlang run` writes each output as a JSON line; a value built thousands of levels deep cannot
    be written: the record fails at its emit (kept, with its record), not 'on_output raised JsonDataError'."""
    (tmp_path / "f.flow").write_text(
        "let x = {}\nfor each i in range(5000)\n  let x = {a: x}\nend\n"
        "for each r in [1, 2, 3]\n  emit {r: r, x: if r == 2 then x else 0}\nend\n")
    ran = cli("run", "f.flow", "--state-dir", "state", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 3, ran.stderr
    assert [json.loads(line)["r"] for line in ran.stdout.splitlines()] == [1, 3]
    assert "f.flow:6:3" in ran.stderr and "cannot write this output: the value nests too deeply" in ran.stderr
    assert "on_output" not in ran.stderr and "internal error" not in ran.stderr
    listed = cli("errors", "f.flow", "--state-dir", "state", "--json", cwd=tmp_path)
    [error] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert error["record"] == 2


def test_a_map_path_through_a_value_that_is_not_an_object_is_a_located_error(tmp_path: Path) -> None:
    """`s.t = 5` in a map where s is a string (copied by `...o`, or set on an earlier line) was silently
    replaced by an object {t: 5}; `let x.s.t = 5` refuses the same. Now the map refuses it too, at
    its line, and a null or missing s still becomes an object (the source is never changed)."""
    for body in ("  ...o\n  s.t = 5\n", '  s = "x"\n  s.t = 5\n'):
        result = run_text('let o = {s: "text", n: 1}\nmap o to a\n' + body + "end\nemit a\n", tmp_path)
        assert result.status == "failed" and result.error is not None
        assert "cannot set s.t: s is a string, not an object" in result.error.message
        assert (result.error.location or "").endswith("f.flow:4:3")
    built = run_text('let o = {s: null, k: {a: 1}}\nmap o to a\n  ...o\n  s.t = 5\n  k.b = 2\n  m.n = 3\nend\n'
                     "emit [a, o]\n", tmp_path)
    assert built.ok and built.outputs == [{"s": {"t": 5}, "k": {"a": 1, "b": 2}, "m": {"n": 3}},
                                          {"s": None, "k": {"a": 1}}]


def test_a_huge_list_or_string_index_is_past_the_end_at_once(tmp_path: Path) -> None:
    # xs[1e999999] converted the index to a whole number of a million digits first: one record, minutes
    started = __import__("time").monotonic()
    result = run_text('for each i in [1e999999, -1e999999, 1.0, 2]\n  let xs = [10, 20]\n'
                      '  emit [xs[i], "ab"[i]]\nend\n', tmp_path)
    assert result.ok, result.errors
    assert result.outputs == [[None, None], [None, None], [20, "b"], [None, None]]
    assert __import__("time").monotonic() - started < 5
    # assigning: 1.0 is index 1 (as reading it is), a huge index is out of range with the line
    result = run_text('for each i in [1.0, 1e999999, "a"]\n  let xs = [10, 20]\n  let xs[i] = 5\n  emit xs\nend\n',
                      tmp_path)
    assert result.status == "partial" and result.outputs == [[10, 5]]
    assert [(e.message, e.line) for e in result.errors] == [
        ("list index 1E+999999 is out of range (the list has 2 items)", 3),
        ("a list index must be a whole number, got string", 3)]


@pytest.mark.parametrize("kind", ["import", "run"])
def test_files_that_import_or_run_one_another_hundreds_deep_are_one_diagnostic(kind: str, tmp_path: Path) -> None:
    """A chain of 300 files, each importing (or running) the next, said 'maximum recursion depth exceeded
    ... this is a bug in flowlang' (each file is checked inside the one before it). Past 50 files it is a
    check error at the line that goes deeper; a shorter chain runs."""
    for i in range(300):
        body = "function f{i}(x)\n  return x\nend\n" if kind == "import" else "emit {i}\n"
        (tmp_path / f"m{i}.flow").write_text(f'{kind} "m{i + 1}.flow"\n' + body.format(i=i))
    (tmp_path / "m300.flow").write_text("function f300(x)\n  return x\nend\n" if kind == "import" else "emit 300\n")
    deep = cli("check", "m0.flow", cwd=tmp_path)
    assert deep.status == 2 and "internal error" not in deep.stderr and "bug in flowlang" not in deep.stderr
    assert (f"m49.flow:1:1: error: files import or run one another more than 50 deep here (m0.flow -> m1.flow -> "
            f"... -> m49.flow -> m50.flow): import or run the files this one needs from the flow itself\n"
            f' 1 | {kind} "m50.flow"') in deep.stderr, deep.stderr
    (tmp_path / "m10.flow").write_text("function f10(x)\n  return x\nend\n" if kind == "import" else "emit 10\n")
    assert cli("run", "m0.flow", "--quiet", cwd=tmp_path).status == 0
