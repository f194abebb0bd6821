"""The `memory` connector: records held in memory (tests, the REPL, examples)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices
from flowlang.connectors.matching import matches
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.values import RecordStream, Value, type_name


class MemoryConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, records: list[Value], services: RunServices) -> None:
        super().__init__(name, spec)
        self.records = records
        self.services = services

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "read":
            snapshot = list(self.records)

            async def pages() -> AsyncIterator[list[Value]]:
                yield list(snapshot)
            return RecordStream(pages, f"{self.name}.read()")
        if op == "find":
            return [r for r in self.records if matches(r, kwargs)]
        if op == "write":
            return await self.send(op, args[0] if args else None, [], {})
        raise FlowRuntimeError(f"memory has no operation '{op}'", "connector")

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if self.services.dry_run:
            self.services.log_dry_run(self.name, f"write {self.services.mask(dumps(record))}")
            return record
        self.writes += 1
        self.records.append(record)
        return record


async def open_memory(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    records = config.get("records")
    if records is None:
        records = []
    refused = records_problem("records", records)
    if refused is not None:
        raise FlowRuntimeError(refused, "connector")
    assert isinstance(records, list)
    return MemoryConnection(name, MEMORY, records, services)


def records_problem(key: str, value: Value) -> str | None:
    """What open_memory refuses in records: (for `flowlang check` too, of a constant)."""
    if key != "records" or value is None or type(value) is list:
        return None
    return f"memory needs records: a list, got {type_name(value)}"


MEMORY = ConnectorSpec(
    name="memory",
    title="Records in memory",
    origin="builtin",
    config=(ConfigKey("records", description="the records read() returns (a list)"),),
    operations={
        "read": OperationSpec("read", "all records, as a stream", returns_stream=True),
        "find": OperationSpec("find", "the records whose fields equal the arguments (for lookup)", keywords=None),
        "write": OperationSpec("write", "collect a record (the default for send)", params=("record",),
                               changes_data=True, takes_batch=True),
    },
    open=open_memory,
    value_problem=records_problem,
    default_write="write",
)

