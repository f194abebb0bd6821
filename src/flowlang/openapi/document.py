"""An API description read and validated by prance (with openapi-spec-validator), then seen through
one small model for both OpenAPI 3 and Swagger 2: servers, security schemes and operations with
their parameters, request body and responses. Local `$ref`s are followed lazily (recursive schemas
such as Stripe's stay finite); external references are resolved by prance."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

METHODS = ("get", "put", "post", "delete", "patch", "head")
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class DescriptionError(ValueError):
    """The description cannot be read or is not a valid OpenAPI/Swagger document."""


@dataclass
class Parameter:
    name: str
    location: str  # path, query, header, cookie
    required: bool
    schema: dict[str, Any]
    description: str = ""
    list_format: str | None = None  # how it is serialized, as a param_style: brackets, comma, repeat


def list_format(p: dict[str, Any], schema: Any, swagger2: bool) -> str | None:
    """The param_style a parameter's serialization asks for: deepObject is brackets (a[b]=1, Stripe's
    expand[]), an array in style form without explode is comma (labels=a,b), with explode a repeated
    name; in Swagger 2, collectionFormat csv (its default) is comma and multi a repeated name."""
    if p.get("style") == "deepObject":
        return "brackets"
    if not isinstance(schema, dict) or schema.get("type") != "array":
        return None
    if swagger2:
        return {"csv": "comma", "multi": "repeat"}.get(str(p.get("collectionFormat") or "csv"))
    if p.get("style", "form") != "form":
        return None
    return "repeat" if p.get("explode", True) else "comma"


@dataclass
class Response:
    status: str
    schema: dict[str, Any] | None
    headers: list[str]


@dataclass
class Operation:
    method: str  # upper case
    path: str
    operation_id: str
    summary: str
    tags: list[str]
    parameters: list[Parameter]
    body_schema: dict[str, Any] | None
    body_types: list[str]
    body_required: bool
    responses: list[Response]
    security: list[dict[str, Any]] | None  # None: the document's default

    def param(self, location: str) -> list[Parameter]:
        return [p for p in self.parameters if p.location == location]

    def success(self) -> Response | None:
        ok = [r for r in self.responses if r.status.startswith("2")]
        return ok[0] if ok else next((r for r in self.responses if r.status == "default"), None)

    @property
    def body_is_form(self) -> bool:
        return bool(self.body_types) and not any(t in JSON_TYPES or t.endswith("+json") for t in self.body_types) \
            and any(t in FORM_TYPES for t in self.body_types)


@dataclass
class Document:
    source: str
    raw: dict[str, Any]
    version: str  # "2.0" or "3.x.y"
    title: str
    docs: str
    servers: list[tuple[str, dict[str, dict[str, Any]]]]  # (url, variables)
    security_schemes: dict[str, dict[str, Any]]
    security: list[dict[str, Any]]
    operations: list[Operation] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # paths not read (load's keep)

    @property
    def swagger2(self) -> bool:
        return self.version.startswith("2")

    def deref(self, node: Any, depth: int = 0) -> Any:
        """Follow local '#/...' references until a node that is not one."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 50:
            node = pointer(self.raw, node["$ref"])
            depth += 1
        return node


