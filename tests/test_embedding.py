"""The Python API: load, compile, run, run_async, host bindings, Result and typed exceptions."""

from __future__ import annotations

import asyncio
import enum
import pickle
import re
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import flowlang


class CRM:
    def __init__(self) -> None:
        self.saved: list[Any] = []

    def find(self, email: str) -> dict[str, Any]:
        return {"id": len(email), "email": email, "score": 1.5}

    async def save(self, record: dict[str, Any], tag: str = "") -> dict[str, Any]:
        self.saved.append({**record, "tag": tag})
        return {"ok": True}

    async def stream(self) -> AsyncIterator[dict[str, int]]:
        for i in range(3):
            yield {"n": i}

    def broken(self) -> None:
        raise RuntimeError("database is down")


def test_compile_and_run_with_bindings_and_input() -> None:
    crm = CRM()
    flow = flowlang.compile("""
for each e in input
  lookup crm.find(email: e) as c
  send {id: c.id, score: c.score} to crm.save(tag: "t")
  emit c.id
end
""")
    result = flow.run(bindings={"crm": crm}, input=["a@x", "bb@x"])
    assert result.ok and result.status == "ok"
    assert result.outputs == [3, 4]
    assert crm.saved == [{"id": 3, "score": Decimal("1.5"), "tag": "t"}, {"id": 4, "score": Decimal("1.5"), "tag": "t"}]
    assert result.stats.sent == 2


def test_async_generator_binding_is_a_stream() -> None:
    flow = flowlang.compile("call crm.stream() as s\nfor each r in s\n  emit r.n\nend\n")
    assert flow.run(bindings={"crm": CRM()}).outputs == [0, 1, 2]


def test_binding_errors_fail_the_record() -> None:
    flow = flowlang.compile("for each x in [1]\n  call crm.broken()\nend\n")
    result = flow.run(bindings={"crm": CRM()})
    assert result.status == "partial" and not result.ok
    assert "database is down" in result.errors[0].message


def test_missing_binding_method_is_reported_before_running() -> None:
    flow = flowlang.compile("call crm.nope()\n")
    with pytest.raises(flowlang.UsageError, match="no method 'nope'"):
        flow.run(bindings={"crm": CRM()})


def test_unknown_connection_without_binding() -> None:
    flow = flowlang.compile("call crm.find(email: 'x')\n")
    with pytest.raises(flowlang.CheckError, match="unknown connection 'crm'"):
        flow.run()


def test_outputs_are_plain_python() -> None:
    result = flowlang.compile('emit {n: 1.50, d: datetime("2024-05-01T00:00:00Z"), l: [true, null]}').run()
    value = result.outputs[0]
    assert value["n"] == Decimal("1.50") and isinstance(value["d"], datetime) and value["l"] == [True, None]


def test_params_and_missing_params() -> None:
    flow = flowlang.compile("param since\nparam n = 2\nemit [since, n]\n")
    assert flow.run(params={"since": "x"}).outputs == [["x", 2]]
    with pytest.raises(flowlang.UsageError, match="missing param since"):
        flow.run()


def test_run_level_error_is_in_the_result() -> None:
    result = flowlang.compile('emit 1\nfail "stop"\n').run()
    assert not result.ok and result.status == "failed"
    assert isinstance(result.error, flowlang.FlowRuntimeError)
    assert result.error.line == 2
    assert result.outputs == [1]


def test_syntax_errors_raise_with_diagnostics() -> None:
    with pytest.raises(flowlang.FlowSyntaxError) as info:
        flowlang.compile("emit (")
    assert info.value.diagnostics[0].line == 1


def test_errors_pickle() -> None:
    with pytest.raises(flowlang.ScriptError) as info:
        flowlang.compile("emit nope", bindings=())
    again = pickle.loads(pickle.dumps(info.value))
    assert again.render() == info.value.render()
    result = flowlang.compile('fail "x"').run()
    assert pickle.loads(pickle.dumps(result.error)).message == "x"


def test_run_async_inside_an_event_loop() -> None:
    flow = flowlang.compile("emit 41 + 1")

    async def main() -> list[Any]:
        results = await asyncio.gather(flow.run_async(), flow.run_async())
        return [r.outputs for r in results]

    assert asyncio.run(main()) == [[42], [42]]


def test_load_runs_with_state_beside_the_file(tmp_path: Path) -> None:
    path = tmp_path / "count.flow"
    path.write_text("let state.n = (state.n ?? 0) + 1\nemit state.n\n")
    flow = flowlang.load(path)
    assert flow.run().outputs == [1]
    assert flowlang.load(path).run().outputs == [2]
    assert (tmp_path / ".flowlang" / "flowlang.db").exists()


def test_on_output_streams_records() -> None:
    seen: list[Any] = []
    result = flowlang.compile("emit 1\nemit 2").run(on_output=seen.append, collect=False)
    assert seen == [1, 2] and result.outputs == []


