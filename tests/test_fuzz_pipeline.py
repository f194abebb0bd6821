"""Fuzzing the whole pipeline (issue 10): generated and mutated programs go through parse, check,
compile and a run with a deadline; generated JSON, CSV and HTTP bodies go through the file connector
and the http connector (against FakeApi on 127.0.0.1). The only outcomes allowed are a diagnostic
(ScriptError / UsageError), a failed record or a failed run with a flowlang error that is not an
internal one, and a success. Anything else (an exception out of Flow.run, "internal error") fails.

Also: `flowlang fmt` of mutated programs (line breaks str.splitlines() takes, deleted spans, duplicated
and swapped lines) keeps the tree or refuses; failure messages of any text (lone surrogates too) are
kept in the store; paginated answers with any Link, Retry-After and next values end as allowed.

FLOWLANG_FUZZ_EXAMPLES sets the number of inputs per test (CI: a few hundred each; the long setting
is FLOWLANG_FUZZ_EXAMPLES=100000, see README's Development section)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowlang
from conftest import ROOT
from fakeapi import FakeApi, Request
from flowlang import ast
from flowlang.errors import FlowSyntaxError, ScriptError, UsageError
from flowlang.runtime.limits import Limits
from flowlang.source import Source
from flowlang.syntax import parse
from flowlang.syntax.format import format_text
from test_generated_programs import statements

EXAMPLES = int(os.environ.get("FLOWLANG_FUZZ_EXAMPLES", "150"))
CONFIG = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
LIMITS = Limits(max_seconds=2, max_record_seconds=1, max_value_items=100_000)
PRELUDE = ('let a = 1\nlet b = "b"\nlet order = {b: 2, end: [1, 2], value: 1.5, to: null}\n'
           'let x1 = [0, 1, "x", [2], {b: 3}]\nlet _y = null\nlet items = [{b: 1}, {b: "s"}]\n')
SEEDS = [p.read_text() for p in sorted((ROOT / "tests" / "spec").glob("*.flow"))]
SNIPPETS = ["(", ")", "[", "]", "{", "}", '"', "'", "\n", " end\n", "emit ", "1e400", "-", "not ", "for each x in ",
            "range(0, 1000000000000)", "round(", "%", "days(", "base64_decode(", "\\u0000", "\u202e", "??", " = ",
            "let ", "fail ", "try\n", "on error as e\n", "map x to y\n", "10000000000000000000000", "...", ".", ","]


def allowed(result: flowlang.Result) -> None:
    """A run ended in one of the allowed ways."""
    assert result.status in ("ok", "partial", "failed", "interrupted"), result.status
    if result.error is not None:
        assert getattr(result.error, "kind", None) != "internal", result.error.message
    for failure in result.errors:
        assert failure.kind != "internal", failure.message


def through_pipeline(text: str, tmp_path: Path | None = None) -> None:
    try:
        flow = flowlang.compile(text, bindings=(), base_dir=tmp_path)
        result = flow.run(limits=LIMITS)
    except (ScriptError, UsageError):
        return
    allowed(result)


PROGRAMS = st.lists(statements(2, io=False), min_size=1, max_size=5).map(
    lambda blocks: PRELUDE + "\n".join(line for block in blocks for line in block) + "\n")


@CONFIG
@given(PROGRAMS)
def test_generated_programs_run_to_an_allowed_end(program: str) -> None:
    through_pipeline(program)


@CONFIG
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_spec_programs_run_to_an_allowed_end(seed: str, data: st.DataObject) -> None:
    text = seed
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 6))
        text = text[:at] + data.draw(st.sampled_from(SNIPPETS)) + text[at + cut:]
    through_pipeline(text)


# ---- data through the connectors ---------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=20),
                    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str).map(float),
                    st.sampled_from(["1" * 5000, "\x1b[2J", "\u0000", "é", "=cmd|' /C calc'!A0"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=20)
RAW_BYTES = st.one_of(st.binary(max_size=200), st.sampled_from([b"[" * 3000, b'[{"a": ' + b"9" * 5000 + b"}]",
                                                                 b'[{"a": "\xff"}]', b"\xef\xbb\xbf[1, 2]", b"[1, 2",
                                                                 b'{"a": 1e999999}', b"[NaN]", b'"x"']))
SAMPLE_FLOW = ('use out = file(path: "out/{name}.jsonl", mode: "append")\nuse f = file(path: "{name}")\n'
               'call f.read() as rows\nfor each r in rows\n  emit {{r: r, n: len(str(r)), k: type_of(r)}}\n'
               '  send r to out\nend\n')


def body_of(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@CONFIG
@given(body=st.one_of(JSON_VALUES.map(body_of), RAW_BYTES), name=st.sampled_from(["d.json", "d.jsonl", "d.csv"]))
def test_data_files_of_any_shape_give_an_allowed_end(tmp_path_factory: object, body: bytes, name: str) -> None:
    folder = Path(tmp_path_factory.mktemp("data"))
    (folder / name).write_bytes(body)
    through_pipeline(SAMPLE_FLOW.format(name=name), folder)


@CONFIG
@given(st.one_of(JSON_VALUES.map(body_of), RAW_BYTES),
       st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain", "text/csv"]),
       st.sampled_from([200, 201, 204, 400, 404]))
def test_http_bodies_of_any_shape_give_an_allowed_end(body: bytes, content_type: str, status: int) -> None:
    with FakeApi() as api:
        def answer(req: Request) -> tuple[int, dict[str, str], object]:
            return status, {"Content-Type": content_type}, body
        api.route("GET", "/items", answer)
        api.route("GET", "/one", answer)
        # retry: 2 (one retry, not four): a 204 with a body breaks the connection it came on, and five
        # attempts with backoff took 1.3 s of each such example
        text = ('use api = http(base_url: env.API, retry: 2)\n'
                'call api.get("/one") as one\nemit one\n'
                'call api.get("/items") as items\nfor each r in items\n  emit r\nend\n')
        try:
            flow = flowlang.compile(text, bindings=())
            result = flow.run(env={"API": api.url}, limits=LIMITS)
        except (ScriptError, UsageError):
            return
        allowed(result)


# ---- the formatter ---------------------------------------------------------------------------------

LINE_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r", "\r\n", "\t"]


def mutated(seed: str, data: st.DataObject) -> str:
    text = seed
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        op = data.draw(st.integers(0, 3))
        if op == 0:
            snippet = data.draw(st.sampled_from(SNIPPETS + LINE_BREAKS))
            text = text[:at] + snippet + text[at + data.draw(st.integers(0, 4)):]
        elif op == 1:
            text = text[:at] + text[at + data.draw(st.integers(1, 30)):]
        else:
            lines = text.split("\n")
            i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
            if op == 2:
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@CONFIG
@given(st.sampled_from(SEEDS), st.data())
def test_fmt_of_a_mutated_program_keeps_its_tree_or_refuses_it(seed: str, data: st.DataObject) -> None:
    text = mutated(seed, data)
    try:
        formatted = format_text(text)
    except (FlowSyntaxError, ScriptError):
        return
    assert ast.dump(parse(Source("t.flow", formatted))) == ast.dump(parse(Source("t.flow", text)))
    assert format_text(formatted) == formatted


# ---- failure messages of any text ---------------------------------------------------------------

@CONFIG
@given(st.lists(st.text(alphabet=st.characters(), max_size=30), min_size=1, max_size=4))
def test_a_failure_message_of_any_text_is_kept(tmp_path_factory: object, names: list[str]) -> None:
    folder = Path(tmp_path_factory.mktemp("messages"))
    flow = flowlang.compile('for each r in input\n  fail "bad {r.name}"\nend\n', bindings=(), base_dir=folder)
    result = flow.run(limits=LIMITS, input=[{"id": i, "name": n} for i, n in enumerate(names)],
                      state_dir=folder / "state")
    allowed(result)
    assert result.error is None and len(result.errors) == len(names)


# ---- paginated answers with any headers ----------------------------------------------------------

HEADER_TEXT = st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
                        st.sampled_from(["abc", "-1", "1e400", "nan", "0", "10000000000000",
                                         "Wed, 21 Oct 2099 07:28:00 GMT",
                                         "<http://[::1/x>; rel=\"next\"", "<//[zz/x>; rel=\"next\"",
                                         "<http://127.0.0.1:99999/x>; rel=\"next\"", "<?page=2>; rel=\"next\"",
                                         "<http://a..b/x>; rel=\"next\""]))
NEXT_VALUES = st.one_of(JSON_VALUES, HEADER_TEXT)


@CONFIG
@given(link=HEADER_TEXT, retry_after=HEADER_TEXT, status=st.sampled_from([200, 200, 429, 503, 302]),
       nxt=NEXT_VALUES, style=st.sampled_from(["link", "next_url", "cursor"]))
def test_pages_with_any_link_retry_after_and_next_give_an_allowed_end(link: str, retry_after: str, status: int,
                                                                      nxt: object, style: str) -> None:
    with FakeApi() as api:
        calls = {"n": 0}

        def answer(req: Request) -> tuple[int, dict[str, str], object]:
            calls["n"] += 1
            if calls["n"] > 3:  # the fourth request and after: a last page
                return 200, {}, {"data": [], "next": None}
            headers = {"Link": link, "Retry-After": retry_after}
            if status == 302:
                headers["Location"] = link
            return status, headers, {"data": [{"id": calls["n"]}], "next": nxt}
        api.route("GET", "/items", answer)
        pages = {"link": '{style: "link", records: "data"}',
                 "next_url": '{style: "next_url", next: "next", records: "data"}',
                 "cursor": '{style: "cursor", cursor: "next", records: "data"}'}[style]
        text = (f'use api = http(base_url: env.API, retry: 2, max_retry_wait: 0.5)\n'
                f'call api.get("/items", pages: {pages}) as items\nfor each r in items\n  emit r\nend\n')
        try:
            flow = flowlang.compile(text, bindings=())
            result = flow.run(env={"API": api.url}, limits=LIMITS)
        except (ScriptError, UsageError):
            return
        allowed(result)
