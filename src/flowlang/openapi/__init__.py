"""OpenAPI 3 / Swagger 2 descriptions: reading them (prance, openapi-spec-validator), turning one into
a connector file (`flowlang connectors import`) and checking a connector file against one
(`flowlang connectors verify`)."""
