"""The sql connector on SQLite, and on real PostgreSQL and MariaDB servers started by the tests
(tests/dbservers.py; their own time zone is not UTC)."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowlang
from conftest import cli
from dbservers import mariadb_server, postgres_server


def run(tmp_path: Path, text: str, **kw: object) -> flowlang.Result:
    path = tmp_path / "f.flow"
    path.write_text(text)
    return flowlang.load(path).run(state_dir=tmp_path / ".state", **kw)  # type: ignore[arg-type]


def test_execute_insert_upsert_query(tmp_path: Path) -> None:
    result = run(tmp_path, """
use db = sql(url: "sqlite:///data/test.db")
call db.execute("create table t (id integer primary key, name text, price numeric)")
send [{id: 1, name: "a", price: 1.50}, {id: 2, name: "b", price: 2}] to db.insert(table: "t")
send {id: 2, name: "B", price: 2.25} to db.upsert(table: "t", key: "id")
call db.query("select id, name, price from t where id >= :min order by id", params: {min: 1}) as rows
for each r in rows
  emit r
end
call db.execute("delete from t where id = :id", params: {id: 1}) as res
emit res
""")
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "name": "a", "price": Decimal("1.5")},
                              {"id": 2, "name": "B", "price": Decimal("2.25")}, {"rowcount": 1}]
    assert (tmp_path / "data" / "test.db").exists()  # relative to the flow's folder


def test_parameters_are_bound_never_pasted(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    con = sqlite3.connect(db)
    con.execute("create table users (name text)")
    con.execute("insert into users values ('alice'), ('bob')")
    con.commit()
    con.close()
    result = run(tmp_path, f"""
use db = sql(url: "sqlite:///{db}")
call db.query("select name from users where name = :n", params: {{n: "x' or '1'='1"}}) as rows
emit len(list(rows))
send {{name: "evil'); drop table users; --"}} to db.insert(table: "users")
call db.query("select count(*) as n from users") as c
emit list(c)[0].n
""")
    assert result.outputs == [0, 3], result.error


def test_a_bad_row_in_a_batch_fails_alone(tmp_path: Path) -> None:
    result = run(tmp_path, """
use db = sql(url: "sqlite:///b.db")
call db.execute("create table t (id integer primary key, name text not null)")
for each r in [{id: 1, name: "a"}, {id: 2, name: null}, {id: 3, name: "c"}, {id: 4, name: "d"}]
  send r to db.insert(table: "t") batch 2
end
call db.query("select id from t order by id") as rows
emit [r.id for r in rows]
""")
    assert result.status == "partial"
    assert result.outputs == [[1, 3, 4]]
    assert len(result.errors) == 1 and "NOT NULL" in result.errors[0].message
    assert result.errors[0].record == {"id": 2, "name": None}


def test_batched_rows_bind_every_kind_of_value_under_quoted_names(tmp_path: Path) -> None:
    """Batched rows go as SQL text with positional parameters on SQLite: names that need quoting,
    decimals, dates, objects (as JSON) and nulls, each in its own column."""
    result = run(tmp_path, """
use db = sql(url: "sqlite:///q.db")
let columns = "\\"select\\" text, \\"unit price\\" text, tags text, day text"
call db.execute("create table \\"order lines\\" (id integer primary key, {columns})")
let first = {id: 1, select: "a", "unit price": 1.50, tags: ["x", 2], day: date("2024-05-01")}
for each r in [first, {id: 2, select: null, "unit price": 2, tags: {k: 1.0}, day: null}]
  send r to db.insert(table: "order lines") batch 10
end
for each r in [{id: 2, select: "b"}, {id: 1, "unit price": 9.99}]
  send r to db.upsert(table: "order lines", key: "id") batch 10
end
""")
    assert result.ok, result.error
    con = sqlite3.connect(tmp_path / "q.db")
    rows = con.execute('select id, "select", "unit price", tags, day from "order lines" order by id').fetchall()
    con.close()
    assert rows == [(1, "a", "9.99", '["x",2]', "2024-05-01"), (2, "b", "2", '{"k":1.0}', None)]


def test_a_large_batch_is_written_in_several_statements(tmp_path: Path) -> None:
    """SQLite rows go ROWS_PER_STATEMENT to an INSERT: 2,600 rows in batches of 2,500 all arrive once."""
    result = run(tmp_path, """
use db = sql(url: "sqlite:///big.db")
call db.execute("create table n (id integer primary key, v integer)")
for each i in range(2600)
  send {id: i, v: i * 2} to db.insert(table: "n") batch 2500
end
for each i in range(1300)
  send {id: i * 2, v: 0 - i} to db.upsert(table: "n", key: "id") batch 2500
end
""")
    assert result.ok, result.error
    con = sqlite3.connect(tmp_path / "big.db")
    assert con.execute("select count(*), count(distinct id), sum(v) from n").fetchone() == (
        2600, 2600, sum(i * 2 for i in range(1, 2600, 2)) - sum(range(1300)))
    con.close()


def test_query_streams_in_pages(tmp_path: Path) -> None:
    result = run(tmp_path, """
use db = sql(url: "sqlite:///s.db")
call db.execute("create table n (v integer)")
send [{v: i} for i in range(0, 1234)] to db.insert(table: "n")
call db.query("select v from n order by v") as rows
let total = 0
for each r in rows
  let total = total + r.v
end
emit total
""")
    assert result.outputs == [sum(range(1234))]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    sqlite3.connect(db).execute("create table t (a integer)").connection.commit()
    result = run(tmp_path, f'use db = sql(url: "sqlite:///{db}")\nsend {{a: 1}} to db.insert(table: "t")\n'
                           'call db.execute("delete from t")\n', dry_run=True)
    assert result.ok
    assert sqlite3.connect(db).execute("select count(*) from t").fetchone() == (0,)


def test_sqlite_datetimes_compare_as_instants_so_an_incremental_read_skips_nothing(tmp_path: Path) -> None:
    """A row written later in the same second as the high-water mark is read by the next run: SQLite
    keeps datetimes as text, and 01:00:00.5 was written '...00.500000Z', which sorted before the
    mark '...00Z' ('.' < 'Z'), so `where at > :since` skipped it in every later run."""
    sync = """
use db = sql(url: "sqlite:///ev.db")
call db.execute("create table if not exists ev (id integer primary key, at timestamp)")
param id = 0
param at = ""
if id > 0
  send {id: id, at: datetime(at)} to db.insert(table: "ev")
end
let since = state.since ?? datetime("2000-01-01T00:00:00Z")
call db.query("select id, at from ev where at > :since order by at", params: {since: since}) as rows
for each r in rows
  emit r.id
  let state.since = datetime(r.at)
end
"""
    seen = []
    for id, at in [(1, "2024-10-27T03:00:00+02:00"), (2, "2024-10-27T01:00:00.5Z"), (3, "2024-10-27T01:00:01Z"),
                   (0, "")]:
        result = run(tmp_path, sync, params={"id": id, "at": at})
        assert result.ok, result.error
        seen += result.outputs
    assert seen == [1, 2, 3]  # each row once, none skipped
    con = sqlite3.connect(tmp_path / "ev.db")
    assert [r[0] for r in con.execute("select at from ev order by at")] == [
        "2024-10-27T01:00:00.000000Z", "2024-10-27T01:00:00.500000Z", "2024-10-27T01:00:01.000000Z"]
    con.close()


def test_a_real_column_holding_infinity_reads_as_its_text(tmp_path: Path) -> None:
    # SQLite keeps a REAL that overflows (9e999, a decimal past a float's range) as Infinity; it was read
    # as the text '"inf"', quotes included
    result = run(tmp_path, """
use db = sql(url: "sqlite:///t.db")
call db.execute("create table t (id integer primary key, x real)")
call db.execute("insert into t values (1, 9e999), (2, -9e999), (3, 1.5)")
send {id: 4, x: 1e400} to db.insert(table: "t")
call db.query("select x from t order by id") as rows
emit [r.x for r in rows]
""")
    assert result.outputs == [["Infinity", "-Infinity", Decimal("1.5"), "Infinity"]], result.error


def test_a_parameter_the_sql_names_and_params_lacks_is_named(tmp_path: Path) -> None:
    # before: "db: StatementError: A value is required for bind parameter 'id' (Background on this error at:
    # https://sqlalche.me/e/21/cd3x)", the same for a misspelt key as for none
    for params, said in (("", "no params: given"),
                         (", params: {idd: 1, x: 2}", "it has idd, x: is idd meant to be id?")):
        result = run(tmp_path, f"""
use db = sql(url: "sqlite:///t.db")
call db.execute("create table if not exists t (id integer, n text)")
let sql = "select * from t where id = :id and n = :n"
call db.query(sql{params}) as rows
""")  # SQL from a variable: judged as the call runs (a constant one by check, below)
        assert result.error is not None and result.error.location.endswith("f.flow:5:6")
        assert result.error.message == f"query(): the SQL names :id, :n, but params: has no id, n ({said})"
    result = run(tmp_path, 'use db = sql(url: "sqlite:///t.db")\nlet sql = "insert into t values (:id, :n)"\n'
                           'call db.execute(sql, params: {id: 1})\n')
    assert result.error is not None and "execute(): the SQL names :n, but params: has no n" in result.error.message


def test_constant_sql_and_params_that_disagree_are_refused_by_check(tmp_path: Path) -> None:
    """db.query("... :id", params: [1]) and a :name that params: lacks, both written as constants,
    passed `flowlang check` ('f.flow: ok') and failed every call; check says the run's words, at params:
    (at the SQL when there is no params:). Keys given with values computed in the flow count."""
    (tmp_path / "f.flow").write_text("""use db = sql(url: "sqlite:///t.db")
call db.query("select :id as a", params: [1]) as r
call db.query("select * from t where id = :id", params: {idd: r}) as q
call db.execute("delete from t where id = :id")
call db.query("select :a::text as a, :b as b", params: {a: 1, b: q}) as fine
call db.query("select 1 as a", params: null) as none
""")
    result = cli("check", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 2 and result.stderr.count("error:") == 3, result.stderr
    for said in ("f.flow:2:42: error: params: must be an object of named parameters, got list: name each value in "
                 "the SQL, where code = :code, and give it in params: {code: ...}\n",
                 "f.flow:3:57: error: query(): the SQL names :id, but params: has no id (it has idd: is idd meant "
                 "to be id?)\n",
                 "f.flow:4:17: error: execute(): the SQL names :id, but params: has no id (no params: given)\n"):
        assert said in result.stderr, (said, result.stderr)
    assert not (tmp_path / "t.db").exists()


def test_a_colon_name_in_quoted_text_or_a_comment_is_no_parameter(tmp_path: Path, database: str) -> None:
    """SQLAlchemy reads every `:name` as a parameter, quotes or not: `where note like '%:hello'` failed
    before it ran ('query(): the SQL names :hello, but params: has no hello'), as did ':00' of a time in
    a literal after a blank; an execute's literal too. Only the :name outside them is bound."""
    result = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.execute("drop table if exists notes")
call db.execute("create table notes (id integer primary key, note varchar(40))")
call db.execute("insert into notes values (1, 'at :30 said:hello'), (2, :other) /* :c */", params: {{other: "x"}})
call db.query("select id, ':a' as a, 'it''s :b' as b from notes where note like '%:hello' and id = :id -- :d",
  params: {{id: 1}}) as rows
emit list(rows)
""")
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "a": ":a", "b": "it's :b"}]


def test_a_result_with_two_columns_of_one_name_is_refused_not_read_with_one_lost(
        tmp_path: Path, database: str) -> None:
    """`select *` of a join where both tables have an id gave rows holding the last one: r.id was the
    customer's id (10), not the order's (1), without a word. The query fails, naming the column."""
    result = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.execute("drop table if exists jorders")
call db.execute("drop table if exists jpeople")
call db.execute("create table jorders (id integer primary key, person integer)")
call db.execute("create table jpeople (id integer primary key, name varchar(9))")
send [{{id: 1, person: 10}}, {{id: 2, person: 10}}] to db.insert(table: "jorders")
send {{id: 10, name: "Ann"}} to db.insert(table: "jpeople")
for each i in [1, 2]
  lookup db.query("select * from jorders o join jpeople p on p.id = o.person where o.id = :i", params: {{i: i}}) as r
  emit r.id
end
call db.query("select o.id, p.id as person_id from jorders o join jpeople p on p.id = o.person order by o.id") as rows
emit list(rows)
""")
    assert result.status == "partial", result.error
    assert [e.message for e in result.errors] == [
        "db: the query gives two columns named id (its columns 1 and 3), and a row holds one value a name: name "
        "them apart in the SQL (select o.id as order_id, c.id as customer_id ..., not select *)"] * 2
    assert result.outputs == [{"id": 1, "person_id": 10}, {"id": 2, "person_id": 10}]


