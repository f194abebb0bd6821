"""Secret stores outside the process: a `.env` file, the OS keychain (keyring), a command (1Password,
pass, sops...), AWS Secrets Manager and HashiCorp Vault / OpenBao KV v2. Each implements the
runtime's SecretProvider; none ever puts a value into a message."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlang.runtime.secrets import SecretProviderError


def _needs(package: str, extra: str) -> SecretProviderError:
    return SecretProviderError(f"this provider needs the {package} package: pip install 'flowlang[{extra}]'")


@dataclass
class DotenvProvider:
    """NAME=value lines of a .env file (python-dotenv's syntax: quotes, export, comments)."""

    path: Path
    _values: dict[str, str | None] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"the .env file {self.path}"

    def where(self, name: str) -> str:
        return f"{name} in {self.path}"

    def get(self, name: str) -> str | None:
        if self._values is None:
            if not self.path.is_file():
                self._values = {}
            else:
                from dotenv import dotenv_values

                try:
                    self._values = dict(dotenv_values(self.path))
                except (OSError, UnicodeDecodeError) as e:
                    raise SecretProviderError(f"cannot read {self.path}: {e}") from None
        return self._values.get(name)


@dataclass
class KeyringProvider:
    """The OS keychain through keyring: the password stored for (service, NAME)."""

    service: str = "flowlang"

    @property
    def label(self) -> str:
        return f"keyring service '{self.service}'"

    def where(self, name: str) -> str:
        return f"keyring service '{self.service}', user {name}"

    def get(self, name: str) -> str | None:
        try:
            import keyring
            import keyring.errors
        except ImportError:
            raise _needs("keyring", "keyring") from None
        try:
            return keyring.get_password(self.service, name)
        except keyring.errors.KeyringError as e:
            raise SecretProviderError(f"the keychain refused: {type(e).__name__}") from None


@dataclass
class CommandProvider:
    """A command that prints the secret (`op read op://vault/{name}/password`), run without a shell:
    the command line is split first, then {name} is filled into each word."""

    command: str
    timeout: float = 10.0
    cwd: Path | None = None

    @property
    def label(self) -> str:
        return f"the command '{self.command}'"

    def where(self, name: str) -> str:
        return f"the command '{self.command.replace('{name}', name)}'"

    def argv(self, name: str) -> list[str]:
        try:
            words = shlex.split(self.command)
        except ValueError as e:
            raise SecretProviderError(f"the command line cannot be split: {e}") from None
        if not words:
            raise SecretProviderError("the command is empty")
        return [w.replace("{name}", name) for w in words]

    def get(self, name: str) -> str | None:
        argv = self.argv(name)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=self.timeout, cwd=self.cwd,
                                  stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            raise SecretProviderError(f"no such program: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise SecretProviderError(f"{argv[0]} did not answer within {self.timeout:g}s") from None
        except OSError as e:
            raise SecretProviderError(f"{argv[0]} cannot run: {e.strerror}") from None
        if done.returncode != 0:
            # stderr is not shown: a tool may echo what it was asked, and the message must hold no value
            raise SecretProviderError(f"{argv[0]} exited with status {done.returncode}")
        value = done.stdout.decode("utf-8", errors="replace")
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
        return value or None


@dataclass
class AwsSecretsProvider:
    """AWS Secrets Manager (botocore, the library under the S3 connector): the secret `prefix + NAME`;
    with `field`, the value is that key of the secret's JSON. Credentials come from AWS's usual chain."""

    region: str | None = None
    prefix: str = ""
    field_name: str | None = None
    endpoint_url: str | None = None
    _client: Any = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"AWS Secrets Manager ({self.region or 'default region'})"

    def where(self, name: str) -> str:
        key = f" key {self.field_name}" if self.field_name else ""
        return f"AWS Secrets Manager secret '{self.prefix}{name}'{key}"

    def client(self) -> Any:
        if self._client is None:
            try:
                import botocore.session
            except ImportError:
                raise _needs("botocore", "aws") from None
            session = botocore.session.get_session()
            self._client = session.create_client("secretsmanager", region_name=self.region,
                                                 endpoint_url=self.endpoint_url)
        return self._client

    def get(self, name: str) -> str | None:
        import botocore.exceptions

        try:
            answer = self.client().get_secret_value(SecretId=f"{self.prefix}{name}")
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return None
            raise SecretProviderError(f"AWS answered {code or 'an error'}") from None
        except botocore.exceptions.BotoCoreError as e:
            raise SecretProviderError(f"AWS cannot be asked: {type(e).__name__}") from None
        text = answer.get("SecretString")
        if text is None:
            raise SecretProviderError(f"'{self.prefix}{name}' is binary, not a text secret")
        return _pick_field(text, self.field_name, f"'{self.prefix}{name}'")


def _unsendable(value: str) -> str | None:
    """What in a header value http.client would refuse (quoting the whole value in its ValueError)."""
    for char, what in (("\n", "a line break"), ("\r", "a carriage return"), ("\x00", "a NUL character")):
        if char in value:
            ends = value.rstrip("\r\n") != value and not any(c in value.rstrip("\r\n") for c in "\r\n\x00")
            return what + (" at its end (read from a file with its newline?)" if ends else "")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "a character past Latin-1"
    return None


def _pick_field(text: str, key: str | None, what: str) -> str | None:
    if key is None:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        raise SecretProviderError(f"{what} is not JSON, so it has no key {key}") from None
    value = data.get(key) if isinstance(data, dict) else None
    return None if value is None else str(value)


@dataclass
class VaultProvider:
    """HashiCorp Vault or OpenBao, KV version 2 over its HTTP API: GET /v1/<mount>/data/<path>, the
    value at `field` of the secret's data. The token comes from the environment (VAULT_TOKEN)."""

    address: str
    mount: str = "secret"
    path: str = "{name}"
    field_name: str = "value"
    token_env: str = "VAULT_TOKEN"
    namespace: str | None = None
    timeout: float = 10.0
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @property
    def label(self) -> str:
        return f"Vault at {self.address}"

    def url(self, name: str) -> str:
        path = "/".join(urllib.parse.quote(p, safe="") for p in self.path.replace("{name}", name).split("/"))
        return f"{self.address.rstrip('/')}/v1/{urllib.parse.quote(self.mount, safe='')}/data/{path}"

    def where(self, name: str) -> str:
        return f"Vault {self.url(name)} key {self.field_name}"

    def get(self, name: str) -> str | None:
        token = self.env.get(self.token_env)
        if not token:
            raise SecretProviderError(f"no Vault token: set the environment variable {self.token_env}")
        unsendable = _unsendable(token)
        if unsendable is not None:
            raise SecretProviderError(f"the Vault token in the environment variable {self.token_env} holds "
                                      f"{unsendable}, which an HTTP header cannot carry, so it was not sent")
        request = urllib.request.Request(self.url(name), headers={"X-Vault-Token": token})
        if self.namespace:
            request.add_header("X-Vault-Namespace", self.namespace)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except ValueError:  # http.client refuses a header or URL it cannot send, quoting it
            raise SecretProviderError("Vault cannot be asked: the request cannot be sent as HTTP (the address "
                                      "or the namespace holds a character HTTP cannot carry)") from None
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise SecretProviderError(f"Vault answered {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise SecretProviderError(f"Vault cannot be reached: {reason}") from None
        try:
            data = json.loads(body)["data"]["data"]
        except (ValueError, KeyError, TypeError):
            raise SecretProviderError("Vault's answer is not a KV version 2 secret") from None
        value = data.get(self.field_name) if isinstance(data, dict) else None
        return None if value is None else str(value)
