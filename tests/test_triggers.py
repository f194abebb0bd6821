"""`trigger` lines: read by `flowlang check` (mistakes with positions), ignored by a run, and `trigger`
stays an ordinary name everywhere but at the start of a top-level line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowlang
from flowlang.check.triggers import ScheduleTrigger, WebhookTrigger
from flowlang.errors import ScriptError

GOOD = '''flow "Shop orders"
trigger webhook(verify: [shopify(secret.NEW), shopify(secret.OLD)], concurrency: 3, max_body: "2MB")
trigger schedule("*/15 * * * *", tz: "Europe/Oslo", catch_up: true)
let trigger = {kind: job.trigger.kind}
emit trigger
'''


def test_triggers_are_read_into_specs_and_a_run_ignores_them() -> None:
    flow = flowlang.compile(GOOD)
    webhook, schedule = flow.checked.triggers
    assert isinstance(webhook, WebhookTrigger) and isinstance(schedule, ScheduleTrigger)
    assert [s.preset for s in webhook.verify] == ["shopify", "shopify"]
    assert [s.secrets[0].name for s in webhook.verify] == ["NEW", "OLD"]
    assert (webhook.concurrency, webhook.max_body, webhook.respond) == (3, 2_000_000, "accepted")
    assert (schedule.cron, schedule.tz, schedule.catch_up) == ("*/15 * * * *", "Europe/Oslo", True)
    result = flow.run()
    assert result.ok and result.outputs == [{"kind": "run"}]


BAD = [
    ('trigger schedule("*/15 * * *")', "2:18", "five cron fields"),
    ('trigger schedule("61 * * * *")', "2:18", "not a cron expression"),
    # croniter's random R was taken (another minute at each serve start), Jenkins' H said croniter's words
    ('trigger schedule("R * * * *")', "2:18", "R in the minute field is no cron value (random, as croniter or "
     "Jenkins write it, not cron): give the minute itself, as 17"),
    ('trigger schedule("0 H(0-5) * * *")', "2:18", "H(0-5) in the hour field is no cron value (hashed"),
    ('trigger schedule("0 2 30 2 *")', "2:18", 'the schedule "0 2 30 2 *" never ticks'),
    ('trigger schedule("0 0 31 4,6,9,11 *", tz: "Asia/Kolkata")', "2:18", "never ticks"),
    ('trigger schedule("0 6 * * *", tz: "Europe/Olso")', "2:35", "unknown time zone 'Europe/Olso'"),
    ('trigger schedule("0 6 * * *", tz: "europe/oslo")', "2:35", "did you mean 'Europe/Oslo'?"),
    ('trigger schedule("0 6 * * *", tz: "America/NewYork")', "2:35", "did you mean 'America/New_York'?"),
    ('trigger webhook(verify: gitub(secret.S))', "2:25", "unknown verify preset 'gitub'"),
    ('trigger webhook(verify: hmac(secret.S))', "2:25", "hmac() needs header:"),
    ('trigger webhook(verify: hmac(secret.S, header: "X-Sig", algorithm: "md5"))', "2:68", "algorithm"),
    ('trigger webhook(verify: stripe(secret.S, tolerance: 0))', "2:53", "tolerance"),
    ('trigger webhook(verify: github(x))', "2:32", "secret.NAME, env.NAME or a string"),
    ('trigger webhook(concurrency: 2)', "2:1", "needs `verify:`"),
    ('trigger webhook(verify: github(secret.S), respond: "now")', "2:52", "respond"),
    ('trigger webhook(verify: github(secret.S), max_body: "huge")', "2:53", "max_body"),
    ('trigger webhok(verify: github(secret.S))', "2:9", "unknown trigger 'webhok'"),
    ('trigger schedule("0 6 * * *", catch_up: 1)', "2:41", "true or false"),
    # a constant of another type said 'timeout must be a whole number or a number, written as it is' with the
    # hint 'they cannot use variables': it says what was given
    ('trigger webhook(verify: github(secret.S), respond: "outputs", timeout: "x")', "2:72",
     'timeout must be a number, not "x"'),
    ('trigger schedule("0 6 * * *", catch_up: "yes")', "2:41", 'catch_up must be true or false, not "yes"'),
    ('let n = 2\ntrigger webhook(verify: github(secret.S), concurrency: n)', "3:56",
     "concurrency must be a whole number, written as it is"),
    # check said ok and only serve refused it (each verify scheme goes in the one webhook's list)
    ('trigger webhook(verify: github(secret.A))\ntrigger webhook(verify: github(secret.B))', "3:1",
     "a flow has one webhook trigger (list several verify schemes in it instead)"),
]


@pytest.mark.parametrize(("line", "where", "message"), BAD)
def test_a_mistake_in_a_trigger_is_a_check_error_at_its_place(tmp_path: Path, line: str, where: str,
                                                             message: str) -> None:
    path = tmp_path / "t.flow"
    path.write_text(f'flow "t"\n{line}\nemit 1\n')
    with pytest.raises(ScriptError) as info:
        flowlang.load(path)
    rendered = info.value.render()
    assert f"t.flow:{where}: error:" in rendered and message in rendered


def test_a_schedule_takes_the_zones_to_zone_takes() -> None:
    """tz: "utc" and tz: "+05:30" were unknown time zones to a schedule, while to_zone(d, "utc") and
    to_zone(d, "+05:30") took them: one rule for zone names now."""
    for zone in ("utc", "+05:30", "Asia/Kolkata"):
        flow = flowlang.compile(f'trigger schedule("0 2 * * *", tz: "{zone}")\nemit to_zone(now(), "{zone}")\n')
        [schedule] = flow.checked.triggers
        assert isinstance(schedule, ScheduleTrigger) and schedule.tz == zone


def test_check_lists_every_trigger_mistake_at_once(tmp_path: Path) -> None:
    from conftest import run_cli

    path = tmp_path / "t.flow"
    path.write_text('flow "t"\ntrigger schedule("* * *", tz: "Mars/Base")\n'
                    'trigger webhook(verify: gitlab(secret.S))\nemit 1\n')
    done = run_cli("check", str(path))
    assert done.returncode == 2
    assert "t.flow:2:18" in done.stderr and "t.flow:2:31" in done.stderr and "t.flow:3:25" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_schedule_that_never_ticks_at_its_place(tmp_path: Path) -> None:
    """February 30 is five good cron fields: check passed it and serve then died at start with 'internal
    error: CroniterBadDateError: failed to find next date'."""
    from conftest import run_cli

    (tmp_path / "leap.flow").write_text('trigger schedule("0 0 29 2 *")\nemit 1\n')  # ticks every 4 years
    (tmp_path / "never.flow").write_text('trigger schedule("0 2 30 2 *", tz: "America/New_York")\nemit 1\n')
    done = run_cli("serve", str(tmp_path), "--port", "0", env={"TZ": "America/New_York"}, timeout=30)
    assert done.returncode == 2, done.stderr
    said = [json.loads(line) for line in done.stderr.splitlines()]  # JSON: stderr is no terminal
    assert any(str(e.get("location")).endswith("never.flow:1:18")
               and e["message"].startswith('the schedule "0 2 30 2 *" never ticks') for e in said)
    assert "leap.flow" not in done.stderr and "internal error" not in done.stderr


