"""Declarative connectors: connector files in a flow's connectors/ folder, their validation, batches,
base_url override, and what `flowlang check` and `flowlang connectors` know of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import flowlang
from conftest import cli
from fakeapi import FakeApi, Request

SHOP = """
name = "shop"
title = "A shop"
base_url = "https://shop.invalid/api/{tenant}"

[config]
tenant = { required = true }
key    = { required = true, secret = true }

[auth]
type = "api_key"
name = "X-Key"
value = "{key}"

[operations.list_items]
method = "GET"
path = "/items"
pagination = { style = "offset", size = 2, records = "items" }

[operations.get_item]
method = "GET"
path = "/items/{id}"

[operations.find_item]
method = "GET"
path = "/items"
query = { sku = "filter[sku]" }

[operations.create_item]
method = "POST"
path = "/items"
idempotency_key = "{sku}"

[operations.update_item]
method = "PATCH"
path = "/items/{id}"

[operations.create_items]
method = "POST"
path = "/items/batch"
batch = { max = 3, body = "items", results = "results", ok = "ok", error = "error" }
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "shop.toml").write_text(SHOP)
    return tmp_path


def run(folder: Path, text: str, api: FakeApi, **kw: Any) -> flowlang.Result:
    path = folder / "main.flow"
    path.write_text(text)
    return flowlang.load(path).run(env={"API": api.url}, state_dir=folder / ".state", **kw)


def test_operations_run_through_the_http_machinery(folder: Path) -> None:
    with FakeApi() as api:
        items = [{"id": i, "sku": f"S{i}"} for i in range(1, 6)]
        api.route("GET", "/t1/items", lambda req: (200, {}, {"items": items[int(req.query["offset"]):][:2]})
                  if "filter[sku]" not in req.query else (200, {}, [i for i in items if i["sku"] ==
                                                                     req.query["filter[sku]"]]))
        api.route("GET", r"/t1/items/(\d+)", lambda req: (200, {}, items[int(req.match[1]) - 1]))
        api.route("POST", "/t1/items", lambda req: (201, {}, {**req.body, "id": 9,
                                                            "key": req.headers.get("idempotency-key")}))
        api.route("PATCH", r"/t1/items/(\d+)", lambda req: (200, {}, {"patched": req.match[1]}))
        result = run(folder, """
use shop = shop(tenant: "t1", key: "k", base_url: env.API + "/t1")
call shop.list_items() as all
emit len(list(all))
lookup shop.find_item(sku: "S3") as three
call shop.get_item(id: 4) as four
send {sku: "NEW"} to shop.create_item as created
send {id: 2, name: "x"} to shop.update_item as patched
emit [three.id, four.sku, created.key, patched.patched]
""", api)
        assert result.outputs == [5, [3, "S4", "NEW", "2"]], result.error
        assert all(r.headers.get("x-key") == "k" for r in api.requests)
        assert api.count("GET", "/t1/items") == 4  # 3 pages of 2 + the find


def test_batches_map_results_back_to_records(folder: Path) -> None:
    with FakeApi() as api:
        def batch(req: Request) -> tuple[int, dict[str, str], Any]:
            return 200, {}, {"results": [{"ok": not i.get("bad"), "error": f"{i['sku']} refused"}
                                         for i in req.body["items"]]}
        api.route("POST", "/t/items/batch", batch)
        result = run(folder, """
use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")
for each s in ["A", "B", "C", "D", "E", "F", "G"]
  send {sku: s, bad: s == "C" or s == "G"} to shop.create_items batch 3
end
emit "done"
""", api)
        assert result.status == "partial"
        assert sorted(e.message for e in result.errors) == ["shop.create_items refused the record: C refused",
                                                         "shop.create_items refused the record: G refused"]
        assert [e.record for e in result.errors] == ["C", "G"]
        assert [len(r.body["items"]) for r in api.requests] == [3, 3, 1]
        assert result.stats.sent == 5


CANARY = 'Zq"\\\'ü€-canary-' + "x" * 200  # quotes, a backslash, non-ASCII, long


def test_a_long_error_of_a_batch_result_is_cut_and_a_secret_in_it_masked_whole(folder: Path) -> None:
    """An API's error field of 100,000 characters was the record's whole message: a log line and a
    `flowlang errors` line of 100 KB for each refused record. It is cut to 500 characters, as an error
    body is, after masking, so a secret's text across the cut leaves no piece of it."""
    with FakeApi() as api:
        long_error = "e" * 450 + CANARY + "e" * 100_000
        api.route("POST", "/t/items/batch", lambda req: (200, {}, {"results": [
            {"ok": True} if i["sku"] == "A" else {"ok": False, "error": long_error} for i in req.body["items"]]}))
        result = run(folder, """
use shop = shop(tenant: "t", key: secret.K, base_url: env.API + "/t")
for each s in ["A", "B"]
  send {sku: s} to shop.create_items batch 2
end
""", api, secrets={"K": CANARY})
    assert result.status == "partial" and result.stats.sent == 1
    [error] = result.errors
    assert error.message == "shop.create_items refused the record: " + "e" * 450 + "***" + "e" * 47 + \
        "... (100453 characters)"
    assert "canary" not in error.message and "Zq" not in error.message
    shown = cli("errors", str(folder / "main.flow"), "--state-dir", str(folder / ".state"))
    assert "e" * 47 + "... (100453 characters)" in shown.stdout and "canary" not in shown.stdout + shown.stderr
    assert max(len(line) for line in shown.stdout.splitlines()) < 1000


def test_a_batch_result_that_is_not_clearly_ok_fails_its_record(folder: Path) -> None:
    answers: dict[str, Any] = {"A": {"ok": True}, "B": {"ok": 0}, "C": {"ok": "false"}, "D": {"ok": None},
                               "E": {"id": 5}, "F": {"ok": "true"}, "G": None, "H": {"ok": 1}}
    with FakeApi() as api:
        api.route("POST", "/t/items/batch", lambda req: (200, {}, {"results": [answers[i["sku"]]
                                                                              for i in req.body["items"]]}))
        result = run(folder, """
use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")
for each s in ["A", "B", "C", "D", "E", "F", "G", "H"]
  send {sku: s} to shop.create_items batch 3
end
""", api)
        assert result.status == "partial"
        assert result.stats.sent == 1
        failed = {e.record: e.message for e in result.errors}
        assert sorted(failed) == ["B", "C", "D", "E", "F", "G", "H"]
        assert "ok: 0" in failed["B"] and "ok: \"false\"" in failed["C"] and "no ok field" in failed["E"]


@pytest.mark.parametrize("answer,found", [({"results": [{"ok": True}]}, "found 1"),
                                          ({"error": "x"}, "found nothing"),
                                          ({"results": {"ok": True}}, "found an object")])
def test_a_batch_answer_without_one_result_per_record_says_what_it_found(folder: Path, answer: Any,
                                                                         found: str) -> None:
    with FakeApi() as api:
        api.route("POST", "/t/items/batch", lambda req: (200, {}, answer))
        result = run(folder, 'use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")\n'
                     'for each s in ["A", "B", "C"]\n  send {sku: s} to shop.create_items batch 3\nend\n', api)
        assert [e.record for e in result.errors] == ["A", "B", "C"]
        message = result.errors[0].message
        assert f"expected 3 at results, {found}" in message, message
        assert "may have taken some" in message  # the batch reached the API: a blind retry may repeat it
        assert api.count("POST", "/t/items/batch") == 1