def test_a_field_with_an_empty_name_fails_its_row_alone(tmp_path: Path) -> None:
    # a CSV column without a header name: before, "StatementError: A value is required for bind parameter
    # '%(139780760451344 param)s'"
    result = run(tmp_path, """
use db = sql(url: "sqlite:///t.db")
call db.execute("create table t (id integer, n text)")
for each r in [{id: 1, n: "a"}, {id: 2, "": "x"}, {id: 3}]
  send r to db.insert(table: "t") batch 10
end
""")
    assert [(e.record, e.message) for e in result.errors] == [
        ({"id": 2, "": "x"}, "a field with an empty name cannot be a column of t: rename or drop it (omit(r, \"\"))")]
    assert sqlite3.connect(tmp_path / "t.db").execute("select id, n from t order by id").fetchall() == [
        (1, "a"), (3, None)]



def test_an_empty_object_or_a_value_that_is_no_object_fails_its_row_alone(tmp_path: Path) -> None:
    """One `{}` (or a number) among a batch of five failed all five, each saying 'a row must be an
    object with fields, got object' (the good rows too, and of the `{}`, 'got object'): nothing was
    written. Such a record fails alone, saying what it is, and the others of its batch are written;
    so without a batch, and under --dry-run."""
    flow = """
use db = sql(url: "sqlite:///t.db")
call db.execute("create table if not exists t (id integer, n text)")
for each r in [{id: 1, n: "a"}, {}, {id: 3}, 5, {id: 5, n: "e"}]
  send r to db.insert(table: "t"){batch}
end
"""
    for batch in (" batch 10", ""):
        (tmp_path / "t.db").unlink(missing_ok=True)
        result = run(tmp_path, flow.replace("{batch}", batch))
        assert [(e.record, e.message) for e in result.errors] == [
            ({}, "an empty object has no field to write as a row of t"),
            (5, "a row of t must be an object with fields, got number")], batch
        assert sqlite3.connect(tmp_path / "t.db").execute("select id, n from t order by id").fetchall() == [
            (1, "a"), (3, None), (5, "e")]
    dry = run(tmp_path, flow.replace("{batch}", " batch 10"), dry_run=True)
    assert [e.message for e in dry.errors] == ["an empty object has no field to write as a row of t",
                                              "a row of t must be an object with fields, got number"]
    assert dry.stats.sent == 3


ROWS = st.lists(st.one_of(st.builds(lambda i: {"id": i, "n": f"r{i}"}, st.integers(0, 10**6)), st.just({}),
                          st.sampled_from([5, "text", None, [], True])), min_size=1, max_size=12)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(rows=ROWS, batch=st.integers(1, 6))
def test_any_mix_of_rows_and_no_rows_in_a_batch_writes_each_row_once_and_fails_the_others_alone(
        tmp_path_factory: pytest.TempPathFactory, rows: list[object], batch: int) -> None:
    folder = tmp_path_factory.mktemp("mix")
    flowlang.compile('use db = sql(url: "sqlite:///t.db")\n'
                     'call db.execute("create table t (id integer, n text)")\n', base_dir=folder).run()
    flow = flowlang.compile('use db = sql(url: "sqlite:///t.db")\nfor each r in input\n'
                            f'  send r to db.insert(table: "t") batch {batch}\nend\n', base_dir=folder)
    items = [[r] if isinstance(r, list) else r for r in rows]  # a list is sent item by item: keep it one record
    result = flow.run(input=items, state_dir=folder / ".state")
    good = [r for r in rows if isinstance(r, dict) and r]
    assert sorted(sqlite3.connect(folder / "t.db").execute("select id, n from t").fetchall()) == sorted(
        (r["id"], r["n"]) for r in good)
    assert len(result.errors) == len(rows) - len(good) == result.stats.failed
    assert all("row of t" in e.message for e in result.errors), [e.message for e in result.errors]

def test_sql_errors_are_clear(tmp_path: Path) -> None:
    result = run(tmp_path, 'use db = sql(url: "sqlite:///e.db")\ncall db.query("select * from nowhere") as r\n'
                           "emit list(r)\n")
    # the database's words without SQLAlchemy's class name ('db: OperationalError: no such table: ...')
    assert result.error is not None and result.error.message == "db: no such table: nowhere"
    assert result.error.line == 2
    twice = run(tmp_path, 'use db = sql(url: "sqlite:///e.db")\n'
                          'call db.execute("create table u (id integer primary key)")\n'
                          'for each i in [1, 1]\n  send {id: i} to db.insert(table: "u")\nend\n')
    assert [e.message for e in twice.errors] == ["db: UNIQUE constraint failed: u.id"]


def test_upsert_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(flowlang.CheckError, match="upsert\\(\\) needs the argument 'key'"):
        run(tmp_path, 'use db = sql(url: "sqlite:///e.db")\nsend {a: 1} to db.upsert(table: "t")\n')


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def mariadb() -> Iterator[str]:
    with mariadb_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of each kind of database in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'any.db'}"
    return str(request.getfixturevalue(request.param))


def test_postgresql(tmp_path: Path, postgres: str) -> None:
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists flowlang_t")
call db.execute("create table flowlang_t (id integer primary key, price numeric(10, 2))")
send [{{id: 1, price: 1.10}}, {{id: 2, price: 2.20}}] to db.insert(table: "flowlang_t")
send {{id: 2, price: 9.99}} to db.upsert(table: "flowlang_t", key: "id")
call db.query("select id, price from flowlang_t where id >= :min order by id", params: {{min: 1}}) as rows
for each r in rows
  emit r
end
""")
    assert result.outputs == [{"id": 1, "price": Decimal("1.10")}, {"id": 2, "price": Decimal("9.99")}], result.error


def test_mariadb(tmp_path: Path, mariadb: str) -> None:
    result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists flowlang_t")
call db.execute("create table flowlang_t (id integer primary key, price numeric(10, 2))")
send [{{id: 1, price: 1.10}}, {{id: 2, price: 2.20}}] to db.insert(table: "flowlang_t")
send {{id: 2, price: 9.99}} to db.upsert(table: "flowlang_t", key: "id")
call db.query("select id, price from flowlang_t where id >= :min order by id", params: {{min: 1}}) as rows
for each r in rows
  emit r
end
""")
    assert result.outputs == [{"id": 1, "price": Decimal("1.10")}, {"id": 2, "price": Decimal("9.99")}], result.error


def test_a_record_writes_only_the_columns_it_has(tmp_path: Path, database: str) -> None:
    """Batched inserts keep column defaults, batched upserts keep the columns a record lacks."""
    result = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.execute("drop table if exists people")
let columns = "email varchar(50) default 'none', phone varchar(50) default 'n/a'"
call db.execute("create table people (id integer primary key, {{columns}})")
for each r in [{{id: 1, email: "ann@x.org"}}, {{id: 2, phone: "555-2"}}, {{phone: "555-3", id: 3}}]
  send r to db.insert(table: "people") batch 10
end
for each r in [{{id: 1, phone: "555-1"}}, {{id: 2, email: "bob@x.org"}}, {{id: 3, email: "cy@x.org"}}]
  send r to db.upsert(table: "people", key: "id") batch 10
end
call db.query("select id, email, phone from people order by id") as rows
for each r in rows
  emit r
end
""")
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "email": "ann@x.org", "phone": "555-1"},
                              {"id": 2, "email": "bob@x.org", "phone": "555-2"},
                              {"id": 3, "email": "cy@x.org", "phone": "555-3"}]


TIME_COLUMNS = {
    "sqlite": "naive timestamp, aware timestamp",
    "postgresql": "naive timestamp, aware timestamptz",
    "mysql": "naive datetime(6), aware timestamp(6) null",
}


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_datetimes_are_stored_and_read_as_utc_on_a_server_in_another_zone(
        tmp_path: Path, server: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue(server))
    kind = "postgresql" if server == "postgres" else "mysql"
    result = run(tmp_path, f"""
use db = sql(url: "{url}")
call db.execute("drop table if exists times")
call db.execute("create table times (id integer primary key, {TIME_COLUMNS[kind]})")
let noon = datetime("2024-01-15T12:00:00Z")
send {{id: 1, naive: noon, aware: noon}} to db.insert(table: "times")
let summer = datetime("2024-07-15T15:00:00+03:00")
send {{id: 2, naive: datetime("2024-01-15T14:00:00+02:00"), aware: summer}} to db.insert(table: "times")
call db.query("select id, naive, aware from times order by id") as rows
for each r in rows
  emit r
end
""")
    assert result.ok, result.error
    noon = datetime(2024, 1, 15, 12, tzinfo=UTC)
    assert result.outputs == [{"id": 1, "naive": noon, "aware": noon},
                              {"id": 2, "naive": noon, "aware": datetime(2024, 7, 15, 12, tzinfo=UTC)}]
    for row in result.outputs:
        assert row["naive"].utcoffset() == timedelta(0) and row["aware"].utcoffset() == timedelta(0)
    # what another client of the database sees, in the server's own (non-UTC) zone
    stored = raw_rows(url, "select cast(naive as char(19)) from times order by id", kind)
    assert stored == ["2024-01-15 12:00:00", "2024-01-15 12:00:00"]


def raw_rows(url: str, sql: str, kind: str) -> list[object]:
    """The first column of a query by the driver itself, in the server's own time zone (checked not UTC)."""
    if kind == "postgresql":
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as c:
            zone = c.execute("show timezone").fetchone()
            assert zone is not None and zone[0] != "UTC"
            return [r[0] for r in c.execute(sql.replace("char(19)", "varchar(19)")).fetchall()]
    import pymysql

    rest = url.split("://", 1)[1]
    hostport, db = rest.split("@", 1)[1].split("/", 1)
    host, port = hostport.split(":")
    with pymysql.connect(host=host, port=int(port), user="root", database=db) as c, c.cursor() as cur:
        cur.execute("select @@session.time_zone")
        zone = cur.fetchone()
        assert zone is not None and zone[0] not in ("UTC", "+00:00", "SYSTEM")
        cur.execute(sql)
        return [r[0] for r in cur.fetchall()]


def test_decimals_inside_json_columns_read_back_exact(tmp_path: Path, postgres: str) -> None:
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists docs")
call db.execute("create table docs (id integer primary key, b jsonb, j json)")
let doc = {{amount: 12345678901234567890.123456789, count: 12345678901234567890, rate: 0.1}}
send {{id: 1, b: doc, j: doc}} to db.insert(table: "docs")
call db.query("select b, j from docs") as rows
for each r in rows
  emit r
end
""")
    assert result.ok, result.error
    exact = {"amount": Decimal("12345678901234567890.123456789"), "count": 12345678901234567890,
             "rate": Decimal("0.1")}
    assert result.outputs == [{"b": exact, "j": exact}]
    assert type(result.outputs[0]["b"]["amount"]) is Decimal


def test_mariadb_json_columns_are_text_and_json_parse_keeps_decimals_exact(tmp_path: Path, mariadb: str) -> None:
    """MariaDB's JSON is LONGTEXT with a check, and its drivers give it as text (docs/connectors.md)."""
    result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists docs")
call db.execute("create table docs (id integer primary key, j json)")
send {{id: 1, j: {{amount: 12345678901234567890.123456789, rate: 0.1}}}} to db.insert(table: "docs")
call db.query("select j from docs") as rows
for each r in rows
  emit json_parse(r.j)
end
""")
    assert result.ok, result.error
    assert result.outputs == [{"amount": Decimal("12345678901234567890.123456789"), "rate": Decimal("0.1")}]


def test_a_number_too_long_for_a_mariadb_literal_is_stored_as_it_is(tmp_path: Path, mariadb: str) -> None:
    """PyMySQL writes a number as a literal in fixed notation, and MariaDB cuts one of more than 81
    digits without a word: 1e300 into a DOUBLE was stored as 1e65, 1.5e-300 as 0, a whole number of 91
    digits as 1e65 (strict mode on). Such a number goes as its scientific text, batched or not, and as a
    parameter; one past a DECIMAL's range is refused, not stored changed."""
    big = "123456789012345678901234567890 * 10000000000000000000000000000000000000000000000000000000000000"
    result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists far")
call db.execute("create table far (id integer primary key, f double, g double, d decimal(65, 0))")
for each r in [{{id: 1, f: 1e300, g: 1.5e-300}}, {{id: 2, f: {big}, g: -2.5e-80, d: 1e64}}]
  send r to db.insert(table: "far") batch 10
end
send {{id: 3, f: 1.5e-300, g: 1e300}} to db.insert(table: "far")
for each r in [{{id: 4, d: 1e300}}]
  send r to db.insert(table: "far")
end
call db.query("select id, f, g, d from far where f = :f or g = :f order by id", params: {{f: 1e300}}) as rows
emit [r.id for r in rows]
call db.query("select f, g, d from far order by id") as rows
for each r in rows
  emit r
