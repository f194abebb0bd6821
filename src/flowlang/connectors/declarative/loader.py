"""Loading connector files: the stdlib's and a flow folder's `connectors/*.toml`. A broken file is
reported with its file name, the key and the problem, and does not hide the others."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from flowlang.connectors.base import ConnectorSpec
from flowlang.connectors.declarative.connector import build_spec
from flowlang.connectors.declarative.models import ConnectorFile
from flowlang.resources import stdlib_files


class ConnectorFileError(ValueError):
    def __init__(self, message: str, name: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name


def parse_connector(file_name: str, text: str, origin: str) -> ConnectorSpec:
    return build_spec(parse_model(file_name, text), origin)


def load_stdlib() -> tuple[list[ConnectorSpec], list[str]]:
    specs: list[ConnectorSpec] = []
    problems: list[str] = []
    for name, text in stdlib_files():
        try:
            specs.append(parse_connector(f"stdlib/{name}", text, "stdlib"))
        except ConnectorFileError as e:
            problems.append(e.message)
    return specs, problems


def load_folder(folder: Path) -> tuple[list[ConnectorSpec], dict[str, str]]:
    """The connector files of a flow's connectors/ folder; problems by connector name."""
    specs: list[ConnectorSpec] = []
    problems: dict[str, str] = {}
    if not folder.is_dir():
        return specs, problems
    for path in sorted(folder.glob("*.toml")):
        try:
            spec = parse_connector(f"connectors/{path.name}", path.read_text(encoding="utf-8"), str(path))
        except ConnectorFileError as e:
            problems[e.name or path.stem] = e.message
            continue
        except OSError as e:
            problems[path.stem] = f"connectors/{path.name}: cannot read: {e.strerror}"
            continue
        except UnicodeDecodeError as e:
            problems[path.stem] = f"connectors/{path.name}: not UTF-8 text (byte {e.start}: {e.reason})"
            continue
        specs.append(spec)
    return specs, problems


def parse_model(file_name: str, text: str) -> ConnectorFile:
    """The validated model of a connector file (for tools such as `connectors verify`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConnectorFileError(f"{file_name}: not valid TOML: {e}", Path(file_name).stem) from None
    except RecursionError:
        raise ConnectorFileError(f"{file_name}: not valid TOML: it nests too deeply to be read",
                                 Path(file_name).stem) from None
    try:
        return ConnectorFile.model_validate(data)
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in e.errors()]
        name = data.get("name") if isinstance(data.get("name"), str) else Path(file_name).stem
        raise ConnectorFileError(f"{file_name}: " + "; ".join(problems), name) from None
