"""A real `flowlang serve` process on 127.0.0.1 for the tests, and a small HTTP client for it.

    with ServeProcess(folder, env={...}) as serve:
        serve.post("/hooks/orders", body, headers)   # -> (status, headers, parsed JSON or text)
        serve.logs()                                  # what it wrote to stderr so far
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PORT_LINE = re.compile(r"on http://127\.0\.0\.1:(\d+) ")


class ServeProcess:
    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None, start_timeout: float = 60) -> None:
        self.folder = folder
        self.args = args
        self.env = env or {}
        self.start_timeout = start_timeout
        self.log_path = folder / f"serve-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> ServeProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLANG_")}
        full_env.update({"NO_COLOR": "1", "COLUMNS": "120"})
        full_env.update(self.env)
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "flowlang", "serve", str(self.folder), "--port", "0",
                                      *self.args], env=full_env, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            found = PORT_LINE.search(self.logs())
            if found:
                self.port = int(found.group(1))
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"serve ended with {self.proc.returncode}:\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"serve did not start:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], Any]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, hdrs, raw = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, dict(e.headers), e.read()
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw.decode(errors="replace")

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.log_file.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self.log_file.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if not self.log_file.closed:
            self.log_file.close()


def wait_for(predicate: Any, timeout: float = 60, what: str = "the condition") -> None:
    """Poll until predicate() is true (bounded; not a timed assertion: the bound is generous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")
