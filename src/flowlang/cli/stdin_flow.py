"""A flow read from stdin (`flowlang run -`) without a `flow "Name"` line has no name of its own: every
such flow is `<stdin>` in the working folder's store. What persists between runs by the flow's name
(`state`, `job.last_success_at`, the ledger of `send ... once` and `send ... if changed`, a checkpoint
for `--resume`) would then be one flow's read by another, so such a flow is refused before it runs,
with the fix: a `flow "Name"` line (docs/cli.md)."""

from __future__ import annotations

from flowlang import ast
from flowlang.diagnostics import Diagnostic
from flowlang.errors import CheckError, UsageError
from flowlang.source import Span

FIX = 'give the flow a name of its own: flow "Name" as its first line'


def is_unnamed(module: ast.Module) -> bool:
    return not any(isinstance(s, ast.FlowDecl) for s in module.statements)


def _first_kept_use(module: ast.Module) -> tuple[Span, str] | None:
    """The first place (in the text) the flow reads or keeps something stored under its name."""
    found: list[tuple[Span, str]] = []
    for node in ast.walk(module.statements):
        if isinstance(node, ast.Name) and node.name == "state":
            found.append((node.span, "`state`"))
        elif isinstance(node, ast.Target) and node.name == "state":
            found.append((node.name_span, "`state`"))
        elif (isinstance(node, ast.Field) and node.name == "last_success_at" and isinstance(node.obj, ast.Name)
              and node.obj.name == "job"):
            found.append((node.span, "`job.last_success_at`"))
        elif isinstance(node, ast.Send) and node.mode is not None:
            found.append((node.span, "`send ... once`" if node.mode == "once" else "`send ... if changed`"))
    return min(found, key=lambda f: f[0].start) if found else None


def refuse_unnamed_kept(module: ast.Module, resume: bool = False) -> None:
    """A CheckError at the first use of what is kept under the flow's name, when the flow on stdin has no
    name of its own; a UsageError for `--resume`."""
    if not is_unnamed(module):
        return
    use = _first_kept_use(module)
    if use is not None:
        span, what = use
        raise CheckError([Diagnostic(
            "stdin-unnamed", f"a flow read from stdin without a `flow \"Name\"` line cannot use {what}: what it "
            "keeps between runs is kept under its name, and every such flow is <stdin>, so one would read "
            "another's", module.source, span, hint=FIX)])
    if resume:
        raise UsageError("cannot resume a flow read from stdin without a `flow \"Name\"` line: its checkpoint "
                         f"would be any such flow's (all are <stdin>); {FIX}")
