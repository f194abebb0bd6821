"""The arguments of an http operation, checked before the run when they are written as constants, by
the rules the run applies (connectors/http/connection.py), which failed every record of the loop one by
one: the path is a text; `query:` and `headers:` are objects; `timeout:` a positive number of seconds;
in a send the record is the body (`body:` has no place, `form:` is true or false), in a call `form:` is
an object of fields and goes without `body:`."""

from __future__ import annotations

from flowlang import ast
from flowlang.check.constants import constant_value
from flowlang.diagnostics import Diagnostic
from flowlang.errors import FlowRuntimeError
from flowlang.source import Source, Span


def _kind(expr: ast.Expr) -> str | None:
    """The flowlang type of a constant written in the flow, or None when it is known only at run time."""
    if isinstance(expr, ast.ObjectLit):
        return "object"
    if isinstance(expr, ast.ListLit):
        return "list"
    if isinstance(expr, ast.Interpolated):
        return "string"
    if isinstance(expr, ast.Literal):
        value = expr.value
        return "null" if value is None else "boolean" if isinstance(value, bool) else \
            "string" if isinstance(value, str) else "number"
    return None


def argument_diagnostics(op: str, args: tuple[ast.Expr, ...], kwargs: tuple[ast.KwArg, ...], sending: bool,
                         source: Source) -> list[Diagnostic]:
    """The problems of an http operation's constant arguments."""
    given = {k.name: k for k in kwargs}
    found: list[Diagnostic] = []
    path = args[0] if args else given["path"].value if "path" in given else None
    kind = None if path is None else _kind(path)
    if path is not None and kind not in (None, "string"):
        found.append(Diagnostic("http-argument", f"{op}() needs the path as a string, got {kind}", source, path.span))
    found += mapping_diagnostics(kwargs, source)
    if isinstance(path, ast.Literal) and isinstance(path.value, str):
        from flowlang.connectors.http.connection import REQUEST_OPTIONS, unfilled_problem
        from flowlang.connectors.http.urls import placeholders

        names = placeholders(path.value)
        for k in kwargs:  # a keyword that is no request option fills a {placeholder}: the run refuses one it lacks
            if k.name not in REQUEST_OPTIONS and k.name != "path" and k.name not in names:
                message, hint = unfilled_problem(path.value, k.name, names, sending)
                found.append(Diagnostic("http-argument", f"{op}(): {message}", source,
                                        Span(k.span.start, k.span.start + len(k.name)), hint))
    if "timeout" in given:
        known, value = constant_value(given["timeout"].value)
        if known:
            from flowlang.connectors.http.connection import timeout_of

            try:
                timeout_of(value)
            except FlowRuntimeError as e:
                found.append(Diagnostic("http-argument", e.message, source, given["timeout"].value.span))
    key = given.get("idempotency_key")
    if key is not None and isinstance(key.value, ast.Literal) and isinstance(key.value.value, str):
        from flowlang.connectors.http.connection import idempotency_key_of

        try:
            idempotency_key_of(key.value.value)
        except FlowRuntimeError as e:
            found.append(Diagnostic("http-argument", e.message, source, key.value.span))
    return found + _body_diagnostics(op, given, sending, source)


def mapping_diagnostics(kwargs: tuple[ast.KwArg, ...], source: Source) -> list[Diagnostic]:
    """A `query:` or `headers:` written as a constant that is not an object (an http operation's, or a
    connector file's operation's)."""
    found = []
    for k in kwargs:
        kind = _kind(k.value) if k.name in ("query", "headers") else None
        if kind not in (None, "object", "null"):
            found.append(Diagnostic("http-argument", f"{k.name}: must be an object, got {kind}", source, k.value.span))
    return found


def _body_diagnostics(op: str, given: dict[str, ast.KwArg], sending: bool, source: Source) -> list[Diagnostic]:
    """The problems of an http operation's constant `body:` and `form:` arguments."""
    body, form = given.get("body"), given.get("form")
    found: list[Diagnostic] = []
    if sending:
        if body is not None:
            found.append(Diagnostic("send-body", "send gives the record as the body; do not pass body:", source,
                                    body.span, "send the value itself: send {...} to api.post(\"/path\")"))
        kind = None if form is None else _kind(form.value)
        if form is not None and kind not in (None, "boolean"):
            found.append(Diagnostic("send-form", "in a send, form: true sends the record as form fields (form: takes "
                                    f"true or false here, got {kind})", source, form.value.span,
                                    "send the fields as the record: send {...} to api.post(\"/path\", form: true)"))
        return found
    kind = None if form is None else _kind(form.value)
    if form is not None and kind not in (None, "object", "null"):
        found.append(Diagnostic("form", f"form: must be an object of fields, got {kind}", source, form.value.span,
                                'form: {email: e, name: n}' + (" (form: true is for a send, which sends its record)"
                                                               if kind == "boolean" else "")))
    elif form is not None and body is not None and kind != "null" and _kind(body.value) != "null":
        found.append(Diagnostic("form", f"{op}() takes body: (JSON) or form: (form fields), not both", source,
                                form.span))
    return found


def path_value_diagnostics(node: ast.Send, path: str | None, connection: str, op: str,
                           source: Source) -> list[Diagnostic]:
    """A record written as an object literal, sent to an operation of a connector file whose path has a
    `{name}` that neither the record's keys nor the send's arguments give (`send {price: 3} to
    acme.update_item`, path '/items/{item_id}'): every such send failed its record at run time with
    "the path ... needs a value for 'item_id'", and check said ok."""
    from flowlang.connectors.http.urls import placeholders

    if not path or not isinstance(node.value, ast.ObjectLit):
        return []
    keys = [p.key.value for p in node.value.pairs if isinstance(p.key, ast.Literal)]
    if len(keys) != len(node.value.pairs):  # a key made in the flow ("{k}": v) may be any name
        return []
    given = set(keys) | {k.name for k in node.destination.kwargs}
    missing = [h for h in placeholders(path) if h not in given]
    if not missing:
        return []
    where = f"{connection}.{op}"
    return [Diagnostic("path-value", f"the path {path!r} of {where} needs '{missing[0]}', which this record does not "
                       "hold and the send does not give", source, node.value.span,
                       f"give it in the record ({{{missing[0]}: ..., ...}}) or as an argument: send ... to "
                       f"{where}({missing[0]}: ...)")]
