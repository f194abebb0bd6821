"""A checkpoint's page cursor is written with the store's tags (dumps_stored) and must be read back
with them: a cursor shaped like a tag ({"$date": ...} of an API) was kept as {"$object": {...}} and,
read with plain JSON, came back as that wrapper, so a resume asked for a page no API knows."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from flowlang.runtime.checkpoints import Checkpoint, Checkpoints


@pytest.mark.parametrize("cursor", ["c-2", 40, {"$date": "2024-05-01"}, {"$object": 1}, {"offset": 3},
                                    datetime(2024, 5, 1, tzinfo=UTC)])
def test_a_page_cursor_comes_back_as_it_was_saved(cursor: Any) -> None:
    checkpoints = Checkpoints(sqlite3.connect(":memory:", isolation_level=None))
    checkpoints.save(Checkpoint("f", "loop", 1, "GET /items", cursor, 2, 3, 32, False, {}, None,
                                "2026-12-04T00:00:00Z"), "{}", None)
    assert checkpoints.of("f")[0].cursor == cursor
