"""The layering of ARCHITECTURE.md: each third-party library is imported only where it belongs,
and library code never prints."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src" / "flowlang"
ALLOWED = {
    "lark": ("syntax",),
    "rich": ("cli", "repl"),
    "prompt_toolkit": ("repl",),
    "pygments": ("repl",),
    "httpx": ("connectors",),
    "aiohttp": ("connectors", "serve"),
    "prometheus_client": ("serve", "telemetry"),
    "croniter": ("check", "serve"),
    "sqlalchemy": ("connectors",),
    "opentelemetry": ("telemetry",),
    "aiosmtplib": ("connectors",),
    "botocore": ("connectors",),
    "keyring": ("connectors",),
    "dotenv": ("connectors",),
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_third_party_imports_stay_in_their_layer() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        package = path.relative_to(SRC).parts[0]
        for lib, homes in ALLOWED.items():
            if lib in imports(path) and package not in homes:
                problems.append(f"{path.relative_to(ROOT)} imports {lib}")
    assert problems == []


def test_no_print_in_library_code() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_eval_or_exec_of_user_text() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_every_module_says_what_it_owns() -> None:
    missing = [str(p.relative_to(ROOT)) for p in SRC.rglob("*.py")
               if p.read_text().strip() and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []
