"""The connector interface: static specs (what `flowlang check` validates) and live connections.

A ConnectorSpec describes a connector kind: its configuration keys and its operations. `open()`
turns a validated configuration into a Connection, whose `invoke` runs read operations and whose
`send` writes one record or a batch. Everything a connection needs from the run (dry-run flag,
logging, secret masking, the flow's folder) comes in a RunServices.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Protocol

from flowlang.lazy_dataclass import dataclass
from flowlang.runtime.observe import RunObserver
from flowlang.runtime.values import Value


@dataclass(frozen=True)
class ConfigKey:
    """One configuration key a connector accepts in `use`."""

    name: str
    required: bool = False
    secret: bool = False
    description: str = ""
    default: Any = None


@dataclass(frozen=True)
class OperationSpec:
    """One operation: its arguments, and whether it reads, writes, batches or streams."""

    name: str
    description: str = ""
    params: tuple[str, ...] = ()  # positional argument names
    required: tuple[str, ...] = ()  # of params and keywords, the ones that must be given
    keywords: frozenset[str] | None = frozenset()  # None: any keyword (templates)
    changes_data: bool = False
    takes_batch: bool = False
    max_batch: int | None = None
    returns_stream: bool = False
    method: str | None = None  # for HTTP-backed operations, shown by `flowlang connectors`
    path: str | None = None
    # How a value interpolated into a double-quoted first argument is written, when the connector has a
    # rule for it (http: each value is one percent-encoded path segment); None: as text, like any string.
    encode_interpolated: Callable[[Any], str] | None = None
    fields: tuple[str, ...] = ()  # the fields a record it sends may have, when a connector file declares them

    def argument_problems(self, n_positional: int, keywords: list[str]) -> list[str]:
        problems: list[str] = []
        if n_positional > len(self.params):
            allowed = len(self.params)
            problems.append(f"{self.name}() takes {allowed} positional argument{'s' if allowed != 1 else ''}, "
                            f"got {n_positional}")
        given = set(self.params[:n_positional]) | set(keywords)
        if self.keywords is not None:
            allowed_kw = set(self.params) | set(self.keywords)
            problems += [f"{self.name}() has no argument '{k}' (it takes: {', '.join(sorted(allowed_kw)) or 'none'})"
                         for k in keywords if k not in allowed_kw]
        problems += [f"{self.name}() needs the argument '{r}'" for r in self.required if r not in given]
        return problems


class RunServices(Protocol):
    """What a connection may use from the run that opened it."""

    dry_run: bool
    appending: bool  # a retry: files opened in overwrite mode are appended to (OPERATIONS.md 4)
    base_dir: Path
    logger: logging.Logger
    observer: RunObserver

    def mask(self, text: str) -> str: ...

    def register_secret(self, value: str) -> None: ...

    def log_dry_run(self, connection: str, description: str) -> None: ...


@dataclass(slots=True)
class SendOutcome:
    """The result of sending one record: ok with the API's answer, or the error for that record."""

    ok: bool
    result: Value = None
    error: str | None = None
    status: int | None = None
    uncertain: bool = False  # not ok, but it may have reached the destination (FlowRuntimeError.uncertain)


