"""What the language server knows about one open document: its diagnostics (the parser's and the
checker's), the names it declares and where, and from those the answers to completion, hover and go
to definition. No I/O to the editor here (server.py does the protocol)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

from flowlang import ast
from flowlang.check import CheckedModule, check_module
from flowlang.check.scopes import GLOBALS, JOB_FIELDS
from flowlang.check.shapes import ReadKey, cassette_fields, read_key, shape_warnings
from flowlang.connectors.base import ConnectorSpec, OperationSpec
from flowlang.diagnostics import Diagnostic, Severity
from flowlang.environment import Environment
from flowlang.errors import ScriptError
from flowlang.lsp.positions import UTF16, span_range, word_at
from flowlang.resources import stdlib_path
from flowlang.runtime.builtins import Builtin
from flowlang.source import Source, Span
from flowlang.syntax import keywords, parse


@dataclass(frozen=True)
class Declaration:
    """A name the document declares: a param, connection, variable, loop variable, function..."""

    name: str
    kind: str
    span: Span  # the name where it is declared
    line: str  # the declaring line, stripped (what hover shows as the origin)
    scope: Span | None = None  # where it is visible; None: the rest of the file
    connector: str | None = None  # for a connection: its connector's name
    read_from: ReadKey | None = None  # the read whose records it holds, if known


@dataclass
class Analysis:
    source: Source
    base_dir: Path
    module: ast.Module | None = None
    checked: CheckedModule | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    declarations: list[Declaration] = field(default_factory=list)
    encoding: str = UTF16  # what an LSP position's column counts (the position encoding of initialize)


def analyze(text: str, name: str, path: Path | None, env: Environment, encoding: str = UTF16) -> Analysis:
    """Parse and check the text as the file at `path` (None: an unsaved buffer); positions count `encoding`."""
    base_dir = path.parent if path is not None else Path.cwd()
    if text.startswith("\ufeff"):  # a byte order mark the editor kept: a character of line 0 to the editor,
        text = " " + text[1:]  # so a space here (one UTF-16 unit, one offset): the parser drops it otherwise
    found = Analysis(Source(name, text, str(path) if path else None), base_dir, encoding=encoding)
    try:
        found.module = parse(found.source)
    except ScriptError as e:
        found.diagnostics = list(e.diagnostics)
        found.declarations = _salvaged(found.source, e)
        return found
    found.declarations = declarations(found.module)
    try:
        found.checked = check_module(found.module, env, base_dir, frozenset() if path else None, path)
    except ScriptError as e:
        found.diagnostics = list(e.diagnostics)
        return found
    # the warnings `flowlang check` prints: the checker's, and fields the known record shapes lack
    found.diagnostics = [*found.checked.warnings, *shape_warnings(found.checked)]
    return found


def _salvaged(source: Source, error: ScriptError, tries: int = 5) -> list[Declaration]:
    """The declarations of the text with the lines that do not parse blanked out (offsets kept), so names
    declared elsewhere in a file being typed still complete."""
    text = source.text
    for _ in range(tries):
        lines = {d.line for d in error.diagnostics if d.source.text == text}
        if not lines:
            return []
        kept = [(" " * len(line) if i + 1 in lines else line) for i, line in enumerate(text.split("\n"))]
        text = "\n".join(kept)
        try:
            return declarations(parse(Source(source.name, text, source.path)))
        except ScriptError as e:
            error = e
    return []


def lsp_diagnostics(analysis: Analysis) -> list[types.Diagnostic]:
    """The document's own diagnostics (those in files it imports are reported at the import)."""
    out = []
    for d in analysis.diagnostics:
        own = d.source.name == analysis.source.name and d.source.text == analysis.source.text
        span = d.span if own else _import_span(analysis, d)
        message = d.message if own else f"{d.source.location(d.span)}: {d.message}"
        if d.hint:
            message += f"\nhint: {d.hint}"
        severity = types.DiagnosticSeverity.Error if d.severity is Severity.ERROR else types.DiagnosticSeverity.Warning
        out.append(types.Diagnostic(range=span_range(analysis.source, span, analysis.encoding), message=message,
                                    severity=severity, code=d.code, source="flowlang"))
    return out