end
""")
    assert result.status == "partial", result.error
    assert "Out of range value for column 'd'" in result.errors[0].message and result.errors[0].record["id"] == 4
    whole = result.outputs[2].pop("f")  # a DOUBLE of the 91 digits: 17 of them
    assert abs(whole / Decimal("1.2345678901234568e90") - 1) < Decimal("1e-15")
    assert result.outputs == [
        [1, 3],
        {"f": Decimal("1e300"), "g": Decimal("1.5e-300"), "d": None},
        {"g": Decimal("-2.5e-80"), "d": Decimal("1e64")},
        {"f": Decimal("1.5e-300"), "g": Decimal("1e300"), "d": None}]


def test_a_missing_driver_names_the_extra_to_install(tmp_path: Path) -> None:
    result = run(tmp_path, 'use db = sql(url: "mssql+nosuchdriver://x@127.0.0.1/db")\n'
                           'call db.execute("select 1")\n')
    assert result.error is not None and "nosuchdriver" in result.error.message
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None:
        result = run(tmp_path, 'use db = sql(url: "postgresql+psycopg2://x@127.0.0.1/db")\n'
                               'call db.execute("select 1")\n')
        assert result.error is not None
        assert "pip install 'flowlang[postgres]'" in result.error.message, result.error.message


def test_check_warns_when_sql_is_built_by_interpolation(tmp_path: Path) -> None:
    from conftest import cli

    (tmp_path / "f.flow").write_text('use db = sql(url: "sqlite:///x.db")\nlet id = "1; drop table t"\n'
                                     'call db.query("select * from t where id = {id}") as bad\n'
                                     'call db.query("select * from t where id = :id", params: {id: id}) as good\n')
    proc = cli("check", "f.flow", cwd=tmp_path)
    assert proc.status == 0, proc.stderr
    assert "f.flow:3:15: warning:" in proc.stderr and "SQL injection" in proc.stderr
    assert "params:" in proc.stderr
    assert proc.stderr.count("warning:") == 1  # the bound query is fine


def test_postgres_values_flowlang_has_no_type_for_read_as_their_text(tmp_path: Path, postgres: str) -> None:
    """A uuid, an inet, a time of day (with or without a zone), a range and a uuid[] are their text;
    before, each was the placeholder "<UUID>", "<time>", ... and the value was lost."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists odd")
call db.execute("create table odd (u uuid primary key, ip inet, t time, ttz timetz, r int4range, us uuid[])")
let u = "6f1c2a3e-0b4d-4c5e-9f60-7a8b9c0d1e2f"
let values = "(:u, '10.0.0.1/24', '10:00:01.5', '10:00+05:45', '[1,5)', array[cast(:u as uuid)])"
call db.execute("insert into odd values {{values}}",
                params: {{u: u}})
call db.query("select * from odd") as rows
for each r in rows
  emit r
  send {{u: r.u, ip: "10.0.0.2"}} to db.upsert(table: "odd", key: "u")
end
call db.query("select count(*) as n, min(host(ip)) as ip from odd") as counts
emit list(counts)[0]
""")
    assert result.ok, result.error
    u = "6f1c2a3e-0b4d-4c5e-9f60-7a8b9c0d1e2f"
    assert result.outputs == [{"u": u, "ip": "10.0.0.1/24", "t": "10:00:01.500000", "ttz": "10:00:00+05:45",
                               "r": "[1, 5)", "us": [u]}, {"n": 1, "ip": "10.0.0.2"}]


def test_a_mariadb_password_beyond_ascii_logs_in_and_is_never_shown(tmp_path: Path, mariadb: str) -> None:
    """PyMySQL sent the password as latin-1: 'straße' was refused, and one with '€' failed as "cannot
    write '€' to the database: it is not latin-1 text", naming a character of the password."""
    password = ('ca"n\\ary-ß€-' * 8)[:90]
    for host in ("%", "127.0.0.1", "localhost"):
        result = run(tmp_path, f"""
use root = sql(url: "{mariadb}")
call root.execute("create user if not exists 'pw'@'{host}' identified by :pw", params: {{pw: secret.PW}})
call root.execute("grant all on flowlang.* to 'pw'@'{host}'")
""", secrets={"PW": password})
        assert result.ok, result.error
    address = mariadb.split("@", 1)[1]
    result = run(tmp_path, f"""
use db = sql(url: "mysql://pw:{{url_encode(secret.PW)}}@{address}")
call db.execute("drop table if exists pw_t")
call db.execute("create table pw_t (id integer primary key)")
send {{id: 1}} to db.insert(table: "pw_t")
call db.query("select count(*) as n, current_user() as who from pw_t") as rows
emit list(rows)[0]
""", secrets={"PW": password})
    assert result.ok, result.error
    assert result.outputs == [{"n": 1, "who": "pw@127.0.0.1"}]
    wrong = run(tmp_path, f"""
use db = sql(url: "mysql://pw:{{url_encode(secret.PW)}}x@{address}")
call db.execute("select 1")
""", secrets={"PW": password})
    assert wrong.error is not None and "Access denied for user 'pw'" in wrong.error.message
    import urllib.parse

    for form in (password, "€", urllib.parse.quote(password, safe=""), password[:20]):
        assert form not in wrong.error.render()


BINARY_COLUMNS = {"sqlite": "blob", "postgres": "bytea", "mariadb": "varbinary(16)"}


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mariadb"])
def test_binary_columns_read_as_bytes_and_copy_back_unchanged(tmp_path: Path, kind: str,
                                                             request: pytest.FixtureRequest) -> None:
    """A bytea, blob or varbinary was read as its bytes decoded as UTF-8 with every byte that is not
    UTF-8 replaced by U+FFFD: de ad be ef 00 ff became the text 'ޭ��\\x00�', and copying it into another
    binary column wrote those replacement characters' bytes, silently."""
    url = f"sqlite:///{tmp_path / 'bin.db'}" if kind == "sqlite" else str(request.getfixturevalue(kind))
    column = BINARY_COLUMNS[kind]
    literal = "decode('deadbeef00ff', 'hex')" if kind == "postgres" else "X'deadbeef00ff'"
    result = run(tmp_path, f"""
use db = sql(url: "{url}")
call db.execute("drop table if exists bin")
call db.execute("create table bin (id integer primary key, b {column})")
call db.execute("insert into bin values (1, {literal})")
call db.query("select b from bin where id = 1") as rows
for each r in rows
  emit [type_of(r.b), len(r.b), base64_encode(r.b)]
  send {{id: 2, b: r.b}} to db.insert(table: "bin") batch 10
  send {{id: 3, b: r.b}} to db.insert(table: "bin")
end
""")
    assert result.ok, result.error
    assert result.outputs == [["bytes", 6, "3q2+7wD/"]]
    hexed = "hex(b)" if kind != "postgres" else "upper(encode(b, 'hex'))"
    check = run(tmp_path, f"""
use db = sql(url: "{url}")
call db.query("select id, {hexed} as h from bin order by id") as rows
emit [r.h for r in rows]
""")
    assert check.outputs == [["DEADBEEF00FF"] * 3], check.error


def test_a_table_in_a_schema_is_written_by_its_qualified_name(tmp_path: Path, database: str) -> None:
    """table: "sales.orders" was quoted as one name ("sales.orders"): 'relation "sales.orders" does not
    exist' on PostgreSQL, "Table 'flowlang.flowlang.orders' doesn't exist" on MariaDB, for a table that
    exists."""
    schema = "main" if database.startswith("sqlite") else "flowlang" if database.startswith("mysql") else "sales"
    result = run(tmp_path, f"""
use db = sql(url: "{database}")
if "{schema}" == "sales"
  call db.execute("create schema if not exists sales")
end
call db.execute("drop table if exists {schema}.orders")
call db.execute("create table {schema}.orders (id integer primary key, name varchar(20))")
for each r in [{{id: 1, name: "a"}}, {{id: 2, name: "b"}}]
  send r to db.insert(table: "{schema}.orders") batch 10
end
send {{id: 3, name: "c"}} to db.insert(table: "{schema}.orders")
send {{id: 1, name: "A"}} to db.upsert(table: "{schema}.orders", key: "id")
for each r in [{{id: 2, name: "B"}}, {{id: 4, name: "d"}}]
  send r to db.upsert(table: "{schema}.orders", key: "id") batch 10
end
call db.query("select id, name from {schema}.orders order by id") as rows
emit [r.name for r in rows]
""")
    assert result.ok, result.error
    assert result.outputs == [["A", "B", "c", "d"]]


def test_lists_are_written_into_postgres_array_columns(tmp_path: Path, postgres: str) -> None:
    """A list sent to an integer[] (or text[], uuid[], an enum's array) column was written as JSON text
    and refused: 'malformed array literal: "[1,2,null]"', though the same column reads as a list. A
    json/jsonb column beside it still takes the list as JSON."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists arr")
call db.execute("drop type if exists arr_mood")
call db.execute("create type arr_mood as enum ('sad', 'ok')")
let columns = "n integer[], t text[], u uuid[], m arr_mood[], g integer[][], at timestamptz[], j jsonb"
call db.execute("create table arr (id integer primary key, {{columns}})")
let u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
let first = {{id: 1, n: [1, null, 3], t: ["a \\"b\\"", "c,d", "back\\\\slash", "\\{{x}}", "", "NULL"], u: [u],
  m: ["ok", "sad"], g: [[1, 2], [3, 4]], at: [datetime("2024-03-10T02:30:00-05:00")], j: [1, "x"]}}
for each r in [first, {{id: 2, n: [], t: null}}]
  send r to db.insert(table: "arr") batch 10
end
send {{id: 3, n: [7]}} to db.insert(table: "arr")
send {{id: 3, n: [8, 9], j: [2]}} to db.upsert(table: "arr", key: "id")
call db.query("select * from arr order by id") as rows
for each r in rows
  emit r
end
""")
    assert result.ok, result.error
    u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    none = {"t": None, "u": None, "m": None, "g": None, "at": None, "j": None}
    assert result.outputs == [
        {"id": 1, "n": [1, None, 3], "t": ['a "b"', "c,d", "back\\slash", "{x}", "", "NULL"], "u": [u],
         "m": "{ok,sad}", "g": [[1, 2], [3, 4]], "at": [datetime(2024, 3, 10, 7, 30, tzinfo=UTC)], "j": [1, "x"]},
        {"id": 2, "n": [], **none}, {"id": 3, "n": [8, 9], **none, "j": [2]}]
    assert raw_rows(postgres, "select cast(m as text) from arr where id = 1", "postgresql") == ["{ok,sad}"]


def test_a_mariadb_upsert_on_a_key_without_a_unique_index_is_refused_not_inserted_again(
        tmp_path: Path, mariadb: str) -> None:
    """ON DUPLICATE KEY goes by the table's unique indexes, not key:: upsert(key: "email") on a table
    without one on email inserted every record again in every run (4 rows after two runs of 2)."""
    sync = f"""
use db = sql(url: "{mariadb}")
for each r in [{{email: "a@x.org", name: "A"}}, {{email: "b@x.org", name: "B"}}]
  send r to db.upsert(table: "people_u", key: "email") batch 10
end
call db.query("select count(*) as n from people_u") as rows
emit list(rows)[0].n
"""
    made = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists people_u")
call db.execute("create table people_u (id integer auto_increment primary key, email varchar(50), name text)")
""")
    assert made.ok, made.error
    for _ in range(2):
        refused = run(tmp_path, sync)
        assert refused.outputs == [0] and len(refused.errors) == 2
        assert "has no primary key or unique index on (email)" in refused.errors[0].message
        assert refused.errors[0].record == {"email": "a@x.org", "name": "A"}  # kept, for a retry
    assert run(tmp_path, f'use db = sql(url: "{mariadb}")\n'
                         'call db.execute("alter table people_u add unique (email)")\n').ok
    assert [run(tmp_path, sync).outputs for _ in range(2)] == [[2], [2]]


def test_postgres_intervals_with_months_read_as_their_iso_text_not_as_days(tmp_path: Path, postgres: str) -> None:
    """psycopg reads a month as 30 days and a year as 365: '1 year 2 mons 3 days' was the duration
    P428D, and written back it was another interval. Such an interval is its ISO 8601 text now (as
    PostgreSQL writes it with intervalstyle iso_8601, and reads it back); days and time stay durations."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists iv")
call db.execute("create table iv (id integer primary key, a interval, l interval[])")
call db.execute("insert into iv values (1, '1 year 2 mons 3 days 04:05:06.5', array[interval '-1 mons', '2 days'])")
call db.execute("insert into iv values (2, '-1 years +3 days -00:00:10', null)")
call db.execute("insert into iv values (3, '3 days 01:00', null)")
call db.query("select id, a, l from iv order by id") as rows
for each r in rows
  emit r
  send {{id: r.id + 10, a: r.a, l: r.l}} to db.insert(table: "iv")
