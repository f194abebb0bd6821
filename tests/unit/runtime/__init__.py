"""Unit tests of src/flowlang/runtime/."""
