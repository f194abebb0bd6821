"""A picture of a flow's steps for the console: its triggers, then each statement as a box (its own first
line of source), blocks of loops, ifs and trys indented under them, as inline SVG (no script, no build)."""

from __future__ import annotations

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


def _children(stmt: ast.Stmt) -> list[tuple[str | None, tuple[ast.Stmt, ...]]]:
    if isinstance(stmt, ast.ForEach):
        return [(None, stmt.body)]
    if isinstance(stmt, ast.If):
        parts: list[tuple[str | None, tuple[ast.Stmt, ...]]] = [
            (None if i == 0 else "else if", b.body) for i, b in enumerate(stmt.branches)]
        if stmt.otherwise is not None:
            parts.append(("else", stmt.otherwise))
        return parts
    if isinstance(stmt, ast.Try):
        return [(None, stmt.body), ("on error", stmt.handler)]
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
            for label, body in _children(stmt):
                if label is not None:
                    out.append((depth, label, label))
                walk(body, depth + 1)

    walk(module.statements, 0)
    return out


def trigger_text(trigger: Trigger) -> str:
    if isinstance(trigger, WebhookTrigger):
        return "webhook, verified by " + " or ".join(s.preset for s in trigger.verify)
    assert isinstance(trigger, ScheduleTrigger)
    return f"schedule \"{trigger.cron}\" ({trigger.tz})"


def svg(module: ast.Module, triggers: list[Trigger], title: str) -> str:
    rows = [(0, "trigger", trigger_text(t)) for t in triggers] + steps(module)
    if not rows:
        rows = [(0, "step", "(no steps)")]
    height = len(rows) * (BOX_H + GAP) + GAP
    parts = [f'<svg class="steps" role="img" aria-label="steps of {escape(title)}" width="{WIDTH + 40}" '
             f'height="{height}" viewBox="0 0 {WIDTH + 40} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (depth, kind, text) in enumerate(rows):
        x = 10 + depth * INDENT
        y = GAP + i * (BOX_H + GAP)
        if i:
            parts.append(f'<line x1="{x + 12}" y1="{y - GAP}" x2="{x + 12}" y2="{y}" stroke="#888"/>')
        label = text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
        fill = COLORS.get(kind, "#ffffff")
        parts.append(f'<g class="step" data-kind="{escape(kind)}"><rect x="{x}" y="{y}" rx="5" width="{WIDTH - x}" '
                     f'height="{BOX_H}" fill="{fill}" stroke="#999"/>'
                     f'<text x="{x + 8}" y="{y + 18}" font-family="monospace" font-size="12">'
                     f'{escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
