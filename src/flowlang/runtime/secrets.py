"""Where `secret.NAME` comes from: an ordered chain of providers. Each value is fetched once per
run, kept in memory only, and registered with the masker before anything can print it. A missing
secret names every provider that was asked; a provider that fails says why, never the value."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from typing import Protocol

from flowlang.errors import FlowRuntimeError, MissingSecretError
from flowlang.lazy_dataclass import dataclass


class SecretProviderError(Exception):
    """A provider could not answer (a command failed, a server refused); the message holds no value."""


class SecretProvider(Protocol):
    """One place secrets can come from. `get` answers None when the provider has no such secret."""

    @property
    def label(self) -> str:
        """What the provider is, for messages ("the environment", "keyring service 'flowlang'")."""
        ...

    def where(self, name: str) -> str:
        """Where NAME would be looked up, for `flowlang secrets check` and missing-secret messages."""
        ...

    def get(self, name: str) -> str | None: ...


@dataclass
class MappingProvider:
    """Values given directly: the --secrets file, or `secrets=` when embedding."""

    values: Mapping[str, str]
    label: str = "the --secrets file"

    def where(self, name: str) -> str:
        return f"{name} in {self.label}"

    def get(self, name: str) -> str | None:
        return self.values.get(name)


@dataclass
class EnvironmentProvider:
    """The process environment (or the env given to the run)."""

    env: Mapping[str, str]
    label: str = "the environment"

    def where(self, name: str) -> str:
        return f"the environment variable {name}"

    def get(self, name: str) -> str | None:
        return self.env.get(name)


@dataclass
class Lookup:
    """Where one secret was found (or that it was not), without its value."""

    name: str
    found_in: str | None
    asked: list[str]
    problem: str | None = None


@dataclass
class SecretChain:
    """Providers asked in order; the first that has the name wins. One chain serves one run."""

    providers: list[SecretProvider]
    on_value: Callable[[str], None] | None = None  # the run's masker learns each value at once
    _cache: dict[str, str] = field(default_factory=dict)
    _missing: dict[str, Lookup] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def locate(self, name: str) -> Lookup:
        """Ask each provider in turn; the value stays in the cache, the Lookup says where it was."""
        asked: list[str] = []
        for provider in self.providers:
            asked.append(provider.where(name))
            try:
                value = provider.get(name)
            except SecretProviderError as e:
                return Lookup(name, None, asked, f"{provider.label}: {e}")
            if value is not None and not isinstance(value, str):  # a provider of the embedding code's own
                given = type(value).__name__
                return Lookup(name, None, asked, f"{provider.label} gave an object of type {given}, not a string")
            if value is not None:
                self._remember(name, value)
                return Lookup(name, provider.label, asked)
        return Lookup(name, None, asked)

    def _remember(self, name: str, value: str) -> None:
        if self.on_value is not None:
            self.on_value(value)
        self._cache[name] = value

    def prefetch(self, names: Iterable[str]) -> None:
        """Fetch every name a flow reads before its first statement (in a worker thread: some
        providers run commands or ask a server). Missing names fail only where they are read."""
        for name in sorted(set(names)):
            self.value_or_none(name)

    def value_or_none(self, name: str) -> str | None:
        with self._lock:
            if name in self._cache:
                return self._cache[name]
            if name in self._missing:
                return None
            found = self.locate(name)
            if found.found_in is None:
                self._missing[name] = found
                return None
            return self._cache[name]

    def problem(self, name: str) -> str | None:
        """Why NAME could not be read (a provider failed), once it was looked up and not found."""
        found = self._missing.get(name)
        return None if found is None else found.problem

    def value(self, name: str) -> str:
        """The value of NAME, or a record-level error naming the providers that were asked."""
        value = self.value_or_none(name)
        if value is not None:
            return value
        found = self._missing[name]
        if found.problem is not None:
            raise FlowRuntimeError(f"secret '{name}' could not be read: {found.problem}", "value")
        raise MissingSecretError(f"secret '{name}' is not set; asked: {'; '.join(found.asked)}", "value")


def default_chain(secrets: Mapping[str, str], env: Mapping[str, str]) -> list[SecretProvider]:
    """What flowlang asks when no project file names providers: --secrets first, then the environment."""
    return [MappingProvider(secrets), EnvironmentProvider(env)]
