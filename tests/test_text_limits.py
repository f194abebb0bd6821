"""The size limit on text (issue 10, Medium: every builtin that builds text checks max_value_items):
str(), json_string() and "{...}" strings of a value that holds one big value many times are refused
before their text is built, and a decimal with a huge exponent reads in E notation instead of a
billion zeros. Run in a subprocess with a timeout as a safety net: before, some of them never ended."""

from __future__ import annotations

import json
from pathlib import Path

import flowlang
from conftest import run_cli

SHARED = ('let s = pad_left("", 1000, "x")\n  let l = [s for i in range(0, 10000)]\n'
          "  let m = [l for i in range(0, 10000)]\n")  # 100 GB of text: 10,000 times a list of 10,000 1 KB strings
CASES = {  # the expression (after SHARED) and what its failed record says
    "str": ("len(str(m))", "str() would make a text of at least"),
    "json_string": ("len(json_string([m, m]))", "json_string() would make a text of at least"),
    "interpolated list": ('len("{m}")', "the text of a list would make a text of at least"),
    "interpolated strings": ("len(\"{s}{l[0]}{pad_left('', 3000000, 'x')}{pad_left('', 3000000, 'y')}\")",
                             "the string would be 6002000 characters, more than the limit of 5000000"),
    "join": ('len(join([l, l], ","))', "the text of a list would make a text of at least"),
}


def test_text_of_shared_values_is_refused_before_it_is_built(tmp_path: Path) -> None:
    loops = "".join(f"for each case in [{json.dumps(name)}]\n  {SHARED}  emit {expr}\nend\n"
                    for name, (expr, _) in CASES.items())
    (tmp_path / "f.flow").write_text(loops)
    done = run_cli("run", "f.flow", cwd=tmp_path, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    errors = [json.loads(x) for x in run_cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    said = {e["record"]: e for e in errors}
    assert set(said) == set(CASES)
    for name, (_, message) in CASES.items():
        assert message in said[name]["message"], (name, said[name]["message"])
        assert "(max_value_items)" in said[name]["message"] and said[name]["location"].startswith("f.flow:")


def test_a_try_does_not_catch_a_value_past_the_size_limit(tmp_path: Path) -> None:
    """A `try` caught the size limit of a builtin or an interpolation (kind limit, but not of the class
    `try` let through): `on error` ran and the record went on, while the same limit reached by `+` of
    two lists failed the record. docs/language.md: `try` does not catch limit errors; each fails its record."""
    cases = {**CASES, "list +": ("len(l + m + l + m + l + m)", "a list of 6000000 items is more than the limit"),
             "text +": ("len(t + t)", "a string of 6000000 characters is more than the limit of 5000000")}
    big = 'let l = range(0, 3000000)\n  let m = l\n  let t = pad_left("", 3000000, "x")\n'
    loops = "".join(f"for each case in [{json.dumps(name)}]\n  {SHARED if name in CASES else big}"
                    f"  try\n    emit {expr}\n  on error as e\n    emit {{caught: e.kind}}\n  end\nend\n"
                    for name, (expr, _) in cases.items())
    (tmp_path / "f.flow").write_text(loops)
    done = run_cli("run", "f.flow", cwd=tmp_path, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""  # no on error ran
    errors = [json.loads(x) for x in run_cli("errors", "f.flow", "--json", cwd=tmp_path).stdout.splitlines()]
    said = {e["record"]: e for e in errors}
    assert set(said) == set(cases)
    for name, (_, message) in cases.items():
        assert message in said[name]["message"] and said[name]["kind"] == "limit", (name, said[name])


def test_a_decimal_with_a_huge_exponent_reads_in_e_notation(tmp_path: Path) -> None:
    (tmp_path / "f.flow").write_text(
        'emit [str(1e999999999), "{-1e4300}", str(2e4299) == "2" + pad_left("", 4299, "0"), str(1.5e-3)]\n')
    result = flowlang.load(tmp_path / "f.flow").run(state_dir=tmp_path / "state")
    assert result.error is None, result.error
    assert result.outputs == [["1E+999999999", "-1E+4300", True, "0.0015"]]


def test_regex_replace_of_a_million_matches_is_quick_and_a_slow_one_is_not_called_backtracking(
        tmp_path: Path) -> None:
    # every match went through a Python call: 1,000,000 matches took 5 s and failed with "the pattern
    # 'a' took longer than 1s on this text (catastrophic backtracking?)"
    flow = flowlang.compile('for each r in input\n  emit len(regex_replace(r.s, r.p, r.t))\nend\n')
    text = "a" * 1_000_000
    result = flow.run(input=[{"s": text, "p": "a", "t": "b"}, {"s": text[:800_000], "p": "(a)", "t": "[\\1]"},
                             {"s": "2024-05-01", "p": "(\\d+)-(\\d+)-(\\d+)", "t": "\\3.\\2.\\1"},
                             {"s": text, "p": "", "t": text}])
    assert result.outputs == [1_000_000, 2_400_000, 10]
    [failure] = result.errors  # the last would be 1,000,001,000,000 characters: the limit says so
    assert "would make a text of" in failure.message and "max_value_items" in failure.message


def test_format_date_cannot_build_a_text_past_the_limit() -> None:
    # "%c" writes 24 characters: a format of 1,000,000 of them made a text of 24,000,000
    flow = flowlang.compile('for each f in input\n  emit len(format_date(date("2024-05-01"), f))\nend\n')
    result = flow.run(input=["%c" * 1_000_000, "%c" * 1_000])
    assert result.outputs == [24_000]
    [failure] = result.errors
    assert failure.message == ("format_date() would make a text of 24000000 characters, more than the limit of "
                               "5000000 (max_value_items)")
    assert (failure.location or "").endswith(":2:12")


def test_a_text_past_the_limit_is_counted_in_characters() -> None:
    """str(), pad_left() and the other builtins that build text said 'would make a value of 13 items'
    of a text (the check was shared with lists); a text is counted in characters, a list in items."""
    flow = flowlang.compile('for each x in input\n  emit if x == 1 then str(12345678901.5) else if x == 2 '
                            'then pad_left("a", 12) else range(0, 12)\nend\n')
    result = flow.run(input=[1, 2, 3], limits=flowlang.Limits(max_value_items=10))
    assert result.outputs == []
    assert [e.message for e in result.errors] == [
        "str() would make a text of 13 characters, more than the limit of 10 (max_value_items)",
        "pad_left() would make a text of 12 characters, more than the limit of 10 (max_value_items)",
        "range() would make a value of 12 items, more than the limit of 10 (max_value_items)"]