end
call db.query("select count(*) as n from iv a join iv b on b.id = a.id + 10 and b.a = a.a") as same
emit list(same)[0].n
""")
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "a": "P1Y2M3DT4H5M6.5S", "l": ["P-1M", timedelta(days=2)]},
                              {"id": 2, "a": "P-1Y3DT-10S", "l": None},
                              {"id": 3, "a": timedelta(days=3, hours=1), "l": None}, 3]
    assert raw_rows(postgres, "select cast(l as text) from iv where id = 11", "postgresql") == ['{"-1 mons","2 days"}']


def test_an_upsert_of_only_the_key_columns_inserts_once_and_changes_nothing(tmp_path: Path, database: str) -> None:
    """On MySQL/MariaDB a record of only its key's columns failed with SQLAlchemy's 'ValueError:
    update parameter dictionary must not be empty' and was not written (SQLite and PostgreSQL do
    nothing for a key that is there)."""
    result = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.execute("drop table if exists ko")
call db.execute("create table ko (a integer, b integer, c varchar(5), primary key (a, b))")
call db.execute("insert into ko values (1, 2, 'kept')")
for each r in [{{a: 1, b: 1}}, {{a: 1, b: 1}}, {{a: 1, b: 2}}]
  send r to db.upsert(table: "ko", key: ["a", "b"])
end
for each r in [{{a: 2, b: 1}}, {{b: 1, a: 2}}, {{a: 1, b: 2}}]
  send r to db.upsert(table: "ko", key: ["b", "a"]) batch 10
end
call db.query("select a, b, c from ko order by a, b") as rows
for each r in rows
  emit r
end
""")
    assert result.ok, result.error
    assert result.outputs == [{"a": 1, "b": 1, "c": None}, {"a": 1, "b": 2, "c": "kept"}, {"a": 2, "b": 1, "c": None}]


def test_postgres_infinite_and_bc_dates_read_as_their_text(tmp_path: Path, postgres: str) -> None:
    """'infinity' in a timestamp (a history table's valid_to), a date BC or after 9999 failed the whole
    query: 'db: DataError: timestamp too large (after year 10K): 'infinity''. Each is its text now, and
    copied back it is the same value; the other rows' values are still datetimes and dates."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists hist")
call db.execute("create table hist (id integer primary key, a timestamp, b timestamptz, c date)")
call db.execute("insert into hist values (1, 'infinity', '-infinity', '0044-03-15 BC')")
call db.execute("insert into hist values (2, '2024-01-01 10:00', '2024-01-01 10:00+02', '10000-01-01')")
call db.execute("insert into hist values (3, '2024-01-01 10:00', '2024-01-01 10:00+02', '2024-02-29')")
call db.query("select id, a, b, c from hist order by id") as rows
for each r in rows
  emit r
  send {{id: r.id + 10, a: r.a, b: r.b, c: r.c}} to db.insert(table: "hist") batch 10
end
let same_row = "y.id = x.id + 10 and y.a = x.a and y.b = x.b and y.c = x.c"
call db.query("select count(*) as n from hist x join hist y on {{same_row}}") as same
emit list(same)[0].n
""")
    assert result.ok, result.error
    from datetime import date

    ten = datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert result.outputs == [{"id": 1, "a": "infinity", "b": "-infinity", "c": "0044-03-15 BC"},
                              {"id": 2, "a": ten, "b": ten - timedelta(hours=2), "c": "10000-01-01"},
                              {"id": 3, "a": ten, "b": ten - timedelta(hours=2), "c": date(2024, 2, 29)}, 3]


def test_postgres_time_24_00_reads_as_its_text_and_copies_back(tmp_path: Path, postgres: str) -> None:
    """'24:00:00', the end of a day in an opening-hours table, failed the whole query: "db: can't parse
    time '24:00:00': hour must be in 0..23". It is its text now, as other times are, and copied back
    it is the same value."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists hours")
call db.execute("create table hours (id integer primary key, opens time, closes time, z timetz)")
call db.execute("insert into hours values (1, '08:00', '24:00', '24:00+00'), (2, '09:30', '17:00:01.5', '10:00+05:45')")
call db.query("select id, opens, closes, z from hours order by id") as rows
for each r in rows
  emit r
  send {{id: r.id + 10, opens: r.opens, closes: r.closes, z: r.z}} to db.insert(table: "hours") batch 10
end
let same_row = "y.id = x.id + 10 and y.closes = x.closes and y.z = x.z"
call db.query("select count(*) as n from hours x join hours y on {{same_row}}") as same
emit list(same)[0].n
""")
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "opens": "08:00:00", "closes": "24:00:00", "z": "24:00:00+00"},
                              {"id": 2, "opens": "09:30:00", "closes": "17:00:01.500000", "z": "10:00:00+05:45"}, 2]


def test_a_postgres_parameter_with_a_cast_after_it_is_bound(tmp_path: Path, postgres: str) -> None:
    """`:amount::numeric`, PostgreSQL's cast written right after a parameter, was not read as the
    parameter: the SQL went as it was, the database said 'db: syntax error at or near ":"' and the
    value in params: was not used. It is bound and cast now; one that params: lacks is named."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
let p = {{amount: 12345678901234567890.123456789, at: datetime("2024-06-01T00:00:00+05:30"), doc: {{x: 1.0}}}}
let sql = "select :amount::numeric as amount, :at::timestamptz as at, :doc::jsonb as doc, 2::int as two"
call db.query(sql, params: p) as rows
emit list(rows)[0]
let lacking = "select :x::int as x"
call db.query(lacking) as none
""")
    at = datetime(2024, 5, 31, 18, 30, tzinfo=UTC)
    assert result.outputs == [{"amount": Decimal("12345678901234567890.123456789"), "at": at,
                               "doc": {"x": Decimal("1.0")}, "two": 2}], result.error
    assert result.error is not None and result.error.message == (
        "query(): the SQL names :x, but params: has no x (no params: given)")


def test_a_mariadb_error_is_its_message_and_code_not_a_python_tuple(tmp_path: Path, mariadb: str) -> None:
    """PyMySQL's errors were shown as Python writes a tuple: 'db: (1048, "Column \'name\' cannot be
    null")'. A record failed by the database (in a batch: it fails alone) says the message, then the code."""
    result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists nn")
call db.execute("create table nn (id integer primary key, name varchar(3) not null)")
for each r in [{{id: 1, name: "a"}}, {{id: 2, name: null}}, {{id: 3, name: "toolong"}}, {{id: 4, name: "d"}}]
  send r to db.insert(table: "nn") batch 10
end
call db.query("select id from nn order by id") as rows
emit [r.id for r in rows]
call db.query("select * from nowhere") as none
emit list(none)
""")
    assert result.outputs == [[1, 4]]
    assert [e.message for e in result.errors] == ["db: Column 'name' cannot be null (error 1048)",
                                                  "db: Data too long for column 'name' at row 1 (error 1406)"]
    assert result.error is not None
    assert result.error.message == "db: Table 'flowlang.nowhere' doesn't exist (error 1146)"


def test_a_decimal_parameter_compares_as_a_number_on_sqlite(tmp_path: Path) -> None:
    """A parameter with a fraction (1.5 is an exact decimal) was bound as the text '1.5', which SQLite
    sorts after every number: compared with an expression (price * qty, abs(), sum() in a having) it
    matched no row, silently; an integer parameter worked."""
    result = run(tmp_path, """
use db = sql(url: "sqlite:///dec.db")
call db.execute("create table p (id integer primary key, price numeric, qty integer)")
call db.execute("insert into p values (1, 1.0, 1), (2, 2.5, 1), (3, 10, 2)")
call db.query("select id from p where price > :min order by id", params: {min: 1.5}) as plain
call db.query("select id from p where price * qty > :min order by id", params: {min: 1.5}) as product
call db.query("select id from p where abs(price) between :low and :high", params: {low: 0.5, high: 2.5}) as ranged
call db.query("select qty from p group by qty having sum(price) > :min", params: {min: 3.4}) as grouped
emit [[r.id for r in plain], [r.id for r in product], [r.id for r in ranged], [r.qty for r in grouped]]
""")
    assert result.ok, result.error
    assert result.outputs == [[[2, 3], [2, 3], [1, 2], [1, 2]]]


def test_a_database_driver_s_warning_is_a_log_line_of_the_run_s_format(tmp_path: Path, postgres: str) -> None:
    """psycopg's own warnings went to stderr as bare text, past flowlang's log handler: a line that is
    not JSON among JSON logs ('unknown PostgreSQL timezone: '<+05:30>-05:30'; will use UTC'), unmasked."""
    import json

    from conftest import run_cli

    (tmp_path / "f.flow").write_text(f"""
use db = sql(url: "{postgres}")
let zoned = "select set_config('TimeZone', '<+05:30>-05:30', false) as z"
call db.execute("{{zoned}}, cast('2024-01-01 10:00+00' as timestamptz) as t") as rows
emit rows.rows[0].t
""")
    proc = run_cli("run", "f.flow", "--log-format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    assert any("unknown PostgreSQL timezone" in line["message"] and line["level"] == "warning" for line in lines)
    # each names the run's job, as the run's own lines do (it was null: the line came from the database's thread)
    assert {line["job_id"] for line in lines} == {lines[-1]["job_id"]} and lines[-1]["job_id"] is not None, lines


def test_a_postgres_url_as_hosts_give_it_connects(tmp_path: Path, postgres: str) -> None:
    """postgres://user@host/db, the form libpq reads and many hosts give in DATABASE_URL, failed with
    "cannot use the database URL: Can't load plugin: sqlalchemy.dialects:postgres"."""
    short = "postgres://" + postgres.split("://", 1)[1]
    result = run(tmp_path, """
use db = sql(url: secret.DATABASE_URL)
call db.query("select current_database() as d") as rows
emit list(rows)[0].d
""", secrets={"DATABASE_URL": short})
    assert result.outputs == ["postgres"], result.error


def test_a_lookup_query_in_a_batched_loop_gives_its_connection_back(tmp_path: Path, database: str) -> None:
    """A query's connection was held until its stream was closed: the lookups of a batched loop (up to
    2 x the batch run at once) took every connection of the pool, and the next one waited on the one
    database thread that would have given one back. The run hung (killed after minutes on PostgreSQL
    and MariaDB, each record's upsert never sent)."""
    import subprocess

    from conftest import run_cli

    (tmp_path / "f.flow").write_text(f"""
use db = sql(url: "{database}")
call db.execute("drop table if exists src")
call db.execute("drop table if exists dst")
call db.execute("create table src (id integer primary key)")
call db.execute("create table dst (id integer primary key, seen integer)")
send [{{id: i}} for i in range(300)] to db.insert(table: "src") batch 300
call db.query("select id from src order by id") as rows
for each r in rows
  call db.query("select count(*) as n from src where id <= :id", params: {{id: r.id}}) as found
  send {{id: r.id, seen: list(found)[0].n}} to db.upsert(table: "dst", key: "id") batch 100
end
call db.query("select count(*) as n, sum(seen) as s from dst") as total
emit list(total)[0]
""")
    try:
        proc = run_cli("run", "f.flow", "--quiet", cwd=tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the run hung")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '{"n":300,"s":45150}'


SLOW_STATEMENT = {  # runs far longer than the record may
    "sqlite": "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c",
    "postgresql": "select pg_sleep(60)",
    "mysql": "select sleep(60)",
}


def test_a_record_past_max_record_seconds_stops_its_statement_at_the_database(tmp_path: Path, database: str) -> None:
    """A record whose query ran past --max-record-seconds was given up only when the query ended: the
    connection's thread went on running it (a cancelled await does not stop a thread), and the next
    records' statements waited behind it. A SQLite query that never ends hung the run; PostgreSQL's
    pg_sleep(60) kept it 60 s. The statement is now interrupted at the database: the record fails at
    its limit and the next records run at once, on the same connection."""
    import subprocess

    from conftest import run_cli

    slow = SLOW_STATEMENT[database.split(":", 1)[0].split("+")[0].replace("mariadb", "mysql")]
    (tmp_path / "f.flow").write_text(f"""
use db = sql(url: "{database}")
for each r in [1, 2, 3]
  if r == 2
    call db.execute("{slow}")
  end
  call db.query("select :r as r", params: {{r: r}}) as rows
  emit list(rows)[0].r
end
""")
    started = time.monotonic()
    try:
        proc = run_cli("run", "f.flow", "--log-format", "text", "--max-record-seconds", "1", cwd=tmp_path, timeout=40)
    except subprocess.TimeoutExpired:
        pytest.fail("the run hung")
    assert time.monotonic() - started < 20, proc.stderr
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "1\n3\n"
    assert "record failed at f.flow:3:15: the record took longer than 1s (max_record_seconds)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_upsert_by_a_key_that_is_no_unique_index_says_how_to_add_one(
        tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    """SQLite said 'db: OperationalError: ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE
    constraint' (PostgreSQL: 'there is no unique or exclusion constraint matching ...'): a Python class
    name and the database's words, naming neither the table nor the key. The CLI run now names both
    and the index to add; with it, the same flow upserts."""
    url = f"sqlite:///{tmp_path / 'shop.db'}" if kind == "sqlite" else str(request.getfixturevalue("postgres"))
    (tmp_path / "f.flow").write_text(f'use db = sql(url: "{url}")\n'
                                     'call db.execute("drop table if exists stock")\n'
                                     'call db.execute("create table stock (sku text, qty integer)")\n'
                                     'for each r in [{sku: "A", qty: 1}, {sku: "B", qty: 2}, {sku: "A", qty: 3}]\n'
                                     '  send r to db.upsert(table: "stock", key: "sku") batch 10\nend\n')
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 3, result.stderr
    assert ("record failed at f.flow:5:13: upsert(key: 'sku'): the table stock has no primary key or unique "
            "index on (sku), which an upsert needs to find the row a record updates; add one: create unique "
            "index stock_sku on stock (sku)") in result.stderr, result.stderr
    assert "Error:" not in result.stderr and "ON CONFLICT" not in result.stderr
    (tmp_path / "f.flow").write_text((tmp_path / "f.flow").read_text().replace(
        'create table stock (sku text, qty integer)")\n',
        'create table stock (sku text, qty integer)")\n'
        'call db.execute("create unique index stock_sku on stock (sku)")\n'))
    fixed = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert fixed.status == 0, fixed.stderr
    (tmp_path / "q.flow").write_text(f'use db = sql(url: "{url}")\ncall db.query("select sku, qty from stock '
                                     'order by sku") as rows\nemit list(rows)\n')
    assert cli("run", "q.flow", "--quiet", cwd=tmp_path).stdout == '{"sku":"A","qty":3}\n{"sku":"B","qty":2}\n'


def test_a_secret_a_database_shows_lowercased_is_masked(postgres: str, tmp_path: Path) -> None:
    """A secret written into a query: PostgreSQL said 'column "rk3v9wm2lp8tx5qn" does not exist', the
    secret lowercased (it folds an unquoted identifier), past the masking of its own text, in the log,
    the failed record's message and the error store. A piece of a secret is masked whatever the case of
    its letters A-Z now."""
    import json

    secret = "Rk3v9Wm2Lp8Tx5Qn"
    (tmp_path / "f.flow").write_text(f'use db = sql(url: "{postgres}")\n'
                                     "for each n in [1]\n"
                                     '  call db.query("select {secret.T}") as rows\n  emit rows\nend\n')
    result = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path, env={"T": secret})
    assert result.status == 3, result.stderr
    assert 'column \\"***\\" does not exist' in result.stderr, result.stderr
    listed = cli("errors", "f.flow", "--json", cwd=tmp_path)
    assert json.loads(listed.stdout.splitlines()[0])["message"].endswith('column "***" does not exist')
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".flowlang").rglob("*") if p.is_file())
    for text in (result.stdout + result.stderr, listed.stdout, stored.decode("utf-8", "replace")):
        assert secret.lower()[:9] not in text and secret not in text


