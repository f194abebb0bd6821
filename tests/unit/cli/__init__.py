"""Unit tests of src/flowlang/cli/ (pure helpers; commands are tested through tests/conftest.py cli())."""
