"""The server examples/recorded_sync's cassette was recorded against, and how to record it again:

    FLOWLANG_RERECORD=1 python -m pytest tests/test_record_replay.py -k example
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fakeapi import FakeApi, paged

ORDERS: list[dict[str, Any]] = [
    {"id": 101, "email": "Ann@Example.com", "status": "paid", "total": Decimal("19.990")},
    {"id": 102, "email": "bob@example.com", "status": "open", "total": Decimal("5.00")},
    {"id": 103, "email": "carl@example.com", "status": "paid", "total": Decimal("120.005")},
    {"id": 104, "email": "ann@example.com", "status": "paid", "total": Decimal("42")},
]
CUSTOMERS = [{"id": 7, "email": "ann@example.com"}, {"id": 8, "email": "carl@example.com"},
             {"id": 9, "email": "bob@example.com"}]


def shop() -> FakeApi:
    api = FakeApi({"customers": CUSTOMERS, "invoices": []})
    api.route("GET", r"^/orders$", lambda req: paged(ORDERS, req, "cursor", api.url))
    return api
