// Tokenize files with the VS Code TextMate grammar of flowlang (vscode-textmate + vscode-oniguruma, the
// engine VS Code itself uses). Usage: node tokenize.js GRAMMAR FILE...
// Prints one JSON object per file: {file, lines: [[{text, scopes}], ...]} (scopes without the root).
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath),
  });
  const grammar = await registry.loadGrammar("source.flowlang");
  for (const file of files) {
    let state = vsctm.INITIAL;
    const lines = [];
    for (const line of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
      const result = grammar.tokenizeLine(line, state);
      lines.push(result.tokens.map((t) => ({ text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes.slice(1) })));
      state = result.ruleStack;
    }
    process.stdout.write(JSON.stringify({ file, lines }) + "\n");
  }
}

main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