@pytest.mark.parametrize("block", ["if true", "for each x in [1]", "function f()"])
def test_trigger_belongs_to_the_top_level(block: str) -> None:
    """A trigger line inside a block said 'expected `call`, `else`, `emit`, `end`, ... or another token,
    found `trigger`': it says where trigger lines go."""
    with pytest.raises(ScriptError) as info:
        flowlang.compile(f'{block}\n  trigger schedule("* * * * *")\nend\n')
    rendered = info.value.render()
    assert "2:3: error: a `trigger` line stands at the top level of a flow, not inside a block" in rendered
    assert "after the `flow` line" in rendered and "another token" not in rendered


def test_an_assignment_to_trigger_in_a_block_is_taught_let() -> None:
    with pytest.raises(ScriptError) as info:
        flowlang.compile('let trigger = 1\nif true\n  trigger = 2\nend\n')
    rendered = info.value.render()
    assert "3:3: error: an assignment starts with `let`" in rendered and "let trigger = 2" in rendered


def test_an_imported_file_holds_no_trigger(tmp_path: Path) -> None:
    (tmp_path / "lib.flow").write_text('trigger schedule("* * * * *")\nlet x = 1\n')
    (tmp_path / "main.flow").write_text('import "lib.flow"\nemit x\n')
    with pytest.raises(ScriptError) as info:
        flowlang.load(tmp_path / "main.flow")
    assert "lib.flow:1:1" in info.value.render()