def test_a_query_given_a_statement_that_changes_data_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """A query is a lazy stream of rows that runs only when they are read, on a connection never committed:
    `call db.query("delete from t where ...") as r` whose r is never read deleted nothing, and a DELETE ...
    RETURNING whose rows were read was rolled back (the rows emitted, the table unchanged); check and the
    run said ok (exit 0)."""
    con = sqlite3.connect(tmp_path / "t.db")
    con.execute("create table t (id integer primary key, n text)")
    con.execute("insert into t values (1, 'a'), (2, 'b'), (3, 'c')")
    con.commit()
    con.close()
    (tmp_path / "f.flow").write_text(
        'use db = sql(url: "sqlite:///t.db")\n'
        'call db.query("delete from t where id = 1") as r\n'
        'call db.query("  -- tidy up\\n  /* all */ DROP TABLE t")\n'
        'call db.query("Update t set n = :n where id = 2", params: {n: "x"}) as changed\n'
        'call db.query("delete from t where id = 3 returning id") as gone\n'
        'for each g in gone\n  emit g\nend\n'
        'call db.query("select n from t where n = \'delete\' or n = \'returning\'") as fine\n')
    checked = cli("check", "f.flow", cwd=tmp_path)
    assert checked.status == 2 and checked.stderr.count("error:") == 4, checked.stderr
    assert ("f.flow:2:15: error: db.query() reads rows and runs only when they are read: a DELETE changes data: "
            "use db.execute(...) (it gives the rows of a RETURNING as .rows)\n") in checked.stderr
    assert 'hint: call db.execute("delete from t where id = 1") runs the statement at once' in checked.stderr
    assert ("f.flow:3:15: error: db.query() reads rows and runs only when they are read: a DROP changes data: "
            "use db.execute(...)\n") in checked.stderr
    assert "f.flow:4:15: error: db.query() reads rows and runs only when they are read: an UPDATE" in checked.stderr
    assert ("f.flow:5:15: error: db.query() reads rows and never commits: a DELETE ... RETURNING whose rows are "
            "read changes nothing: use db.execute(...), which commits and gives the rows as .rows\n") in checked.stderr
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 2 and "4 errors; nothing was run" in ran.stderr and ran.stdout == "", ran.stderr
    assert sqlite3.connect(tmp_path / "t.db").execute("select id from t order by id").fetchall() == [(1,), (2,), (3,)]
    # execute runs at once, commits, and gives the rows of a RETURNING
    (tmp_path / "f.flow").write_text(
        'use db = sql(url: "sqlite:///t.db")\n'
        'call db.execute("delete from t where id = 1") as res\n'
        'emit res.rowcount\n'
        'call db.execute("delete from t where id = :id returning id", params: {id: 2}) as gone\n'
        'emit gone.rows\n')
    assert cli("check", "f.flow", cwd=tmp_path).status == 0
    done = cli("run", "f.flow", "--quiet", cwd=tmp_path)
    assert done.status == 0 and done.stdout == '1\n{"id":2}\n', done.stderr
    assert sqlite3.connect(tmp_path / "t.db").execute("select id from t").fetchall() == [(3,)]


def test_execute_of_a_statement_with_returning_counts_its_rows_on_sqlite(tmp_path: Path) -> None:
    """SQLite's driver says rowcount 0 for a DELETE ... RETURNING that deleted 2 rows (and -1 for a
    SELECT): execute gave {rowcount: 0, rows: [2 rows]}. The count is the rows it gave now."""
    result = run(tmp_path, """
use db = sql(url: "sqlite:///r.db")
call db.execute("create table t (id integer primary key)")
call db.execute("insert into t values (1), (2), (3)")
call db.execute("delete from t where id < :n returning id", params: {n: 3}) as gone
emit [gone.rowcount, len(gone.rows)]
call db.execute("update t set id = 4 where id = 9 returning id") as none
emit none
""")
    assert result.outputs == [[2, 2], {"rowcount": 0, "rows": []}], result.error


RESTART_TABLE = {"postgres": "create table moved (id integer, name text)",
                 "mariadb": "create table moved (id integer, name text) engine=innodb"}


@pytest.mark.parametrize(("server", "batch"), [("postgres", 1), ("postgres", 50), ("mariadb", 50)])
def test_a_database_restarted_mid_run_loses_no_record_and_writes_none_twice(
        tmp_path: Path, server: str, batch: int, request: pytest.FixtureRequest) -> None:
    """A PostgreSQL restart of 3 s under a run of 15,000 inserts failed 842 records ('connection failed:
    ... Connection refused', 'terminating connection due to administrator command'; a MariaDB one 97 of
    100,000 batched): the connector made no connection again. A connection that cannot be made is made
    again, and a transaction lost before its COMMIT (which the database rolled back) is run again:
    every row is at the database once, counted there in a table without a key."""
    import threading

    from dbservers import restart

    url = str(request.getfixturevalue(server))
    kind = "postgresql" if server == "postgres" else "mysql"
    n = 3000
    run(tmp_path, f'use db = sql(url: "{url}")\ncall db.execute("drop table if exists moved")\n'
                  f'call db.execute("{RESTART_TABLE[server]}")\n')
    results: list[flowlang.Result] = []
    worker = threading.Thread(target=lambda: results.append(run(tmp_path, f"""
use db = sql(url: "{url}")
for each i in range({n})
  send {{id: i, name: "row {{i}}"}} to db.insert(table: "moved") batch {batch}
end
""")))
    worker.start()
    deadline = time.monotonic() + 60
    while raw_rows(url, "select count(*) from moved", kind)[0] < n // 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    restart(url, 3)
    worker.join(120)
    assert results, "the run did not end"
    result = results[0]
    assert result.error is None
    # a COMMIT on its way as the server stops may be made with its answer lost: those records (one
    # send's) fail, kept, saying so; every other record is at the database, and none is there twice
    unknown = [e for e in result.errors if "lost before it said whether the write was made" in e.message]
    assert unknown == result.errors and len(unknown) <= batch, result.errors[:1]
    stored = raw_rows(url, "select count(*) from moved", kind)[0]
    assert raw_rows(url, "select count(distinct id) from moved", kind) == [stored]
    assert n - len(unknown) <= stored <= n


def test_a_database_never_reached_in_the_run_fails_at_once(tmp_path: Path) -> None:
    """A wrong host or port is not a database that went away: a run that never reached its database
    fails its records at once, each kept (with the wait of a database gone away, a mistyped port took
    30 s before anything was said: the canary tests of database URLs took 94 s)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens on it once closed
    started = time.monotonic()
    result = run(tmp_path, f"""
use db = sql(url: "postgresql://postgres@127.0.0.1:{port}/postgres")
for each i in range(5)
  send {{id: i}} to db.insert(table: "t")
end
""")
    assert time.monotonic() - started < 15  # the wait for a database gone away is 30 s
    assert len(result.errors) == 5 and result.stats.sent == 0
    assert all("Connection refused" in e.message and "has not answered" not in e.message
               for e in result.errors), result.errors[0].message


def test_a_database_that_stays_away_fails_its_records_after_one_wait(
        tmp_path: Path, postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that went away and does not come back is waited for once (RECONNECT_SECONDS from when
    it was found away): the records after it fail at their first try, each kept, saying how long it has
    not answered; every record is in the table or in the error store, none in both, none twice."""
    import threading

    from dbservers import restart
    from flowlang.connectors import sql_reconnect

    monkeypatch.setattr(sql_reconnect, "RECONNECT_SECONDS", 1.0)
    n = 400
    run(tmp_path, f'use db = sql(url: "{postgres}")\ncall db.execute("drop table if exists gone")\n'
                  'call db.execute("create table gone (id integer)")\n')
    results: list[flowlang.Result] = []
    worker = threading.Thread(target=lambda: results.append(run(tmp_path, f"""
use db = sql(url: "{postgres}")
for each i in range({n})
  send {{id: i}} to db.insert(table: "gone")
end
""")))
    worker.start()
    deadline = time.monotonic() + 60
    while raw_rows(postgres, "select count(*) from gone", "postgresql")[0] < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    restart(postgres, 4)
    worker.join(120)
    assert results, "the run did not end"
    result = results[0]
    away = [e for e in result.errors if "(the database has not answered for 1 s)" in e.message]
    assert away, [e.message for e in result.errors[:2]]
    stored = raw_rows(postgres, "select count(*) from gone", "postgresql")[0]
    assert raw_rows(postgres, "select count(distinct id) from gone", "postgresql") == [stored]
    unknown = [e for e in result.errors if "lost before it said whether the write was made" in e.message]
    assert stored + len(result.errors) - len(unknown) <= n <= stored + len(result.errors)


SET_ZONE = {"postgresql": "set time zone 'Asia/Kathmandu'", "mysql": "set time_zone = '+05:45'"}


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_time_zone_set_by_the_flow_lasts_for_its_sql_only(
        tmp_path: Path, server: str, request: pytest.FixtureRequest) -> None:
    """'call db.execute("set time zone ...")' left its pooled connection in that zone, so the datetimes
    of every later write on it were off by it, silently: 05:30Z written into a PostgreSQL timestamp was
    stored as 11:15 and read back as 11:15Z; into a MariaDB TIMESTAMP it was the instant 23:45Z the day
    before (read back right on that connection alone). The session is set back to UTC after such SQL."""
    url = str(request.getfixturevalue(server))
    kind = "postgresql" if server == "postgres" else "mysql"
    result = run(tmp_path, f"""
use db = sql(url: "{url}")
call db.execute("drop table if exists zoned")
call db.execute("create table zoned (id integer primary key, {TIME_COLUMNS[kind]})")
call db.execute("{SET_ZONE[kind]}")
let at = datetime("2024-11-03T05:30:00Z")
send {{id: 1, naive: at, aware: at}} to db.insert(table: "zoned")
for each i in [2, 3]
  send {{id: i, naive: at, aware: at}} to db.upsert(table: "zoned", key: "id") batch 5
end
call db.query("select id, naive, aware from zoned order by id") as rows
for each r in rows
  emit r
end
""")
    assert result.ok, result.error
    at = datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert result.outputs == [{"id": i, "naive": at, "aware": at} for i in (1, 2, 3)]
    assert all(r["aware"].utcoffset() == timedelta(0) for r in result.outputs)
    assert raw_rows(url, "select cast(naive as char(19)) from zoned order by id", kind) == ["2024-11-03 05:30:00"] * 3
    utc = "to_char(aware at time zone 'UTC', 'HH24:MI')" if kind == "postgresql" else \
        "date_format(convert_tz(aware, @@session.time_zone, '+00:00'), '%H:%i')"
    assert raw_rows(url, f"select {utc} from zoned order by id", kind) == ["05:30"] * 3


