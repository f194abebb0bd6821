"""Mistakes of someone coming from another language or an integration platform, found by a new-user trial
of ten small integrations: each is said before anything runs, at its place, with what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli


def check(tmp_path: Path, text: str) -> str:
    (tmp_path / "f.flow").write_text(text)
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(("text", "said", "hint"), [
    # other languages' block closers: "`endif` does not start one", hint "emit endif to output it"
    ("let x = 1\nif x > 0\n  emit 1\nendif\n", "f.flow:4:1: error: `endif` is not a word of flowlang: every block "
     "(for each, if, try, map, function) closes with `end`", "= hint: end"),
    ("for each x in [1]\n  emit x\ndone\n", "f.flow:3:1: error: `done` is not a word of flowlang", "= hint: end"),
    # "did you mean `function`?" before
    ("function f(a)\n  return a\nendfunction\n", "f.flow:3:1: error: `endfunction` is not a word of flowlang",
     "= hint: end"),
    # "expected the end of the line, found `for`"
    ("for each x in [1]\n  emit x\nend for\n", "f.flow:3:5: error: `end` closes a block alone: write `end`, "
     "without `for`", "= hint: end"),
    ("let x = 1\nif x > 0\n  emit 1\nend if\n", "f.flow:4:5: error: `end` closes a block alone", "= hint: end"),
    # "does not start one", hint "emit foreach x in xs to output it"
    ("let xs = [1]\nforeach x in xs\n  emit x\nend\n", "f.flow:2:1: error: flowlang writes a loop `for each`, in "
     "two words", "= hint: for each x in xs"),
    ("let xs = [1]\nforeach (xs as x)\n  emit x\nend\n", "f.flow:2:1: error: flowlang writes a loop `for each`",
     "= hint: for each x in xs"),
    ("let x = 1\nwhile x < 3\n  let x = x + 1\nend\n", "f.flow:2:1: error: flowlang has no `while` loop: a loop "
     "goes over a list, `for each x in xs`", "= hint: for each x in xs ... end"),
    ("def f(a)\n  return a\nend\n", "f.flow:1:1: error: flowlang writes a function `function NAME(args)`",
     "= hint: function f(a)"),
    ("try\n  emit 1\ncatch e\n  emit 2\nend\n", "f.flow:3:1: error: flowlang writes the handler of a `try` block "
     "`on error as e`", "= hint: try ... on error as e ... end"),
    # "expected `as` or the end of the line, found `e`", hint "did you forget an operator or a comma?"
    ("try\n  emit 1\non error e\n  emit 2\nend\n", "f.flow:3:10: error: the error of an `on error` is named with "
     "`as`", "= hint: on error as e"),
    # "expected the end of the line, found `then`", no hint
    ("let x = 1\nif x > 0 then\n  emit 1\nend\n", "f.flow:2:10: error: an `if` block has no `then`: its lines "
     "follow on the next lines, and `end` closes it", "= hint: if x > 0\n"),
    ("let x = 1\nif x > 0 then emit 1\n", "f.flow:2:10: error: an `if` block has no `then`",
     "= hint: if x > 0 on its line, then 'emit 1' on the next, then `end`"),
    # "expected an operator, `(`, `key`, `parallel` or the end of the line, found `do`"
    ("for each x in [1] do\n  emit x\nend\n", "f.flow:1:19: error: no `do` after a `for each` line",
     "= hint: for each x in [1]  (the block ends with `end`)"),
    # the hint was cut at the last "do" of the line: 'for each x in [1] do emit "  (the block ends with `end`)'
    ('for each x in [1] do emit "done"\n', "f.flow:1:19: error: no `do` after a `for each` line",
     """= hint: for each x in [1] on its line, then 'emit "done"' on the next, then `end`"""),
    # a comment after the word was given as a line of the block: "then '# why' on the next"
    ("for each x in [1] do  # why\n  emit x\nend\n", "f.flow:1:19: error: no `do` after a `for each` line",
     "= hint: for each x in [1]  (the block ends with `end`)"),
    ("let x = 1\nif x > 0 then # why\n  emit 1\nend\n", "f.flow:2:10: error: an `if` block has no `then`",
     "= hint: if x > 0\n"),
])
def test_a_block_written_as_another_language_writes_it_says_what_flowlang_writes(
        tmp_path: Path, text: str, said: str, hint: str) -> None:
    stderr = check(tmp_path, text)
    assert said in stderr and hint in stderr, stderr
    assert "does not start one" not in stderr and "did you mean `function`" not in stderr


def test_names_like_those_words_are_still_names(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text("let done = 1\nlet catch = {x: 2}\nlet fi = done + catch.x\nemit fi\n"
                                     "let x = if fi > 0 then 1 else 2\nemit x\n")
    result = cli("run", "f.flow", "--quiet", cwd=tmp_path)
    assert result.status == 0 and result.stdout == "3\n1\n", result.stderr
    stderr = check(tmp_path, "done = 1\n")
    assert "an assignment starts with `let`" in stderr and "let done = 1" in stderr


def test_a_missing_end_inside_a_loop_is_named_by_the_indentation(tmp_path: Path) -> None:
    """The `end` of an `if` left out: the parser reads the loop's `end` as the if's, and said only "expected
    `end` to close `for each` opened at 3:1, found the end of the input", which names the block that has its
    `end`. The indentation says which one lacks it."""
    stderr = check(tmp_path, 'use src = file(path: "c.csv")\ncall src.read() as rows\nfor each r in rows\n'
                             '  if r.country == "NO"\n    emit r\nend\n')
    assert "f.flow:6:4: error: expected `end` to close `for each` opened at 3:1, found the end of the input" in stderr
    assert ("= hint: the `end` at 6:1 lines up with an outer block, so it was read as the end of the `if` opened "
            "at 4:3: is that block's own `end` missing?") in stderr, stderr
    # no indentation: nothing to go by, no guess
    stderr = check(tmp_path, "for each x in [1]\nif x > 0\nemit x\nend\n")
    assert "expected `end` to close `for each` opened at 1:1" in stderr and "lines up" not in stderr


def test_another_http_clients_argument_names_are_refused_by_check_with_flowlangs(tmp_path: Path) -> None:
    """`api.get("/customers", params: {...})` (Python's requests) and `json:` passed flowlang check and failed
    the run with "the path '/customers' has no {params} to fill": a keyword that is no request option fills a
    placeholder of the path, and a constant path's placeholders are known before the run."""
    stderr = check(tmp_path, 'use api = http(base_url: "http://127.0.0.1:9")\n'
                             'call api.get("/customers", params: {email: "a@x.com"}) as c\n'
                             'send {a: 1} to api.post("/contacts", json: {a: 1})\n'
                             "call api.get('/customers/{id}', id: 1, page: 2) as d\n"
                             "send {id: 1} to api.patch('/customers/{id}')\n")
    assert ("f.flow:2:28: error: get(): params: is no argument of a request: the path '/customers' has no "
            "{params} to fill (its placeholders: none; the request options: query, headers, body, form, pages, "
            "timeout, idempotency_key)") in stderr, stderr
    assert "= hint: did you mean query:? (the query string: query: {NAME: ...})" in stderr
    assert "f.flow:3:38: error: post(): json: is no argument of a request" in stderr
    assert '= hint: a send sends its record as the body: send {...} to api.post("/path")' in stderr
    assert "f.flow:4:40: error: get(): page: is no argument of a request" in stderr
    assert "= hint: did you mean the query parameter page? query: {page: ...}" in stderr
    assert "f.flow:5:" not in stderr  # {id} filled from the record


def test_a_computed_paths_unknown_argument_gets_the_hint_at_the_run(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text('use api = http(base_url: "http://127.0.0.1:9")\nlet p = "/customers"\n'
                                     'call api.get(p, params: {email: "a"}) as c\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1
    assert ("f.flow:3:6: error: params: is no argument of a request: the path '/customers' has no {params} to fill "
            "(its placeholders: none; the request options: query, headers, body, form, pages, timeout, "
            "idempotency_key); did you mean query:?") in result.stderr, result.stderr


def test_sql_values_marked_with_a_question_mark_or_given_in_a_list_are_said_with_flowlangs_named_params(
        tmp_path: Path) -> None:
    """Python's sqlite3 way, `db.query("... where code = ?", code)`, said "query() takes 1 positional argument,
    got 2"; `params: [code]` passed check and failed each record ("params: must be an object of named
    parameters, got list"); `?` with params: {...} failed each record with SQLite's "Incorrect number of
    bindings supplied. The current statement uses 1, and there are 0 supplied."."""
    named = "name each value in the SQL, where code = :code, and give it in params: {code: ...}"
    stderr = check(tmp_path, 'use db = sql(url: "sqlite:///ref.db")\nfor each o in [{c: "NO"}]\n'
                             '  lookup db.query("select name from countries where code = ?", o.c) as a\n'
                             '  lookup db.query("select name from countries where code = ?", params: [o.c]) as b\n'
                             '  lookup db.query("select name from countries where code = ?", params: {c: o.c}) as d\n'
                             'end\n')
    assert "f.flow:3:64: error: query() takes the SQL text, then its values as params: {...}, by name" in stderr
    assert f"= hint: {named}" in stderr and "positional argument" not in stderr, stderr
    assert "f.flow:3:19" not in stderr  # its ? is said by the line's one error
    assert f"f.flow:4:72: error: params: must be an object of named parameters, got list: {named}" in stderr
    assert f"f.flow:5:19: error: query(): the SQL marks a value with ?, which flowlang does not fill: {named}" in stderr
    # on PostgreSQL `?` is an operator of jsonb; a ? in quoted text or a comment is no mark
    (tmp_path / "g.flow").write_text('use pg = sql(url: "postgresql://u@127.0.0.1:9/db")\n'
                                     'use db = sql(url: "sqlite:///ref.db")\n'
                                     "call pg.query(\"select 1 where doc ? 'k'\") as a\n"
                                     "call db.query(\"select '?' as q -- why?\") as b\n")
    assert cli("check", "g.flow", cwd=tmp_path).status == 0
    # MySQL's # comment and backslash escape in quoted text, read as literal_colons reads them: these said
    # "marks a value with ?" of valid SQL
    (tmp_path / "m.flow").write_text('use db = sql(url: "mysql://u@127.0.0.1:9/db")\n'
                                     'call db.query("select 1 # why?") as a\n'
                                     'call db.query("select \'don\\\\\'t?\' as q") as b\n'
                                     'call db.query("select 1 where a = ?") as c\n')
    result = cli("check", "m.flow", cwd=tmp_path)
    assert "m.flow:4:15: error: query(): the SQL marks a value with ?" in result.stderr, result.stderr
    assert "m.flow:2:" not in result.stderr and "m.flow:3:" not in result.stderr, result.stderr
    # the SQL known only at the run: said there, before the database is asked
    import sqlite3
    with sqlite3.connect(tmp_path / "ref.db") as conn:
        conn.execute("create table countries (code text, name text)")
        conn.execute("insert into countries values ('NO', 'Norway')")
    (tmp_path / "h.flow").write_text('use db = sql(url: "sqlite:///ref.db")\nlet q = "select name from countries"\n'
                                     'for each o in [{c: "NO"}]\n'
                                     '  lookup db.query(q + " where code = ?", params: {c: o.c}) as a\n'
                                     '  lookup db.query(q + " where code = :c", params: {c: o.c}) as b\n'
                                     '  emit b.name\nend\n')
    result = cli("run", "h.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 3 and "Incorrect number of bindings" not in result.stderr
    assert f"h.flow:4:10: query(): the SQL marks a value with ?, which flowlang does not fill: {named}" in result.stderr
    (tmp_path / "h.flow").write_text((tmp_path / "h.flow").read_text().replace(
        '  lookup db.query(q + " where code = ?", params: {c: o.c}) as a\n', ""))
    result = cli("run", "h.flow", "--quiet", cwd=tmp_path)
    assert result.status == 0 and result.stdout == '"Norway"\n', result.stderr


def test_an_amount_written_for_people_says_how_to_read_it(tmp_path: Path) -> None:
    """number("1,234.50") of a CSV cell said only "cannot read '1,234.50' as a number", where the cell is an
    amount with a thousands separator (or a decimal comma, a currency): the message gives the replace()
    that reads it."""
    (tmp_path / "a.csv").write_text('id,amount\n1,"1,234.50"\n2,"1.234,50"\n3,"12,50"\n4,$12.50\n5,1.234.567\n'
                                    '6,"1,000"\n7,n/a\n8,12.50\n')
    (tmp_path / "f.flow").write_text('use src = file(path: "a.csv")\ncall src.read() as rows\n'
                                     'for each r in rows\n  emit number(r.amount)\nend\n'
                                     'emit int("1,234")\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1 and result.stdout == "12.50\n", result.stderr
    for said in ("""cannot read '1,234.50' as a number: it has "," between thousands: number(replace(x, ",", ""))""",
                 """cannot read '1.234,50' as a number: it has "." between thousands and a decimal comma: """
                 """number(replace(replace(x, ".", ""), ",", "."))""",
                 """cannot read '12,50' as a number: it has a decimal comma: number(replace(x, ",", "."))""",
                 """cannot read '$12.50' as a number: take the "$" away first: number(replace(x, "$", ""))""",
                 """cannot read '1.234.567' as a number: it has "." between thousands: number(replace(x, ".", ""))""",
                 """cannot read '1,000' as a number: it has "," between thousands, number(replace(x, ",", "")), or """
                 """as a decimal comma, number(replace(x, ",", "."))""",
                 "cannot read 'n/a' as a number\n",
                 """f.flow:6:6: error: cannot read '1,234' as a number: it has "," between thousands, """
                 """int(replace(x, ",", ""))"""):
        assert said in result.stderr, (said, result.stderr)


def test_a_cell_that_is_no_amount_is_refused_at_once(tmp_path: Path) -> None:
    """The pattern that tells an amount written for people (a sign before or after it) had spaces that
    overlapped: a cell of "1", 1,500 spaces and "x" (a padded fixed-width export) took some 13 s of one
    record's number() to refuse, 2,000 spaces 30 s, each record of them."""
    import time

    cells = ["1" + " " * 1500 + "x", "$1" + " \t" * 1000 + "x", "1 " * 1000 + "EUR x"]
    (tmp_path / "a.csv").write_text("id,amount\n" + "".join(f'{i},"{c}"\n' for i, c in enumerate(cells)))
    (tmp_path / "f.flow").write_text('use src = file(path: "a.csv")\ncall src.read() as rows\n'
                                     'for each r in rows\n  emit number(r.amount)\nend\n')
    started = time.monotonic()
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert time.monotonic() - started < 10
    assert result.status == 3 and "read 3, sent 0, failed 3" in result.stderr, result.stderr
    assert result.stderr.count("as a number\n") == 3 and "Traceback" not in result.stderr


def test_check_says_a_csv_file_is_read_with_the_wrong_delimiter(tmp_path: Path) -> None:
    """A file of ';' read as a file of ',' has one column, 'id;name;email': flowlang check said 'ok' of
    r.email (no column is close to its name), and the run emitted null for each record, its warning at
    the end of the run the first word of it."""
    (tmp_path / "people.csv").write_text("id;name;email\n1;Ann;ann@x.com\n")
    (tmp_path / "f.flow").write_text('use src = file(path: "people.csv")\ncall src.read() as rows\n'
                                     'for each r in rows\n  emit lower(r.email)\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 0
    assert ("f.flow:4:16: warning: 'email' is not a column of people.csv: its header is one column, "
            "'id;name;email', as a file whose delimiter is ';' has when read with ',' (so r.email is null in "
            "every record)") in result.stderr, result.stderr
    assert """= hint: give the file's delimiter: delimiter: ";" in its file(...)""" in result.stderr
    (tmp_path / "f.flow").write_text('use src = file(path: "people.csv", delimiter: ";")\ncall src.read() as rows\n'
                                     'for each r in rows\n  emit lower(r.email)\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 0 and "warning" not in result.stderr, result.stderr
    # read with the delimiter the flow gives, not ',': it said "when read with ','" of a file read with a tab
    (tmp_path / "f.flow").write_text('use src = file(path: "people.csv", delimiter: "\\t")\ncall src.read() as rows\n'
                                     'for each r in rows\n  emit lower(r.email)\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 0
    assert "as a file whose delimiter is ';' has when read with '\\t' (so r.email" in result.stderr, result.stderr


def test_an_embedded_run_refusing_a_value_says_which_argument_and_where_in_it() -> None:
    """flow.run(input=records) with one record holding an object flowlang has no value for said "cannot pass
    that value to a flow: cannot use a Python object as a flowlang value", which of 10,000 records (or which
    param) left to guess."""
    import math

    import flowlang

    flow = flowlang.compile("param p = null\nemit input")
    with pytest.raises(flowlang.UsageError) as refused:
        flow.run(input=[{"a": 1}, {"b": {"c": object()}}])
    assert str(refused.value) == ("cannot pass input= to the flow (at input[1].b.c): cannot use a Python object as "
                                  "a flowlang value")
    with pytest.raises(flowlang.UsageError) as refused:
        flow.run(params={"p": [1, math.nan]})
    assert str(refused.value).startswith("cannot pass the param p to the flow (at p[1]): nan is not a number")
    with pytest.raises(flowlang.UsageError) as refused:
        flow.run(input=object())
    assert str(refused.value) == "cannot pass input= to the flow: cannot use a Python object as a flowlang value"


def test_an_embedded_run_refusing_a_value_too_deep_or_cyclic_says_so_at_once() -> None:
    """The path to a refused value was looked for by converting each child from the top: of a list holding
    itself (a cycle) each of 50 levels walked 50,000,000 containers before its refusal, so the refusal took
    over a minute and named 'input[0][0]...[0]' (51 of them)."""
    import time

    import flowlang

    flow = flowlang.compile("emit input")
    cyclic: list[object] = []
    cyclic.extend([cyclic] * 100)
    deep: list[object] = [1.5]  # a value to convert (a deep list of plain values is taken as it is)
    for _ in range(300):
        deep = [deep]
    for given, at in ((cyclic, "input[0]"), ([{"a": 1}, {"b": deep}], "input[1]")):  # the record, then no [0]s
        started = time.monotonic()
        with pytest.raises(flowlang.UsageError) as refused:
            flow.run(input=given)
        assert time.monotonic() - started < 20
        assert str(refused.value) == f"cannot pass input= to the flow (at {at}): the value nests too deeply"


def test_retry_0_and_a_timeout_with_its_unit_say_what_to_write(tmp_path: Path) -> None:
    """`retry: 0` (meant: no retries) and `timeout: "30s"` said "must be a positive number, got '0'" and
    "..., got '30s'", the number quoted as if it were text."""
    stderr = check(tmp_path, 'use api = http(base_url: "http://127.0.0.1:9", retry: 0)\n'
                             'use b = http(base_url: "http://127.0.0.1:9", timeout: "30s")\n')
    assert ("f.flow:1:55: error: retry: is the number of attempts in all, at least 1 (retry: 1 makes one attempt "
            "and no retry), got 0") in stderr, stderr
    assert "f.flow:2:55: error: timeout: is a number of seconds, got the text '30s': write timeout: 30" in stderr
    # a setting that is no time was told its text was seconds: "max_response_bytes: is a number of seconds, got
    # the text '5m': write max_response_bytes: 5 * 60" (5 MB meant), "retry: ... '3s': write retry: 3"
    stderr = check(tmp_path, 'use api = http(base_url: "http://127.0.0.1:9", max_response_bytes: "5m")\n'
                             'use b = http(base_url: "http://127.0.0.1:9", retry: "3s")\n')
    assert "f.flow:1:68: error: max_response_bytes: must be a positive number, got string '5m'" in stderr, stderr
    assert "f.flow:2:53: error: retry: must be a positive number, got string '3s'" in stderr, stderr
    assert "seconds" not in stderr


def test_a_field_of_what_a_call_answered_as_a_list_says_how_to_read_a_record(tmp_path: Path) -> None:
    """`call api.get("/customers", query: {...}) as c` then `c.tier` (a lookup meant: the API answers a list
    of records) said only "cannot read field 'tier' of list"."""
    (tmp_path / "c.json").write_text('[{"id": 7, "tier": "gold"}]')
    (tmp_path / "f.flow").write_text('use src = file(path: "c.json")\ncall src.read() as c\n'
                                     'for each n in [1]\n  emit c.tier\nend\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 3
    assert ("record failed at f.flow:4:10: cannot read field 'tier' of list: a list has no fields: read an item's, "
            "x[0].tier, or each item's, [i.tier for i in x] (what `call ... as x` answered is the whole list; "
            "`lookup ... as x` gives its first record)") in result.stderr, result.stderr


@pytest.mark.parametrize(("line", "said"), [
    # before: "cannot add date and number"
    ("emit today() + 1", "f.flow:1:14: error: cannot add date and number: a number is no span of time: write "
     "d + days(1) (or hours(1), minutes(1), seconds(1))"),
    ("emit now() - 3600", "f.flow:1:12: error: cannot subtract datetime and number: a number is no span of time: "
     "write d - days(1)"),
    # before: "days() needs a number, got duration"
    ('emit days(date("2024-05-01") - date("2024-04-01"))', "f.flow:1:6: error: days() needs a number, got duration: "
     "days(n) makes a duration; the days of one, d, are seconds(d) / 86400 (floor(...) for the whole days)"),
    # before: "datetime(): '01/05/2024' is not an ISO 8601 date or time"
    ('emit datetime("01/05/2024")', """f.flow:1:6: error: datetime(): '01/05/2024' is not an ISO 8601 date or time: """
     """read it with parse_date(x, "%d/%m/%Y"), or "%m/%d/%Y" when the month comes first"""),
    ('emit date("13.05.2024 14:30")', """date(): '13.05.2024 14:30' is not an ISO 8601 date or time: read it with """
     """parse_date(x, "%d.%m.%Y %H:%M")"""),
    ('emit datetime("05/13/24")', """read it with parse_date(x, "%m/%d/%y")"""),
    # before: "unknown escape '\s' (use \\ for a backslash)"
    ('emit regex_replace("a  b", "\\s+", " ")', """f.flow:1:30: error: unknown escape '\\s' in a "..." string: """
     """write a regular expression in single quotes, where a backslash is itself ('\\s+'), or double it """
     """here (\\\\s)"""),
])
def test_dates_and_patterns_written_as_elsewhere_say_how_flowlang_writes_them(
        tmp_path: Path, line: str, said: str) -> None:
    (tmp_path / "f.flow").write_text(line + "\n")
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status in (1, 2) and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_time_zone_given_to_a_function_that_takes_none_names_to_zone(tmp_path: Path) -> None:
    """`format_date(d, fmt, zone: "Europe/Oslo")` said "has no argument 'zone'", hint "allowed: fmt, value";
    `now(tz: ...)` "allowed: none"; `datetime(s, tz: ...)` "allowed: unit, value, zone" (zone: meant)."""
    stderr = check(tmp_path, 'emit format_date(now(), "%Y", zone: "Europe/Oslo")\nemit now(tz: "Europe/Oslo")\n'
                             'emit today(zone: "Europe/Oslo")\nemit datetime("2024-05-01 10:00", tz: "Europe/Oslo")\n')
    for said in ("f.flow:1:31: error: format_date() has no argument 'zone'\n",
                 '= hint: format the time on that clock: format_date(to_zone(d, "Europe/Oslo"), "%Y-%m-%d %H:%M")',
                 '= hint: now() on another clock is to_zone(now(), "Europe/Oslo")',
                 '= hint: today on another clock is date(to_zone(now(), "Europe/Oslo"))',
                 "f.flow:4:35: error: datetime() has no argument 'tz'\n"):
        assert said in stderr, (said, stderr)
    assert stderr.count("did you mean 'zone'?") == 1 and "allowed: none" not in stderr


@pytest.mark.parametrize(("text", "said", "hint"), [
    # before: "expected `.` or `=`, found `:`", no hint
    ("for each r in [{a: 1}]\n  map r to o\n    id: r.a\n  end\n  emit o\nend\n",
     "f.flow:3:7: error: a line of a `map` body is `field = value`, not `field: value`", "= hint: id = r.a\n"),
    # before: "... is that map's `end` missing?", hint "a field named let is written `let = ...`"
    ("for each r in [{a: 1}]\n  map r to o\n    let id = r.a\n  end\n  emit o\nend\n",
     "f.flow:3:9: error: a line of the body of the `map` opened at 2:3 is `field = value`, without `let`",
     "= hint: id = r.a  (the map builds its object from these lines)"),
    # before: "expected `to`, found `as`"
    ("for each r in [{a: 1}]\n  map r as o\n    id = r.a\n  end\nend\n",
     "f.flow:2:9: error: `map` names the object it builds with `to`", "= hint: map r to o\n"),
    # before: no hint
    ('let s = "abc"\nemit s[0:2]\n', "f.flow:2:9: error: expected an operator or `]`, found `:`",
     "= hint: flowlang has no slices: substr(s, start, length) for a text"),
    ("emit `hi`\n", "f.flow:1:6: error: unexpected character '`'", '= hint: strings are written in double quotes'),
])
def test_a_map_a_slice_or_a_backquoted_string_as_elsewhere_says_flowlangs_form(
        tmp_path: Path, text: str, said: str, hint: str) -> None:
    stderr = check(tmp_path, text)
    assert said in stderr and hint in stderr, stderr


def test_sum_and_avg_of_csv_cells_say_how_to_convert_each(tmp_path: Path) -> None:
    """`sum([r.amount for r in rows])` of a CSV file said "sum() needs numbers, item 0 is string", where
    round() of one cell says the cell is text that looks like a number."""
    (tmp_path / "a.csv").write_text("id,amount\n1,10.50\n2,x\n")
    (tmp_path / "f.flow").write_text('use src = file(path: "a.csv")\ncall src.read() as rows\n'
                                     "emit sum([r.amount for r in rows])\n")
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1
    assert ("f.flow:3:6: error: sum() needs numbers, item 0 is string that looks like a number (CSV cells are "
            "text: convert each item, [number(r.amount) for r in rows])") in result.stderr, result.stderr
    stderr = check(tmp_path, 'emit avg(["1"])\nemit sum(["x"])\n')
    assert "f.flow:1:6: error: avg() needs numbers, item 0 is string that looks like a number" in stderr
    assert "f.flow:2:6: error: sum() needs numbers, item 0 is string\n" in stderr


def test_the_repl_says_the_same_of_another_languages_statements(tmp_path: Path) -> None:
    """In the REPL a line may be an expression, so `foreach x in rows` read `foreach` as a name and said
    "expected an operator, `(` or the end of the line, found `x`", hint "did you forget an operator or a
    comma?"; a file got the lesson."""
    result = cli("repl", cwd=tmp_path, stdin="let rows = [1]\nforeach x in rows\ndef f(a)\nlet foreach = 2\nforeach\n")
    assert ("<stdin>:2:1: error: flowlang writes a loop `for each`, in two words\n 2 | foreach x in rows\n"
            "   | ^^^^^^^\n   = hint: for each x in rows") in result.stderr, result.stderr
    assert "<stdin>:3:1: error: flowlang writes a function `function NAME(args)`" in result.stderr
    assert "did you forget an operator" not in result.stderr
    assert result.stdout == "2\n"  # a variable of that name is still a name


def test_the_repl_notes_a_field_typed_with_a_typo(tmp_path: Path) -> None:
    """`rows[0].emial` in the REPL showed `null` and no more, where a run warns of a field that every record
    missed while the records have a close name."""
    (tmp_path / "c.csv").write_text("id,email\n1,a@x.com\n")
    result = cli("repl", cwd=tmp_path, stdin='use src = file(path: "c.csv")\ncall src.read() as rows\n'
                                              "rows[0].emial\nrows[0].zzz\nrows[0].email\n:save s.flow\n")
    assert result.stdout.splitlines()[:3] == ["null", "null", '"a@x.com"'], result.stdout
    assert ("note: rows[0] has no field 'emial' (it has id, email); did you mean 'email'?"
            in result.stdout + result.stderr), result.stderr
    assert (result.stdout + result.stderr).count("has no field") == 1
    assert (tmp_path / "s.flow").read_text() == 'use src = file(path: "c.csv")\ncall src.read() as rows\n'
