"""Lark parse tree -> flowlang.ast. The only place that knows Lark's tree shapes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lark import Token, Transformer, Tree, v_args
from lark.tree import Meta

from flowlang import ast
from flowlang.source import Span
from flowlang.syntax.keywords import reserved_words
from flowlang.syntax.strings import ExprPart, StringSyntaxError, double_quoted, single_quoted

BINOPS = {op.value: op for op in ast.BinOp}

# Parses the code of one `{expr}` part at an absolute offset; installed by flowlang.syntax.parse.
SubParser = Callable[[str, int], ast.Expr]


MAX_INT_DIGITS = 4300  # Python's default bound for reading a whole number's text


class LocatedSyntaxError(Exception):
    """A problem the grammar cannot see (a string escape, a keyword used as a name) at an absolute offset."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


STRAY_END = "this `end` closes no block: each block (for each, if, try, map, function) has one `end`"


def stray_middle(word: str) -> str:
    """An `else` (or `on error`) outside the block it belongs to."""
    block = "an `if`" if word == "else" else "a `try`"
    return f"this `{word}` belongs to no block: it goes inside {block} block, before its `end`"


def _fold(items: list[Any], make: Callable[[Any, Any, Any], Any]) -> Any:
    result = items[0]
    for i in range(1, len(items), 2):
        result = make(result, items[i], items[i + 1])
    return result


