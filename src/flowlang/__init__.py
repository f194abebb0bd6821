"""flowlang: readable .flow scripts for data integration.

Embedding:
    import flowlang
    flow = flowlang.load("orders.flow")          # or flowlang.compile(source_text)
    result = flow.run(params={...}, bindings={"crm": client}, input=payload)
    result.ok, result.outputs, result.errors, result.stats
"""

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

__all__ = [
    "CheckError", "Environment", "Flow", "FlowError", "FlowRuntimeError", "FlowSyntaxError", "HttpError",
    "LimitError", "Limits", "LockedError", "Result", "ScriptError", "Secret", "UsageError", "__version__",
    "compile", "load",
]
