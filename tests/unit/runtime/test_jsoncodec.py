"""The JSON codec's refusals say what is wrong with the text (runtime/jsoncodec.py)."""

from __future__ import annotations

import pytest

from flowlang.runtime.jsoncodec import JsonDataError, loads


@pytest.mark.parametrize(("text", "said"), [('{"a": NaN}', "NaN is not a JSON number"),
                                            ("[Infinity]", "Infinity is not a JSON number"),
                                            ("[-Infinity]", "-Infinity is not a JSON number"),
                                            ("1" * 5000, "a number has more than 4,300 digits"),
                                            ('{"a": [1, 2', "not valid JSON: Expecting ',' delimiter")])
def test_bad_json_is_named_for_what_it_is(text: str, said: str) -> None:
    with pytest.raises(JsonDataError) as refused:
        loads(text)
    assert said in str(refused.value)
    with pytest.raises(JsonDataError) as refused:
        loads(text.encode())
    assert said in str(refused.value)
