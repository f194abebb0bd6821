"""Exit statuses (LANGUAGE.md section 8)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    RUN_FAILED = 1
    INVALID = 2  # invalid script or usage
    RECORDS_FAILED = 3  # finished, some records failed
    LOCKED = 75  # another run of this flow is in progress (EX_TEMPFAIL)
