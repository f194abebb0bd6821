"""The project file `flowlang.toml` (beside the flows, found in the flow's folder or a parent, or
given with --config): where secrets come from and where failures are reported. Validated by
pydantic; a mistake names the file, the key and the problem."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flowlang.errors import UsageError
from flowlang.runtime.secrets import EnvironmentProvider, MappingProvider, SecretProvider

PROJECT_FILE = "flowlang.toml"
ProviderName = Literal["file", "env", "dotenv", "keyring", "command", "aws", "vault"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DotenvConfig(_Strict):
    path: str = ".env"


class KeyringConfig(_Strict):
    service: str = "flowlang"


class CommandConfig(_Strict):
    command: str
    timeout: float = Field(10.0, gt=0)


class AwsConfig(_Strict):
    region: str | None = None
    prefix: str = ""
    field: str | None = None
    endpoint_url: str | None = None


class VaultConfig(_Strict):
    address: str
    mount: str = "secret"
    path: str = "{name}"
    field: str = "value"
    token_env: str = "VAULT_TOKEN"
    namespace: str | None = None
    timeout: float = Field(10.0, gt=0)


class SecretsConfig(_Strict):
    order: list[ProviderName] | None = None
    dotenv: DotenvConfig | None = None
    keyring: KeyringConfig | None = None
    command: CommandConfig | None = None
    aws: AwsConfig | None = None
    vault: VaultConfig | None = None


class EmailTarget(_Strict):
    host: str
    port: int = 587
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465)
    user: str | None = None
    password_secret: str | None = None  # the NAME of a secret holding the SMTP password
    sender: str = Field(alias="from")
    to: list[str]
    ca_file: str | None = None  # a CA bundle to trust (relative to flowlang.toml), for a private SMTP server
    timeout: float = Field(30.0, gt=0)


class WebhookTarget(_Strict):
    url: str | None = None
    url_secret: str | None = None  # the NAME of a secret holding the URL (Slack and Teams URLs are secrets)
    format: Literal["json", "slack"] = "json"
    timeout: float = Field(10.0, gt=0)


RunOutcome = Literal["failed", "partial", "interrupted"]


class AlertsConfig(_Strict):
    on: list[RunOutcome] = ["failed", "partial"]
    min_interval: float = Field(3600.0, ge=0)  # seconds between two alerts of one flow to one target
    email: EmailTarget | None = None
    webhook: WebhookTarget | None = None

    @field_validator("min_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value


class ProjectConfig(_Strict):
    secrets: SecretsConfig = SecretsConfig()
    alerts: AlertsConfig | None = None


def parse_duration(text: str) -> float:
    """"90s", "15m", "1h", "2d" or a plain number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a duration (write 90s, 15m, 1h or 2d)") from None


@dataclass
class Project:
    """A loaded project file (or the defaults when there is none)."""

    config: ProjectConfig
    path: Path | None

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def secret_providers(self, secrets: Mapping[str, str], env: Mapping[str, str]) -> list[SecretProvider]:
        """The chain `secret.NAME` asks, in the configured order (default: --secrets, the environment,
        then each configured provider in the order the file lists them)."""
        from flowlang.connectors import secret_providers as sp

        conf = self.config.secrets
        configured = [n for n in ("dotenv", "keyring", "command", "aws", "vault") if getattr(conf, n) is not None]
        order = conf.order if conf.order is not None else ["file", "env", *configured]
        chain: list[SecretProvider] = []
        for name in order:
            if name == "file":
                chain.append(MappingProvider(secrets))
            elif name == "env":
                chain.append(EnvironmentProvider(env))
            elif name == "dotenv":
                chain.append(sp.DotenvProvider(self.folder / (conf.dotenv or DotenvConfig()).path))
            elif name == "keyring":
                chain.append(sp.KeyringProvider((conf.keyring or KeyringConfig()).service))
            elif name == "command" and conf.command is not None:
                chain.append(sp.CommandProvider(conf.command.command, conf.command.timeout, self.folder))
            elif name == "aws":
                aws = conf.aws or AwsConfig()
                chain.append(sp.AwsSecretsProvider(aws.region, aws.prefix, aws.field, aws.endpoint_url))
            elif name == "vault" and conf.vault is not None:
                v = conf.vault
                chain.append(sp.VaultProvider(v.address, v.mount, v.path, v.field, v.token_env, v.namespace,
                                              v.timeout, dict(env)))
        return chain


def find_project_file(start: Path) -> Path | None:
    """flowlang.toml in START or the nearest parent folder that has one."""
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_project(config: str | Path | None, flow_folder: Path | None) -> Project:
    """--config FILE, else the flowlang.toml nearest the flow, else the defaults."""
    path = Path(config) if config is not None else find_project_file(flow_folder or Path.cwd())
    if path is None:
        return Project(ProjectConfig(), None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such project file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None
    try:
        model = ProjectConfig.model_validate(data)
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in e.errors()]
        raise UsageError(f"{path}: " + "; ".join(problems)) from None
    if model.secrets.order is not None:
        for name in ("command", "vault"):
            if name in model.secrets.order and getattr(model.secrets, name) is None:
                raise UsageError(f"{path}: secrets.order names '{name}' but there is no [secrets.{name}] table")
    return Project(model, path.resolve())