def pointer(doc: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise DescriptionError(f"unresolved external reference {ref!r}")
    node = doc
    for part in ref[1:].split("/")[1:]:
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DescriptionError(f"the reference {ref!r} points at nothing")
    return node


PathFilter = Callable[[str, Any], bool]  # (path, path item) -> read it


def load(source: str, keep: PathFilter | None = None) -> Document:
    """Read a description from a file or an http(s) URL; prance resolves the references to files beside
    it (after refs.py allowed each one) and checks it with openapi-spec-validator.

    With `keep`, only the path items it keeps are checked and read, with the components they reach (and
    everything outside paths and components): validating GitHub's 13 MB description whole takes 25 s,
    the four paths an import asks for 0.1 s. The paths left out are named in Document.left_out."""
    import prance
    from prance.util.resolver import RESOLVE_FILES

    from flowlang.openapi.refs import check_file_refs, check_url_refs

    is_url = source.startswith(("http://", "https://"))
    if not is_url and not Path(source).is_file():
        raise DescriptionError(f"no such file: {source}")
    text = _fetched(source) if is_url else Path(source).read_text(encoding="utf-8", errors="replace")
    bare = text.lstrip("\ufeff \t\r\n")
    if not bare or bare.startswith(("[", "- ")):  # said before as 'a $ref points at a file or URL that holds ...'
        raise DescriptionError(f"{source} does not hold an OpenAPI/Swagger object "
                               f"({'it is empty' if not bare else 'it holds a list'})")
    problem = alias_problem(text)
    if problem is not None:
        raise DescriptionError(f"cannot read {source}: {problem}")
    if is_url:
        check_url_refs(source, text)
    else:
        check_file_refs(Path(source), text)
    try:
        # a URL's text as fetched once and checked (a second fetch could answer another document)
        where: dict[str, str] = {"spec_string": text} if is_url else {"url": source}
        parser = _parser(
            **where, lazy=True, strict=False, backend="openapi-spec-validator",
            resolve_types=RESOLVE_FILES, recursion_limit_handler=_keep_recursive_ref)
        parser.keep = keep
        parser.parse()
    except prance.ValidationError as e:  # its message is the validator's, whose args prance passes on whole
        unread = unreadable(text)
        if unread is not None:
            raise DescriptionError(f"cannot read {source}: {unread}") from None
        raise DescriptionError(f"{source} is not a valid OpenAPI/Swagger description: "
                               f"{_short(e.__cause__ or e)}") from None
    except RecursionError:
        raise DescriptionError(f"cannot read {source}: a $ref refers to itself without end (a cycle of references "
                               "such as B: {$ref: '#/components/schemas/B'}), or it nests too deeply") from None
    except Exception as e:  # prance raises many kinds (YAML, JSON, HTTP, references)
        raise DescriptionError(f"cannot read {source}: {unreadable(text) or _short(e)}") from None
    spec = parser.specification
    if not isinstance(spec, dict):
        raise DescriptionError(f"{source} does not hold an OpenAPI/Swagger object")
    part, left_out = (spec, []) if keep is None else part_of(spec, keep)
    doc = from_dict(part, source)
    doc.left_out = left_out
    return doc


def _parser(**options: Any) -> Any:
    import prance

    class Parser(prance.ResolvingParser):  # type: ignore[misc]
        """prance's parser, validating the part of the document `keep` selects (after resolving files)."""

        keep: PathFilter | None = None

        def _validate_openapi_spec_validator(self, spec_version: Any) -> None:
            whole: Any = self.specification  # type: ignore[has-type]  # prance is untyped
            if self.keep is not None and isinstance(whole, dict):
                self.specification = part_of(whole, self.keep)[0]
            try:
                super()._validate_openapi_spec_validator(spec_version)
            finally:
                self.specification = whole

    return Parser(**options)


# where a document keeps what local references point at: OpenAPI 3's components, Swagger 2's sections
SECTIONS = {"components": ("schemas", "responses", "parameters", "examples", "requestBodies", "headers", "links",
                           "callbacks", "pathItems"),
            "": ("definitions", "parameters", "responses")}


def part_of(spec: dict[str, Any], keep: PathFilter) -> tuple[dict[str, Any], list[str]]:
    """The document with the path items `keep` keeps, and of its components only those their references
    reach (security schemes whole; webhooks left out), and the paths left out."""
    paths = spec.get("paths")
    if not isinstance(paths, dict):
        return spec, []
    kept = {path: item for path, item in paths.items() if keep(str(path), item)}
    part = {key: value for key, value in spec.items() if key not in ("webhooks", "x-webhooks")}
    part["paths"] = kept
    if isinstance(part.get("components"), dict):
        part["components"] = dict(part["components"])
    for outer, names in SECTIONS.items():  # emptied here, refilled below with what is reached
        holder = part.get(outer) if outer else part
        for name in names:
            if isinstance(holder, dict) and isinstance(holder.get(name), dict):
                holder[name] = {}
    todo = [node for key, node in part.items() if key not in ("components", *SECTIONS[""])]
    components = part.get("components")
    if isinstance(components, dict):
        todo.append(components.get("securitySchemes"))
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/") and ref not in seen:
                seen.add(ref)
                todo.append(_reach(spec, part, ref))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return part, [str(path) for path in paths if path not in kept]


def _reach(spec: dict[str, Any], part: dict[str, Any], ref: str) -> Any:
    """Copy the entry a local reference points into from `spec` to `part`; return it (None if none)."""
    steps = [unquote(s).replace("~1", "/").replace("~0", "~") for s in ref[2:].split("/")]
    depth = 3 if steps[0] == "components" else 2
    if len(steps) < depth:
        return None
    *where, key = steps[:depth]
    source: Any = spec
    target: Any = part
    for step in where:
        source = source.get(step) if isinstance(source, dict) else None
        target = target.get(step) if isinstance(target, dict) else None
    if not isinstance(source, dict) or not isinstance(target, dict) or key not in source:
        return None  # the validator says the reference points at nothing
    target[key] = source[key]
    return source[key]


MAX_DESCRIPTION_BYTES = 64 * 1024 * 1024  # Stripe's description, among the largest, is under 8 MB
FETCH_TIMEOUT = 60.0  # seconds without a byte of the answer


def _fetched(url: str) -> str:
    """The text of a description at a URL, read once (at most MAX_DESCRIPTION_BYTES, redirects followed);
    with requests, which prance (the openapi extra) brings."""
    import requests

    try:
        with requests.get(url, timeout=FETCH_TIMEOUT, stream=True) as answer:
            if answer.status_code >= 400:
                raise DescriptionError(f"cannot read {url}: HTTP {answer.status_code} {answer.reason}")
            body = bytearray()
            for chunk in answer.iter_content(65536):
                body += chunk
                if len(body) > MAX_DESCRIPTION_BYTES:
                    raise DescriptionError(f"cannot read {url}: it is larger than {MAX_DESCRIPTION_BYTES:,} bytes, "
                                           "more than any description holds")
            try:
                return bytes(body).decode(answer.encoding or "utf-8", errors="replace")
            except LookupError:  # a charset that is no text encoding
                return bytes(body).decode("utf-8", errors="replace")
    except requests.RequestException as e:
        raise DescriptionError(f"cannot read {url}: {_request_problem(e)}") from None


def _request_problem(error: BaseException) -> str:
    """What a failed fetch ran into, without requests' and urllib3's wrappers ('HTTPConnectionPool(host=...):
    Max retries exceeded with url: ... (Caused by NewConnectionError(...: [Errno 111] Connection refused'))."""
    import requests

    if isinstance(error, requests.Timeout):
        return f"no answer in {FETCH_TIMEOUT:g} s"
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.exceptions.SSLError):
        why = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
        return f"cannot connect ({why.group(1).strip() if why else 'the connection failed'})"
    return _short(error) or type(error).__name__


