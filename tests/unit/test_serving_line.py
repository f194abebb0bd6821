"""serve's start line counts its flows and its waiting deliveries as one or many."""

from pathlib import Path

from flowlang.serve.service import serving_line


def test_one_waiting_delivery_is_one_delivery() -> None:
    line = serving_line(1, Path("flows"), "http://127.0.0.1:8765", Path("flows/.flowlang"), 1)
    assert line == ("serving 1 flow of flows on http://127.0.0.1:8765 (console http://127.0.0.1:8765/, state "
                    "flows/.flowlang, 1 delivery waiting in the inbox)")
    assert serving_line(2, Path("f"), "b", Path("s"), 3).endswith("2 flows of f on b (console b/, state s, "
                                                                  "3 deliveries waiting in the inbox)")
    assert serving_line(2, Path("f"), "b", Path("s"), 0).endswith("(console b/, state s)")
