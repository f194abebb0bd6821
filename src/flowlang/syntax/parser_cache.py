"""The built parser kept between processes, so a start of `flowlang` does not build it.

Lark's own cache (`cache=True`) stores the parse tables in a serialized form that is rebuilt into
dicts on every load (~20 ms of each `flowlang run`); this module keeps the whole built `Lark` object
as one pickle (~5 ms to load) in the user's cache folder (`$XDG_CACHE_HOME/flowlang`, else
`~/.cache/flowlang`).

A cache file is used only when everything the parser is built from is the same: the file starts
with its key (this module's format number, the versions of Python and Lark, the grammar text and
the parser's options), compared in full with the running one's, so a changed grammar or an
upgraded Lark builds and stores the parser again. A missing, unreadable, corrupt or foreign file
(not the user's own, or writable by others) is never an error: the parser is built, and stored if
the folder can be written (atomically: a concurrent start reads the old file or the new one); the
8 newest are kept.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import types
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lark import Lark
from lark import __version__ as lark_version
from lark.parsers import lalr_analysis

FORMAT = 1  # raise when what is stored changes shape
KEPT = 8  # parsers kept in the folder (other grammars, Lark or Python versions); the oldest go first


def cache_folder(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """Where the parser is kept: $XDG_CACHE_HOME/flowlang, else ~/.cache/flowlang (None when
    there is no home folder)."""
    base = environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "flowlang"
    try:
        return Path.home() / ".cache" / "flowlang"
    except (RuntimeError, KeyError):  # no HOME and no password entry
        return None


def cache_key(grammar: str, options: dict[str, Any]) -> tuple[Any, ...]:
    """Everything the built parser depends on, compared in full before a stored one is used."""
    shown = {name: _describe(value) for name, value in sorted(options.items())}
    return (FORMAT, sys.version, lark_version, grammar, repr(shown))


def _describe(value: Any) -> Any:
    """An option as text: a post-lexer by its class and the terminals it always accepts."""
    if isinstance(value, str | int | float | bool | list | tuple | type(None)):
        return value
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}{getattr(value, 'always_accept', '')!r}"


def load_or_build(key: tuple[Any, ...], build: Callable[[], Lark], folder: Path | None) -> Lark:
    """The stored parser for `key` from `folder`, else `build()` (stored there for the next start)."""
    if folder is None:
        return build()
    path = cache_path(folder, key)
    found = _load(path, key)
    if found is not None:
        return found
    built = build()
    _store(path, key, built)
    return built


def cache_path(folder: Path, key: tuple[Any, ...]) -> Path:
    """The file for `key` (named by a checksum of it; the key inside is what decides)."""
    return folder / f"parser-{zlib.crc32(repr(key).encode('utf-8', 'surrogatepass')):08x}.pickle"


def _load(path: Path, key: tuple[Any, ...]) -> Lark | None:
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
                return None  # another user's (or anyone's) file is never unpickled
            unpickler = pickle.Unpickler(f)
            if unpickler.load() != key:
                return None
            found = unpickler.load()
    except Exception:  # missing, unreadable, truncated or made by other code: build it again
        return None
    return found if isinstance(found, Lark) else None


def _store(path: Path, key: tuple[Any, ...], parser: Lark) -> None:
    import tempfile

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".parser-", suffix=".tmp")
    except OSError:  # a read-only home or cache folder: every start builds the parser
        return
    try:
        with os.fdopen(fd, "wb") as f:
            pickler = _Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.dump(key)
            pickler.dump(parser)
        os.replace(temporary, path)
    except Exception:  # a full disk, or a parser that cannot be pickled: keep nothing
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return
    _prune(path.parent)


def _prune(folder: Path) -> None:
    """Keep the KEPT newest parsers (each grammar change leaves one behind)."""
    try:
        found = sorted(folder.glob("parser-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in found[KEPT:]:
            old.unlink()
    except OSError:  # another process pruned first
        pass


def _module(name: str) -> types.ModuleType:
    return importlib.import_module(name)


def _action(name: str) -> Any:
    return getattr(lalr_analysis, name)


class _Pickler(pickle.Pickler):
    """Pickles what a built Lark object holds that plain pickle cannot: the regex module it uses
    (kept by name) and the parse table's Shift and Reduce markers, which the parser compares by
    identity (so they are looked up again on load, never copied)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            return _module, (obj.__name__,)
        if obj is lalr_analysis.Shift:
            return _action, ("Shift",)
        if obj is lalr_analysis.Reduce:
            return _action, ("Reduce",)
        return NotImplemented
