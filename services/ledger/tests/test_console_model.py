"""The console's own tables (metric rounds, health history, client versions): the same rows
whatever the order or number of times the events arrive, and health history kept bounded."""
from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.console_model import HEALTH_HISTORY_PER_SITE, record_for_console
from arcflare.ledger.tables import MIGRATIONS

TABLES = ("metric_points", "health_history", "client_versions")


def console_rows(path: Path, envelopes: list[Envelope]) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS:
        db.executescript(migration)
    for envelope in envelopes:
        db.execute("BEGIN IMMEDIATE")
        record_for_console(db, envelope, envelope.open())
        db.execute("COMMIT")
    return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def test_replayed_and_shuffled_events_give_the_same_console_rows(tmp_path, events) -> None:
    twice = events + events
    random.Random(3).shuffle(twice)

    in_order = console_rows(tmp_path / "a.db", sorted(events, key=lambda env: env.occurred_at))
    replayed = console_rows(tmp_path / "b.db", twice)

    assert in_order == replayed
    assert len(in_order["metric_points"]) == 3 and len(in_order["health_history"]) == 2


def test_a_round_reported_again_keeps_its_latest_value(tmp_path, enveloped) -> None:
    def report(value: float, at_ms: int) -> Envelope:
        return enveloped(e.MetricsReported(federation="hospitals", job_id="j", site="a", points=[
            e.MetricPoint(key="loss", value=value, step=2, timestamp_ms=at_ms)]), None, 1)

    rows = console_rows(tmp_path / "a.db", [report(0.3, 2000), report(0.9, 1000)])

    assert [(r[4], r[5]) for r in rows["metric_points"]] == [(2, 0.3)]


def test_health_history_keeps_the_newest_transitions_per_site(tmp_path, enveloped) -> None:
    flaps = [enveloped(e.SiteHealthChanged(federation="hospitals", site="a",
                                           status="connected" if i % 2 else "disconnected"),
                       None, i) for i in range(HEALTH_HISTORY_PER_SITE + 25)]

    rows = console_rows(tmp_path / "a.db", flaps)

    assert len(rows["health_history"]) == HEALTH_HISTORY_PER_SITE
    kept = {r[0] for r in rows["health_history"]}
    assert flaps[-1].message_id in kept and flaps[0].message_id not in kept
