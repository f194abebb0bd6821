"""Start-up stays cheap (issue 15): `import flowlang` and `flowlang --version` load no compiler, and a
short `flowlang run` on a pipe without a project file loads neither pydantic nor rich. What is
imported is checked, never how long it took (benchmarks/startup.py measures that)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, cli

PROBE = """
import json, runpy, sys
sys.argv = ["flowlang", *sys.argv[1:]]
try:
    runpy.run_module("flowlang", run_name="__main__")
except SystemExit as e:
    status = e.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def modules_after(*args: str, cwd: Path) -> tuple[int, set[str], str]:
    """Run `flowlang ARGS` in a fresh process; its status, the modules it imported and its stdout."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["status"], set(report["modules"]), done.stdout


def test_import_flowlang_loads_no_compiler() -> None:
    code = ("import sys, flowlang; heavy = [m for m in ('flowlang.api', 'flowlang.compile', 'lark', 'asyncio') "
            "if m in sys.modules]; print(heavy); print(flowlang.load.__module__, flowlang.Limits.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.splitlines() == ["[]", "flowlang.api Limits"]


def test_lazy_names_are_the_documented_api() -> None:
    import flowlang

    for name in flowlang.__all__:
        assert getattr(flowlang, name) is not None
    assert set(flowlang.__all__) <= set(dir(flowlang))


def test_version_imports_nothing_of_the_engine(tmp_path: Path) -> None:
    status, modules, out = modules_after("--version", cwd=tmp_path)
    assert (status, out) == (0, "flowlang 0.1.0\n")
    assert not {m for m in modules if m.startswith(("flowlang.cli.console", "flowlang.api", "rich", "lark",
                                                    "pydantic", "asyncio", "argparse"))}


def test_version_answers_as_argparse_did() -> None:
    result = cli("--version")
    assert (result.status, result.stdout) == (0, "flowlang 0.1.0\n")


def test_short_run_on_a_pipe_loads_no_pydantic_and_no_rich(tmp_path: Path) -> None:
    (tmp_path / "one.flow").write_text("emit 1\n")
    status, modules, out = modules_after("run", "one.flow", "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert (status, out) == (0, "1\n")
    assert not {m.split(".")[0] for m in modules} & {"pydantic", "rich", "aiohttp", "sqlalchemy"}


def test_short_run_loads_neither_the_other_commands_nor_what_the_flow_does_not_use(tmp_path: Path) -> None:
    (tmp_path / "one.flow").write_text("emit 1\n")
    status, modules, out = modules_after("run", "one.flow", "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert (status, out) == (0, "1\n")
    unused = ("flowlang.testing", "flowlang.check.triggers", "flowlang.serve", "tomllib", "zoneinfo", "difflib")
    assert not {m for m in modules if m.startswith(unused)}


def test_only_the_program_leaves_its_objects_to_the_os(tmp_path: Path) -> None:
    """`flowlang` freezes the collector's objects as it ends (the collections at exit cost ~50 ms);
    main() called from Python (tests, embedding) leaves the caller's collector alone."""
    import gc

    (tmp_path / "one.flow").write_text("emit 1\n")
    before = gc.get_freeze_count()
    assert cli("run", "one.flow", "--state-dir", str(tmp_path / "s"), cwd=tmp_path).stdout == "1\n"
    assert gc.get_freeze_count() == before
    code = ("import gc, sys; from flowlang.cli.main import main; sys.argv = ['flowlang', 'run', 'one.flow', "
            f"'--state-dir', {str(tmp_path / 's')!r}]; status = main(); "
            "print(status, gc.get_freeze_count() > 0, gc.isenabled(), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert (done.stdout, done.stderr.splitlines()[-1]) == ("1\n", "0 True True")


def test_a_project_file_still_is_validated(tmp_path: Path) -> None:
    (tmp_path / "one.flow").write_text("emit 1\n")
    (tmp_path / "flowlang.toml").write_text("[secrets]\norder = ['nope']\n")
    result = cli("run", "one.flow", "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert result.status == 2
    assert "flowlang.toml" in result.stderr and "secrets.order" in result.stderr


def test_compile_is_the_function_after_the_compile_package_is_imported() -> None:
    code = ("import flowlang; import flowlang.compile.expressions; "
            "print(flowlang.compile('emit 1', name='a.flow').run().outputs)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[1]"
