"""The language server over stdio (pygls): keeps an Analysis per open document, publishes its diagnostics
on open and on every change, and answers completion, hover, definition and formatting from it."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from flowlang import __version__
from flowlang.environment import Environment, display_name
from flowlang.errors import ScriptError
from flowlang.lsp.analysis import Analysis, analyze, complete, definition, hover, lsp_diagnostics
from flowlang.lsp.positions import UTF16, offset


class FlowServer(LanguageServer):
    """A pygls server holding one Environment (builtins, connectors) and the analysis of each document."""

    def __init__(self) -> None:
        super().__init__("flowlang", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.environment = Environment()
        self.analyses: dict[str, Analysis] = {}
        self.good: dict[str, Analysis] = {}  # the last analysis that parsed (completion while typing)

    def refresh(self, uri: str) -> None:
        text = self.workspace.get_text_document(uri).source
        path = _path(uri)
        name = display_name(path) if path is not None else uri
        analysis = analyze(text, name, path, self.environment, self.encoding())
        self.analyses[uri] = analysis
        if analysis.module is not None:
            self.good[uri] = analysis
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=lsp_diagnostics(analysis)))

    def encoding(self) -> str:
        """The position encoding agreed at initialize (the editor's first choice of utf-8, utf-16, utf-32)."""
        return str(self.workspace.position_encoding or UTF16)

    def for_position(self, uri: str, pos: types.Position) -> tuple[Analysis, int] | None:
        """The analysis to answer from and the cursor's offset (the last parsed one while text is broken)."""
        current = self.analyses.get(uri)
        if current is None:
            return None
        at = offset(current.source.text, pos, current.encoding)
        best = current if current.module is not None else self.good.get(uri, current)
        if best is not current:  # answer from the last good text, but complete against the current line
            best = Analysis(current.source, best.base_dir, best.module, best.checked, [], best.declarations,
                            current.encoding)
        return best, at


def _path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def build() -> FlowServer:
    server = FlowServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: FlowServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: FlowServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: FlowServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.environment = Environment()  # a connector file may have changed beside the flow
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: FlowServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.analyses.pop(params.text_document.uri, None)
        ls.good.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    def completion(ls: FlowServer, params: types.CompletionParams) -> types.CompletionList | None:
        found = ls.for_position(params.text_document.uri, params.position)
        if found is None:
            return None
        return types.CompletionList(is_incomplete=False, items=complete(found[0], ls.environment, found[1]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: FlowServer, params: types.HoverParams) -> types.Hover | None:
        found = ls.for_position(params.text_document.uri, params.position)
        return hover(found[0], ls.environment, found[1]) if found else None

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: FlowServer, params: types.DefinitionParams) -> types.Location | None:
        found = ls.for_position(params.text_document.uri, params.position)
        return definition(found[0], ls.environment, found[1]) if found else None

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: FlowServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        from flowlang.syntax.format import format_text

        try:  # a document the editor has not opened is read from the disk: one not there has nothing to format
            text = ls.workspace.get_text_document(params.text_document.uri).source
        except (OSError, ValueError):
            return None
        try:
            formatted = format_text(text)
        except ScriptError:
            return None  # not valid flowlang: the diagnostics say why
        if formatted == text:
            return []
        lines = text.split("\n")
        end = types.Position(line=len(lines), character=0)
        return [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0), end=end),
                               new_text=formatted)]

    return server


class _UnreadMessage(logging.Filter):
    """A message from the editor that pygls cannot read (bad JSON, `"params": null` for initialize) was
    logged on stderr with Python's traceback, twice ('Unable to deserialize message', then 'Unable to handle
    message'), into the editor's log; the editor is told by a window/showMessage as before. Such a record
    is one line: what pygls says and the reason. A failure in a handler of flowlang's keeps its traceback."""

    UNREAD = ("Unable to handle message", "Unable to deserialize message")

    def filter(self, record: logging.LogRecord) -> bool:
        said = str(record.msg)
        if not said.startswith(self.UNREAD):
            return True
        reason = record.exc_info[1] if record.exc_info else None
        if reason is None and record.args:  # 'Unable to deserialize message\n%s' with the traceback's text
            told = str(record.args[0] if isinstance(record.args, tuple) else record.args)
            errors = [line.strip(" |+") for line in told.splitlines() if _ERROR_LINE.match(line.strip(" |+"))]
            reason_text = errors[-1] if errors else ""
        else:
            reason_text = f"{type(reason).__name__}: {reason}" if reason is not None else ""
        record.msg = said.split("\n", 1)[0] + (f" from the editor ({reason_text})" if reason_text else "")
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return True


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception)\b")  # 'TypeError: ...', 'json.decoder.JSONDecodeError: ...'


def quiet_unread_messages() -> None:
    """The filter on every logger of pygls (the server hands its own to the reading loop)."""
    unread = _UnreadMessage()
    names = [name for name in logging.root.manager.loggerDict if name == "pygls" or name.startswith("pygls.")]
    for name in {*names, "pygls", "pygls.io_", "pygls.protocol.json_rpc", "pygls.server"}:
        logging.getLogger(name).addFilter(unread)


def serve_stdio() -> None:
    """Serve one editor over stdin/stdout until it sends exit."""
    quiet_unread_messages()
    build().start_io()
