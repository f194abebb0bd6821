"""Where the grammar and the stdlib connector files are: inside the installed wheel
(`flowlang/_data/`, force-included by the build) or, in a source checkout, at the top level."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def _data_dir(name: str) -> Traversable:
    here = Path(__file__).parent
    if (here / "_data" / name).is_dir():  # the wheel, installed in a folder
        return here / "_data" / name
    checkout = here.resolve().parents[1]
    if (checkout / name).is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / name
    from importlib import resources  # a zipped install (importlib.resources costs ~2 ms a start)

    packaged = resources.files("flowlang") / "_data" / name
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError(f"flowlang is installed without its {name}/ folder")


def grammar_text() -> str:
    """The text of grammar/flowlang.lark."""
    return (_data_dir("grammar") / "flowlang.lark").read_text(encoding="utf-8")


def stdlib_files() -> list[tuple[str, str]]:
    """(file name, text) of every connector file in stdlib/, sorted by name."""
    folder = _data_dir("stdlib")
    found = [(f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".toml")]
    return sorted(found)


def stdlib_path(file_name: str) -> Path | None:
    """Where a stdlib connector file is on disk (for an editor's go to definition), if it is a real file."""
    found = _data_dir("stdlib") / file_name
    return Path(str(found)) if isinstance(found, Path) and found.is_file() else None
