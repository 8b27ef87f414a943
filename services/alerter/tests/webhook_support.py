"""Rules with one webhook sink, alerts raised straight into the state, deliveries read back."""
from __future__ import annotations

from datetime import timedelta

from arcflare.alerter.deliveries import DeliveryWorker, raise_alert
from arcflare.alerter.engine import AlertEngine
from arcflare.alerter.loader import parse_rules
from arcflare.contracts import events as e
from arcflare.runtime import StateStore

FED = "hospitals"


class Clock:
    def __init__(self, start) -> None:
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def book_for(url: str, fmt: str = "json", retries: int = 2, timeout_s: float = 5.0,
             backoff_s: float = 10.0, where: str = "url"):
    """where='url_env': `url` names the environment variable holding the URL."""
    return parse_rules(
        f"sinks:\n"
        f"  - {{name: hook, kind: webhook, format: {fmt}, {where}: '{url}', retries: {retries},"
        f" timeout_s: {timeout_s}, backoff_s: {backoff_s}}}\n"
        f"rules:\n"
        f"  - name: deployment-failed\n"
        f"    event: DeploymentFailed\n"
        f"    severity: critical\n"
        f"    key: [federation, target]\n"
        f"    sinks: [log, hook]\n"
        f"    summary: 'deploying {{target}} failed: {{reason}}'\n",
        "rules.yaml",
    )


def raise_one(state: StateStore, book, at, target: str = "north-1",
              reason: str = "no python3") -> str:
    envelope = at(e.DeploymentFailed(federation=FED, target=target, reason=reason), 0)
    with state.unit_of_work(envelope) as uow:
        alerts = AlertEngine(book).observe(uow.write(), envelope)
        return raise_alert(uow, alerts[0], envelope.occurred_at)


def delivery(state: StateStore, alert_id: str, sink: str = "hook") -> dict:
    with state.connect() as db:
        return dict(db.execute("SELECT * FROM deliveries WHERE alert_id = ? AND sink = ?",
                               (alert_id, sink)).fetchone())


def worker_for(book, state, clock) -> DeliveryWorker:
    return DeliveryWorker(book.sink("hook"), state, clock)
