"""Connectors: what `use` opens and what `call`, `lookup` and `send` invoke."""