def test_a_batch_without_an_ok_field_fails_only_results_with_an_error(folder: Path) -> None:
    (folder / "connectors" / "shop.toml").write_text(SHOP.replace('ok = "ok", ', 'ok = "", '))
    with FakeApi() as api:
        api.route("POST", "/t/items/batch", lambda req: (200, {}, {"results": [
            {"id": 1}, {"id": None, "error": "duplicate sku"}, None]}))
        result = run(folder, """
use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")
for each s in ["A", "B", "C"]
  send {sku: s} to shop.create_items batch 3
end
""", api)
        assert result.stats.sent == 1
        # before, the API's words alone: 'duplicate sku' said neither the connection nor the operation
        assert {e.record: e.message for e in result.errors} == {
            "B": "shop.create_items refused the record: duplicate sku",
            "C": "shop.create_items refused the record: the API's result for this record is null"}


def test_a_batch_operation_wraps_each_record_in_its_envelope(folder: Path) -> None:
    """HubSpot's batch create takes {"inputs": [{"properties": {...}}, ...]}: a batch operation with
    envelope = "properties" sent {"inputs": [{"email": ...}]}, the envelope left out (HubSpot answers 400),
    where a single send of an operation with an envelope wraps its record. Each record of a batch is
    wrapped as a single send's is."""
    (folder / "connectors" / "shop.toml").write_text(SHOP.replace(
        'batch = { max = 3, body = "items", results = "results", ok = "ok", error = "error" }',
        'envelope = "properties"\nbatch = { max = 3, body = "inputs", results = "results", ok = "" }'))
    with FakeApi() as api:
        api.route("POST", "/t/items/batch", lambda req: (200, {}, {"results": [
            {"id": i, **r["properties"]} for i, r in enumerate(req.body["inputs"])]}))
        result = run(folder, """
use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")
for each s in ["A", "B"]
  send {sku: s} to shop.create_items batch 3
end
""", api)
        assert result.stats.sent == 2 and result.errors == []
        assert [r.body for r in api.requests] == [{"inputs": [{"properties": {"sku": "A"}},
                                                              {"properties": {"sku": "B"}}]}]


def test_a_record_literal_without_a_value_for_the_path_is_a_check_error(folder: Path) -> None:
    # before: check said ok, and every record failed at run time: "the path '/items/{id}' needs a value for 'id'"
    with FakeApi() as api:
        (folder / "main.flow").write_text(
            'use shop = shop(tenant: "t", key: "k", base_url: env.API)\n'
            'for each r in [{id: 1, price: 3}]\n'
            '  send {id: r.id, price: 4} to shop.update_item\n'  # the record gives it
            "  send {price: r.price} to shop.update_item(id: r.id)\n"  # the send does
            "  send {price: r.price} to shop.update_item\n"
            "end\n")
        for command in (("check",), ("run", "--log-format", "text")):
            proc = cli(command[0], "main.flow", *command[1:], cwd=folder, env={"API": api.url})
            assert proc.status == 2, (command, proc.stderr)
            assert ("main.flow:5:8: error: the path '/items/{id}' of shop.update_item needs 'id', which this record "
                    "does not hold and the send does not give") in proc.stderr, proc.stderr
            assert "hint: give it in the record ({id: ..., ...}) or as an argument: send ... to " \
                "shop.update_item(id: ...)" in proc.stderr
            assert proc.stderr.count("error:") == 1
        assert api.requests == []


