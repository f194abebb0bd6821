"""`flowlang connectors verify`: a connector file checked against the API's description. Every
operation's method and path must exist; its path parameters, query parameters and pagination
parameters must be the description's, with none of the required ones missing; the body fields it
declares must be in the request schema, and the schema's required fields among them."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from flowlang.connectors.declarative.models import ConnectorFile, OperationModel
from flowlang.openapi.document import Document, Operation, PathFilter, properties

HOLE = re.compile(r"\{[^}]*\}")
PAGE_PARAMS = ("page_param", "size_param", "offset_param", "limit_param", "cursor_param")
PAGE_DEFAULTS = {"page": {"page_param": "page", "size_param": "per_page"},
                 "offset": {"offset_param": "offset", "limit_param": "limit"},
                 "cursor": {"cursor_param": "cursor", "size_param": "limit"}}


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)  # the file does not match the description
    notes: list[str] = field(default_factory=list)  # matches, with something worth knowing
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def url_path(url: str) -> str:
    without_scheme = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*", "", url)
    return without_scheme.split("?")[0].rstrip("/")


def shape(path: str) -> str:
    return HOLE.sub("{}", path.rstrip("/")) or "/"


def full_shape(base: str, op: OperationModel) -> str:
    """The shape of the path an operation requests, with its base URL's path."""
    return shape(base + op.path) if not op.path.startswith("http") else shape(url_path(op.path))


def paths_of(model: ConnectorFile) -> PathFilter:
    """document.load's keep for a connector: the description's paths that may be one of its operations
    (the server's path, unknown here, is the rest of the operation's shape), and "/". The others are only
    candidates for a missing path's nearest one."""
    literal = model.base_url.startswith(("http://", "https://"))
    base = url_path(model.base_url) if literal else ""
    wanted = {full_shape(base, op) for op in model.operations.values()}

    def keep(path: str, item: Any) -> bool:
        mine = shape(path)
        return mine == "/" or any(full.endswith(mine) for full in wanted)
    return keep


class Verifier:
    def __init__(self, model: ConnectorFile, doc: Document) -> None:
        self.model = model
        self.doc = doc
        literal = model.base_url.startswith(("http://", "https://"))
        # a base URL filled from the configuration ("{store_url}") says nothing of the server's path
        self.bases = {url_path(url) for url, _ in doc.servers} or {""} if literal else {""}
        self.by_shape: dict[str, dict[str, Operation]] = {}
        for op in doc.operations:
            for base in self.bases:
                self.by_shape.setdefault(shape(base + op.path), {})[op.method] = op
        self.base = url_path(model.base_url) if literal else ""

    def run(self) -> Report:
        report = Report()
        for name, op in self.model.operations.items():
            report.checked += 1
            self.operation(name, op, report)
        return report

    def operation(self, name: str, op: OperationModel, report: Report) -> None:
        full = full_shape(self.base, op)
        methods = self.by_shape.get(full)
        if methods is None:
            others = [shape(base + path) for path in self.doc.left_out for base in self.bases]
            nearest = difflib.get_close_matches(full, list(self.by_shape) + others, n=1, cutoff=0.6)
            hint = f" (nearest: {nearest[0]})" if nearest else ""
            report.problems.append(f"{name}: {op.method} {op.path} is not in the description{hint}")
            return
        api = methods.get(op.method)
        if api is None:
            report.problems.append(f"{name}: the description has {op.path} but not {op.method} "
                                   f"(it has {', '.join(sorted(methods))})")
            return
        self.parameters(name, op, api, report)
        self.body(name, op, api, report)

    def parameters(self, name: str, op: OperationModel, api: Operation, report: Report) -> None:
        query = {p.name: p for p in api.param("query")}
        sent = set(op.query.values())
        if op.pagination is not None:
            style = op.pagination.style
            values = op.pagination.model_dump(exclude_none=True)
            for key in PAGE_PARAMS:
                param = values.get(key) or PAGE_DEFAULTS.get(style, {}).get(key)
                if param is None or (key in ("size_param", "limit_param") and op.pagination.size is None):
                    continue
                if param not in query:
                    report.problems.append(f"{name}: the pagination parameter {param!r} is not a query parameter "
                                           f"of {api.method} {api.path}")
                sent.add(param)
        for param in sorted(set(op.query.values()) - set(query)):
            report.problems.append(f"{name}: the query parameter {param!r} is not in the description of "
                                   f"{api.method} {api.path}" + self.choices(query))
        for param in query.values():
            if param.required and param.name not in sent:
                report.problems.append(f"{name}: misses the required query parameter {param.name!r}")
            elif param.required:
                arg = next(a for a, p in op.query.items() if p == param.name) if param.name in op.query.values() \
                    else None
                if arg is not None and arg not in op.required:
                    report.notes.append(f"{name}: {arg} is required by the API; add it to required")
        own = len(HOLE.findall(op.path))
        theirs = len(HOLE.findall(api.path))
        if own != theirs and not self.base_holes(own, theirs):
            report.problems.append(f"{name}: has {own} path parameters, the description {theirs}")
        sent_headers = {h.lower() for h in [*op.headers, *self.model.headers]}
        if self.model.auth is not None:  # a required header named for the credentials is the auth's
            sent_headers |= {"authorization", "token", (self.model.auth.name or "").lower()}
        for header in api.param("header"):
            if header.required and header.name.lower() not in sent_headers:
                report.problems.append(f"{name}: misses the required header {header.name!r}")

    def base_holes(self, own: int, theirs: int) -> bool:
        return own + len(HOLE.findall(self.base)) == theirs

    def choices(self, query: dict[str, Any]) -> str:
        names = sorted(query)
        return f" (it has: {', '.join(names[:15])}{', ...' if len(names) > 15 else ''})" if names else \
            " (it has none)"

    def body(self, name: str, op: OperationModel, api: Operation, report: Report) -> None:
        if not op.fields:
            return
        if api.body_schema is None:
            report.problems.append(f"{name}: declares body fields but {api.method} {api.path} takes no body")
            return
        schema: Any = api.body_schema
        if op.envelope:
            props0, _, _ = properties(self.doc, schema)
            if op.envelope not in props0:
                report.problems.append(f"{name}: the envelope {op.envelope!r} is not a field of the request body")
                return
            schema = props0[op.envelope]
        props, required, open_ = properties(self.doc, schema)
        unknown = [f for f in op.fields if f not in props]
        if unknown and (props or not open_):
            shown = ", ".join(list(props)[:20]) + (", ..." if len(props) > 20 else "")
            for f in unknown:
                report.problems.append(f"{name}: the body field {f!r} is not in the request schema "
                                       f"of {api.method} {api.path} (it has: {shown or 'none'})")
        for f in sorted(required - set(op.fields)):
            report.problems.append(f"{name}: the request schema requires the body field {f!r}; add it to fields")
        form = (op.content_type or self.model.content_type) == "form"
        if api.body_is_form and not form:
            report.problems.append(f"{name}: {api.method} {api.path} takes form bodies ({', '.join(api.body_types)}): "
                                   'add content_type = "form"')
        elif form and api.body_types and not any("form" in t for t in api.body_types):
            report.problems.append(f"{name}: sends a form body, but {api.method} {api.path} takes "
                                   f"{', '.join(api.body_types)}")


def verify(model: ConnectorFile, doc: Document) -> Report:
    return Verifier(model, doc).run()
