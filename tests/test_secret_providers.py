"""Secret providers of flowlang.toml, each against a real thing of its kind: a .env file, the keyring
(keyrings.alt's file backend), a command, AWS Secrets Manager (moto's server mode) and Vault KV v2
(the project's own fake Vault: no Vault server installs here). A canary from every provider never
reaches an output or the store."""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import run_cli
from fakeapi import FakeApi

CANARY = 'c4n"ary\\sé' + "ø-" * 300 + "end"  # quotes, a backslash, non-ASCII, > 500 characters

FLOW = """
flow "secrets"
use api = http(base_url: env.API)
let t = secret.API_TOKEN
log "token {t}"
emit {token: t, text: "x{t}y"}
send {token: t} to api.post("/sink")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def forms(secret: str) -> list[str]:
    """The secret as it could leak: plain, JSON-escaped (both ASCII modes), URL-encoded, base64, and a
    long enough piece of it."""
    raw = secret.encode()
    return [secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            urllib.parse.quote(secret, safe=""), base64.b64encode(raw).decode(), secret[:40], secret[-40:]]


def assert_no_canary(texts: list[str], folder: Path) -> None:
    db = folder / ".flowlang" / "flowlang.db"
    if db.exists():
        con = sqlite3.connect(db)
        for table in ("jobs", "state", "errors"):
            texts += [json.dumps(row, ensure_ascii=False) for row in con.execute(f"select * from {table}")]
        con.close()
    for text in texts:
        for form in forms(CANARY):
            assert form not in text


def run_flow(folder: Path, api: FakeApi, env: dict[str, str] | None = None, *extra: str) -> tuple[int, str, str]:
    proc = run_cli("run", "f.flow", "--log-format", "json", *extra, cwd=folder, env={**(env or {}), "API": api.url})
    return proc.returncode, proc.stdout, proc.stderr


def setup(folder: Path, project: str) -> None:
    (folder / "f.flow").write_text(FLOW)
    (folder / "flowlang.toml").write_text(project)


def check_run(folder: Path, env: dict[str, str] | None = None) -> None:
    with FakeApi() as api:
        api.route("POST", "/sink", lambda req: (201, {}, {"ok": True}))
        code, out, err = run_flow(folder, api, env)
        assert code == 0, err
        assert [json.loads(x) for x in out.splitlines()] == [{"token": "***", "text": "x***y"}]
        text_code, text_out, text_err = run_flow(folder, api, env, "--debug")
        assert text_code == 0
        # the value really reached the flow: the server received it whole
        assert [r.body for r in api.requests] == [{"token": CANARY}, {"token": CANARY}]
    assert_no_canary([out, err, text_out, text_err], folder)


def test_dotenv_provider(tmp_path: Path) -> None:
    setup(tmp_path, '[secrets.dotenv]\npath = "prod.env"\n')
    (tmp_path / "prod.env").write_text("API_TOKEN=" + json.dumps(CANARY, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    check_run(tmp_path)


def test_a_flow_run_by_another_reads_its_secrets_from_the_same_providers(tmp_path: Path) -> None:
    """A flow run with `run "child.flow"` asked only the --secrets file and the environment, never the
    providers of flowlang.toml: its `secret.API_TOKEN` from a .env file 'is not set; asked: API_TOKEN in
    the --secrets file; the environment variable API_TOKEN', and the parent failed, while the same flow
    run alone found it."""
    setup(tmp_path, '[secrets.dotenv]\npath = "prod.env"\n')
    (tmp_path / "prod.env").write_text("API_TOKEN=" + json.dumps(CANARY, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    (tmp_path / "parent.flow").write_text('run "f.flow"\n')
    with FakeApi() as api:
        api.route("POST", "/sink", lambda req: (201, {}, {"ok": True}))
        proc = run_cli("run", "parent.flow", "--log-format", "json", cwd=tmp_path, env={"API": api.url})
        assert proc.returncode == 0, proc.stderr
        assert [r.body for r in api.requests] == [{"token": CANARY}]
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [{"token": "***", "text": "x***y"}]
    assert_no_canary([proc.stdout, proc.stderr], tmp_path)


def test_environment_and_secrets_file_come_first(tmp_path: Path) -> None:
    setup(tmp_path, '[secrets.dotenv]\n')
    (tmp_path / ".env").write_text("API_TOKEN=from-dotenv\n")
    with FakeApi() as api:
        api.route("POST", "/sink", lambda req: (201, {}, {"ok": True}))
        run_flow(tmp_path, api, {"API_TOKEN": "from-env"})
        assert api.requests[0].body == {"token": "from-env"}
    proc = run_cli("secrets", "check", "f.flow", cwd=tmp_path, env={"API_TOKEN": "from-env"})
    assert proc.returncode == 0
    assert "API_TOKEN  f.flow:4:9  found in the environment" in proc.stdout
    (tmp_path / "flowlang.toml").write_text('[secrets]\norder = ["dotenv", "env"]\n[secrets.dotenv]\n')
    proc = run_cli("secrets", "check", "f.flow", cwd=tmp_path, env={"API_TOKEN": "from-env"})
    assert "found in the .env file" in proc.stdout


def test_a_missing_secret_names_every_provider_asked(tmp_path: Path) -> None:
    setup(tmp_path, '[secrets.dotenv]\n[secrets.command]\ncommand = "' + sys.executable.replace("\\", "/")
          + ' -c \\"import sys; sys.exit(0)\\" {name}"\n')
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2  # a missing secret is a usage mistake
    assert "secret 'API_TOKEN' is not set; asked: API_TOKEN in the --secrets file; the environment variable " \
           "API_TOKEN; API_TOKEN in " in proc.stderr
    assert "the command '" in proc.stderr and "f.flow:4:9" in proc.stderr
    assert "Traceback" not in proc.stderr
    check = run_cli("secrets", "check", "f.flow", cwd=tmp_path)
    assert check.returncode == 2 and "API_TOKEN  f.flow:4:9  MISSING" in check.stdout


def test_keyring_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keyrings.alt.file import PlaintextKeyring

    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    PlaintextKeyring().set_password("acme-sync", "API_TOKEN", CANARY)
    setup(tmp_path, '[secrets.keyring]\nservice = "acme-sync"\n')
    check_run(tmp_path, env)


def write_script(folder: Path, body: str) -> str:
    script = folder / "get_secret.py"
    script.write_text(body, encoding="utf-8")
    return f'{sys.executable} {script}'.replace("\\", "/")


def test_command_provider(tmp_path: Path) -> None:
    (tmp_path / "vault.json").write_text(json.dumps({"API_TOKEN": CANARY}), encoding="utf-8")
    command = write_script(tmp_path, "import json, sys\nname = sys.argv[1]\n"
                           "sys.stdout.buffer.write((json.load(open('vault.json', encoding='utf-8'))[name] + '\\n')"
                           ".encode())\n")
    setup(tmp_path, f'[secrets.command]\ncommand = "{command} {{name}}"\n')
    check_run(tmp_path)


def test_command_provider_failures_are_clear_and_hold_no_value(tmp_path: Path) -> None:
    command = write_script(tmp_path, f"import sys\nsys.stderr.write({CANARY!r})\nsys.exit(3)\n")
    setup(tmp_path, f'[secrets.command]\ncommand = "{command} {{name}}"\n')
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 1
    assert "secret 'API_TOKEN' could not be read: the command" in proc.stderr
    assert "exited with status 3" in proc.stderr
    assert CANARY[:20] not in proc.stderr
    slow = write_script(tmp_path, "import time\ntime.sleep(30)\n")
    setup(tmp_path, f'[secrets.command]\ncommand = "{slow} {{name}}"\ntimeout = 0.5\n')
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 1 and "did not answer within 0.5s" in proc.stderr


@pytest.fixture
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-north-1"}


def test_aws_secrets_manager_provider(tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    client = botocore.session.get_session().create_client("secretsmanager", region_name="eu-north-1",
                                                           endpoint_url=moto_server)
    client.create_secret(Name="prod/API_TOKEN", SecretString=CANARY)
    client.create_secret(Name="prod/JSONED", SecretString=json.dumps({"password": "pw-1", "user": "u"}))
    setup(tmp_path, f'[secrets.aws]\nregion = "eu-north-1"\nprefix = "prod/"\nendpoint_url = "{moto_server}"\n')
    check_run(tmp_path, AWS_ENV)
    (tmp_path / "g.flow").write_text("emit secret.MISSING_ONE\n")
    proc = run_cli("run", "g.flow", "--log-format", "text", cwd=tmp_path, env=AWS_ENV)
    assert proc.returncode == 2
    assert "AWS Secrets Manager secret 'prod/MISSING_ONE'" in proc.stderr
    (tmp_path / "flowlang.toml").write_text(f'[secrets.aws]\nregion = "eu-north-1"\nprefix = "prod/"\n'
                                            f'field = "password"\nendpoint_url = "{moto_server}"\n')
    (tmp_path / "h.flow").write_text('use api = http(base_url: env.API)\n'
                                     'send {p: secret.JSONED} to api.post("/sink")\n')
    with FakeApi() as api:
        api.route("POST", "/sink", lambda req: (201, {}, {"ok": True}))
        proc = run_cli("run", "h.flow", cwd=tmp_path, env={**AWS_ENV, "API": api.url})
        assert proc.returncode == 0, proc.stderr
        assert api.requests[0].body == {"p": "pw-1"}


class FakeVault(BaseHTTPRequestHandler):
    """The project's own fake of Vault's KV version 2 read endpoint (GET /v1/<mount>/data/<path>)."""

    secrets: ClassVar[dict[str, dict[str, str]]] = {}
    token = "s.vault-token"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.headers.get("X-Vault-Token") != self.token:
            self._answer(403, {"errors": ["permission denied"]})
            return
        prefix = "/v1/kv/data/"
        name = urllib.parse.unquote(self.path[len(prefix):]) if self.path.startswith(prefix) else None
        if name is None or name not in self.secrets:
            self._answer(404, {"errors": []})
            return
        self._answer(200, {"data": {"data": self.secrets[name], "metadata": {"version": 1}}})

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def vault() -> Iterator[str]:
    FakeVault.secrets = {"flows/API_TOKEN": {"value": CANARY}}
    FakeVault.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_vault_kv2_provider(tmp_path: Path, vault: str) -> None:
    setup(tmp_path, f'[secrets.vault]\naddress = "{vault}"\nmount = "kv"\npath = "flows/{{name}}"\n')
    check_run(tmp_path, {"VAULT_TOKEN": FakeVault.token})
    # each value is fetched once per run, even when read many times
    runs = 2  # check_run runs the flow twice
    assert FakeVault.seen.count("/v1/kv/data/flows/API_TOKEN") == runs
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path, env={"VAULT_TOKEN": "wrong"})
    assert proc.returncode == 1 and "Vault answered 403" in proc.stderr
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 1 and "no Vault token: set the environment variable VAULT_TOKEN" in proc.stderr


def test_a_vault_token_http_cannot_carry_is_refused_unshown(tmp_path: Path, vault: str) -> None:
    """http.client refused a VAULT_TOKEN with a line break (a token read from a file with its newline)
    with a ValueError quoting the whole value, and the run said 'internal error (ValueError: Invalid
    header value b'<the token>')' on stderr and in its job; one past Latin-1 was an internal error too."""
    setup(tmp_path, f'[secrets.vault]\naddress = "{vault}"\nmount = "kv"\npath = "flows/{{name}}"\n')
    token = CANARY[:200]
    for given, what in ((token + "\n", "a line break at its end (read from a file with its newline?)"),
                        ("s.vault\r\ntoken-" + token, "a line break"),
                        ("s.vault-€-" + token, "a character past Latin-1")):
        texts = []
        for command in (["run", "f.flow", "--log-format", "text"], ["secrets", "check", "f.flow"],
                        ["run", "f.flow", "--log-format", "json", "--debug"]):
            proc = run_cli(*command, cwd=tmp_path, env={"VAULT_TOKEN": given})
            assert proc.returncode in (1, 2), proc.stderr
            assert "internal error" not in proc.stderr + proc.stdout
            assert "--debug" in command or "Traceback" not in proc.stderr
            texts += [proc.stdout, proc.stderr]
        said = (f"the Vault token in the environment variable VAULT_TOKEN holds {what}, which an HTTP header "
                "cannot carry")
        assert said + ", so it was not sent" in texts[1] and said in texts[2]
        for text in texts:
            assert token[:40] not in text and token[-40:] not in text
        assert_no_canary(texts, tmp_path)
    assert FakeVault.seen == []