def test_batch_larger_than_max_is_a_check_error(folder: Path) -> None:
    (folder / "main.flow").write_text('use shop = shop(tenant: "t", key: "k")\nfor each s in [1]\n'
                                      "  send {sku: s} to shop.create_items batch 50\nend\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2 and "takes at most 3 records a batch" in proc.stderr


def test_check_knows_operations_and_configuration(folder: Path) -> None:
    (folder / "main.flow").write_text('use shop = shop(tenant: "t", kee: "k")\ncall shop.list_itemz() as x\n'
                                      "lookup shop.find_item(skuu: 1) as y\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2
    assert "shop has no configuration key 'kee'" in proc.stderr and "did you mean 'key'" in proc.stderr
    assert "shop needs 'key'" not in proc.stderr  # the near miss is one mistake, reported once
    assert "shop has no operation 'list_itemz'" in proc.stderr and "did you mean 'list_items'" in proc.stderr
    assert "find_item() has no argument 'skuu'" in proc.stderr


def test_a_broken_connector_file_is_reported_with_file_key_and_problem(folder: Path) -> None:
    (folder / "connectors" / "bad.toml").write_text('name = "bad"\nbase_url = "https://x"\n'
                                                    '[operations.list]\nmethod = "FETCH"\npath = "x"\n')
    (folder / "main.flow").write_text("use b = bad()\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2
    assert "connectors/bad.toml" in proc.stderr
    assert "operations.list.method" in proc.stderr and "operations.list.path" in proc.stderr
    listing = cli("connectors", "--dir", str(folder))
    assert "shop" in listing.stdout and "connectors/bad.toml" in listing.stderr


def test_not_toml_at_all(folder: Path) -> None:
    (folder / "connectors" / "x.toml").write_text("name = \n")
    (folder / "main.flow").write_text("use b = x()\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert "connectors/x.toml:1:8: not valid TOML: Invalid value" in proc.stderr
    assert " 1 | name = \n   |        ^" in proc.stderr


def test_connectors_command_describes_a_flow_folder_connector(folder: Path) -> None:
    proc = cli("connectors", "shop", "--dir", str(folder))
    assert proc.status == 0
    for text in ("tenant", "key", "list_items", "GET", "/items/{id}", "batch (max 3)", "paginated stream"):
        assert text in proc.stdout


def test_flow_folder_connector_wins_over_stdlib(tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "github.toml").write_text(
        'name = "github"\nbase_url = "https://example.invalid"\n[operations.ping]\nmethod = "GET"\npath = "/ping"\n')
    proc = cli("connectors", "github", "--dir", str(tmp_path))
    assert "ping" in proc.stdout and "list_issues" not in proc.stdout


@pytest.mark.parametrize("name", ["file", "http", "sql", "memory"])
def test_a_connector_file_named_like_a_built_in_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / f"{name}.toml").write_text(
        f'name = "{name}"\nbase_url = "https://example.invalid"\n[operations.write]\nmethod = "POST"\n'
        'path = "/steal"\n')
    (tmp_path / "main.flow").write_text(f"use out = {name}()\nsend {{a: 1}} to out.write\n")  # valid for the file
    with FakeApi() as api:
        (tmp_path / "connectors" / f"{name}.toml").write_text(
            (tmp_path / "connectors" / f"{name}.toml").read_text().replace("https://example.invalid", api.url))
        for command in ("check", "run"):
            proc = cli(command, "main.flow", cwd=tmp_path)
            assert proc.status == 2, (command, proc.stderr)
            assert f"connectors/{name}.toml" in proc.stderr and f"built-in connector '{name}'" in proc.stderr
            assert "main.flow:1:" in proc.stderr and "Traceback" not in proc.stderr
        assert api.requests == []


def test_a_list_operation_whose_answer_is_an_error_object_fails(folder: Path) -> None:
    (folder / "connectors" / "shop.toml").write_text(SHOP + """
[operations.list_tags]
method = "GET"
path = "/tags"

[operations.list_colours]
method = "GET"
path = "/colours"
records = "data"
""")
    with FakeApi() as api:
        error = {"error": "quota exceeded", "retry": True}
        for route in ("/t/tags", "/t/colours", "/t/items"):
            api.route("GET", route, lambda req: (200, {}, error))
        for op in ("list_tags", "list_colours", "list_items"):
            result = run(folder, f"""
use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")
call shop.{op}() as tags
for each t in tags
  send t to shop.create_item
end
""", api)
            assert result.status == "failed", op
            assert result.error is not None and f"{api.url}/t/" in result.error.message
            assert '"error":"quota exceeded"' in result.error.message
            assert api.count("POST", "/t/items") == 0
        api.state.routes.clear()
        api.route("GET", "/t/tags", lambda req: (200, {}, ["red"]))
        api.route("GET", "/t/colours", lambda req: (200, {}, {"data": None}))
        result = run(folder, 'use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")\n'
                     "call shop.list_tags() as a\ncall shop.list_colours() as b\nemit [list(a), list(b)]\n", api)
        assert result.outputs == [[["red"], []]], result.error


def test_the_page_cap_is_set_by_the_connector_file_and_raised_by_the_flow(folder: Path) -> None:
    (folder / "connectors" / "shop.toml").write_text(SHOP.replace(
        'pagination = { style = "offset", size = 2, records = "items" }',
        'pagination = { style = "offset", size = 2, records = "items", max_pages = 2 }'))
    with FakeApi() as api:
        items = [{"id": i} for i in range(1, 9)]
        api.route("GET", "/t/items", lambda req: (200, {}, {"items": items[int(req.query["offset"]):][:2]}))
        flow = 'use shop = shop(tenant: "t", key: "k", base_url: env.API + "/t")\ncall shop.list_items({}) as s\n' \
               "emit len(list(s))\n"
        capped = run(folder, flow.format(""), api)
        assert capped.error is not None and "more than 2 pages" in capped.error.message
        raised = run(folder, flow.format("max_pages: 10"), api)
        assert raised.outputs == [8], raised.error
    (folder / "main.flow").write_text(flow.format("max_pagez: 10"))
    assert cli("check", "main.flow", cwd=folder).status == 2


def test_a_placeholder_naming_no_config_key_is_a_file_error_before_anything_runs(folder: Path) -> None:
    (folder / "connectors" / "bad.toml").write_text(
        'name = "bad"\nbase_url = "{url}/v1/{tenent}"\n\n[config]\nurl = { required = true }\n'
        'tenant = { required = true }\ntoken = { required = true, secret = true }\n\n'
        '[auth]\ntype = "bearer"\ntoken = "{tokn}"\n\n[operations.list_x]\nmethod = "GET"\npath = "/x"\n')
    with FakeApi() as api:
        # a send before the `use`: before, it reached the API, and the run failed at the use line
        (folder / "main.flow").write_text(
            f'use api = http(base_url: "{api.url}")\nsend {{id: 1}} to api.post("/orders")\n'
            f'use b = bad(url: "{api.url}", tenant: "t", token: "s")\ncall b.list_x() as x\n')
        for command in (("check",), ("run", "--log-format", "text")):  # (a run's JSON logs hold the same block)
            proc = cli(command[0], "main.flow", *command[1:], cwd=folder)
            assert proc.status == 2, (command, proc.stderr)
            assert ("main.flow:3:9: error: the connector 'bad' cannot be used: connectors/bad.toml: base_url: "
                    "'{tenent}' is not a key of [config] (it has: tenant, token, url) (did you mean '{tenant}'?); "
                    "auth.token: '{tokn}' is not a key of [config]") in proc.stderr
            assert " --> connectors/bad.toml:11:9\n 11 | token = \"{tokn}\"\n" in proc.stderr
            assert "Traceback" not in proc.stderr
        assert api.requests == []


def test_an_idempotency_key_without_its_record_field_names_the_field(folder: Path) -> None:
    with FakeApi() as api:
        api.route("POST", "/t1/items", lambda req: (201, {}, {"id": 9}))
        result = run(folder, """
use shop = shop(tenant: "t1", key: "k", base_url: env.API + "/t1")
for each r in [{sku: "A"}, {name: "no sku"}, {sku: null}]
  send r to shop.create_item
end
""", api)
        # before, both said "'{sku}' needs the configuration key 'sku'": a record field is not configuration
        assert [e.message for e in result.errors] == [
            "the idempotency_key '{sku}' needs the record's field 'sku', which is missing; or give "
            "idempotency_key: in the send",
            "the idempotency_key '{sku}' needs the record's field 'sku', which is null; or give "
            "idempotency_key: in the send"]
        assert [r.headers.get("idempotency-key") for r in api.requests] == ["A"]


def test_a_parallel_loop_fills_its_batches_past_its_parallel_width(folder: Path) -> None:
    # parallel 4 with batch 3 of 40 records: an iteration waiting for its batch's answer kept its slot, so a
    # batch held at most 4 records, and with `batch 3` they went 3, 1, 3, 1 (19 or 20 requests for 40 records);
    # the lookups before the send still run at most 4 at once
    import threading
    import time

    lock = threading.Lock()
    busy = {"now": 0, "most": 0}

    def lookup(req: Request) -> tuple[int, dict[str, str], Any]:
        with lock:
            busy["now"] += 1
            busy["most"] = max(busy["most"], busy["now"])
        time.sleep(0.005)
        with lock:
            busy["now"] -= 1
        return 200, {}, [{"sku": req.query["filter[sku]"], "id": 1}]

    with FakeApi() as api:
        api.route("GET", "/t1/items", lookup)
        api.route("POST", "/t1/items/batch", lambda req: (200, {}, {"results": [
            {"ok": True, "sku": i["sku"]} for i in req.body["items"]]}))
        result = run(folder, """
use shop = shop(tenant: "t1", key: "k", base_url: env.API + "/t1")
for each n in range(40) parallel 4
  lookup shop.find_item(sku: "S{n}") as found
  send {sku: found.sku} to shop.create_items batch 3 as created
  emit created.sku
end
""", api)
        assert result.ok, result.error
        assert result.outputs == [f"S{n}" for n in range(40)]
        sent = [[i["sku"] for i in r.body["items"]] for r in api.requests if r.method == "POST"]
        assert sorted(s for batch in sent for s in batch) == sorted(f"S{n}" for n in range(40))  # each once
        assert len(sent) <= 15, [len(b) for b in sent]  # 14 when every batch is full
        assert busy["most"] <= 4


def test_a_path_written_with_a_space_or_non_ascii_is_sent_encoded(folder: Path) -> None:
    # as `connectors import` writes an OpenAPI path ("/items/{id}/sub items"): before, the request line
    # carried the space and the UTF-8 bytes as they were, and the server answered 400 (a bad request line)
    (folder / "connectors" / "sp.toml").write_text('name = "sp"\nbase_url = "http://127.0.0.1:1/v1"\n'
                                                   '[operations.get_sub]\nmethod = "GET"\n'
                                                   'path = "/items/{id}/sub items/ü"\n')
    with FakeApi() as api:
        api.route("GET", ".*", lambda req: (200, {}, {"path": req.path}))
        result = run(folder, """
use s = sp(base_url: env.API + "/v1")
call s.get_sub(id: "a/b c") as one
use h = http(base_url: env.API)
call h.get("/x y/Zoë", query: {q: "a b"}) as two
emit [one.path, two.path]
""", api)
        assert result.outputs == [["/v1/items/a%2Fb%20c/sub%20items/%C3%BC", "/x%20y/Zo%C3%AB"]], result.error
        assert api.requests[1].query == {"q": "a b"}


def test_a_connector_file_and_a_secrets_file_saved_with_a_byte_order_mark_are_read(folder: Path) -> None:
    # Notepad saves UTF-8 with a BOM: before, each was "not valid TOML: Invalid statement" at 1:1
    (folder / "connectors" / "bom.toml").write_bytes(
        b'\xef\xbb\xbfname = "bom"\r\nbase_url = "http://127.0.0.1:1"\r\n[operations.get_x]\r\nmethod = "GET"\r\n'
        b'path = "/x"\r\n')
    (folder / "secrets.toml").write_bytes('\ufeffKEY = "s3cret-ü"\n'.encode())
    with FakeApi() as api:
        api.route("GET", "/x", lambda req: (200, {}, {"key": req.headers.get("x-key")}))
        (folder / "main.flow").write_text(f'use b = bom(base_url: "{api.url}", headers: {{"X-Key": secret.KEY}})\n'
                                          'call b.get_x() as r\nemit r.key\n')
        proc = cli("run", "main.flow", "--secrets", "secrets.toml", "--quiet", cwd=folder)
        assert proc.status == 0 and proc.stdout == "\"***\"\n", proc.stderr  # the key it echoed, masked
        assert api.requests[0].headers["x-key"].encode("latin-1").decode() == "s3cret-ü"
    assert cli("connectors", "bom", "--dir", str(folder)).status == 0


def test_a_connector_file_named_apart_from_its_connector_is_named_in_the_hint(folder: Path) -> None:
    # before: "unknown connector 'crm'" and a list of every connector, not the file that was meant
    (folder / "connectors" / "crm.toml").write_text('name = "my_crm"\nbase_url = "https://crm.invalid"\n'
                                                    '[operations.list_x]\nmethod = "GET"\npath = "/x"\n')
    (folder / "main.flow").write_text("use c = crm()\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2
    assert ("main.flow:1:9: error: unknown connector 'crm'\n" in proc.stderr and "hint: connectors/crm.toml names its "
            "connector 'my_crm' (name = \"my_crm\"): use my_crm(...), or name the file after it") in proc.stderr


def test_a_rate_limit_past_the_limiters_bound_is_a_file_error(folder: Path) -> None:
    # before: check said ok, and the run failed with "internal error: OverflowError: Python int too large"
    (folder / "connectors" / "r.toml").write_text('name = "r"\nbase_url = "https://r.invalid"\n[rate_limit]\n'
                                                  'requests = 99999999999999999999\n'
                                                  '[operations.list_x]\nmethod = "GET"\npath = "/x"\n')
    (folder / "main.flow").write_text("use x = r()\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2 and "rate_limit.requests: Input should be less than or equal to 1000000" in proc.stderr
    assert " --> connectors/r.toml:4:12" in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize(("line", "problem", "place"), [
    ('base_url = "127.0.0.1:8731"', "base_url: Value error, must start with http:// or https://, got "
     "'127.0.0.1:8731'", "2:12"),
    ('base_url = "https://api.invalid:99999/v1"', "base_url: Value error, not a valid URL (its port is not a whole "
     "number from 0 to 65535)", "2:12"),
    ('base_url = "https://api.invalid"\nregions = { na = "https://na.invalid", eu = "eu.invalid" }',
     "regions.eu: Value error, must start with http:// or https://, got 'eu.invalid'", "3:45"),
    ('base_url = "https://api.invalid"\ntimeout = -1', "timeout: Value error, must be a positive number, got -1",
     "3:11"),
    # before: taken, and each request of the run had no time limit at all
    ('base_url = "https://api.invalid"\ntimeout = nan', "timeout: Value error, must be a positive number, got nan",
     "3:11"),
])
def test_a_base_url_region_or_timeout_the_connection_would_refuse_is_a_file_error(
        folder: Path, line: str, problem: str, place: str) -> None:
    # before: check said ok, a run sent what came before the `use` and then failed at the use's 1:1
    # ("base_url must start with http:// or https://") without naming the connector file
    (folder / "connectors" / "x.toml").write_text(f'name = "x"\n{line}\n\n[operations.list_x]\nmethod = "GET"\n'
                                                  'path = "/x"\n')
    with FakeApi() as api:
        (folder / "main.flow").write_text(f'use api = http(base_url: "{api.url}")\n'
                                          'send {id: 1} to api.post("/orders")\nuse b = x()\ncall b.list_x() as r\n')
        for command in (("check",), ("run", "--log-format", "text")):
            proc = cli(command[0], "main.flow", *command[1:], cwd=folder)
            assert proc.status == 2, (command, proc.stderr)
            assert f"main.flow:3:9: error: the connector 'x' cannot be used: connectors/x.toml: {problem}" \
                in proc.stderr, proc.stderr
            assert f" --> connectors/x.toml:{place}\n" in proc.stderr and "Traceback" not in proc.stderr
        assert api.requests == []


@pytest.mark.parametrize(("line", "problem", "place"), [
    # before: every record was sent with Idempotency-Key 'item-{sku' (or 'create-item'), so an API that
    # keeps keys answered the second record with the first one's result, and the run counted it sent
    ('idempotency_key = "item-{sku"', "operations.create_item.idempotency_key: holds a '{' that no '}' closes, "
     "so it would be sent as it is, never filled", "10:19"),
    ('idempotency_key = "create-item"', "operations.create_item.idempotency_key: 'create-item' holds no {field} "
     "of the record, so every record would send this one key", "10:19"),
    # before: sent as POST /items/%7Bshop-id%7D, the placeholder never filled
    ('path = "/items/{shop-id}"', "operations.create_item.path: '{shop-id}' is not a placeholder (a name of "
     "letters, digits and _, filled from the arguments or the record), so it would be sent as it is: write "
     "'{shop_id}'", "9:8"),
    ('path = "/items/{}"', "operations.create_item.path: '{}' is not a placeholder", "9:8"),
])
def test_braces_that_make_no_placeholder_are_a_file_error(folder: Path, line: str, problem: str,
                                                          place: str) -> None:
    path = "" if line.startswith("path") else 'path = "/items"\n'
    (folder / "connectors" / "x.toml").write_text(f'name = "x"\nbase_url = "https://x.invalid"\n\n'
                                                  f'[operations.create_item]\nmethod = "POST"\n{path}'
                                                  f'\n\n\n{line}\n')
    with FakeApi() as api:
        (folder / "main.flow").write_text(f'use b = x(base_url: "{api.url}")\n'
                                          'for each r in [{sku: "a"}, {sku: "b"}]\n  send r to b.create_item\nend\n')
        for command in (("check",), ("run", "--log-format", "text")):
            proc = cli(command[0], "main.flow", *command[1:], cwd=folder)
            assert proc.status == 2, (command, proc.stderr)
            assert f"main.flow:1:9: error: the connector 'x' cannot be used: connectors/x.toml: {problem}" \
                in proc.stderr, proc.stderr
            assert f" --> connectors/x.toml:{place}\n" in proc.stderr and "Traceback" not in proc.stderr
        assert api.requests == []


def test_an_idempotency_key_of_a_dotted_field_and_a_path_of_placeholders_are_taken(folder: Path) -> None:
    (folder / "connectors" / "x.toml").write_text(
        'name = "x"\nbase_url = "https://x.invalid/{tenant}"\n[config]\ntenant = {}\n'
        '[operations.create_item]\nmethod = "POST"\npath = "/shops/{shop_id}/items"\n'
        'idempotency_key = "order-{metadata.order_id}-{sku}"\n')
    (folder / "main.flow").write_text('use b = x(tenant: "t")\n')
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 0, proc.stderr


def test_placeholders_in_a_base_url_are_not_judged_as_its_text(folder: Path) -> None:
    (folder / "connectors" / "x.toml").write_text(
        'name = "x"\nbase_url = "{store_url}/api/{tenant}"\nregions = { a = "https://{sub}.a.invalid:{port}" }\n'
        '[config]\nstore_url = {}\ntenant = {}\nsub = {}\nport = {}\n'
        '[operations.list_x]\nmethod = "GET"\npath = "/x"\n')
    (folder / "main.flow").write_text('use b = x(store_url: "https://s.invalid", tenant: "t", sub: "s", port: "1")\n')
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 0, proc.stderr


@pytest.mark.parametrize("name", ["my-crm", "my_crm"])
def test_a_broken_connector_file_is_named_at_a_use_of_its_file_name(folder: Path, name: str) -> None:
    # before: "unknown connector 'crm'" with the list of every other connector, not a word of crm.toml
    # or of what is wrong in it (the file's problem was kept under its `name`, which the flow does not use)
    (folder / "connectors" / "crm.toml").write_text(f'name = "{name}"\nbase_url = "https://crm.invalid"\n'
                                                    '[operations.list_x]\nmethod = "GETT"\npath = "/x"\n')
    (folder / "main.flow").write_text("use c = crm()\n")
    for command in ("check", "run"):
        proc = cli(command, "main.flow", "--log-format", "text", cwd=folder)
        assert proc.status == 2, proc.stderr
        assert "main.flow:1:9: error: the connector 'crm' cannot be used: connectors/crm.toml: " in proc.stderr
        assert "operations.list_x.method: Input should be" in proc.stderr and "unknown connector" not in proc.stderr
        assert "Traceback" not in proc.stderr
    shown = cli("connectors", "crm", "--dir", str(folder))
    assert shown.status == 2 and "error: the connector 'crm' cannot be used: connectors/crm.toml: " in shown.stderr
    assert "operations.list_x.method" in shown.stderr
    listing = cli("connectors", "--dir", str(folder))
    assert listing.stderr.count("Input should be 'GET'") == 1, listing.stderr


@pytest.mark.parametrize(("given", "said"), [
    ('"au"', "region: must be one of na, eu (the regions of reg), got 'au'"),
    # before: "internal error (TypeError: unhashable type: 'list'); this is a bug in flowlang"
    ('["eu"]', "region: must be one of na, eu (the regions of reg), got list"),
    ("5", "region: must be one of na, eu (the regions of reg), got number"),
])
def test_a_region_the_file_does_not_have_is_refused_at_its_value(folder: Path, given: str, said: str) -> None:
    # before: check said ok, and the run failed at the use's 1:1 after what came before it was sent
    (folder / "connectors" / "reg.toml").write_text(
        'name = "reg"\nbase_url = "https://na.invalid"\n'
        'regions = { na = "https://na.invalid", eu = "https://eu.invalid" }\n[operations.list_x]\nmethod = "GET"\n'
        'path = "/x"\n')
    with FakeApi() as api:
        for how in ("constant", "computed"):
            value = given if how == "constant" else f"env.R ?? {given}"
            (folder / "main.flow").write_text(f'use api = http(base_url: "{api.url}")\n'
                                              f'send {{id: 1}} to api.post("/orders")\nuse r = reg(region: {value})\n'
                                              'call r.list_x() as x\n')
            proc = cli("check" if how == "constant" else "run", "main.flow", "--log-format", "text", cwd=folder)
            assert proc.status == (2 if how == "constant" else 1), proc.stderr
            assert f"main.flow:3:21: error: {said}" in proc.stderr, proc.stderr
            assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
        assert len(api.requests) == 1  # the computed one's send, before its use; check sends nothing


def test_a_double_quoted_base_url_with_a_placeholder_of_the_file_gets_the_single_quoted_hint(folder: Path) -> None:
    # before: "unknown name 'tenant'" with a did-you-mean of the flow's names, not a word of the file's
    # {tenant}, which a single-quoted base_url leaves for the connector to fill
    (folder / "main.flow").write_text('use s = shop(tenant: "t1", key: "k", base_url: "http://127.0.0.1:1/{tenant}")\n')
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2
    assert "main.flow:1:69: error: unknown name 'tenant'" in proc.stderr
    assert ("hint: {tenant} is a key of shop's configuration: to have the connector fill it, write the base_url in "
            "single quotes: 'http://127.0.0.1:1/{tenant}'") in proc.stderr, proc.stderr


def test_a_configuration_key_a_placeholder_needs_is_shown_at_its_null_value(folder: Path) -> None:
    # before: at the use's 1:1, under the whole statement
    (folder / "main.flow").write_text('use s = shop(key: "k", tenant: env.TENANT)\ncall s.list_items() as x\n')
    proc = cli("run", "main.flow", "--log-format", "text", cwd=folder)
    assert proc.status == 1, proc.stderr
    assert ("main.flow:1:32: error: 'https://shop.invalid/api/{tenant}' needs the configuration key 'tenant', which "
            "is null here") in proc.stderr, proc.stderr


@pytest.mark.parametrize(("table", "place"), [("[headers]\n", "5:2"), ('[operations.list_x.headers]\n', "9:2")])
def test_a_header_name_http_cannot_carry_in_a_connector_file_is_a_file_error(folder: Path, table: str,
                                                                             place: str) -> None:
    # before: the file loaded, check said ok, and every request of the operation went out with it
    # (a server answers 400 Bad Request: Invalid header token)
    text = ('name = "h"\nbase_url = "https://h.invalid"\n\n{file}[operations.list_x]\nmethod = "GET"\n'
            'path = "/x"\n\n{op}')
    header = table + '"X Tenant" = "t1"\n'
    (folder / "connectors" / "h.toml").write_text(text.format(file=header if "operations" not in table else "",
                                                               op=header if "operations" in table else ""))
    (folder / "main.flow").write_text("use h = h()\ncall h.list_x() as x\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2, proc.stderr
    assert "connectors/h.toml: " in proc.stderr and "'X Tenant' is not a valid HTTP header name" in proc.stderr
    assert f" --> connectors/h.toml:{place}" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("table", "place"), [("[headers]\n", "5:2"), ('[operations.list_x.headers]\n', "9:2")])
def test_a_header_name_with_a_line_break_in_a_connector_file_is_said_escaped_at_its_line(
        folder: Path, table: str, place: str) -> None:
    """A header name "X\\nTenant" (a line break, written escaped in the TOML) was said raw: the key's path
    'headers.X', a line break, then 'Tenant: ...', and no file:line:col (the key was looked for as it
    reads, not as it is written). The path is said as TOML writes it, and the key is found."""
    text = ('name = "h"\nbase_url = "https://h.invalid"\n\n{file}[operations.list_x]\nmethod = "GET"\n'
            'path = "/x"\n\n{op}')
    header = table + '"X\\nTenant" = "t1"\n'
    (folder / "connectors" / "h.toml").write_text(text.format(file=header if "operations" not in table else "",
                                                               op=header if "operations" in table else ""))
    (folder / "main.flow").write_text("use h = h()\ncall h.list_x() as x\n")
    proc = cli("check", "main.flow", "--log-format", "text", cwd=folder)
    assert proc.status == 2, proc.stderr
    key = "headers" if "operations" not in table else "operations.list_x.headers"
    assert (f'connectors/h.toml: {key}."X\\nTenant": \'X\\nTenant\' is not a valid HTTP header name (it holds a line '
            "break; ") in proc.stderr, proc.stderr
    assert f" --> connectors/h.toml:{place}\n" in proc.stderr, proc.stderr
    assert f'\n {place.split(":")[0]} | "X\\nTenant" = "t1"\n   |  ^^^^^^^^^\n' in proc.stderr, proc.stderr
    assert "Tenant\n" not in proc.stderr.replace('"X\\nTenant" = "t1"\n', "")


SEARCHING = """
name = "acme"
base_url = "http://127.0.0.1:1"

[operations.search]
method = "POST"
path = "/search"
safe = true
result = "results"

[operations.create_item]
method = "POST"
path = "/items"
"""


def test_a_send_to_a_safe_operation_is_a_read_a_dry_run_and_a_plan_make_and_do_not_count(tmp_path: Path) -> None:
    """A `safe = true` POST (a search) is made by a dry run, which counted it as a send it would make:
    'would send 6' for 3 searches made and 3 creates not sent; a plan listed it among the writes
    ('acme.search  POST /search: 3 records') and made none of it, so what it answered was null."""
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "acme.toml").write_text(SEARCHING)
    (tmp_path / "f.flow").write_text('use acme = acme(base_url: env.API)\n'
                                     'for each x in [1, 2, 3]\n'
                                     '  send {q: x} to acme.search as found\n'
                                     '  send {x: x, found: len(found)} to acme.create_item\n'
                                     'end\n')
    with FakeApi() as api:
        api.route("POST", "/search", lambda req: (200, {}, {"results": [req.body] * req.body["q"]}))
        api.route("POST", "/items", lambda req: (201, {}, req.body))
        env = {"API": api.url}
        dry = cli("run", "f.flow", "--dry-run", "--log-format", "text", cwd=tmp_path, env=env)
        assert dry.status == 0, dry.stderr
        assert "f: dry run finished" in dry.stderr and "read 3, would send 3, failed 0" in dry.stderr, dry.stderr
        assert 'POST http://127.0.0.1:' in dry.stderr and '/items {"x":3,"found":3}' in dry.stderr
        assert api.count("POST", "/search") == 3 and api.count("POST", "/items") == 0
        plan = cli("plan", "f.flow", cwd=tmp_path, env=env)
        assert plan.status == 0, plan.stderr
        assert "acme.create_item  POST /items: 3 records" in plan.stdout and "/search" not in plan.stdout.split(
            "requests the run would make")[0], plan.stdout
        assert '{"x":3,"found":3}' in plan.stdout
        assert api.count("POST", "/search") == 6 and api.count("POST", "/items") == 0
        real = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env=env)
        assert real.status == 0 and "read 3, sent 3, failed 0" in real.stderr, real.stderr  # was sent 6
        assert api.count("POST", "/items") == 3


SETTINGS = {  # a numeric setting of a connector file, and the table it stands in
    "timeout": ("", "timeout = {}"),
    "rate_limit.requests": ("", '[rate_limit]\nrequests = {}\nper = "minute"'),
    "operations.list_x.pagination.size": ("pagination = {{ style = \"offset\", size = {}, records = \"x\" }}", ""),
    "operations.list_x.pagination.max_pages": ("pagination = {{ style = \"link\", max_pages = {} }}", ""),
    "operations.list_x.batch.max": ("batch = {{ max = {}, body = \"items\" }}", ""),
}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "0", "-1", "0.5"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_numeric_setting_no_timer_or_counter_takes_is_a_file_error(folder: Path, setting: str, value: str) -> None:
    """Each numeric setting of a connector file given TOML's nan, inf, 1e400 (infinity), 0, -1 or a
    fraction where a count goes is a file error at its line; none is taken ('timeout = nan' was, and gave
    every request no time limit) and none is an internal error."""
    if setting == "timeout" and value == "0.5":
        return  # half a second is a timeout
    in_operation, top = SETTINGS[setting]
    (folder / "connectors" / "x.toml").write_text(
        f'name = "x"\nbase_url = "https://api.invalid"\n{top.format(value)}\n\n[operations.list_x]\nmethod = "GET"\n'
        f'path = "/x"\n{in_operation.format(value)}\n')
    (folder / "main.flow").write_text("use b = x()\ncall b.list_x() as r\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2 and "internal error" not in proc.stderr, proc.stderr
    assert f"the connector 'x' cannot be used: connectors/x.toml: {setting}" in proc.stderr, proc.stderr
    assert " --> connectors/x.toml:" in proc.stderr


@pytest.mark.parametrize(("line", "key", "said", "col"), [
    # before: each was taken, coerced by pydantic's lax mode: "10" and 10.0 as 10, true as 1, "yes" as True
    ('pagination = { style = "page", size = "10" }', "operations.list_x.pagination.size",
     "must be a whole number, got the string '10' (write it without quotes)", 39),
    ('pagination = { style = "page", size = 10.0 }', "operations.list_x.pagination.size",
     "must be a whole number, got the float 10.0", 39),
    ('pagination = { style = "page", size = true }', "operations.list_x.pagination.size",
     "must be a whole number, got the boolean true", 39),
    ('pagination = { style = "page", max_pages = "5" }', "operations.list_x.pagination.max_pages",
     "must be a whole number, got the string '5' (write it without quotes)", 44),
    ('batch = { max = "50" }', "operations.list_x.batch.max",
     "must be a whole number, got the string '50' (write it without quotes)", 17),
    ('batch = "items"', "operations.list_x.batch", "must be a table, got the string 'items'", 9),
    ('safe = "yes"', "operations.list_x.safe", "must be true or false, got the string 'yes'", 8),
    ('safe = 1', "operations.list_x.safe", "must be true or false, got the integer 1", 8),
    ("query = [1, 2]", "operations.list_x.query", "each name of the list must be a string, got the integer 1", 9),
    ("description = 5", "operations.list_x.description", "must be a string, got the integer 5", 15),
    # before: taken; the first page of an API's 100 was 'shorter than size', so a list stopped after it
    ('pagination = { style = "page", size = 100000000000000000000000 }', "operations.list_x.pagination.size",
     "must be at most 100,000, got 100,000,000,000,000,000,000,000: a page is read whole into memory, and no API "
     "answers pages that large", 39),
    ('pagination = { style = "link", max_pages = 1000000000000 }', "operations.list_x.pagination.max_pages",
     "must be at most 100,000,000, got 1,000,000,000,000", 44),
    ('pagination = { style = "page", start = -1 }', "operations.list_x.pagination.start",
     "must be a whole number, 0 or more, got -1", 40),
])
def test_a_value_of_another_toml_type_or_out_of_bounds_is_a_file_error(
        folder: Path, line: str, key: str, said: str, col: int) -> None:
    (folder / "connectors" / "x.toml").write_text(
        f'name = "x"\nbase_url = "https://api.invalid"\n\n[operations.list_x]\nmethod = "GET"\npath = "/x"\n{line}\n')
    (folder / "main.flow").write_text("use b = x()\ncall b.list_x() as r\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2 and "internal error" not in proc.stderr, proc.stderr
    assert f"the connector 'x' cannot be used: connectors/x.toml: {key}: " in proc.stderr, proc.stderr
    assert said in proc.stderr, proc.stderr
    assert f" --> connectors/x.toml:7:{col}\n" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("line", "key", "said"), [
    ('timeout = true', "timeout", "must be a positive number"),
    ('[rate_limit]\nrequests = "60"', "rate_limit.requests", "must be a whole number, got the string '60'"),
    ('[config]\nk = { required = "yes" }', "config.k.required", "must be true or false, got the string 'yes'"),
    ('title = 5', "title", "must be a string, got the integer 5"),
    ('headers = { X-Api = 5 }', "headers.X-Api", "must be a string, got the integer 5"),
])
def test_a_top_level_value_of_another_toml_type_is_a_file_error(folder: Path, line: str, key: str, said: str) -> None:
    (folder / "connectors" / "x.toml").write_text(
        f'name = "x"\nbase_url = "https://api.invalid"\n{line}\n\n[operations.list_x]\nmethod = "GET"\npath = "/x"\n')
    (folder / "main.flow").write_text("use b = x()\ncall b.list_x() as r\n")
    proc = cli("check", "main.flow", cwd=folder)
    assert proc.status == 2 and "internal error" not in proc.stderr, proc.stderr
    assert f"connectors/x.toml: {key}: " in proc.stderr and said in proc.stderr, proc.stderr
    assert " --> connectors/x.toml:" in proc.stderr, proc.stderr


CRM = """name = "crm"
base_url = "https://crm.invalid"

[operations.find_company]
method = "GET"
path = "/companies"
query = ["domain"]

[operations.create_deal]
method = "POST"
path = "/deals"

[operations.list_deals]
method = "GET"
path = "/deals"
pagination = { style = "link" }

[operations.create_deals]
method = "POST"
path = "/deals/batch"
batch = { max = 3, body = "items", results = "results" }
"""
PAGE = (200, {"Content-Type": "text/html; charset=utf-8"}, b"<!doctype html><html><h1>Sign in</h1></html>")
HTML_SAID = "answered 200 with an HTML page (Content-Type: text/html), not the JSON of an API answer (a login, proxy " \
    "or maintenance page?): <!doctype html><html><h1>Sign in</h1></html>"


@pytest.mark.parametrize("where", ["lookup", "send", "list"])
def test_an_html_page_in_a_2xx_answer_fails_the_record(folder: Path, where: str) -> None:
    """A connector file's operation answered 200 with an HTML page (a login, proxy or maintenance page
    in front of the API) took the page as its value: a lookup gave the text '<!doctype html>...' as the
    company and the three deals were sent with it, exit 0. The record fails, saying so, and is kept."""
    (folder / "connectors" / "crm.toml").write_text(CRM)
    (folder / "main.flow").write_text(
        'use crm = crm(base_url: env.API)\n' + (
            'call crm.list_deals() as ds\nfor each d in ds\n  emit d\nend\n' if where == "list" else
            'for each r in [{id: 1, d: "a.io"}, {id: 2, d: "b.io"}, {id: 3, d: "c.io"}]\n'
            '  lookup crm.find_company(domain: r.d) as co\n  send {id: r.id, co: co} to crm.create_deal\nend\n'))
    with FakeApi() as api:
        api.route("GET", "/companies", lambda req: PAGE if where == "lookup" else (200, {}, {"id": 7}))
        api.route("POST", "/deals", lambda req: PAGE if where == "send" else (201, {}, {"id": 9}))
        api.route("GET", "/deals", lambda req: PAGE)
        proc = cli("run", "main.flow", "--log-format", "text", cwd=folder, env={"API": api.url})
        assert HTML_SAID in proc.stderr and "internal error" not in proc.stderr, proc.stderr
        if where == "list":
            assert proc.status == 1 and proc.stdout == ""
            return
        assert proc.status == 3 and "read 3, sent 0, failed 3" in proc.stderr, proc.stderr
        assert api.count("POST", "/deals") == (3 if where == "send" else 0)
        errors = cli("errors", "main.flow", cwd=folder)
        assert "3 open errors" in errors.stdout and HTML_SAID in errors.stdout, errors.stdout


def test_a_batch_answer_without_results_shows_what_the_api_said(folder: Path) -> None:
    """A batch answered 200 with an error object ({"error": "invalid token ..."}) failed its records with
    '... (expected 2 at results, found nothing); ... before a retry', and what the API said was nowhere:
    the message ends with the answer (masked, cut)."""
    (folder / "connectors" / "crm.toml").write_text(CRM.replace('base_url = "https://crm.invalid"',
                                                                'base_url = "https://crm.invalid"\n\n[config]\n'
                                                                'token = { required = true, secret = true }\n\n'
                                                                '[auth]\ntype = "bearer"\ntoken = "{token}"'))
    (folder / "main.flow").write_text('use crm = crm(base_url: env.API, token: "tok-s3cret-99")\n'
                                      'for each r in [{id: 1}, {id: 2}]\n  send r to crm.create_deals batch 3\nend\n')
    with FakeApi() as api:
        api.route("POST", "/deals/batch", lambda req: (200, {}, {"error": "invalid token tok-s3cret-99"}))
        proc = cli("run", "main.flow", "--log-format", "text", cwd=folder, env={"API": api.url})
    assert proc.status == 3, proc.stderr
    assert ("crm.create_deals: the answer does not hold one result per record (expected 2 at results, found "
            "nothing); the API may have taken some of the batch's records, so check them before a retry: "
            '{"error":"invalid token ***"}') in proc.stderr, proc.stderr
    assert "tok-s3cret-99" not in proc.stderr


def test_a_post_answered_2xx_with_an_unreadable_body_stays_pending_for_once(folder: Path) -> None:
    """A POST answered 201 with a body cut short ('{"id": 9, ') had reached the API, which made the deal,
    but its `send ... once` key was released as if it had not: 'flowlang retry' sent it again (the API
    had two deals). Such an answer may mean the API took it, as a gateway's 502 does: the key stays
    pending, the error says so, and retry sends nothing until it is checked."""
    (folder / "connectors" / "crm.toml").write_text(CRM)
    (folder / "main.flow").write_text('use crm = crm(base_url: env.API)\n'
                                      'for each r in [{id: 1}]\n  send r to crm.create_deal key r.id once\nend\n')
    with FakeApi() as api:
        api.route("POST", "/deals", lambda req: (201, {}, b'{"id": 9, '))
        env = {"API": api.url}
        proc = cli("run", "main.flow", "--log-format", "text", cwd=folder, env=env)
        assert proc.status == 3 and "answered 201 with a body that is not valid JSON" in proc.stderr, proc.stderr
        assert "key 1 stays pending in the ledger, since the request may have reached crm" in proc.stderr
        again = cli("retry", "main.flow", "--log-format", "text", cwd=folder, env=env)
        assert "internal error" not in again.stderr, again.stderr
        assert api.count("POST", "/deals") == 1, again.stderr


@pytest.mark.parametrize("status", [200, 204])
def test_a_list_operation_answered_with_an_empty_body(folder: Path, status: int) -> None:
    """A list operation (list_..., paginated or not) answered 200 with no body was a list of no records: 'read
    0', exit 0, the list lost unseen (an answer cut off, a proxy's empty answer). It fails, saying so (exit 1,
    the job failed); 204 No Content is still a list of none."""
    (folder / "connectors" / "crm.toml").write_text(CRM + '\n[operations.list_companies]\nmethod = "GET"\n'
                                                    'path = "/companies"\n')
    for op in ("list_companies", "list_deals"):
        (folder / "main.flow").write_text(f'use crm = crm(base_url: env.API)\ncall crm.{op}() as cs\n'
                                          "for each c in cs\n  emit c\nend\n")
        with FakeApi() as api:
            api.route("GET", "/companies", lambda req: (status, {}, None))
            api.route("GET", "/deals", lambda req: (status, {}, None))
            proc = cli("run", "main.flow", "--log-format", "text", cwd=folder, env={"API": api.url})
        if status == 204:
            assert proc.status == 0 and proc.stdout == "", proc.stderr
            continue
        assert proc.status == 1 and proc.stdout == "", proc.stderr
        assert "answered 200 with an empty body, not a list of records (an API with no records answers [] or 204 " \
               "No Content)" in proc.stderr and "internal error" not in proc.stderr, proc.stderr
        jobs = cli("jobs", "main.flow", cwd=folder)
        assert "failed" in jobs.stdout, jobs.stdout


def test_headers_of_a_connector_operation_that_are_not_an_object_fail_the_record_or_check(folder: Path) -> None:
    """`shop.get_item(id: 1, headers: r.h)` with a text in r.h (and `headers: "X-A: 1"` written so) ended
    the run with 'internal error (TypeError: 'str' object is not a mapping); this is a bug in flowlang';
    the http connector said 'headers: must be an object'. A connector file's operation says so too: a
    value from the data fails its record, the others sent; a constant is a check error at the value
    (query: too)."""
    with FakeApi() as api:
        api.route("GET", r"/t1/items/(\d+)",
                  lambda req: (200, {}, {"id": int(req.match[1]), "a": req.headers.get("x-a")}))
        result = run(folder, """
use shop = shop(tenant: "t1", key: "k", base_url: env.API + "/t1")
for each r in [{id: 1, h: {"X-A": "1"}}, {id: 2, h: "X-A: 2"}]
  call shop.get_item(id: r.id, headers: r.h) as item
  emit item
end
""", api)
        assert result.outputs == [{"id": 1, "a": "1"}], result.error
        assert [e.message for e in result.errors] == ["headers: must be an object, got string"]
    (folder / "c.flow").write_text('use shop = shop(tenant: "t1", key: "k")\n'
                                   'call shop.get_item(id: 1, headers: "X-A: 1", query: [1]) as item\n')
    checked = cli("check", "c.flow", cwd=folder)
    assert checked.status == 2 and "c.flow:2:36: error: headers: must be an object, got string\n" in checked.stderr
    assert "c.flow:2:53: error: query: must be an object, got list\n" in checked.stderr, checked.stderr


def test_a_blank_idempotency_key_is_refused_not_taken_as_a_key(folder: Path) -> None:
    """A key filled from an empty field was taken as a key: `idempotency_key: r.code` with a blank code
    sent 'Idempotency-Key:' empty and retried the POST after a 503 as safe to repeat (the API, seeing no
    key, made it twice), and a connector file's "{sku}" (or "order-{sku}") with an empty sku gave every
    such record the same key, so the API answered the second with the first one's result. A blank key
    fails its record before anything is sent, as a null one does; written as a constant, check says so."""
    with FakeApi() as api:
        seen: list[Any] = []

        def flaky(req: Request) -> tuple[int, dict[str, str], Any]:
            seen.append(req.headers.get("idempotency-key"))
            return (503, {}, {"error": "busy"}) if len(seen) % 2 else (201, {}, {"id": len(seen)})
        api.route("POST", "/t1/items", flaky)
        api.route("POST", "/plain", flaky)
        result = run(folder, """
use shop = shop(tenant: "t1", key: "k", base_url: env.API + "/t1")
use api = http(base_url: env.API)
for each r in [{sku: "", code: " "}, {sku: "", code: ""}]
  send {n: 1} to api.post("/plain", idempotency_key: r.code)
  send {sku: r.sku} to shop.create_item
end
""", api)
        assert seen == [] and len(result.errors) == 2, (seen, result.errors)
        assert all(e.message.startswith("idempotency_key: is blank, so it is no key") for e in result.errors)
        sku = run(folder, 'use shop = shop(tenant: "t1", key: "k", base_url: env.API + "/t1")\n'
                          'for each r in [{sku: ""}]\n  send r to shop.create_item\nend\n', api)
        assert seen == [] and "needs the record's field 'sku', which is empty" in sku.errors[0].message
    (folder / "c.flow").write_text('use api = http(base_url: "http://127.0.0.1:9")\n'
                                   'call api.post("/a", idempotency_key: "") as a\n')
    checked = cli("check", "c.flow", cwd=folder)
    assert checked.status == 2 and "c.flow:2:38: error: idempotency_key: is blank" in checked.stderr, checked.stderr


def test_braces_in_a_paths_query_are_sent_as_written(folder: Path) -> None:
    # a literal {...} in the query of an operation's path (a JSON filter, an Airtable formula's {Due Date})
    # went out %-encoded, as the API reads it; the check of placeholders refused the file: "'{"status":
    # "open"}' is not a placeholder ...: write '{_status____open_}'"
    (folder / "connectors" / "x.toml").write_text(
        'name = "x"\nbase_url = "https://x.invalid"\n[operations.search]\nmethod = "GET"\n'
        'path = \'/items/{shop}?filter={"status": "open"}&formula={Due Date}\'\n')
    with FakeApi() as api:
        api.route("GET", "/items/s1", lambda req: (200, {}, {"items": []}))
        (folder / "main.flow").write_text(f'use b = x(base_url: "{api.url}")\n'
                                          'call b.search(shop: "s1") as found\n')
        proc = cli("run", "main.flow", "--log-format", "text", cwd=folder)
        assert proc.status == 0, proc.stderr
        [request] = api.requests
    assert request.path == "/items/s1"
    assert request.query == {"filter": '{"status": "open"}', "formula": "{Due Date}"}
