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


def test_sdist_holds_the_license(tmp_path: Path) -> None:
    import tarfile

    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(next(tmp_path.glob("flowlang-*.tar.gz"))) as sdist:
        names = sdist.getnames()
    assert any(n.endswith("/LICENSE") for n in names), names


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