def unreadable(text: str) -> str | None:
    """What a text that prance could not read is, when it is no JSON or YAML object: an HTML page, JSON or
    YAML that breaks (where), a text or a number; None when it is an object (prance's words then say what
    is wrong with it). Only on the way to an error: a description that reads is parsed once, by prance."""
    bare = text.lstrip("\ufeff \t\r\n")
    if bare.startswith("<"):
        head = bare[:200].lower()
        return "it is an HTML page, not a JSON or YAML description" if head.startswith(("<!doctype html", "<html")) \
            else "it is XML or HTML, not a JSON or YAML description"
    if bare.startswith("{"):
        try:
            value: Any = json.loads(bare)
        except json.JSONDecodeError as e:
            before = text[:len(text) - len(bare)].count("\n")  # the lines of blanks stripped before it
            end = bare.rstrip()
            if e.pos >= len(end) or (e.msg.startswith("Unterminated string") and '"' not in end[e.pos + 1:]):
                return (f"not valid JSON: it ends before it is complete (cut short?) at line "
                        f"{before + end.count(chr(10)) + 1}, column {len(end) - end.rfind(chr(10)) - 1}")
            return f"not valid JSON: {e.msg} (line {before + e.lineno}, column {e.colno})"
        except RecursionError:
            return "not valid JSON: it nests too deeply"
    else:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        try:
            value = YAML(typ="safe").load(text)
        except MarkedYAMLError as e:
            mark = e.problem_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            return f"not valid YAML: {e.problem or e.context}{where}"
        except (YAMLError, RecursionError) as e:
            return f"not valid YAML: {_short(e)}"
    if isinstance(value, dict):
        return None
    kind = "a text" if isinstance(value, str) else "a list" if isinstance(value, list) else \
        "nothing" if value is None else f"a {type(value).__name__}"
    return f"it holds {kind}, not a JSON or YAML object"