def test_a_bad_project_file_is_a_clear_error(tmp_path: Path) -> None:
    """A key the project file's model refuses said 'secrets.vault.adress: Extra inputs are not permitted'
    with no line, and a TOML mistake 'is not valid TOML: ... (at line 1, column 9)': each is said as a
    connector file's is, with file:line:col, the line and a caret, and a did-you-mean."""
    setup(tmp_path, '[secrets.vault]\nadress = "http://x"\n')
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2
    assert "flowlang.toml: secrets.vault.address: Field required" in proc.stderr
    assert "secrets.vault.adress: no such key (did you mean 'address'?)" in proc.stderr
    assert "flowlang.toml:2:1\n 2 | adress = \"http://x\"\n   | ^^^^^^" in proc.stderr
    (tmp_path / "flowlang.toml").write_text('[secrets]\norder = ["env", "dotnev"]\n')
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2 and "(did you mean 'dotenv'?)" in proc.stderr and "flowlang.toml:2:9" in proc.stderr
    (tmp_path / "flowlang.toml").write_text("[secrets\n")
    proc = run_cli("check", "f.flow", cwd=tmp_path)
    assert proc.returncode == 0  # check does not need secrets
    proc = run_cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "flowlang.toml:1:9: not valid TOML: Expected ']' at the end of a table declaration" in proc.stderr


