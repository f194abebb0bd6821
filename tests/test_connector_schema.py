"""`flowlang connectors schema`: the JSON Schema of connector files, generated from the pydantic models,
accepts every stdlib connector file and refuses what the loader refuses (checked with jsonschema)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import ROOT, cli
from flowlang.connectors.declarative.loader import ConnectorFileError, parse_model


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    proc = cli("connectors", "schema")
    assert proc.status == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


STDLIB = sorted((ROOT / "stdlib").glob("*.toml"))


@pytest.mark.parametrize("path", STDLIB, ids=lambda p: p.stem)
def test_every_stdlib_connector_file_is_valid(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(tomllib.loads(path.read_text()))]
    assert errors == []


MINIMAL = {"name": "shop", "base_url": "https://api.example.test",
           "operations": {"orders": {"method": "get", "path": "/orders", "query": ["since"]}}}


def variant(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(MINIMAL))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for p in parents:
            target = target[p]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return data


@pytest.mark.parametrize(("data", "wrong_at"), [
    (variant(base_ur="https://x.test"), "additionalProperties"),  # an unknown key (a typo)
    (variant(base_url=None), "required"),
    (variant(operations__orders__method="FETCH"), "enum"),
    (variant(operations__orders__pagination={"style": "cursr"}), "enum"),
    (variant(auth={"type": "bearer", "tokn": "x"}), "additionalProperties"),
    (variant(rate_limit={"requests": "ten"}), "type"),
])
def test_what_the_loader_refuses_the_schema_refuses(validator: jsonschema.Draft202012Validator,
                                                    data: dict[str, Any], wrong_at: str) -> None:
    errors = list(validator.iter_errors(data))
    assert wrong_at in kinds(errors), [e.message for e in errors]
    text = json.dumps(data)  # the same data as TOML would be: the loader refuses it too
    with pytest.raises(ConnectorFileError):
        parse_model("shop.toml", _toml(json.loads(text)))


def test_the_lenient_spellings_the_loader_takes_are_valid(validator: jsonschema.Draft202012Validator) -> None:
    assert list(validator.iter_errors(MINIMAL)) == []  # lower-case method, query as a list
    parse_model("shop.toml", _toml(MINIMAL))
    with_in = variant(auth={"type": "api_key", "name": "X-Key", "value": "{config.key}", "in": "query"})
    assert list(validator.iter_errors(with_in)) == []  # TOML keys as written (`in`, not the model's in_)


def kinds(errors: list[jsonschema.ValidationError]) -> set[str]:
    """The keywords that failed, looking inside anyOf (an optional table is `X or null`)."""
    return {str(e.validator) for e in errors} | {k for e in errors for k in kinds(list(e.context or []))}


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for these tests' nested tables of strings, numbers and lists."""
    scalars = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [_toml(v, f"{prefix}{k}.") for k, v in data.items() if isinstance(v, dict)]
    head = f"[{prefix[:-1]}]\n" if prefix else ""
    return head + "\n".join(scalars) + "\n" + "".join(tables)
