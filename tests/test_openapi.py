"""`flowlang connectors import` and `flowlang connectors verify` on small descriptions kept in
tests/openapi/ (OpenAPI 3 in YAML, Swagger 2 in JSON): names, parameters, auth, pagination, the
unsure points, and each kind of contract break verify must catch."""

from __future__ import annotations

import json
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import ROOT, cli, run_cli

SPECS = ROOT / "tests" / "openapi"


def imported(tmp_path: Path, spec: str | Path, name: str, *extra: str) -> dict[str, Any]:
    result = cli("connectors", "import", str(spec), "--name", name, "--yes", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tomllib.loads((tmp_path / "connectors" / f"{name}.toml").read_text())


def test_openapi3_operations_follow_the_naming_convention(tmp_path: Path) -> None:
    data = imported(tmp_path, SPECS / "shop.yaml", "shop")
    assert data["base_url"] == "https://api.shop.example.com/v2"
    assert data["docs"] == "https://shop.example.com/docs"
    ops = data["operations"]
    assert sorted(ops) == ["cancel_order", "create_order", "delete_order", "get_order", "list_customers",
                           "list_orders", "update_order"]
    assert ops["get_order"] == {"method": "GET", "path": "/orders/{order_id}"}  # order-id made a name
    assert ops["update_order"]["method"] == "PATCH"
    assert ops["create_order"]["fields"] == ["id", "customer_id", "total", "lines"]
    assert ops["list_customers"]["required"] == ["email"]
    assert data["auth"] == {"type": "bearer", "token": "{token}"}
    assert data["config"]["token"]["secret"] is True


def test_pagination_is_detected_from_parameters_and_answers(tmp_path: Path) -> None:
    ops = imported(tmp_path, SPECS / "shop.yaml", "shop")["operations"]
    assert ops["list_orders"]["pagination"] == {"style": "cursor", "cursor_param": "cursor",
                                                "cursor": "paging.next_cursor", "size_param": "limit",
                                                "size": 50, "records": "data"}
    assert ops["list_orders"]["query"] == {"status": "status"}  # cursor and limit belong to the pagination
    assert ops["list_customers"]["pagination"]["style"] == "link"  # the answer has a Link header


def test_swagger2_with_api_key_and_offset_pages(tmp_path: Path) -> None:
    data = imported(tmp_path, SPECS / "petstore2.json", "pets")
    assert data["base_url"] == "https://pets.example.com/api"
    assert data["auth"] == {"type": "api_key", "name": "X-Pet-Key", "value": "{api_key}", "in": "header"}
    ops = data["operations"]
    assert ops["list_pets"]["pagination"] == {"style": "offset", "offset_param": "offset", "limit_param": "limit",
                                              "size": 20}
    assert ops["create_pet"]["fields"] == ["name", "tag"]
    text = (tmp_path / "connectors" / "pets.toml").read_text()
    assert "# pagination 'offset' guessed from the parameters alone" in text
    assert "# the record must have: name" in text


def test_tag_and_path_select_a_subset(tmp_path: Path) -> None:
    assert sorted(imported(tmp_path, SPECS / "shop.yaml", "a", "--tag", "customers")["operations"]) == \
        ["list_customers"]
    assert sorted(imported(tmp_path, SPECS / "shop.yaml", "b", "--path", "/orders/*")["operations"]) == \
        ["cancel_order", "delete_order", "get_order", "update_order"]
    none = cli("connectors", "import", str(SPECS / "shop.yaml"), "--name", "c", "--tag", "nope", "--yes",
                   cwd=tmp_path)
    assert none.returncode == 2 and "no operation of the description matches" in none.stderr


def unsure_spec(tmp_path: Path) -> Path:
    spec = json.loads((SPECS / "petstore2.json").read_text())
    spec["securityDefinitions"]["basic"] = {"type": "basic"}
    path = tmp_path / "two-auths.json"
    path.write_text(json.dumps(spec))
    return path


def test_unsure_points_are_asked_or_taken_with_yes_and_written_as_comments(tmp_path: Path) -> None:
    spec = unsure_spec(tmp_path)
    asked = cli("connectors", "import", str(spec), "--name", "pets", cwd=tmp_path, stdin="")
    assert asked.returncode == 2
    assert "unsure: the description allows several security schemes; which one? (default: key)" in asked.stderr
    assert "--yes" in asked.stderr and not (tmp_path / "connectors").exists()
    data = imported(tmp_path, spec, "pets")
    assert data["auth"]["type"] == "api_key"
    text = (tmp_path / "connectors" / "pets.toml").read_text()
    assert "#   auth: the description allows several security schemes; which one? -> key (default, --yes)" in text


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    imported(tmp_path, SPECS / "shop.yaml", "shop")
    again = cli("connectors", "import", str(SPECS / "shop.yaml"), "--name", "shop", "--yes", cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


def test_bad_descriptions_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("openapi: 3.0.0\ninfo: {title: x}\npaths: {}\n")  # no version
    bad = cli("connectors", "import", str(tmp_path / "bad.yaml"), "--name", "x", "--yes", cwd=tmp_path)
    assert bad.returncode == 2 and "not a valid OpenAPI/Swagger description" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = cli("connectors", "import", "nowhere.json", "--name", "x", "--yes", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file: nowhere.json" in missing.stderr
    name = cli("connectors", "import", str(SPECS / "shop.yaml"), "--name", "my-api", "--yes", cwd=tmp_path)
    assert name.returncode == 2 and "--name must be a name like my_api" in name.stderr



HEAD = 'openapi: 3.0.0\ninfo: {title: t, version: "1"}\n'
GET = 'get: {operationId: g, responses: {"200": {description: ok}}}'


@pytest.mark.parametrize(("body", "said"), [
    # nine anchors of nine aliases: 387 million values, which the reader walked for hours (killed at 60 s)
    ("a: &a [x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
     + HEAD + "paths: {}\n",
     "its YAML aliases (*name) repeat its anchors (&name) into more than 2,000,000 values"),
    # before: 'maximum recursion depth exceeded while calling a Python object'
    (HEAD + "paths:\n  /a:\n    get:\n      operationId: g\n      responses: {'200': {description: ok, content: "
     "{application/json: {schema: {$ref: '#/components/schemas/B'}}}}}\ncomponents:\n  schemas:\n"
     "    B: {$ref: '#/components/schemas/B'}\n",
     "a $ref refers to itself without end (a cycle of references such as B: {$ref: '#/components/schemas/B'})"),
    # before: "('Operation ID ...', <unset>, (), None, (), <unset>, <unset>, <unset>, (), None)"
    (HEAD + f"paths:\n  /a: &p\n    {GET}\n  /b: *p\n",
     "not a valid OpenAPI/Swagger description: Operation ID 'g' for 'get' in '/b' is not unique\n"),
    # before: 'AssertionError'
    (HEAD + "paths:\n  /a: {$ref: 'list.yaml#/a'}\n",
     "a $ref points at a file or URL that holds no JSON or YAML object"),
])
def test_a_description_that_cannot_be_read_says_why(tmp_path: Path, body: str, said: str) -> None:
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "d.yaml").write_text(body)
    result = cli("connectors", "import", "d.yaml", "--name", "d", "--yes", cwd=tmp_path)
    assert result.status == 2 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "connectors").exists()

def test_a_description_that_holds_itself_or_nothing_says_so(tmp_path: Path) -> None:
    """`get: &a {responses: *a}`, a YAML alias inside its own anchor, made a value that holds itself, and
    the import walked it for ever (killed at 60 s); an empty file and a list were 'a $ref points at a file
    or URL that holds no JSON or YAML object', naming no $ref (found by a fuzzed-input trial)."""
    (tmp_path / "d.yaml").write_text(HEAD + "paths:\n  /a:\n    get: &a\n      responses: *a\n")
    result = run_cli("connectors", "import", "d.yaml", "--name", "d", "--yes", cwd=tmp_path, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "cannot read d.yaml: a YAML alias (*name) stands inside its own anchor (&name)" in result.stderr
    for text, said in (("", "it is empty"), ("\n", "it is empty"), ("[]", "it holds a list"),
                       ("- 1\n- 2\n", "it holds a list")):
        (tmp_path / "d.yaml").write_text(text)
        result = cli("connectors", "import", "d.yaml", "--name", "d", "--yes", cwd=tmp_path)
        assert result.status == 2 and f"d.yaml does not hold an OpenAPI/Swagger object ({said})" in \
            result.stderr, result.stderr
    assert not (tmp_path / "connectors").exists()


@pytest.mark.parametrize(("text", "said"), [
    ("hello world\n", "it holds a text, not a JSON or YAML object"),  # before: 'a $ref points at a file ...'
    ("<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", "it is an HTML page, not a JSON or YAML description"),
    ("openapi: 3.0.0\ninfo: {title: x\npaths: {}\n", "not valid YAML: "),  # 'Could not detect format of spec string!'
    ('{"openapi": "3.0.0", "info": {"title": "t", "vers', "not valid JSON: it ends before it is complete (cut short?) "
     "at line 1, column 49"),  # before: 'while scanning a quoted scalar'
    ('{"openapi": "3.0.0",, "info": {}}', "not valid JSON: Expecting property name enclosed in double quotes "
     "(line 1, column 21)"),  # before: 'Could not detect format of spec string!'
])
def test_a_description_that_is_no_json_or_yaml_object_says_what_it_is(tmp_path: Path, text: str, said: str) -> None:
    """A file or URL that holds no description (a login page, a JSON cut short, YAML with a brace left open,
    a text) was 'Could not detect format of spec string!', 'while scanning a quoted scalar' or 'a $ref
    points at a file or URL that holds no JSON or YAML object' (there was no $ref), prance's words (found by a
    connectors trial); it says what the text is, and where JSON or YAML breaks."""
    from fakeapi import FakeApi

    (tmp_path / "d.yaml").write_text(text)
    result = cli("connectors", "import", "d.yaml", "--name", "d", "--yes", cwd=tmp_path)
    assert result.status == 2 and f"error: cannot read d.yaml: {said}" in result.stderr, result.stderr
    with FakeApi() as api:
        kind = "text/html" if text.startswith("<") else "application/json"
        api.route("GET", "/d.yaml", lambda req: (200, {"Content-Type": kind}, text.encode()))
        result = cli("connectors", "import", f"{api.url}/d.yaml", "--name", "d", "--yes", cwd=tmp_path)
        assert result.status == 2 and f"error: cannot read {api.url}/d.yaml: {said}" in result.stderr, result.stderr
    if said.startswith("not valid YAML"):
        assert "(line 3, column " in result.stderr, result.stderr
    assert not (tmp_path / "connectors").exists()


def test_a_description_url_that_cannot_be_reached_says_so_in_few_words(tmp_path: Path) -> None:
    """requests' words were 'HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x.yaml
    (Caused by NewConnectionError(...: [Errno 111] Connection refused'))'."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("connectors", "import", f"http://127.0.0.1:{port}/x.yaml", "--name", "d", "--yes", cwd=tmp_path)
    assert result.status == 2, result.stderr
    assert result.stderr.strip() == f"error: cannot read http://127.0.0.1:{port}/x.yaml: cannot connect (Connection " \
        "refused)", result.stderr


# /a is valid and reaches A and B; /b is not (responses: 5), nor is C, which /c reaches (type: 5)
PARTS = (HEAD + "paths:\n"
         "  /a:\n    get:\n      tags: [t]\n      responses: {'200': {description: ok, content: {application/json: "
         "{schema: {$ref: '#/components/schemas/A'}}}}}\n"
         "  /b:\n    get: {responses: 5}\n"
         "  /c:\n    get:\n      responses: {'200': {description: ok, content: {application/json: "
         "{schema: {$ref: '#/components/schemas/C'}}}}}\n"
         "components:\n  schemas:\n    A: {type: object, properties: {b: {$ref: '#/components/schemas/B'}}}\n"
         "    B: {type: string}\n    C: {type: 5}\n")


def test_import_of_a_part_validates_and_reads_that_part(tmp_path: Path) -> None:
    """--path and --tag: only the paths asked for, and the components they reach, are validated and read
    (GitHub's description of 900 paths took 25 s to validate whole for an import of four); what they
    reach is still checked."""
    (tmp_path / "d.yaml").write_text(PARTS)
    whole = cli("connectors", "import", "d.yaml", "--name", "d", "--yes", cwd=tmp_path)
    assert whole.status == 2 and "not a valid OpenAPI/Swagger description" in whole.stderr, whole.stderr
    for flags in (["--path", "/a"], ["--tag", "t"], ["--path", "/[ab]", "--tag", "t"]):
        part = cli("connectors", "import", "d.yaml", "--name", "d", "--yes", "--force", *flags, cwd=tmp_path)
        assert part.status == 0, (flags, part.stderr)
        assert list(tomllib.loads((tmp_path / "connectors" / "d.toml").read_text())["operations"]) == ["get_a"]
    for path, said in (("/b", "5 is not of type 'object'"), ("/c", "{'type': 5} is not valid under any")):
        bad = cli("connectors", "import", "d.yaml", "--name", "d", "--yes", "--force", "--path", path, cwd=tmp_path)
        assert bad.status == 2 and "not a valid OpenAPI/Swagger description" in bad.stderr, bad.stderr
        assert said in bad.stderr, bad.stderr
    (tmp_path / "connectors" / "e.toml").write_text(
        'name = "e"\nbase_url = "https://e.example.com"\n[operations.get_a]\nmethod = "GET"\npath = "/a"\n'
        '[operations.get_bb]\nmethod = "GET"\npath = "/bb"\n')
    checked = cli("connectors", "verify", "e", "--spec", "d.yaml", cwd=tmp_path)  # /b, /c: not its paths
    assert checked.status == 1, checked.stderr
    assert "get_bb: GET /bb is not in the description (nearest: /b)" in checked.stderr  # a path not read
    assert "not a valid" not in checked.stderr and "1 problem(s) in 2 operations" in checked.stderr


class _SpecServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (SPECS / "shop.yaml").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_import_from_a_url(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SpecServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/shop.yaml"
        data = imported(tmp_path, url, "shop")
    finally:
        server.shutdown()
    assert "list_orders" in data["operations"]


# ---- verify --------------------------------------------------------------------------------------


def write_connector(tmp_path: Path, operations: str) -> None:
    (tmp_path / "connectors").mkdir(exist_ok=True)
    (tmp_path / "connectors" / "shop.toml").write_text(
        'name = "shop"\nbase_url = "https://api.shop.example.com/v2"\n' + operations)


def verify(tmp_path: Path) -> Any:
    return cli("connectors", "verify", "shop", "--spec", str(SPECS / "shop.yaml"), cwd=tmp_path)


def test_verify_passes_for_an_imported_file(tmp_path: Path) -> None:
    imported(tmp_path, SPECS / "shop.yaml", "shop")
    result = verify(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "7 operations match" in result.stderr


def test_verify_fails_on_a_wrong_path(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.list_orders]\nmethod = "GET"\npath = "/order"\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "list_orders: GET /order is not in the description (nearest: /v2/orders)" in result.stderr


def test_verify_fails_on_a_wrong_method(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.update_order]\nmethod = "PUT"\npath = "/orders/{id}"\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "update_order: the description has /orders/{id} but not PUT (it has DELETE, GET, PATCH)" in result.stderr


def test_verify_fails_on_a_missing_required_parameter(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.list_customers]\nmethod = "GET"\npath = "/customers"\n'
                              'pagination = { style = "link", size_param = "per_page", size = 100 }\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "list_customers: misses the required query parameter 'email'" in result.stderr


def test_verify_fails_on_an_unknown_query_parameter(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.list_orders]\nmethod = "GET"\npath = "/orders"\n'
                              'query = { state = "state" }\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "list_orders: the query parameter 'state' is not in the description of GET /orders (it has: " \
           "cursor, limit, status)" in result.stderr


def test_verify_fails_on_a_body_field_the_schema_lacks(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.create_order]\nmethod = "POST"\npath = "/orders"\n'
                              'fields = ["customer_id", "totl"]\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "create_order: the body field 'totl' is not in the request schema of POST /orders (it has: id, " \
           "customer_id, total, lines)" in result.stderr


def test_verify_fails_when_a_required_body_field_is_not_sent(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.create_order]\nmethod = "POST"\npath = "/orders"\nfields = ["total"]\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "create_order: the request schema requires the body field 'customer_id'" in result.stderr


def test_verify_fails_on_a_pagination_parameter_the_api_lacks(tmp_path: Path) -> None:
    write_connector(tmp_path, '[operations.list_orders]\nmethod = "GET"\npath = "/orders"\n'
                              'pagination = { style = "page", size = 10 }\n')
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "list_orders: the pagination parameter 'page' is not a query parameter of GET /orders" in result.stderr


def test_verify_names_an_unknown_connector(tmp_path: Path) -> None:
    result = cli("connectors", "verify", "nope", "--spec", str(SPECS / "shop.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "no connector file 'nope'" in result.stderr


@pytest.mark.parametrize("required", ["email"])
def test_required_query_arguments_are_checked_before_running(tmp_path: Path, required: str) -> None:
    imported(tmp_path, SPECS / "shop.yaml", "shop")
    (tmp_path / "f.flow").write_text('use shop = shop(token: "t")\ncall shop.list_customers() as cs\n'
                                     'for each c in cs\n  emit c\nend\n')
    result = cli("check", "f.flow", cwd=tmp_path)
    assert result.returncode == 2
    assert f"list_customers() needs the argument '{required}'" in result.stderr


def description(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "T", "version": "1"},
            "servers": [{"url": "https://api.example.com"}], "paths": paths}


def listing(*params: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"operationId": "list", "parameters": list(params),
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"type": "array", "items": {"type": "object"}}}}}}}}


@pytest.mark.parametrize(("params", "style"), [
    # Stripe: expand is a deepObject (expand[]=a), and an array it refuses as a repeated name
    ([{"name": "expand", "in": "query", "style": "deepObject", "explode": True,
       "schema": {"type": "array", "items": {"type": "string"}}}], "brackets"),
    # Asana's opt_fields, GitHub's labels: a comma-separated list
    ([{"name": "opt_fields", "in": "query", "style": "form", "explode": False,
       "schema": {"type": "array", "items": {"type": "string"}}}], "comma"),
    ([{"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}], None),
])
def test_import_writes_the_param_style_the_description_serializes_lists_with(
        tmp_path: Path, params: list[dict[str, Any]], style: str | None) -> None:
    """An imported connector sent every list as a repeated name, whatever the description said: an
    import of Stripe's description (expand: style deepObject) made expand=a, which Stripe refuses with
    400 Invalid array, and one of Asana's (opt_fields: explode false) opt_fields=a&opt_fields=b. The
    importer now writes param_style from the parameters' style and explode."""
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(description({"/items": listing(*params)})))
    data = imported(tmp_path, spec, "api")
    assert data.get("param_style") == style


# ---- references: a description from the internet reads no local file -----------------------------

SECRET = "TOPSECRET-VALUE"
REF_HEAD = HEAD + 'servers: [{url: "https://api.example.com"}]\n'


def referring(ref: str) -> str:
    return (REF_HEAD + "paths:\n  /a:\n    get:\n      operationId: listA\n      parameters:\n"
            f"        - $ref: '{ref}'\n      responses: {{'200': {{description: ok}}}}\n")


@pytest.mark.parametrize(("ref", "said"), [
    ("OUTSIDE/secret.yaml#/p", "is an absolute path"),  # /tmp/.../outside/secret.yaml
    ("../secret.yaml#/p", "goes up with '..', out of the description's folder"),
    ("sub/../../secret.yaml#/p", "goes up with '..'"),
    ("file://OUTSIDE/secret.yaml#/p", "is a file: URL"),  # file:///tmp/...
    ("python://flowlang/stdlib/x.yaml#/p", "is a python: URL"),
    ("http://127.0.0.1:9/secret.yaml#/p", "is a http: URL"),
    ("link/secret.yaml#/p", "leads out of the description's folder"),
    ("inner.yaml#/p", "goes up with '..'"),  # a file beside it that refers up
])
def test_a_description_cannot_refer_to_files_outside_its_folder(tmp_path: Path, ref: str, said: str) -> None:
    """A description's $ref to a local file was followed wherever it pointed: '../secret.yaml#/p' read a
    file above the description's folder and the import's error printed it ("{'name': 'q', 'in': 'query',
    'description': 'TOPSECRET-VALUE'} is not valid under any of the given schemas"); '/etc/passwd' was
    read as well. Only references inside the document, or to files in its folder, are followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = f"p: {{name: q, in: query, description: {SECRET}, schema: {{type: string}}}}\n"
    (outside / "secret.yaml").write_text(secret)
    (tmp_path / "secret.yaml").write_text(secret)
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "link").symlink_to(outside)
    (spec / "inner.yaml").write_text("p: {$ref: '../secret.yaml#/p'}\n")
    ref = ref.replace("OUTSIDE", str(outside))
    (spec / "d.yaml").write_text(referring(ref))
    result = cli("connectors", "import", "spec/d.yaml", "--name", "d", "--yes", cwd=tmp_path)
    assert result.status == 2, result.stderr
    where = "spec/inner.yaml:1:" if ref.startswith("inner") else "spec/d.yaml:9:18: "
    assert where in result.stderr and said in result.stderr, result.stderr
    shown = "../secret.yaml#/p" if ref.startswith("inner") else ref
    assert f"the $ref '{shown}' at " in result.stderr
    assert SECRET not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "connectors").exists()


def test_a_description_refers_to_files_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "params.yaml").write_text(
        "p: {name: status, in: query, description: the status, schema: {$ref: 'types.yaml#/Status'}}\n")
    (tmp_path / "common" / "types.yaml").write_text("Status: {type: string, enum: [open, closed]}\n")
    (tmp_path / "d.yaml").write_text(referring("common/params.yaml#/p"))
    data = imported(tmp_path, tmp_path / "d.yaml", "d")
    assert data["operations"]["get_a"]["query"] == {"status": "status"}, data


class _RefServer(BaseHTTPRequestHandler):
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _RefServer.asked.append(self.path)
        body = referring("secret.yaml#/p").encode() if self.path == "/d.yaml" else b"p: {name: q, in: query}\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_description_from_a_url_refers_only_inside_itself(tmp_path: Path) -> None:
    """A description read from a URL made prance fetch each relative $ref from the same server (and an
    absolute http:// one from any address): only '#/...' is followed, and the server is asked once."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/d.yaml"
        result = cli("connectors", "import", url, "--name", "d", "--yes", cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == 2, result.stderr
    assert f"{url}:9:18: the $ref 'secret.yaml#/p' at paths./a.get.parameters.0 refers outside the description" \
        in result.stderr, result.stderr
    assert _RefServer.asked == ["/d.yaml"]
