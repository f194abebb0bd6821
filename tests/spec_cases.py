"""The spec corpus: tests/spec/*.flow files hold many small cases with inline expectations.

    ### name of the case
    #params: {"since": "2024"}        run parameters (JSON), optional
    #input: [1, 2]                    the input payload (JSON), optional
    emit 1 + 1
    #> 2                              the next emitted value (JSON; numbers compare by value)
    #! 3:5 cannot add                 the run fails: error at line:col (of the case) with this text
    #? 2:6 unknown name 'x'           the check (or parse) reports this at line:col
    #failed: 1                        this many records failed
    #log: some text                   a log line contains this text

Lines are numbered from 1 at the line after the `###` header.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).parent / "spec"
LOCATED = re.compile(r"^(\d+):(\d+)\s+(.*)$")


@dataclass
class SpecCase:
    file: str
    name: str
    first_line: int
    text: str
    outputs: list[Any] = field(default_factory=list)
    run_error: tuple[int, int, str] | None = None
    check_errors: list[tuple[int, int, str]] = field(default_factory=list)
    failed: int = 0
    logs: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    input: Any = None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.first_line}:{self.name}"


def _json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _located(text: str) -> tuple[int, int, str]:
    m = LOCATED.match(text.strip())
    if not m:
        raise ValueError(f"expected 'line:col message', got {text!r}")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def parse_file(path: Path) -> list[SpecCase]:
    cases: list[SpecCase] = []
    current: SpecCase | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            current.text = "\n".join(body) + "\n"
            cases.append(current)

    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("###"):
            close()
            current = SpecCase(path.name, line[3:].strip(), number + 1, "")
            body = []
            continue
        if current is None:
            continue
        body.append(line)
        stripped = line.strip()
        if stripped.startswith("#>"):
            current.outputs.append(_json(stripped[2:]))
        elif stripped.startswith("#!"):
            current.run_error = _located(stripped[2:])
        elif stripped.startswith("#?"):
            current.check_errors.append(_located(stripped[2:]))
        elif stripped.startswith("#failed:"):
            current.failed = int(stripped[8:])
        elif stripped.startswith("#log:"):
            current.logs.append(stripped[5:].strip())
        elif stripped.startswith("#params:"):
            current.params = _json(stripped[8:])
        elif stripped.startswith("#input:"):
            current.input = _json(stripped[7:])
    close()
    return cases


def all_cases() -> list[SpecCase]:
    out: list[SpecCase] = []
    for path in sorted(SPEC_DIR.glob("*.flow")):
        out.extend(parse_file(path))
    return out


def focused(cases: list[SpecCase], focus: str) -> list[SpecCase]:
    """The cases of the files named in `focus` ("loops.flow", "loops", or several, comma-separated); all
    cases when it is empty. A name that matches no file is an error, not an empty run."""
    if not focus.strip():
        return cases
    names = {n.strip() if n.strip().endswith(".flow") else n.strip() + ".flow" for n in focus.split(",") if n.strip()}
    known = {c.file for c in cases}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"FLOWLANG_SPEC names no spec file: {', '.join(unknown)} (files: {', '.join(sorted(known))})")
    return [c for c in cases if c.file in names]


def same(expected: Any, actual: Any) -> bool:
    """Equality as the acceptance runner has it: numbers by value, booleans only to booleans."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | Decimal) and isinstance(actual, int | Decimal):
        return Decimal(expected) == Decimal(actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual, strict=True))
    return type(expected) is type(actual) and expected == actual
