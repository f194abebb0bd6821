"""A picture of a flow's steps: its triggers, then each statement as a box (its own first line of source),
blocks of loops, ifs and trys nested under them. The one home of that picture: the console of `flowlang
serve` shows it as inline SVG (no script, no build), `flowlang graph` prints it as SVG, Mermaid or DOT."""

from __future__ import annotations

import json
from html import escape

from flowlang import ast
from flowlang.check.triggers import ScheduleTrigger, Trigger, WebhookTrigger

HIDDEN = (ast.FlowDecl, ast.Trigger, ast.Param, ast.Function)
KINDS = {
    "Use": "connect", "CallStmt": "read", "LookupStmt": "look up", "Send": "send", "MapStmt": "map",
    "ForEach": "for each", "If": "if", "Try": "try", "Emit": "emit", "Let": "let", "Log": "log",
    "RunFlow": "run", "Import": "import", "Fail": "fail", "Skip": "skip", "Stop": "stop", "Return": "return",
}
COLORS = {"read": "#e3f0ff", "look up": "#e3f0ff", "send": "#e6f6e6", "map": "#fff6dd", "for each": "#f1e8ff",
          "connect": "#eeeeee", "trigger": "#ffe3e3"}
BOX_H, GAP, INDENT, WIDTH, MAX_TEXT = 28, 10, 28, 520, 60


def _children(stmt: ast.Stmt) -> list[tuple[str | None, tuple[ast.Stmt, ...], int | None]]:
    """The blocks of a statement: (label of a branch after the first, its statements, where its line is)."""
    if isinstance(stmt, ast.ForEach):
        return [(None, stmt.body, None)]
    if isinstance(stmt, ast.If):
        parts: list[tuple[str | None, tuple[ast.Stmt, ...], int | None]] = [
            (None, b.body, None) if i == 0 else ("else if", b.body, b.condition.span.start)
            for i, b in enumerate(stmt.branches)]
        if stmt.otherwise is not None:
            parts.append(("else", stmt.otherwise, None))
        return parts
    if isinstance(stmt, ast.Try):
        return [(None, stmt.body, None), ("on error", stmt.handler, None)]
    return []


def steps(module: ast.Module) -> list[tuple[int, str, str]]:
    """(depth, kind, text) for each statement worth showing, in order."""
    out: list[tuple[int, str, str]] = []

    def walk(stmts: tuple[ast.Stmt, ...], depth: int) -> None:
        for stmt in stmts:
            if isinstance(stmt, HIDDEN):
                continue
            line, _ = module.source.line_col(stmt.span.start)
            out.append((depth, KINDS.get(type(stmt).__name__, "step"), module.source.line_text(line).strip()))
            for label, body, start in _children(stmt):
                if label is not None:  # an else if shows its condition's line
                    text = module.source.line_text(module.source.line_col(start)[0]).strip() if start else label
                    out.append((depth, label, text))
                walk(body, depth + 1)

    walk(module.statements, 0)
    return out


def trigger_text(trigger: Trigger) -> str:
    if isinstance(trigger, WebhookTrigger):
        return "webhook, verified by " + " or ".join(s.preset for s in trigger.verify)
    assert isinstance(trigger, ScheduleTrigger)
    return f"schedule \"{trigger.cron}\" ({trigger.tz})"


def rows(module: ast.Module, triggers: list[Trigger]) -> list[tuple[int, str, str]]:
    """The triggers, then the steps: (depth, kind, text) for each box of the picture."""
    found = [(0, "trigger", trigger_text(t)) for t in triggers] + steps(module)
    return found or [(0, "step", "(no steps)")]


