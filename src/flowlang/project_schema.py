"""The schema of the project file `flowlang.toml` (pydantic models): what `flowlang.project` validates
a file against. Imported only when there is a project file, so a run without one never loads pydantic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ProviderName = Literal["file", "env", "dotenv", "keyring", "command", "aws", "vault"]


MAX_TIMEOUT = 86400.0  # a day: a longer wait is a mistake (1e400 in TOML is infinity, which no timer takes)
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)]  # seconds
# 30 days: more is a mistake that silences a flow's alerts after its first (1e300, or 99999999999d, was taken)
MAX_MIN_INTERVAL = 30 * 86400.0


class _Strict(BaseModel):
    """Unknown keys are errors, and so is a value of another TOML type (strict: port = "587", starttls =
    "yes" and timeout = true were taken as 587, True and 1 second)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class DotenvConfig(_Strict):
    path: str = ".env"


class KeyringConfig(_Strict):
    service: str = "flowlang"


class CommandConfig(_Strict):
    command: str
    timeout: Timeout = 10.0

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        """A command line that can be split into words and names the secret: without `{name}`, every
        secret the flow read was the command's one answer (secret.SHOP_TOKEN and secret.ERP_PASSWORD
        the same value, sent to both APIs); an empty or unsplittable line failed each secret at its use."""
        import shlex

        try:
            words = shlex.split(value)
        except ValueError as e:
            raise ValueError(f"the command line cannot be split into words: {e}") from None
        if not words:
            raise ValueError("the command is empty: give the program that prints a secret, with {name} "
                             "where the secret's name goes")
        if not any("{name}" in word for word in words):
            raise ValueError("the command has no {name}, so every secret would be its one "
                             "answer: put {name} where the secret's name goes (op read op://vault/{name}/password)")
        return value


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
    timeout: Timeout = 10.0

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        """The path names the secret: without `{name}` every secret was the one at that path."""
        if "{name}" not in value:
            raise ValueError(f"the path {value!r} has no {{name}}, so every secret would be the one at that "
                             "path: put {name} where the secret's name goes (flowlang/{name})")
        return value


class SecretsConfig(_Strict):
    order: list[ProviderName] | None = None
    dotenv: DotenvConfig | None = None
    keyring: KeyringConfig | None = None
    command: CommandConfig | None = None
    aws: AwsConfig | None = None
    vault: VaultConfig | None = None

    @field_validator("order")
    @classmethod
    def _order(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("the order names no provider, so no secret could be found: name at least one")
        twice = next((name for i, name in enumerate(value or []) if name in (value or [])[:i]), None)
        if twice is not None:
            raise ValueError(f"'{twice}' is named twice")
        return value


class EmailTarget(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465)
    user: str | None = None
    password_secret: str | None = None  # the NAME of a secret holding the SMTP password
    sender: str = Field(alias="from")
    to: list[str]
    ca_file: str | None = None  # a CA bundle to trust (relative to flowlang.toml), for a private SMTP server
    timeout: Timeout = 30.0


class WebhookTarget(_Strict):
    url: str | None = None
    url_secret: str | None = None  # the NAME of a secret holding the URL (Slack and Teams URLs are secrets)
    format: Literal["json", "slack"] = "json"
    timeout: Timeout = 10.0

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


RunOutcome = Literal["failed", "partial", "interrupted"]


class AlertsConfig(_Strict):
    on: list[RunOutcome] = ["failed", "partial"]
    # seconds between two alerts of one flow to one target
    min_interval: float = Field(3600.0, ge=0, le=MAX_MIN_INTERVAL, allow_inf_nan=False)
    email: EmailTarget | None = None
    webhook: WebhookTarget | None = None

    @field_validator("min_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        seconds = parse_duration(value) if isinstance(value, str) else value
        # a value of another type is the strict model's to refuse; nan is neither >= 0 nor <= the most
        if type(seconds) in (int, float) and not 0 <= seconds <= MAX_MIN_INTERVAL:  # type: ignore[operator]
            given = f"'{value}'" if isinstance(value, str) else f"{value}"
            raise ValueError(f"must be a duration from 0 to 30d (at most {MAX_MIN_INTERVAL:.0f} seconds between "
                             f"two alerts of a flow to a target), got {given[:40]}")
        return seconds


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
