"""The console at `/` (placeholder until the pages land)."""

from __future__ import annotations

from aiohttp import web


def add_console(app: web.Application) -> None:
    pass
