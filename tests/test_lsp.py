"""`flowlang lsp` through the protocol: a real `flowlang lsp` process, driven over its stdin/stdout by
pygls's language client with lsprotocol messages (diagnostics, completion, hover, definition, formatting)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from conftest import ROOT

Script = Callable[["Editor"], Awaitable[Any]]


class Editor:
    """A language client as an editor would use it, with the diagnostics the server published."""

    def __init__(self, client: LanguageClient, folder: Path) -> None:
        self.client = client
        self.folder = folder
        self.published: dict[str, asyncio.Queue[list[types.Diagnostic]]] = {}
        self.encoding: str | None = None  # the position encoding the server chose

    def queue(self, uri: str) -> asyncio.Queue[list[types.Diagnostic]]:
        return self.published.setdefault(uri, asyncio.Queue())

    async def open(self, name: str, text: str) -> tuple[str, list[types.Diagnostic]]:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="flowlang", version=1, text=text)))
        return uri, await asyncio.wait_for(self.queue(uri).get(), 20)

    async def change(self, uri: str, text: str, version: int = 2) -> list[types.Diagnostic]:
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        return await asyncio.wait_for(self.queue(uri).get(), 20)

    async def complete(self, uri: str, line: int, character: int) -> list[types.CompletionItem]:
        found = await asyncio.wait_for(self.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character))), 20)
        assert isinstance(found, types.CompletionList)
        return found.items

    async def hover(self, uri: str, line: int, character: int) -> str | None:
        found = await asyncio.wait_for(self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character))), 20)
        if found is None:
            return None
        assert isinstance(found.contents, types.MarkupContent)
        return found.contents.value

    async def definition(self, uri: str, line: int, character: int) -> types.Location | None:
        found = await asyncio.wait_for(self.client.text_document_definition_async(types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character))), 20)
        assert found is None or isinstance(found, types.Location)
        return found


@asynccontextmanager
async def editor(folder: Path, encodings: list[str] | None = None) -> AsyncIterator[Editor]:
    client = LanguageClient("test-editor", "1")
    ed = Editor(client, folder)

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: types.PublishDiagnosticsParams) -> None:
        ed.queue(params.uri).put_nowait(params.diagnostics)

    await client.start_io(sys.executable, "-m", "flowlang", "lsp", cwd=str(folder))
    try:
        result = await asyncio.wait_for(client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(general=types.GeneralClientCapabilities(
                position_encodings=encodings) if encodings else None), root_uri=folder.as_uri())), 30)
        assert result.server_info is not None and result.server_info.name == "flowlang"
        client.initialized(types.InitializedParams())
        ed.encoding = result.capabilities.position_encoding
        yield ed
    finally:
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
        await asyncio.wait_for(client.stop(), 10)


def drive(folder: Path, script: Script, encodings: list[str] | None = None) -> Any:
    async def main() -> Any:
        async with editor(folder, encodings) as ed:
            return await script(ed)
    return asyncio.run(main())


FLOW = '''param since = "2024-01-01"
use shop = shopify(shop: "demo", token: secret.SHOPIFY_TOKEN)
function twice(n)
  return n * 2
end
call shop.list_orders() as orders
for each o in orders
  emit {id: o.id, total: twice(o.total), name: upper(o.name)}
end
'''


def test_an_error_arrives_as_a_diagnostic_and_goes_when_fixed(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        uri, diagnostics = await ed.open("f.flow", 'let total = 1\nemit totl + 1\n')
        assert len(diagnostics) == 1
        d = diagnostics[0]
        assert "totl" in d.message and "total" in d.message  # did you mean
        assert d.severity == types.DiagnosticSeverity.Error and d.source == "flowlang"
        assert d.range == types.Range(start=types.Position(line=1, character=5),
                                      end=types.Position(line=1, character=9))
        assert list(await ed.change(uri, "let total = 1\nemit total + 1\n")) == []
        broken = await ed.change(uri, 'let total = 1\nemit (total\n', 3)  # a syntax error while typing
        assert len(broken) == 1 and broken[0].range.start.line in (1, 2)
    drive(tmp_path, script)


def test_warnings_arrive_as_warnings(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("id,name,email\n1,Ann,ann@example.com\n")

    async def script(ed: Editor) -> None:
        text = 'use f = file(path: "people.csv")\ncall f.read() as rows\nfor each row in rows\n  emit row.emial\nend\n'
        uri, diagnostics = await ed.open("f.flow", text)
        assert len(diagnostics) == 1 and diagnostics[0].severity == types.DiagnosticSeverity.Warning
        assert "did you mean 'email'?" in diagnostics[0].message
        assert diagnostics[0].range.start == types.Position(line=3, character=11)
        assert list(await ed.change(uri, text.replace("emial", "email"))) == []
    drive(tmp_path, script)


def test_ranges_count_utf16_units(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        _, diagnostics = await ed.open("f.flow", 'let s = "😀é"; emit nope\n'.replace("; ", "\n"))
        assert diagnostics[0].range.start == types.Position(line=1, character=5)
        _, diagnostics = await ed.open("g.flow", 'emit "😀" + nope\n')
        assert diagnostics[0].range.start == types.Position(line=0, character=12)  # 😀 is 2 UTF-16 units
    drive(tmp_path, script)


def test_a_byte_order_mark_is_a_character_of_the_first_line(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        # an editor that keeps the BOM sends it as U+FEFF, one UTF-16 unit at the start of line 0
        uri, diagnostics = await ed.open("f.flow", "\ufefflet x = uper(1)\nemit {a: nope}\n")
        assert [(d.range.start, d.range.end) for d in diagnostics] == [
            (types.Position(line=0, character=9), types.Position(line=0, character=13)),
            (types.Position(line=1, character=9), types.Position(line=1, character=13))]
        assert not any("f.flow:" in d.message for d in diagnostics)  # not reported as another file's
        await ed.change(uri, "\ufefflet xy = 1\nemit {a: xy}\n")
        found = await ed.definition(uri, 1, 10)
        assert found is not None and found.range.start == types.Position(line=0, character=5)
        assert (await ed.hover(uri, 0, 6) or "").startswith("variable")
    drive(tmp_path, script)


@pytest.mark.parametrize(("offered", "column"), [(["utf-8", "utf-16"], 14), (["utf-32"], 11), (["utf-16"], 12)])
def test_columns_count_the_position_encoding_agreed_at_initialize(
        tmp_path: Path, offered: list[str], column: int) -> None:
    # Neovim offers utf-8 first: the server takes it, so a column counts bytes (😀 is 4, 2 in UTF-16, 1 in UTF-32)
    async def script(ed: Editor) -> None:
        assert ed.encoding == offered[0]
        _, diagnostics = await ed.open("g.flow", 'emit "😀" + nope\n')
        assert diagnostics[0].range.start == types.Position(line=0, character=column)
        assert diagnostics[0].range.end == types.Position(line=0, character=column + 4)
        uri, _ = await ed.open("h.flow", 'let s = "😀" + upper("a")\n')  # upper at the column of nope + 3
        found = await ed.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=column + 4)))
        assert found is not None and found.range.start == types.Position(line=0, character=column + 3)
    drive(tmp_path, script, offered)


def test_completion_after_a_connection_gives_its_operations(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        text = FLOW + "call shop.\n"
        uri, _ = await ed.open("f.flow", text)  # (the last line does not parse: answered from the last good text)
        items = await ed.complete(uri, 9, len("call shop."))
        labels = {i.label for i in items}
        assert {"list_orders", "list_products"} <= labels
        orders = next(i for i in items if i.label == "list_orders")
        assert orders.kind == types.CompletionItemKind.Method and "GET" in (orders.detail or "")
        everywhere = {i.label: i for i in await ed.complete(uri, 7, 2)}
        assert {"for", "emit", "send", "upper", "twice", "orders", "shop", "since", "o"} <= set(everywhere)
        assert everywhere["upper"].detail == "upper(s)"
        assert everywhere["upper"].kind == types.CompletionItemKind.Function
        uri_g, _ = await ed.open("g.flow", "use x = ")
        connectors = {i.label for i in await ed.complete(uri_g, 0, 8)}
        assert {"shopify", "http", "file", "stripe"} <= connectors
        uri_h, _ = await ed.open("h.flow", 'use x = shopify(shop: "a", ')
        keys = {i.label: i for i in await ed.complete(uri_h, 0, 27)}
        assert "token" in keys and "shop" not in keys and "required" in (keys["token"].detail or "")
    drive(tmp_path, script)


def test_hover_shows_builtin_docs_operations_and_origins(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        uri, _ = await ed.open("f.flow", FLOW)
        upper = await ed.hover(uri, 7, FLOW.splitlines()[7].index("upper") + 1)
        assert upper is not None and "upper(s)" in upper and "upper case" in upper
        assert 'upper("no") -> "NO"' in upper  # the docstring's examples, as docs/builtins.md has them
        op = await ed.hover(uri, 5, FLOW.splitlines()[5].index("list_orders") + 1)
        assert op is not None and "shopify.list_orders" in op and "GET" in op
        origin = await ed.hover(uri, 7, FLOW.splitlines()[7].index("o.id") + 0)
        assert origin is not None and "loop variable `o`" in origin and "line 7" in origin
        assert "for each o in orders" in origin
        assert await ed.hover(uri, 0, 0) is None or "param" not in (await ed.hover(uri, 0, 0) or "")
    drive(tmp_path, script)


def test_definition_of_a_function_a_variable_an_import_and_a_connector(tmp_path: Path) -> None:
    (tmp_path / "lib.flow").write_text("function cents(x)\n  return x * 100\nend\n")
    text = 'import "lib.flow"\n' + FLOW + "emit cents(1)\n"
    async def script(ed: Editor) -> None:
        uri, diagnostics = await ed.open("f.flow", text)
        assert list(diagnostics) == []
        lines = text.splitlines()
        here = await ed.definition(uri, 8, lines[8].index("twice") + 2)
        assert here is not None and here.uri == uri
        assert here.range.start == types.Position(line=3, character=9)  # `function twice`
        there = await ed.definition(uri, 10, 6)
        assert there is not None and there.uri == (tmp_path / "lib.flow").as_uri()
        assert there.range.start == types.Position(line=0, character=9)
        imported = await ed.definition(uri, 0, 10)
        assert imported is not None and imported.uri == (tmp_path / "lib.flow").as_uri()
        loop_var = await ed.definition(uri, 8, lines[8].index("o.id"))
        assert loop_var is not None and loop_var.range.start == types.Position(line=7, character=9)
        connector = await ed.definition(uri, 2, lines[2].index("shopify") + 1)
        assert connector is not None and connector.uri == (ROOT / "stdlib" / "shopify.toml").resolve().as_uri()
    drive(tmp_path, script)


def test_formatting_goes_through_the_formatter(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        uri, _ = await ed.open("f.flow", "for each x in [1, 2]\nemit x\n    end\n")
        edits = await asyncio.wait_for(ed.client.text_document_formatting_async(types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=2, insert_spaces=True))), 20)
        assert edits is not None and len(edits) == 1
        assert edits[0].new_text == "for each x in [1, 2]\n  emit x\nend\n"
    drive(tmp_path, script)


def test_formatting_a_document_not_opened_and_not_on_disk_answers_nothing(tmp_path: Path) -> None:
    async def script(ed: Editor) -> None:
        await ed.open("f.flow", "emit 1\n")
        for uri in ((tmp_path / "gone.flow").as_uri(), "untitled:Untitled-1"):
            edits = await asyncio.wait_for(ed.client.text_document_formatting_async(types.DocumentFormattingParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                options=types.FormattingOptions(tab_size=2, insert_spaces=True))), 20)
            assert edits is None  # was the error -32603 of a FileNotFoundError in the server
        (tmp_path / "on_disk.flow").write_text("for each x in [1]\nemit x\n    end\n")
        edits = await asyncio.wait_for(ed.client.text_document_formatting_async(types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=(tmp_path / "on_disk.flow").as_uri()),
            options=types.FormattingOptions(tab_size=2, insert_spaces=True))), 20)
        assert edits is not None and edits[0].new_text == "for each x in [1]\n  emit x\nend\n"  # read from the disk
    drive(tmp_path, script)


@pytest.mark.parametrize("missing", ["pygls"])
def test_without_the_extra_the_command_says_how_to_install_it(tmp_path: Path, missing: str) -> None:
    import subprocess

    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / f"{missing}.py").write_text("raise ImportError('blocked', name='pygls')\n")
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "flowlang", "lsp"], capture_output=True, text=True, env=env,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "pip install 'flowlang[lsp]'" in proc.stderr and "Traceback" not in proc.stderr


def test_completion_after_a_record_gives_the_fields_seen_in_a_cassette(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "recorded_sync"
    shutil.copytree(ROOT / "examples" / "recorded_sync", folder)
    text = (folder / "sync_invoices.flow").read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "as customer" in line) + 1
    lines.insert(at, "  let probe = order.")
    lines.insert(at + 1, "  let other = customer.")
    async def script(ed: Editor) -> None:
        uri, _ = await ed.open("recorded_sync/sync_invoices.flow", "\n".join(lines) + "\n")
        order = {i.label: i for i in await ed.complete(uri, at, len("  let probe = order."))}
        assert set(order) == {"id", "email", "status", "total"}  # the /orders records
        assert order["email"].detail == "seen in tests/paid_orders/cassette.jsonl"
        customer = {i.label for i in await ed.complete(uri, at + 1, len("  let other = customer."))}
        assert customer == {"id", "email"}  # the /customers lookup's records, not the orders'
    drive(tmp_path, script)


def test_a_message_the_server_cannot_read_is_one_line_on_stderr_and_the_session_goes_on(tmp_path: Path) -> None:
    """A message from the editor that is not JSON (`{"a":`), or an initialize with `"params": null`, was
    logged on stderr (the editor's log) with Python's traceback, twice for the second (found by fuzzing the
    server's input). Each is one line saying why; the editor is still told (window/showMessage), and the
    next message is answered."""
    import json
    import os
    import subprocess

    def framed(body: bytes) -> bytes:
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    messages = [b'{"a":', b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":null}',
                json.dumps({"jsonrpc": "2.0", "id": 2, "method": "initialize",
                            "params": {"processId": None, "rootUri": None, "capabilities": {}}}).encode(),
                json.dumps({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}).encode(),
                json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()]
    proc = subprocess.run([sys.executable, "-m", "flowlang", "lsp"], input=b"".join(map(framed, messages)),
                          capture_output=True, timeout=60, cwd=tmp_path, env=dict(os.environ))
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "Unable to handle message from the editor (JSONDecodeError: Expecting value: line 1 column 6" in err, err
    assert "Unable to deserialize message from the editor (TypeError: argument of type 'NoneType' is not " \
           "iterable)" in err, err
    assert len(err.strip().splitlines()) == 3, err
    out = proc.stdout.decode()
    assert '"method": "window/showMessage"' in out and '"id": 2' in out and '"capabilities"' in out, out
