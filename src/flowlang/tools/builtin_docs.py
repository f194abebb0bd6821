"""The builtin reference, docs/builtins.md, generated from the builtin registry: every builtin's
signature (its Python signature, as the checker reads it) and docstring, grouped as the builtin
modules group them. The docstrings are the single source: edit them, then regenerate.

    python -m flowlang.tools.builtin_docs                       # print the page
    python -m flowlang.tools.builtin_docs --write docs/builtins.md
    python -m flowlang.tools.builtin_docs --check docs/builtins.md   # exit 1 when it differs

A docstring is a summary line (`name(args): what it gives`), paragraphs, and an `Examples:` section
whose lines are `expression -> result` (the result as the flow would emit it, in JSON) or a bare
expression (shown, and checked by the tests, but not run: a time, a random value, a secret).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowlang.runtime.builtins import Builtin, auth, collections, data, default_registry, numbers, text, time

FIX = "python -m flowlang.tools.builtin_docs --write docs/builtins.md"

GROUPS: list[tuple[str, str, tuple[Builtin, ...]]] = [
    ("Text", "A null text gives null (and `starts_with`, `ends_with`, `contains`, `regex_match` give false). "
             "A secret given to a text function gives a secret: it stays `***` in every output (each part "
             "`split` gives is a secret, and `join` of a list holding a secret gives a secret), and its text "
             "is masked as the secret's is when an API echoes it (up to 100 such texts a run).", text.BUILTINS),
    ("Numbers", "Numbers are exact: integers, or decimals that keep their digits (`0.1 + 0.2 == 0.3`). A null "
                "gives null; the aggregates `min`, `max`, `sum` and `avg` leave nulls out, as SQL does. CSV cells "
                "are text: convert them with `number()` first.", numbers.BUILTINS),
    ("Lists and objects", "Field names may be dotted paths (`\"customer.email\"`). A null list is an empty "
                          "one. A record stream (a `call` of a paginated API, a file, a query) is read into "
                          "memory when one of these needs all of it.", collections.BUILTINS),
    ("Dates and times", "Datetimes always carry a time zone (UTC when the text has none) and compare by the "
                        "instant they name. A datetime shows as ISO 8601, with `Z` for UTC; a duration as ISO "
                        "8601 too (`PT12H`).", time.BUILTINS),
    ("Data", "JSON, base64, URL encoding, hashing, identifiers and types.", data.BUILTINS),
    ("Authentication", "For the `auth:` key of `use ... = http(...)` (and of connectors that take one); give "
                       "credentials as `secret.NAME`.", auth.BUILTINS),
]


@dataclass(frozen=True)
class Example:
    expression: str
    result: str | None  # JSON of what `emit` gives; None: shown and checked, not run


@dataclass(frozen=True)
class Entry:
    name: str
    signature: str
    summary: str
    paragraphs: tuple[str, ...]
    examples: tuple[Example, ...]
    bare: str  # the signature without defaults: `round(value, places)`


def parse_help(text: str) -> tuple[str, tuple[str, ...], tuple[Example, ...]]:
    """A docstring's summary line, its paragraphs and its examples."""
    lines = text.strip().splitlines()
    summary = lines[0].strip() if lines else ""
    paragraphs: list[str] = []
    examples: list[Example] = []
    current: list[str] = []
    in_examples = False
    for line in [*lines[1:], ""]:
        stripped = line.strip()
        if in_examples:
            if stripped:
                expression, arrow, result = stripped.rpartition(" -> ")
                examples.append(Example(expression, result) if arrow else Example(stripped, None))
            continue
        if stripped == "Examples:":
            in_examples = True
        elif stripped:
            current.append(stripped)
            continue
        if current:
            paragraphs.append(" ".join(current))
            current = []
    return summary, tuple(paragraphs), tuple(examples)


def entry(builtin: Builtin) -> Entry:
    summary, paragraphs, examples = parse_help(builtin.help)
    bare = f"{builtin.name}({', '.join(p.name + ('...' if p.variadic else '') for p in builtin.params)})"
    return Entry(builtin.name, builtin.signature(), summary, paragraphs, examples, bare)


def groups() -> list[tuple[str, str, list[Entry]]]:
    """The reference's sections, in order; a builtin of the registry that no group lists goes in a
    last section, so the page never leaves one out."""
    registry = default_registry()
    out: list[tuple[str, str, list[Entry]]] = []
    seen: set[str] = set()
    for title, intro, builtins in GROUPS:
        found = [registry.get(b.name) for b in builtins]
        out.append((title, intro, [entry(b) for b in found if b is not None]))
        seen |= {b.name for b in builtins}
    rest = [entry(b) for name, b in sorted(registry.all().items()) if name not in seen]
    if rest:
        out.append(("Other", "", rest))
    return out


def _code(text: str) -> str:
    """A code span for a table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def _summary_text(e: Entry) -> str:
    """The summary line: without its usage prefix when that only repeats the signature's names,
    else with the usage as code (`min(list) or min(a, b, ...)`, `round(x, places)`)."""
    end = e.summary.find("): ")
    head, rest = e.summary[:end + 1], e.summary[end + 3:]
    if end < 0 or not head.startswith(f"{e.name}("):
        return e.summary
    if head == e.bare:
        return rest
    return f"`{head}`: {rest}"


def render() -> str:
    sections = groups()
    lines = [
        "# Built-in functions",
        "",
        f"<!-- Generated from the builtins' docstrings (src/flowlang/runtime/builtins/) by `{FIX}`; "
        "edit the docstrings, not this page: tests/test_builtin_reference.py fails when it is out of date "
        "and runs every example. -->",
        "",
        "Every function a flow can call, with its signature and what it does. Arguments may be given by "
        "position or by name (`round(total, places: 2)`); an argument shown as `name: value` is optional and "
        "has that default, `name...` takes any number of values. `flowlang check` checks every call against "
        "these signatures before anything runs. A result in the examples is what `emit` would write (JSON).",
        "",
        "Operators (`+ - * / % == != < <= > >= and or not in ??`), `[x for x in list if ...]` and string "
        "interpolation are in [language.md](language.md#expressions).",
        "",
    ]
    for title, _, entries in sections:
        names = ", ".join(f"[{e.name}](#{e.name})" for e in entries)
        lines.append(f"- **{title}**: {names}")
    for title, intro, entries in sections:
        lines += ["", f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        for e in entries:
            lines += [f"### {e.name}", "", f"`{e.signature}`", "", _summary_text(e), ""]
            for p in e.paragraphs:
                lines += [p, ""]
            ran = [x for x in e.examples if x.result is not None]
            shown = [x for x in e.examples if x.result is None]
            if ran:
                lines += ["| example | gives |", "|---|---|"]
                lines += [f"| {_code(x.expression)} | {_code(x.result or '')} |" for x in ran]
                lines.append("")
            if shown:
                lines += ["For example: " + ", ".join(_code(x.expression) for x in shown) + ".", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowlang.tools.builtin_docs",
                                     description="Generate docs/builtins.md from the builtin registry.",
                                     allow_abbrev=False)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", metavar="PATH", help="write the page to PATH")
    where.add_argument("--check", metavar="PATH", help="exit 1 when PATH differs from the generated page")
    args = parser.parse_args(argv)
    page = render()
    if args.write:
        Path(args.write).write_text(page, encoding="utf-8")
        return 0
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != page:
            sys.stderr.write(f"{path} is out of date; regenerate it with: {FIX}\n")
            return 1
        return 0
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
