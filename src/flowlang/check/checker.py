"""The checker: the statements that reach outside the flow (use, call, lookup, send, import, run),
and the entry points that check a whole module and collect every diagnostic."""

from __future__ import annotations

from pathlib import Path

from flowlang import ast
from flowlang.check.constants import constant_value
from flowlang.check.hints import did_you_mean, near_misses
from flowlang.check.http_arguments import argument_diagnostics, mapping_diagnostics, path_value_diagnostics
from flowlang.check.pages import page_diagnostics
from flowlang.check.program import CheckedModule
from flowlang.check.scopes import Binding, HostBinding, Kind, Scope
from flowlang.check.sql_text import params_problem, query_write_problem
from flowlang.check.statements import Ctx, StatementChecker
from flowlang.connectors.base import ConnectorSpec, OperationSpec
from flowlang.diagnostics import Diagnostic, Severity
from flowlang.errors import CheckError, ScriptError
from flowlang.runtime.flow_folder import PathRefused, inside
from flowlang.source import Span

SQL_TEXT_OPERATIONS = ("query", "execute")
MAX_FILE_DEPTH = 50  # files that import or run one another, the flow first


class Checker(StatementChecker):
    """Checks one module; imported and run files get Checkers of their own."""

    # ---- use ------------------------------------------------------------------------------
    def stmt_Use(self, node: ast.Use, scope: Scope, ctx: Ctx) -> None:
        for a in node.args:
            self.expr(a, scope)
        before = len(self.diagnostics)
        for k in node.kwargs:
            self.expr(k.value, scope)
        spec = self.connectors.get(node.connector)
        if spec is not None and len(self.diagnostics) > before:
            self.base_url_template_hints(node, spec, before)
        broken = getattr(self.connectors, "broken", {}).get(node.connector)
        if broken:  # a connector file that failed (or may not be used) never lets another one stand in
            problem, _, excerpt = broken.partition("\n")  # below its first line: the file's own place
            self.diagnostics.append(Diagnostic("connector-file", f"the connector '{node.connector}' cannot be "
                                               f"used: {problem}", self.source, node.connector_span,
                                               note=excerpt or None))
            spec = None
        elif spec is None:
            names = self.connectors.names()
            # connectors/NAME.toml whose `name` is another: the file's name is what a user writes first
            inside = next((s for n in names if (s := self.connectors.get(n)) is not None
                           and s.origin.endswith(".toml") and Path(s.origin).stem == node.connector), None)
            self.error("unknown-connector", f"unknown connector '{node.connector}'", node.connector_span,
                       f"connectors/{node.connector}.toml names its connector '{inside.name}' (name = "
                       f"\"{inside.name}\"): use {inside.name}(...), or name the file after it"
                       if inside is not None else
                       did_you_mean(node.connector, names) or f"available: {', '.join(names)}")
        else:
            self.check_config(node, spec)
            self.checked.specs[node] = spec
        found = scope.find(node.name)
        if found is not None and not (found[0].kind is Kind.CONNECTION and self.replaces(node.name)):
            self.error("duplicate", f"'{node.name}' is already defined", node.name_span)
            return
        binding = self.declare(node.name, Kind.CONNECTION, node.name_span, scope, (node, 0))
        binding.connector = spec
        self.checked.connections[node.name] = binding

    def base_url_template_hints(self, node: ast.Use, spec: ConnectorSpec, since: int) -> None:
        """`base_url: "http://localhost:8080/{company_id}"`: the double quotes read {company_id} as a
        variable (none there); a key of the connector's configuration says the file's placeholder was
        meant, which the connector fills only in a single-quoted base_url."""
        given = next((k.value for k in node.kwargs if k.name == "base_url"), None)
        if not isinstance(given, ast.Interpolated) or spec.origin in ("builtin", "binding"):
            return
        from flowlang.connectors.http.spec import HTTP_CONFIG  # only when there is such a mistake to explain

        keys = {k.name for k in spec.config} - {k.name for k in HTTP_CONFIG}  # the file's own [config]
        names = {part.span: part.name for part in given.parts if isinstance(part, ast.Name) and part.name in keys}
        for i in range(since, len(self.diagnostics)):
            d = self.diagnostics[i]
            name = names.get(d.span)
            if d.code == "unknown-name" and name is not None:
                template = self.single_quoted(given)
                self.diagnostics[i] = Diagnostic(
                    d.code, d.message, d.source, d.span,
                    f"{{{name}}} is a key of {spec.name}'s configuration: to have the connector fill it, write the "
                    f"base_url in single quotes: {template}")

    def single_quoted(self, text: ast.Interpolated) -> str:
        """A "..." text with {expr} parts as the '...' template the connector fills: the hint of a
        placeholder the flow could not resolve."""
        return "'" + "".join(p if isinstance(p, str) else "{" + self.source.text[p.span.start:p.span.end] + "}"
                             for p in text.parts) + "'"

    def check_config(self, node: ast.Use, spec: ConnectorSpec) -> None:
        allowed = [k.name for k in spec.config]
        if node.args:
            self.error("config", f"{spec.name}() takes its configuration as key: value pairs "
                       f"({', '.join(allowed)})", node.args[0].span)
        given = set()
        for k in node.kwargs:
            if k.name in given:
                self.error("config", f"'{k.name}' is given twice", k.span)
            given.add(k.name)
        missing = [k.name for k in spec.config if k.required and k.name not in given]
        if not spec.extra_config:
            unknown = [k for k in node.kwargs if spec.config_key(k.name) is None]
            for miss in near_misses(unknown, [], missing) if unknown else []:
                hint = miss.hint if miss.meant else (did_you_mean(miss.name, allowed)
                                                     or f"allowed keys: {', '.join(allowed) or 'none'}")
                self.error("config", f"{spec.name} has no configuration key '{miss.name}'", miss.span, hint)
                if miss.meant in missing:
                    missing.remove(miss.meant)
        if missing:
            self.error("config", f"{spec.name} needs {', '.join(repr(m) for m in missing)}", node.span,
                       f"allowed keys: {', '.join(allowed)}")
        if spec.value_problem is not None:
            for k in node.kwargs:
                known, value = constant_value(k.value)
                problem = spec.value_problem(k.name, value) if known else None
                if problem is not None:
                    self.error("config", problem, k.value.span)
        if spec.config_problem is not None:
            constants = {k.name: value for k in node.kwargs for known, value in [constant_value(k.value)] if known}
            found = spec.config_problem(constants, given)
            if found is not None:
                at = next(k.value.span for k in node.kwargs if k.name == found[0])
                self.error("config", found[1], at)
        if spec.folder_problem is not None:
            constants = {k.name: value for k in node.kwargs for known, value in [constant_value(k.value)] if known}
            found = spec.folder_problem(constants, given, self.base_dir)
            if found is not None:
                at = next(k.value.span for k in node.kwargs if k.name == found[0])
                self.error("outside", found[1], at)

    # ---- operations ---------------------------------------------------------------------------
    def operation(self, op: ast.Operation, scope: Scope, ctx: Ctx, sending: bool) -> OperationSpec | None:
        before = len(self.diagnostics)
        for a in op.args:
            self.expr(a, scope)
        if op.args and isinstance(op.args[0], ast.Interpolated) and len(self.diagnostics) > before:
            self.path_template_hints(op, before)
        for k in op.kwargs:
            self.expr(k.value, scope)
        found = scope.find(op.connection)
        binding = found[0] if found is not None else None
        if binding is None or binding.kind is not Kind.CONNECTION:
            return self.host_operation(op, scope, binding)
        self.resolution.refs[op] = self.frame_depth_ref(binding, scope)
        spec = binding.connector
        if spec is None:
            return None
        name = op.op
        if not name:
            if not sending or spec.default_write is None:
                self.error("unknown-operation", f"name the operation of {op.connection} ({spec.name}): "
                           f"{op.connection}.<operation>(...)", op.span,
                           f"operations: {', '.join(sorted(spec.operations))}")
                return None
            name = spec.default_write
        if spec.any_operation:
            return None
        op_spec = spec.operations.get(name)
        if op_spec is None:
            self.error("unknown-operation", f"{spec.name} has no operation '{name}'", op.op_span,
                       did_you_mean(name, spec.operations) or f"operations: {', '.join(sorted(spec.operations))}")
            return None
        keywords = [k.name for k in op.kwargs]
        allowed = None if op_spec.keywords is None else [*op_spec.params, *op_spec.keywords]
        given = set(op_spec.params[:len(op.args)]) | set(keywords)
        problems = op_spec.argument_problems(len(op.args), keywords)
        if spec.name == "sql" and name in SQL_TEXT_OPERATIONS and len(op.args) > 1 and "params" not in keywords:
            # `db.query("... where code = ?", code)`, as Python's sqlite3 takes its values: they go by name
            from flowlang.connectors.sql import NAMED_PARAMETERS

            problems = [p for p in problems if "positional argument" not in p]
            self.error("arguments", f"{name}() takes the SQL text, then its values as params: {{...}}, by name",
                       Span(op.args[1].span.start, op.args[-1].span.end), NAMED_PARAMETERS)
        self.report_arguments(op_spec.name, problems, op.kwargs, allowed,
                              [r for r in op_spec.required if r not in given], op.span)
        self.resolution.op_specs[op] = op_spec
        if spec.name == "http":
            self.diagnostics.extend(page_diagnostics(op.kwargs, self.source))
            self.diagnostics.extend(argument_diagnostics(name, op.args, op.kwargs, sending, self.source))
        elif spec.origin != "builtin":  # a connector file's operation: its query: and headers: too
            self.diagnostics.extend(mapping_diagnostics(op.kwargs, self.source))
        if spec.name == "sql" and name in SQL_TEXT_OPERATIONS and op.args and isinstance(op.args[0], ast.Interpolated):
            self.checked.warnings.append(Diagnostic(
                "sql-interpolation", f"{op.connection}.{name}() is given SQL built by interpolation: a value "
                "pasted into SQL can change the statement (SQL injection)", self.source, op.args[0].span,
                'pass the values as parameters: db.query("select * from t where id = :id", params: {id: x.id})',
                Severity.WARNING))
        if spec.name == "sql" and name == "query" and op.args:
            known, sql = constant_value(op.args[0])
            problem = query_write_problem(op.connection, sql) if known and isinstance(sql, str) else None
            if problem is not None:
                self.error("query-writes", problem[0], op.args[0].span, problem[1])
        if spec.name == "sql" and name in SQL_TEXT_OPERATIONS and op.args:
            known, sql = constant_value(op.args[0])
            params = next((k.value for k in op.kwargs if k.name == "params"), None)
            mismatch = params_problem(name, sql, op.args[0].span, params) if known and isinstance(sql, str) else None
            if mismatch is not None:
                self.error("sql-params", mismatch[0], mismatch[1])
            dialect = self.sql_dialect(op.connection)
            if mismatch is None and known and isinstance(sql, str) and dialect is not None and len(op.args) == 1:
                from flowlang.connectors.sql import positional_marks_problem

                marks = positional_marks_problem(name, sql, dialect)
                if marks is not None:
                    self.error("sql-params", marks, op.args[0].span)
        return op_spec

    def sql_dialect(self, connection: str) -> str | None:
        """The database of a sql connection whose url: is a constant ("sqlite:///x.db": sqlite), else None."""
        use = next((u for u in self.checked.specs if u.name == connection), None)
        url = next((k.value for k in use.kwargs if k.name == "url"), None) if use is not None else None
        known, value = constant_value(url) if url is not None else (False, None)
        if not known or not isinstance(value, str) or ":" not in value:
            return None
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower()
        return {"sqlite": "sqlite", "mysql": "mysql", "mariadb": "mariadb"}.get(scheme, "other")

    def path_template_hints(self, op: ast.Operation, since: int) -> None:
        """`api.get("/customers/{id}", id: 1)`: the double quotes read {id} as a variable (none there);
        the keyword argument of that name says a path template was meant, which takes single quotes."""
        path = op.args[0]
        assert isinstance(path, ast.Interpolated)
        given = {k.name for k in op.kwargs}
        names = {part.name: part for part in path.parts if isinstance(part, ast.Name) and part.name in given}
        for i in range(since, len(self.diagnostics)):
            d = self.diagnostics[i]
            named = next((n for n in names.values() if n.span == d.span), None)
            if d.code == "unknown-name" and named is not None:
                template = self.single_quoted(path)
                self.diagnostics[i] = Diagnostic(
                    d.code, d.message, d.source, d.span,
                    f"to fill {{{named.name}}} from the argument {named.name}:, write the path in single quotes, "
                    f"as a template: {template}")

    def host_operation(self, op: ast.Operation, scope: Scope, binding: Binding | None) -> OperationSpec | None:
        if binding is None and (self.bindings is None or op.connection in self.bindings):
            self.resolution.refs[op] = HostBinding(op.connection)
            self.checked.host_operations.setdefault(op.connection, set()).add(op.op)
            return None
        if binding is not None:
            self.error("not-connection", f"'{op.connection}' is a {binding.kind.value}, not a connection",
                       op.connection_span)
            return None
        pool = [n for n, b in scope.visible().items() if b.kind is Kind.CONNECTION] + sorted(self.bindings or ())
        self.error("unknown-connection", f"unknown connection '{op.connection}'", op.connection_span,
                   did_you_mean(op.connection, pool) or "open it first: use name = connector(...)")
        return None

    def stmt_CallStmt(self, node: ast.CallStmt, scope: Scope, ctx: Ctx) -> None:
        self.operation(node.operation, scope, ctx, sending=False)
        if node.as_name is not None:
            binding = self.assign(node.as_name, node.as_span or node.span, scope, ctx, (node, 0))
            if binding is not None:
                self.resolution.pending_streams.append((node, binding))
            elif node.as_name == "state":
                self.resolution.materialize.add(node)

    def stmt_LookupStmt(self, node: ast.LookupStmt, scope: Scope, ctx: Ctx) -> None:
        op_spec = self.operation(node.operation, scope, ctx, sending=False)
        if op_spec is not None and op_spec.changes_data and op_spec.takes_batch:  # file.write, sql.upsert, ...
            op = node.operation
            self.error("lookup-write", f"`lookup` reads (the first record of an answer, cached per run), and "
                       f"{op.connection}.{op.op}() writes records", op.span,
                       "to write a record, send it: " + (
                           f"send {self.source.text[op.args[0].span.start:op.args[0].span.end]} to "
                           f"{op.connection}.{op.op}" if op.args and not op.kwargs else
                           f"send RECORD to {self.source.text[op.span.start:op.span.end]}"))
        binding = self.assign(node.as_name, node.as_span, scope, ctx, (node, 0))
        if binding is not None:
            binding.lookup = True

    def stmt_Send(self, node: ast.Send, scope: Scope, ctx: Ctx) -> None:
        self.expr(node.value, scope, "send" if isinstance(node.value, ast.Name) else "other")
        op_spec = self.operation(node.destination, scope, ctx, sending=True)
        if op_spec is not None:
            self.send_target(node.destination, op_spec, scope)
            self.diagnostics.extend(path_value_diagnostics(node, op_spec.path, node.destination.connection,
                                                           op_spec.name, self.source))
        if node.key is not None:
            self.expr(node.key, scope, "other")
            if node.mode is None:
                self.error("send", "a send's `key` goes with `once` or `if changed` (the ledger keeps sends by key)",
                           node.span, "write: send r to out key r.number once")
        if node.batch is not None:
            self.count(node.batch, scope, "batch")
            if op_spec is not None and not op_spec.takes_batch:
                self.error("batch", f"the operation '{op_spec.name}' does not take batches", node.batch.span,
                           "declare `batch` on the operation in a connector file, or send one record at a time")
            elif op_spec is not None and op_spec.max_batch and isinstance(node.batch.value, int) \
                    and node.batch.value > op_spec.max_batch:
                self.error("batch", f"'{op_spec.name}' takes at most {op_spec.max_batch} records a batch",
                           node.batch.span)
        if node.as_name is not None:
            self.assign(node.as_name, node.as_span or node.span, scope, ctx, (node, 0))

    def send_target(self, op: ast.Operation, op_spec: OperationSpec, scope: Scope) -> None:
        """A send to an operation of a connection that takes sends only at its writes (db.query, f.read)."""
        found = scope.find(op.connection)
        spec = found[0].connector if found is not None else None
        if spec is None or not spec.sends_to_writes_only or (op_spec.changes_data and op_spec.takes_batch):
            return
        writes = sorted(n for n, o in spec.operations.items() if o.changes_data and o.takes_batch)
        self.error("send-target", f"{op.connection}.{op_spec.name}() does not write records, so it cannot "
                   "take a send", op.span,
                   f"send to {' or '.join(f'{op.connection}.{w}' for w in writes)}"
                   + (f" (or call {op.connection}.{op_spec.name}(...) to run it)" if op_spec.changes_data else ""))

    # ---- other files ----------------------------------------------------------------------
    def resolve_path(self, relative: str, span: Span, what: str, allow_outside: bool = False) -> Path | None:
        """The file an `import` or `run` line names: it exists, and stays in the flow's folder unless the
        line says allow_outside (runtime/flow_folder.py, the rule `file()` follows too)."""
        try:
            path = inside(self.base_dir, relative, allow_outside=allow_outside,
                          switch=f'`{what} "{relative[:60]}" allow_outside`').resolve()
            found = path.is_file()
        except PathRefused as e:
            self.error("outside", f"cannot {what} it: {e.message}", span)
            return None
        except OSError as e:
            self.error("missing-file", f"cannot {what} '{relative[:200]}': {e.strerror}", span)
            return None
        if not found:
            self.error("missing-file", f"cannot {what} '{relative[:200]}': no such file (looked in {self.base_dir})",
                       span)
            return None
        return path

    def stmt_Import(self, node: ast.Import, scope: Scope, ctx: Ctx) -> None:
        path = self.resolve_path(node.path, node.span, "import", node.allow_outside)
        if path is None:
            return
        if path in self.stack:
            chain = " -> ".join(p.name for p in self.stack)
            self.error("import-cycle", f"'{node.path}' imports itself (through {chain})", node.span)
            return
        if self.too_deep(path, node.span):
            return
        lib = self.check_library(path)
        if lib is None:
            return
        self.checked.imports[node] = lib
        for stmt in lib.module.statements:
            if isinstance(stmt, ast.Let) and not stmt.target.steps:
                self.imported_lets.setdefault(stmt.target.name, node.path)
        for name, info in lib.functions.items():
            if name in self.functions and self.functions[name] is not info and not self.replaces(name):
                self.error("duplicate", f"the imported function '{name}' is already defined", node.span)
                continue
            if self.functions.get(name) is not info:
                self.checked.own_functions.pop(name, None)  # one typed in the REPL, replaced by the file's
            self.functions[name] = info
        pairs: list[tuple[Binding, Binding]] = []
        for name, lib_binding in lib.connections.items():
            found = scope.find(name)
            if found is not None and not (found[0].kind is Kind.CONNECTION and self.replaces(name)):
                self.error("duplicate", f"the imported connection '{name}' is already defined", node.span)
                continue
            mine = self.declare(name, Kind.CONNECTION, node.span, scope, (node, len(pairs)))
            mine.connector = lib_binding.connector
            pairs.append((mine, lib_binding))
        self.checked.imported_connections[node] = pairs

    def stmt_RunFlow(self, node: ast.RunFlow, scope: Scope, ctx: Ctx) -> None:
        if node.params is not None:
            self.expr(node.params, scope)
        path = self.resolve_path(node.path, node.span, "run", node.allow_outside)
        if path is None:
            return
        if path in self.stack:
            self.error("run-cycle", f"'{node.path}' would run itself", node.span)
            return
        if self.too_deep(path, node.span):
            return
        child = self.check_file(path, library=False)
        if child is not None:
            self.checked.runs[node] = path
            self.check_run_params(node, child)

    def check_run_params(self, node: ast.RunFlow, child: CheckedModule) -> None:
        """`run "child.flow"` without a param the child needs (one with no default), or `with {m: 2}` of a
        param it does not declare, ran the statements before it and then ended the run ('the flow child.flow
        cannot run: missing param n'): both are known here when `with` is an object written out (or absent)."""
        if node.params is not None and not isinstance(node.params, ast.ObjectLit):
            return
        pairs = node.params.pairs if node.params is not None else ()
        given: dict[str, Span] = {}
        for pair in pairs:
            if not (isinstance(pair.key, ast.Literal) and isinstance(pair.key.value, str)):
                return  # a computed key: the run judges it
            given[pair.key.value] = pair.key.span
        declared = [p.name for p in child.params]
        for name, span in given.items():
            if name not in declared:
                self.error("run-param", f"{node.path} has no param '{name}' "
                           f"(its params: {', '.join(declared) or 'none'})", span, did_you_mean(name, declared))
        missing = [p.name for p in child.params if p.default is None and p.name not in given]
        if missing:
            needed = ", ".join(f"{m}: ..." for m in missing)
            self.error("run-param", f"{node.path} needs the param{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)}, which this `run` does not give", node.span,
                       f"give {'them' if len(missing) > 1 else 'it'}: run \"{node.path}\" with {{{needed}}}")

    def too_deep(self, path: Path, span: Span) -> bool:
        """Files that import or run one another MAX_FILE_DEPTH deep: each is checked inside the one before
        it, and hundreds of them ran Python's stack out ('maximum recursion depth exceeded')."""
        if len(self.stack) < MAX_FILE_DEPTH:
            return False
        names = [p.name for p in (*self.stack, path)]
        chain = " -> ".join([*names[:2], "...", *names[-2:]])
        self.error("file-depth", f"files import or run one another more than {MAX_FILE_DEPTH} deep here ({chain}): "
                   "import or run the files this one needs from the flow itself", span)
        return True

    def check_library(self, path: Path) -> CheckedModule | None:
        """An imported file, checked once per program however many files import it (a diamond shares one
        CheckedModule, so its functions and its body exist once); None when it has errors."""
        if path not in self.libraries:
            self.libraries[path] = self.check_file(path, library=True)
        return self.libraries[path]

    def check_file(self, path: Path, library: bool) -> CheckedModule | None:
        try:
            module = self.env.parse_file(path)
            child = Checker(module, self.env, path.parent, None if library else frozenset(),
                            (*self.stack, path), library=library, libraries=self.libraries if library else None)
            return child.run_or_raise()
        except ScriptError as e:
            self.diagnostics.extend(e.diagnostics)
            return None
        except OSError as e:
            self.error("missing-file", f"cannot read '{path}': {e.strerror}", self.module.span)
            return None

    def run_or_raise(self) -> CheckedModule:
        checked = self.run()
        if self.diagnostics:
            raise CheckError(self.diagnostics)
        return checked

