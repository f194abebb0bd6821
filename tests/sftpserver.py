"""A real SFTP server for the tests: asyncssh's own, on 127.0.0.1 in a thread of the test process,
serving one folder (chrooted) to one user who logs in with a key or a password. `known_hosts` is a
file holding the server's host key, as a user's ~/.ssh/known_hosts would."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import asyncssh


class SftpServer:
    def __init__(self, root: Path, user: str = "flow", password: str = "pw") -> None:
        self.root = root
        self.user = user
        self.password = password
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.acceptor: Any = None
        self.logins = 0

    def __enter__(self) -> SftpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.acceptor.close()
            await self.acceptor.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        server = self
        authorized = asyncssh.import_authorized_keys(self.client_key.export_public_key().decode())

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                ok = username == server.user and password == server.password
                server.logins += ok
                return ok

        def sftp_factory(chan: Any) -> asyncssh.SFTPServer:
            return asyncssh.SFTPServer(chan, chroot=str(server.root).encode())

        self.acceptor = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[self.host_key], server_factory=Server,
            authorized_client_keys=authorized, sftp_factory=sftp_factory, allow_scp=False)
        self.port = self.acceptor.sockets[0].getsockname()[1]

    def known_hosts(self, path: Path) -> Path:
        path.write_text(f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode()}")
        return path

    def private_key(self) -> str:
        return str(self.client_key.export_private_key().decode())
