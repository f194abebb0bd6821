"""Programs generated from the grammar's productions always parse, and their mutations only ever give
syntax errors with a real position (FLOWLANG_FUZZ_EXAMPLES raises the number of inputs)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang import ast
from flowlang.errors import FlowSyntaxError
from flowlang.source import Source
from flowlang.syntax import parse
from flowlang.syntax.format import format_text

EXAMPLES = int(os.environ.get("FLOWLANG_FUZZ_EXAMPLES", "200"))
NAMES = st.sampled_from(["a", "b", "order", "x1", "_y", "items"])
FIELDS = st.sampled_from(["b", "end", "to", "in", "value", "error", "if"])  # keywords are fine after a dot
OPS = st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or", "??"])
SAFE_TEXT = st.text(alphabet="abc XYZ019-_.,:;!", max_size=8)

atoms = st.one_of(
    NAMES,
    st.integers(0, 10**6).map(str),
    st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False).map(str),
    SAFE_TEXT.map(lambda t: f'"{t}"'),
    SAFE_TEXT.map(lambda t: f"'{t}'"),
    st.tuples(SAFE_TEXT, NAMES).map(lambda t: f'"{t[0]}{{{t[1]}}}"'),
    st.sampled_from(["true", "false", "null", "env.HOME", "job.id", "state.cursor", "input"]),
)


def compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, OPS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, FIELDS).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
        inner.map(lambda e: f"(not {e})"),
        inner.map(lambda e: f"(-{e})"),
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(FIELDS, inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in dict(kv).items()) + "}"),
        st.tuples(inner, NAMES, inner, inner).map(lambda t: f"[{t[0]} for {t[1]} in {t[2]} if {t[3]}]"),
        st.tuples(inner, inner).map(lambda t: f"{{k: {t[0]} for k, v in {t[1]}}}"),
        st.tuples(inner, inner, inner).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
        st.tuples(st.sampled_from(["lower", "coalesce", "len", "round"]), st.lists(inner, min_size=1, max_size=3))
        .map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(inner, inner).map(lambda t: f"max({t[0]}, key: {t[1]})"),
    )


EXPRESSIONS = st.recursive(atoms, compound, max_leaves=12)


def statements(depth: int, io: bool = True, expressions: st.SearchStrategy[str] = EXPRESSIONS
               ) -> st.SearchStrategy[list[str]]:
    """Statement lines nested `depth` deep; io=False leaves out call, lookup and send (programs that run
    without connections: tests/test_engine_differential.py, which also brings its own expressions)."""
    pure = [
        st.tuples(NAMES, expressions).map(lambda t: [f"let {t[0]} = {t[1]}"]),
        st.tuples(NAMES, FIELDS, expressions).map(lambda t: [f"let {t[0]}.{t[1]} = {t[2]}"]),
        expressions.map(lambda e: [f"emit {e}"]),
        st.tuples(st.sampled_from(["", "debug ", "warn ", "error "]), expressions).map(lambda t: [f"log {t[0]}{t[1]}"]),
        expressions.map(lambda e: [f"fail {e}"]),
        st.just(["skip"]), st.just(["stop"]),
    ]
    with_io = [
        st.tuples(NAMES, expressions, NAMES).map(lambda t: [f'call api.get("/x/{{{t[0]}}}", q: {t[1]}) as {t[2]}']),
        st.tuples(expressions, NAMES).map(lambda t: [f"lookup api.find(email: {t[0]}) as {t[1]}"]),
        st.tuples(expressions, st.integers(1, 50)).map(lambda t: [f"send {t[0]} to out.write batch {t[1]}"]),
    ]
    simple = st.one_of(*pure, *(with_io if io else []))
    if depth == 0:
        return simple

    def indent(lines: list[str]) -> list[str]:
        return ["  " + line for line in lines]

    body = st.lists(statements(depth - 1, io, expressions), min_size=0, max_size=3).map(
        lambda bs: [x for b in bs for x in b])
    return st.one_of(
        simple,
        st.tuples(expressions, body, body).map(lambda t: [f"if {t[0]}", *indent(t[1]), "else", *indent(t[2]), "end"]),
        st.tuples(NAMES, expressions, body, st.sampled_from(["", " parallel 4"])).map(
            lambda t: [f"for each {t[0]} in {t[1]}{t[3]}", *indent(t[2]), "end"]),
        st.tuples(body, body).map(lambda t: ["try", *indent(t[0]), "on error as e", *indent(t[1]), "end"]),
        st.tuples(expressions, NAMES, st.lists(st.tuples(FIELDS, expressions), max_size=3)).map(
            lambda t: [f"map {t[0]} to {t[1]}", *[f"  {k} = {v}" for k, v in t[2]], "  drop x.y", "end"]),
    )


PROGRAMS = st.lists(statements(2), min_size=1, max_size=6).map(lambda bs: "\n".join(x for b in bs for x in b) + "\n")
CONFIG = settings(max_examples=EXAMPLES, deadline=1000, suppress_health_check=list(HealthCheck))


@CONFIG
@given(PROGRAMS)
def test_generated_programs_parse_and_format_round_trips(program: str) -> None:
    module = parse(Source("generated.flow", program))
    assert isinstance(module, ast.Module) and module.statements
    formatted = format_text(program)
    assert ast.dump(parse(Source("formatted.flow", formatted))) == ast.dump(module)
    assert format_text(formatted) == formatted


@CONFIG
@given(PROGRAMS, st.data())
def test_mutated_generated_programs_fail_only_with_positions(program: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(program)))
    cut = data.draw(st.integers(1, 8))
    text = program[:at] + data.draw(st.sampled_from(["", "(", "]", "end\n", '"', "{", " to ", "=="])) + \
        program[at + cut:]
    try:
        parse(Source("mutated.flow", text))
    except FlowSyntaxError as e:
        d = e.diagnostics[0]
        assert 1 <= d.line <= text.count("\n") + 2 and d.column >= 1
