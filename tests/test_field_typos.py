"""A field read that found nothing in every record of its loop, while the records have a close name
(issue 16): a warning at the end of the run with did-you-mean, the exit status unchanged; and reads
that did find something, or that run more than once per record, stay quiet. `flowlang check` warns
of a field that is not a column of a literal CSV file's header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

import flowlang
from conftest import cli


def people(folder: Path, n: int = 2000) -> None:
    lines = ["id,name,email"] + [f"{i},n{i},U{i}@Example.com" for i in range(n)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n")


READ = 'use f = file(path: "people.csv")\ncall f.read() as rows\n'


def warned(flow: str, tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "f.flow").write_text(flow)
    result = cli("run", "f.flow", "--log-format", "text", "--quiet", *extra, cwd=tmp_path)
    assert result.status in (0, 3), result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_a_typo_in_every_record_is_a_warning_at_the_end(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    people(tmp_path)
    (tmp_path / "f.flow").write_text(READ + "for each row in rows\n  emit {id: row.id, email: lower(row.emial)}\nend\n")
    result = cli("run", "f.flow", "--log-format", "text", "--quiet", cwd=tmp_path)
    assert result.status == 0  # a warning does not change the exit status
    assert result.stdout.count('"email":null') == 2000
    assert result.stderr == snapshot
    assert result.stderr.count("warning:") == 1
    as_json = cli("run", "f.flow", "--log-format", "json", "--quiet", cwd=tmp_path)
    lines = [json.loads(line) for line in as_json.stderr.splitlines()]
    (warning,) = [line for line in lines if line["level"] == "warning"]
    assert warning["location"] == "f.flow:4:38"
    assert warning["message"] == ("'emial' was missing in all 2,000 records of rows; they have id, name, email; "
                                  "did you mean 'email'?")


def test_nested_reads_and_closures_and_generated_code(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    records = [{"id": i, "customer": {"email": f"u{i}@x", "name": "n", "vip": i % 2 == 0}} for i in range(5)]
    (tmp_path / "in.json").write_text(json.dumps(records))
    flow = ("for each o in input\n"
            "  let c = o.customer\n"
            "  emit c.emial\n"                                    # a closure on a local
            "  emit lower(o.customer.nmae) ?? o.custmer\n"        # generated code, a chain
            "  emit o.customer.vip\n"                             # found in some: quiet
            "  emit o.custmer.email\n"                            # a step inside a chain
            "end\n")
    assert warned(flow, tmp_path, "--input", "in.json") == snapshot


def test_quiet_when_a_record_has_it_or_not_every_record_reads_it(tmp_path: Path) -> None:
    people(tmp_path, 3)
    (tmp_path / "extra.csv").write_text("id,name,email,mail\n1,a,b,\n2,c,d,e\n")
    quiet = [
        READ + "for each row in rows\n  if row.id == \"9\"\n    emit row.emial\n  end\nend\n",  # no record reached it
        READ + "for each row in rows\n  emit [x.emial for x in [row, row]]\nend\n",  # in a comprehension
        READ + "function m(r)\n  return r.emial\nend\nfor each row in rows\n  emit m(row)\nend\n",  # in a function
        READ + "for each row in rows\n  emit row.zzz\nend\n",  # no close name
        READ + "emit rows[0].emial\n",  # outside a loop
        'use f = file(path: "extra.csv")\ncall f.read() as rows\nfor each row in rows\n  emit row.mail\nend\n',
        'use f = file(path: "extra.csv")\ncall f.read() as rows\nfor each row in rows\n  emit row.emil\nend\n',
    ]
    for flow in quiet[:-1]:
        assert warned(flow, tmp_path) == [], flow
    # 'mail' is empty in one record and set in the other; 'emil' is close to both email and mail: one warning
    assert len(warned(quiet[-1], tmp_path)) == 1


def test_a_read_that_only_some_records_reach_warns_when_every_one_of_them_missed(tmp_path: Path) -> None:
    """In an if branch, a try, or after a skip: the records that reached the read are counted (before,
    the read was compared with every record of the loop, so such a typo was never said)."""
    people(tmp_path, 3)
    in_branch = warned(READ + "for each row in rows\n  if row.id != \"1\"\n    emit row.emial\n  end\nend\n",
                       tmp_path)
    assert in_branch == ["warning: 'emial' was missing in all 2 records of rows that reached it (of 3); they have "
                         "id, name, email; did you mean 'email'?  (f.flow:5:14)"]
    after_skip = warned(READ + "for each row in rows\n  if row.id == \"1\"\n    skip\n  end\n"
                        "  emit {id: row.id, e: row.emial}\nend\n", tmp_path)
    assert after_skip == ["warning: 'emial' was missing in all 2 records of rows that reached it (of 3); they "
                          "have id, name, email; did you mean 'email'?  (f.flow:7:28)"]
    one = warned(READ + "use out = file(path: \"out.jsonl\")\nfor each row in rows parallel 2\n"
                 "  if row.id == \"1\"\n    if row.name != \"\"\n      send {e: row.emial} to out\n"
                 "    end\n  end\nend\n", tmp_path)
    assert one == ["warning: 'emial' was missing in the 1 record of rows that reached it (of 3); it has id, name, "
                   "email; did you mean 'email'?  (f.flow:7:20)"]
    assert (tmp_path / "out.jsonl").read_text() == '{"e":null}\n'

    # an optional field that some of the records reaching the read have is no typo; nor one read by no record
    records = [{"kind": "p", "note": 1}, {"kind": "p", "note": 2, "notes": "x"}, {"kind": "q", "note": 3}]
    (tmp_path / "in.json").write_text(json.dumps(records))
    optional = ('for each row in input\n  if row.kind == "p"\n    emit row.notes\n  end\n'
                '  if row.kind == "z"\n    emit row.nots\n  end\nend\n')
    assert warned(optional, tmp_path, "--input", "in.json") == []
    assert len(warned(optional.replace("row.notes", "row.nots"), tmp_path, "--input", "in.json")) == 1


def test_a_field_present_as_null_in_every_record_is_not_a_typo(tmp_path: Path) -> None:
    flow = flowlang.compile("for each r in input\n  emit r.emial\nend\n", name="f.flow")
    records = [{"email": "a", "emial": None}, {"email": "b"}]
    result = flow.run(input=records)
    assert result.ok and result.outputs == [None, None]
    assert flow.run(input=[{"email": "a"}, {"email": "b"}]).ok


def test_inner_loops_and_parallel_loops_count_their_own_records(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    orders = [{"id": i, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]} for i in range(3)]
    (tmp_path / "in.json").write_text(json.dumps(orders))
    flow = ("for each o in input parallel 2\n"
            "  emit o.idd\n"
            "  for each i in o.items\n"
            "    emit i.qtty\n"
            "  end\n"
            "end\n")
    assert warned(flow, tmp_path, "--input", "in.json") == snapshot


def test_check_warns_of_a_field_that_is_not_a_column_of_a_literal_csv(tmp_path: Path,
                                                                      snapshot: SnapshotAssertion) -> None:
    people(tmp_path, 3)
    (tmp_path / "semi.csv").write_text("id;full_name\n1;a\n")
    (tmp_path / "f.flow").write_text(
        READ + "use g = file(path: \"semi.csv\", delimiter: \";\")\ncall g.read() as others\n"
        "for each row in rows\n"
        "  let row.extra = 1\n"
        "  emit {id: row.id, email: lower(row.emial), e: row.extra, z: row.zzz}\n"
        "  map row to out\n    nm = row.nmae\n  end\n"
        "end\n"
        "for each o in others\n  emit o.full_nam\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 0  # warnings only
    assert result.stderr == snapshot
    assert result.stderr.count("warning:") == 3  # not row.id, row.extra (assigned) or row.zzz (no close column)


def test_check_is_quiet_when_the_shape_is_not_known(tmp_path: Path) -> None:
    people(tmp_path, 3)
    for flow in ('use f = file(path: "*.csv")\ncall f.read() as rows\nfor each r in rows\n  emit r.emial\nend\n',
                 'use f = file(path: "nope.csv")\ncall f.read() as rows\nfor each r in rows\n  emit r.emial\nend\n',
                 'let p = "people.csv"\nuse f = file(path: p)\ncall f.read() as rows\nfor each r in rows\n'
                 '  emit r.emial\nend\n',
                 READ + "for each r in rows\n  emit r.email\nend\n"):
        (tmp_path / "f.flow").write_text(flow)
        result = cli("check", "f.flow", cwd=tmp_path)
        assert "warning" not in result.stderr, (flow, result.stderr)


def test_check_of_a_csv_it_cannot_read_is_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_bytes(b"id,name\r1,a\r2,b\r")  # CR line ends: the run refuses it
    (tmp_path / "f.flow").write_text(READ + "for each r in rows\n  emit r.nmae\nend\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 0 and "internal error" not in result.stderr and "warning" not in result.stderr


def test_a_recorded_cassette_gives_check_the_fields_and_the_replay_warns_too(tmp_path: Path,
                                                                            snapshot: SnapshotAssertion) -> None:
    from fakeapi import FakeApi, paged

    orders = [{"id": i, "email": f"c{i}@x", "total": i} for i in range(1, 6)]
    api = FakeApi({})
    api.route("GET", r"^/orders$", lambda req: paged(orders, req, "cursor", api.url))
    flow = ('use api = http(base_url: env.API)\n'
            'call api.get("/orders", pages: {style: "cursor", cursor: "next_cursor", records: "results", size: 2}) '
            'as orders\nfor each o in orders\n  emit {id: o.id, e: o.email}\nend\n')
    (tmp_path / "f.flow").write_text(flow)
    with api:
        recorded = cli("run", "f.flow", "--record", "cassette", "--quiet", cwd=tmp_path, env={"API": api.url})
        assert recorded.status == 0, recorded.stderr
    (tmp_path / "f.flow").write_text(flow.replace("o.email", "o.emial"))
    checked = cli("check", "f.flow", cwd=tmp_path)
    assert checked.status == 0 and checked.stderr == snapshot
    replayed = cli("test", "f.flow", "--cassette", "cassette", "--log-format", "text", cwd=tmp_path)
    assert replayed.status == 1  # the outputs differ from the recorded ones
    assert ("warning: 'emial' was missing in all 5 records of orders; they have id, email, total; did you mean "
            "'email'?  (f.flow:4:24)") in replayed.stderr


def test_check_warns_of_a_sent_field_the_connector_file_does_not_declare(tmp_path: Path,
                                                                         snapshot: SnapshotAssertion) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "crm.toml").write_text(
        'name = "crm"\ntitle = "CRM"\nbase_url = "http://127.0.0.1:9"\n\n'
        '[operations.create_contact]\nmethod = "POST"\npath = "/contacts"\nfields = ["email", "name", "phone"]\n')
    (tmp_path / "f.flow").write_text(
        "use crm = crm()\n"
        "for each c in input\n"
        "  map c to contact\n    emial = c.mail\n    name = c.n\n  end\n"
        "  send contact to crm.create_contact()\n"
        "  send {nmae: c.n, email: c.mail, zzz: 1} to crm.create_contact()\n"
        "  map c to open\n    ...c\n    phnoe = 1\n  end\n"
        "  send open to crm.create_contact()\n"  # a spread: its fields are not known
        "end\n")
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.status == 0 and result.stderr.count("warning:") == 2
    assert result.stderr == snapshot


@pytest.mark.parametrize("generated", [True, False])
def test_closures_and_generated_code_count_the_same(generated: bool, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from flowlang.compile.expressions import ExpressionCompiler

    monkeypatch.setattr(ExpressionCompiler, "codegen", generated)
    flow = flowlang.compile("for each o in input\n  emit [o.a.b, o.a.bb.c, o.aa.b, o.a.bx, o.n]\nend\n",
                            name="f.flow")
    records = [{"a": {"b": 1, "bb": {"c": i}}, "n": i} for i in range(4)] + [{"a": {"b": 2, "bb": None}, "n": None}]
    with caplog.at_level("WARNING", logger="flowlang"):
        result = flow.run(input=records)
    assert result.ok and result.outputs[0] == [1, 0, None, None, 0]
    warned = sorted(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert warned == [  # o.a.bb is null in one record only, o.n is null in one: quiet
        "'aa' was missing in all 5 records of input; they have a, n; did you mean 'a'?",
        "'bx' (in o.a.bx) was missing in all 5 records of input; o.a has b, bb; did you mean 'b'?",
    ]


def test_check_formats_for_tools_carry_the_warnings(tmp_path: Path) -> None:
    people(tmp_path, 3)
    (tmp_path / "f.flow").write_text(READ + "for each row in rows\n  emit lower(row.emial)\nend\n")
    as_json = cli("check", "f.flow", "--format", "json", cwd=tmp_path)
    github = cli("check", "f.flow", "--format", "github", cwd=tmp_path)
    assert as_json.status == github.status == 0
    [found] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (found["severity"], found["line"], found["column"]) == ("warning", 4, 18)  # under the field name
    assert "did you mean 'email'?" in found["message"] + (found["hint"] or "")
    assert github.stdout.startswith("::warning file=f.flow,line=4,col=18,")


def test_a_csv_read_with_the_wrong_delimiter_is_named_as_such(tmp_path: Path) -> None:
    """A European export (id;name;email) read with the default ',' is one column 'id;name;email':
    r.email found nothing and no close name, so there was no warning at all (r.id, none either) and the
    run sent records of nulls, exit 0. Each read says the field's name is among the column's, joined by
    ';', and which delimiter to give."""
    (tmp_path / "in.csv").write_text("id;name;email\n1;Ann;ann@example.com\n2;Bob;bob@example.com\n")
    flow = ('use src = file(path: "in.csv")\ncall src.read() as rows\nfor each r in rows\n'
            '  emit {id: r.id, email: r.email}\nend\n')
    lines = warned(flow, tmp_path)
    assert [line.split(" was missing")[0] for line in lines] == ["warning: 'id'", "warning: 'email'"], lines
    assert ("'email' was missing in all 2 records of rows; they have id;name;email: one field whose name holds "
            "'email' between ';'s, as a CSV file read with the wrong delimiter has (give the file's: delimiter: "
            "';')") in lines[1]
    assert warned(flow.replace('"in.csv"', '"in.csv", delimiter: ";"'), tmp_path) == []


def test_a_column_with_spaces_in_its_name_is_shown_quoted_and_read_with_brackets(tmp_path: Path) -> None:
    """A CSV header 'id, name ,Email' gave 'its columns: id,  name , Email' and 'did you mean ' name '?',
    a field r. name  cannot be written. Such a name is shown quoted, and the hint says how to read it,
    by check and at the end of the run; a plain name's hint is as before."""
    (tmp_path / "p.csv").write_text("id, name ,Email\n1, Ann ,a@x\n")
    (tmp_path / "h.flow").write_text('use f = file(path: "p.csv")\ncall f.read() as rows\nfor each r in rows\n'
                                     '  emit {name: r.name, email: r.email}\nend\n')
    checked = cli("check", "h.flow", "--log-format", "text", cwd=tmp_path)
    assert ("h.flow:4:17: warning: 'name' is not a column of p.csv (its columns: id, \" name \", Email), so r.name is "
            "null in every record") in checked.stderr, checked.stderr
    assert ('hint: did you mean " name "? write r[" name "] (the name has spaces around it, as the header cell '
            "has)") in checked.stderr
    assert "hint: did you mean 'Email'?\n" in checked.stderr
    ran = cli("run", "h.flow", "--log-format", "text", cwd=tmp_path)
    assert ("warning: 'name' was missing in the 1 record of rows; it has id, \" name \", Email; did you mean "
            '" name "? write r[" name "] (the name has spaces around it, as the header cell has)  '
            "(h.flow:4:17)") in ran.stderr, ran.stderr
