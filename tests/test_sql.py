"""The sql connector on SQLite (and PostgreSQL when a server is available)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

import flowlang


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


def test_sql_errors_are_clear(tmp_path: Path) -> None:
    result = run(tmp_path, 'use db = sql(url: "sqlite:///e.db")\ncall db.query("select * from nowhere") as r\n'
                           "emit list(r)\n")
    assert result.error is not None and "no such table: nowhere" in result.error.message
    assert result.error.line == 2


def test_upsert_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(flowlang.CheckError, match="upsert\\(\\) needs the argument 'key'"):
        run(tmp_path, 'use db = sql(url: "sqlite:///e.db")\nsend {a: 1} to db.upsert(table: "t")\n')


def start_postgres(folder: Path) -> tuple[str | None, str]:
    """A throwaway PostgreSQL server on loopback (initdb + pg_ctl), or why there is none."""
    given = os.environ.get("FLOWLANG_TEST_POSTGRES_URL")
    if given:
        return given, ""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "no PostgreSQL driver (pip install 'psycopg[binary]')"
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        return None, "no PostgreSQL server here (initdb and pg_ctl not found); set FLOWLANG_TEST_POSTGRES_URL"
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        if not shutil.which("runuser") or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            return None, "running as root without a postgres user to start the server as"
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chown(folder, pwd.getpwnam("postgres").pw_uid, -1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    init = subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], capture_output=True,
                          text=True)
    if init.returncode:
        return None, f"initdb failed: {init.stderr.strip()[:200]}"
    started = subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", f"-p {port} -k {folder} -h 127.0.0.1",
                              "-l", str(folder / "log"), "-w", "start"], capture_output=True, text=True)
    if started.returncode:
        return None, f"the PostgreSQL server did not start: {started.stderr.strip()[:200]}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", " ".join([*prefix, pg_ctl, "-D", str(data)])


@pytest.fixture(scope="module")
def postgres() -> object:
    folder = Path(tempfile.mkdtemp(prefix="flowlang-pg-"))  # in /tmp itself: the postgres user must reach it
    try:
        url, stop = start_postgres(folder)
        if url is None:
            pytest.skip(stop)
        yield url
        if stop:
            subprocess.run([*stop.split(), "-m", "fast", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
