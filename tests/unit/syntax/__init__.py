"""Unit tests of src/flowlang/syntax/."""
