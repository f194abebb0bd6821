"""An installed wheel carries the grammar and the stdlib, and loads them from inside itself."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
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
    import os

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
