"""The `pages:` argument of an http operation, checked before the run when it is written as an object
literal: an unknown key at the key, a style that is not one at its value, each with did-you-mean
(the rule itself: connectors.http.pagination.page_problems, which the run applies too)."""

from __future__ import annotations

from typing import Any

from flowlang import ast
from flowlang.check.constants import constant_value
from flowlang.diagnostics import Diagnostic
from flowlang.source import Source


def page_diagnostics(kwargs: tuple[ast.KwArg, ...], source: Source) -> list[Diagnostic]:
    """The problems of a literal `pages: {...}` among an operation's keyword arguments."""
    given = next((k for k in kwargs if k.name == "pages"), None)
    if given is None:
        return []
    value = given.value
    if not isinstance(value, ast.ObjectLit):
        if isinstance(value, ast.Literal | ast.ListLit | ast.Interpolated):
            return [Diagnostic("pages", 'pages: must be an object like {style: "page", size: 100}', source,
                               value.span)]
        return []
    pairs: dict[str, ast.Pair] = {}
    for pair in value.pairs:
        if not (isinstance(pair.key, ast.Literal) and isinstance(pair.key.value, str)):
            return []  # a computed key: known only at run time
        pairs[pair.key.value] = pair
    # the http connector's modules are imported when a flow has a pages: (a run without one pays nothing)
    from flowlang.connectors.http.pagination import UNKNOWN, page_problems

    values: dict[str, Any] = {k: value if known else UNKNOWN
                              for k, p in pairs.items() for known, value in [constant_value(p.value)]}
    found = []
    for problem in page_problems(values):
        at = pairs.get(problem.key) if problem.key is not None else None
        span = value.span if at is None else (at.value.span if problem.on_value else at.key.span)
        found.append(Diagnostic("pages", problem.message, source, span, problem.hint))
    return found
