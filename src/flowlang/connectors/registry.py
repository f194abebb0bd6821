"""The connector registry of one environment: built-in kinds, the stdlib's connector files and a
flow folder's own `connectors/` (which win, in that order of precedence reversed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from flowlang.connectors.base import ConnectorSpec


class ConnectorRegistry:
    """Name -> ConnectorSpec, with problems found while loading connector files."""

    def __init__(self, specs: Iterable[ConnectorSpec] = (), parent: ConnectorRegistry | None = None) -> None:
        self._specs: dict[str, ConnectorSpec] = {}
        self.parent = parent
        self.problems: list[str] = []
        self.broken: dict[str, str] = {}  # connector name -> why its file could not be loaded
        for spec in specs:
            self.add(spec)

    def add(self, spec: ConnectorSpec) -> None:
        self._specs[spec.name] = spec

    def get(self, name: str) -> ConnectorSpec | None:
        found = self._specs.get(name)
        if found is None and self.parent is not None:
            return self.parent.get(name)
        return found

    def names(self) -> list[str]:
        names = set(self._specs)
        if self.parent is not None:
            names |= set(self.parent.names())
        return sorted(names)

    def all(self) -> list[ConnectorSpec]:
        return [spec for name in self.names() if (spec := self.get(name)) is not None]

    def child(self, specs: Iterable[ConnectorSpec]) -> ConnectorRegistry:
        return ConnectorRegistry(specs, parent=self)


def flow_connectors_dir(base_dir: Path) -> Path:
    return base_dir / "connectors"