@pytest.mark.parametrize(("project", "said", "at"), [
    # before: each was taken, coerced by pydantic's lax mode (timeout "5" as 5 seconds, port 587.0 as 587)
    ('[secrets.vault]\naddress = "http://x"\ntimeout = "5"\n',
     "secrets.vault.timeout: must be a number, got the string '5' (write it without quotes)", "3:11"),
    ('[secrets]\norder = "env"\n', "secrets.order: must be an array, got the string 'env'", "2:9"),
    ('[secrets.dotenv]\npath = 5\n', "secrets.dotenv.path: must be a string, got the integer 5", "2:8"),
    ('[alerts.email]\nhost = "h"\nfrom = "a@b"\nto = ["c@d"]\nport = 587.0\n',
     "alerts.email.port: must be a whole number, got the float 587.0", "5:8"),
    ('[alerts.email]\nhost = "h"\nfrom = "a@b"\nto = ["c@d"]\nstarttls = "yes"\n',
     "alerts.email.starttls: must be true or false, got the string 'yes'", "5:12"),
    ('[alerts]\nmin_interval = true\n', "alerts.min_interval: must be a number, got the boolean true", "2:16"),
])
def test_a_project_value_of_another_toml_type_is_a_clear_error(tmp_path: Path, project: str, said: str,
                                                                at: str) -> None:
    setup(tmp_path, project)
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert f"flowlang.toml:{at}\n" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_secret_with_a_default_is_the_default_when_no_provider_has_it(tmp_path: Path) -> None:
    """`secret.X ?? "d"` failed with "secret 'X' is not set" in a run, the REPL and 'check --secrets',
    though `??` is "a unless it is null" (LANGUAGE.md 3) and the flow gave the default. A secret that no
    provider has is null on the left of `??` (alone it is the error it was); one a provider failed to
    read is still that error; 'check' and 'secrets check' take such a read as optional."""
    from conftest import cli

    (tmp_path / "f.flow").write_text(
        'use api = http(base_url: "http://127.0.0.1:9", auth: bearer(secret.TOKEN_X ?? "anonymous"))\n'
        'emit {mode: secret.MODE_X ?? "test", set: secret.SET_X ?? "d", none: (secret.NONE_X ?? null) == null}\n')
    result = cli("run", "f.flow", cwd=tmp_path, env={"SET_X": "Rk3v9Wm2Lp8Tx5Qn"})
    assert result.status == 0, result.stderr
    assert result.stdout == '{"mode":"test","set":"***","none":true}\n'
    repl = cli("repl", cwd=tmp_path, stdin='secret.MODE_X ?? "test"\nsecret.MODE_X\n')
    assert repl.stdout.splitlines()[0] == '"test"', repl.stdout
    assert "secret 'MODE_X' is not set" in repl.stderr
    (tmp_path / "s.toml").write_text('OTHER = "x"\n')
    assert cli("check", "f.flow", "--secrets", "s.toml", cwd=tmp_path).status == 0
    listed = cli("secrets", "check", "f.flow", cwd=tmp_path, env={"SET_X": "Rk3v9Wm2Lp8Tx5Qn"})
    assert listed.status == 0, listed.stdout + listed.stderr
    assert "MODE_X  f.flow:2:13  not set (every read has a default: secret.NAME ?? ...)" in listed.stdout
    (tmp_path / "g.flow").write_text('let a = secret.MODE_X ?? "test"\nemit secret.MODE_X\n')  # read once without
    assert cli("check", "g.flow", "--secrets", "s.toml", cwd=tmp_path).status == 2
    assert cli("secrets", "check", "g.flow", cwd=tmp_path).status == 2
    command = write_script(tmp_path, "import sys\nsys.exit(3)\n")  # a provider that fails is no default
    (tmp_path / "flowlang.toml").write_text(f'[secrets.command]\ncommand = "{command} {{name}}"\n')
    failed = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert failed.status == 1 and "secret 'TOKEN_X' could not be read: the command" in failed.stderr