def test_secrets_given_when_embedding_are_masked() -> None:
    result = flowlang.compile("emit {t: secret.TOKEN, s: 'x' + secret.TOKEN}").run(secrets={"TOKEN": "abc123"})
    assert [str(v) for v in result.outputs[0].values()] == ["***", "x***"]  # only the secret's part masked
    assert isinstance(result.outputs[0]["t"], flowlang.Secret) and isinstance(result.outputs[0]["s"], flowlang.Secret)
    assert result.outputs[0]["t"].reveal() == "abc123" and result.outputs[0]["s"].reveal() == "xabc123"


def test_a_secret_that_is_not_text_is_refused_by_name_not_shown() -> None:
    """secrets={"PIN": 12345678} ended in TypeError: object of type 'int' has no len() from inside the
    masker (a traceback, no word of which secret); a provider of the embedding code's own that gave a
    number the same. Now a UsageError names the secret, and a provider's number fails the secret where
    it is read, saying which provider; neither shows the value."""
    flow = flowlang.compile("emit 'x' + secret.PIN")
    with pytest.raises(flowlang.UsageError, match=r"^secrets: the value of 'PIN' must be a string, got int$"):
        flow.run(secrets={"PIN": 12345678})

    class Numbers:
        label = "the test provider"

        def where(self, name: str) -> str:
            return f"{name} in the test provider"

        def get(self, name: str) -> Any:
            return 12345678

    result = flow.run(secret_providers=lambda secrets, env: [Numbers()])
    assert result.status == "failed" and result.error is not None
    assert result.error.message == ("secret 'PIN' could not be read: the test provider gave an object of type int, "
                                    "not a string")
    assert "12345678" not in result.error.render()


def test_the_error_that_ended_a_run_is_masked_in_the_result() -> None:
    """A binding (or a driver) whose exception held the text of the secret it was given, outside a loop:
    the run's error in `result.error` (its message, render(), str()) showed it, while the same failure
    inside a loop was masked in `result.errors` and the store. The error that ends a run is masked where
    it stands now, texts made from a secret too."""
    class Crm:
        def push(self, key: flowlang.Secret) -> None:
            raise ValueError(f"bad key {key.reveal()}")

    token = "Rk3v9Wm2Lp8Tx5Qn-abc"
    for call in ("crm.push(secret.T)", "crm.push(upper(secret.T))"):
        result = flowlang.compile(f"call {call} as r", bindings=["crm"]).run(secrets={"T": token},
                                                                                bindings={"crm": Crm()})
        assert result.status == "failed" and result.error is not None
        assert result.error.message == "crm.push() raised ValueError: bad key ***"
        for shown in (result.error.render(), str(result.error), repr(result.error)):
            assert "bad key ***" in shown and token not in shown and token.upper() not in shown


def test_record_errors_in_result() -> None:
    result = flowlang.compile('for each n in [1, 2]\n  if n == 2\n    fail "no {n}"\n  end\nend').run()
    assert [(e.message, e.record, e.location) for e in result.errors] == [("no 2", 2, "<flow>:3:5")]


def test_imported_connections_and_constants(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "common.flow").write_text(
        'use ref = memory(records: [{code: "NO", name: "Norway"}, {code: "SE", name: "Sweden"}])\n'
        'let prefix = "C-"\nfunction label(code)\n  return prefix + code\nend\n')
    (tmp_path / "main.flow").write_text(
        'import "lib/common.flow"\nlookup ref.find(code: "SE") as se\nemit [label(se.code), se.name]\n')
    result = flowlang.load(tmp_path / "main.flow").run()
    assert result.outputs == [["C-SE", "Sweden"]], result.error


def test_a_diamond_import_checks_and_runs_the_shared_file_once(tmp_path: Path) -> None:
    """main imports lib and mid, mid imports lib: one lib, its body run once per run."""
    (tmp_path / "lib.flow").write_text(
        "let state.runs = (state.runs ?? 0) + 1\nfunction twice(x)\n  return x * 2\nend\n")
    (tmp_path / "mid.flow").write_text('import "lib.flow"\nfunction four(x)\n  return twice(twice(x))\nend\n')
    (tmp_path / "main.flow").write_text('import "lib.flow"\nimport "mid.flow"\nemit [four(1), twice(1), state.runs]\n')
    result = flowlang.load(tmp_path / "main.flow").run()
    assert result.error is None, result.error.render()
    assert result.outputs == [[4, 2, 1]]


def test_a_broken_file_imported_twice_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "lib.flow").write_text("function twice(x)\n  return y * 2\nend\n")
    (tmp_path / "mid.flow").write_text('import "lib.flow"\n')
    (tmp_path / "main.flow").write_text('import "lib.flow"\nimport "mid.flow"\n')
    with pytest.raises(flowlang.CheckError) as refused:
        flowlang.load(tmp_path / "main.flow")
    assert [(Path(d.source.name).name, d.line, d.column) for d in refused.value.diagnostics] == [("lib.flow", 2, 10)]


def test_an_imported_file_may_only_define(tmp_path: Path) -> None:
    (tmp_path / "lib.flow").write_text("emit 1\n")
    (tmp_path / "main.flow").write_text('import "lib.flow"\n')
    with pytest.raises(flowlang.CheckError, match="an imported file may only hold"):
        flowlang.load(tmp_path / "main.flow")