CONCURRENT = 'trigger webhook(verify: github(secret.S), concurrency: 3)\nuse api = http(base_url: "http://x")\n'


@pytest.mark.parametrize(("body", "where"), [
    ("let state.cursor = 1\n", "3:5"),
    ("let n = 1\nemit state.cursor\n", "4:6"),
    ("let s = state\nlet s.cursor = 2\n", "3:9"),  # changes state through another name
    ('call api.get("/x") as state\n', "3:23"),
    ("function f()\n  let state = {}\nend\nlet state.a = f()\n", "4:7"),
])
def test_a_flow_whose_runs_overlap_cannot_use_state(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "t.flow"
    path.write_text(CONCURRENT + body)
    with pytest.raises(ScriptError) as info:
        flowlang.load(path)
    rendered = info.value.render()
    assert f"t.flow:{where}: error: this flow uses `state`, but its webhook runs 3 deliveries at once " \
           "(concurrency: 3, line 1)" in rendered
    assert rendered.count("error:") == 1
    path.write_text(CONCURRENT.replace(", concurrency: 3", "") + body)  # one at a time: fine
    flowlang.load(path)
    path.write_text(CONCURRENT + "emit 1\n")  # concurrent without state: fine
    flowlang.load(path)


def test_a_flow_whose_runs_overlap_cannot_use_state_through_an_imported_function(tmp_path: Path) -> None:
    """A function of an imported file (or of a file that one imports) that uses `state` is a use of the
    flow's state too: found at the import line (before, only the flow's own lines were looked at, and two
    runs at once that each bumped state.count left 1)."""
    (tmp_path / "counter.flow").write_text("function bump()\n  let state.count = (state.count ?? 0) + 1\n"
                                           "  return state.count\nend\n")
    (tmp_path / "via.flow").write_text('import "counter.flow"\nfunction twice()\n  return bump() + bump()\nend\n')
    (tmp_path / "pure.flow").write_text("function one()\n  return 1\nend\n")
    for imported in ("counter.flow", "via.flow"):
        path = tmp_path / "t.flow"
        path.write_text(CONCURRENT + f'import "pure.flow"\nimport "{imported}"\nemit one()\n')
        with pytest.raises(ScriptError) as info:
            flowlang.load(path)
        assert "t.flow:4:1: error: this flow uses `state`, but its webhook runs 3 deliveries at once" \
               in info.value.render()
    path.write_text(CONCURRENT + 'import "pure.flow"\nemit one()\n')
    flowlang.load(path)


def test_a_webhook_timeout_without_respond_outputs_is_warned_at_its_place() -> None:
    # timeout: is how long respond: "outputs" waits; with the default respond: "accepted" it did nothing, silently
    head = 'trigger webhook(verify: token(secret.T, header: "X-T"), '
    warned = flowlang.compile(head + "timeout: 5)\nemit 1\n", name="w").checked.warnings
    assert [(w.code, w.render().splitlines()[0]) for w in warned] == [
        ("trigger", "w:1:57: warning: timeout: is how long a delivery waits for the run's outputs, and this webhook "
         "answers at once (202)")]
    assert flowlang.compile(head + 'respond: "outputs", timeout: 5)\nemit 1\n', name="w").checked.warnings == []


def test_a_webhook_timeout_beside_respond_accepted_is_warned_and_the_hint_says_which_to_change() -> None:
    # respond: "accepted" written out (the default) with timeout: warned as when respond: was left out, and
    # the hint said to add the respond: the line has
    head = 'trigger webhook(verify: token(secret.T, header: "X-T"), '
    for line, col in (('respond: "accepted", timeout: 5)', 78), ('timeout: 5, respond: "accepted")', 57)):
        warned = flowlang.compile(head + line + "\nemit 1\n", name="w").checked.warnings
        assert [(w.code, w.render().splitlines()[0], w.hint) for w in warned] == [
            ("trigger", f"w:1:{col}: warning: timeout: is how long a delivery waits for the run's outputs, and this "
             'webhook answers at once (202) (respond: "accepted")',
             'write respond: "outputs" in place of "accepted", or leave timeout: out')]
