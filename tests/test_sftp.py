"""The `sftp` connector against a real SFTP server (asyncssh's, on 127.0.0.1, started by the tests):
read and write in every format, pick-up with after: (archived only when all records succeeded),
binary folders, host key checking on by default, and clear errors (a refused login, an unknown host
key, a missing file) that never show a credential."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli, run_cli
from sftpserver import SftpServer

AFTER_DONE = ', after: "done/"'
AFTER_OLD = ', after: "old/"'
BYTES = ', format: "bytes"'
CANARY = 'pa"ss\\wörd-' + "ü" * 40 + "-" + "x" * 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SftpServer]:
    with SftpServer(tmp_path / "remote", password=CANARY) as s:
        yield s


def use(server: SftpServer, flow_dir: Path, path: str, extra: str = "", login: str = "key: secret.SFTP_KEY") -> str:
    server.known_hosts(flow_dir / "known_hosts")
    return (f'host: "127.0.0.1", port: {server.port}, user: "flow", {login}, known_hosts: "known_hosts", '
            f'path: "{path}"{extra}')


def env(server: SftpServer) -> dict[str, str]:
    return {"SFTP_KEY": server.private_key(), "SFTP_PASSWORD": CANARY}


def test_write_then_read_csv_json_jsonl_on_the_server(server: SftpServer, tmp_path: Path) -> None:
    flow = tmp_path / "flow"
    flow.mkdir()
    lines = []
    for fmt in ("csv", "json", "jsonl"):
        lines.append(f"use out_{fmt} = sftp({use(server, flow, f'out/rows.{fmt}')})")
    lines.append('for each r in [{id: "1", name: "Åse"}, {id: "2", name: "=cmd"}]')
    lines += [f"  send r to out_{fmt}" for fmt in ("csv", "json", "jsonl")]
    lines.append("end")
    (flow / "w.flow").write_text("\n".join(lines) + "\n")
    proc = cli("run", "w.flow", cwd=flow, env=env(server))
    assert proc.status == 0, proc.stderr
    remote = server.root / "out"
    assert (remote / "rows.csv").read_text() == "id,name\n1,Åse\n2,'=cmd\n"
    assert json.loads((remote / "rows.json").read_text()) == [{"id": "1", "name": "Åse"}, {"id": "2", "name": "=cmd"}]
    assert [json.loads(x)["id"] for x in (remote / "rows.jsonl").read_text().splitlines()] == ["1", "2"]
    assert sorted(p.name for p in remote.iterdir()) == ["rows.csv", "rows.json", "rows.jsonl"]  # no .part left
    (flow / "r.flow").write_text(
        f"use a = sftp({use(server, flow, 'out/rows.csv')})\n"
        f"use b = sftp({use(server, flow, 'out/rows.json')})\n"
        "call a.read() as rows\nfor each r in rows\n  emit r.name\nend\n"
        "call b.read() as rows2\nfor each r in rows2\n  emit r.id\nend\n"
        'lookup a.find(id: "2") as hit\nemit hit.name\n')
    proc = cli("run", "r.flow", cwd=flow, env=env(server))
    assert proc.status == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == ["Åse", "'=cmd", "1", "2", "'=cmd"]


def test_pickup_archives_on_the_server_only_files_whose_records_all_succeeded(server: SftpServer,
                                                                              tmp_path: Path) -> None:
    flow = tmp_path / "flow"
    flow.mkdir()
    inbox = server.root / "in"
    inbox.mkdir()
    (inbox / "a.csv").write_text("id,amount\n1,5\n2,6\n")
    (inbox / "b.csv").write_text("id,amount\n3,bad\n4,7\n")
    (inbox / "notes.txt").write_text("not picked up")
    (flow / "f.flow").write_text(
        f"use inbox = sftp({use(server, flow, 'in/*.csv', AFTER_DONE, 'password: secret.SFTP_PASSWORD')})\n"
        'use out = file(path: "sent.jsonl", mode: "append")\n'
        "call inbox.read() as rows\nfor each r in rows\n"
        '  if r.amount == "bad"\n    fail "bad amount in {r.id}"\n  end\n  send r to out\nend\n')
    first = cli("run", "f.flow", cwd=flow, env=env(server))
    assert first.status == 3, first.stderr
    assert sorted(p.name for p in (server.root / "done").iterdir()) == ["a.csv"]
    assert sorted(p.name for p in inbox.iterdir()) == ["b.csv", "notes.txt"]
    (inbox / "b.csv").write_text("id,amount\n3,8\n4,7\n")
    second = cli("run", "f.flow", cwd=flow, env=env(server))
    assert second.status == 0, second.stderr
    assert sorted(p.name for p in (server.root / "done").iterdir()) == ["a.csv", "b.csv"]
    sent = [json.loads(x)["id"] for x in (flow / "sent.jsonl").read_text().splitlines()]
    assert sorted(sent) == ["1", "2", "3", "4", "4"]  # 4 was sent by the failed first run too; a.csv once
    for text in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert CANARY not in text and "wörd" not in text


def test_binary_pickup_and_folder_and_list(server: SftpServer, tmp_path: Path) -> None:
    flow = tmp_path / "flow"
    (flow / "scans").mkdir(parents=True)
    blobs = {"a.pdf": bytes(range(256)) * 10, "b.pdf": b"\x00\xff" * 3}
    for n, b in blobs.items():
        (flow / "scans" / n).write_bytes(b)
    (flow / "up.flow").write_text(
        'use inbox = file(path: "scans/*.pdf", format: "bytes", after: "delete")\n'
        f"use out = sftp({use(server, flow, 'upload/', BYTES)})\n"
        "call inbox.read() as files\nfor each f in files\n  send {name: f.name, content: f.content} to out\nend\n"
        "call out.list() as listed\nfor each x in listed\n  emit x\nend\n")
    proc = cli("run", "up.flow", cwd=flow, env=env(server))
    assert proc.status == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [{"name": "a.pdf", "size": 2560},
                                                                 {"name": "b.pdf", "size": 6}]
    assert {p.name: p.read_bytes() for p in (server.root / "upload").iterdir()} == blobs
    assert list((flow / "scans").iterdir()) == []
    (flow / "down.flow").write_text(
        f"use inbox = sftp({use(server, flow, 'upload/*.pdf', BYTES + AFTER_OLD)})\n"
        'use out = file(path: "back/", format: "bytes")\n'
        "call inbox.read() as files\nfor each f in files\n  emit {name: f.name, path: f.path, size: f.size}\n"
        "  send {name: f.name, content: f.content} to out\nend\n")
    proc = cli("run", "down.flow", cwd=flow, env=env(server))
    assert proc.status == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0]) == {"name": "a.pdf", "path": "upload/a.pdf", "size": 2560}
    assert {p.name: p.read_bytes() for p in (flow / "back").iterdir()} == blobs
    assert sorted(p.name for p in (server.root / "old").iterdir()) == ["a.pdf", "b.pdf"]


def test_clear_errors_without_credentials(server: SftpServer, tmp_path: Path) -> None:
    flow = tmp_path / "flow"
    flow.mkdir()
    read = "call s.read() as rows\nfor each r in rows\n  emit r\nend\n"
    (flow / "missing.flow").write_text(f"use s = sftp({use(server, flow, 'nothing/here.csv')})\n" + read)
    proc = cli("run", "missing.flow", cwd=flow, env=env(server))
    assert proc.status != 0
    assert f"file not found: sftp://flow@127.0.0.1:{server.port}/nothing/here.csv" in proc.stderr
    assert "Traceback" not in proc.stderr

    (flow / "wrong.flow").write_text(
        f"use s = sftp({use(server, flow, 'x.csv', login='password: secret.WRONG')})\n" + read)
    proc = cli("run", "wrong.flow", cwd=flow, env={"WRONG": CANARY + "!"})
    assert proc.status != 0
    assert f"flow@127.0.0.1:{server.port} refused the login (check user, key or password)" in proc.stderr
    assert CANARY not in proc.stderr + proc.stdout and "wörd" not in proc.stderr + proc.stdout

    other = SftpServer(tmp_path / "other")  # another host key: the known_hosts entry does not match
    other.known_hosts(flow / "known_hosts")
    (flow / "known_hosts").write_text((flow / "known_hosts").read_text().replace(str(other.port), str(server.port)))
    (flow / "unknown.flow").write_text(
        f'use s = sftp(host: "127.0.0.1", port: {server.port}, user: "flow", key: secret.SFTP_KEY, '
        'known_hosts: "known_hosts", path: "x.csv")\n' + read)
    proc = cli("run", "unknown.flow", cwd=flow, env=env(server))
    assert proc.status != 0
    assert f"the host key of 127.0.0.1:{server.port} is not in known_hosts" in proc.stderr

    home = tmp_path / "home"
    home.mkdir()
    (flow / "nokh.flow").write_text(
        f'use s = sftp(host: "127.0.0.1", port: {server.port}, user: "flow", key: secret.SFTP_KEY, '
        'path: "x.csv")\n' + read)
    proc = cli("run", "nokh.flow", cwd=flow, env={**env(server), "HOME": str(home)})
    assert proc.status != 0
    assert "is not in known_hosts (~/.ssh/known_hosts)" in proc.stderr  # checked by default, no file: refused
    assert server.logins == 0  # the password login never succeeded; the key logins are not counted


def test_an_sftp_run_prints_no_library_warnings_and_port_0_is_refused(tmp_path: Path) -> None:
    """Every run that used sftp printed five 'warning: .../asyncssh/crypto/dsa.py:38:
    CryptographyDeprecationWarning: DSA is deprecated ...' lines (asyncssh's modules as they load), before
    its own words; and 'port: 0' connected to port 22. Neither now (a real process: the first import)."""
    flow = ('let p = {port}\nuse s = sftp(host: "127.0.0.1", port: p, user: "u", password: "p", path: "x.csv")\n'
            "call s.read() as rows\nemit len(rows)\n")
    (tmp_path / "f.flow").write_text(flow.format(port=9))
    closed = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert closed.returncode == 1 and "Warning" not in closed.stderr, closed.stderr
    assert closed.stderr.startswith("f.flow:3:6: error: sftp: cannot connect to 127.0.0.1:9: ")
    (tmp_path / "f.flow").write_text(flow.format(port=0))
    zero = run_cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert zero.returncode == 1 and "f.flow:2:39: error: sftp port must be a number from 1 to 65535, got '0'" \
        in zero.stderr, zero.stderr
