"""The HTTP machinery: URLs, auth, retries, rate limits, pagination, and the `http` connector that
declarative REST connectors also run on."""
