"""The layering of ARCHITECTURE.md (drawn in docs/architecture.md): every import in src/ points down
the internal order, each third-party library is imported only where it belongs, and library code
never prints."""

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
    "prance": ("openapi",),
    "aiohttp": ("connectors", "serve"),
    "prometheus_client": ("serve", "telemetry"),
    "croniter": ("check", "serve"),
    "sqlalchemy": ("connectors",),
    "opentelemetry": ("telemetry",),
    "aiosmtplib": ("connectors",),
    "botocore": ("connectors",),
    "aiobotocore": ("connectors",),
    "asyncssh": ("connectors",),
    "keyring": ("connectors",),
    "dotenv": ("connectors",),
    "pygls": ("lsp",),
    "lsprotocol": ("lsp",),
    "shtab": ("cli",),
}


# The internal order, lowest first. A module may import its own unit and any lower layer, never a
# unit of its own layer or above (lazy imports and `if TYPE_CHECKING:` imports count too).
# A unit is a top-level module or package of src/flowlang; `cli.main` (the entry point, which
# dispatches to the REPL) and `__main__` sit above everything.
LAYERS: list[tuple[str, ...]] = [
    ("lazy_dataclass",),
    ("source", "resources", "file_replace"),
    ("diagnostics", "ast"),
    ("errors",),
    ("syntax", "runtime", "status", "syncrun", "flow_file"),
    ("connectors", "telemetry", "project_schema"),
    ("environment", "project", "openapi"),
    ("alerts",),
    ("check",),
    ("compile", "picture"),
    ("runner",),
    ("api",),
    ("__init__",),  # flowlang/__init__.py: the embedding API's front door
    ("testing", "serve", "lsp"),  # record/replay, the pytest plugin, serve, the language server: above the API
    ("tools",),  # `python -m flowlang.tools.*`: generators of reference pages in docs/
    ("cli",),
    ("repl",),
    ("cli.main",),
    ("__main__",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# Known knots, each to be untied (not to be added to): file -> module it imports.
KNOWN_UPWARD = {
    # typing only: the Tape protocol names connectors' Connection and ConnectorSpec
    ("src/flowlang/runtime/tape.py", "flowlang.connectors.base"),
    # the version string lives in flowlang/__init__.py (a leaf module for it would untie this)
    ("src/flowlang/telemetry/otel.py", "flowlang.__version__"),
}


def unit_of(module: str) -> str:
    """flowlang.runtime.values -> runtime; flowlang.cli.main -> cli.main; flowlang -> __init__."""
    parts = module.split(".")[1:]
    if not parts or parts[0] == "__version__":
        return "__init__"
    if parts[:2] == ["cli", "main"]:
        return "cli.main"
    return parts[0]


def internal_imports(path: Path) -> set[str]:
    """The flowlang modules (and `from flowlang import name` targets) this file imports."""
    package = ".".join(("flowlang", *path.relative_to(SRC).with_suffix("").parts))
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "flowlang"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module == "flowlang":
                found |= {f"flowlang.{a.name}" for a in node.names}
            elif module.split(".")[0] == "flowlang":
                found.add(module)
    return found


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(".".join(("flowlang", *p.relative_to(SRC).with_suffix("").parts))) for p in SRC.rglob("*.py")}
    assert sorted(units - set(RANK)) == [], "add the new module or package to LAYERS (and docs/architecture.md)"


def test_no_import_points_up() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        mine = unit_of(".".join(("flowlang", *path.relative_to(SRC).with_suffix("").parts)))
        for module in sorted(internal_imports(path)):
            theirs = unit_of(module)
            known = (str(path.relative_to(ROOT)), module) in KNOWN_UPWARD
            if theirs != mine and RANK.get(theirs, -1) >= RANK.get(mine, -1) and not known:
                upward.append(f"{path.relative_to(ROOT)} ({mine}) imports {module} ({theirs})")
    assert upward == []


def test_the_runner_does_not_know_the_api() -> None:
    assert not {m for m in internal_imports(SRC / "runner.py") if unit_of(m) in ("api", "__init__")}


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
        imported = imports(path)  # parsed once a file, not once a library (18 s of the suite)
        for lib, homes in ALLOWED.items():
            if lib in imported and package not in homes:
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
