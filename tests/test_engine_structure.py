"""One home for each rule of the compiler (docs/architecture.md, "Where the engine's rules live"):
checked on the source, so a second copy cannot creep back in."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src" / "flowlang"


def module_names(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def definitions(name: str) -> list[str]:
    """Where `name` is defined at module level or as a method/class anywhere in src/."""
    places = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            defined = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name
            assigned = isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                            for t in node.targets)
            if defined or assigned:
                places.append(str(path.relative_to(SRC)))
    return places


def test_the_compiler_imports_nothing_from_the_http_connector() -> None:
    offenders = [str(p.relative_to(SRC)) for p in (SRC / "compile").rglob("*.py")
                 if any(m.startswith("flowlang.connectors.http") for m in module_names(p))]
    assert offenders == []


def test_steps_and_evaluators_are_defined_once() -> None:
    assert definitions("Step") == ["compile/steps.py"]
    assert definitions("Eval") == ["compile/steps.py"]
    assert definitions("run_step") == ["compile/steps.py"]


def test_each_statement_kind_has_one_home() -> None:
    assert definitions("s_ForEach") == ["compile/loops.py"]
    assert definitions("LoopEntry") == ["compile/loops.py"]
    assert definitions("function_body") == ["compile/functions.py"]
    assert definitions("CompiledFunction") == ["compile/functions.py"]


def test_keyword_lists_exist_once() -> None:
    for name in ("KEYWORDS", "BLOCK_OPENERS", "CONSTANTS"):
        assert definitions(name) == [], name
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    assert "__ANON" not in text
    assert '"parallel", "batch"' not in text  # a hand-written copy of the keyword list


def test_no_step_is_built_with_a_positional_boolean() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Step" and \
                    str(path.relative_to(SRC)) != "compile/steps.py":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
