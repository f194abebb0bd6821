"""Unit tests of pure code, one folder per package of src/flowlang (tests/unit/runtime/ tests
src/flowlang/runtime/, ...): no subprocess, no server, no state folder unless the code owns one."""
