"""The store's record of alerts sent: when each flow last alerted each target, and how many runs
ended badly since then without an alert (so a flow failing every minute mails once an interval)."""

from __future__ import annotations

from flowlang.runtime.store import Store

SCHEMA = """
create table if not exists alert_log (
  flow text not null,
  target text not null,
  last_sent_at real not null,
  suppressed integer not null default 0,
  primary key (flow, target)
);
"""


def take_alert_slot(store: Store, flow: str, target: str, now: float, min_interval: float) -> tuple[bool, int]:
    """Whether an alert may go to TARGET now, and how many were held back before it. A held-back alert
    is counted; a sent one restarts the interval. One transaction, so two runs cannot both send."""
    with store.db:
        store.db.execute(SCHEMA)
        store.db.execute("begin immediate")
        row = store.db.execute("select last_sent_at, suppressed from alert_log where flow = ? and target = ?",
                               (flow, target)).fetchone()
        if row is not None and now - float(row[0]) < min_interval:
            store.db.execute("update alert_log set suppressed = suppressed + 1 where flow = ? and target = ?",
                             (flow, target))
            return False, int(row[1]) + 1
        held = int(row[1]) if row is not None else 0
        store.db.execute("insert into alert_log(flow, target, last_sent_at, suppressed) values (?, ?, ?, 0) "
                         "on conflict(flow, target) do update set last_sent_at = excluded.last_sent_at, "
                         "suppressed = 0", (flow, target, now))
        return True, held


def give_back_alert_slot(store: Store, flow: str, target: str, taken_at: float, held: int) -> None:
    """An alert that took its slot at `taken_at` (and with it the `held` runs held back before it) was not
    delivered (the target refused it or could not be reached): the interval does not start from it, so the
    next run that ends badly alerts, counting this run and those among the held back. (A slot taken since,
    by another run, is left as it is.)"""
    with store.db:
        store.db.execute("begin immediate")
        store.db.execute("update alert_log set last_sent_at = 0, suppressed = suppressed + ? "
                         "where flow = ? and target = ? and last_sent_at = ?", (held + 1, flow, target, taken_at))
