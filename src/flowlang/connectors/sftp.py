"""The `sftp` connector: files on an SFTP server (asyncssh), with the local file connector's formats,
pick-up and folders (remote.py). The server's host key is checked against a known_hosts file (the
user's ~/.ssh/known_hosts unless `known_hosts:` names one); a key or password comes from a secret.
Bytes move in chunks; a file is written to a temporary name and renamed. Errors name the server and
the file, never a credential."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat as stat_module
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, RunServices
from flowlang.connectors.file import path_format_problem, text_option_problem
from flowlang.connectors.remote import FORMAT_KEYS, OPERATIONS, open_path, revealed
from flowlang.connectors.storage import CHUNK, Entry, Storage, split_pattern
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.values import Value, to_text, type_name


class SftpStorage(Storage):
    def __init__(self, host: str, port: int, user: str, options: dict[str, Any], known_hosts: str | None) -> None:
        self.host, self.port, self.user = host, port, user
        self.options = options  # credentials for asyncssh.connect, never shown
        self.known_hosts = known_hosts
        self.label = f"sftp://{user}@{host}:{port}"
        self._conn: Any = None
        self._sftp: Any = None

    def shown(self, path: str) -> str:
        return path

    def _where(self, path: str) -> str:
        return f"{self.label}/{path.lstrip('/')}" if not path.startswith("/") else f"{self.label}{path}"

    async def client(self) -> Any:
        if self._sftp is not None:
            return self._sftp
        import asyncssh

        where = f"{self.host}:{self.port}"
        try:
            self._conn = await asyncssh.connect(self.host, port=self.port, username=self.user,
                                                known_hosts=self.known_hosts or asyncssh.import_known_hosts(""),
                                                **self.options)
            self._sftp = await self._conn.start_sftp_client()
        except asyncssh.HostKeyNotVerifiable:
            source = self.known_hosts or "~/.ssh/known_hosts"
            raise FlowRuntimeError(f"sftp: the host key of {where} is not in known_hosts ({source}); if it is the "
                                   f"right server, add its key (ssh-keyscan -p {self.port} {self.host} >> {source})",
                                   "connector") from None
        except asyncssh.PermissionDenied:
            raise FlowRuntimeError(f"sftp: {self.user}@{where} refused the login (check user, key or password)",
                                   "connector") from None
        except (OSError, asyncssh.Error) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or type(e).__name__
            raise FlowRuntimeError(f"sftp: cannot connect to {where}: {reason}", "connector") from None
        return self._sftp

    def _error(self, e: Exception, path: str) -> FlowRuntimeError:
        import asyncssh

        if isinstance(e, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            return FlowRuntimeError(f"file not found: {self._where(path)}", "connector")
        if isinstance(e, asyncssh.SFTPPermissionDenied):
            return FlowRuntimeError(f"sftp: permission denied for {self._where(path)}", "connector")
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or type(e).__name__
        return FlowRuntimeError(f"sftp: {self._where(path)}: {reason}", "connector")

    def _entry(self, path: str, attrs: Any) -> Entry:
        return Entry(path, posixpath.basename(path), int(attrs.size or 0),
                     f"{attrs.mtime_ns or attrs.mtime}:{attrs.size}")

    async def glob(self, pattern: str) -> list[Entry]:
        folder, name = split_pattern(pattern)
        sftp = await self.client()
        try:
            found = await sftp.readdir(folder or ".")
        except Exception as e:
            import asyncssh

            if isinstance(e, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
                return []
            raise self._error(e, folder) from None
        entries = [self._entry(posixpath.join(folder, n.filename), n.attrs) for n in found
                   if fnmatch.fnmatchcase(n.filename, name) and n.attrs.permissions is not None
                   and stat_module.S_ISREG(n.attrs.permissions)]
        return sorted(entries, key=lambda e: e.path)

    async def stat(self, path: str) -> Entry | None:
        import asyncssh

        sftp = await self.client()
        try:
            attrs = await sftp.stat(path)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return None
        except asyncssh.Error as e:
            raise self._error(e, path) from None
        return self._entry(path, attrs)

    async def download(self, path: str, target: BinaryIO) -> None:
        sftp = await self.client()
        try:
            async with sftp.open(path, "rb") as fh:
                while chunk := await fh.read(CHUNK):
                    target.write(chunk)
        except OSError:
            raise
        except Exception as e:
            raise self._error(e, path) from None

    async def _makedirs(self, sftp: Any, folder: str) -> None:
        if folder and folder not in (".", "/"):
            await sftp.makedirs(folder, exist_ok=True)

    async def _replace(self, sftp: Any, source: str, target: str) -> None:
        try:
            await sftp.posix_rename(source, target)  # the OpenSSH extension: replaces atomically
        except Exception:
            if await sftp.exists(target):
                await sftp.remove(target)
            await sftp.rename(source, target)

    async def upload(self, source: BinaryIO, path: str) -> None:
        sftp = await self.client()
        folder, name = posixpath.split(path)
        tmp = posixpath.join(folder, f".{name}.part")
        try:
            await self._makedirs(sftp, folder)
            async with sftp.open(tmp, "wb") as fh:
                while chunk := source.read(CHUNK):
                    await fh.write(chunk)
            await self._replace(sftp, tmp, path)
        except OSError:
            raise
        except Exception as e:
            raise self._error(e, path) from None

    async def move(self, path: str, target: str) -> None:
        sftp = await self.client()
        try:
            await self._makedirs(sftp, posixpath.dirname(target))
            await self._replace(sftp, path, target)
        except Exception as e:
            raise self._error(e, path) from None

    async def delete(self, path: str) -> None:
        sftp = await self.client()
        try:
            await sftp.remove(path)
        except Exception as e:
            raise self._error(e, path) from None

    async def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None


def imported_asyncssh() -> Any:
    """asyncssh, imported without the CryptographyDeprecationWarning lines (DSA) its modules give as they
    load: a user's every sftp run printed five 'warning: .../asyncssh/crypto/dsa.py:38: ...' lines."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated")  # cryptography's own category, by its words
        import asyncssh
    return asyncssh


