"""The flows of a served folder: each one loaded and checked (serve refuses to start while any has a
check error, listing them all), its route name (the file stem), its triggers, and the secret values its
verify schemes need (read once at start)."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowlang import ast
from flowlang.api import Flow, SecretProviders, load
from flowlang.check.triggers import ScheduleTrigger, SecretRef, WebhookTrigger
from flowlang.diagnostics import Diagnostic, Severity
from flowlang.environment import Environment
from flowlang.errors import CheckError, FlowRuntimeError, ScriptError, UsageError
from flowlang.runtime.masking import Masker
from flowlang.runtime.secrets import SecretChain, default_chain
from flowlang.serve.edits import EditWatch
from flowlang.serve.signatures import Scheme

log = logging.getLogger("flowlang.serve")


@dataclass
class ServedFlow:
    route: str  # the file stem: POST /hooks/<route>
    flow: Flow
    webhook: WebhookTrigger | None = None
    schemes: list[Scheme] = field(default_factory=list)
    schedules: list[ScheduleTrigger] = field(default_factory=list)
    _masker: Masker | None = field(default=None, repr=False)
    _watch: EditWatch | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.flow.name

    def mask(self, text: str) -> str:
        """`text` with the verify schemes' secrets masked, in any form (a header that echoes one)."""
        if self._masker is None:
            self._masker = Masker()
            for scheme in self.schemes:
                for value in scheme.secrets:
                    self._masker.add(value)
        return self._masker.mask(text)

    @property
    def concurrency(self) -> int:
        return self.webhook.concurrency if self.webhook is not None else 1

    def prepare(self, state_dir: Path) -> None:
        """What a first run would do before its first statement, done at start instead, so a delivery
        runs at once: the flow compiled (a served run has no host bindings) and its store created."""
        self._watch = EditWatch(self.flow)
        self.flow.compiled_flow(frozenset())
        self.flow.store(state_dir).close()

    def take_edit(self) -> None:
        """(At the start of each of its jobs.) The flow's file edited since: its new version from now on,
        when it checks and serves the same triggers under the same name (serve/edits.py)."""
        if self._watch is not None:
            new = self._watch.edited(self.flow, self.route)
            if new is not None:
                self.flow = new
                for warning in start_warnings(new):  # as serve's start says them
                    log.warning(f"{warning.source.location(warning.span)}: {warning.message}")


def secret_value(ref: SecretRef, chain: SecretChain, env: Mapping[str, str], route: str) -> str:
    """A verify scheme's secret, from the same chain `secret.NAME` asks in a run (read once at start). An
    empty one is refused: an HMAC under an empty key is one anybody can make (`GH_SECRET=` exported empty
    let any forged delivery through)."""
    if ref.source == "literal":
        value = ref.name
    elif ref.source == "env":
        found = env.get(ref.name)
        if found is None:
            raise UsageError(f"{route}.flow: the webhook's env.{ref.name} is not set")
        value = found
    else:
        try:
            value = chain.value(ref.name)
        except FlowRuntimeError as e:
            raise UsageError(f"{route}.flow: the webhook's secret.{ref.name} is not set: {e.message}") from None
    if not value.strip():
        what = "its verify string" if ref.source == "literal" else f"{ref.source}.{ref.name}"
        raise UsageError(f"{route}.flow: the webhook's {what} is empty: a signature or token checked against an "
                         "empty secret proves nothing (anybody can sign with it)")
    return value


def _sent_to(node: object) -> Iterator[str]:
    """The connections a node's `send` statements send to (in loops, ifs, functions: anywhere in it)."""
    return (n.destination.connection for n in ast.walk(node) if isinstance(n, ast.Send))


def overwritten_files(flow: Flow) -> list[Diagnostic]:
    """Warnings for a webhook flow that sends to a file in overwrite mode, the default: each delivery's run
    replaces the file, so it holds the last delivery's records only (the others were written, then lost).
    serve logs them at start; `flowlang check` shows them with the flow's other warnings."""
    if not any(isinstance(t, WebhookTrigger) for t in flow.checked.triggers):
        return []
    sent = set(_sent_to(flow.module.statements))
    return [Diagnostic("overwrite", f"the file connection '{s.name}' is in overwrite mode (the default): each "
                       "delivery's run replaces what the run before it wrote; give it mode: \"append\" to keep "
                       "every delivery's records", flow.source, s.span, f'use {s.name} = file(..., mode: "append")',
                       Severity.WARNING)
            for s in flow.module.statements
            if isinstance(s, ast.Use) and s.connector == "file" and s.name in sent
            and not any(k.name == "mode" for k in s.kwargs)]