def test_mariadb_booleans_read_as_booleans_and_copy_into_postgres(tmp_path: Path, mariadb: str, postgres: str) -> None:
    """A MySQL/MariaDB BOOLEAN (a TINYINT(1) there) read as 1 and 0: emitted as numbers, 'r.active ==
    true' was false, and copied into a PostgreSQL boolean column each row was refused ('column "a" is
    of type boolean but expression is of type smallint'). Its 0 and 1 are false and true now; another
    value a TINYINT(1) holds, and a TINYINT, stay numbers."""
    result = run(tmp_path, f"""
use my = sql(url: "{mariadb}")
use pg = sql(url: "{postgres}")
call my.execute("drop table if exists flags")
call my.execute("create table flags (id int primary key, a boolean, c tinyint(1), n tinyint)")
send [{{id: 1, a: true, c: 7, n: 1}}, {{id: 2, a: false, c: 0, n: 0}}, {{id: 3}}] to my.insert(table: "flags")
call pg.execute("drop table if exists flags")
call pg.execute("create table flags (id int primary key, a boolean)")
call my.query("select id, a, c, n from flags order by id") as rows
for each r in rows
  emit r
  send {{id: r.id, a: r.a}} to pg.insert(table: "flags")
end
call my.execute("select a from flags where id = 1") as one
emit one.rows[0].a == true
call pg.query("select id, a from flags order by id") as copied
for each r in copied
  emit r
end
""")
    assert result.ok, (result.error, result.errors[:1])
    assert result.outputs == [{"id": 1, "a": True, "c": 7, "n": 1}, {"id": 2, "a": False, "c": False, "n": 0},
                              {"id": 3, "a": None, "c": None, "n": None}, True,
                              {"id": 1, "a": True}, {"id": 2, "a": False}, {"id": 3, "a": None}]
    assert type(result.outputs[0]["n"]) is int and type(result.outputs[0]["a"]) is bool


def test_a_whole_number_past_sqlite_s_integers_fails_its_record_saying_so(tmp_path: Path) -> None:
    """An integer past 64 bits (123456789012345678901234567890, an id from another system) failed on
    SQLite with a Python class name: 'db: OverflowError: Python int too large to convert to SQLite
    INTEGER'. Its record fails alone saying what to do; the others of its batch are written."""
    result = run(tmp_path, """
use db = sql(url: "sqlite:///big.db")
call db.execute("create table t (id integer primary key, big numeric, txt text)")
let big = 123456789012345678901234567890
for each r in [{id: 1, big: 1}, {id: 2, big: big}, {id: 3, big: 3, txt: str(big)}]
  send r to db.insert(table: "t") batch 10
end
call db.query("select id, txt from t order by id") as rows
for each r in rows
  emit r
end
""")
    assert [e.message for e in result.errors] == [
        "db: a whole number past SQLite's integers (-9223372036854775808 to 9223372036854775807) cannot go to "
        "SQLite: give it as text (str(x)), into a text column"]
    assert result.outputs == [{"id": 1, "txt": None}, {"id": 3, "txt": "123456789012345678901234567890"}]


KILL_OTHERS = {
    # (with a timeout: it waits until the connection is gone)
    "postgresql": "select pg_terminate_backend(pid, 5000) from pg_stat_activity where application_name = 'victim'",
    "mysql": "select id from information_schema.processlist where db = database() and id <> connection_id() "
             "and info is null and command = 'Sleep'",
}


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_connection_the_server_closed_while_idle_is_not_used(
        tmp_path: Path, server: str, request: pytest.FixtureRequest) -> None:
    """A pooled connection the server closed while it was idle (an administrator's terminate, a
    restart, MySQL's wait_timeout) was used for the next statement, which failed: an execute() each
    time after its connection was terminated ('terminating connection due to administrator command';
    2 of 4 records), though nothing had been sent on it. Such a connection is now let go at checkout
    (its socket is readable while idle) and the statement runs on a new one."""
    url = str(request.getfixturevalue(server))
    kind = "postgresql" if server == "postgres" else "mysql"
    victim = f"{url}?application_name=victim" if kind == "postgresql" else url
    if kind == "postgresql":
        kill = f'call other.execute("{KILL_OTHERS[kind]}")'
    else:  # MariaDB's KILL takes the id as a literal
        kill = (f'call other.query("{KILL_OTHERS[kind]}") as idle\n'
                '  for each c in idle\n    call other.execute("kill {c.id}")\n  end')
    result = run(tmp_path, f"""
use db = sql(url: "{victim}")
use other = sql(url: "{url}")
call other.execute("drop table if exists killed")
call other.execute("create table killed (id integer)")
for each i in range(4)
  call db.execute("insert into killed values (:i)", params: {{i: i}})
  {kill}
end
""")
    assert result.ok and not result.errors, result.errors[:1]
    assert raw_rows(url, "select count(*) from killed", kind) == [4]


def test_a_sqlite_file_another_process_holds_locked_is_waited_for(tmp_path: Path) -> None:
    """Another process holding the SQLite file's write lock for 10 s (a cron job beside the flow, the
    sqlite3 shell in a transaction) failed the record that waited past the driver's 5 s: 'db: database
    is locked', kept. The statement did nothing then and its transaction is rolled back, so it is run
    again (sql_reconnect.py: up to 30 s): every record is written, once."""
    import subprocess
    import sys

    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as db:
        db.execute("pragma journal_mode=wal")
        db.execute("create table t (id integer)")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sqlite3, sys, time
c = sqlite3.connect({str(path)!r}, isolation_level=None)
c.execute("begin immediate")
c.execute("insert into t values (99)")
print("locked", flush=True)
time.sleep(10)
c.execute("commit")
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        result = run(tmp_path, """
use db = sql(url: "sqlite:///shared.db")
for each i in range(3)
  send {id: i} to db.insert(table: "t")
end
""")
    finally:
        holder.wait(30)
    assert result.ok and not result.errors, result.errors[:1]
    with sqlite3.connect(path) as db:
        assert sorted(r[0] for r in db.execute("select id from t")) == [0, 1, 2, 99]


def test_a_postgres_key_violation_names_the_key_and_its_value(tmp_path: Path, postgres: str) -> None:
    """PostgreSQL's first line names only the constraint ('duplicate key value violates unique constraint
    "k_pkey"'): which record's key it was is in its DETAIL, which was dropped. The failure says it now
    ('Key (id)=(1) already exists.', 'Key (ref)=(9) is not present in table "k_parent".'); other details,
    a failing row's every value, stay out."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("create table k_parent (id int primary key)")
call db.execute("create table k (id int primary key, n int check (n > 0), ref int references k_parent(id))")
for each r in input
  send r to db.insert(table: "k")
end
""", input=[{"id": 1, "n": 1}, {"id": 1, "n": 2}, {"id": 2, "n": 1, "ref": 9}, {"id": 3, "n": -1}])
    assert [e.message for e in result.errors] == [
        'db: duplicate key value violates unique constraint "k_pkey": Key (id)=(1) already exists.',
        'db: insert or update on table "k" violates foreign key constraint "k_ref_fkey": Key (ref)=(9) is not '
        'present in table "k_parent".',
        'db: new row for relation "k" violates check constraint "k_n_check"']
    assert [e.record["id"] for e in result.errors] == [1, 2, 3] and result.stats.sent == 1


@pytest.mark.parametrize("batch", ["", " batch 10"])
def test_an_upsert_of_a_record_whose_key_is_null_or_missing_fails_it_instead_of_inserting_it_again(
        tmp_path: Path, database: str, batch: str) -> None:
    """A key that is null (or a record without its key's field) matches no row: NULL = NULL is not true in
    SQL, so no unique index ever holds two of them as equal, and the upsert inserted the record as a new
    row, in every run again (two runs of 4 records, 2 without an email, upserted by email: 6 rows, the
    2 keyless twice). Such a record fails alone, kept, saying why; the others of its batch are written."""
    run(tmp_path, f'use db = sql(url: "{database}")\ncall db.execute("drop table if exists un")\n'
                  'call db.execute("create table un (email varchar(50) unique, ref integer, name varchar(50), '
                  'unique (email, ref))")\n')
    flow = f"""
use db = sql(url: "{database}")
for each r in input
  send r to db.upsert(table: "un", key: "email"){batch}
end
for each r in input
  send r to db.upsert(table: "un", key: ["email", "ref"]){batch}
end
"""
    records = [{"email": "ann@x.org", "ref": 1, "name": "Ann"}, {"email": None, "ref": 2, "name": "Null"},
               {"ref": 3, "name": "Missing"}, {"email": "bob@x.org", "ref": 4, "name": "Bob"}]
    first = run(tmp_path, flow, input=records)
    again = run(tmp_path, flow, input=records)
    for result in (first, again):
        assert result.stats.sent == 4 and result.error is None
        assert [e.message for e in result.errors] == [
            f"upsert(key: {key}) into un: {why}, so it matches no row (in SQL a null key equals none, not even "
            "another null) and the record would be inserted again in every run: give it its key, or send it to "
            "db.insert" for key in ("'email'", "'email', ...")
            for why in ("the record's email is null", "the record has no field email")]
    rows = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.query("select email, ref, name from un order by ref") as rows
for each r in rows
  emit r
end
""")
    assert rows.outputs == [{"email": "ann@x.org", "ref": 1, "name": "Ann"},
                            {"email": "bob@x.org", "ref": 4, "name": "Bob"}]


def test_an_upsert_colliding_with_another_row_by_another_unique_index_fails_and_changes_no_row(
        tmp_path: Path, database: str) -> None:
    """On MySQL/MariaDB, ON DUPLICATE KEY updates the row a record collides with by any unique index:
    upsert(key: "id") of {id: 5, email: "ann@x.org", name: "Eve"} into a table where Ann (id 1) has that
    email renamed Ann to Eve, and id 5 was never written; the run said sent. Such a record fails alone,
    kept, and no row changes (as on PostgreSQL and SQLite, which refuse it as a unique violation); the
    others of its batch, and a record of only its key, are upserted."""
    run(tmp_path, f'use db = sql(url: "{database}")\ncall db.execute("drop table if exists uu")\n'
                  'call db.execute("create table uu (id integer primary key, email varchar(50) unique, '
                  'name varchar(50))")\ncall db.execute("insert into uu values (1, \'ann@x.org\', \'Ann\')")\n')
    records = [{"id": 1, "email": "ann@x.org", "name": "Ann B."}, {"id": 5, "email": "ann@x.org", "name": "Eve"},
               {"id": 6, "email": "cy@x.org", "name": "Cy"}, {"id": 1}]
    for batch in ("", " batch 10"):
        result = run(tmp_path, f"""
use db = sql(url: "{database}")
for each r in input
  send r to db.upsert(table: "uu", key: "id"){batch}
end
""", input=records)
        assert result.stats.sent == 3 and [e.record for e in result.errors] == [records[1]]
        message = result.errors[0].message
        assert (message == "upsert(key: 'id') into uu: another row, of another id, has this record's email (unique in "
                "uu): MySQL/MariaDB's ON DUPLICATE KEY would have updated that row with this record; the record is "
                "not written" if "mysql" in database else "unique" in message.lower()), message
    rows = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.query("select id, email, name from uu order by id") as rows
for each r in rows
  emit r
end
""")
    assert rows.outputs == [{"id": 1, "email": "ann@x.org", "name": "Ann B."},
                            {"id": 6, "email": "cy@x.org", "name": "Cy"}]


@pytest.mark.parametrize("engine", ["MyISAM", "Aria"])
def test_a_batch_into_a_mariadb_table_without_transactions_writes_each_row_once_and_changes_no_value(
        tmp_path: Path, mariadb: str, engine: str) -> None:
    """A multi-row INSERT into a table whose engine has no transactions keeps the rows before a bad one,
    and a bad value after the first row is changed, not refused (STRICT_TRANS_TABLES): in a batch, an
    emoji in a utf8mb3 column was stored as '?', a null in a not null column as '', a text too long cut
    to the column, each record said sent; and rows before a duplicate key were written, then written
    again row by row and failed as duplicates ('Duplicate entry '1''), kept for a retry that failed
    again. Into such a table each row is written by a statement of its own: a bad row fails alone, saying
    why, the others are written once and unchanged."""
    run(tmp_path, f'use db = sql(url: "{mariadb}")\ncall db.execute("drop table if exists nt")\n'
                  f'call db.execute("create table nt (id int, t varchar(12) not null) character set utf8mb3 '
                  f'engine={engine}")\ncall db.execute("drop table if exists nk")\n'
                  f'call db.execute("create table nk (id int primary key) engine={engine}")\n'
                  'call db.execute("insert into nk values (3)")\n')
    texts = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
