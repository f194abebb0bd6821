"""flowlang: readable .flow scripts for data integration.

Embedding:
    import flowlang
    flow = flowlang.load("orders.flow")          # or flowlang.compile(source_text)
    result = flow.run(params={...}, bindings={"crm": client}, input=payload)
    result.ok, result.outputs, result.errors, result.stats

The names below are imported on first use (module `__getattr__`), so `import flowlang` and
`flowlang --version` do not load the compiler.
"""

from __future__ import annotations

import sys
from types import ModuleType

TYPE_CHECKING = False  # not typing's: importing typing costs more than the rest of this module
if TYPE_CHECKING:
    from typing import Any

    from flowlang.api import Flow, compile, load
    from flowlang.environment import Environment
    from flowlang.errors import (
        CheckError,
        FlowError,
        FlowRuntimeError,
        FlowSyntaxError,
        HttpError,
        LimitError,
        LockedError,
        ScriptError,
        UsageError,
    )
    from flowlang.runner import Result
    from flowlang.runtime.limits import Limits
    from flowlang.runtime.values import Secret

__version__ = "0.1.0"

_HOMES = {
    "Flow": "flowlang.api", "compile": "flowlang.api", "load": "flowlang.api",
    "Environment": "flowlang.environment", "Result": "flowlang.runner", "Limits": "flowlang.runtime.limits",
    "Secret": "flowlang.runtime.values",
    **{name: "flowlang.errors" for name in ("CheckError", "FlowError", "FlowRuntimeError", "FlowSyntaxError",
                                            "HttpError", "LimitError", "LockedError", "ScriptError", "UsageError")},
}

__all__ = [
    "CheckError", "Environment", "Flow", "FlowError", "FlowRuntimeError", "FlowSyntaxError", "HttpError",
    "LimitError", "Limits", "LockedError", "Result", "ScriptError", "Secret", "UsageError", "__version__",
    "compile", "load",
]


class _Package(ModuleType):
    """Importing the subpackage flowlang.compile sets the package's attribute `compile` to it; the
    API function of that name wins (as it did when this module imported it eagerly)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "compile" and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'flowlang' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)
    globals()[name] = value  # the next look-up is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
