"""Host bindings: any Python object given when embedding becomes a connection whose public
methods (sync or async) are its operations. Sync methods run in a worker thread."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from typing import Any

from flowlang.connectors.base import Connection, ConnectorSpec, OperationSpec, RunServices
from flowlang.diagnostics import did_you_mean
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.values import RecordStream, Value, from_python

PAGE = 500
DEFAULT_WRITE = "write"  # what `send r to crm` calls, with no operation named: every connector's default write


def operation_called(op: str) -> str:
    """The method an operation of a binding calls: `send r to crm` (no operation) is crm.write(r)."""
    return op or DEFAULT_WRITE


def public_methods(obj: Any) -> list[str]:
    return sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None)))


async def _unsupported_open(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    raise FlowRuntimeError("host bindings are given when embedding, not opened with use", "connector")


def host_spec(obj: Any) -> ConnectorSpec:
    ops = {n: OperationSpec(n, "a method of the host object", params=("*",), keywords=None, takes_batch=True,
                            changes_data=True) for n in public_methods(obj)}
    return ConnectorSpec(f"binding:{type(obj).__name__}", f"host object {type(obj).__name__}", "binding", (),
                         ops, _unsupported_open, any_operation=True)


def _converted(value: Any, label: str) -> Value:
    if isinstance(value, AsyncIterable):
        source = value

        async def pages() -> AsyncIterator[list[Value]]:
            page: list[Value] = []
            items = aiter(source)
            while True:
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                except Exception as e:  # the binding's own failure, after the items it gave before it
                    if page:
                        yield page
                    raise FlowRuntimeError(f"{label} raised {type(e).__name__} while giving its items: {e}",
                                           "connector") from None
                try:
                    page.append(from_python(item))
                except ValueError as e:
                    if page:  # the items before the bad one are read as usual
                        yield page
                    raise FlowRuntimeError(f"{label} gave an item flowlang cannot use: {e}", "connector") from None
                if len(page) >= PAGE:
                    yield page
                    page = []
            if page:
                yield page
        return RecordStream(pages, label)
    try:
        return from_python(value)
    except ValueError as e:
        raise FlowRuntimeError(f"{label} returned a value flowlang cannot use: {e}", "connector") from None


def _called(method: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A sync method's result, in the worker thread: a generator it returns is read there too (not in the
    event loop, which it would block; its exception is the method's own)."""
    result = method(*args, **kwargs)
    return list(result) if isinstance(result, Iterator) else result


class HostConnection(Connection):
    def __init__(self, name: str, obj: Any, services: RunServices) -> None:
        super().__init__(name, host_spec(obj))
        self.obj = obj
        self.services = services

    def _method(self, op: str) -> Any:
        if op.startswith("_") or not callable(getattr(self.obj, op, None)):
            raise FlowRuntimeError(f"the binding '{self.name}' has no method '{op}' (it has: "
                                   f"{', '.join(public_methods(self.obj))})", "name")
        return getattr(self.obj, op)

    async def _call(self, op: str, args: list[Any], kwargs: dict[str, Any]) -> Value:
        op = operation_called(op)
        method = self._method(op)
        label = f"{self.name}.{op}()"
        try:
            if inspect.iscoroutinefunction(method):
                result = await method(*args, **kwargs)
            else:
                result = await asyncio.to_thread(_called, method, args, kwargs)
                if inspect.isawaitable(result):
                    result = await result
        except FlowRuntimeError:
            raise
        except TypeError as e:
            raise FlowRuntimeError(f"{label}: {e}", "connector") from None
        except Exception as e:
            raise FlowRuntimeError(f"{label} raised {type(e).__name__}: {e}", "connector") from None
        return _converted(result, label)

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        return await self._call(op, args, kwargs)

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if self.services.dry_run:
            self.services.log_dry_run(self.name, f"{operation_called(op)}({self.services.mask(dumps(record))})")
            return None
        return await self._call(op, [record, *args], kwargs)


def check_binding_operations(name: str, obj: Any, used: set[str]) -> list[str]:
    """Operations a flow uses that the host object lacks."""
    methods = set(public_methods(obj))
    return sorted({operation_called(op) for op in used} - methods)


def argument_problem(obj: Any, op: str, positional: int, keywords: tuple[str, ...]) -> tuple[str, str | None] | None:
    """What is wrong with calling the binding's method `op` with `positional` values and these keyword
    names, from its signature, and the keyword it is about (None for the call as a whole); None when the
    call fits, or when the method's signature cannot be read (a builtin of C)."""
    try:
        signature = inspect.signature(getattr(obj, operation_called(op)))
    except (TypeError, ValueError):
        return None
    params = signature.parameters.values()
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        for keyword in keywords:
            if keyword not in named:
                hint = did_you_mean(keyword, named)
                return (f"takes no argument '{keyword}'" + (f"; {hint}" if hint else "")
                        + f" (its arguments: {', '.join(named) or 'none'})", keyword)
    try:
        signature.bind(*([None] * positional), **dict.fromkeys(keywords))
    except TypeError as e:
        return f"cannot take this call: {e} (its arguments: {', '.join(named) or 'none'})", None
    return None
