"""Declarative REST connectors: TOML files validated by pydantic, run by the HTTP machinery."""