async def open_sftp(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    try:
        asyncssh = imported_asyncssh()
    except ImportError:
        raise FlowRuntimeError("sftp needs asyncssh: pip install 'flowlang[sftp]'", "connector") from None
    host = config.get("host")
    if type(host) is not str or not host:
        raise FlowRuntimeError(f"sftp needs host: the server's name or address, got {type_name(host)}", "connector")
    port = config.get("port")
    port = 22 if port is None else port  # 0 was taken for 22
    if type(port) is not int or not 0 < port < 65536:
        raise FlowRuntimeError(f"sftp port must be a number from 1 to 65535, got {to_text(port)!r}", "connector")
    user = revealed(config.get("user"), services) or os.environ.get("USER", "")
    options: dict[str, Any] = {"agent_path": None}
    key = revealed(config.get("key"), services)
    passphrase = revealed(config.get("key_passphrase"), services)
    if key is not None:
        try:
            options["client_keys"] = [asyncssh.import_private_key(key, passphrase)]
        except (asyncssh.KeyImportError, ValueError, TypeError):
            raise FlowRuntimeError("sftp key is not a private key asyncssh can read (the text of an OpenSSH or "
                                   "PEM private key; give key_passphrase: if it is encrypted)", "connector") from None
    else:
        options["client_keys"] = ()
    password = revealed(config.get("password"), services)
    if password is not None:
        options["password"] = password
    if key is None and password is None:
        raise FlowRuntimeError("sftp needs key: secret(...) (a private key) or password: secret(...)", "connector")
    known = config.get("known_hosts")
    known_hosts: str | None = None
    if known is not None:
        if type(known) is not str or not known:
            raise FlowRuntimeError("sftp known_hosts must be the path of a known_hosts file", "connector")
        path = Path(known).expanduser()
        if not path.is_absolute():
            path = services.base_dir / path
        if not path.is_file():
            raise FlowRuntimeError(f"sftp known_hosts file not found: {known}", "connector")
        known_hosts = str(path)
    else:
        default = Path("~/.ssh/known_hosts").expanduser()
        known_hosts = str(default) if default.is_file() else None
    storage = SftpStorage(host, port, user, options, known_hosts)
    return open_path(name, SFTP, config, services, storage)


SFTP = ConnectorSpec(
    name="sftp",
    title="Files on an SFTP server (CSV, JSON, JSON Lines, binary; pick-up with after:)",
    origin="builtin",
    config=(
        ConfigKey("host", required=True, description="the server's name or address"),
        ConfigKey("port", description="the SSH port (default 22)"),
        ConfigKey("user", description="the login name"),
        ConfigKey("key", secret=True, description="the private key's text (OpenSSH or PEM), from a secret"),
        ConfigKey("key_passphrase", secret=True, description="the passphrase of an encrypted key"),
        ConfigKey("password", secret=True, description="the password, from a secret (when there is no key)"),
        ConfigKey("known_hosts", description="the known_hosts file that holds the server's host key (default "
                  "~/.ssh/known_hosts); the host key is always checked"),
        *FORMAT_KEYS,
    ),
    operations=OPERATIONS,
    open=open_sftp,
    default_write="write",
    value_problem=partial(text_option_problem, kind="sftp"),
    config_problem=partial(path_format_problem, kind="sftp"),
)