for each r in input
  send r to db.insert(table: "nt") batch 10
end
""", input=[{"id": 1, "t": "a"}, {"id": 2, "t": "x 😀"}, {"id": 3, "t": None}, {"id": 4, "t": "longer than twelve"},
            {"id": 5, "t": "e"}])
    assert [e.record["id"] for e in texts.errors] == [2, 3, 4] and texts.stats.sent == 2
    assert "Incorrect string value" in texts.errors[0].message
    assert "cannot be null" in texts.errors[1].message and "too long" in texts.errors[2].message
    keys = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
for each i in range(1, 6)
  send {{id: i}} to db.insert(table: "nk") batch 10
end
""")
    assert [e.record for e in keys.errors] == [3] and keys.stats.sent == 4
    assert raw_rows(mariadb, "select concat(id, ':', t) from nt order by id", "mysql") == ["1:a", "5:e"]
    assert raw_rows(mariadb, "select id from nk order by id", "mysql") == [1, 2, 3, 4, 5]


RESETS_ZONE = [("postgres", "reset all"), ("postgres", "reset timezone"),
               ("postgres", "select set_config('TimeZone', 'Pacific/Chatham', false), 1 as x"),
               ("mariadb", "set @@local.time_zone = '+05:30'"), ("mariadb", "set names utf8mb4, time_zone = '+05:30'"),
               ("mariadb", "set @x = 1, @@session.time_zone = '-05:00'")]


@pytest.mark.parametrize(("server", "sql"), RESETS_ZONE)
def test_sql_that_resets_or_sets_the_session_zone_in_any_form_lasts_for_that_sql_only(
        tmp_path: Path, server: str, sql: str, request: pytest.FixtureRequest) -> None:
    """The session went back to UTC only after SQL of a few forms (SET TIME ZONE ...): after PostgreSQL's
    'reset all' or 'reset timezone' the pooled connection was in the server's zone (Europe/Helsinki), so
    12:00Z written into a timestamp was stored as 14:00 and read back as 14:00Z; after MySQL's
    'set @@local.time_zone = ...' or a SET of several variables, 12:00Z went into a TIMESTAMP as 06:30Z.
    On PostgreSQL the zone the server reports after the SQL (no round trip) is what is checked."""
    url = str(request.getfixturevalue(server))
    kind = "postgresql" if server == "postgres" else "mysql"
    column = "timestamp" if kind == "postgresql" else "timestamp null"
    result = run(tmp_path, f"""
use db = sql(url: "{url}")
call db.execute("drop table if exists reset_zone")
call db.execute("create table reset_zone (id int, at {column})")
call db.execute("{sql}")
send {{id: 1, at: datetime("2024-01-15T12:00:00Z")}} to db.insert(table: "reset_zone")
call db.query("select at from reset_zone") as rows
for each r in rows
  emit r.at
end
""")
    assert result.ok, result.error
    assert result.outputs == [datetime(2024, 1, 15, 12, tzinfo=UTC)]
    at_utc = "cast(at as char(19))" if kind == "postgresql" else "from_unixtime(unix_timestamp(at), '%H:%i')"
    assert raw_rows(url, f"select {at_utc} from reset_zone", kind) == (
        ["2024-01-15 12:00:00"] if kind == "postgresql" else [
            datetime(2024, 1, 15, 12, tzinfo=UTC).astimezone(timezone(timedelta(hours=2))).strftime("%H:%M")])


def test_a_mariadb_server_without_strict_mode_refuses_a_bad_value_instead_of_changing_it(
        tmp_path: Path, mariadb: str) -> None:
    """On a server whose sql_mode is not strict ('', as legacy MySQL configurations and hosts set it), a
    value a column cannot hold was changed with a warning and the record said sent: an emoji into a
    utf8mb3 column stored as '?', a text too long cut, 123456.789 into a decimal(5, 2) as 999.99, the
    date '2024-02-30' as 0000-00-00. flowlang's sessions are strict (STRICT_ALL_TABLES added to the
    server's sql_mode): each such record fails, saying why, and the good one is written."""
    import pymysql

    hostport = mariadb.split("@", 1)[1].split("/", 1)[0]
    host, port = hostport.split(":")
    with pymysql.connect(host=host, port=int(port), user="root") as c, c.cursor() as cur:
        cur.execute("select @@global.sql_mode")
        row = cur.fetchone()
        assert row is not None
        mode = row[0]
        cur.execute("set global sql_mode = ''")
    try:
        result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists lax")
call db.execute("create table lax (id int primary key, t varchar(5), n decimal(5, 2), d date) character set utf8mb3")
for each r in input
  send r to db.insert(table: "lax")
end
""", input=[{"id": 1, "t": "😀"}, {"id": 2, "t": "toolongtext"}, {"id": 3, "n": Decimal("123456.789")},
            {"id": 4, "d": "2024-02-30"}, {"id": 5, "t": "ok", "n": Decimal("1.25"), "d": "2024-02-29"}])
    finally:
        with pymysql.connect(host=host, port=int(port), user="root") as c, c.cursor() as cur:
            cur.execute("set global sql_mode = %s", (mode,))
    assert [e.record["id"] for e in result.errors] == [1, 2, 3, 4], result.errors
    codes = [e.message[-11:-1] for e in result.errors]
    assert codes == ["error 1366", "error 1406", "error 1264", "error 1292"], [e.message for e in result.errors]
    assert raw_rows(mariadb, "select concat_ws(' ', id, t, n, d) from lax", "mysql") == ["5 ok 1.25 2024-02-29"]


def test_an_upsert_key_named_in_another_case_than_the_field_says_so(tmp_path: Path) -> None:
    """key: "ID" for records whose field is id: the record has no field ID, and the failure says which
    field it has, so that the key is named as the field is (on MySQL/MariaDB columns are of any case)."""
    result = run(tmp_path, 'use db = sql(url: "sqlite:///k.db")\n'
                           'call db.execute("create table k (id integer primary key)")\n'
                           'for each r in [{id: 1}]\n  send r to db.upsert(table: "k", key: "ID")\nend\n')
    assert [e.message.split(", so")[0] for e in result.errors] == [
        "upsert(key: 'ID') into k: the record has no field ID (it has id: name the key as the field is named)"]


def test_a_sql_mode_set_by_the_flow_lasts_for_its_sql_only(tmp_path: Path, mariadb: str) -> None:
    """'call db.execute("set sql_mode = \\'\\'")' left the pooled connection lax, so the later writes on it had
    their bad values changed, not refused (an emoji into a utf8mb3 column stored as '?', the record sent).
    After SQL that sets sql_mode the session is strict again, as every session of flowlang's is."""
    result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists lax_mode")
call db.execute("create table lax_mode (id int primary key, t varchar(5)) character set utf8mb3")
call db.execute("set sql_mode = ''")
for each r in input
  send r to db.insert(table: "lax_mode")
end
""", input=[{"id": 1, "t": "😀"}, {"id": 2, "t": "ok"}])
    assert [e.record["id"] for e in result.errors] == [1] and "error 1366" in result.errors[0].message
    assert raw_rows(mariadb, "select concat(id, t) from lax_mode", "mysql") == ["2ok"]


LOST_AT_COMMIT = """
create or replace function lost_at_commit() returns trigger language plpgsql as $$
begin
  if new.id = 3 then perform pg_terminate_backend(pg_backend_pid()); end if;
  return null;
end $$;
create constraint trigger lost_at_commit after insert on at_commit deferrable initially deferred
  for each row execute function lost_at_commit();
"""


@pytest.mark.parametrize("batch", ["", " batch 10"])
def test_a_send_once_whose_commit_was_lost_keeps_its_key_pending(tmp_path: Path, postgres: str, batch: str) -> None:
    """A send whose connection was lost while its COMMIT was on the way may have been written; its record
    failed saying so, but 'send ... once' released its key as for a refused record, so the next run (or a
    retry) wrote it again: twice, had the COMMIT been made. Such a record is uncertain, as an HTTP request
    sent without an answer is: its key stays pending in the ledger, and its error says how to settle it
    (here the database ends the connection in a deferred trigger, at the COMMIT of id 3's transaction)."""
    import psycopg

    with psycopg.connect(postgres.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute("drop table if exists at_commit")
        c.execute("create table at_commit (id integer)")
        c.execute(LOST_AT_COMMIT)  # type: ignore[arg-type]
    (tmp_path / "f.flow").write_text(f"""
use db = sql(url: "{postgres}")
for each i in range(1, 5)
  send {{id: i}} to db.insert(table: "at_commit") key "k{{i}}" once{batch}
end
""")
    first = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    lost = [line for line in first.stderr.splitlines() if "lost before it said whether the write was made" in line]
    assert lost and all("stays pending in the ledger" in line for line in lost), first.stderr
    assert "key k3 stays pending in the ledger" in first.stderr
    ledger = cli("ledger", "f.flow", "--json", cwd=tmp_path)
    assert '"k3"' in ledger.stdout and "pending" in ledger.stdout, ledger.stdout
    again = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert "k3" in again.stderr, again.stderr  # not sent again: pending, said so
    assert raw_rows(postgres, "select count(*) from at_commit where id = 3", "postgresql") == [0]


STREAM_KILL = {
    "postgresql": 'call other.execute("' + KILL_OTHERS["postgresql"] + '")',
    "mysql": ('call other.query("select id from information_schema.processlist where id <> connection_id() '
              "and db = database()\") as held\n    for each c in held\n      call other.execute(\"kill {c.id}\")\n"
              "    end"),
}
STREAM_QUERY = {"postgresql": "select n from generate_series(1, 100000) as n",
                "mysql": "select seq as n from seq_1_to_100000"}


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_query_whose_connection_was_lost_as_its_loop_stopped_prints_no_traceback(
        tmp_path: Path, server: str, request: pytest.FixtureRequest) -> None:
    """Embedded, a loop over a query that stopped after the database had lost the query's connection (a
    server killed or restarted, the connection terminated) printed a Python traceback on stderr: 'Task
    exception was never retrieved ... FlowRuntimeError('db: terminating connection due to administrator
    command')', from closing the stream; the CLI said 'error: Task exception was never retrieved ...'. The
    rows read were read whole: the run is ok, and the lost connection is let go with a log line."""
    import subprocess
    import sys

    url = str(request.getfixturevalue(server))
    kind = "postgresql" if server == "postgres" else "mysql"
    victim = f"{url}?application_name=victim" if kind == "postgresql" else url
    (tmp_path / "f.flow").write_text(f"""use db = sql(url: "{victim}")
use other = sql(url: "{url}")
call db.query("{STREAM_QUERY[kind]}") as rows
for each r in rows
  if r.n == 3
    {STREAM_KILL[kind]}
  end
  if r.n == 5
    stop
  end
  emit r.n
end
""")
    program = ("import flowlang\nr = flowlang.load('f.flow').run()\nprint(r.status, r.outputs, r.error)\n")
    embedded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path,
                              timeout=60)
    assert embedded.stdout == "ok [1, 2, 3, 4] None\n", embedded.stderr
    assert embedded.stderr == ""  # flowlang's lines go to its logger, which has no handler here
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 0 and ran.stdout == "1\n2\n3\n4\n", ran.stderr
    assert "Traceback" not in ran.stderr and "Task exception" not in ran.stderr, ran.stderr
    assert "; that was the connection of a query after the rows the flow read: it is let go" in ran.stderr


def test_a_pool_s_failed_reset_is_a_line_of_flowlang_s_log_not_a_traceback(postgres: str) -> None:
    """SQLAlchemy's pool logs a connection it could not reset (roll back) as it came back, one the database
    lost meanwhile, as 'Exception during reset or similar' with a traceback at error level: embedded (no
    handler of the program's own) Python printed it on stderr. A pool of flowlang's says it through
    flowlang's logger, naming the connection and the database's words; a host program's pool is left as is."""
    import subprocess
    import sys

    program = f"""
import logging, sqlalchemy as sa
from flowlang.connectors.sql_pool_logs import logging_name, quiet
logging.getLogger("flowlang").addHandler(logging.StreamHandler())
engine = sa.create_engine("{postgres}?application_name=victim", pool_logging_name=logging_name("db"))
quiet(engine.pool.logger)
raw = engine.raw_connection()
raw.cursor().execute("select 1")
with sa.create_engine("{postgres}").connect() as other:
    other.exec_driver_sql("{KILL_OTHERS['postgresql']}")
raw.close()  # back to the pool: its rollback fails
print("closed")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.stdout == "closed\n", done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("db: a connection could not be rolled back as it went back to the pool: terminating "
                           "connection due to administrator command"), line
    assert line.endswith("; the pool lets that connection go (a new one is made when needed)"), line


def test_a_failed_postgres_batch_logs_no_line_of_psycopg_s_pipeline(tmp_path: Path, postgres: str) -> None:
    """psycopg writes a batch in pipeline mode, and a row the database refused left the pipeline with
    answers still to come: psycopg logged, beside the record's own error, a warning of its internals
    ('error ignored terminating <psycopg.Pipeline [INERROR, pipeline=ON] (host=... database=...) at
    0x7f...>: pipeline aborted'), in one run of two or so with a bad row early in a batch of 600. The
    record's error says it all: the line is a debug line of flowlang's logger now."""
    (tmp_path / "f.flow").write_text(f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists piped")
call db.execute("create table piped (id int primary key, b boolean not null)")
for each i in range(1000)
  send {{id: i, b: if i != 3 then true else null}} to db.insert(table: "piped") batch 1000
end
call db.query("select count(*) as n from piped") as found
emit found[0].n
""")
    for _ in range(3):
        ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
        assert ran.status == 3 and ran.stdout == "999\n", ran.stderr
        assert "violates not-null constraint" in ran.stderr
        assert "Pipeline" not in ran.stderr and "error ignored" not in ran.stderr, ran.stderr


def test_a_mariadb_url_option_the_driver_refuses_is_said_in_the_url_s_terms(tmp_path: Path, mariadb: str) -> None:
    """PyMySQL takes each option of the URL as a keyword argument, and a wrong one failed with Python's words:
    'db: TypeError: Connection.__init__() got an unexpected keyword argument ...', 'db: AttributeError:
    'NoneType' object has no attribute 'encoding'' (charset=utf-8), 'db: FileNotFoundError: [Errno 2] No such
    file or directory' (which file not said); a port that is no number 'invalid literal for int() with base
    10'. Each names the option now, and the password stays masked."""
    user, _, rest = mariadb.partition("@")
    base = mariadb if ":" in user.partition("://")[2] else f"{user}:Sekr3tPW@{rest}"  # refused before connecting
    said = {
        "?chraset=utf8mb4": "the URL's option chraset (?chraset=...) is no connection option of MySQL/MariaDB's "
                            "driver (PyMySQL): is charset meant?",
        "?charset=utf-8": "the URL's charset=utf-8 is no character set MySQL/MariaDB knows: charset=utf8mb4 holds "
                          "every character",
        "?ssl_ca=/no/such/ca.pem": "the URL's ssl_ca=/no/such/ca.pem: there is no such file",
        "?connect_timeout=ten": "the URL's connect_timeout= must be a whole number, got 'ten'",
        "?local_infile=maybe": "the URL's local_infile= must be true or false, got 'maybe'",
    }
    for option, words in said.items():
        (tmp_path / "f.flow").write_text('use db = sql(url: secret.DB_URL)\ncall db.query("select 1 as x") as r\n'
                                         "emit r\n")
        ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"DB_URL": base + option})
        assert ran.status == 1, ran.stdout
        assert words in ran.stderr and "Error" not in ran.stderr and "Sekr3tPW" not in ran.stderr, ran.stderr
    port = base.rsplit(":", 1)[1].split("/")[0]
    (tmp_path / "f.flow").write_text(f'use db = sql(url: "{base.replace(port, "33o6")}")\n'
                                     'call db.query("select 1 as x") as r\nemit r\n')
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert "db: cannot use the database URL: its port must be a whole number, got '33o6'" in ran.stderr, ran.stderr
    (tmp_path / "f.flow").write_text(f'use db = sql(url: "{mariadb}?charset=utf8mb4&connect_timeout=5")\n'
                                     'call db.query("select 1 as x") as r\nemit r\n')
    assert cli("run", "f.flow", "--log-format", "text", cwd=tmp_path).stdout == '{"x":1}\n'