def start_warnings(flow: Flow) -> list[Diagnostic]:
    """What serve says of a flow as it starts serving it (at its start, and when it takes an edit): its
    trigger lines' warnings from check (a webhook's timeout: that waits for nothing) and its files in
    overwrite mode."""
    return [*(w for w in flow.checked.warnings if w.code == "trigger"), *overwritten_files(flow)]


def params_without_default(flow: Flow, severity: Severity = Severity.ERROR) -> list[Diagnostic]:
    """serve runs a flow (a delivery, a tick, the console's run now) with no params: one without a default
    failed every run ('missing param since: give it with --param since=VALUE', an option serve has not).
    Errors for serve; `flowlang check` says them as warnings of a flow with triggers (run --param is fine)."""
    if not flow.checked.triggers:
        return []
    return [Diagnostic("param", f"param {p.name} has no default: serve runs this flow (its deliveries and ticks) "
                       "with no params, so each needs one", flow.source, p.span,
                       f"param {p.name} = ... (or read the value from input, env or state)", severity)
            for p in flow.checked.params if p.default is None]


def same_name(flow: Flow, other: str) -> Diagnostic:
    """Two flows of one folder with one name share their state, jobs and errors (their state folder tells
    flows apart by name): said at the second one's flow line (`other` is the first one's file); serve
    refuses such a folder, and `flowlang check` says it."""
    from flowlang.source import Span

    line = next((s.span for s in flow.module.statements if isinstance(s, ast.FlowDecl)), Span(0, 0))
    return Diagnostic("duplicate", f"{other} has the same flow name '{flow.key}'; flows that share a state "
                      "folder need distinct names (they would share their state, jobs and errors)", flow.source,
                      line, f'give this one a name of its own: flow "{flow.key} 2"')


def load_folder(folder: Path, secrets: Mapping[str, str], env: Mapping[str, str] | None = None,
                providers: SecretProviders | None = None, only: str | None = None) -> list[ServedFlow]:
    """Every *.flow file of the folder, checked; raises a CheckError listing all their mistakes. With `only`
    (a route: `flowlang inbox --replay`), that flow's file alone, if it is there, and without its verify
    schemes' secrets: a replay checks no signature, and needs neither another flow of the folder to check
    nor its webhook's secret (a replay of a Stripe delivery refused for the GitHub flow's secret)."""
    if folder.is_file():
        raise UsageError(f"{folder} is a file: serve takes the folder of flows (flowlang serve {folder.parent})")
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    if not any(folder.glob("*.flow")):  # it served nothing, saying 'serving 0 flows', as check says it
        raise UsageError(f"no .flow files in {folder} (serve takes the flows in the folder itself, not in "
                         "folders below it)")
    env = dict(os.environ) if env is None else env
    chain = SecretChain((providers or default_chain)(secrets, env))
    environment = Environment()
    problems: list[Diagnostic] = []
    served: list[ServedFlow] = []
    names: dict[str, str] = {}  # a flow's name -> the file that has it
    paths = sorted(folder.glob("*.flow")) if only is None else [p for p in [folder / f"{only}.flow"] if p.is_file()]
    for path in paths:
        try:
            flow = load(path, environment=environment, bindings=())
        except ScriptError as e:
            problems.extend(e.diagnostics)
            continue
        if names.setdefault(flow.key, path.name) != path.name:
            problems.append(same_name(flow, names[flow.key]))
        item = ServedFlow(path.stem, flow)
        for trigger in flow.checked.triggers:
            if isinstance(trigger, WebhookTrigger):
                item.webhook = trigger  # one: a second is a check error
            else:
                item.schedules.append(trigger)
        problems.extend(params_without_default(flow))
        served.append(item)
    if problems:
        raise CheckError(problems)
    for item in served if only is None else ():
        if item.webhook is not None:
            item.schemes = [Scheme(s, tuple(secret_value(r, chain, env, item.route) for r in s.secrets))
                            for s in item.webhook.verify]
            for scheme in item.schemes:
                standard_secret(scheme, item.route)
    return served


def standard_secret(scheme: Scheme, route: str) -> None:
    """A Standard Webhooks secret is `whsec_` and the base64 of its key: one that starts so and is no base64
    after it (copied short, or with a character too many) was taken whole as the key, and every delivery
    was a 401 'wrong signature', nothing said at start."""
    if scheme.preset != "standard" or not scheme.secrets:
        return
    value = scheme.secrets[0]
    if not value.startswith("whsec_"):
        return
    try:
        base64.b64decode(value[len("whsec_"):], validate=True)
    except ValueError:
        what = scheme.spec.secrets[0].describe() if scheme.spec.secrets else "its secret"
        raise UsageError(f"{route}.flow: the standard() secret {what} starts with whsec_, but what follows is "
                         "not base64, as a Standard Webhooks secret's key is: copy the whole secret the sender "
                         "shows (whsec_ and its base64)") from None
