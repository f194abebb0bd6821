"""The records of a JSON Lines file, one home for its rule: each non-blank line is one JSON value
(decimals exact); a line that is not JSON, or holds a byte that is not of the file's encoding, is a
BadRecord naming the file and the line, with the line's text kept under `_raw` (as a CSV row the csv
rules cannot read), so a loop fails that record alone and goes on with the next line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from flowlang.connectors.csvrows import RAW, RAW_KEPT
from flowlang.connectors.textlines import LineState, bad_bytes_message, line_chunks, unmarked
from flowlang.runtime.jsoncodec import JsonDataError, loads
from flowlang.runtime.values import BadRecord, Value


def json_lines(fh: IO[bytes], encoding: str, name: str) -> Iterator[Value | BadRecord]:
    state = LineState()
    number = 0
    bad_at = 0  # the first entry of state.bad not yet reached
    for chunk in line_chunks(fh, encoding, name, state):
        for line in chunk:
            number += 1
            if bad_at < len(state.bad) and state.bad[bad_at][0] == number:
                bad_at += 1
                text = line.strip()
                if text:
                    yield BadRecord(_raw(unmarked(text)), bad_bytes_message(name, number, state.bad[bad_at - 1][1],
                                                                             encoding))
                continue
            text = line.strip()
            if not text:
                continue
            try:
                yield loads(text)
            except JsonDataError as e:
                problem = str(e).replace(" at line 1 column ", " at column ")  # one line is parsed at a time
                yield BadRecord(_raw(text), f"{name} line {number}: {problem}")


def _raw(text: str) -> dict[str, Value]:
    return {RAW: text if len(text) <= RAW_KEPT else text[:RAW_KEPT] + "..."}