def _keep_recursive_ref(limit: int, ref: Any, recursions: Any) -> dict[str, str]:
    """A recursive schema (a Line whose parent is a Line) stays a local reference."""
    fragment = ref.fragment if hasattr(ref, "fragment") else str(ref).partition("#")[2]
    return {"$ref": "#" + fragment}


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    if not text and isinstance(error, AssertionError):  # prance's check that a fetched reference is an object
        return "a $ref points at a file or URL that holds no JSON or YAML object"
    first = text[0] if text else type(error).__name__
    return first[:300]


MAX_VALUES = 2_000_000
# an alias as a YAML value or item (`key: *a`, `- *a`, `[*a, *a]`), not a * inside a text
ALIAS = re.compile(r"(?m)(?:^\s*-\s+|:\s+|[\[,]\s*)\*[A-Za-z0-9_.-]+\s*(?:$|[,\]}])")
FEWEST_ALIASES = 32  # 2^21 values need 42 aliases at least (21 levels of 2); fewer expand to less


BOMB = (f"its YAML aliases (*name) repeat its anchors (&name) into more than {MAX_VALUES:,} values, more than any "
        "description holds (a YAML bomb?)")
LOOP = ("a YAML alias (*name) stands inside its own anchor (&name), so the description would hold itself without "
        "end")


def alias_problem(text: str) -> str | None:
    """Why the YAML's aliases make it unreadable, or None: they repeat its anchors into more than MAX_VALUES
    values ('billion laughs': nine anchors of nine aliases each are 387 million), which the reader would
    walk for hours, or an alias stands inside its own anchor (`get: &a {responses: *a}`: a value that
    holds itself, which the reader walked for ever). The YAML is composed, its shared nodes counted once
    each with their expanded size."""
    if text.lstrip("\ufeff \t\r\n").startswith(("{", "[")):  # JSON has no aliases
        return None
    aliases = sum(1 for _ in zip(range(FEWEST_ALIASES), ALIAS.finditer(text), strict=False))
    if aliases == 0 or (aliases < FEWEST_ALIASES and "&" not in text):
        return None
    from ruamel.yaml import YAML

    try:
        root = YAML(typ="safe").compose(text)
    except Exception:  # not YAML: the reader says so
        return None
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _yaml_children(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = min(MAX_VALUES + 1, 1 + sum(sizes.get(id(k), 0) for k in kids))
        elif key in open_nodes:  # an alias inside its own anchor
            return LOOP
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
    return BOMB if sizes.get(id(root), 0) > MAX_VALUES else None


def _yaml_children(node: Any) -> list[Any]:
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return []
    return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]


def from_dict(spec: dict[str, Any], source: str) -> Document:
    version = str(spec.get("openapi") or spec.get("swagger") or "")
    if not version:
        raise DescriptionError(f"{source} is not an OpenAPI 3 or Swagger 2 description (no openapi: or swagger: key)")
    info = spec.get("info") or {}
    docs = (spec.get("externalDocs") or {}).get("url") or ""
    doc = Document(source=source, raw=spec, version=version, title=str(info.get("title") or ""),
                   docs=str(docs), servers=[], security_schemes={}, security=list(spec.get("security") or []))
    if doc.swagger2:
        schemes = spec.get("schemes") or ["https"]
        host = spec.get("host")
        base = spec.get("basePath") or ""
        if host:
            doc.servers = [(f"{schemes[0]}://{host}{base}", {})]
        elif base:
            doc.servers = [(base, {})]
        doc.security_schemes = {k: doc.deref(v) for k, v in (spec.get("securityDefinitions") or {}).items()}
    else:
        doc.servers = [(str(s.get("url", "")), dict(s.get("variables") or {})) for s in spec.get("servers") or []
                       if isinstance(s, dict)]
        schemes3 = (spec.get("components") or {}).get("securitySchemes") or {}
        doc.security_schemes = {k: doc.deref(v) for k, v in schemes3.items()}
    doc.operations = list(_operations(doc))
    return doc


def _operations(doc: Document) -> Iterator[Operation]:
    for path, item in (doc.raw.get("paths") or {}).items():
        item = doc.deref(item)
        if not isinstance(item, dict):
            continue
        shared = [doc.deref(p) for p in item.get("parameters") or []]
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            yield _operation(doc, str(path), method, op, shared)


