"""A SQLite file that SQLite cannot open or read: the error names the file, and a folder says so
('db: unable to open database file' and 'db: file is not a database' named neither; found by a
new-user trial of the sql connector)."""

from __future__ import annotations

from pathlib import Path

import flowlang

FLOW = 'use db = sql(url: "sqlite:///{name}")\ncall db.query("select 1 as a") as r\nemit list(r)\n'


def run(tmp_path: Path, name: str) -> flowlang.Result:
    (tmp_path / "f.flow").write_text(FLOW.format(name=name))
    return flowlang.load(tmp_path / "f.flow").run(state_dir=tmp_path / "state")


def test_a_folder_given_as_the_sqlite_file_is_named_and_said_to_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data.db").mkdir()
    result = run(tmp_path, "data.db")
    assert result.error is not None
    assert result.error.message == (f"db: unable to open database file: {tmp_path.resolve() / 'data.db'} is a "
                                    "folder, not a SQLite file")


def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n" * 20)
    result = run(tmp_path, "notes.db")
    assert result.error is not None
    assert result.error.message == f"db: file is not a database: {tmp_path.resolve() / 'notes.db'}"
    assert (tmp_path / "notes.db").read_text().startswith("these are my notes")


def test_a_new_file_is_still_made(tmp_path: Path) -> None:
    assert run(tmp_path, "sub/new.db").outputs == [{"a": 1}]


def test_a_folder_where_the_store_file_goes_is_said_to_be_a_folder(tmp_path: Path) -> None:
    """--state-dir st whose st/flowlang.db is a folder said only 'cannot use the state folder st: unable to
    open database file', the same words as a folder that cannot be written (found by an outside tester)."""
    from conftest import cli

    (tmp_path / "st" / "flowlang.db").mkdir(parents=True)
    (tmp_path / "f.flow").write_text("emit 1\n")
    result = cli("run", "f.flow", "--state-dir", "st", "--log-format", "text", cwd=tmp_path)
    assert result.status == 1 and result.stdout == ""
    assert ("cannot use the state folder st: unable to open database file: st/flowlang.db is a folder, not the "
            "store's SQLite file") in result.stderr, result.stderr
