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
