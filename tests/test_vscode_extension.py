"""The VS Code extension in editors/vscode: its manifest points at files that exist, and the .vsix that
.ci/run packages with @vscode/vsce holds the grammar, the language configuration, the client and its
runtime dependency (vscode-languageclient)."""

from __future__ import annotations

import json
import os
import zipfile

import pytest

from conftest import ROOT

EXTENSION = ROOT / "editors" / "vscode"


def test_the_manifest_names_files_that_exist() -> None:
    manifest = json.loads((EXTENSION / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    assert language["id"] == "flowlang" and language["extensions"] == [".flow"]
    config = json.loads((EXTENSION / language["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"
    (grammar,) = manifest["contributes"]["grammars"]
    assert json.loads((EXTENSION / grammar["path"]).read_text())["scopeName"] == grammar["scopeName"]
    assert (EXTENSION / manifest["main"]).is_file()
    assert manifest["contributes"]["configuration"]["properties"]["flowlang.server.command"]["default"] == \
        ["flowlang", "lsp"]
    lock = json.loads((EXTENSION / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/vscode-languageclient"]["version"] == \
        manifest["dependencies"]["vscode-languageclient"]


def test_the_packaged_vsix_holds_the_extension() -> None:
    vsix = EXTENSION / "flowlang.vsix"
    if not vsix.is_file():
        if os.environ.get("CI"):
            pytest.fail("editors/vscode/flowlang.vsix is missing: .ci/run packages it with @vscode/vsce")
        pytest.skip("not packaged: cd editors/vscode && npm ci && npx vsce package --out flowlang.vsix")
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("extension/package.json"))
        grammar = z.read("extension/syntaxes/flowlang.tmLanguage.json")
    assert {"extension.vsixmanifest", "extension/extension.js", "extension/language-configuration.json",
            "extension/node_modules/vscode-languageclient/node.js"} <= names
    assert manifest["name"] == "flowlang"
    assert grammar == (EXTENSION / "syntaxes" / "flowlang.tmLanguage.json").read_bytes()
    assert not any("@vscode/vsce" in n for n in names)  # the packaging tool is not shipped
