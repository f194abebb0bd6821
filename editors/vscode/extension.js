// The flowlang extension: the grammar and language configuration are declared in package.json; this file
// starts the language server (`flowlang lsp`, from `pip install 'flowlang[lsp]'`) for .flow files.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

async function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("flowlang").get("server.command", ["flowlang", "lsp"]);
  client = new LanguageClient(
    "flowlang",
    "flowlang language server",
    { command, args },
    { documentSelector: [{ scheme: "file", language: "flowlang" }, { scheme: "untitled", language: "flowlang" }] },
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  try {
    await client.start();
  } catch (error) {
    vscode.window.showErrorMessage(
      `flowlang: could not start "${[command, ...args].join(" ")}" (${error.message}). ` +
      "Install it with pip install 'flowlang[lsp]', or set flowlang.server.command.");
  }
}

async function deactivate() {
  if (client) {
    await client.stop();
  }
}

module.exports = { activate, deactivate };
