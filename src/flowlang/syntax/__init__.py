"""Syntax: text -> flowlang.ast, and syntax errors with positions. The only package that uses Lark."""

from __future__ import annotations

import sys
from typing import Literal as StartRule

if "regex" not in sys.modules:  # Lark imports the `regex` engine only for Lark(regex=True), which flowlang
    sys.modules["regex"] = None  # type: ignore[assignment]  # never asks for: ~7 ms of every start saved
    try:
        import lark  # noqa: F401
    finally:
        del sys.modules["regex"]

from lark.exceptions import UnexpectedInput, VisitError

from flowlang import ast
from flowlang.diagnostics import Diagnostic
from flowlang.errors import FlowSyntaxError
from flowlang.source import MAX_SOURCE, Source, Span
from flowlang.syntax.depth import CHAIN_OPERATORS, MAX_NESTING, TooDeep, measure
from flowlang.syntax.errors import syntax_error
from flowlang.syntax.grammar import parser
from flowlang.syntax.transformer import LocatedSyntaxError, ToAst

__all__ = ["parse", "parse_expression"]


def _parse_tree(source: Source, text: str, start: str, offset: int, base: int = 0) -> ast.Module | ast.Expr:
    """Parse `text` (at `offset` in the source) from the rule `start`; `base` is how deep it sits
    (an interpolation is as deep as its string)."""
    def sub_parse(code: str, at: int) -> ast.Expr:
        result = _parse_tree(source, code, "interpolation", at, depths.at(at, base))
        assert not isinstance(result, ast.Module)
        return result

    try:
        tree = parser().parse(text, start=start)
    except UnexpectedInput as e:
        if offset:
            raise _shifted(e, source, text, offset) from None
        raise syntax_error(source, e, text) from None
    try:
        depths = measure(tree, base, offset)
    except TooDeep as e:
        raise too_deep(source, e, offset) from None
    try:
        result: ast.Module | ast.Expr = ToAst(offset, sub_parse, source).transform(tree)
    except VisitError as e:
        inner = e.orig_exc
        if isinstance(inner, LocatedSyntaxError):
            diag = Diagnostic("syntax", inner.message, source, Span(inner.start, inner.end))
            raise FlowSyntaxError([diag]) from None
        if isinstance(inner, FlowSyntaxError):
            raise inner from None
        raise
    return result


def too_deep(source: Source, error: TooDeep, offset: int) -> FlowSyntaxError:
    """The nesting limit's diagnostic; a row of operators (`a + b + ...`, each one a level deeper for
    every pass that walks the tree) is named as what it is, with what to write instead."""
    pos = error.position + offset
    message = (f"the script nests more than {MAX_NESTING} levels deep here (expressions, brackets and "
               "blocks together)")
    hint = "split it: give a part a name with let, or move it into a function"
    if error.chain is not None:
        rule, operands = error.chain
        message += (f": this expression joins {operands} operands with {CHAIN_OPERATORS[rule]}, and each "
                    "operator counts as one level")
        if rule == "sum":
            hint = ('add many numbers with sum([a, b, ...]), put text together with join([a, b, ...]) '
                    'or "{a}{b}", or give a part a name with let')
    return FlowSyntaxError([Diagnostic("syntax", message, source, Span(pos, pos + 1), hint)])


def _shifted(err: UnexpectedInput, source: Source, code: str, offset: int) -> FlowSyntaxError:
    """A syntax error inside `{...}` of a string, placed in the enclosing source."""
    inner = syntax_error(Source(source.name, code), err, code)
    d = inner.diagnostics[0]
    span = Span(d.span.start + offset, d.span.end + offset)
    message = d.message.replace("the end of the input", "`}`")
    hint = d.hint
    if hint is None and code.lstrip()[:1] in ('\\', "'", '"', ""):  # `"{\"a\": 1}"`: JSON written in a string
        hint = ("a { in a \"...\" string starts a value: write \\{ for a brace, or the text in '...' quotes "
                "(no interpolation): json_parse('{\"a\": 1}')")
    return FlowSyntaxError([Diagnostic("syntax", f"in string interpolation: {message}", source, span, hint)])




def parse(source: Source, mode: StartRule["module", "repl"] = "module") -> ast.Module:
    """Parse a whole flow (or, with mode='repl', statements and bare expressions)."""
    if source.text.startswith("\ufeff"):  # a byte order mark (Notepad writes one): not part of the flow,
        source = Source(source.name, source.text[1:], source.path)  # nor counted in its columns
    if len(source.text) > MAX_SOURCE:
        raise FlowSyntaxError([Diagnostic(
            "syntax", f"the script is {len(source.text):,} characters long, more than the {MAX_SOURCE:,} a flow "
            "may have; keep data in files", source, Span(0, 1))])
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    try:
        result = _parse_tree(source, text, mode, 0)
    except RecursionError:
        raise FlowSyntaxError([Diagnostic(
            "syntax", "the script nests too deeply to be read", source, Span(0, 1))]) from None
    assert isinstance(result, ast.Module)
    return result


def parse_expression(source: Source) -> ast.Expr:
    """Parse one expression (the whole text)."""
    try:
        result = _parse_tree(source, source.text, "interpolation", 0)
    except RecursionError:
        raise FlowSyntaxError([Diagnostic(
            "syntax", "the expression nests too deeply to be read", source, Span(0, 1))]) from None
    assert not isinstance(result, ast.Module)
    return result
