"""Messages that teach (issue 16), as a user meets them on the command line: a mistyped --param,
a --param that does not parse as its default's type, a missing secret, a TOML error in a connector
file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from conftest import cli, run_cli

PARAMS = 'param since = "2024-01-01"\nparam n = 5\nparam full = false\nemit [since, n, full]\n'


def test_a_mistyped_param_gets_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text(PARAMS)
    result = cli("run", "f.flow", "--param", "sinse=2024-05-01", "--log-format", "text", cwd=tmp_path)
    assert result.status == 2 and result.stdout == ""
    assert "unknown param 'sinse': the flow declares since, n, full; did you mean 'since'?" in result.stderr


def test_a_param_of_the_wrong_type_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text(PARAMS)
    wrong = cli("run", "f.flow", "--param", "n=abc", "--log-format", "text", cwd=tmp_path)
    assert wrong.status == 2 and wrong.stdout == ""
    assert "param n is a number (its default is 5), got 'abc'" in wrong.stderr
    flag = cli("run", "f.flow", "--param", "full=yes", "--log-format", "text", cwd=tmp_path)
    assert flag.status == 2 and "param full is true or false (its default is false), got 'yes'" in flag.stderr
    for given, said in (("null", "null"), ("[1]", "list"), ('{"a":1}', "object"), ("7", "number")):
        other = cli("run", "f.flow", "--param", f"full={given}", "--log-format", "text", cwd=tmp_path)
        # before, a null was "got NoneType" and an object "got dict"
        assert other.status == 2 and f"(its default is false), got {said}\n" in other.stderr, other.stderr
    right = cli("run", "f.flow", "--param", "n=2.5", "--param", "full=true", "--quiet", cwd=tmp_path)
    assert right.status == 0 and right.stdout == '["2024-01-01",2.5,true]\n'


def test_a_number_read_as_text_from_a_csv_says_how_to_convert_it(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("id,total\n1,12.50\n2,7\n3,n/a\n")
    (tmp_path / "f.flow").write_text('use f = file(path: "o.csv")\ncall f.read() as rows\n'
                                     "for each row in rows\n  emit round(row.total, 1)\nend\n")
    result = cli("run", "f.flow", "--log-format", "text", "--quiet", cwd=tmp_path)
    assert result.status == 3
    hint = "round() needs a number, got string that looks like a number (CSV cells are text: use number(...)"
    assert result.stderr.count(hint) == 2  # the same words for each, so `flowlang errors --group` groups them
    assert "round() needs a number, got string\n" in result.stderr  # 'n/a' does not look like a number
    fixed = tmp_path / "g.flow"
    (tmp_path / "p.csv").write_text("id,total\n1,12.50\n2,7\n")
    fixed.write_text('use f = file(path: "p.csv")\ncall f.read() as rows\n'
                     "for each row in rows\n  emit round(number(row.total), 1)\nend\n")
    assert cli("run", "g.flow", "--quiet", cwd=tmp_path).stdout == "12.5\n7\n"


def test_a_repl_run_time_error_shows_the_input_line(tmp_path: Path) -> None:
    result = cli("repl", cwd=tmp_path, stdin='let x = null\nx < 1\nround("a", 1)\n')
    assert "<repl>:1:1" not in result.stderr
    # piped, an input is named by its line of stdin (docs/repl.md)
    assert "<stdin>:2:3: error: cannot compare null and number\n 2 | x < 1\n   |   ^" in result.stderr
    assert '<stdin>:3:1: error: round() needs a number, got string\n 3 | round("a", 1)' in result.stderr


def test_a_toml_error_in_a_connector_file_shows_its_line_and_a_caret(tmp_path: Path,
                                                                     snapshot: SnapshotAssertion) -> None:
    (tmp_path / "connectors").mkdir()
    toml = tmp_path / "connectors" / "shop.toml"
    (tmp_path / "f.flow").write_text('use s = shop()\ncall s.list() as r\nemit r\n')
    shown = []
    for text in ('name = "shop"\nkind = "http"\nbase_url = "http://x"\n[operations.list\nmethod = "GET"\n',
                 'name = "shop"\nkind = "http"\nbase_url = "http://x\n',
                 'name = "shop"\nkind = "http"\nbase_url = """http://x'):
        toml.write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and "Traceback" not in result.stderr
        shown.append(result.stderr)
    assert "connectors/shop.toml:4:17: not valid TOML: Expected ']'" in shown[0]
    assert " 4 | [operations.list\n   |                 ^" in shown[0]
    assert shown == snapshot
    run = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert run.status == 2 and " --> connectors/shop.toml:3:23" in run.stderr


def test_identical_failures_are_one_line_at_the_end_and_each_record_is_kept(tmp_path: Path,
                                                                           snapshot: SnapshotAssertion) -> None:
    rows = ["id,name"] + [f"{i},n{i}" for i in range(2000)] + ["x,7"]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "f.flow").write_text('use f = file(path: "p.csv")\ncall f.read() as rows\n'
                                     "for each row in rows\n  if row.id == \"x\"\n    fail \"bad id\"\n  end\n"
                                     "  emit round(row.name, 1)\nend\n")
    result = cli("run", "f.flow", "--log-format", "text", "--quiet", cwd=tmp_path)
    assert result.status == 3
    assert result.stderr == snapshot
    assert result.stderr.count("error:") == 3  # the first of 2,000, the one 'bad id', the summary
    errors = cli("errors", "f.flow", "--json", cwd=tmp_path)
    assert len(errors.stdout.splitlines()) == 2001  # every record is kept in the error store
    flow = tmp_path / "g.flow"  # a parallel loop names its records by their place too
    flow.write_text("for each o in input parallel 3\n  fail \"no\"\nend\n")
    (tmp_path / "in.json").write_text("[{\"id\": 7}, {\"id\": 8}, {}, {}, {}]")
    parallel = cli("run", "g.flow", "--input", "in.json", "--log-format", "text", "--quiet", cwd=tmp_path)
    assert "5 records failed at g.flow:2:3: no (first: record 1 (key 7), record 2 (key 8), record 3, ...)" \
        in parallel.stderr
    as_json = cli("run", "g.flow", "--input", "in.json", "--log-format", "json", "--quiet", cwd=tmp_path)
    assert as_json.stderr.count('"level": "error"') == 2