def test_a_record_past_mariadb_s_max_allowed_packet_says_so(tmp_path: Path, mariadb: str) -> None:
    """MariaDB drops the connection of a statement larger than its max_allowed_packet before reading it: the
    record failed with 'db: MySQL server has gone away (ConnectionResetError(104, 'Connection reset by peer'))
    (error 2006)', as if the server had stopped. It fails alone still, saying how large it is and the limit."""
    import sqlalchemy as sa

    admin = sa.create_engine(mariadb)
    with admin.connect() as conn:
        before = conn.exec_driver_sql("select @@global.max_allowed_packet").scalar()
        conn.exec_driver_sql("set global max_allowed_packet = 1048576")  # new connections only
    try:
        result = run(tmp_path, f"""
use db = sql(url: "{mariadb}")
call db.execute("drop table if exists packets")
call db.execute("create table packets (id int primary key, s longtext)")
let big = pad_left("", 1500000, "x")
for each r in [{{id: 1, s: "small"}}, {{id: 2, s: big}}, {{id: 3, s: "small"}}]
  send r to db.insert(table: "packets") batch 3
end
for each r in [{{id: 4, s: big}}, {{id: 5, s: "ok"}}]
  send r to db.insert(table: "packets")
end
call db.query("select id from packets order by id") as rows
emit [r.id for r in rows]
""")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"set global max_allowed_packet = {int(before)}")
        admin.dispose()
    assert result.status == "partial" and result.outputs == [[1, 3, 5]], result.error
    assert [e.record["id"] for e in result.errors] == [2, 4]
    for error in result.errors:
        assert error.message.endswith("; the record is some 1,500,035 bytes, and the server takes no statement over "
                                      "1,048,576 bytes (its max_allowed_packet), dropping the connection: raise "
                                      "max_allowed_packet on the server (set global max_allowed_packet = ...), or "
                                      "send the value in parts"), error.message


def test_a_parallel_loop_reading_more_queries_at_once_than_the_old_pool_held(tmp_path: Path, database: str) -> None:
    """Each query being read holds a connection until its last page, and SQLAlchemy's pool held 15: in a
    `parallel 16` loop whose iterations each read 1,200 rows, the 16th waited on the connection's one thread
    for a connection none could give back (their next pages waited behind it), and after 30 s failed ('db:
    TimeoutError: QueuePool limit of size 5 overflow 10 reached ...'), the run stalled meanwhile. The pool has
    no limit of its own now: every iteration reads its rows, at once."""
    started = time.monotonic()
    result = run(tmp_path, f"""
use db = sql(url: "{database}")
call db.execute("drop table if exists many")
call db.execute("create table many (n int)")
for each i in range(1200)
  send {{n: i}} to db.insert(table: "many") batch 1200
end
for each i in range(16) parallel 16
  call db.query("select n from many") as rows
  let total = 0
  for each r in rows
    let total = total + r.n
  end
  emit total
end
""")
    assert result.ok, result.error
    assert result.outputs == [sum(range(1200))] * 16
    assert time.monotonic() - started < 25


@pytest.mark.parametrize("options", ["?mode=ro", "?mode=ro&uri=true", "?immutable=1"])
def test_a_sqlite_file_opened_read_only_is_read_and_not_written(tmp_path: Path, options: str) -> None:
    """`sqlite:///crm.db?mode=ro` was not read only: SQLAlchemy drops SQLite's own parameters without
    uri=true (a warning with a line of flowlang's source), and with it gives SQLite the name without
    'file:', which SQLite takes for a file's name: a new, empty 'crm.db?mode=ro' was made beside crm.db, and
    the flow's query said 'no such table: t' (its writes went into that file). Read only, its WAL mode
    PRAGMA (a write) failed every query. Now the file is opened read only: read, and every write refused."""
    con = sqlite3.connect(tmp_path / "crm.db")  # in the default journal mode, as another program makes it
    con.execute("create table t (a int)")
    con.execute("insert into t values (7)")
    con.commit()
    con.close()
    (tmp_path / "f.flow").write_text(f"""
use db = sql(url: "sqlite:///crm.db{options}")
call db.query("select a from t") as rows
emit [r.a for r in rows]
call db.execute("insert into t values (8)")
""")
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.stdout == "[7]\n", ran.stderr
    assert ran.status == 1 and "db: attempt to write a readonly database" in ran.stderr, ran.stderr
    assert "Warning" not in ran.stderr, ran.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("crm.db")) in (
        ["crm.db"], ["crm.db", "crm.db-shm", "crm.db-wal"]), list(tmp_path.iterdir())
    con = sqlite3.connect(tmp_path / "crm.db")
    assert con.execute("select a from t").fetchall() == [(7,)]
    con.close()


def test_a_missing_sqlite_file_opened_read_only_says_it_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text('use db = sql(url: "sqlite:///sub dir/gone #1.db?mode=ro")\n'
                                     'call db.query("select 1 as x") as rows\nemit rows\n')
    ran = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert ran.status == 1
    assert (f"db: unable to open database file: {tmp_path.resolve() / 'sub dir' / 'gone #1.db'} is not there (the "
            "URL opens it read only, mode=ro, so it is not made)") in ran.stderr, ran.stderr
    assert not (tmp_path / "sub dir").exists()
    (tmp_path / "g.flow").write_text('use db = sql(url: "sqlite:///sub dir/a #1.db?mode=rwc")\n'
                                     'call db.execute("create table t (a int)")\n')
    assert cli("run", "g.flow", "--log-format", "text", cwd=tmp_path).status == 0
    assert (tmp_path / "sub dir" / "a #1.db").exists()  # its name as written, spaces and # too


def test_booleans_numbers_and_datetimes_are_written_into_postgres_json_columns(tmp_path: Path, postgres: str) -> None:
    """A boolean, a number or a datetime sent to a json/jsonb column went as itself, which PostgreSQL refuses
    ('column "j" is of type jsonb but expression is of type boolean'): a jsonb true or 5 read from one
    table could not be copied into another. Each is written as its JSON now (a datetime as its ISO text, as
    in an object, a decimal exact), in a batch too. A text that is JSON is still JSON text to the database;
    any other text, which failed ('invalid input syntax for type json': a jsonb "2024-02-29" read could not
    be copied), is a JSON string; null is SQL NULL."""
    result = run(tmp_path, f"""
use db = sql(url: "{postgres}")
call db.execute("drop table if exists jsons")
call db.execute("create table jsons (id int primary key, j jsonb, k json)")
let rows = [{{id: 1, j: true, k: false}}, {{id: 2, j: 5, k: 12345678901234567890.10}}, {{id: 3, j: "[1, 2]", k: null}},
            {{id: 4, j: datetime("2024-03-31T02:30:00+02:00"), k: date("2024-02-29")}}, {{id: 5, j: {{a: [1.10]}}}},
            {{id: 7, j: "plain text", k: "[true, 1.50]"}}]
for each r in rows
  send r to db.insert(table: "jsons") batch 10
end
send {{id: 6, j: false}} to db.upsert(table: "jsons", key: "id")
call db.query("select id, j, k from jsons order by id") as got
for each r in got
  send {{id: r.id + 10, j: r.j, k: r.k}} to db.insert(table: "jsons")
end
call db.query("select id, j, k, jsonb_typeof(j) as t from jsons order by id") as out
for each r in out
  emit r
end
""")
    assert result.ok, result.error
    rows = result.outputs
    assert [(r["id"], r["j"], r["k"], r["t"]) for r in rows[:7]] == [
        (1, True, False, "boolean"), (2, 5, Decimal("12345678901234567890.10"), "number"), (3, [1, 2], None, "array"),
        (4, "2024-03-31T02:30:00+02:00", "2024-02-29", "string"), (5, {"a": [Decimal("1.10")]}, None, "object"),
        (6, False, None, "boolean"), (7, "plain text", [True, Decimal("1.50")], "string")]
    assert [(r["id"] - 10, r["j"], r["k"]) for r in rows[7:]] == [(r["id"], r["j"], r["k"]) for r in rows[:7]]


def test_a_sqlite_url_option_nothing_reads_is_one_warning_line_of_the_connection(tmp_path: Path) -> None:
    """SQLAlchemy's warning of an option neither SQLite nor its driver reads (`?journal_mode=wal`) was shown
    as Python shows a warning: 'warning: /.../flowlang/connectors/sql.py:474: SAWarning: Query string
    argument(s) ...' with the line of flowlang's code that made the engine, and told to add uri=true (which
    reads no journal_mode either). It is one line of the connection's now, in the run's log format."""
    import json

    (tmp_path / "f.flow").write_text('use db = sql(url: "sqlite:///x.db?journal_mode=wal")\n'
                                     'call db.query("select 1 as x") as r\nemit r\n')
    ran = cli("run", "f.flow", "--log-format", "json", cwd=tmp_path)
    assert ran.status == 0 and ran.stdout == '{"x":1}\n', ran.stderr
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    [warned] = [line for line in lines if line["level"] == "warning"]
    assert warned["message"].startswith("db: the URL's 'journal_mode' is read neither by SQLite nor by its driver, "
                                        "and is ignored (SQLite's URI parameters are cache, immutable, mode, "), warned
    assert "sql.py" not in ran.stderr and "SAWarning" not in ran.stderr and "sqlalche.me" not in ran.stderr