def _import_span(analysis: Analysis, d: Diagnostic) -> Span:
    for stmt in analysis.module.statements if analysis.module else ():
        if isinstance(stmt, ast.Import | ast.RunFlow) and Path(stmt.path).name == Path(d.source.name).name:
            return stmt.span
    return Span(0, 0)


# ---- declarations ---------------------------------------------------------------------------------

def declarations(module: ast.Module) -> list[Declaration]:
    source = module.source
    out: list[Declaration] = []

    reads: dict[str, ReadKey] = {}  # `call conn.op() as rows` -> rows holds conn.op's records

    def add(name: str, kind: str, span: Span, scope: Span | None = None, connector: str | None = None,
            read_from: ReadKey | None = None) -> None:
        line = source.line_text(source.line_col(span.start)[0]).strip()
        out.append(Declaration(name, kind, span, line, scope, connector, read_from))

    def walk(stmts: tuple[ast.Stmt, ...], scope: Span | None) -> None:
        for s in stmts:
            if isinstance(s, ast.Param):
                add(s.name, "param", s.name_span)
            elif isinstance(s, ast.Use):
                add(s.name, "connection", s.name_span, scope, s.connector)
            elif isinstance(s, ast.Let) and not s.target.steps and s.target.name != "state":
                add(s.target.name, "variable", s.target.name_span, scope)
            elif isinstance(s, ast.CallStmt | ast.LookupStmt) and s.as_name and s.as_span:
                reads[s.as_name] = read_key(s.operation)
                add(s.as_name, "variable", s.as_span, scope, read_from=reads[s.as_name])
            elif isinstance(s, ast.Send) and s.as_name and s.as_span:
                add(s.as_name, "variable", s.as_span, scope)
            elif isinstance(s, ast.MapStmt):
                add(s.target, "variable", s.target_span, scope)
            elif isinstance(s, ast.ForEach):
                held = reads.get(s.iterable.name) if isinstance(s.iterable, ast.Name) else None
                for n, sp in zip(s.names, s.name_spans, strict=False):
                    add(n, "loop variable", sp, s.span, read_from=held if len(s.names) == 1 else None)
                walk(s.body, s.span)
            elif isinstance(s, ast.If):
                for b in s.branches:
                    walk(b.body, scope)
                walk(s.otherwise or (), scope)
            elif isinstance(s, ast.Try):
                walk(s.body, scope)
                if s.error_name and s.error_span:
                    add(s.error_name, "error", s.error_span, s.span)
                walk(s.handler, scope)
            elif isinstance(s, ast.Function):
                add(s.name, "function", s.name_span)
                for p in s.params:
                    add(p.name, "function argument", Span(p.span.start, p.span.start + len(p.name)), s.span)
                walk(s.body, s.span)

    walk(module.statements, None)
    return out


def _first(found: list[Declaration], name: str, at: int) -> Declaration | None:
    """The declaration of `name` visible at offset `at` (the nearest enclosing one)."""
    visible = [d for d in found if d.name == name and (d.scope is None or d.scope.start <= at <= d.scope.end)]
    before = [d for d in visible if d.span.start <= at] or visible
    if not before:
        return None
    return min(before, key=lambda d: (0 if d.scope else 1, d.span.start))


# ---- completion -----------------------------------------------------------------------------------

MEMBER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)?$")
USE_CONNECTOR = re.compile(r"\buse\s+[A-Za-z_]\w*\s*=\s*([A-Za-z_]\w*)?$")
USE_ARGS = re.compile(r"\buse\s+[A-Za-z_]\w*\s*=\s*([A-Za-z_]\w*)\s*\(([^()]*)$")


