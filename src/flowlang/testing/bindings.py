"""Host bindings in a replay: a flow that calls a host binding (`crm.find(...)` with no `use` line, given
to run() when embedding) is replayed with a stand-in for each binding, so that it checks and runs as it
was recorded; the replay answers every call of it from the cassette (Replayer.wrap), as it answers a
`use` connection's, and never calls the stand-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowlang.testing.cassette import Cassette

if TYPE_CHECKING:
    from flowlang.api import Flow

PREFIX = "binding:"


def stand_in_bindings(flow: Flow, cassette: Cassette) -> dict[str, Any]:
    """A stand-in object for each host binding the flow calls, with a method for each operation it calls
    (its class named as the recorded object's, so an --update writes the lines back as they were)."""
    recorded: dict[str, str] = {}
    for entry in cassette.entries:
        connector = entry.get("connector")
        if type(connector) is str and connector.startswith(PREFIX) and type(entry.get("connection")) is str:
            recorded.setdefault(entry["connection"], connector[len(PREFIX):])
    out: dict[str, Any] = {}
    for name, ops in flow.checked.host_operations.items():
        kind = recorded.get(name, "Replayed")
        methods = {op: _answered_from_the_cassette for op in ops if op and not op.startswith("_")}
        out[name] = type(kind if kind.isidentifier() else "Replayed", (), methods)()
    return out


def _answered_from_the_cassette(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a replay answers a host binding's calls from the cassette; this stand-in is never called")
