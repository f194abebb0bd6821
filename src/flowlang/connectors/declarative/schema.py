"""The JSON Schema of connector files, generated from the pydantic models (`flowlang connectors schema`), so
editors validate connector TOML as it is typed (taplo, Even Better TOML). The models stay the one home of
the format: the schema is derived, never written by hand."""

from __future__ import annotations

from typing import Any

from flowlang.connectors.declarative.models import ConnectorFile

SCHEMA_ID = "https://flowlang.dev/schemas/connector.schema.json"


def connector_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a connector file, keys as written in TOML (`in`, not `in_`)."""
    schema = ConnectorFile.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "flowlang connector file",
            "description": "A declarative HTTP connector for flowlang (CONNECTORS.md): its base URL, config keys, "
                           "auth, rate limit and operations.",
            **{k: v for k, v in schema.items() if k not in ("title", "description")}}