def _operation(doc: Document, path: str, method: str, op: dict[str, Any], shared: list[Any]) -> Operation:
    own = [doc.deref(p) for p in op.get("parameters") or []]
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for p in [*shared, *own]:
        if isinstance(p, dict) and "name" in p and "in" in p:
            merged[(p["in"], p["name"])] = p
    params: list[Parameter] = []
    body_schema: dict[str, Any] | None = None
    body_types: list[str] = []
    body_required = False
    form_props: dict[str, Any] = {}
    form_required: list[str] = []
    for (where, name), p in merged.items():
        if where == "body":
            body_schema = doc.deref(p.get("schema") or {})
            body_types = list(op.get("consumes") or doc.raw.get("consumes") or ["application/json"])
            body_required = bool(p.get("required"))
        elif where == "formData":
            form_props[name] = {k: v for k, v in p.items() if k not in ("name", "in", "required")}
            if p.get("required"):
                form_required.append(name)
        else:
            swagger_keys = ("type", "format", "enum", "maximum", "default", "items")
            schema = doc.deref(p.get("schema")) if "schema" in p else {k: p[k] for k in swagger_keys if k in p}
            params.append(Parameter(name, where, bool(p.get("required")) or where == "path",
                                    schema if isinstance(schema, dict) else {}, str(p.get("description") or ""),
                                    list_format(p, schema, doc.swagger2) if where == "query" else None))
    if form_props:
        body_schema = {"type": "object", "properties": form_props, "required": form_required}
        body_types = list(op.get("consumes") or ["application/x-www-form-urlencoded"])
    body = doc.deref(op.get("requestBody")) if "requestBody" in op else None
    if isinstance(body, dict):
        content = body.get("content") or {}
        body_types = list(content)
        chosen = next((t for t in content if t in JSON_TYPES or t.endswith("+json")), None) or \
            next((t for t in content if t in FORM_TYPES), None) or next(iter(content), None)
        if chosen is not None:
            body_schema = doc.deref((content[chosen] or {}).get("schema") or {})
        body_required = bool(body.get("required"))
    responses = []
    for status, answer in (op.get("responses") or {}).items():
        answer = doc.deref(answer)
        if not isinstance(answer, dict):
            continue
        if doc.swagger2:
            schema = doc.deref(answer.get("schema")) if "schema" in answer else None
        else:
            content = answer.get("content") or {}
            kind = next((t for t in content if t in JSON_TYPES or t.endswith("+json")), None)
            schema = doc.deref((content[kind] or {}).get("schema")) if kind else None
        headers = [str(h).lower() for h in (answer.get("headers") or {})]
        responses.append(Response(str(status), schema if isinstance(schema, dict) else None, headers))
    security = op.get("security")
    return Operation(method=method.upper(), path=path, operation_id=str(op.get("operationId") or ""),
                     summary=_summary(op), tags=[str(t) for t in op.get("tags") or []],
                     parameters=params, body_schema=body_schema if isinstance(body_schema, dict) else None,
                     body_types=body_types, body_required=body_required, responses=responses,
                     security=list(security) if isinstance(security, list) else None)


def _summary(op: dict[str, Any]) -> str:
    text = str(op.get("summary") or "").strip()
    if not text:  # Stripe: only a description, often HTML
        text = re.sub(r"<[^>]+>", "", str(op.get("description") or "")).strip()
        text = re.split(r"(?<=\.)\s", text, maxsplit=1)[0] if text else ""
    return " ".join(text.split())[:160]


def properties(doc: Document, schema: Any, depth: int = 0) -> tuple[dict[str, Any], set[str], bool]:
    """An object schema's properties (allOf merged, oneOf/anyOf united), its required names, and
    whether it allows other properties."""
    schema = doc.deref(schema)
    props: dict[str, Any] = {}
    required: set[str] = set()
    if not isinstance(schema, dict) or depth > 8:
        return props, required, True
    open_ = schema.get("additionalProperties", None) not in (False, None) or \
        (not schema.get("properties") and not any(k in schema for k in ("allOf", "oneOf", "anyOf")))
    for name, sub in (schema.get("properties") or {}).items():
        props[str(name)] = doc.deref(sub)
    required |= {str(r) for r in schema.get("required") or []}
    for sub in schema.get("allOf") or []:
        p, r, o = properties(doc, sub, depth + 1)
        props.update(p)
        required |= r
        open_ = open_ or (o and not p)
    alternatives = (schema.get("oneOf") or []) + (schema.get("anyOf") or [])
    if alternatives:
        shared: set[str] | None = None
        for sub in alternatives:
            p, r, o = properties(doc, sub, depth + 1)
            props.update(p)
            open_ = open_ or o
            shared = r if shared is None else shared & r
        required |= shared or set()
    return props, required, open_


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