@pytest.mark.parametrize(("project", "said", "at"), [
    # before: taken, and every secret the flow read was the command's (or the path's) one answer
    ('[secrets.command]\ncommand = "op read op://prod/token/password"\n',
     "secrets.command.command: Value error, the command has no {name}, so every secret would be its one answer",
     "2:11"),
    ('[secrets.vault]\naddress = "http://x"\npath = "flowlang/token"\n',
     "secrets.vault.path: Value error, the path 'flowlang/token' has no {name}", "3:8"),
    # before: taken, and each secret failed where it was read ('the command is empty')
    ('[secrets.command]\ncommand = ""\n', "secrets.command.command: Value error, the command is empty", "2:11"),
    ('[secrets.command]\ncommand = "get \\"{name}"\n',
     "the command line cannot be split into words: No closing quotation", "2:11"),
    # before: 'connectors: no such key' with no line: a table has no `key =` line to point at
    ('[secrets]\norder = ["env"]\n\n[connectors.shop]\nbase_url = "x"\n', "connectors: no such key", "4:2"),
    ('[secrets.comand]\ncommand = "x {name}"\n', "secrets.comand: no such key (did you mean 'command'?)", "1:2"),
])
def test_a_project_setting_that_cannot_work_is_refused_at_its_line(tmp_path: Path, project: str, said: str,
                                                                    at: str) -> None:
    setup(tmp_path, project)
    proc = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert f"flowlang.toml:{at}\n" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_command_with_its_name_still_gives_each_secret_its_own_value(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text("emit secret.A == secret.B\n")
    (tmp_path / "flowlang.toml").write_text('[secrets.command]\ncommand = "echo {name}"\n')
    proc = run_cli("run", "f.flow", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "false\n", proc.stderr
