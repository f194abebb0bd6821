"""Which `$ref`s of an API description may be followed, judged before anything follows them. A
description often comes from the internet, so its references must not read the user's files
(`$ref: "/etc/passwd"`, `../../secrets.yaml`) nor fetch other addresses: a reference is either inside
the document (`#/components/schemas/Order`) or, for a description read from a file, a relative file
in the description's own folder or below it (`schemas.yaml#/Order`, `common/errors.yaml`), never an
absolute path, never `..`, never a URL (`file:`, `http:`, prance's `python:`), never a link that
leads out of the folder. The files referred to are checked the same way, each once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from flowlang.openapi.document import DescriptionError


def check_file_refs(source: Path, text: str) -> None:
    """Refuse (DescriptionError) the first reference of the description at `source`, or of a file it
    refers to, that is not inside the document or a file in the description's folder."""
    folder = source.resolve().parent
    pending: list[tuple[Path, str]] = [(source, text)]
    seen = {source.resolve()}
    while pending:
        path, body = pending.pop()
        for ref, where in _refs(path, body):
            target = _allowed_file(path, body, ref, where, folder)
            if target is not None and target not in seen:
                seen.add(target)
                pending.append((target, _read(path, body, ref, where, target)))


def check_url_refs(url: str, text: str) -> None:
    """A description read from a URL may refer only inside itself: a relative reference would be one
    more request, to an address the description chose."""
    for ref, where in _refs(None, text, url):
        if not ref.startswith("#"):
            raise DescriptionError(_placed(url, text, ref, where, "refers outside the description, which was read "
                                                                  "from a URL: a description from a URL may refer "
                                                                  "only inside itself (#/...); download it and its "
                                                                  "files into one folder to import them"))


def _refs(path: Path | None, text: str, url: str | None = None) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Each string `$ref` of one file, with the keys that lead to it."""
    from prance.util.formats import parse_spec
    from prance.util.iterators import reference_iterator

    try:
        spec = parse_spec(text, str(path) if path is not None else url)
    except Exception:  # not JSON or YAML: the reader says so later, with nothing followed
        return
    for _, ref, item_path in reference_iterator(spec):
        if isinstance(ref, str):
            yield ref, tuple(item_path)


def _allowed_file(path: Path, text: str, ref: str, where: tuple[Any, ...], folder: Path) -> Path | None:
    """The file a reference reads (None: inside the document itself), or DescriptionError."""
    if ref.startswith("#"):
        return None
    parts = urlsplit(ref)
    name = ref.partition("#")[0]
    if parts.scheme or name.startswith("//") or re.match(r"^[A-Za-z]:[\\/]", name):
        why = "is a URL or a drive" if not parts.scheme else f"is a {parts.scheme}: URL"
        raise DescriptionError(_placed(str(path), text, ref, where, f"{why}: a description may refer only inside "
                                                                    "itself (#/...) or to a file beside it "
                                                                    "(schemas.yaml#/Order)"))
    if name.startswith(("/", "\\")):
        raise DescriptionError(_placed(str(path), text, ref, where, "is an absolute path: a description may refer "
                                                                    "only inside itself (#/...) or to a file beside "
                                                                    "it (schemas.yaml#/Order)"))
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise DescriptionError(_placed(str(path), text, ref, where, "goes up with '..', out of the description's "
                                                                    f"folder {folder}: refer only to files in that "
                                                                    "folder or below it"))
    from prance.util.fs import from_posix
    from prance.util.url import absurl, split_url_reference

    target_url, _ = split_url_reference(absurl(str(path.resolve())), ref)  # the file prance would read
    target = Path(from_posix(target_url.path)).resolve()
    if not target.is_relative_to(folder):
        raise DescriptionError(_placed(str(path), text, ref, where, f"leads out of the description's folder {folder} "
                                                                    f"(to {target}, through a link): refer only to "
                                                                    "files in that folder or below it"))
    return target


def _read(path: Path, text: str, ref: str, where: tuple[Any, ...], target: Path) -> str:
    from flowlang.openapi.document import alias_problem

    try:
        body = target.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DescriptionError(_placed(str(path), text, ref, where, f"names a file that cannot be read "
                                                                    f"({e.strerror or e})")) from None
    problem = alias_problem(body)
    if problem is not None:
        raise DescriptionError(f"cannot read {target}: {problem}")
    return body


def _placed(source: str, text: str, ref: str, where: tuple[Any, ...], why: str) -> str:
    """`d.yaml:10:11: the $ref '/etc/passwd' at paths./a.get.parameters.1 is an absolute path: ...`, the
    line and column where the reference's text is found (the file alone when it is not found)."""
    place = ".".join(str(k) for k in where) or "the top"
    found = re.search(r"[\"']?\$ref[\"']?\s*:\s*[\"']?" + re.escape(ref), text)
    at = source
    if found is not None:
        start = found.end() - len(ref)
        line = text.count("\n", 0, start) + 1
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        at = f"{source}:{line}:{col}"
    return f"{at}: the $ref {ref!r} at {place} {why}"
