"""Benchmark: a flow doing `send r to db.insert(table: ...) batch 1000` (and the `upsert` variant) of
100,000 rows into a SQLite file, against the same writes measured in the same run with raw `sqlite3`
(`executemany` in one transaction) and with SQLAlchemy Core in the same transactions as the flow (one
per 1,000 rows). Every contender starts from the same input dicts and binds the same values (a
decimal as its text, as flowlang does for SQLite); the upsert updates every row of a table that
holds them all. Prints the median of alternating runs and the ratios (goal: at most 2x SQLAlchemy
Core, at most 3.5x raw sqlite3).

    python benchmarks/sql.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

import flowlang

BATCH = 1000
COLUMNS = ("id", "name", "email", "qty", "price", "active")
CREATE = ("create table t (id integer primary key, name text, email text, qty integer, price numeric, "
          "active boolean)")
GOALS = {"SQLAlchemy Core": 2.0, "raw sqlite3": 3.5}

FLOWS = {
    "insert": """
use db = sql(url: "sqlite:///bench.db")
for each r in input
  send r to db.insert(table: "t") batch 1000
end
""",
    "upsert": """
use db = sql(url: "sqlite:///bench.db")
for each r in input
  send r to db.upsert(table: "t", key: "id") batch 1000
end
""",
}


def generate(n: int, salt: str = "") -> list[dict[str, Any]]:
    return [{"id": i, "name": f"name {i}{salt}", "email": f"user{i}@example.com", "qty": i % 17,
             "price": Decimal(i % 10_000) / 100, "active": i % 3 == 0} for i in range(n)]


def as_tuple(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["id"], r["name"], r["email"], r["qty"], str(r["price"]), r["active"])


def as_params(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "name": r["name"], "email": r["email"], "qty": r["qty"], "price": str(r["price"]),
            "active": r["active"]}


def raw_sqlite(db: Path, op: str, rows: list[dict[str, Any]]) -> None:
    sql = f"insert into t ({', '.join(COLUMNS)}) values ({', '.join('?' for _ in COLUMNS)})"
    if op == "upsert":
        sql += " on conflict (id) do update set " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    con = sqlite3.connect(db)
    try:
        with con:
            con.executemany(sql, [as_tuple(r) for r in rows])
    finally:
        con.close()


def sqlalchemy_core(db: Path, op: str, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(f"sqlite:///{db}")
    table = sa.table("t", *[sa.column(c) for c in COLUMNS])
    if op == "insert":
        stmt: Any = sa.insert(table)
    else:
        ins = sqlite_insert(table)
        stmt = ins.on_conflict_do_update(index_elements=["id"], set_={c: ins.excluded[c] for c in COLUMNS[1:]})
    for start in range(0, len(rows), BATCH):
        with engine.begin() as conn:
            conn.execute(stmt, [as_params(r) for r in rows[start:start + BATCH]])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = generate(args.records)
    changed = generate(args.records, salt=" (changed)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "bench.db"
        empty, full = folder / "empty.db", folder / "full.db"
        with sqlite3.connect(empty) as con:
            con.execute(CREATE)
        con.close()
        shutil.copy(empty, full)
        raw_sqlite(full, "insert", rows)
        flows = {op: flowlang.compile(text, name=f"{op}.flow", base_dir=folder) for op, text in FLOWS.items()}

        def flow_run(op: str, data: list[dict[str, Any]]) -> None:
            result = flows[op].run(input=data, collect=False, state_dir=folder / ".state")
            assert result.ok, result.error

        contenders: dict[str, Callable[[str, list[dict[str, Any]]], None]] = {
            "raw sqlite3": lambda op, data: raw_sqlite(db, op, data),
            "SQLAlchemy Core": lambda op, data: sqlalchemy_core(db, op, data),
            "flowlang": flow_run,
        }

        def timed(name: str, op: str) -> float:
            shutil.copy(empty if op == "insert" else full, db)
            data = rows if op == "insert" else changed
            start = time.perf_counter()
            contenders[name](op, data)
            elapsed = time.perf_counter() - start
            with sqlite3.connect(db) as con:  # every contender wrote every row
                count, names = con.execute("select count(*), count(distinct name) from t "
                                           "where name like '%(changed)' or ? = 'insert'", (op,)).fetchone()
            con.close()
            assert count == names == len(data), (name, op, count, names)
            return elapsed

        times: dict[tuple[str, str], list[float]] = {(n, op): [] for op in FLOWS for n in contenders}
        for name in contenders:  # warm up: imports, the file cache, the compiled flow
            timed(name, "insert")
        for _ in range(args.repeat):  # alternate: this machine's speed varies from minute to minute
            for op in FLOWS:
                for name in contenders:
                    times[(name, op)].append(timed(name, op))

    n = args.records
    print(f"rows: {n:,}, batch {BATCH}; medians of {args.repeat} alternating runs")
    for op in FLOWS:
        median = {name: statistics.median(times[(name, op)]) for name in contenders}
        print(f"{op}:")
        for name, value in median.items():
            print(f"  {name + ':':17s} {value:.3f} s  ({n / value:,.0f} rows/s)")
        for base, goal in GOALS.items():
            ratio = median["flowlang"] / median[base]
            pairs = sorted(f / b for f, b in zip(times[("flowlang", op)], times[(base, op)], strict=True))
            print(f"  flowlang / {base}: {ratio:.2f}  (goal: at most {goal}: {'met' if ratio <= goal else 'NOT met'}; "
                  f"pairs {pairs[0]:.2f} to {pairs[-1]:.2f})")


if __name__ == "__main__":
    main()
