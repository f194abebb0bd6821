"""An installed wheel carries the grammar and the stdlib, and loads them from inside itself."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    (out / "tmp").mkdir()  # the build's temporary files (test_the_build_leaves_no_temporary_files)
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(out / "tmp")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(out.glob("flowlang-*.whl"))


def test_wheel_holds_grammar_and_stdlib(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "flowlang/_data/grammar/flowlang.lark" in names
    stdlib = [n for n in names if n.startswith("flowlang/_data/stdlib/") and n.endswith(".toml")]
    assert len(stdlib) == len(list((ROOT / "stdlib").glob("*.toml")))
    assert "flowlang/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text and "Classifier: Typing :: Typed" in text
    assert "Provides-Extra: postgres" in text and "Provides-Extra: mysql" in text


def test_wheel_holds_the_c_speedup_and_uses_it(wheel: Path, tmp_path: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    built = [n for n in names if n.startswith("flowlang/_plain.") and n.endswith((".so", ".pyd"))]
    assert built, names  # compiled by hatch_build.py: this machine has a C compiler (the tests need one)
    assert "-py3-none-any" not in wheel.name  # a wheel with a compiled module is tagged for this Python
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = "import flowlang.runtime.values as v; print(v._c_is_plain is not None, v.is_plain([{'a': 1.5}]))"
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]


def test_a_wheel_builds_without_a_c_compiler_and_checks_in_python(tmp_path: Path) -> None:
    env = {**os.environ, "CC": "/nonexistent/cc"}  # setuptools compiles with $CC: it fails, the build goes on
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the optional C speed-up was not built" in proc.stdout + proc.stderr
    wheel = next(tmp_path.glob("flowlang-*.whl"))
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("flowlang/_plain.") and ".so" in n]
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import flowlang, flowlang.runtime.values as v; assert v._c_is_plain is None; "
            "print(flowlang.compile('for each r in input\\n  emit r.a * 2\\nend').run(input=[{'a': 1.5}]).outputs)")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[Decimal('3.0')]"


def test_the_build_leaves_no_temporary_files(wheel: Path) -> None:
    # the C speed-up's compiler files (a directory flowlang-speedup-* of 112 KB) were left in the temporary
    # directory by every wheel built
    assert not list((wheel.parent / "tmp").glob("flowlang-speedup-*"))


EDITABLE = """if True:
    import os, sys
    sys.path.insert(0, os.getcwd())
    from hatchling.bridge.app import Application
    from hatch_build import SpeedupBuildHook
    hook = SpeedupBuildHook(os.getcwd(), {}, None, None, os.getcwd(), "wheel", Application())
    hook.initialize("editable", {"force_include": {}})
    hook.finalize("editable", {}, "")
"""


@pytest.mark.parametrize("how", ["CC missing", "FLOWLANG_NO_C_SPEEDUP", "built"])
def test_an_editable_install_leaves_no_build_of_the_c_file_as_it_was(how: str, tmp_path: Path) -> None:
    # pip install -e . put the compiled module beside the sources and left it there when it was installed
    # again without it (the C file edited so that it no longer compiles, no compiler, FLOWLANG_NO_C_SPEEDUP=1):
    # the install said 'the same check in Python is used instead' and the module of the old C file was used
    import shutil
    import sysconfig

    shutil.copy(ROOT / "hatch_build.py", tmp_path)
    (tmp_path / "src" / "flowlang").mkdir(parents=True)
    shutil.copy(ROOT / "src" / "flowlang" / "_plain.c", tmp_path / "src" / "flowlang")
    old = tmp_path / "src" / "flowlang" / ("_plain" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    old.write_bytes(b"a build of the C file as it was")
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    env.pop("FLOWLANG_NO_C_SPEEDUP", None)
    if how == "CC missing":
        env["CC"] = "/nonexistent/cc"
    elif how == "FLOWLANG_NO_C_SPEEDUP":
        env["FLOWLANG_NO_C_SPEEDUP"] = "1"
    proc = subprocess.run([sys.executable, "-c", EDITABLE], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("the optional C speed-up was not built" in proc.stdout + proc.stderr) is (how == "CC missing")
    if how == "built":
        assert old.read_bytes().startswith(b"\x7fELF") or sys.platform != "linux"
    else:
        assert not old.exists()
    assert not list((tmp_path / "tmp").glob("flowlang-speedup-*"))


def test_sdist_holds_the_license(tmp_path: Path) -> None:
    import tarfile

    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(next(tmp_path.glob("flowlang-*.tar.gz"))) as sdist:
        names = sdist.getnames()
    assert any(n.endswith("/LICENSE") for n in names), names
    assert any(n.endswith("/src/flowlang/_plain.c") for n in names), names  # the C speed-up builds from an sdist
    assert any(n.endswith("/hatch_build.py") for n in names), names


def test_installed_wheel_reads_its_own_grammar(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import flowlang, flowlang.resources as r, pathlib; "
            "assert '_data' in str(r._data_dir('grammar')), r._data_dir('grammar'); "
            "f = flowlang.compile('emit 1 + 1'); print(f.run().outputs)")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2]"