def test_an_output_is_not_changed_by_what_the_flow_does_after_emitting_it() -> None:
    flow = flowlang.compile("""
let o = {a: 1, items: [1, 2], inner: {x: 1}}
emit o
emit o.items
let o.a = 2
let o.items[0] = 9
let o.inner.x = 5
emit o
let state = {n: 1}
emit state
let state.n = 2
emit state
let state = {n: 3}
""", name="a.flow")
    result = flow.run()
    assert result.ok, result.error
    assert result.outputs == [{"a": 1, "items": [1, 2], "inner": {"x": 1}}, [1, 2],
                              {"a": 2, "items": [9, 2], "inner": {"x": 5}}, {"n": 1}, {"n": 2}]


def test_an_output_is_not_changed_by_a_later_change_to_the_input() -> None:
    data = [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": ["b"]}]
    flow = flowlang.compile("""
for each r in input
  emit r
  let r.tags[0] = "changed"
end
""", name="a.flow")
    result = flow.run(input=data)
    assert result.ok, result.error
    assert result.outputs == [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": ["b"]}]
    assert data[0]["tags"] == ["a"]  # used as given, not copied, but a path assignment copies what it changes


def test_outputs_the_flow_built_are_not_copied() -> None:
    streamed: list[object] = []
    flow = flowlang.compile("""
for each r in input
  map r to out
    id = r.id
  end
  emit out
end
""", name="a.flow")
    result = flow.run(input=[{"id": 1}, {"id": 2}], on_output=streamed.append)
    assert result.outputs == [{"id": 1}, {"id": 2}]
    assert all(a is b for a, b in zip(result.outputs, streamed, strict=True))


def test_input_keys_that_are_not_text_become_text() -> None:
    """A dict from Python with keys that are not text (an int, a bool) is read with text keys, as
    every other value given from Python is converted (the fast plain check must not pass it through)."""
    flow = flowlang.compile('for each r in input\n  emit keys(r)\n  emit r["1"]\nend\n')
    result = flow.run(input=[{1: "a", "b": 2}, {"1": {2: "x"}}])
    assert result.ok, result.error
    assert result.outputs == [["1", "b"], "a", ["1"], {"2": "x"}]


class _ReprCounted(str):
    """Text from Python that counts how often its repr is made."""

    reprs = 0

    def __repr__(self) -> str:
        type(self).reprs += 1
        return super().__repr__()


def test_run_does_not_format_its_result_as_text(tmp_path: Path) -> None:
    """Flow.run's Result is not made into text on the way out: on Python 3.11 asyncio.run formats its
    main task (result included) when it puts the SIGINT handler back, which for 100,000 outputs in
    result.outputs cost more than the whole mapping (issue 15)."""
    _ReprCounted.reprs = 0
    flow = flowlang.compile("for each r in input\n  emit r\nend\n", name="a.flow")
    result = flow.run(input=[_ReprCounted("a"), _ReprCounted("b")], state_dir=tmp_path)
    assert result.ok, result.error
    assert result.outputs == ["a", "b"]
    assert _ReprCounted.reprs == 0
    retried = flow.retry(state_dir=tmp_path)
    assert retried.ok and _ReprCounted.reprs == 0


@pytest.mark.parametrize("payload", [{1: "a", "1": "b"}, {"1": "b", 1: "a"}, {"x": [{True: 1, "True": 2}]}])
def test_input_keys_that_become_the_same_text_are_refused(payload: dict[Any, Any]) -> None:
    """Two keys of one host dict that are the same as text (1 and "1") cannot both be kept in a
    flowlang object: the run is refused with a message, rather than one value silently dropped."""
    flow = flowlang.compile("for each r in input\n  emit r\nend\n")
    with pytest.raises(flowlang.UsageError, match=r"two keys of one dict are both '(1|True)' as text"):
        flow.run(input=[payload])


class _BadItemSource:
    """A host binding whose async stream gives an item flowlang cannot hold after a good one."""

    def __init__(self, bad: Any) -> None:
        self.bad = bad

    async def stream(self) -> AsyncIterator[Any]:
        yield {"n": 1}
        yield self.bad
        yield {"n": 3}


@pytest.mark.parametrize("bad, why", [(object(), "cannot use a Python object"),
                                      ({1: "a", "1": "b"}, "two keys of one dict are both '1'")])
def test_a_bad_item_from_a_host_stream_ends_the_read_with_a_message(bad: Any, why: str) -> None:
    """An item of a binding's async stream that cannot be a flowlang value ends the run with a message
    naming the operation (not an internal error), after the items before it were processed."""
    flow = flowlang.compile("call src.stream() as rs\nfor each r in rs\n  emit r.n\nend\n", name="a.flow")
    result = flow.run(bindings={"src": _BadItemSource(bad)})
    assert not result.ok
    assert result.outputs == [1]
    message = str(result.error)
    assert "src.stream() gave an item flowlang cannot use" in message and why in message
    assert "internal error" not in message


@pytest.mark.parametrize("number", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_a_decimal_that_is_not_finite_is_refused_like_a_float_nan(number: str) -> None:
    """Decimal('NaN') or Decimal('Infinity') from Python is refused at the door, as float('nan') is:
    inside a flow it made comparisons, int() and JSON fail as internal errors."""
    flow = flowlang.compile("for each r in input\n  emit r > 1\nend\n", name="a.flow")
    with pytest.raises(flowlang.UsageError, match=f"{number} is not a number flowlang can hold"):
        flow.run(input=[{"n": 1}, {"total": Decimal(number)}])
    with pytest.raises(flowlang.UsageError, match="not a number flowlang can hold"):
        flow.run(input=[Decimal(number)])

    class Source:
        def get(self) -> dict[str, Any]:
            return {"total": Decimal(number)}
    looked = flowlang.compile("call src.get() as x\nemit x.total > 1\n", name="b.flow")
    result = looked.run(bindings={"src": Source()})
    assert not result.ok
    assert "src.get() returned a value flowlang cannot use" in str(result.error), result.error
    assert "internal error" not in str(result.error)


def test_an_on_output_callback_that_raises_fails_the_record_with_its_message() -> None:
    """An exception from the embedder's on_output fails that record (kept, as a binding's exception
    does), named for what raised it: not an internal error of flowlang."""
    flow = flowlang.compile("for each r in input\n  emit r\nend\nemit \"done\"\n", name="a.flow")
    seen: list[Any] = []

    def callback(value: Any) -> None:
        seen.append(value)
        if value == 2:
            raise RuntimeError("the host's queue is full")
    result = flow.run(input=[1, 2, 3], on_output=callback)
    assert result.status == "partial", result.error
    [failure] = result.errors
    assert failure.message == "on_output raised RuntimeError: the host's queue is full"
    assert failure.record == 2
    assert seen == [1, 2, 3, "done"]


def test_flow_run_inside_a_running_event_loop_says_to_await_run_async() -> None:
    """Flow.run blocks; inside a running event loop (a notebook, async code) it is refused with a
    message naming `await flow.run_async(...)`, and the flow did not run (no coroutine left behind)."""
    flow = flowlang.compile("emit 1\n", name="a.flow")

    async def main() -> str:
        with pytest.raises(flowlang.UsageError, match=r"await flow\.run_async\(\.\.\.\)") as info:
            flow.run()
        with pytest.raises(flowlang.UsageError, match=r"await flow\.retry_async\(\.\.\.\)"):
            flow.retry(state_dir=None)
        result = await flow.run_async()
        assert result.outputs == [1]
        return str(info.value)
    assert "running event loop" in asyncio.run(main())


def test_compile_of_bytes_says_to_decode_them() -> None:
    with pytest.raises(flowlang.UsageError, match=r"takes the flow's text as str, not bytes \(decode"):
        flowlang.compile(b"emit 1\n")  # type: ignore[arg-type]


class _Color(str, enum.Enum):  # noqa: UP042 (the form libraries written before StrEnum use)
    RED = "red"


class _Size(enum.IntEnum):
    LARGE = 3


class _Text(str):
    pass


class _Stamp(datetime):  # as pandas' Timestamp and pendulum's DateTime are
    pass


class _Float(float):  # as numpy's float64 is; its repr is not a number's text
    def __repr__(self) -> str:
        return f"np.float64({float(self)})"


class _Index:  # as numpy's integers are: not int, but an index
    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n


def test_python_kinds_a_program_commonly_holds_become_flowlang_values() -> None:
    """Enum members, subclasses of str/int/float/datetime, UUIDs, times of day, paths and integers that
    are indexes come into a flow as the flowlang values they stand for. Before, a (str, Enum) member or
    a str subclass was kept as it was, so len() refused it as 'got string' and upper() gave 'RED' of
    the member's name; a pydantic model with a UUID field was refused."""
    from pathlib import PurePosixPath
    from uuid import UUID

    from pydantic import BaseModel

    class Order(BaseModel):
        id: UUID
        color: _Color

    flow = flowlang.compile("for each x in input\n  emit {x: x, t: type_of(x), n: len(json_string(x))}\nend\n",
                            name="a.flow")
    given = [_Color.RED, _Size.LARGE, _Text("abc"), _Float(1.5), _Index(7), UUID(int=5),
             datetime(2024, 5, 1, 10, 30, tzinfo=UTC).time(), PurePosixPath("/data/x.csv"),
             _Stamp(2024, 5, 1, 10, 30), Order(id=UUID(int=6), color=_Color.RED)]
    result = flow.run(input=given)
    assert result.ok, result.error or result.errors
    values = [(o["x"], o["t"]) for o in result.outputs]
    assert values == [("red", "string"), (3, "number"), ("abc", "string"), (Decimal("1.5"), "number"),
                      (7, "number"), ("00000000-0000-0000-0000-000000000005", "string"), ("10:30:00", "string"),
                      ("/data/x.csv", "string"), (datetime(2024, 5, 1, 10, 30, tzinfo=UTC), "datetime"),
                      ({"id": "00000000-0000-0000-0000-000000000006", "color": "red"}, "object")]
    assert [type(o["x"]) for o in result.outputs][:9] == [str, int, str, Decimal, int, str, str, str, datetime]
    texts = flowlang.compile("for each x in input\n  emit [upper(x), len(x), x == \"red\"]\nend\n", name="b.flow")
    result = texts.run(input=[_Color.RED, _Text("red")])
    assert result.ok, result.errors
    assert result.outputs == [["RED", 3, True], ["RED", 3, True]]


def test_keys_that_become_the_same_text_are_named_both() -> None:
    flow = flowlang.compile("emit input\n", name="a.flow")
    with pytest.raises(flowlang.UsageError, match=r"both '1' as text \(one is '1', the other is not text\)"):
        flow.run(input={1: "a", "1": "b"})
    with pytest.raises(flowlang.UsageError, match=r"both '1' as text \(one is 1\)"):
        flow.run(input={"1": "b", 1: "a"})


class _BrokenStreams:
    """A binding whose streams fail after their first item: an async generator and a sync one."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    async def later(self) -> AsyncIterator[dict[str, int]]:
        yield {"n": 1}
        raise RuntimeError("the feed broke")

    def rows(self) -> Any:
        import threading

        self.threads.append(threading.current_thread().name)
        yield {"n": 1}
        raise KeyError("cursor closed")


def test_a_host_stream_that_raises_fails_with_its_message_not_an_internal_error() -> None:
    """An exception raised while a binding's generator gives its items is the binding's failure, named
    for it (before: 'internal error (RuntimeError: the feed broke); this is a bug in flowlang'); the
    items given before it are processed. A sync generator is read in the worker thread."""
    source = _BrokenStreams()
    flow = flowlang.compile("call src.later() as s\nfor each r in s\n  emit r.n\nend\n", name="a.flow")
    result = flow.run(bindings={"src": source})
    assert result.status == "failed" and result.outputs == [1]
    assert str(result.error) == "src.later() raised RuntimeError while giving its items: the feed broke"
    rows = flowlang.compile("call src.rows() as s\nfor each r in s\n  emit r.n\nend\n", name="b.flow")
    result = rows.run(bindings={"src": source})
    assert result.status == "failed"
    assert str(result.error) == "src.rows() raised KeyError: 'cursor closed'"
    assert source.threads and source.threads[0] != "MainThread"


def test_a_loaded_file_runs_with_the_bindings_run_is_given(tmp_path: Path) -> None:
    """LANGUAGE.md's example as it is written: flowlang.load("orders.flow"), then run(bindings={"crm":
    client}) of a file that names crm without a `use` line. load() took it for an unknown connection
    (CheckError), so the example failed at its first line; run() checks the names it is given, before
    anything runs, with a hint when the binding is missing."""
    path = tmp_path / "orders.flow"
    path.write_text('param since = "2024-05-01"\nfor each o in input\n  lookup crm.find(email: o.email) as c\n'
                    '  send c to crm.save(tag: since)\n  emit c.id\nend\n')
    crm = CRM()
    flow = flowlang.load(path)
    payload = [{"email": "a@x"}, {"email": "bb@x"}]
    result = flow.run(params={"since": "2024-06-01"}, bindings={"crm": crm}, input=payload)
    assert result.ok, result.error
    assert result.outputs == [3, 4] and [s["tag"] for s in crm.saved] == ["2024-06-01", "2024-06-01"]
    with pytest.raises(flowlang.CheckError) as missing:
        flow.run(input=[{"email": "a@x"}])  # no binding: said before anything runs
    assert "unknown connection 'crm'" in missing.value.render()
    assert "give it to run() as bindings={'crm': ...}" in missing.value.render()
    assert [s["tag"] for s in crm.saved] == ["2024-06-01", "2024-06-01"]


def test_load_takes_the_names_of_host_bindings(tmp_path: Path) -> None:
    """A file may name a host binding without a `use` line; given the names, load() reports any other
    unknown connection at once (bindings=(): none, as `flowlang check` does); the store stays beside the
    file."""
    path = tmp_path / "orders.flow"
    path.write_text('for each e in ["a@x", "b@x"]\n  lookup crm.find(email: e) as c\n'
                    '  send c to crm.save(tag: "t")\n  emit c.id\nend\n')
    with pytest.raises(flowlang.CheckError, match="unknown connection 'crm'"):
        flowlang.load(path, bindings=())  # as `flowlang check` says: no such connection
    crm = CRM()
    result = flowlang.load(path, bindings=["crm"]).run(bindings={"crm": crm})
    assert result.ok, result.error
    assert result.outputs == [3, 3] and [s["tag"] for s in crm.saved] == ["t", "t"]
    assert (tmp_path / ".flowlang" / "flowlang.db").exists()
    typo = tmp_path / "typo.flow"
    typo.write_text('lookup crn.find(email: "a") as c\n')
    with pytest.raises(flowlang.CheckError, match="unknown connection 'crn'"):
        flowlang.load(typo, bindings=["crm"])  # any other name is still checked
    with pytest.raises(flowlang.UsageError, match=r"bindings takes a list of names \(bindings=\['crm'\]\)"):
        flowlang.load(path, bindings="crm")


def test_a_naive_datetime_given_to_a_flow_is_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """As text without a zone is: datetime(2024, 5, 1, 12) is 12:00Z also in Kolkata (datetime.now() would
    be the local wall time taken for UTC, hence the docs' advice of datetime.now(UTC))."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        flow = flowlang.compile('param since\nemit {at: since, later: since + hours(1), text: "{since}"}\n')
        result = flow.run(params={"since": datetime(2024, 5, 1, 12)})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert result.outputs == [{"at": datetime(2024, 5, 1, 12, tzinfo=UTC),
                               "later": datetime(2024, 5, 1, 13, tzinfo=UTC), "text": "2024-05-01T12:00:00Z"}]


def test_a_binding_without_a_method_the_flow_calls_names_the_call_and_the_methods(tmp_path: Path) -> None:
    """The run was refused with "the binding 'crm' has no method 'fnd'" and nothing else: no place in
    the flow, no word of what the object has."""
    path = tmp_path / "sync.flow"
    path.write_text('emit 1\nfor each e in ["a@x"]\n  lookup crm.fnd(email: e) as c\n  send c to crm.save\nend\n')
    with pytest.raises(flowlang.UsageError) as refused:
        flowlang.load(path, bindings=["crm"]).run(bindings={"crm": CRM()})
    assert str(refused.value).endswith("sync.flow:3:10: the binding 'crm' has no method 'fnd'; did you mean "
                                       "'find'? (its methods: broken, find, save, stream)"), str(refused.value)
    assert not (tmp_path / ".flowlang").exists()  # refused before the run: no job


def test_a_binding_call_with_an_argument_its_method_does_not_take_is_refused_before_running(tmp_path: Path) -> None:
    """`lookup crm.find(mail: e)` of `def find(self, email)` ran, and every record failed with Python's
    words, "crm.find(): CRM.find() got an unexpected keyword argument 'mail'", where LANGUAGE.md 5 has
    wrong argument names found before anything runs. The method's signature is read before the run: the
    call is refused at the argument, with the method's arguments, and no job is made."""
    path = tmp_path / "sync.flow"
    path.write_text('for each e in ["a@x", "b@x"]\n  lookup crm.find(mail: e) as c\n'
                    '  send c to crm.save(tg: "x")\nend\n')
    flow = flowlang.load(path, bindings=["crm"])
    with pytest.raises(flowlang.UsageError) as refused:
        flow.run(bindings={"crm": CRM()})
    assert str(refused.value).endswith("sync.flow:2:19: the binding's method crm.find() takes no argument 'mail'; "
                                       "did you mean 'email'? (its arguments: email)"), str(refused.value)
    path.write_text('for each e in ["a@x"]\n  lookup crm.find(email: e) as c\n  send c to crm.save(tg: "x")\nend\n')
    with pytest.raises(flowlang.UsageError) as refused:
        flowlang.load(path, bindings=["crm"]).run(bindings={"crm": CRM()})
    assert str(refused.value).endswith("sync.flow:3:22: the binding's method crm.save() takes no argument 'tg'; "
                                       "did you mean 'tag'? (its arguments: record, tag)"), str(refused.value)
    path.write_text('lookup crm.find() as c\nemit c\n')
    with pytest.raises(flowlang.UsageError) as refused:
        flowlang.load(path, bindings=["crm"]).run(bindings={"crm": CRM()})
    assert str(refused.value).endswith("sync.flow:1:8: the binding's method crm.find() cannot take this call: "
                                       "missing a required argument: 'email' (its arguments: email)")
    assert not (tmp_path / ".flowlang").exists()  # refused before the run: no job

    class Loose:
        def find(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"got": sorted(kwargs)}
    path.write_text('lookup crm.find(mail: "a", x: 1) as c\nsend c to crm.find\nemit c\n')
    assert flowlang.load(path, bindings=["crm"]).run(bindings={"crm": Loose()}).outputs == [{"got": ["mail", "x"]}]


def test_a_whole_number_past_4300_digits_from_python_is_refused_at_the_door() -> None:
    """10 ** 5000 given as input or a param, or returned by a binding, was let in, and flow.run raised
    Python's own ValueError ('Exceeds the limit (4300 digits) for integer string conversion ...') when
    the run wrote its job's params or an output: the flow's own arithmetic stops at 4,300 digits."""
    too_long = "a whole number of more than 4,300 digits is more than flowlang holds; give it as text"
    flow = flowlang.compile("param p = 1\nemit [p, input]\n", name="a.flow")
    for given in ({"input": 10 ** 5000}, {"input": {"a": [1, -(10 ** 4300)]}}, {"params": {"p": 10 ** 4300}}):
        with pytest.raises(flowlang.UsageError, match=too_long):
            flow.run(**given)
    biggest = 10 ** 4300 - 1
    assert flow.run(input={"a": [biggest, -biggest]}, params={"p": biggest}).outputs == [
        [biggest, {"a": [biggest, -biggest]}]]

    class Source:
        def get(self) -> Any:
            return [{"n": 1}, {"n": 10 ** 5000}]
    looked = flowlang.compile("call src.get() as x\nemit len(x)\n", name="b.flow")
    result = looked.run(bindings={"src": Source()})
    assert result.status == "failed" and result.outputs == []
    assert str(result.error) == f"src.get() returned a value flowlang cannot use: {too_long}"
    assert result.error is not None and result.error.line == 1


def test_retry_of_a_flow_compiled_without_a_state_dir_says_it_has_nothing_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flow compiled from text keeps its store in memory for one run: flow.retry() of its failed
    record said ok, resolved nothing and the record was gone, as if it had been replayed. It says why
    there is nothing to replay, and with a state_dir the same retry replays the record."""
    monkeypatch.delenv("FLOWLANG_STATE_DIR", raising=False)
    flow = flowlang.compile('for each o in input\n  if o.id == 2 and not (env.FIXED ?? "")\n    fail "no"\n  end\n'
                            "  emit o.id\nend\n", name="x.flow")
    run = flow.run(input=[{"id": 1}, {"id": 2}])
    assert run.status == "partial" and [e.record for e in run.errors] == [{"id": 2}]
    with pytest.raises(flowlang.UsageError, match="x: a flow compiled from text without state_dir keeps its "
                                                  r"failed records only for the run \(in result.errors\), so "
                                                  "retry\\(\\) has none to replay"):
        flow.retry(env={"FIXED": "1"})
    kept = flow.run(input=[{"id": 1}, {"id": 2}], state_dir=tmp_path)
    assert kept.status == "partial"
    retried = flow.retry(env={"FIXED": "1"}, state_dir=tmp_path)
    assert retried.ok and retried.outputs == [2] and len(retried.resolved) == 1


def test_a_limit_or_params_of_the_wrong_kind_is_refused() -> None:
    """flow.run(limit=-1) ran no record and said ok (the CLI refuses --limit -1), limit=1.5 took 2 and
    limit='2' none; params=[...] raised AttributeError ('list' object has no attribute 'items')."""
    flow = flowlang.compile("for each i in [1, 2, 3]\n  emit i\nend\n", name="a.flow")
    for limit in (-1, 1.5, "2", True):
        with pytest.raises(flowlang.UsageError, match=r"limit= takes a whole number of 0 or more \(records per "
                                                      rf"loop\), not {re.escape(repr(limit))}$"):
            flow.run(limit=limit)
    with pytest.raises(flowlang.UsageError, match="params= takes a mapping of names to values, not list"):
        flow.run(params=[("n", 1)])  # type: ignore[arg-type]
    assert flow.run(limit=0).outputs == [] and flow.run(limit=2).outputs == [1, 2]


def test_a_host_binding_not_given_to_run_says_to_give_it(tmp_path: Path) -> None:
    """A flow loaded with bindings=["crm"] (or compiled from text) and run without that binding said
    "unknown connection 'crm'" with the hint "open it first: use name = connector(...)", though load()
    had been told it is a binding: the hint says to give it to run()."""
    path = tmp_path / "orders.flow"
    path.write_text('lookup crm.find(email: "a") as c\nemit c\n')
    for flow in (flowlang.load(path, bindings=["crm"]), flowlang.compile(path.read_text(), name="t.flow")):
        with pytest.raises(flowlang.CheckError, match="unknown connection 'crm'") as info:
            flow.run(state_dir=tmp_path)
        assert "hint: a host binding of this flow: give it to run() as bindings={'crm': ...}" in info.value.render()
        assert flow.run(bindings={"crm": CRM()}, state_dir=tmp_path).ok


def test_an_internal_errors_traceback_logged_for_debugging_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedding program that logs flowlang at debug level with a standard logging.Formatter printed the
    traceback of an unexpected exception as it was (log.debug(..., exc_info=e)), so a secret in its message
    was shown whole, where the record's error said ***. The traceback is formatted and masked by flowlang
    (the record's exc_text), for an iteration's and for a run's. (A bug is made here: upper() raising.)"""
    import io
    import logging

    from flowlang.runtime.builtins import default_registry

    canary = 'canary-"9d2f"\\x/1e+x wörd-😀-' + "k7Q\\\"z" * 40

    def broken(s: Any) -> Any:
        raise RuntimeError(f"a bug that shows {s.reveal()}")

    upper = default_registry().get("upper")
    assert upper is not None
    monkeypatch.setattr(upper, "fn", broken)
    monkeypatch.setattr(upper, "direct", None)
    shown = io.StringIO()
    handler = logging.StreamHandler(shown)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("flowlang")
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    logger.addHandler(handler)
    try:
        result = flowlang.compile("for each i in [1]\n  emit upper(secret.T)\nend\nemit upper(secret.T)\n").run(
            secrets={"T": canary})
    finally:
        logger.removeHandler(handler)
    assert result.status == "failed" and len(result.errors) == 1
    text = shown.getvalue()
    assert "internal error in an iteration\nTraceback" in text and "internal error in a run\nTraceback" in text
    assert text.count("\nRuntimeError: a bug that shows ***\n") == 2  # the two tracebacks
    assert canary not in text and "k7Q" not in text


def test_a_send_that_names_no_operation_calls_the_bindings_write(tmp_path: Path) -> None:
    """`send out to crm` (no operation) to a host binding called crm.''(record): every record failed with
    "the binding 'crm' has no method ''". It calls crm.write(record), the default write of every
    connector; a binding without write is refused before anything runs, saying how to name the method."""
    class Sink:
        def __init__(self) -> None:
            self.written: list[Any] = []

        def write(self, record: Any, tag: str = "") -> dict[str, Any]:
            self.written.append((record, tag))
            return {"ok": True}

    sink = Sink()
    text = "for each o in input\n  send {id: o.id} to crm\n  send {id: o.id} to crm.write(tag: \"t\")\nend\n"
    flow = flowlang.compile(text, name="w.flow")
    result = flow.run(bindings={"crm": sink}, input=[{"id": 1}, {"id": 2}], state_dir=tmp_path)
    assert result.ok, result.errors
    assert sink.written == [({"id": 1}, ""), ({"id": 1}, "t"), ({"id": 2}, ""), ({"id": 2}, "t")]
    assert result.stats.sent == 4

    class SaveOnly:
        def __init__(self) -> None:
            self.saved: list[Any] = []

        def save(self, record: Any) -> None:
            self.saved.append(record)

    only = SaveOnly()
    with pytest.raises(flowlang.UsageError) as refused:
        flow.run(bindings={"crm": only}, input=[{"id": 1}], state_dir=tmp_path)
    message = str(refused.value)
    assert message.startswith("w.flow:2:")
    assert "the binding 'crm' has no method 'write'" in message
    assert "calls crm.write(record); name the method: send r to crm.<method>" in message
    assert "its methods: save" in message and only.saved == []


def test_a_run_freezes_the_heap_it_starts_with_and_lets_it_go_at_its_end(tmp_path: Path) -> None:
    """runtime/heap.py: no full collection of the run walks the heap there before it (the imports, the
    compiled flow); after the run nothing stays frozen, so a process that compiles and runs many flows
    collects what they leave as before; a cycle dropped before the run is collected after it."""
    import gc

    if gc.get_freeze_count() or not gc.isenabled():
        pytest.skip("this process froze its heap or turned collection off itself")
    during: list[int] = []
    (tmp_path / "child.flow").write_text("emit 2\n")
    flow = flowlang.compile('emit 1\nrun "child.flow"\nemit 3\n', name="main.flow", base_dir=tmp_path)
    for _ in range(2):  # twice: the second run freezes again what the first let go
        result = flow.run(state_dir=tmp_path / "state", on_output=lambda v: during.append(gc.get_freeze_count()))
        assert result.ok, result.error
        assert gc.get_freeze_count() == 0
    assert len(during) == 6 and all(n > 0 for n in during), during  # the child's run under the same freeze

    class Node:
        pass

    held = [Node()]
    held[0].me = held[0]  # type: ignore[attr-defined]  # a cycle, made before the run: frozen in it
    gone = weakref.ref(held[0])
    result = flow.run(state_dir=tmp_path / "state", on_output=lambda v: held.clear())  # dropped in the run
    assert result.ok, result.error
    gc.collect()
    assert gone() is None  # collected once the run let the heap go


def test_a_run_leaves_a_heap_the_embedder_froze_as_it_was(tmp_path: Path) -> None:
    """A process that froze its own heap (a pre-fork server's gc.freeze()) keeps it frozen: a run neither
    freezes more nor unfreezes it."""
    import gc

    if gc.get_freeze_count():
        pytest.skip("this process froze its heap itself")
    flow = flowlang.compile("emit 1\n", name="main.flow", base_dir=tmp_path)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        result = flow.run(state_dir=tmp_path / "state")
        assert result.ok, result.error
        assert 0 < gc.get_freeze_count() <= frozen  # still frozen (objects freed by their counts leave it)
    finally:
        gc.unfreeze()


def test_a_misspelt_binding_gets_did_you_mean_when_the_bindings_are_named() -> None:
    """compile(text, bindings=["crm"]) of `send c to crn.save` said 'unknown connection 'crn'' with the
    hint 'open it first: use name = connector(...)', as if no binding were named; the named bindings are
    among the names it may have meant."""
    with pytest.raises(flowlang.CheckError) as refused:
        flowlang.compile("lookup crm.find(email: 'a') as c\nsend c to crn.save\n", bindings=["crm"])
    assert refused.value.render().endswith("<flow>:2:11: error: unknown connection 'crn'\n"
                                           " 2 | send c to crn.save\n"
                                           "   |           ^^^\n"
                                           "   = hint: did you mean 'crm'?"), refused.value.render()
