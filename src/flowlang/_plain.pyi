"""flowlang._plain: the input check's walk in C (src/flowlang/_plain.c); optional, built at install."""

from decimal import Decimal
from typing import Any

def is_plain(value: Any, plain_types: frozenset[type], decimal_type: type[Decimal], big_bits: int, /) -> bool: ...
