"""`flowlang connectors import`: an API description becomes a connector file (CONNECTORS.md).

Operations get conventional names (naming.py); path and query parameters, the auth scheme and the
pagination of list operations come from the description. Where the description leaves a choice
open, a Question is asked (or its default taken with --yes) and the answer is written into the file
as a comment, so the reader sees what was guessed.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flowlang.openapi.document import METHODS, Document, Operation, Parameter, properties
from flowlang.openapi.naming import assign, snake

CURSOR_PARAMS = ("cursor", "after", "starting_after", "page_token", "pagetoken", "next_token", "continuation",
                 "page_info", "offset_token")
SIZE_PARAMS = ("limit", "per_page", "page_size", "pagesize", "count", "size", "max_results", "maxresults")
NEXT_CURSOR_NAMES = ("next_cursor", "nextcursor", "next_page_token", "nextpagetoken", "after", "cursor",
                     "next_token", "offset", "continuation", "next_page")
MORE_NAMES = ("has_more", "hasmore", "more", "has_next", "hasnext", "more_items")
NEXT_URL_NAMES = ("next", "next_url", "next_page_url", "nextlink", "next_link", "@odata.nextlink", "uri")
RECORD_LIST_NAMES = ("data", "results", "items", "records", "values", "entries", "elements")


@dataclass
class Question:
    """A point the importer is unsure of: the choices, the default, and where the answer goes."""

    topic: str
    text: str
    choices: list[str]
    default: str
    answer: str = ""
    how: str = ""  # "default" or "answered"


Asker = Callable[[Question], str]


@dataclass
class Selection:
    tags: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # paths or globs ("/repos/*")

    def wants(self, op: Operation) -> bool:
        if self.tags and not set(t.lower() for t in op.tags) & {t.lower() for t in self.tags}:
            return False
        return not self.paths or any(op.path == p or fnmatch.fnmatchcase(op.path, p) for p in self.paths)

    def keeps(self, path: str, item: Any) -> bool:
        """Whether a path item of the description may hold a wanted operation (document.load's keep:
        only those are validated and read). One it cannot judge (a $ref, tags that are no list) is kept."""
        if self.paths and not any(path == p or fnmatch.fnmatchcase(path, p) for p in self.paths):
            return False
        if not self.tags or not isinstance(item, dict) or "$ref" in item:
            return True
        wanted = {t.lower() for t in self.tags}
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            tags = op.get("tags", []) if isinstance(op, dict) else None
            if not isinstance(tags, list) or {str(t).lower() for t in tags} & wanted:
                return True
        return False


@dataclass
class Imported:
    text: str
    operations: int
    questions: list[Question]


def toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def toml_inline(items: dict[str, Any]) -> str:
    parts = []
    for key, value in items.items():
        k = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_str(key)
        v = toml_str(value) if isinstance(value, str) else ("true" if value is True else "false"
                                                            if value is False else str(value))
        parts.append(f"{k} = {v}")
    return "{ " + ", ".join(parts) + " }"


def identifier(name: str) -> str:
    return snake(name.replace("[]", ""))


class Importer:
    def __init__(self, doc: Document, name: str, ask: Asker, selection: Selection | None = None) -> None:
        self.doc = doc
        self.name = name
        self.ask = ask
        self.selection = selection or Selection()
        self.questions: list[Question] = []

    def question(self, topic: str, text: str, choices: list[str], default: str) -> str:
        q = Question(topic, text, choices, default)
        q.answer = self.ask(q)
        self.questions.append(q)
        return q.answer

    # ---- the whole file ---------------------------------------------------------------------------
    def build(self) -> Imported:
        ops = [op for op in self.doc.operations if self.selection.wants(op)]
        if not ops:
            raise ValueError("no operation of the description matches --tag/--path")
        lists = [self.is_list(op) for op in ops]
        names = assign([(op.method, op.path, op.operation_id, is_list)
                        for op, is_list in zip(ops, lists, strict=True)])
        head = self.header()
        config, auth = self.auth_section()
        body = [self.operation(name, op, is_list) for name, op, is_list in zip(names, ops, lists, strict=False)]
        lines = [f"# Generated by `flowlang connectors import` from {self.doc.source}",
                 f"# ({self.doc.title or 'untitled'}, OpenAPI {self.doc.version}, {len(ops)} operations). "
                 "Check it with `flowlang connectors verify`."]
        if self.questions:
            lines.append("# The importer was unsure of these points (answer, and how it was chosen):")
            for q in self.questions:
                lines.append(f"#   {q.topic}: {q.text} -> {q.answer} ({q.how})")
        text = "\n".join([*lines, "", *head, "", *config, *auth, "", *body]).rstrip() + "\n"
        return Imported(text, len(ops), self.questions)

    def header(self) -> list[str]:
        out = [f"name = {toml_str(self.name)}"]
        if self.doc.title:
            out.append(f"title = {toml_str(self.doc.title)}")
        if self.doc.docs:
            out.append(f"docs = {toml_str(self.doc.docs)}")
        self.server_vars: dict[str, dict[str, Any]] = {}
        urls = [u for u, _ in self.doc.servers]
        if not urls or not urlsplit(urls[0]).scheme:
            base = self.question("base_url", "the description gives no absolute server URL; the API's base URL?",
                                 [], "https://api.example.com" + (urls[0] if urls else ""))
        elif len(urls) > 1:
            base = self.question("base_url", "the description lists several servers; which one?", urls, urls[0])
        else:
            base = urls[0]
        for url, variables in self.doc.servers:
            if url == base:
                self.server_vars = variables
        out.append(f"base_url = {toml_str(base.rstrip('/'))}")
        style = self.param_style()
        if style is not None:
            out.append(f"param_style = {toml_str(style)}   # lists (and objects) in queries as the description "
                       "serializes them")
        return out

    def param_style(self) -> str | None:
        """The param_style the query parameters of the chosen operations ask for: brackets when any is a
        deepObject (Stripe), else comma when every list is written comma-separated (GitHub, Asana),
        None (the default, a repeated name) otherwise."""
        formats = {p.list_format for op in self.doc.operations if self.selection.wants(op)
                   for p in op.param("query") if p.list_format}
        if "brackets" in formats:
            return "brackets"
        return "comma" if formats == {"comma"} else None

    # ---- auth -------------------------------------------------------------------------------------
    def auth_section(self) -> tuple[list[str], list[str]]:
        schemes = self.doc.security_schemes
        wanted: list[str] = []
        for requirement in self.doc.security + [r for op in self.doc.operations for r in op.security or []]:
            for key in requirement:
                if key in schemes and key not in wanted:
                    wanted.append(key)
        wanted += [k for k in schemes if k not in wanted]
        usable = [k for k in wanted if self.auth_of(k) is not None]
        config = ["[config]"]
        for var, spec in self.server_vars.items():
            default = spec.get("default")
            line = f"{var} = {{ required = {'false' if default else 'true'}"
            if default:
                line += f", default = {toml_str(str(default))}"
            if spec.get("description"):
                line += f", description = {toml_str(str(spec['description'])[:120])}"
            config.append(line + " }")
        if not usable:
            kind = self.question("auth", "the description declares no usable security scheme; the auth?",
                                 ["none", "bearer", "basic", "api_key"], "bearer")
            chosen = {"none": None, "bearer": ("bearer", {}), "basic": ("basic", {}),
                      "api_key": ("api_key", {"name": "X-API-Key", "in": "header"})}.get(kind, ("bearer", {}))
        elif len(usable) > 1:
            preference = sorted(usable, key=lambda k: ("bearer", "oauth2_client_credentials", "api_key", "basic")
                                .index(self.auth_of(k)[0]))  # type: ignore[index]
            kind = self.question("auth", "the description allows several security schemes; which one?",
                                 usable, preference[0])
            chosen = self.auth_of(kind if kind in usable else preference[0])
        else:
            chosen = self.auth_of(usable[0])
        if chosen is None:
            return [*config], []
        kind, extra = chosen
        lines = ["", "[auth]", f"type = {toml_str(kind)}"]
        if kind == "bearer":
            config.append('token = { required = true, secret = true, description = "an API token" }')
            lines.append('token = "{token}"')
        elif kind == "basic":
            config.append("user = { required = true }")
            config.append("password = { required = true, secret = true }")
            lines += ['user = "{user}"', 'password = "{password}"']
        elif kind == "api_key":
            config.append('api_key = { required = true, secret = true, description = "an API key" }')
            lines += [f"name = {toml_str(extra['name'])}", 'value = "{api_key}"', f"in = {toml_str(extra['in'])}"]
        else:
            config.append("client_id = { required = true }")
            config.append("client_secret = { required = true, secret = true }")
            lines += [f"token_url = {toml_str(extra['token_url'])}", 'client_id = "{client_id}"',
                      'client_secret = "{client_secret}"']
        if extra.get("note"):
            lines.insert(1, f"# {extra['note']}")
        return config, lines

    def auth_of(self, key: str) -> tuple[str, dict[str, Any]] | None:
        scheme = self.doc.security_schemes.get(key) or {}
        kind = str(scheme.get("type", "")).lower()
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return "bearer", {}
        if kind in ("http", "basic") and str(scheme.get("scheme", "basic")).lower() == "basic":
            return "basic", {}
        if kind == "apikey" and scheme.get("in") in ("header", "query"):
            return "api_key", {"name": str(scheme.get("name")), "in": str(scheme.get("in"))}
        if kind == "oauth2":
            flows = scheme.get("flows") or {}
            cc = flows.get("clientCredentials") or (scheme if scheme.get("flow") == "application" else None)
            if cc and cc.get("tokenUrl"):
                return "oauth2_client_credentials", {"token_url": str(cc["tokenUrl"])}
            return "bearer", {"note": f"{key}: OAuth2 without client credentials; pass an access token as token"}
        if kind == "openidconnect":
            return "bearer", {"note": f"{key}: OpenID Connect; pass an access token as token"}
        return None

    # ---- operations -------------------------------------------------------------------------------
    def is_list(self, op: Operation) -> bool:
        if op.method != "GET":
            return False
        answer = op.success()
        schema = self.doc.deref(answer.schema) if answer and answer.schema else None
        if isinstance(schema, dict) and schema.get("type") == "array":
            return True
        return self.records_path(op) is not None and self.pagination(op, quiet=True) is not None

    def records_path(self, op: Operation) -> str | None:
        answer = op.success()
        if answer is None or answer.schema is None:
            return None
        props, _, _ = properties(self.doc, answer.schema)
        arrays = [k for k, v in props.items() if isinstance(v, dict) and self.doc.deref(v).get("type") == "array"]
        named = [k for k in arrays if k.lower() in RECORD_LIST_NAMES]
        if named:
            return named[0]
        return arrays[0] if len(arrays) == 1 else None

    def next_path(self, schema: Any, names: tuple[str, ...], depth: int = 0, prefix: str = "") -> str | None:
        """The dotted path of a property named like a next cursor / next URL, three levels deep at most."""
        if depth > 2:
            return None
        props, _, _ = properties(self.doc, schema)
        for key, sub in props.items():
            plain = self.doc.deref(sub).get("type") in ("string", None, "integer")
            if key.lower() in names and plain and (prefix or key.lower().startswith("next")):
                return prefix + key
        for key, sub in props.items():
            if isinstance(sub, dict) and (self.doc.deref(sub).get("type") == "object" or "properties" in sub
                                          or "allOf" in sub):
                lower = key.lower()
                if any(w in lower for w in ("next", "paging", "page", "pagination", "meta", "links", "response")):
                    found = self.next_path(sub, names, depth + 1, prefix + key + ".")
                    if found:
                        return found
        return None

    def pagination(self, op: Operation, quiet: bool = False) -> dict[str, Any] | None:
        query = {p.name.lower(): p for p in op.param("query")}
        answer = op.success()
        schema = answer.schema if answer else None
        size_param = next((query[n].name for n in SIZE_PARAMS if n in query), None)
        spec: dict[str, Any] = {}
        page = query.get("page")
        cursor_names = CURSOR_PARAMS + (("page",) if page is not None and
                                        self.doc.deref(page.schema).get("type") == "string" else ())
        if answer and "link" in answer.headers:
            spec = {"style": "link"}
        elif schema is not None and (cursor_param := next((query[n].name for n in cursor_names if n in query),
                                                            None)):
            found = self.next_path(schema, NEXT_CURSOR_NAMES)
            if found:
                spec = {"style": "cursor", "cursor_param": cursor_param, "cursor": found}
            elif cursor_param == "starting_after":  # Stripe: the next page starts after the last record's id
                records = self.records_path(op) or "data"
                spec = {"style": "cursor", "cursor_param": cursor_param, "cursor": f"{records}.-1.id"}
        elif "offset" in query and schema is not None:
            nxt = self.next_path(schema, ("offset",))
            spec = {"style": "cursor", "cursor_param": query["offset"].name, "cursor": nxt} if nxt else \
                {"style": "offset", "offset_param": query["offset"].name}
            if not nxt and size_param:
                spec["limit_param"] = size_param
                size_param = None
        elif "page" in query:
            spec = {"style": "page", "page_param": query["page"].name}
        elif schema is not None and (nxt := self.next_path(schema, NEXT_URL_NAMES)):
            spec = {"style": "next_url", "next": nxt}
        if not spec:
            return None
        if size_param and spec["style"] != "offset":
            spec["size_param"] = size_param
        if size_param or spec.get("limit_param"):
            size_name = str(size_param or spec.get("limit_param") or "")
            spec["size"] = self.page_size(query.get(size_name.lower()))
        found_records = self.records_path(op)
        if found_records:
            spec["records"] = found_records
        if schema is not None and spec["style"] in ("cursor", "page", "offset"):
            props, _, _ = properties(self.doc, schema)
            more = next((k for k in props if k.lower() in MORE_NAMES
                         and self.doc.deref(props[k]).get("type") == "boolean"), None)
            if more:
                spec["has_more"] = more
        return spec

    def page_size(self, param: Parameter | None) -> int:
        if param is None:
            return 100
        schema = self.doc.deref(param.schema) or {}
        maximum = schema.get("maximum")
        if isinstance(maximum, int) and maximum > 0:
            return min(maximum, 100)
        default = schema.get("default")
        return default if isinstance(default, int) and 0 < default <= 100 else 100

    def operation(self, name: str, op: Operation, is_list: bool) -> str:
        notes: list[str] = []
        holes = {p: identifier(p) for p in re.findall(r"\{([^}]+)\}", op.path)}
        path = op.path
        for raw, ident in holes.items():
            path = path.replace("{" + raw + "}", "{" + ident + "}")
        lines = [f"[operations.{name}]"]
        if op.summary:
            lines.append(f"description = {toml_str(op.summary.splitlines()[0][:160])}")
        lines += [f"method = {toml_str(op.method)}", f"path = {toml_str(path)}"]
        pagination = self.pagination(op) if op.method == "GET" else None
        if pagination is not None and pagination["style"] in ("page", "offset"):
            param = next((p for p in op.param("query") if p.name == pagination.get("offset_param",
                                                                                  pagination.get("page_param"))), None)
            if param is not None and self.doc.deref(param.schema).get("type") == "string":
                notes.append(f"unsure: {param.name} is a string (a token?) and the answer names no next cursor: "
                             "check the pagination")
            else:
                notes.append(f"pagination {pagination['style']!r} guessed from the parameters alone")
        used = {pagination.get(k) for k in ("page_param", "size_param", "offset_param", "limit_param",
                                             "cursor_param")} if pagination else set()
        query: dict[str, str] = {}
        required: list[str] = []
        for p in op.param("query"):
            if p.name in used:
                continue
            arg = identifier(p.name)
            if arg in holes.values() or arg in ("query", "headers", "body"):
                arg = arg + "_param"
            query[arg] = p.name
            if p.required:
                required.append(arg)
        if query:
            lines.append(f"query = {toml_inline(query)}")
        if required:
            lines.append(f"required = {json.dumps(required)}")
        headers = [p.name for p in op.param("header") if p.required]
        if headers:
            notes.append(f"required header parameters, not set here: {', '.join(headers)}")
        if pagination:
            lines.append(f"pagination = {toml_inline(pagination)}")
        elif op.method == "GET" and not is_list:
            records = self.records_path(op) if op.path.split("/")[-1].lower() == "search" else None
            if records:
                lines.append(f"records = {toml_str(records)}")
        if op.body_schema is not None and op.method in ("POST", "PUT", "PATCH"):
            props, req, _ = properties(self.doc, op.body_schema)
            if list(props) == ["data"] and self.doc.deref(props["data"]).get("type") in ("object", None):
                lines.append('envelope = "data"')  # Asana: the record goes in {"data": ...}
                props, req, _ = properties(self.doc, props["data"])
            if props:
                lines.append(f"fields = {json.dumps(list(props)[:60], ensure_ascii=False)}")
            if op.body_is_form:
                lines.append('content_type = "form"')  # Stripe: application/x-www-form-urlencoded
            missing = sorted(r for r in req if r in props)
            if missing:
                notes.append(f"the record must have: {', '.join(missing)}")
        return "\n".join([f"# {n}" for n in notes] + lines) + "\n"


def import_description(doc: Document, name: str, ask: Asker, selection: Selection | None = None) -> Imported:
    return Importer(doc, name, ask, selection).build()
