"""The shape by which `flowlang errors --group` groups messages (runtime/error_groups.py)."""

from __future__ import annotations

import pytest

from flowlang.runtime.error_groups import group_errors, message_shape


@pytest.mark.parametrize(("message", "shape"), [
    ("order 17 not found", "order <n> not found"),
    ("value 12.50 too big", "value <n> too big"),
    ("bad ref 'A-1' for order 19", "bad ref '<value>' for order <n>"),
    ("payment P-2: the amount 'abc' is not a number", "payment P-<n>: the amount '<value>' is not a number"),
    ("customer cus_9fX2QwZ not found", "customer <id> not found"),
    ("id 3f2a1b4c-1111-2222-3333-444455556666 gone", "id <id> gone"),
    ('answered 422: {"error": "email invalid"}', 'answered <n>: {"error": "email invalid"}'),
    ("order 23: 'no stock'", "order <n>: 'no stock'"),
    ("the record's \"email\" can't be read", "the record's \"<value>\" can't be read"),
    ("no price", "no price"),
])
def test_values_become_placeholders_and_words_stay(message: str, shape: str) -> None:
    assert message_shape(message) == shape


def test_groups_keep_the_first_message_and_say_when_theirs_differ() -> None:
    groups = group_errors([(1, "order 17 not found", "f:1:1"), (2, "no stock", "f:2:1"),
                           (3, "order 18 not found", "f:1:1"), (4, "no stock", "f:2:1"),
                           (5, "order 17 not found", "f:1:1")])
    assert [(g.count, g.message, g.ids, g.varied) for g in groups] == [
        (3, "order 17 not found", [1, 3, 5], True), (2, "no stock", [2, 4], False)]
