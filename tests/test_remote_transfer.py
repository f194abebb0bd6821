"""Transfers between stores: the example examples/sftp_to_s3 against the tests' own SFTP server
(asyncssh) and S3 (moto), and a 50 MB binary file moved local file -> SFTP -> S3 in one run whose
peak memory (ru_maxrss of the subprocess, against the same flow moving a 1 KB file) stays far below
the file's size: the bytes move in chunks, never whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli, copy_example
from s3server import moto_s3, s3_client
from sftpserver import SftpServer

MB = 1 << 20


@pytest.fixture
def stores(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[SftpServer, str, str]]:
    bucket = "t-" + request.node.name.replace("_", "-")[:40].strip("-")  # moto's buckets are per process
    with SftpServer(tmp_path / "sftp-root") as sftp, moto_s3() as endpoint:
        s3_client(endpoint).create_bucket(Bucket=bucket,
                                          CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
        yield sftp, endpoint, bucket


def test_example_sftp_to_s3(stores: tuple[SftpServer, str, str], tmp_path: Path) -> None:
    sftp, endpoint, bucket = stores
    folder = copy_example("sftp_to_s3", tmp_path)
    sftp.known_hosts(folder / "known_hosts")
    outgoing = sftp.root / "outgoing"
    outgoing.mkdir()
    pdfs = {"s1.pdf": b"%PDF-1.4\x00" + os.urandom(3000), "s2.pdf": b"%PDF-1.7\xff" * 10}
    for name, data in pdfs.items():
        (outgoing / name).write_bytes(data)
    (outgoing / "readme.txt").write_text("not a scan")
    env = {"SFTP_HOST": "127.0.0.1", "SFTP_PORT": str(sftp.port), "SFTP_USER": "flow", "SFTP_KEY": sftp.private_key(),
           "S3_BUCKET": bucket, "S3_ENDPOINT": endpoint, "S3_ACCESS_KEY": "testing", "S3_SECRET": "testing"}
    proc = cli("run", "scans_to_s3.flow", cwd=folder, env=env)
    assert proc.status == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [{"stored": "s1.pdf", "size": len(pdfs["s1.pdf"])},
                                                                 {"stored": "s2.pdf", "size": 90}]
    client = s3_client(endpoint)
    stored = {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
              for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert stored == {f"scans/{k}": v for k, v in pdfs.items()}  # each once, byte for byte
    assert sorted(p.name for p in outgoing.iterdir()) == ["done", "readme.txt"]
    assert sorted(p.name for p in (outgoing / "done").iterdir()) == ["s1.pdf", "s2.pdf"]
    again = cli("run", "scans_to_s3.flow", cwd=folder, env=env)  # nothing left to pick up
    assert again.status == 0 and again.stdout == "", again.stderr


TRANSFER = """use big = file(path: "big/*.bin", format: "bytes", after: "sent/")
use up = sftp(host: "127.0.0.1", port: {port}, user: "flow", key: secret.SFTP_KEY, known_hosts: "known_hosts",
              path: "up/", format: "bytes")
call big.read() as files
for each f in files
  send {{name: f.name, content: f.content}} to up
end
use down = sftp(host: "127.0.0.1", port: {port}, user: "flow", key: secret.SFTP_KEY, known_hosts: "known_hosts",
                path: "up/*.bin", format: "bytes", after: "delete")
use store = s3(bucket: "{bucket}", region: "eu-north-1", endpoint_url: "{endpoint}", access_key: "testing",
               secret_key: secret.S3_SECRET, path: "dest/", format: "bytes")
call down.read() as got
for each f in got
  send {{name: f.name, content: f.content}} to store
end
"""

# The peak of this process's own memory: VmHWM of /proc/self/status, in KiB. Not ru_maxrss: Linux
# carries the parent's peak (pytest's, holding the test servers and their 50 MB) into it across
# fork and exec, while VmHWM belongs to the memory the new program was given.
MEASURE = ("import sys\nfrom flowlang.cli.main import main\nstatus = main(sys.argv[1:])\n"
           "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1]\n"
           "print('MAXRSS', hwm, file=sys.stderr)\nsys.exit(status)\n")


def peak_kib(folder: Path, sftp: SftpServer) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
    env.update({"SFTP_KEY": sftp.private_key(), "S3_SECRET": "testing", "NO_COLOR": "1"})
    proc = subprocess.run([sys.executable, "-c", MEASURE, "run", "t.flow", "--quiet"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.rsplit("MAXRSS", 1)[1].split()[0])


def transfer(stores: tuple[SftpServer, str, str], folder: Path, size: int) -> int:
    sftp, endpoint, bucket = stores
    (folder / "big").mkdir(parents=True)
    sftp.known_hosts(folder / "known_hosts")
    (folder / "t.flow").write_text(TRANSFER.format(port=sftp.port, endpoint=endpoint, bucket=bucket))
    data = os.urandom(size)
    (folder / "big" / f"file{size}.bin").write_bytes(data)
    peak = peak_kib(folder, sftp)
    stored = s3_client(endpoint).get_object(Bucket=bucket, Key=f"dest/file{size}.bin")["Body"].read()
    assert stored == data
    assert list((folder / "big").iterdir()) == [] and list((sftp.root / "up").iterdir()) == []
    return peak


def test_a_50_mb_file_goes_file_to_sftp_to_s3_with_flat_memory(stores: tuple[SftpServer, str, str],
                                                                tmp_path: Path) -> None:
    small = transfer(stores, tmp_path / "small", 1024)
    large = transfer(stores, tmp_path / "large", 50 * MB)
    grew = (large - small) * 1024
    print(f"peak RSS: 1 KB file {small / 1024:.1f} MB, 50 MB file {large / 1024:.1f} MB, "
          f"growth {grew / MB:.1f} MB")
    assert grew < 25 * MB, f"memory grew by {grew / MB:.1f} MB moving a 50 MB file"
