"""The connector registry of one environment: built-in kinds, the stdlib's connector files and a
flow folder's own `connectors/` (which win, in that order of precedence reversed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from flowlang.connectors.base import ConnectorSpec


class ConnectorRegistry:
    """Name -> ConnectorSpec, with problems found while loading connector files."""

    def __init__(self, specs: Iterable[ConnectorSpec] = (), parent: ConnectorRegistry | None = None,
                 loader: Callable[[ConnectorRegistry], None] | None = None,
                 lazy: Mapping[str, Callable[[], ConnectorSpec]] | None = None) -> None:
        self._specs: dict[str, ConnectorSpec] = {}
        # name -> how to import the spec: a built-in kind's module (http, sql, ...) is imported the
        # first time a flow names it, so a run that uses none pays nothing for it
        self._lazy: dict[str, Callable[[], ConnectorSpec]] = dict(lazy or {})
        self.parent = parent
        self._loader = loader  # adds more specs the first time a name is not found (the stdlib)
        self.problems: list[str] = []
        self.broken: dict[str, str] = {}  # connector name -> why its file could not be loaded
        for spec in specs:
            self.add(spec)

    def add(self, spec: ConnectorSpec) -> None:
        self._specs[spec.name] = spec

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader(self)

    def get(self, name: str) -> ConnectorSpec | None:
        found = self._specs.get(name)
        if found is None and name in self._lazy:
            found = self._lazy.pop(name)()
            self.add(found)
        if found is None:
            self._load()
            found = self._specs.get(name)
        if found is None and self.parent is not None:
            return self.parent.get(name)
        return found

    def names(self) -> list[str]:
        self._load()
        names = set(self._specs) | set(self._lazy)
        if self.parent is not None:
            names |= set(self.parent.names())
        return sorted(names)

    @property
    def all_problems(self) -> list[str]:
        self._load()
        return self.problems + (self.parent.all_problems if self.parent is not None else [])

    def all(self) -> list[ConnectorSpec]:
        return [spec for name in self.names() if (spec := self.get(name)) is not None]

    def child(self, specs: Iterable[ConnectorSpec]) -> ConnectorRegistry:
        return ConnectorRegistry(specs, parent=self)


def flow_connectors_dir(base_dir: Path) -> Path:
    return base_dir / "connectors"
