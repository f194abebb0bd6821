"""`trigger` lines: what `flowlang serve` needs to start a flow (a webhook with its signature check, a
cron schedule in a time zone), read from the AST into plain specs, with a check error at the place of
every mistake. `flowlang run` ignores these lines; `flowlang check` reports their mistakes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from flowlang import ast
from flowlang.check.hints import did_you_mean
from flowlang.source import Span

Report = Callable[[str, str, Span, "str | None"], None]


@dataclass(frozen=True)
class SecretRef:
    """Where a verify scheme's secret comes from: `secret.NAME`, `env.NAME` or a literal string."""

    source: str  # secret, env, literal
    name: str  # the variable's name, or the literal text

    def describe(self) -> str:
        return f"{self.source}.{self.name}" if self.source != "literal" else "a literal string"


@dataclass(frozen=True)
class VerifyScheme:
    """One signature scheme of a webhook: a preset, its secret(s) and its options."""

    preset: str
    secrets: tuple[SecretRef, ...]
    options: dict[str, str | int]
    span: Span


@dataclass(frozen=True)
class WebhookTrigger:
    verify: tuple[VerifyScheme, ...]
    concurrency: int = 1
    max_body: int = 1_000_000
    respond: str = "accepted"
    timeout: float = 10.0
    span: Span = field(default_factory=lambda: Span(0, 0))


@dataclass(frozen=True)
class ScheduleTrigger:
    cron: str
    tz: str = "UTC"
    catch_up: bool = False
    span: Span = field(default_factory=lambda: Span(0, 0))


Trigger = WebhookTrigger | ScheduleTrigger

# preset -> (positional secrets it takes, its keyword options with defaults; None: required)
PRESETS: dict[str, tuple[int, dict[str, str | int | None]]] = {
    "github": (1, {}),
    "shopify": (1, {}),
    "stripe": (1, {"tolerance": 300}),
    "slack": (1, {"tolerance": 300}),
    "standard": (1, {"tolerance": 300}),
    "hmac": (1, {"header": None, "algorithm": "sha256", "encoding": "hex", "prefix": "", "id_header": ""}),
    "token": (1, {"header": None, "prefix": "", "id_header": ""}),
    "basic": (2, {"id_header": ""}),
}
ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")
WEBHOOK_KEYS = ("verify", "concurrency", "max_body", "respond", "timeout")
SCHEDULE_KEYS = ("tz", "catch_up")
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?\s*$", re.IGNORECASE)
UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def parse_size(text: str) -> int | None:
    m = SIZE.match(text)
    if m is None:
        return None
    return int(Decimal(m.group(1)) * UNITS[(m.group(2) or "B").upper()])


def cron_problem(expression: str) -> str | None:
    """Why a five-field cron expression is not one, or None."""
    from croniter import croniter

    fields = expression.split()
    if len(fields) != 5:
        return f"a schedule takes five cron fields (minute hour day month weekday), not {len(fields)}"
    for (name, example), value in zip((("minute", 17), ("hour", 3), ("day", 1), ("month", 6), ("weekday", 1)), fields,
                                      strict=True):
        for part in value.split(","):
            base = part.split("/")[0]
            if base[:1] in ("R", "r", "H", "h") and (len(base) == 1 or base[1] == "("):
                # croniter's R is a random value (another one each time serve starts: "R * * * *" ticked at
                # :16 in one serve, :48 in the next); H, Jenkins' hashed one, failed as 'Hashed definitions
                # must include hash_id'
                return (f"{part} in the {name} field is no cron value ({'random' if base[0] in 'Rr' else 'hashed'}, "
                        f"as croniter or Jenkins write it, not cron): give the {name} itself, as {example}")
    try:
        ticks = croniter(expression)
    except (ValueError, KeyError) as e:
        return f"not a cron expression: {e}"
    try:  # "0 2 30 2 *" is five good fields, and no day has them: serve failed to find its first tick
        ticks.get_next(float, start_time=0)
    except ValueError:
        return (f"the schedule \"{expression}\" never ticks: no month of it has that day "
                "(like February 30 or April 31)")
    return None


def zone_problem(name: str) -> str | None:
    """Why a schedule's tz: is no zone, or None: the rule of to_zone() (UTC, an IANA name, an offset)."""
    from flowlang.runtime.builtins.time import unknown_zone, zone_named

    return unknown_zone(name) if zone_named(name) is None else None


