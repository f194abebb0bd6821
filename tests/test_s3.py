"""The `s3` connector against moto's S3 in server mode on 127.0.0.1 (started by the tests): write and
read in every format, pick-up with after: inside the bucket (archived only when all records
succeeded), binary folders, and clear errors (a missing bucket or object) that never show the
secret key, in the output, the logs or the state folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import cli
from s3server import moto_s3, s3_client

CANARY = 'se"cr\\et-ключ-' + "é" * 40 + "-" + "k" * 200


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, request: pytest.FixtureRequest) -> str:
    name = "b-" + request.node.name.replace("_", "-")[:50].lower().strip("-")
    s3_client(endpoint).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    return name


def use(endpoint: str, bucket: str, path: str, extra: str = "") -> str:
    return (f'bucket: "{bucket}", region: "eu-north-1", endpoint_url: "{endpoint}", access_key: "testing", '
            f'secret_key: secret.S3_SECRET, path: "{path}"{extra}')


ENV = {"S3_SECRET": CANARY}
DELETE = ', after: "delete"'


def keys(endpoint: str, bucket: str) -> list[str]:
    listed: Any = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def body(endpoint: str, bucket: str, key: str) -> bytes:
    return bytes(s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


def no_canary(*texts: str, folder: Path | None = None) -> None:
    for text in texts:
        assert CANARY not in text and "ключ" not in text
    if folder is not None:
        for p in folder.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert CANARY.encode() not in data and "ключ".encode() not in data, p


def test_write_then_read_csv_json_jsonl_in_a_bucket(endpoint: str, bucket: str, tmp_path: Path) -> None:
    lines = [f"use out_{fmt} = s3({use(endpoint, bucket, f'out/rows.{fmt}')})" for fmt in ("csv", "json", "jsonl")]
    lines.append('for each r in [{id: "1", name: "Åse"}, {id: "2", name: "@sum"}]')
    lines += [f"  send r to out_{fmt}" for fmt in ("csv", "json", "jsonl")] + ["end"]
    (tmp_path / "w.flow").write_text("\n".join(lines) + "\n")
    proc = cli("run", "w.flow", cwd=tmp_path, env=ENV)
    assert proc.status == 0, proc.stderr
    assert keys(endpoint, bucket) == ["out/rows.csv", "out/rows.json", "out/rows.jsonl"]
    assert body(endpoint, bucket, "out/rows.csv").decode() == "id,name\n1,Åse\n2,'@sum\n"
    assert json.loads(body(endpoint, bucket, "out/rows.json")) == [{"id": "1", "name": "Åse"},
                                                                  {"id": "2", "name": "@sum"}]
    (tmp_path / "r.flow").write_text(
        f"use a = s3({use(endpoint, bucket, 'out/rows.jsonl')})\n"
        "call a.read() as rows\nfor each r in rows\n  emit r.name\nend\n"
        'lookup a.find(id: "1") as hit\nemit hit.name\n')
    proc = cli("run", "r.flow", cwd=tmp_path, env=ENV)
    assert proc.status == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == ["Åse", "@sum", "Åse"]
    no_canary(proc.stdout, proc.stderr, folder=tmp_path)


def test_pickup_archives_in_the_bucket_only_files_whose_records_all_succeeded(endpoint: str, bucket: str,
                                                                              tmp_path: Path) -> None:
    client = s3_client(endpoint)
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"id,amount\n1,5\n2,6\n")
    client.put_object(Bucket=bucket, Key="in/b.csv", Body=b"id,amount\n3,bad\n4,7\n")
    client.put_object(Bucket=bucket, Key="in/sub/c.csv", Body=b"id,amount\n9,9\n")  # not in the folder itself
    after = ', after: "done/"'
    (tmp_path / "f.flow").write_text(
        f"use inbox = s3({use(endpoint, bucket, 'in/*.csv', after)})\n"
        'use out = file(path: "sent.jsonl", mode: "append")\n'
        "call inbox.read() as rows\nfor each r in rows\n"
        '  if r.amount == "bad"\n    fail "bad amount in {r.id}"\n  end\n  send r to out\nend\n')
    first = cli("run", "f.flow", cwd=tmp_path, env=ENV)
    assert first.status == 3, first.stderr
    assert keys(endpoint, bucket) == ["done/a.csv", "in/b.csv", "in/sub/c.csv"]
    client.put_object(Bucket=bucket, Key="in/b.csv", Body=b"id,amount\n3,8\n4,7\n")
    second = cli("run", "f.flow", cwd=tmp_path, env=ENV)
    assert second.status == 0, second.stderr
    assert keys(endpoint, bucket) == ["done/a.csv", "done/b.csv", "in/sub/c.csv"]
    sent = [json.loads(x)["id"] for x in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert sorted(sent) == ["1", "2", "3", "4", "4"]
    no_canary(first.stdout, first.stderr, second.stdout, second.stderr, folder=tmp_path)


def test_binary_folder_and_pickup_with_delete(endpoint: str, bucket: str, tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    blobs = {"a.pdf": bytes(range(256)) * 40, "b.pdf": b"%PDF\x00\xff"}
    for n, b in blobs.items():
        (tmp_path / "scans" / n).write_bytes(b)
    fmt = ', format: "bytes"'
    (tmp_path / "up.flow").write_text(
        'use inbox = file(path: "scans/*.pdf", format: "bytes", after: "sent/")\n'
        f"use out = s3({use(endpoint, bucket, 'pdf/', fmt)})\n"
        "call inbox.read() as files\nfor each f in files\n  send {name: f.name, content: f.content} to out\nend\n"
        f"use back = s3({use(endpoint, bucket, 'pdf/*.pdf', fmt + DELETE)})\n"
        "call back.list() as listed\nfor each x in listed\n  emit x\nend\n")
    proc = cli("run", "up.flow", cwd=tmp_path, env=ENV)
    assert proc.status == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [
        {"name": "a.pdf", "path": "pdf/a.pdf", "size": 10240}, {"name": "b.pdf", "path": "pdf/b.pdf", "size": 6}]
    assert {k: body(endpoint, bucket, k) for k in keys(endpoint, bucket)} == {f"pdf/{k}": v for k, v in blobs.items()}
    (tmp_path / "down.flow").write_text(
        f"use inbox = s3({use(endpoint, bucket, 'pdf/*.pdf', fmt + DELETE)})\n"
        'use out = file(path: "back/", format: "bytes")\n'
        "call inbox.read() as files\nfor each f in files\n  send {name: f.name, content: f.content} to out\nend\n")
    proc = cli("run", "down.flow", cwd=tmp_path, env=ENV)
    assert proc.status == 0, proc.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "back").iterdir()} == blobs
    assert keys(endpoint, bucket) == []


def test_clear_errors_that_never_show_the_secret_key(endpoint: str, bucket: str, tmp_path: Path) -> None:
    read = "call s.read() as rows\nfor each r in rows\n  emit r\nend\n"
    (tmp_path / "missing.flow").write_text(f"use s = s3({use(endpoint, bucket, 'no/such.csv')})\n" + read)
    proc = cli("run", "missing.flow", "--debug", cwd=tmp_path, env=ENV)
    assert proc.status != 0
    assert f"file not found: s3://{bucket}/no/such.csv" in proc.stderr
    no_canary(proc.stdout, proc.stderr)
    (tmp_path / "nobucket.flow").write_text(f"use s = s3({use(endpoint, 'not-there', 'x.csv')})\n" + read)
    proc = cli("run", "nobucket.flow", cwd=tmp_path, env=ENV)
    assert proc.status != 0
    assert "s3: the bucket 'not-there' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    (tmp_path / "half.flow").write_text(f'use s = s3(bucket: "{bucket}", access_key: "x", path: "a.csv")\n' + read)
    proc = cli("run", "half.flow", cwd=tmp_path, env=ENV)
    assert proc.status != 0 and "s3 needs access_key and secret_key together" in proc.stderr
    no_canary(proc.stdout, proc.stderr, folder=tmp_path)
