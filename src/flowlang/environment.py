"""An environment: the builtins and connector registries a flow is checked and run against.

Registries belong to an environment, never to module globals; `Environment()` builds fresh ones.
"""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Callable
from pathlib import Path

from flowlang import ast
from flowlang.connectors.base import ConnectorSpec
from flowlang.connectors.registry import ConnectorRegistry
from flowlang.runtime.builtins import BuiltinRegistry, default_registry
from flowlang.source import Source
from flowlang.syntax import parse

BUILTIN_CONNECTORS = {  # name -> (module, attribute): imported the first time a flow names one
    "file": ("flowlang.connectors.file", "FILE"), "memory": ("flowlang.connectors.memory", "MEMORY"),
    "http": ("flowlang.connectors.http.spec", "HTTP"), "sql": ("flowlang.connectors.sql", "SQL"),
    "sftp": ("flowlang.connectors.sftp", "SFTP"), "s3": ("flowlang.connectors.s3", "S3"),
}


def _importer(module: str, attribute: str) -> Callable[[], ConnectorSpec]:
    def spec() -> ConnectorSpec:
        found: ConnectorSpec = getattr(importlib.import_module(module), attribute)
        return found
    return spec


class Environment:
    """Builtins plus connectors (built-in, stdlib, and per flow folder)."""

    def __init__(self) -> None:
        self.builtins: BuiltinRegistry = default_registry()
        self.connectors = ConnectorRegistry(loader=self._load_stdlib, lazy={
            name: _importer(module, attribute) for name, (module, attribute) in BUILTIN_CONNECTORS.items()})
        self._per_folder: dict[Path, ConnectorRegistry] = {}

    def _load_stdlib(self, registry: ConnectorRegistry) -> None:
        """The stdlib's connector files, read (with pydantic) the first time a flow needs one."""
        from flowlang.connectors.declarative.loader import load_stdlib

        specs, problems = load_stdlib()
        for spec in specs:
            registry.add(spec)
        registry.problems.extend(problems)

    def connectors_for(self, base_dir: Path) -> ConnectorRegistry:
        """The registry a flow in base_dir sees: its own connectors/ folder first."""
        key = base_dir.resolve()
        found = self._per_folder.get(key)
        if found is None:
            folder = key / "connectors"
            if not folder.is_dir():
                found = self.connectors
            else:
                from flowlang.connectors.declarative.loader import load_folder

                specs, problems = load_folder(folder)
                specs = [spec for spec in specs if not self._names_a_builtin(spec, problems)]
                found = self.connectors.child(specs)
                found.broken.update(problems)
                found.problems.extend(dict.fromkeys(problems.values()))  # a file's problem once, under two names
            self._per_folder[key] = found
        return found

    def _names_a_builtin(self, spec: ConnectorSpec, problems: dict[str, str]) -> bool:
        """A connector file may replace a stdlib connector, never a built-in kind (`file`, `http`,
        `sql`, `memory`): such a file is refused, and a flow that uses the name fails check and run."""
        builtin = self.connectors.get(spec.name)
        if builtin is None or builtin.origin != "builtin":
            return False
        shown = f"connectors/{Path(spec.origin).name}"
        problems[spec.name] = (f"{shown} is named like the built-in connector '{spec.name}', which a connector "
                               f"file may not replace; give it another name (name = \"my_{spec.name}\" in "
                               "the file, and `use` that name)")
        return True

    def parse_file(self, path: Path) -> ast.Module:
        text = path.read_text(encoding="utf-8")
        return parse(Source(display_name(path), text, str(path)))


def command_path(path: Path) -> str:
    """How a message names a file in a command to type (`flowlang ledger orders.flow --forget K`): relative
    to the working folder when inside it, else its absolute path (not its bare name, which names another
    file from another folder), quoted for a shell where it needs it."""
    return shlex.quote(display_name(path.resolve()))


def display_name(path: Path) -> str:
    """How a file is named in messages: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