class Connection(ABC):
    """A live connection, opened by `use` (or a host binding) for one run."""

    def __init__(self, name: str, spec: ConnectorSpec) -> None:
        self.name = name
        self.spec = spec

    @abstractmethod
    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        """Run a read operation (call, lookup): a value, or a RecordStream for lists."""

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        """Write one record; returns the destination's answer."""
        outcomes = await self.send_batch(op, [record], args, kwargs)
        outcome = outcomes[0]
        if not outcome.ok:
            from flowlang.errors import FlowRuntimeError

            error = FlowRuntimeError(outcome.error or "the destination refused the record", "connector",
                                     status=outcome.status)
            error.uncertain = outcome.uncertain  # it may have been written: a `send ... once` keeps it pending
            raise error
        return outcome.result

    # True when `send_now` writes a record without waiting for anything (a file): a loop of such sends
    # then runs without a coroutine per record (compile/steps.py, Step.sync_form)
    sends_now = False

    def send_now(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        """`send`, for a connection whose writes never wait (`sends_now`)."""
        raise NotImplementedError(f"{type(self).__name__} sends only through send()")

    async def send_batch(
        self, op: str, records: list[Value], args: list[Value], kwargs: dict[str, Value]
    ) -> list[SendOutcome]:
        """Write several records; one outcome per record, in order. A record refused fails alone: the
        records before it are written (failing them too would have them sent again by a retry)."""
        from flowlang.errors import FlowRuntimeError

        out: list[SendOutcome] = []
        for record in records:
            try:
                out.append(SendOutcome(True, await self.send(op, record, args, kwargs)))
            except FlowRuntimeError as e:
                out.append(SendOutcome(False, error=e.message, status=e.status, uncertain=e.uncertain))
        return out

    def repeatable(self, op: str, record: Value, kwargs: dict[str, Value]) -> bool:
        """Whether sending this record again could not do its work twice (an HTTP PUT or DELETE, a request
        with an idempotency key): a `once` send of it cut off in flight is sent again by the next run,
        rather than kept pending for someone to check (TESTING.md 3)."""
        return False

    def sends_read(self, op: str) -> bool:
        """Whether a send to `op` is a read (a connector file's `safe = true` POST, a search): a dry run
        and a plan make it, and every run counts it on its line as read, not among the records sent."""
        return False

    writes = 0  # the writes made so far (sends, sql execute); HTTP-backed ones count their client's

    def write_count(self) -> int:
        """How many writes this connection has made (HTTP-backed ones count their requests that change
        data): a lookup that found nothing is asked again after a write to the same connection (the
        record just created is found, not created twice); a record found stays cached for the run."""
        return self.writes

    async def close(self) -> None:  # noqa: B027 - most connections hold nothing to release
        """Release what the connection holds (clients, files) at the end of the run."""

    def default_write_op(self) -> str | None:
        return self.spec.default_write


Opener = Callable[[str, Mapping[str, Value], RunServices], Awaitable[Connection]]


@dataclass(frozen=True)
class ConnectorSpec:
    """A connector kind: name, configuration keys, operations, and how to open a connection."""

    name: str
    title: str
    origin: str  # "builtin", "stdlib", a file path, or "binding"
    config: tuple[ConfigKey, ...]
    operations: Mapping[str, OperationSpec]
    open: Opener
    default_write: str | None = None
    any_operation: bool = False  # host bindings: operations known only at run time
    docs: str = ""
    extra_config: bool = False  # accepts keys beyond `config` (unused by the built-ins)
    notes: tuple[str, ...] = field(default=())
    # the problem of a configuration value written as a constant (`timeout: -1`), for `flowlang check`:
    # the rule `open` applies, found before the run starts
    value_problem: Callable[[str, Value], str | None] | None = None
    # the same for a rule of several keys: given the keys written as constants and the names of every key
    # given, (the key to point at, the problem) or None (file(path: "x.xlsx") without format:)
    config_problem: Callable[[Mapping[str, Value], set[str]], tuple[str, str] | None] | None = None
    # the same for the flow-folder rule (runtime/flow_folder.py), given the flow's folder too: (the key, the
    # problem) of a file the connection would refuse to open as outside it (file(path: "../x.csv"))
    folder_problem: Callable[[Mapping[str, Value], set[str], Path], tuple[str, str] | None] | None = None
    # a send goes only to an operation that writes records (changes data and takes batches): `flowlang
    # check` refuses `send r to db.query(...)` (sql fails it; a file wrote the record whatever the name)
    sends_to_writes_only: bool = False

    def config_key(self, name: str) -> ConfigKey | None:
        return next((k for k in self.config if k.name == name), None)