def _label(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def svg(module: ast.Module, triggers: list[Trigger], title: str) -> str:
    """The picture as one <svg> element (boxes top to bottom, indented by depth)."""
    rows_ = rows(module, triggers)
    height = len(rows_) * (BOX_H + GAP) + GAP
    parts = [f'<svg class="steps" role="img" aria-label="steps of {escape(title)}" width="{WIDTH + 40}" '
             f'height="{height}" viewBox="0 0 {WIDTH + 40} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (depth, kind, text) in enumerate(rows_):
        x = 10 + depth * INDENT
        y = GAP + i * (BOX_H + GAP)
        if i:
            parts.append(f'<line x1="{x + 12}" y1="{y - GAP}" x2="{x + 12}" y2="{y}" stroke="#888"/>')
        label = _label(text)
        fill = COLORS.get(kind, "#ffffff")
        parts.append(f'<g class="step" data-kind="{escape(kind)}"><rect x="{x}" y="{y}" rx="5" width="{WIDTH - x}" '
                     f'height="{BOX_H}" fill="{fill}" stroke="#999"/>'
                     f'<text x="{x + 8}" y="{y + 18}" font-family="monospace" font-size="12">'
                     f'{escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


BRANCHES = ("if", "else if", "for each")
LABELS = ("else if", "else", "on error")  # a box that starts another branch of the statement above it


def _edges(rows_: list[tuple[int, str, str]]) -> list[tuple[int, int, bool]]:
    """(from, to, bypass) box indexes: each box leads to the next one, but the end of a branch leads past
    the other branches of its statement (a then-block does not run on into the else); an if, else if or
    for each also leads past its block (the condition false, no records), and a try to its on error."""
    edges = []
    for i in range(1, len(rows_)):
        depth, kind, _ = rows_[i]
        if kind in LABELS and rows_[i - 1][0] > depth:  # the box before ends the branch before this one
            after = _past(rows_, i, depth)
            if after is not None:
                edges.append((i - 1, after, False))
        else:
            edges.append((i - 1, i, False))
    for i, (depth, kind, _) in enumerate(rows_):
        if kind not in (*BRANCHES, "try") or i + 1 >= len(rows_) or rows_[i + 1][0] <= depth:
            continue
        j = next((j for j in range(i + 1, len(rows_)) if rows_[j][0] <= depth), None)
        if j is None:
            continue
        own_branch = rows_[j][0] == depth and rows_[j][1] in LABELS
        if kind == "try":
            if own_branch and rows_[j][1] == "on error":
                edges.append((i, j, True))
            continue
        target = j if own_branch or rows_[j][1] not in LABELS else _past(rows_, j, rows_[j][0])
        if target is not None:
            edges.append((i, target, True))
    return edges


def _past(rows_: list[tuple[int, str, str]], label: int, depth: int) -> int | None:
    """The box after the whole statement that the branch starting at box `label` belongs to: past its
    other branches, and past those of the statements it ends inside."""
    for j in range(label + 1, len(rows_)):
        d, kind, _ = rows_[j]
        if d <= depth:
            if kind in LABELS:
                depth = d
                continue
            return j
    return None


def mermaid(module: ast.Module, triggers: list[Trigger], title: str) -> str:
    """The picture as a Mermaid flowchart (top-down; a loop, if or try is a subgraph holding its block)."""
    rows_ = rows(module, triggers)
    lines = ["---", f"title: {json.dumps(title)}", "---", "flowchart TD"]
    open_blocks: list[int] = []
    for i, (depth, kind, text) in enumerate(rows_):
        while len(open_blocks) > depth:
            open_blocks.pop()
            lines.append("  " * (len(open_blocks) + 1) + "end")
        indent = "  " * (depth + 1)
        shape = ("([", "])") if kind == "trigger" else ("{{", "}}") if kind in ("if", "else if", "else", "on error") \
            else ("[", "]")
        lines.append(f'{indent}s{i}{shape[0]}"{_mermaid_text(_label(text))}"{shape[1]}')
        if i + 1 < len(rows_) and rows_[i + 1][0] > depth:
            lines.append(f'{indent}subgraph b{i}[" "]')
            open_blocks.append(i)
    while open_blocks:
        open_blocks.pop()
        lines.append("  " * (len(open_blocks) + 1) + "end")
    lines += [f"  s{a} {'-.->' if bypass else '-->'} s{b}" for a, b, bypass in _edges(rows_)]
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Mermaid reads #name; as an entity code: write quotes and hashes that way; and a label is HTML
    # to it, so < and > too (a step's text is shown as written, never read as markup)
    return text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#60;").replace(">", "#62;")


def dot(module: ast.Module, triggers: list[Trigger], title: str) -> str:
    """The picture as a Graphviz DOT digraph (a nested block is a cluster)."""
    rows_ = rows(module, triggers)
    lines = [f"digraph {_dot_text(title)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=11];']
    open_blocks = 0
    for i, (depth, kind, text) in enumerate(rows_):
        while open_blocks > depth:
            open_blocks -= 1
            lines.append("  " * (open_blocks + 1) + "}")
        indent = "  " * (depth + 1)
        fill = COLORS.get(kind, "#ffffff")
        lines.append(f"{indent}s{i} [label={_dot_text(_label(text))}, fillcolor=\"{fill}\"];")
        if i + 1 < len(rows_) and rows_[i + 1][0] > depth:
            lines.append(f'{indent}subgraph cluster_{i} {{ label=""; style=dashed;')
            open_blocks += 1
    while open_blocks:
        open_blocks -= 1
        lines.append("  " * (open_blocks + 1) + "}")
    lines += [f"  s{a} -> s{b}{' [style=dashed]' if bypass else ''};" for a, b, bypass in _edges(rows_)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    """A DOT quoted string (backslashes and quotes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


FORMATS = {"svg": svg, "mermaid": mermaid, "dot": dot}
