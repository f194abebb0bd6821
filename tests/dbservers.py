"""Throwaway PostgreSQL and MariaDB servers for the tests: a fresh data folder, a free port on
127.0.0.1, started as a non-root user, and set to a time zone that is NOT UTC (so a test of the
time-zone rule can fail). Under CI=true a server that cannot be started fails the test instead of
skipping it."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER_ZONE = "Europe/Helsinki"  # +02:00 in winter, +03:00 in summer
MARIADB_ZONE = "+02:00"  # MariaDB knows named zones only when its zone tables are loaded


# a started server's URL -> stops it, waits so many seconds, and starts it again on the same port and data
_RESTARTS: dict[str, Callable[[float], None]] = {}


def restart(url: str, down_seconds: float) -> None:
    """Stop the server of `url` (one these helpers started), wait, start it again (a database restart
    under a running flow)."""
    if url not in _RESTARTS:
        pytest.skip("the server was not started by the tests (FLOWLANG_TEST_*_URL): it cannot be restarted")
    _RESTARTS[url](down_seconds)


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test against a real server: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_as(user: str, folder: Path) -> list[str] | str:
    """The command prefix that runs a server as `user` when we are root (servers refuse root)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("runuser"):
        return "running as root without runuser"
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return f"running as root without a {user} user to start the server as"
    os.chown(folder, uid, -1)
    return ["runuser", "-u", user, "--"]


@contextmanager
def postgres_server() -> Iterator[str]:
    """postgresql+psycopg://... of a server whose own time zone is SERVER_ZONE."""
    given = os.environ.get("FLOWLANG_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("no PostgreSQL driver (pip install 'flowlang[postgres]')")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        for found in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            initdb, pg_ctl = str(found), str(found.with_name("pg_ctl"))
    if not initdb or not pg_ctl:
        unavailable("no PostgreSQL server here (initdb and pg_ctl not found; apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="flowlang-pg-"))  # in /tmp itself: the postgres user must reach it
    try:
        prefix = run_as("postgres", folder)
        if isinstance(prefix, str):
            unavailable(prefix)
            return
        port = free_port()
        data = folder / "data"
        init = subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                              capture_output=True, text=True)
        if init.returncode:
            unavailable(f"initdb failed: {init.stderr.strip()[:300]}")
        options = f"-p {port} -k {folder} -h 127.0.0.1 -c timezone={SERVER_ZONE}"
        start = [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
        started = subprocess.run(start, capture_output=True, text=True)
        if started.returncode:
            unavailable(f"the PostgreSQL server did not start: {started.stderr.strip()[:300]}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

        def again(down: float) -> None:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True, check=True)
            time.sleep(down)
            subprocess.run(start, capture_output=True, check=True)

        _RESTARTS[url] = again
        try:
            yield url
        finally:
            _RESTARTS.pop(url, None)
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def mariadb_server() -> Iterator[str]:
    """mysql+pymysql://... of a MariaDB (or MySQL) server whose default time zone is MARIADB_ZONE."""
    given = os.environ.get("FLOWLANG_TEST_MYSQL_URL")
    if given:
        yield given
        return
    try:
        import pymysql
    except ImportError:
        unavailable("no MySQL/MariaDB driver (pip install 'flowlang[mysql]')")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    server = shutil.which("mariadbd") or shutil.which("mysqld") or shutil.which("mariadbd", path="/usr/sbin") \
        or shutil.which("mysqld", path="/usr/sbin")
    if not install or not server:
        unavailable("no MariaDB server here (mariadb-install-db and mariadbd not found; "
                    "apt-get install mariadb-server)")
    folder = Path(tempfile.mkdtemp(prefix="flowlang-mariadb-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        prefix = run_as("mysql", folder)
        if isinstance(prefix, str):
            unavailable(prefix)
            return
        user = ["--user=mysql"] if prefix else []
        data = folder / "data"
        init = subprocess.run([*prefix, install, "--no-defaults", f"--datadir={data}", *user,
                               "--auth-root-authentication-method=normal", "--skip-test-db"],
                              capture_output=True, text=True)
        if init.returncode:
            unavailable(f"mariadb-install-db failed: {(init.stderr or init.stdout).strip()[-300:]}")
        port = free_port()
        log = open(folder / "log", "wb")  # noqa: SIM115 - closed below
        command = [*prefix, server, "--no-defaults", f"--datadir={data}", f"--port={port}",
                   "--bind-address=127.0.0.1", f"--socket={folder / 'sock'}", f"--pid-file={folder / 'pid'}",
                   f"--default-time-zone={MARIADB_ZONE}", "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
                   *user]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root").close()
                break
            except pymysql.err.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    unavailable("the MariaDB server did not start: "
                                + (folder / "log").read_text(errors="replace")[-300:])
                time.sleep(0.2)
        with pymysql.connect(host="127.0.0.1", port=port, user="root") as c, c.cursor() as cur:
            cur.execute("create database flowlang")
        url = f"mysql+pymysql://root@127.0.0.1:{port}/flowlang"

        def again(down: float) -> None:
            nonlocal process
            assert process is not None
            process.terminate()
            process.wait(30)
            time.sleep(down)
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while True:
                try:
                    pymysql.connect(host="127.0.0.1", port=port, user="root").close()
                    return
                except pymysql.err.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

        _RESTARTS[url] = again
        try:
            yield url
        finally:
            _RESTARTS.pop(url, None)
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)