def complete(analysis: Analysis, env: Environment, at: int) -> list[types.CompletionItem]:
    text = analysis.source.text
    line_start = text.rfind("\n", 0, at) + 1
    before = text[line_start:at]
    registry = env.connectors_for(analysis.base_dir)
    member = MEMBER.search(before)
    if member:
        return _members(analysis, env, member.group(1), at)
    if USE_CONNECTOR.search(before):
        return [types.CompletionItem(label=s.name, kind=types.CompletionItemKind.Module, detail=s.title,
                                     documentation=s.docs or None) for s in registry.all()]
    args = USE_ARGS.search(text[max(0, at - 4000):at])
    if args and re.search(r"(^|[(,\s])([A-Za-z_]\w*)?$", args.group(2)):
        spec = registry.get(args.group(1))
        given = set(re.findall(r"([A-Za-z_]\w*)\s*:", args.group(2)))
        if spec is not None:
            return [types.CompletionItem(
                label=k.name, kind=types.CompletionItemKind.Property, insert_text=f"{k.name}: ",
                detail=("required" if k.required else "optional") + (", secret" if k.secret else ""),
                documentation=k.description or None) for k in spec.config if k.name not in given]
    items: dict[str, types.CompletionItem] = {}
    for word in sorted(keywords.reserved_words() | keywords.soft_words()):
        items[word] = types.CompletionItem(label=word, kind=types.CompletionItemKind.Keyword)
    for g in GLOBALS:
        items[g] = types.CompletionItem(label=g, kind=types.CompletionItemKind.Variable, detail="global")
    for b in env.builtins.all().values():
        items[b.name] = types.CompletionItem(label=b.name, kind=types.CompletionItemKind.Function,
                                             detail=b.signature(), documentation=b.doc or None)
    if analysis.checked is not None:
        for name, info in analysis.checked.functions.items():
            items[name] = types.CompletionItem(label=name, kind=types.CompletionItemKind.Function,
                                               detail=_function_signature(info.node))
    for d in analysis.declarations:
        if d.scope is None or d.scope.start <= at <= d.scope.end:
            kind = {"function": types.CompletionItemKind.Function,
                    "connection": types.CompletionItemKind.Module}.get(d.kind, types.CompletionItemKind.Variable)
            items[d.name] = types.CompletionItem(label=d.name, kind=kind, detail=f"{d.kind}: {d.line}")
    return list(items.values())


def _connection_spec(analysis: Analysis, env: Environment, name: str, at: int) -> ConnectorSpec | None:
    found = _first(analysis.declarations, name, at)
    if found is None or found.kind != "connection" or found.connector is None:
        return None
    return env.connectors_for(analysis.base_dir).get(found.connector)


def _members(analysis: Analysis, env: Environment, head: str, at: int) -> list[types.CompletionItem]:
    spec = _connection_spec(analysis, env, head, at)
    if spec is not None:
        return [types.CompletionItem(label=op.name, kind=types.CompletionItemKind.Method,
                                     detail=_operation_signature(spec, op), documentation=op.description or None)
                for op in spec.operations.values()]
    if head == "job":
        return [types.CompletionItem(label=f, kind=types.CompletionItemKind.Field) for f in JOB_FIELDS]
    held = _first(analysis.declarations, head, at)
    if held is not None and held.read_from is not None:
        fields = cassette_fields(analysis.base_dir).get(held.read_from, {})
        return [types.CompletionItem(label=f, kind=types.CompletionItemKind.Field, detail=f"seen in {where}")
                for f, where in sorted(fields.items())]
    return []


def _operation_signature(spec: ConnectorSpec, op: OperationSpec) -> str:
    args = ", ".join(op.params)
    http = f"  ({op.method} {op.path})" if op.method and op.path else ""
    return f"{spec.name}.{op.name}({args}){http}"


def _function_signature(node: ast.Function) -> str:
    return f"function {node.name}({', '.join(p.name for p in node.params)})"


# ---- hover ----------------------------------------------------------------------------------------

def hover(analysis: Analysis, env: Environment, at: int) -> types.Hover | None:
    text = analysis.source.text
    found = word_at(text, at)
    if found is None:
        return None
    word, start, end = found
    where = span_range(analysis.source, Span(start, end), analysis.encoding)
    md = _hover_text(analysis, env, word, start, end)
    if md is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=md), range=where)


