"""The project file `flowlang.toml` (beside the flows, found in the flow's folder or a parent, or
given with --config): where secrets come from and where failures are reported. Validated by
pydantic (the schema is flowlang.project_schema, imported only when there is a file); a mistake names
the file, the key and the problem."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang.errors import UsageError
from flowlang.flow_file import not_utf8
from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.secrets import EnvironmentProvider, MappingProvider, SecretProvider

if TYPE_CHECKING:
    from flowlang.project_schema import AlertsConfig, ProjectConfig

PROJECT_FILE = "flowlang.toml"


@dataclass
class Project:
    """A loaded project file (or the defaults when there is none)."""

    config: ProjectConfig | None  # None: no project file, every default
    path: Path | None

    @property
    def alerts(self) -> AlertsConfig | None:
        return self.config.alerts if self.config is not None else None

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def secret_providers(self, secrets: Mapping[str, str], env: Mapping[str, str]) -> list[SecretProvider]:
        """The chain `secret.NAME` asks, in the configured order (default: --secrets, the environment,
        then each configured provider in the order the file lists them)."""
        if self.config is None:
            return [MappingProvider(secrets), EnvironmentProvider(env)]
        from flowlang.connectors import secret_providers as sp
        from flowlang.project_schema import AwsConfig, DotenvConfig, KeyringConfig

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
        return Project(None, None)
    import tomllib

    from pydantic import ValidationError

    from flowlang.project_schema import ProjectConfig

    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise UsageError(f"no such project file: {path}") from None
    except UnicodeDecodeError as e:  # said as a flow file that is not UTF-8 is
        raise UsageError(not_utf8(str(path), e)) from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:  # file:line:col and the line, as a connector file's (no secret is in it)
        from flowlang.connectors.declarative.loader import toml_problem

        raise UsageError(toml_problem(str(path), text, e)) from None
    except RecursionError:
        raise UsageError(f"{path} is not valid TOML: it nests too deeply to be read") from None
    try:
        model = ProjectConfig.model_validate(data)
    except ValidationError as e:  # each key with its did-you-mean, and its line (file:line:col) with a caret
        from flowlang.connectors.declarative.loader import model_problem

        raise UsageError(model_problem(str(path), text, e, ProjectConfig)) from None
    if model.secrets.order is not None:
        for name in ("command", "vault"):
            if name in model.secrets.order and getattr(model.secrets, name) is None:
                raise UsageError(f"{path}: secrets.order names '{name}' but there is no [secrets.{name}] table")
    return Project(model, path.resolve())
