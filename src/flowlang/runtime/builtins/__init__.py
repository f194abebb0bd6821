"""The built-in functions of LANGUAGE.md section 9, grouped by module; `default_registry()` builds
a fresh registry for an environment."""

from __future__ import annotations

from flowlang.runtime.builtins import auth, collections, data, numbers, text, time
from flowlang.runtime.builtins.registry import Builtin, BuiltinError, BuiltinRegistry


def default_registry() -> BuiltinRegistry:
    return BuiltinRegistry(
        [*text.BUILTINS, *numbers.BUILTINS, *collections.BUILTINS, *time.BUILTINS, *data.BUILTINS, *auth.BUILTINS]
    )


__all__ = ["Builtin", "BuiltinError", "BuiltinRegistry", "default_registry"]