def _hover_text(analysis: Analysis, env: Environment, word: str, start: int, end: int) -> str | None:
    text = analysis.source.text
    registry = env.connectors_for(analysis.base_dir)
    dot = re.search(r"([A-Za-z_]\w*)\.$", text[max(0, start - 100):start])
    if dot:  # conn.op
        spec = _connection_spec(analysis, env, dot.group(1), start)
        if spec is not None and word in spec.operations:
            op = spec.operations[word]
            return f"```\n{_operation_signature(spec, op)}\n```\n{op.description}".rstrip()
        return None
    if re.match(r"\s*\(", text[end:end + 20]):
        builtin = env.builtins.get(word)
        info = analysis.checked.functions.get(word) if analysis.checked else None
        if info is not None:
            return f"```\n{_function_signature(info.node)}\n```\ndefined in {info.module.source.name}"
        if builtin is not None:
            return _builtin_text(builtin)
    if re.search(r"\buse\s+\w+\s*=\s*$", text[max(0, start - 100):start]):
        spec = registry.get(word)
        if spec is not None:
            keys = ", ".join(k.name + ("" if not k.required else " (required)") for k in spec.config)
            return f"**{spec.name}**: {spec.title} ({spec.origin})\n\n{spec.docs}\n\nconfig: {keys or 'none'}".strip()
    decl = _first(analysis.declarations, word, start)
    if decl is not None:
        line = analysis.source.line_col(decl.span.start)[0]
        origin = f"{decl.kind} `{decl.name}`, declared on line {line}:\n```flowlang\n{decl.line}\n```"
        if decl.kind == "connection" and decl.connector:
            spec = registry.get(decl.connector)
            if spec is not None:
                origin += f"\nconnector **{spec.name}** ({spec.title}): {', '.join(spec.operations)}"
        return origin
    if word in GLOBALS:
        return f"`{word}`: a global ({'the job: ' + ', '.join(JOB_FIELDS) if word == 'job' else 'see the language'})"
    return None


def _builtin_text(b: Builtin) -> str:
    """The signature, then the whole docstring (its examples indented, so Markdown shows them as code),
    as docs/builtins.md shows them."""
    return f"```\n{b.signature()}\n```\n{b.help}".rstrip()


# ---- definition -----------------------------------------------------------------------------------

def definition(analysis: Analysis, env: Environment, at: int) -> types.Location | None:
    text = analysis.source.text
    uri_here = Path(analysis.source.path).as_uri() if analysis.source.path else None
    for stmt in analysis.module.statements if analysis.module else ():
        if isinstance(stmt, ast.Import | ast.RunFlow) and stmt.span.start <= at <= stmt.span.end:
            target = (analysis.base_dir / stmt.path).resolve()
            return _file_location(target) if target.is_file() else None
    found = word_at(text, at)
    if found is None:
        return None
    word, start, _ = found
    if re.search(r"\buse\s+\w+\s*=\s*$", text[max(0, start - 100):start]):
        spec = env.connectors_for(analysis.base_dir).get(word)
        if spec is None:
            return None
        path = Path(spec.origin) if spec.origin.endswith(".toml") else stdlib_path(f"{spec.name}.toml") \
            if spec.origin == "stdlib" else None
        return _file_location(path) if path is not None and path.is_file() else None
    if analysis.checked is not None and word in analysis.checked.functions and \
            re.match(r"\s*\(", text[start + len(word):start + len(word) + 20]):
        info = analysis.checked.functions[word]
        src = info.module.source
        if src.path and src.path != analysis.source.path:
            return types.Location(uri=Path(src.path).as_uri(),
                                  range=span_range(src, info.node.name_span, analysis.encoding))
    decl = _first(analysis.declarations, word, start)
    if decl is None or uri_here is None:
        return None
    return types.Location(uri=uri_here, range=span_range(analysis.source, decl.span, analysis.encoding))


def _file_location(path: Path) -> types.Location:
    start = types.Position(line=0, character=0)
    return types.Location(uri=path.resolve().as_uri(), range=types.Range(start=start, end=start))
