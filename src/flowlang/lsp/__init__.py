"""The language server (`flowlang lsp`, needs the `lsp` extra): the checker's diagnostics as you type,
completion, hover, go to definition and formatting, for any editor that speaks LSP."""
