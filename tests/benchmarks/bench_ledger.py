"""Ledger: what the read model costs per event, and what a status read costs.

Baselines, measured in the same run: appending the bare envelope to one table in
its own transaction (the least any event log does), and /healthz on the same
HTTP server (the least any request costs). Alternating runs, best of each side.
"""
from __future__ import annotations

import json
import sqlite3
import statistics
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.http_api import LedgerApi
from arcflare.ledger.projections import record
from arcflare.ledger.tables import MIGRATIONS

from tests.benchmarks.noise import alternate, runs

FED = "bench"
SITES = 50
EVENTS = 3000


def _stream() -> list[Envelope]:
    t0 = datetime.now(UTC)
    stream = []
    for i in range(EVENTS):
        site = f"site-{i % SITES}"
        if i % 3 == 0:
            msg = e.SiteHealthChanged(federation=FED, site=site, status="connected")
        elif i % 3 == 1:
            msg = e.SiteHeartbeat(federation=FED, site=site, status="connected", pid=i)
        else:
            msg = e.SiteLogTail(federation=FED, site=site, file="log.txt", lines=["x" * 80] * 20)
        env = Envelope.wrap(msg)
        stream.append(env.model_copy(update={"occurred_at": t0 + timedelta(milliseconds=i)}))
    return stream


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _per_event(db: sqlite3.Connection, stream: list[Envelope], write) -> float:
    started = time.perf_counter()
    for env in stream:
        db.execute("BEGIN IMMEDIATE")
        write(db, env)
        db.execute("COMMIT")
    return (time.perf_counter() - started) / len(stream) * 1e6


def _get_ms(url: str, n: int = 200) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(results) -> None:
    stream = _stream()
    n = runs(3, "ledger")
    with tempfile.TemporaryDirectory() as tmp:
        folder, replays = Path(tmp), []

        def bare_append(i: int) -> float:
            db = _connect(folder / f"base-{i}.db")
            db.execute("CREATE TABLE log (id TEXT PRIMARY KEY, envelope TEXT)")
            return _per_event(db, stream, lambda db, env: db.execute(
                "INSERT INTO log VALUES (?, ?)", (env.message_id, env.model_dump_json())))

        def ledger(i: int) -> float:
            db = _connect(folder / f"ledger-{i}.db")
            for migration in MIGRATIONS:
                db.executescript(migration)
            value = _per_event(db, stream, lambda db, env: record(db, env))
            replays.append(_per_event(db, stream, lambda db, env: record(db, env)))
            return value

        per_event = alternate(n, ledger=ledger, bare_append=bare_append)
        results.compare("ledger.record_us_per_event", per_event["ledger"],
                        per_event["bare_append"], "us", target="<= 6")
        results.compare("ledger.replay_us_per_event", replays, per_event["bare_append"], "us",
                        target="<= 6")

        api = LedgerApi(folder / "ledger-0.db", "127.0.0.1", 0, folder / "ledger.port")
        try:
            url = f"http://127.0.0.1:{api.port}"
            reads = alternate(n, status=lambda i: _get_ms(f"{url}/federations/{FED}"),
                              healthz=lambda i: _get_ms(url + "/healthz"))
            size = len(json.dumps(json.loads(urllib.request.urlopen(
                f"{url}/federations/{FED}").read())))
        finally:
            api.close()
        results.compare(f"ledger.status_read_ms_p50_{SITES}_sites", reads["status"],
                        reads["healthz"], "ms", target="<= 10")
        results.add("ledger.status_read_bytes", size, "bytes")
