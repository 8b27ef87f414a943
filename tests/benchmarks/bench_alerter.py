"""Alerter: the cost of checking an event against the default rules, and of raising.

Baseline, same run: a bare append of the envelope in its own transaction; alternating
runs, best of each side.
"""
from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.alerter.engine import AlertEngine
from arcflare.alerter.loader import load_rules
from arcflare.alerter.tables import SCHEMA
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope

from tests.benchmarks.noise import alternate, runs

N = 3000


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _stream(make) -> list[Envelope]:
    t0 = datetime.now(UTC)
    return [Envelope.wrap(make(i)).model_copy(update={"occurred_at": t0 + timedelta(seconds=i)})
            for i in range(N)]


def _per_event(db: sqlite3.Connection, stream: list[Envelope], step) -> float:
    started = time.perf_counter()
    for env in stream:
        db.execute("BEGIN IMMEDIATE")
        step(db, env)
        db.execute("COMMIT")
    return (time.perf_counter() - started) / len(stream) * 1e6


def run(results) -> None:
    engine = AlertEngine(load_rules())
    quiet = _stream(lambda i: e.SiteDeployed(federation="b", site=f"s{i % 50}", backend="local",
                                              handle=str(i)))
    flapping = _stream(lambda i: e.SiteHealthChanged(
        federation="b", site=f"s{i % 50}", status="disconnected" if i % 2 else "connected"))
    failing = _stream(lambda i: e.DeploymentFailed(federation="b", target=f"s{i}", reason="x"))
    n = runs(3, "alerter")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def bare_append(run: str) -> float:
            db = _connect(folder / f"base-{run}.db")
            db.execute("CREATE TABLE log (id TEXT PRIMARY KEY, envelope TEXT)")
            return _per_event(db, quiet, lambda db, env: db.execute(
                "INSERT INTO log VALUES (?, ?)", (env.message_id, env.model_dump_json())))

        def observe(run: str, stream: list[Envelope]) -> float:
            db = _connect(folder / f"{run}.db")
            db.executescript(SCHEMA)
            return _per_event(db, stream, engine.observe)

        for name, stream in (("no_rule", quiet), ("for_duration_flapping", flapping),
                             ("immediate_alert", failing)):
            per_event = alternate(
                n, alerter=lambda i, name=name, stream=stream: observe(f"{name}-{i}", stream),
                bare_append=lambda i, name=name: bare_append(f"{name}-{i}"))
            results.compare(f"alerter.observe_us_per_event.{name}", per_event["alerter"],
                            per_event["bare_append"], "us", target="<= 5")