@v_args(meta=True)
class ToAst(Transformer[Token, Any]):
    """Maps each grammar rule to its AST node; `offset` shifts positions of sub-parsed text."""

    def __init__(self, offset: int, sub_parser: SubParser, source: Any) -> None:
        super().__init__(visit_tokens=False)
        self.offset = offset
        self.sub_parser = sub_parser
        self.source = source
        self.reserved = reserved_words()

    # ---- positions -------------------------------------------------------------------
    def span(self, meta: Meta) -> Span:
        if meta.empty:
            return Span(self.offset, self.offset)
        return Span(meta.start_pos + self.offset, meta.end_pos + self.offset)

    def tspan(self, token: Token) -> Span:
        start = (token.start_pos or 0) + self.offset
        end = token.end_pos + self.offset if token.end_pos is not None else start + len(token)
        return Span(start, end)

    def var(self, token: Token) -> str:
        """A name that declares or reads a variable: keywords are reserved here."""
        if str(token) in self.reserved:
            span = self.tspan(token)
            text = getattr(self.source, "text", "")
            line_start = text.rfind("\n", 0, span.start) + 1
            line_end = text.find("\n", span.end)
            if text[line_start:line_end if line_end >= 0 else None].strip() in ("end", "else"):  # a line alone
                message = STRAY_END if str(token) == "end" else stray_middle(str(token))
                raise LocatedSyntaxError(message, span.start, span.end)
            raise LocatedSyntaxError(f"`{token}` is a keyword and cannot name a variable", span.start, span.end)
        return str(token)

    def node_span(self, node: Any) -> Span:
        if isinstance(node, Token):
            return self.tspan(node)
        span = getattr(node, "span", None)
        return span if isinstance(span, Span) else Span(self.offset, self.offset)

    # ---- programs ----------------------------------------------------------------------
    def module(self, meta: Meta, children: list[Any]) -> ast.Module:
        return ast.Module(tuple(children), self.source, self.span(meta))

    repl = module

    def expr_line(self, meta: Meta, children: list[Any]) -> ast.ExprStmt:
        return ast.ExprStmt(children[0], self.span(meta))

    def interpolation(self, meta: Meta, children: list[Any]) -> ast.Expr:
        result: ast.Expr = children[0]
        return result

    def block(self, meta: Meta, children: list[Any]) -> tuple[ast.Stmt, ...]:
        return tuple(children)

    # ---- strings -------------------------------------------------------------------------
    def string(self, meta: Meta, children: list[Any]) -> ast.Literal | ast.Interpolated:
        token: Token = children[0]
        span = self.tspan(token)
        if token.type == "SQ_STRING":
            return ast.Literal(single_quoted(str(token)), span)
        try:
            parts = double_quoted(str(token))
        except StringSyntaxError as e:
            start = span.start + 1 + e.offset
            raise LocatedSyntaxError(e.message, start, start + e.length) from None
        if len(parts) == 1 and not isinstance(parts[0], ExprPart):
            return ast.Literal(parts[0].text, span)
        out: list[str | ast.Expr] = []
        for part in parts:
            if isinstance(part, ExprPart):
                out.append(self.sub_parser(part.code, span.start + part.offset))
            else:
                out.append(part.text)
        return ast.Interpolated(tuple(out), span)

    def _plain_string(self, node: ast.Literal | ast.Interpolated, what: str) -> str:
        if isinstance(node, ast.Literal) and isinstance(node.value, str):
            return node.value
        raise LocatedSyntaxError(f"{what} cannot contain {{...}} interpolation", node.span.start, node.span.end)

    # ---- statements ------------------------------------------------------------------------
    def flow_decl(self, meta: Meta, c: list[Any]) -> ast.FlowDecl:
        return ast.FlowDecl(self._plain_string(c[0], "a flow name"), self.span(meta))

    def trigger_stmt(self, meta: Meta, c: list[Any]) -> ast.Trigger:
        args, kwargs = self._split_args(c[1])
        return ast.Trigger(str(c[0]), args, kwargs, self.span(meta), self.tspan(c[0]))

    def param_stmt(self, meta: Meta, c: list[Any]) -> ast.Param:
        return ast.Param(self.var(c[0]), c[1], self.span(meta), self.tspan(c[0]))

    def _split_args(self, arguments: list[Any] | None) -> tuple[tuple[ast.Expr, ...], tuple[ast.KwArg, ...]]:
        args = [a for a in arguments or [] if not isinstance(a, ast.KwArg)]
        kwargs = [a for a in arguments or [] if isinstance(a, ast.KwArg)]
        return tuple(args), tuple(kwargs)

    def use_stmt(self, meta: Meta, c: list[Any]) -> ast.Use:
        args, kwargs = self._split_args(c[2])
        return ast.Use(self.var(c[0]), str(c[1]), args, kwargs, self.span(meta), self.tspan(c[0]), self.tspan(c[1]))

    def arguments(self, meta: Meta, c: list[Any]) -> list[Any]:
        return [a for a in c if a is not None]

    def kwarg(self, meta: Meta, c: list[Any]) -> ast.KwArg:
        return ast.KwArg(str(c[0]), c[1], self.span(meta))

    def any_name(self, meta: Meta, c: list[Any]) -> Token:
        token: Token = c[0]
        return token

    def let_stmt(self, meta: Meta, c: list[Any]) -> ast.Let:
        return ast.Let(c[0], c[1], self.span(meta))

    def target(self, meta: Meta, c: list[Any]) -> ast.Target:
        return ast.Target(self.var(c[0]), tuple(c[1:]), self.span(meta), self.tspan(c[0]))

    def target_field(self, meta: Meta, c: list[Any]) -> ast.FieldStep:
        return ast.FieldStep(str(c[0]), self.span(meta))

    def target_index(self, meta: Meta, c: list[Any]) -> ast.IndexStep:
        return ast.IndexStep(c[0], self.span(meta))

    def operation(self, meta: Meta, c: list[Any]) -> ast.Operation:
        args, kwargs = self._split_args(c[2])
        return ast.Operation(
            str(c[0]), str(c[1]), args, kwargs, True, self.span(meta), self.tspan(c[0]), self.tspan(c[1])
        )

    def call_stmt(self, meta: Meta, c: list[Any]) -> ast.CallStmt:
        as_span = self.tspan(c[1]) if c[1] is not None else None
        return ast.CallStmt(c[0], self.var(c[1]) if c[1] is not None else None, self.span(meta), as_span)

    def lookup_stmt(self, meta: Meta, c: list[Any]) -> ast.LookupStmt:
        return ast.LookupStmt(c[0], self.var(c[1]), self.span(meta), self.tspan(c[1]))

    def op_args(self, meta: Meta, c: list[Any]) -> list[Any]:
        return list(c[0] or [])

    def destination(self, meta: Meta, c: list[Any]) -> ast.Operation:
        conn, op, arguments = c
        args, kwargs = self._split_args(arguments)
        conn_span = self.tspan(conn)
        op_span = self.tspan(op) if op is not None else conn_span
        return ast.Operation(
            str(conn), str(op) if op is not None else "", args, kwargs, arguments is not None,
            self.span(meta), conn_span, op_span,
        )

    def send_stmt(self, meta: Meta, c: list[Any]) -> ast.Send:
        value, dest, key, mode, as_name, batch = c
        as_span = self.tspan(as_name) if as_name is not None else None
        name = self.var(as_name) if as_name is not None else None
        return ast.Send(value, dest, name, batch, self.span(meta), as_span, key, mode)

    def send_key(self, meta: Meta, c: list[Any]) -> Any:
        return c[-1]

    def send_once(self, meta: Meta, c: list[Any]) -> str:
        return "once"

    def send_if_changed(self, meta: Meta, c: list[Any]) -> str:
        return "changed"

    def send_batch_as(self, meta: Meta, c: list[Any]) -> ast.Send:
        value, dest, key, mode, batch, as_name = c
        return ast.Send(value, dest, self.var(as_name), batch, self.span(meta), self.tspan(as_name), key, mode)

    def count(self, meta: Meta, c: list[Any]) -> ast.Count:
        token: Token = c[0]
        value: int | str = int(token) if token.type == "INT" else str(token)
        return ast.Count(value, self.span(meta))

    def map_stmt(self, meta: Meta, c: list[Any]) -> ast.MapStmt:
        return ast.MapStmt(c[0], self.var(c[1]), tuple(c[2:]), self.span(meta), self.tspan(c[1]))

    def map_path(self, meta: Meta, c: list[Any]) -> tuple[str, ...]:
        return tuple(str(t) for t in c)

    def map_assign(self, meta: Meta, c: list[Any]) -> ast.MapAssign:
        return ast.MapAssign(c[0], c[1], self.span(meta))

    def map_spread(self, meta: Meta, c: list[Any]) -> ast.MapSpread:
        return ast.MapSpread(c[0], self.span(meta))

    def map_drop(self, meta: Meta, c: list[Any]) -> ast.MapDrop:
        return ast.MapDrop(c[0], self.span(meta))

    def if_stmt(self, meta: Meta, c: list[Any]) -> ast.If:
        first = ast.Branch(c[0], c[1], self.node_span(c[0]))
        elifs = [x for x in c[2:-1] if isinstance(x, ast.Branch)]
        otherwise = c[-1]
        return ast.If((first, *elifs), otherwise, self.span(meta))

    def elif_clause(self, meta: Meta, c: list[Any]) -> ast.Branch:
        return ast.Branch(c[0], c[1], self.span(meta))

    def else_clause(self, meta: Meta, c: list[Any]) -> tuple[ast.Stmt, ...]:
        body: tuple[ast.Stmt, ...] = c[0]
        return body

    def for_stmt(self, meta: Meta, c: list[Any]) -> ast.ForEach:
        first, second, iterable, key, parallel, body = c
        names = (first,) if second is None else (first, second)
        return ast.ForEach(
            tuple(self.var(n) for n in names), iterable, parallel, body, self.span(meta),
            tuple(self.tspan(n) for n in names), key,
        )

    def skip_stmt(self, meta: Meta, c: list[Any]) -> ast.Skip:
        return ast.Skip(self.span(meta))

    def stop_stmt(self, meta: Meta, c: list[Any]) -> ast.Stop:
        return ast.Stop(self.span(meta))

    def fail_stmt(self, meta: Meta, c: list[Any]) -> ast.Fail:
        return ast.Fail(c[0], self.span(meta))

    def try_stmt(self, meta: Meta, c: list[Any]) -> ast.Try:
        body, name, handler = c
        err_span = self.tspan(name) if name is not None else None
        return ast.Try(body, self.var(name) if name is not None else None, handler, self.span(meta), err_span)

    def emit_stmt(self, meta: Meta, c: list[Any]) -> ast.Emit:
        return ast.Emit(c[0], self.span(meta))

    def log_stmt(self, meta: Meta, c: list[Any]) -> ast.Log:
        level = str(c[0]) if c[0] is not None else "info"
        return ast.Log(level, c[1], self.span(meta))

    def function_def(self, meta: Meta, c: list[Any]) -> ast.Function:
        name, params, body = c
        return ast.Function(self.var(name), tuple(params or ()), body, self.span(meta), self.tspan(name))

    def fn_params(self, meta: Meta, c: list[Any]) -> list[ast.FnParam]:
        return [p for p in c if p is not None]

    def fn_param(self, meta: Meta, c: list[Any]) -> ast.FnParam:
        return ast.FnParam(self.var(c[0]), c[1], self.span(meta))

    def return_stmt(self, meta: Meta, c: list[Any]) -> ast.Return:
        return ast.Return(c[0], self.span(meta))

    def import_stmt(self, meta: Meta, c: list[Any]) -> ast.Import:
        return ast.Import(self._plain_string(c[0], "an import path"), self.span(meta), allow_outside=c[1] is not None)

    def run_stmt(self, meta: Meta, c: list[Any]) -> ast.RunFlow:
        return ast.RunFlow(self._plain_string(c[0], "a flow path"), c[2], self.span(meta),
                           allow_outside=c[1] is not None)

    # ---- expressions -----------------------------------------------------------------------
    def if_expr(self, meta: Meta, c: list[Any]) -> ast.Conditional:
        return ast.Conditional(c[0], c[1], c[2], self.span(meta))

    def coalesce(self, meta: Meta, c: list[Any]) -> ast.Expr:
        result: ast.Expr = c[0]
        for right in c[1:]:
            result = ast.Coalesce(result, right, result.span.cover(right.span))
        return result

    def _logical(self, op: ast.LogicOp, c: list[Any]) -> ast.Expr:
        result: ast.Expr = c[0]
        for right in c[1:]:
            result = ast.Logical(op, result, right, result.span.cover(right.span))
        return result

    def or_expr(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._logical(ast.LogicOp.OR, c)

    def and_expr(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._logical(ast.LogicOp.AND, c)

    def not_op(self, meta: Meta, c: list[Any]) -> ast.Not:
        return ast.Not(c[0], self.span(meta))

    def _binary(self, left: ast.Expr, op: Tree[Token], right: ast.Expr) -> ast.Binary:
        tokens = [t for t in op.children if isinstance(t, Token)]
        text = " ".join(str(t) for t in tokens)
        op_span = Span(self.tspan(tokens[0]).start, self.tspan(tokens[-1]).end)
        return ast.Binary(BINOPS[text], left, right, left.span.cover(right.span), op_span)

    def comparison(self, meta: Meta, c: list[Any]) -> ast.Binary:
        return self._binary(c[0], c[1], c[2])

    def sum(self, meta: Meta, c: list[Any]) -> ast.Expr:
        result: ast.Expr = _fold(c, self._binary)
        return result

    product = sum

    def neg(self, meta: Meta, c: list[Any]) -> ast.Expr:
        operand = c[0]
        span = self.span(meta)
        if isinstance(operand, ast.Literal) and type(operand.value) in (int, Decimal):
            value = operand.value
            assert isinstance(value, int | Decimal)
            return ast.Literal(value.copy_negate() if type(value) is Decimal else -value, span)  # exact, any size
        return ast.Negate(operand, span)

    def field(self, meta: Meta, c: list[Any]) -> ast.Field:
        return ast.Field(c[0], str(c[1]), self.span(meta), self.tspan(c[1]))

    def index(self, meta: Meta, c: list[Any]) -> ast.Index:
        return ast.Index(c[0], c[1], self.span(meta))

    def func_call(self, meta: Meta, c: list[Any]) -> ast.FuncCall:
        args, kwargs = self._split_args(c[1])
        return ast.FuncCall(str(c[0]), args, kwargs, self.span(meta), self.tspan(c[0]))

    def name(self, meta: Meta, c: list[Any]) -> ast.Name:
        return ast.Name(self.var(c[0]), self.span(meta))

    def int_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        text = str(c[0])
        bound = sys.get_int_max_str_digits() or MAX_INT_DIGITS
        if len(text) > bound:  # int() refuses it (a ValueError deep in the parse, before)
            span = self.span(meta)
            raise LocatedSyntaxError(f"this whole number has {len(text):,} digits; a number may have at most "
                                     f"{bound:,} (write it as text, or as a decimal in E notation: 1e5000)",
                                     span.start, span.end)
        return ast.Literal(int(text), self.span(meta))

    def decimal_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        try:
            value = Decimal(str(c[0]))
        except ArithmeticError:  # decimal.InvalidOperation: an exponent past decimal.MAX_EMAX (or MIN_EMIN)
            span = self.span(meta)
            raise LocatedSyntaxError("this number's exponent is too large to be read (a decimal's exponent is "
                                     "at most 999,999,999,999,999,999 either way)", span.start, span.end) from None
        return ast.Literal(value, self.span(meta))

    def true_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        return ast.Literal(True, self.span(meta))

    def false_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        return ast.Literal(False, self.span(meta))

    def null_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        return ast.Literal(None, self.span(meta))

    def list_lit(self, meta: Meta, c: list[Any]) -> ast.ListLit:
        return ast.ListLit(tuple(x for x in c if x is not None), self.span(meta))

    def comp_for(self, meta: Meta, c: list[Any]) -> ast.CompFor:
        first, second, iterable, condition = c
        names = (first,) if second is None else (first, second)
        return ast.CompFor(
            tuple(self.var(n) for n in names), iterable, condition, self.span(meta), tuple(self.tspan(n) for n in names)
        )

    def list_comp(self, meta: Meta, c: list[Any]) -> ast.ListComp:
        return ast.ListComp(c[0], c[1], self.span(meta))

    def pair_key(self, meta: Meta, c: list[Any]) -> Token | ast.Expr:
        key: Token | ast.Expr = c[0]
        return key

    def _literal_key(self, key: Token | ast.Expr) -> ast.Expr:
        if isinstance(key, Token):
            return ast.Literal(str(key), self.tspan(key))
        return key

    def pair(self, meta: Meta, c: list[Any]) -> ast.Pair:
        return ast.Pair(self._literal_key(c[0]), c[1], self.span(meta))

    def object_lit(self, meta: Meta, c: list[Any]) -> ast.ObjectLit:
        return ast.ObjectLit(tuple(x for x in c if x is not None), self.span(meta))

    def object_comp(self, meta: Meta, c: list[Any]) -> ast.ObjectComp:
        key = c[0]
        key_expr: ast.Expr = ast.Name(str(key), self.tspan(key)) if isinstance(key, Token) else key
        return ast.ObjectComp(key_expr, c[1], c[2], self.span(meta))