def test_a_connector_file_pagination_typo_gets_did_you_mean_and_a_caret(tmp_path: Path,
                                                                       snapshot: SnapshotAssertion) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(
        'name = "shop"\ntitle = "Shop"\nbase_url = "http://127.0.0.1:9"\n\n'
        '[operations.list_orders]\nmethod = "GET"\npath = "/orders"\n'
        'pagination = { style = "cursr", record = "data" }\n\n'
        '[operations.list_items]\nmethod = "GET"\npath = "/items"\n\n'
        '[operations.list_items.pagination]\nstyle = "cursor"\ncurser = "next"\n')
    (tmp_path / "f.flow").write_text("use s = shop()\ncall s.list_orders() as r\nemit r\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert "pagination.style: Input should be 'page', 'offset', 'cursor', 'link' or 'next_url' (did you mean " \
           "'cursor'?)" in result.stderr
    assert "pagination.record: no such key (did you mean 'records'?)" in result.stderr
    assert " 16 | curser = \"next\"\n    | ^^^^^^" in result.stderr
    assert result.stderr == snapshot


def test_a_parallel_or_batch_size_that_is_not_a_whole_number_is_shown_as_given(tmp_path: Path) -> None:
    # before: "got Decimal('2.5')" for parallel, "got number" for batch
    (tmp_path / "f.flow").write_text("param p = 2\nuse out = memory()\nfor each i in range(3) parallel p\n"
                                     "  emit i\nend\nfor each i in range(3)\n  send {i: i} to out batch p\nend\n")
    for given in ("0", "2.5"):
        proc = cli("run", "f.flow", "--param", f"p={given}", "--log-format", "text", cwd=tmp_path)
        assert f"f.flow:3:33: error: parallel needs a whole number of at least 1, got {given}\n" in proc.stderr
    (tmp_path / "f.flow").write_text((tmp_path / "f.flow").read_text().replace(" parallel p", ""))
    proc = cli("run", "f.flow", "--param", "p=2.5", "--log-format", "text", cwd=tmp_path)
    assert "batch needs a whole number of at least 1, got 2.5 (first:" in proc.stderr, proc.stderr


def test_a_variable_of_an_imported_file_says_that_import_brings_functions(tmp_path: Path) -> None:
    """language.md: an import brings in the functions and connections of a file; a top-level `let` there
    is seen by its functions only. Reading one from the importer said only "unknown name"."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "money.flow").write_text(
        'let currency = "EUR"\nfunction cents(a)\n  return int(round(number(a) * 100))\nend\n')
    (tmp_path / "f.flow").write_text('import "lib/money.flow"\nemit {cents: cents("1.10"), cur: currency}\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:2:34: error: unknown name 'currency'\n" in result.stderr
            and "hint: 'currency' is a `let` of lib/money.flow: an import brings in its functions and "
                "connections, not its variables" in result.stderr), result.stderr
    (tmp_path / "f.flow").write_text('import "lib/money.flow"\nemit {cents: cents("1.10"), cur: "EUR"}\n')
    ran = cli("run", "f.flow", "--quiet", cwd=tmp_path)
    assert ran.status == 0 and ran.stdout == '{"cents":110,"cur":"EUR"}\n'


def test_a_param_whose_default_is_a_list_or_object_refuses_another_kind(tmp_path: Path) -> None:
    """`--param ids=1,2` (text) or `ids=5` for `param ids = [1, 2]` ran and failed later (len() needs a
    list, got number), or looped over the characters of the text; now refused before the run."""
    (tmp_path / "f.flow").write_text('param ids = [1, 2]\nparam opts = {a: 1}\nemit [len(ids), keys(opts)]\n')
    text = cli("run", "f.flow", "--param", "ids=1,2", "--log-format", "text", cwd=tmp_path)
    assert text.status == 2 and text.stdout == ""
    assert "param ids is a list (its default is one), got '1,2' (as JSON: --param ids='[1, 2]')" in text.stderr
    number = cli("run", "f.flow", "--param", "ids=5", "--log-format", "text", cwd=tmp_path)
    assert number.status == 2 and "param ids is a list (its default is one), got number" in number.stderr
    other = cli("run", "f.flow", "--param", "opts=[1]", "--log-format", "text", cwd=tmp_path)
    assert other.status == 2 and "param opts is an object (its default is one), got list" in other.stderr
    right = cli("run", "f.flow", "--param", "ids=[7]", "--param", 'opts={"b": 2}', "--quiet", cwd=tmp_path)
    assert right.status == 0 and right.stdout == '[1,["b"]]\n', right.stderr


def test_pythons_floor_division_and_power_are_explained(tmp_path: Path) -> None:
    """`total // 2` and `n ** 2` said 'expected an expression, found `/`' (or `*`), pointing at the
    second character, with no word that flowlang has neither operator."""
    (tmp_path / "f.flow").write_text("let total = 7\nemit total // 2\nemit total ** 2\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:2:12: error: `//` is not an operator: `/` divides exactly (7 / 2 is 3.5)\n"
            " 2 | emit total // 2\n"
            "   |            ^^\n"
            "   = hint: for the whole part of a division write floor(a / b) (int(a / b) rounds toward zero)\n"
            ) in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("let total = 7\nemit total ** 2\n")
    power = cli("check", "f.flow", cwd=tmp_path)
    assert power.status == 2 and "f.flow:2:12: error: `**` is not an operator" in power.stderr
    (tmp_path / "f.flow").write_text("let total = 7\nemit floor(total / 2) * total * total\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == "147\n"


def test_a_statement_in_a_map_body_says_the_maps_end_is_missing(tmp_path: Path) -> None:
    """A `map` without its `end` before `emit out` said 'expected `.` or `=`, found `out`' (the body
    reads `emit` as a field's name), with no word of the map. It names the map and its missing `end`; a
    field named like a keyword (`emit = r`) is still a field."""
    (tmp_path / "f.flow").write_text("for each r in [1]\n  map r to out\n    a = r\n  emit out\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:4:8: error: `emit ...` is a statement, but this line is in the body of the `map` opened at "
            "2:3, whose lines are `field = value`: is that map's `end` missing?\n"
            " 4 |   emit out\n"
            "   |        ^^^\n"
            "   = hint: close the map with `end` before this line (a field named emit is written `emit = ...`)\n"
            ) in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("for each r in [1]\n  map r to out\n    emit = r\n    send.x = 1\n  end\n"
                                     "  emit out\nend\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == '{"emit":1,"send":{"x":1}}\n'


def test_a_number_key_of_an_assignment_says_to_write_str(tmp_path: Path) -> None:
    """`let seen[r.id] = true` (a dedupe by id), r.id a number, failed each record with 'an object key
    must be a string, got number', naming neither the value nor str()."""
    (tmp_path / "f.flow").write_text("let seen = {}\nfor each r in [{id: 7}]\n  let seen[r.id] = true\nend\n")
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 3
    assert ("record failed at f.flow:3:7: an object key must be a string, got number 7: an object's keys are "
            "text, so write [str(...)] to key by its text (\"7\")") in result.stderr, result.stderr


def test_a_date_as_text_beside_a_time_says_to_read_it_with_datetime(tmp_path: Path) -> None:
    """`param since` (no default) given --param since=2024-05-01 is text, and `since + days(1)` said 'cannot
    add string and duration: to put a value into text write "total: {x}"', a hint for text and a number;
    comparing a CSV cell with a datetime said no hint at all. Both say to read the text with datetime()."""
    (tmp_path / "f.flow").write_text("param since\nemit since + days(1)\n")
    added = cli("run", "f.flow", "--param", "since=2024-05-01", "--log-format", "text", cwd=tmp_path)
    assert added.status == 1
    assert ("f.flow:2:12: error: cannot add string and duration: a text is no date or time, even one that reads "
            "like one: write datetime(x) (or date(x)) to read it, as in datetime(since) + days(1)") in added.stderr, \
        added.stderr
    (tmp_path / "g.flow").write_text('for each r in [{at: "2024-05-02T00:00:00Z"}]\n'
                                     '  emit r.at > datetime("2024-05-01T00:00:00Z")\nend\n')
    compared = cli("run", "g.flow", "--log-format", "text", cwd=tmp_path)
    assert compared.status == 3
    assert ("cannot compare string and datetime: a text is no date or time, even one that reads like one: write "
            "datetime(x) (or date(x)) to read it") in compared.stderr, compared.stderr
    (tmp_path / "h.flow").write_text('for each d in [date("2024-05-01")]\n  emit "Due: " + d\nend\n')
    prose = cli("run", "h.flow", "--log-format", "text", cwd=tmp_path)  # text put beside a date: as before
    assert 'cannot add string and date: to put a value into text write "total: {x}"' in prose.stderr, prose.stderr


def test_a_path_in_double_quotes_with_a_placeholder_its_call_fills_says_to_use_single_quotes(
        tmp_path: Path) -> None:
    """`api.get("/customers/{id}", id: 1)` said "unknown name 'id'" with "did you mean 'd'?": the
    double quotes read {id} as a variable, where the argument id: shows a path template was meant."""
    (tmp_path / "f.flow").write_text('use api = http(base_url: "http://127.0.0.1:9")\nlet d = 1\n'
                                     'lookup api.get("/customers/{id}/orders/{d}", id: 7) as c\nemit c\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:3:29: error: unknown name 'id'\n"
            ' 3 | lookup api.get("/customers/{id}/orders/{d}", id: 7) as c\n'
            "   | " + " " * 28 + "^^\n"
            "   = hint: to fill {id} from the argument id:, write the path in single quotes, as a template: "
            "'/customers/{id}/orders/{d}'\n") in result.stderr, result.stderr


def test_a_param_whose_default_is_a_time_or_a_date_reads_iso_text(tmp_path: Path) -> None:
    """`--param since=2024-05-01T00:00:00+05:30` for `param since = datetime(...)` stayed text, and
    `since > d` failed the run ('cannot compare string and datetime', exit 1). Such a param reads ISO 8601
    text as datetime() and date() do (no offset: UTC, whatever the machine's zone); another kind, or
    text that is no time, is refused before the run."""
    (tmp_path / "p.flow").write_text(
        'param since = datetime("2024-01-01T00:00:00Z")\nparam day = today()\n'
        'param back = (job.last_success_at ?? now()) - minutes(10)\nparam tag = "x"\n'
        'emit {since: since, later: since > datetime("2024-03-01T00:00:00Z"), day: day, back: type_of(back), '
        'tag: tag}\n')
    env = {"TZ": "Asia/Kolkata"}
    done = run_cli("run", "p.flow", "--param", "since=2024-05-01T00:00:00", "--param", "day=2024-05-02",
                   "--param", "back=2024-05-01T10:00:00+02:00", "--param", "tag=2024-05-01", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"since": "2024-05-01T00:00:00Z", "later": True, "day": "2024-05-02",
                                       "back": "datetime", "tag": "2024-05-01"}
    for given, said in (("since=yesterday", "param since is a time (its default is one): 'yesterday' is not "
                                            "an ISO 8601 date or time"),
                        ("since=1714564800", "param since is a time (its default is one), got number (as ISO "
                                             "8601 text: --param since=2024-05-01T00:00:00Z)"),
                        ("day=null", "param day is a date (its default is one), got null")):
        refused = run_cli("run", "p.flow", "--param", given, cwd=tmp_path, env=env)
        assert refused.returncode == 2 and said in refused.stderr, (given, refused.stderr)
        assert refused.stdout == "" and "Traceback" not in refused.stderr


def test_check_finds_a_file_format_the_path_does_not_tell_and_a_sql_url_that_is_no_url(tmp_path: Path) -> None:
    """file(path: "x.xlsx") and sql(url: "sqlite:/crm.db") passed `flowlang check` and failed the run at
    its `use` line ('sql needs url: like ...'); both are constants, so check finds them at the value."""
    (tmp_path / "f.flow").write_text('use src = file(path: "export.xlsx")\nuse db = sql(url: "sqlite:/crm.db")\n'
                                     'use ok = file(path: "export.xlsx", format: "csv")\n'
                                     'use later = file(path: env.EXPORT)\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:1:22: error: file cannot tell the format of 'export.xlsx': give format: \"csv\", \"json\", "
            "\"jsonl\" or \"bytes\"") in result.stderr, result.stderr
    assert ("f.flow:2:19: error: sql url: must be a URL like \"sqlite:///sync.db\" or "
            "\"postgresql+psycopg://user@host/db\", got 'sqlite:/crm.db'") in result.stderr
    assert result.stderr.count("error:") == 2  # format: given, or a path from the environment: judged at the run
    (tmp_path / "g.flow").write_text('use db = sql(url: env.DB_URL)\ncall db.query("select 1") as r\n')
    ran = cli("run", "g.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 1 and "sql url: must be a URL like" in ran.stderr and "got null" in ran.stderr


def test_a_base_url_from_an_unset_environment_variable_says_it_is_null(tmp_path: Path) -> None:
    """use api = http(base_url: env.SHOP_URL) with SHOP_URL not set said only "the path '/orders' needs a
    base_url (or use a full http:// URL)", as if none had been written."""
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.FLOWLANG_UNSET_SHOP_URL)\n'
                                     'call api.get("/orders") as o\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1
    assert ("f.flow:2:6: error: the path '/orders' needs a base_url: base_url: is null here (is the environment "
            "variable it is read from set?)") in result.stderr, result.stderr


def test_a_spread_in_an_object_literal_says_to_merge_with_plus(tmp_path: Path) -> None:
    """`[{...i, total: 2} for i in items]` (JavaScript's spread) said "expected an operator, `as`, `batch`,
    `call`, ... (every keyword) ..., found `...`": `...` is a map body's line only."""
    (tmp_path / "f.flow").write_text("let items = [{qty: 1}]\nemit [{...i, total: i.qty * 2} for i in items]\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and "`batch`" not in result.stderr
    assert ("f.flow:2:8: error: `...` copies fields only in a `map` body; an object or list written in an "
            "expression cannot spread\n") in result.stderr, result.stderr
    assert "hint: merge objects with +, the right one winning: o + {total: 2}" in result.stderr
    (tmp_path / "f.flow").write_text("let items = [{qty: 1}]\nemit [i + {total: i.qty * 2} for i in items]\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == '{"qty":1,"total":2}\n'


def test_a_lookup_of_an_operation_that_writes_records_is_refused_by_check(tmp_path: Path) -> None:
    """`lookup out.write({a: 1}) as x` passed check and wrote the record (a lookup is a read, cached per
    run, and not a send: no batch, no ledger, no dry-run rule of sends)."""
    (tmp_path / "f.flow").write_text('use out = file(path: "o.csv")\nuse db = sql(url: "sqlite:///x.db")\n'
                                     'lookup out.write({a: 1}) as x\nlookup db.upsert(table: "t", key: "id") as y\n'
                                     'lookup db.query("select 1 as one") as z\nemit z\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:3:8: error: `lookup` reads (the first record of an answer, cached per run), and out.write() "
            "writes records\n") in result.stderr, result.stderr
    assert "hint: to write a record, send it: send {a: 1} to out.write\n" in result.stderr
    assert 'hint: to write a record, send it: send RECORD to db.upsert(table: "t", key: "id")\n' in result.stderr
    assert result.stderr.count("error:") == 2  # a lookup of a query is a read
    assert not (tmp_path / "o.csv").exists()


def test_a_send_to_an_operation_that_does_not_write_records_is_refused_by_check(tmp_path: Path) -> None:
    """`send r to db.query(...)` passed check and failed every record at run time ('send to db needs
    insert(table: ...) or upsert(...)'), and `send r to f.read` wrote the record to the file."""
    (tmp_path / "f.flow").write_text('use f = file(path: "o.jsonl")\nuse db = sql(url: "sqlite:///x.db")\n'
                                     "for each r in [{a: 1}]\n  send r to f.read\n  send r to db.query(\"select 1\")\n"
                                     '  send r to f\n  send r to db.insert(table: "t")\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and result.stderr.count("error:") == 2, result.stderr
    assert "f.flow:4:13: error: f.read() does not write records, so it cannot take a send\n" in result.stderr
    assert "hint: send to f.write\n" in result.stderr
    assert "f.flow:5:13: error: db.query() does not write records" in result.stderr
    assert "hint: send to db.insert or db.upsert\n" in result.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_check_finds_a_body_or_form_an_http_operation_cannot_take(tmp_path: Path) -> None:
    """`send r to api.post("/x", body: {...})`, `send r to api.post("/x", form: {...})` (the fields
    meant as the form) and `call api.post("/x", form: true)` passed check and failed every record of the
    loop at run time ('in a send, form: true sends the record as form fields ...'), the run exit 3
    (found by a trial of form-encoded POSTs to Stripe). Each written as a constant is a check error at
    its place; values known only at run time and the right forms pass."""
    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: "http://127.0.0.1:9")\nfor each i in [1]\n'
        '  send {i: i} to api.post("/a", body: {a: 1})\n  send {i: i} to api.post("/a", form: {a: i})\n'
        '  call api.post("/a", form: true) as x\n  call api.post("/a", form: {a: i}, body: {b: 1}) as y\n'
        '  send {i: i} to api.post("/a", form: true)\n  send {i: i} to api.post("/a", form: i > 1)\n'
        '  call api.post("/a", form: {a: i}) as z\n  call api.post("/a", form: null, body: {b: 1}) as w\n'
        '  call api.post("/a", form: env.FORM) as v\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and result.stderr.count("error:") == 4, result.stderr
    assert "f.flow:3:33: error: send gives the record as the body; do not pass body:\n" in result.stderr
    assert ("f.flow:4:39: error: in a send, form: true sends the record as form fields (form: takes true or false "
            "here, got object)\n") in result.stderr
    assert "f.flow:5:29: error: form: must be an object of fields, got boolean\n" in result.stderr
    assert "f.flow:6:23: error: post() takes body: (JSON) or form: (form fields), not both\n" in result.stderr


def test_check_finds_an_http_operation_argument_of_the_wrong_kind(tmp_path: Path) -> None:
    """`api.get("/a", timeout: -1)`, `timeout: "5s"`, `query: "x=1"`, `headers: "Accept: x"` and
    `api.get(5)` passed check and failed at run time, every record of a loop one by one, at the whole
    call. Each written as a constant is a check error at the value, with the run's message."""
    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: "http://127.0.0.1:9")\ncall api.get("/a", timeout: -1) as a\n'
        'call api.get("/a", timeout: "5s") as b\ncall api.get("/a", query: "x=1") as c\n'
        'call api.get("/a", headers: "Accept: x") as d\ncall api.get(5) as e\n'
        'call api.get("/a", timeout: 2.5, query: {a: 1}, headers: null) as ok\n'
        'call api.get("/a", timeout: env.T, query: env.Q) as ok2\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and result.stderr.count("error:") == 5, result.stderr
    for said in ("f.flow:2:29: error: timeout: must be a positive number of seconds, got -1\n",
                 "f.flow:3:29: error: timeout: must be a number of seconds, got string\n",
                 "f.flow:4:27: error: query: must be an object, got string\n",
                 "f.flow:5:29: error: headers: must be an object, got string\n",
                 "f.flow:6:14: error: get() needs the path as a string, got number\n"):
        assert said in result.stderr, (said, result.stderr)


def test_len_of_a_secret_says_why_it_is_refused(tmp_path: Path) -> None:
    """len(secret.TOKEN) said "len() needs a list, object, string or bytes, got secret", as if a secret
    were not text: it is refused on purpose, since its length would tell something of it."""
    (tmp_path / "f.flow").write_text("let t = secret.TOKEN\nemit len(t)\n")  # a variable: at run time
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"TOKEN": "s3cr3t-value-42"})
    assert result.status == 1 and result.stdout == ""
    assert ("f.flow:2:6: error: len() does not measure a secret: its length would tell something of it") \
        in result.stderr, result.stderr
    assert "15" not in result.stderr and "s3cr3t" not in result.stderr


def test_len_of_a_secret_written_in_the_call_is_refused_by_check(tmp_path: Path) -> None:
    """len(secret.TOKEN) passed `flowlang check` ('f.flow: ok') and failed every run at the call; a
    secret written in the call (alone, interpolated or joined with +) is refused at check, at it."""
    (tmp_path / "f.flow").write_text('emit len(secret.TOKEN)\nemit len("Bearer {secret.TOKEN}")\n'
                                     'emit len("k=" + secret.TOKEN)\nemit len("plain")\n')
    for command in ("check", "run"):
        result = cli(command, "f.flow", "--log-format", "text", cwd=tmp_path, env={"TOKEN": "s3cr3t-value-42"})
        assert result.status == 2 and result.stdout == "", result.stderr
        for line in (1, 2, 3):
            assert (f"f.flow:{line}:10: error: len() does not measure a secret: its length would tell something "
                    "of it") in result.stderr, result.stderr
        assert result.stderr.count("error:") == 3 and "s3cr3t" not in result.stderr
    (tmp_path / "f.flow").write_text('emit len(secret.TOKEN ?? "none")\n')  # a default may be plain: the run judges
    assert cli("check", "f.flow", cwd=tmp_path).status == 0


def test_an_index_past_a_list_of_one_item_says_item(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text("let l = [1]\nlet l[3] = 2\n")
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1
    assert "f.flow:2:5: error: list index 3 is out of range (the list has 1 item)\n" in result.stderr, result.stderr


def test_check_finds_an_operator_or_a_loop_on_constants_of_the_wrong_type(tmp_path: Path) -> None:
    """`"a" * 3` and `for each x in 5` passed flowlang check and failed when they ran, though both are
    constants; check says so at the operator or the constant. The same from the data is left to the run,
    and so is a constant's value problem (1 / 0, which a try may catch)."""
    (tmp_path / "f.flow").write_text('for each x in 5\n  emit x\nend\nemit "a" * 3\nemit [y for y in "ab"]\n'
                                     'emit [1, 2] + [3]\ntry\n  emit 1 / 0\non error\n  emit "caught"\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors == ["f.flow:1:15: error: cannot loop over number",
                      "f.flow:4:10: error: cannot multiply string and number",
                      "f.flow:5:18: error: cannot loop over string"], result.stderr
    (tmp_path / "g.flow").write_text('for each r in input\n  emit r.s * 3\nend\ntry\n  emit 1 / 0\non error\n'
                                     '  emit "caught"\nend\n')
    assert cli("check", "g.flow", cwd=tmp_path).status == 0
    (tmp_path / "in.json").write_text('[{"s": "a"}]')
    ran = cli("run", "g.flow", "--input", "in.json", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 3, ran.stderr
    assert "record failed at g.flow:2:12: cannot multiply string and number" in ran.stderr, ran.stderr
    assert json.loads(ran.stdout) == "caught"


def test_a_retry_names_the_errors_that_failed_again_in_its_summary(tmp_path: Path) -> None:
    # before: "5 records failed at g.flow:2:3: no (first: a record, a record, a record, ...)": a replayed
    # record has no place in a loop of this run, and nothing else named it
    (tmp_path / "g.flow").write_text("for each o in input\n  fail \"no\"\nend\n")
    (tmp_path / "in.json").write_text("[{\"id\": 7}, {\"id\": 8}, {}, {}, {}]")
    first = cli("run", "g.flow", "--input", "in.json", "--log-format", "text", "--quiet", cwd=tmp_path)
    assert first.status == 3, first.stderr
    again = cli("retry", "g.flow", "--log-format", "text", cwd=tmp_path)
    assert again.status == 3, again.stderr
    assert "a record" not in again.stderr
    assert ("5 records failed at g.flow:2:3: no (first: error 1 (key 7), error 2 (key 8), error 3, ...)"
            in again.stderr), again.stderr


def test_where_any_name_may_stand_the_message_says_a_name_not_every_keyword(tmp_path: Path) -> None:
    """`o.` and `{,}` said "expected an operator, `as`, `batch`, `call`, `drop`, `each`, ... (every keyword)
    ..., `with` or a name": after `.`, as a key or an argument's name any keyword is a name, so it says so
    once. And `.5` and `1.` (numbers JavaScript and Python take) say how a number is written."""
    cases = {
        "let o = {a: 1}\nemit o.\n": "f.flow:2:8: error: expected a name, found the end of the line\n",
        "emit {,}\n": "f.flow:1:7: error: expected `}`, a name or a string, found `,`\n",
        "emit lower(,)\n": "f.flow:1:12: error: expected an expression or `)`, found `,`\n",
        "let x = .5 + 1\n": "f.flow:1:9: error: a number needs a digit before its point: write 0.5\n",
        "let x = 1. + 1\n": "f.flow:1:9: error: a number needs a digit after its point: write 1.0 (or 1)\n",
    }
    for text, message in cases.items():
        (tmp_path / "f.flow").write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and message in result.stderr and "`batch`" not in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("let o = {end: 0.5, each: 1}\nemit [o.end, o.each, 5.0]\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == "[0.5,1,5.0]\n"


LOOKUP_AS_LIST = """use api = http(base_url: "{url}")
for each row in [{{email: "a@x.com"}}]
  lookup api.get("/customers", query: {{email: row.email}}) as found
  if len(found) == 0
    fail "none"
  end
  emit found[0].id
  lookup api.get("/customers", query: {{email: row.email}}) as found
  let found = [found]
  emit found[0].id
end
"""


def test_a_loop_over_a_lookup_result_is_a_check_warning(tmp_path: Path) -> None:
    # 'for each c in found' after a lookup walked the customer's field names ("id", "email"), said ok
    (tmp_path / "f.flow").write_text('use api = http(base_url: "http://127.0.0.1:9")\nfor each r in [1]\n'
                                     '  lookup api.get("/c") as found\n  for each c in found\n    emit c\n  end\n'
                                     '  for each k, v in found\n    emit k\n  end\nend\n')
    checked = cli("check", "f.flow", cwd=tmp_path)
    assert checked.status == 0
    assert ("f.flow:4:17: warning: 'found' is what a `lookup` found: the first record of the answer (an object) or "
            "null, not a list, so a loop over it walks the record's field names") in checked.stderr
    assert "= hint: to loop over every record of the answer, give it by `call ... as found`" in checked.stderr
    assert checked.stderr.count("warning:") == 1  # `for each k, v in found` walks its fields on purpose


def test_a_lookup_result_read_as_a_list_is_a_check_warning_and_a_clear_record_error(tmp_path: Path) -> None:
    # a newcomer's `if len(found) == 0` and `found[0].id` after a lookup (one record, not a list): check said ok and
    # the record failed with 'an object key must be a string, got number', naming neither the lookup nor the list
    from fakeapi import FakeApi
    with FakeApi({"customers": [{"id": 7, "email": "a@x.com"}]}) as api:
        (tmp_path / "f.flow").write_text(LOOKUP_AS_LIST.format(url=api.url))
        checked = cli("check", "f.flow", cwd=tmp_path)
        assert checked.status == 0
        assert ("f.flow:4:6: warning: 'found' is what a `lookup` found: the first record of the answer (an object) or "
                "null, not a list, so len(found) counts its fields, not records") in checked.stderr
        assert "= hint: to ask whether it found one: if found == null" in checked.stderr
        assert ("f.flow:7:8: warning: 'found' is what a `lookup` found: the first record of the answer (an object) or "
                "null, not a list, so found[0] is no record of it") in checked.stderr
        assert checked.stderr.count("warning:") == 2  # not at line 10, after `let found = [found]`
        ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 3
    assert ("record failed at f.flow:7:8: an object key must be a string, got number 0: this is an object, not a list "
            "(a `lookup` gives one record, not a list)") in ran.stderr


def test_a_send_clause_out_of_order_says_the_order_and_shows_the_line_fixed(tmp_path: Path) -> None:
    # 'send r to db.insert(table: "t") batch 4 once' said only "expected `as` or the end of the line, found `once`"
    (tmp_path / "f.flow").write_text('use db = sql(url: "sqlite:///x.db")\nfor each r in [{id: 1}]\n'
                                     '  send r to db.insert(table: "t") batch 4 once\n'
                                     '  send r to db.upsert(table: "t", key: "id") as x if changed\n'
                                     '  send r to db.upsert(table: "t", key: "id") as y key r.id\n'
                                     '  send r to db.insert(table: "t") batch 4 once as made\nend\n')
    for line, fixed in ((3, 'send r to db.insert(table: "t") once batch 4'),
                        (4, 'send r to db.upsert(table: "t", key: "id") if changed as x'),
                        (5, 'send r to db.upsert(table: "t", key: "id") key r.id as y'),
                        (6, 'send r to db.insert(table: "t") once batch 4 as made')):
        text = (tmp_path / "f.flow").read_text().splitlines()
        (tmp_path / "g.flow").write_text("\n".join([*text[:2], text[line - 1], "end"]) + "\n")
        checked = cli("check", "g.flow", cwd=tmp_path)
        assert checked.status == 2
        clause = {3: "once", 4: "if changed", 5: "key", 6: "once"}[line]
        said = "`key` goes before `as` in a send: you wrote `as ... key`" if clause == "key" else \
            f"`{clause}` goes before `as` and `batch` in a send"
        assert f"error: {said}" in checked.stderr, checked.stderr
        order = "the clauses go in this order: send RECORD to DEST [key EXPR] [once | if changed] [as NAME] [batch N]"
        assert (f"= hint: {fixed}  ({order})" if fixed else f"= hint: {order}") in checked.stderr
        if fixed and line != 5:  # the hint is a line that checks (a key without once: another error, saying so)
            (tmp_path / "h.flow").write_text("\n".join([*text[:2], "  " + fixed, "end"]) + "\n")
            assert cli("check", "h.flow", cwd=tmp_path).status == 0, fixed


@pytest.mark.parametrize(("line", "said", "fixed"), [
    ("send r to out once key r.id", "`key` goes before `once` in a send: you wrote `once ... key`",
     "send r to out key r.id once"),
    ("send r to out if changed key r.id", "`key` goes before `if changed` in a send: you wrote `if changed ... key`",
     "send r to out key r.id if changed"),
    ('send r to out once key "{r.id}:{r.sku}" as made batch 2', "`key` goes before `once` in a send",
     'send r to out key "{r.id}:{r.sku}" once as made batch 2'),
])
def test_a_key_after_once_names_once_and_shows_the_line_fixed(tmp_path: Path, line: str, said: str,
                                                              fixed: str) -> None:
    """`send r to out once key r.id` said "`key` goes before `as` and `batch` in a send", neither of which
    the line has: it names the clause written before the key, and the hint is the line with the key moved."""
    (tmp_path / "g.flow").write_text(f'use out = file(path: "o.jsonl")\nfor each r in [{{id: 1}}]\n  {line}\nend\n')
    checked = cli("check", "g.flow", cwd=tmp_path)
    assert checked.status == 2 and f"g.flow:3:{line.index(' key ') + 4}: error: {said}" in checked.stderr, \
        checked.stderr
    assert f"= hint: {fixed}  (the clauses go in this order: " in checked.stderr, checked.stderr
    (tmp_path / "h.flow").write_text(f'use out = file(path: "o.jsonl")\nfor each r in [{{id: 1}}]\n  {fixed}\nend\n')
    assert cli("check", "h.flow", cwd=tmp_path).status == 0, fixed


@pytest.mark.parametrize(("line", "said", "fixed"), [
    ("send r to out once r.id", "`once` takes no expression: the record's key is `key r.id`, before `once`",
     "send r to out key r.id once"),
    ('send r to out if changed "{r.id}:{r.sku}" as made', "`if changed` takes no expression: the record's key is "
     '`key "{r.id}:{r.sku}"`, before `if changed`', 'send r to out key "{r.id}:{r.sku}" if changed as made'),
    ("send r to out batch 2 once r.id", "`once` goes before `as` and `batch` in a send, and takes no expression: "
     "the record's key is `key r.id`, before `once`", "send r to out key r.id once batch 2"),
    ("send r to out key r.id once r.id", "`once` takes no expression: the send's `key` clause gives the record's key",
     "send r to out key r.id once"),
])
def test_an_expression_after_once_is_taken_for_the_key_it_means(tmp_path: Path, line: str, said: str,
                                                                fixed: str) -> None:
    """`send r to out once r.id` said "expected `as`, `batch` or the end of the line, found `r`" and "did you
    forget an operator or a comma?"; `... batch 2 once r.id` showed the broken line `... once batch 2 r.id`
    (found by a trial of the sql connectors). The hint is the line with the key as `key EXPR`, and it checks."""
    (tmp_path / "g.flow").write_text(f'use out = file(path: "o.jsonl")\nfor each r in [{{id: 1}}]\n  {line}\nend\n')
    checked = cli("check", "g.flow", cwd=tmp_path)
    assert checked.status == 2 and f"error: {said}\n" in checked.stderr, checked.stderr
    assert f"= hint: {fixed}  (the clauses go in this order: " in checked.stderr, checked.stderr
    (tmp_path / "h.flow").write_text(f'use out = file(path: "o.jsonl")\nfor each r in [{{id: 1}}]\n  {fixed}\nend\n')
    assert cli("check", "h.flow", cwd=tmp_path).status == 0, fixed


def test_a_typographic_quote_or_a_letter_outside_ascii_gets_a_hint(tmp_path: Path) -> None:
    """`let s = “hi”` (quotes pasted from a document) and `o.größe` (a field named in German) said only
    "unexpected character '“'" / "'ö'": the hint says to use straight quotes, and how to read such a field."""
    cases = {
        "let s = “hi”\n": ("f.flow:1:9: error: unexpected character '“'",
                            'hint: write strings with straight quotes: "..."'),
        "let o = {}\nemit o.a.größe\n": ("f.flow:2:12: error: unexpected character 'ö'",
                                         "hint: names are written with A-Z, a-z, 0-9 and _; for the field 'größe' "
                                         'write o.a["größe"]'),
        "emit {straße: 1}\n": ("f.flow:1:11: error: unexpected character 'ß'",
                               "hint: names are written with A-Z, a-z, 0-9 and _; for the key 'straße' write "
                               '"straße": ...'),
        "let café = 1\n": ("f.flow:1:8: error: unexpected character 'é'", "hint: names are written with A-Z, a-z, "
                           "0-9 and _\n"),
    }
    for text, (message, hint) in cases.items():
        (tmp_path / "f.flow").write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and message in result.stderr and hint in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text('let o = {"größe": 3}\nemit o["größe"]\n')
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == "3\n"


def test_a_chained_comparison_says_comparisons_do_not_chain(tmp_path: Path) -> None:
    """`if 1 < x <= 10` (Python's chained comparison) said "expected `??`, `and`, `or` or the end of the
    line, found `<=`"; it says that comparisons do not chain, and how to write it."""
    (tmp_path / "f.flow").write_text("let x = 5\nif 1 < x <= 10\n  emit x\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert "f.flow:2:10: error: comparisons do not chain: `<=` cannot follow another comparison\n" in result.stderr
    assert "hint: write each one and join them: 1 < x and x < 10" in result.stderr
    (tmp_path / "f.flow").write_text("let x = 5\nif 1 < x and x <= 10\n  emit (x < 6) == true\nend\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == "true\n"


def test_a_log_level_from_another_logger_says_which_levels_there_are(tmp_path: Path) -> None:
    """`log warning "x"` (Python's logging says warning) said "expected an operator, `(` or the end of the
    line, found the string "x"": it names the levels and the one to write."""
    (tmp_path / "f.flow").write_text('let n = 1\nlog warning "low stock: {n}"\nlog critical "disk"\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert ("f.flow:2:5: error: `warning` is not a log level: the levels are debug, info, warn and error\n"
            in result.stderr), result.stderr
    assert 'hint: log warn "low stock: {n}"' in result.stderr
    (tmp_path / "f.flow").write_text('let warning = "a name"\nlog warning\nlog warn "x"\n')
    assert cli("run", "f.flow", "--log-format", "text", cwd=tmp_path).status == 0


def test_operators_and_constants_of_other_languages_say_how_flowlang_writes_them(tmp_path: Path) -> None:
    """`a && b`, `!a`, `c ? a : b`, `a === b`, `let n += 1`, `n++` and `None` / `True` said "unexpected
    character '&'", "expected `.`, `=` or `[`, found `+`" or "unknown name 'None'" with no hint; each
    says what flowlang writes instead."""
    cases = {
        "let a = true && false\n": ("1:14: error: unexpected character '&'", "hint: flowlang writes `and`: a and b"),
        "let a = true || false\n": ("1:14: error: unexpected character '|'", "hint: flowlang writes `or`: a or b"),
        "let a = !true\n": ("1:9: error: unexpected character '!'", "hint: flowlang writes `not`: not a (and a != b)"),
        "let n = 1\nlet a = n > 1 ? 2 : 3\n": ("2:15: error: unexpected character '?'",
                                             "hint: flowlang writes a conditional as: if c then a else b"),
        "let a = 1 === 1\n": ("1:11: error: `===` is not an operator: `==` compares values whole", None),
        "let n = 1\nlet n += 1\n": ("2:7: error: `+=` is not an operator: write the new value whole",
                                   "hint: let n = n + 1"),
        "let n = 1\nlet m = n++\n": ("2:10: error: `++` is not an operator", "hint: let n = n + 1"),
        "let n = 1\nlet m = n--\n": ("2:10: error: `--` is not an operator", "hint: let n = n - 1"),
        "let a = None\n": ("1:9: error: unknown name 'None'", "hint: flowlang writes it null"),
        "let a = [True, nil]\n": ("1:10: error: unknown name 'True'", "hint: flowlang writes it true"),
    }
    for text, (message, hint) in cases.items():
        (tmp_path / "f.flow").write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and f"f.flow:{message}" in result.stderr, result.stderr
        assert hint is None or hint in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("let n = 1\nlet None = 2\nemit [n - -1, None, not (n != 1), n ?? 0]\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == "[2,2,true,1]\n"


def test_a_block_written_in_braces_says_blocks_end_with_end(tmp_path: Path) -> None:
    """`if ok {` and `function f(a) {` (C, JavaScript) said "expected the end of the line, found `{`"."""
    for text, message in {"let ok = true\nif ok {\n  emit 1\nend\n": "2:7: error: an `if` block is not written in "
                          "braces: its lines follow on the next lines",
                          "function f(a) {\n  return a\nend\n": "1:15: error: a `function` block is not written",
                          "for each i in [1] {\n  emit i\nend\n": "1:19: error: a `for each` block is not written"
                          }.items():
        (tmp_path / "f.flow").write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and f"f.flow:{message}" in result.stderr, result.stderr
        assert "hint: and `end` closes it; indentation does not matter" in result.stderr
    (tmp_path / "f.flow").write_text("if {a: 1}.a\n  emit {b: 2}\nend\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == '{"b":2}\n'


def test_other_languages_loop_words_and_a_key_after_parallel_get_flowlangs(tmp_path: Path) -> None:
    # each said only "expected `call`, `emit`, ... found `continue`" or "expected the end of the line, found `key`"
    cases = {
        "for each o in [1]\n  continue\nend\n": ("f.flow:2:3: error: flowlang has no `continue`: write `skip`",
                                                  "= hint: skip goes on with the loop's next record"),
        "for each o in [1]\n  if o > 0\n    break\n  end\nend\n": ("f.flow:3:5: error: flowlang has no `break`: "
                                                                 "write `stop`", "stop leaves the loop"),
        "for each o in [1] parallel 4 key o\n  emit o\nend\n":
            ("f.flow:1:30: error: `key` goes before `parallel` in a `for each` line",
             "= hint: for each o in [1] key o parallel 4"),
    }
    for text, (message, hint) in cases.items():
        (tmp_path / "f.flow").write_text(text)
        checked = cli("check", "f.flow", cwd=tmp_path)
        assert checked.status == 2, text
        assert message in checked.stderr and hint in checked.stderr, checked.stderr
    (tmp_path / "f.flow").write_text("let next = 1\nfor each o in [1] key o parallel 4\n  emit next\nend\n")
    assert cli("check", "f.flow", cwd=tmp_path).status == 0


def test_a_field_other_languages_give_a_list_or_a_time_names_the_function(tmp_path: Path) -> None:
    """`rows.length` and `d.year` said only "cannot read field 'length' of list": the message names len()
    and format_date(), as the record that fails is stored with it."""
    (tmp_path / "f.flow").write_text('for each r in [{items: [1, 2], at: datetime("2024-05-01T10:00:00Z")}]\n'
                                     "  emit r.items.length + 1\nend\nemit today().year\n")
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1
    assert ("record failed at f.flow:2:16: cannot read field 'length' of list: values have no fields; len(x) "
            "gives its length") in result.stderr, result.stderr
    assert ("f.flow:4:14: error: cannot read field 'year' of date: values have no fields; "
            'format_date(d, "%Y") gives it as text') in result.stderr


def test_a_parallel_count_below_one_is_shown_at_the_count(tmp_path: Path) -> None:
    """`for each r in rows parallel n` with --param n=0 showed its error under the loop's list (`rows`),
    not under the `n` that holds the 0."""
    (tmp_path / "f.flow").write_text("param n = 4\nlet rows = [1, 2]\nfor each r in rows parallel n\n  emit r\nend\n")
    result = cli("run", "f.flow", "--param", "n=0", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1
    assert ("f.flow:3:29: error: parallel needs a whole number of at least 1, got 0\n"
            " 3 | for each r in rows parallel n\n"
            "   |                             ^\n") in result.stderr, result.stderr


def test_an_end_or_else_that_belongs_to_no_block_says_so(tmp_path: Path) -> None:
    """One `end` too many said "expected `call`, `emit`, `fail`, `flow`, `for`, `function`, `if`, `import` or
    another token, found `end`" (and in the REPL "`end` is a keyword and cannot name a variable"); an
    `else` after its `if` had ended the same."""
    stray_end = "this `end` closes no block: each block (for each, if, try, map, function) has one `end`"
    (tmp_path / "f.flow").write_text("for each i in [1]\n  emit i\nend\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and f"f.flow:4:1: error: {stray_end}\n" in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("if true\n  emit 1\nend\nelse\n  emit 2\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert ("f.flow:4:1: error: this `else` belongs to no block: it goes inside an `if` block, before its `end`\n"
            in result.stderr), result.stderr
    piped = cli("repl", stdin="emit 1\nend\nlet end = 2\n", cwd=tmp_path)
    assert f"<stdin>:2:1: error: {stray_end}\n" in piped.stderr
    assert "<stdin>:3:5: error: `end` is a keyword and cannot name a variable" in piped.stderr


def test_a_try_without_on_error_says_what_it_needs(tmp_path: Path) -> None:
    """`try ... end` with no `on error` said "expected `on`, found `end`"."""
    (tmp_path / "f.flow").write_text("try\n  emit 1 / 0\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    assert "f.flow:3:1: error: a `try` block needs its `on error` part before this `end`\n" in result.stderr
    assert "hint: try ... on error as e ... end" in result.stderr
    (tmp_path / "f.flow").write_text("try\n  emit 1 / 0\non error as e\n  emit e.kind\nend\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == '"value"\n'


def test_a_line_that_is_no_statement_says_what_starts_one(tmp_path: Path) -> None:
    """`print("x")`, `x = 2`, `lower(x)` and `retrun 1` at the start of a line said "expected `call`, `emit`,
    `fail`, `flow`, `for`, `function`, `if`, `import` or another token, found `print`" with the hint "one
    statement per line; did you forget an operator or a comma?"."""
    cases = {
        'print("x")\n': ("1:1: error: flowlang has no `print`: a line of a flow is a statement",
                         "hint: emit x to output a value (a record on stdout), log x to write a log line"),
        "let x = 1\nx = 2\n": ("2:1: error: an assignment starts with `let`", "hint: let x = 2"),
        "let o = {}\no.a = 1\n": ("2:1: error: an assignment starts with `let`", "hint: let o.a = 1"),
        "let x = 1\nlower(x)\n": ("2:1: error: a line of a flow starts with a statement (let, emit, call, send, "
                                  "log, if, for each, ...): `lower` does not start one",
                                  "hint: emit lower(x) to output it, or let NAME = lower(x) to keep it"),
        "function f()\n  retrun 1\nend\n": ("2:3: error: `retrun` does not start a statement; did you mean "
                                            "`return`?", "hint: return 1"),
    }
    for text, (message, hint) in cases.items():
        (tmp_path / "f.flow").write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and f"f.flow:{message}\n" in result.stderr and hint in result.stderr, result.stderr
        assert "did you forget an operator" not in result.stderr
    assert cli("repl", stdin="let x = 'A'\nlower(x)\n", cwd=tmp_path).stdout == '"a"\n'  # the REPL shows values


def test_a_named_argument_or_a_key_written_with_equals_says_to_write_a_colon(tmp_path: Path) -> None:
    """`http(base_url = "...")` and `{a = 1}` (Python's keyword arguments, a dict written as in Lua)
    said "expected an operator, `(`, `,`, `)` or `:`, found `=`"."""
    cases = {
        'use api = http(base_url = "https://x.example")\n': ("1:25: error: a named argument takes `:`, not `=`",
                                                             'hint: base_url: "https://x.example"'),
        "emit [{a: 1, b = 2}]\n": ("1:16: error: an object's key takes `:`, not `=`", "hint: b: 2"),
    }
    for text, (message, hint) in cases.items():
        (tmp_path / "f.flow").write_text(text)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert result.status == 2 and f"f.flow:{message}\n" in result.stderr and hint in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("let x = 1\nif x = 1\n  emit x\nend\n")
    assert "`=` gives a name a value; to compare, write `==`" in cli("check", "f.flow", cwd=tmp_path).stderr


def test_json_written_in_a_double_quoted_string_says_how_to_write_a_brace(tmp_path: Path) -> None:
    """`json_parse("{\\"a\\": 1}")` said only "in string interpolation: unexpected character '\\\\'": the `{`
    of a "..." string starts a value; the hint says to write \\{ or use '...' quotes."""
    (tmp_path / "f.flow").write_text('let j = json_parse("{\\"a\\": 1}")\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and "f.flow:1:22: error: in string interpolation: unexpected character" in result.stderr
    assert ("hint: a { in a \"...\" string starts a value: write \\{ for a brace, or the text in '...' quotes "
            "(no interpolation): json_parse('{\"a\": 1}')") in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("emit [json_parse('{\"a\": 1}'), json_parse(\"\\{\\\"b\\\": 2}\")]\n")
    assert cli("run", "f.flow", "--quiet", cwd=tmp_path).stdout == '{"a":1}\n{"b":2}\n'  # a list of records: each


def test_fail_of_null_or_of_empty_text_says_it_had_no_message(tmp_path: Path) -> None:
    """`fail r.reason` for a record without a reason (`fail null`) failed it with an empty message:
    'record failed at f.flow:3:3: ' in the log, and e.message "" for a try."""
    (tmp_path / "f.flow").write_text('for each r in [{id: 1}, {id: 2, reason: ""}, {id: 3, reason: "late"}]\n'
                                     '  try\n    fail r.reason\n  on error as e\n    emit e.message\n  end\n'
                                     'end\nfail null\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.stdout.splitlines() == ['"failed with no message (`fail` was given null)"',
                                          '"failed with no message (`fail` was given an empty text)"', '"late"']
    assert result.status == 1 and "f.flow:8:1: error: failed with no message (`fail` was given null)" in result.stderr


def test_a_colon_inside_brackets_of_a_loop_line_is_not_called_a_blocks_colon(tmp_path: Path) -> None:
    """`for each o in orders[0:9]` (a Python slice) said "no colon after a `for` line: the block starts on
    the next line", pointing at the slice's colon, where the line had none to take away; the same slice
    in a `let` says what the parser expected. The lesson is for a colon that ends the line's header."""
    (tmp_path / "f.flow").write_text("let xs = [1, 2, 3]\nfor each x in xs[0:2]\n  emit x\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2 and "no colon after" not in result.stderr, result.stderr
    assert "f.flow:2:19: error: expected an operator or `]`, found `:`" in result.stderr, result.stderr
    (tmp_path / "f.flow").write_text("for each x in [1, 2]:\n  emit x\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert "f.flow:1:21: error: no colon after a `for` line: the block starts on the next line" in result.stderr


def test_check_finds_a_builtin_a_field_or_a_negation_on_constants_of_the_wrong_type(tmp_path: Path) -> None:
    """`lower(5)`, `round(total, "2")`-like calls of constants, `"abc".length` and `-"a"` passed flowlang
    check (found by a new-user trial of the checker) and failed each time they ran. check says each at
    its place, with the message the run gives; a value's problem (date("2024-13-01")) and the same from
    the data are left to the run."""
    (tmp_path / "f.flow").write_text('emit lower(5)\nemit round(1.5, "2")\nemit len(5)\nemit "abc".length\n'
                                     'emit -"a"\nemit days("1")\nemit 5 .total\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors == [
        "f.flow:1:6: error: lower() needs a string, got number",
        "f.flow:2:6: error: round()'s places must be a whole number, got string",
        "f.flow:3:6: error: len() needs a list, object, string or bytes, got number",
        "f.flow:4:12: error: cannot read field 'length' of string: values have no fields; len(x) gives its length",
        "f.flow:5:6: error: cannot negate string",
        "f.flow:6:6: error: days() needs a number, got string that looks like a number (CSV cells are text: use "
        "number(...) to convert it)",
        "f.flow:7:9: error: cannot read field 'total' of number"], result.stderr
    (tmp_path / "g.flow").write_text('for each r in input\n  emit lower(r.n)\nend\nemit lower(null)\nemit -(-1.5)\n'
                                     'emit {a: 1}.a\nemit null.a\ntry\n  emit date("2024-13-01")\non error\n'
                                     '  emit "caught"\nend\nemit len(range(3))\n')
    assert cli("check", "g.flow", cwd=tmp_path).status == 0
    (tmp_path / "in.json").write_text('[{"n": 5}]')
    ran = cli("run", "g.flow", "--input", "in.json", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 3, ran.stderr
    assert "record failed at g.flow:2:8: lower() needs a string, got number" in ran.stderr, ran.stderr


def test_a_number_key_into_a_group_by_says_its_keys_are_text(tmp_path: Path) -> None:
    # docs/cookbook.md's pitfall: group_by(rows, "order_id")[o.id] with o.id a number failed with 'this is an object,
    # not a list (a `lookup` gives one record, not a list)', naming neither the text key nor str()
    (tmp_path / "f.flow").write_text('let g = group_by([{a: 1}], "a")\nemit g[1]\nemit g[2 - 2]\n')
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 1
    assert ('f.flow:2:6: error: an object key must be a string, got number 1: the object has the key "1", so write '
            "[str(...)] (group_by and index_by key by the value as text)") in ran.stderr
    (tmp_path / "f.flow").write_text('let g = group_by([{a: 1}], "a")\nemit g[0]\n')
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert "got number 0: this is an object, not a list" in ran.stderr


def test_a_field_of_a_text_an_api_answered_shows_the_texts_start(tmp_path: Path) -> None:
    """`http()` gives an answer that is not JSON as text (a maintenance page, text/html), so `c.email` of a
    lookup answered so said only "cannot read field 'email' of string", which told nothing of the page (found
    by a REST connectors trial). The message shows the text's start: what the API answered instead."""
    from fakeapi import FakeApi

    page = "<!DOCTYPE html><html><head><title>Down for maintenance</title></head><body>" + "x" * 500
    (tmp_path / "f.flow").write_text('use api = http(base_url: env.API)\nfor each n in range(1)\n'
                                     '  lookup api.get("/short") as a\n  lookup api.get("/long") as b\n'
                                     '  emit a.email\nend\nfor each n in range(1)\n  lookup api.get("/long") as b\n'
                                     '  emit b.email\nend\n')
    with FakeApi() as api:
        api.route("GET", "/short", lambda req: (200, {"Content-Type": "text/html"}, b"<html>Sign in</html>"))
        api.route("GET", "/long", lambda req: (200, {"Content-Type": "text/html"}, page.encode()))
        result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"API": api.url})
    assert result.status == 3, result.stderr
    assert "f.flow:5:10: cannot read field 'email' of string \"<html>Sign in</html>\"\n" in result.stderr
    assert ("f.flow:9:10: cannot read field 'email' of string \"<!DOCTYPE html><html><head><title>Down for "
            "maintenance</titl\" (the start of 575 characters)\n") in result.stderr, result.stderr