class TriggerReader:
    """Reads `trigger` lines; every mistake goes to `report(code, message, span, hint)`."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def read(self, node: ast.Trigger) -> Trigger | None:
        if node.kind == "webhook":
            return self.webhook(node)
        if node.kind == "schedule":
            return self.schedule(node)
        self.report("trigger", f"unknown trigger '{node.kind}'", node.kind_span,
                    did_you_mean(node.kind, ["webhook", "schedule"]) or "triggers: webhook(...), schedule(...)")
        return None

    def _keys(self, node: ast.Trigger, allowed: tuple[str, ...]) -> dict[str, ast.KwArg]:
        found: dict[str, ast.KwArg] = {}
        for k in node.kwargs:
            if k.name in found:
                self.report("trigger", f"'{k.name}' is given twice", k.span, None)
            elif k.name not in allowed:
                self.report("trigger", f"{node.kind}() has no key '{k.name}'", k.span,
                            did_you_mean(k.name, allowed) or f"keys: {', '.join(allowed)}")
            found[k.name] = k
        return found

    def _literal(self, expr: ast.Expr, kind: type | tuple[type, ...], what: str) -> object:
        """A constant of that type (a bool is not a number here), else a check error."""
        if isinstance(expr, ast.Literal) and isinstance(expr.value, kind) and (
                kind is bool or not isinstance(expr.value, bool)):
            return expr.value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        words = {bool: "true or false", int: "a whole number", str: "a string", Decimal: "a number"}
        # (int, Decimal) is 'a number', not 'a whole number or a number'
        wanted = " or ".join(words[k] for k in kinds if not (k is int and Decimal in kinds))
        if isinstance(expr, ast.Literal):  # a constant of another type: say what was given ('timeout: "x"')
            given = expr.value
            shown = ("true" if given else "false") if isinstance(given, bool) else (
                "null" if given is None else f'"{given}"' if isinstance(given, str) else str(given))
            self.report("trigger", f"{what} must be {wanted}, not {shown}", expr.span, None)
            return None
        self.report("trigger", f"{what} must be {wanted}, written as it is", expr.span,
                    "serve reads trigger lines before any run; they cannot use variables")
        return None

    # ---- webhook --------------------------------------------------------------------------
    def webhook(self, node: ast.Trigger) -> WebhookTrigger | None:
        if node.args:
            self.report("trigger", "webhook() takes its settings as key: value pairs "
                        f"({', '.join(WEBHOOK_KEYS)})", node.args[0].span, None)
        keys = self._keys(node, WEBHOOK_KEYS)
        if "verify" not in keys:
            self.report("trigger", "a webhook needs `verify:` (how a delivery proves where it comes from)",
                        node.span, "for example verify: github(secret.GITHUB_WEBHOOK_SECRET)")
            return None
        value = keys["verify"].value
        items = value.items if isinstance(value, ast.ListLit) else (value,)
        if not items:
            self.report("trigger", "verify: needs at least one scheme", value.span, None)
        schemes = [s for s in (self.scheme(item) for item in items) if s is not None]
        settings: dict[str, object] = {}
        if "concurrency" in keys:
            n = self._literal(keys["concurrency"].value, int, "concurrency")
            if isinstance(n, int) and not 1 <= n <= 1000:
                self.report("trigger", "concurrency is a number of runs at once, from 1 to 1000",
                            keys["concurrency"].value.span, None)
            elif isinstance(n, int):
                settings["concurrency"] = n
        if "max_body" in keys:
            text = self._literal(keys["max_body"].value, (str, int), "max_body")
            size = parse_size(str(text)) if text is not None else None
            if text is not None and not size:
                self.report("trigger", f"max_body is a size like \"1MB\" or \"512KB\", not {text!r}",
                            keys["max_body"].value.span, None)
            elif size:
                settings["max_body"] = size
        if "respond" in keys:
            text = self._literal(keys["respond"].value, str, "respond")
            if text is not None and text not in ("accepted", "outputs"):
                self.report("trigger", f"respond is \"accepted\" or \"outputs\", not {text!r}",
                            keys["respond"].value.span, None)
            elif text is not None:
                settings["respond"] = text
        if "timeout" in keys:
            t = self._literal(keys["timeout"].value, (int, Decimal), "timeout")
            if t is not None:
                if not 0 < float(str(t)) <= 600:
                    self.report("trigger", "timeout is seconds, more than 0 and at most 600",
                                keys["timeout"].value.span, None)
                else:
                    settings["timeout"] = float(str(t))
        if len(schemes) != len(items):
            return None
        return WebhookTrigger(tuple(schemes), span=node.span, **settings)  # type: ignore[arg-type]

    def secret_ref(self, expr: ast.Expr, what: str) -> SecretRef | None:
        if isinstance(expr, ast.Field) and isinstance(expr.obj, ast.Name) and expr.obj.name in ("secret", "env"):
            return SecretRef(expr.obj.name, expr.name)
        if isinstance(expr, ast.Literal) and isinstance(expr.value, str):
            return SecretRef("literal", expr.value)
        self.report("trigger", f"{what} is secret.NAME, env.NAME or a string", expr.span,
                    "serve reads it once at start")
        return None

    def scheme(self, expr: ast.Expr) -> VerifyScheme | None:
        if not isinstance(expr, ast.FuncCall):
            self.report("trigger", "a verify scheme is a preset call like github(secret.NAME)", expr.span,
                        f"presets: {', '.join(PRESETS)}")
            return None
        preset = PRESETS.get(expr.name)
        if preset is None:
            self.report("trigger", f"unknown verify preset '{expr.name}'", expr.span,
                        did_you_mean(expr.name, PRESETS) or f"presets: {', '.join(PRESETS)}")
            return None
        n_secrets, allowed = preset
        ok = True
        if len(expr.args) != n_secrets:
            what = "a secret" if n_secrets == 1 else "a user and a password"
            self.report("trigger", f"{expr.name}() takes {what}, got {len(expr.args)} argument"
                        f"{'s' if len(expr.args) != 1 else ''}", expr.span, None)
            ok = False
        secrets = [self.secret_ref(a, f"the {expr.name}() secret") for a in expr.args]
        options: dict[str, str | int] = {k: v for k, v in allowed.items() if v is not None}
        for k in expr.kwargs:
            if k.name not in allowed:
                names = ", ".join(allowed) or "none"
                self.report("trigger", f"{expr.name}() has no option '{k.name}'", k.span,
                            did_you_mean(k.name, list(allowed)) or f"its options: {names}")
                ok = False
                continue
            default = allowed[k.name]
            kind: type = int if isinstance(default, int) else str
            value = self._literal(k.value, kind, f"{expr.name}() option {k.name}")
            if value is None:
                ok = False
                continue
            if k.name == "algorithm" and value not in ALGORITHMS:
                self.report("trigger", f"algorithm is one of {', '.join(ALGORITHMS)}, not {value!r}", k.value.span,
                            None)
                ok = False
            elif k.name == "encoding" and value not in ENCODINGS:
                self.report("trigger", f"encoding is hex or base64, not {value!r}", k.value.span, None)
                ok = False
            elif k.name == "tolerance" and isinstance(value, int) and value <= 0:
                self.report("trigger", "tolerance is seconds, more than 0", k.value.span, None)
                ok = False
            options[k.name] = value  # type: ignore[assignment]
        missing = [k for k, v in allowed.items() if v is None and k not in options]
        if missing:
            self.report("trigger", f"{expr.name}() needs {', '.join(m + ':' for m in missing)}", expr.span,
                        f'for example {expr.name}(secret.NAME, header: "X-Signature")')
            ok = False
        if not ok or any(s is None for s in secrets):
            return None
        return VerifyScheme(expr.name, tuple(s for s in secrets if s is not None), options, expr.span)

    # ---- schedule -------------------------------------------------------------------------
    def schedule(self, node: ast.Trigger) -> ScheduleTrigger | None:
        keys = self._keys(node, SCHEDULE_KEYS)
        if len(node.args) != 1:
            self.report("trigger", "schedule() takes one cron expression, like schedule(\"*/15 * * * *\")",
                        node.span, None)
            return None
        cron = self._literal(node.args[0], str, "the cron expression")
        ok = isinstance(cron, str)
        if isinstance(cron, str):
            problem = cron_problem(cron)
            if problem:
                self.report("trigger", problem, node.args[0].span, "fields: minute hour day-of-month month "
                            "day-of-week, e.g. \"0 6 * * 1-5\"")
                ok = False
        tz = "UTC"
        if "tz" in keys:
            value = self._literal(keys["tz"].value, str, "tz")
            if not isinstance(value, str):
                ok = False
            else:
                problem = zone_problem(value)
                if problem:
                    self.report("trigger", problem, keys["tz"].value.span, None)
                    ok = False
                tz = value
        catch_up = False
        if "catch_up" in keys:
            flag = self._literal(keys["catch_up"].value, bool, "catch_up")
            if not isinstance(flag, bool):
                ok = False
            else:
                catch_up = flag
        if not ok:
            return None
        assert isinstance(cron, str)
        return ScheduleTrigger(cron, tz, catch_up, node.span)


def concurrent_state(triggers: list[Trigger], uses: list[Span], line_of: Callable[[Span], int],
                     report: Report) -> None:
    """`state` is loaded as a run starts and saved as it ends, so runs of one flow that overlap (a webhook
    with concurrency above 1) would each save their own copy and lose the others' changes (two runs that
    add 1 leave 1). Such a flow's first use of `state` is a check error (any use: `let s = state` can
    change it)."""
    webhook = next((t for t in triggers if isinstance(t, WebhookTrigger) and t.concurrency > 1), None)
    if webhook is None or not uses:
        return
    n = webhook.concurrency
    report("concurrent-state", f"this flow uses `state`, but its webhook runs {n} deliveries at once "
           f"(concurrency: {n}, line {line_of(webhook.span)}): runs at the same time would each save their "
           "own `state` and lose the others' changes", min(uses, key=lambda s: s.start),
           "keep `state` out of a flow with concurrency above 1, or leave concurrency at 1 (its deliveries "
           "then run one at a time, in arrival order)")
