"""cli/options.py: reading --param, --input and --secrets values."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from flowlang.cli.options import parse_params, read_input, read_secrets
from flowlang.errors import UsageError


def test_a_param_is_json_else_a_string() -> None:
    assert parse_params(["n=[1,2]", "s=plain text", "x=1.5", "e="]) == {
        "n": [1, 2], "s": "plain text", "x": Decimal("1.5"), "e": ""}


@pytest.mark.parametrize("item", ["nosign", "=1", " =1"])
def test_a_param_needs_a_name(item: str) -> None:
    with pytest.raises(UsageError, match="--param needs name=value"):
        parse_params([item])


def test_input_from_a_file_a_jsonl_file_or_stdin(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text('{"a": 1}')
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_input(str(tmp_path / "in.json")) == {"a": 1}
    assert read_input(str(tmp_path / "in.jsonl")) == [{"a": 1}, {"a": 2}]
    assert read_input("-", io.StringIO("[3]")) == [3]
    assert read_input(None) is None


def test_bad_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read --input"):
        read_input(str(tmp_path / "missing.json"))
    with pytest.raises(UsageError, match="is not valid JSON"):
        read_input("-", io.StringIO("{nope"))


def test_bad_input_says_where(tmp_path: Path) -> None:
    """A JSON Lines input names the bad line; a file that is not UTF-8 is a usage error naming the byte
    and its line (it was an internal error); the reason is not prefixed twice."""
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": NaN}\n')
    with pytest.raises(UsageError, match=r"in.jsonl line 2 is not valid JSON: NaN is not a JSON number$"):
        read_input(str(tmp_path / "in.jsonl"))
    (tmp_path / "in.json").write_bytes(b'[1,\n"caf\xe9"]')
    with pytest.raises(UsageError, match=r"in.json is not UTF-8 text: byte 0xe9 on line 2"):
        read_input(str(tmp_path / "in.json"))
    (tmp_path / "bad.json").write_text("[1,")
    with pytest.raises(UsageError) as info:
        read_input(str(tmp_path / "bad.json"))
    assert str(info.value).count("not valid JSON") == 1, info.value


def test_secrets_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('TOKEN = "a \\"quoted\\" \\\\ value é"\nPORT = 5432\n')
    assert read_secrets(str(tmp_path / "s.toml")) == {"TOKEN": 'a "quoted" \\ value é', "PORT": "5432"}
    assert read_secrets(None) == {}
    (tmp_path / "bad.toml").write_text("TOKEN = [1]\n")
    with pytest.raises(UsageError, match="TOKEN must be a string"):
        read_secrets(str(tmp_path / "bad.toml"))
    (tmp_path / "broken.toml").write_text("TOKEN = \n")
    with pytest.raises(UsageError, match="is not valid TOML"):
        read_secrets(str(tmp_path / "broken.toml"))
