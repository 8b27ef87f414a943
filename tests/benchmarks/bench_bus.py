"""Embedded broker round trip: 1 producer and 2 consumer processes.

Figures (issue 2, Performance): throughput of send -> receive -> complete beside raw
SQLite moving the same messages the same way (ratio >= 0.5), latency from send to
completed (p50 <= 20 ms, p99 <= 100 ms) with the producer paced below saturation
(200 msg/s, and 10 msg/s so consumers are idle when a message arrives), and the CPU an
idle consumer burns over ~10 s (<= 1 % of a core). Latency and idle targets are
absolute: nothing in-process is a fair baseline for a hand-off between processes.

The raw SQLite baseline does what the broker does with the least SQL: the same process
layout (one producer, two competing consumer processes), the same file settings (WAL,
synchronous NORMAL), sends in transactions of 100, claims of up to 32 rows per
transaction (marked locked, so the competing consumer skips them), and one transaction
per completion (delete). It has no envelope columns, no lock tokens or expiry, no
dead-lettering and no doorbell: an idle raw consumer polls every millisecond.

    .venv/bin/python -m tests.benchmarks.harness bus
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from arcflare.bus.port import OutgoingMessage
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import EntityOptions, Queue, Topology

from tests.benchmarks import signing
from tests.benchmarks.noise import alternate, percentile, runs

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "bench"
TOPOLOGY = Topology(queues=(Queue(QUEUE, EntityOptions(lock_duration=timedelta(seconds=60))),),
                    topics=())
THROUGHPUT_MESSAGES = 6000
LATENCY_RATE = 200  # msg/s, well under capacity: latency without a backlog
LATENCY_SECONDS = 5
QUIET_RATE = 10  # msg/s: consumers go idle between messages
IDLE_SECONDS = 10


def _message(sent_at: float | None = None) -> OutgoingMessage:
    return OutgoingMessage(body=b'{"payload": "' + b"x" * 200 + b'"}', message_id=str(uuid.uuid4()),
                           subject="Bench",
                           application_properties={"sent": sent_at or time.time()})


# --- the processes --------------------------------------------------------------------
def consume(db: Path, out: Path, stop: Path, batch: int) -> None:
    """Receive and complete until `stop` exists; record 'sent completed' per message."""
    with SqliteBus(db, TOPOLOGY) as bus, out.open("w") as log:
        print("ready", flush=True)
        while not stop.exists():
            for message in bus.receive(QUEUE, max_messages=batch, max_wait=0.5):
                bus.complete(message)
                log.write(f"{message.application_properties['sent']} {time.time()}\n")
        log.flush()


def produce(db: Path, total: int, rate: float) -> None:
    """Send `total` messages: batches of 100 at full speed (rate 0), or paced singly."""
    with SqliteBus(db, TOPOLOGY) as bus:
        if not rate:
            for _ in range(0, total, 100):
                bus.send(QUEUE, [_message() for _ in range(100)])
            return
        started = time.monotonic()
        for n in range(total):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            bus.send(QUEUE, [_message()])


def idle(db: Path, seconds: float) -> None:
    """An idle consumer: report the CPU seconds it used while waiting."""
    with SqliteBus(db, TOPOLOGY) as bus:
        bus.receive(QUEUE, max_wait=0.2)  # connections open, caches warm
        cpu, deadline = time.process_time(), time.monotonic() + seconds
        while time.monotonic() < deadline:
            bus.receive(QUEUE, max_wait=min(5.0, max(0.0, deadline - time.monotonic())))
        print(time.process_time() - cpu, flush=True)


# --- the raw SQLite baseline, same roles ---------------------------------------------------
RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS m (seq INTEGER PRIMARY KEY, body BLOB, sent REAL,
                              locked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS m_free ON m (locked, seq);
"""


def _raw_connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(RAW_SCHEMA)
    return conn


def raw_consume(db: Path, out: Path, stop: Path, batch: int) -> None:
    conn = _raw_connect(db)
    with out.open("w") as log:
        print("ready", flush=True)
        while not stop.exists():
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute("SELECT seq, body, sent FROM m WHERE locked = 0 ORDER BY seq "
                                "LIMIT ?", (batch,)).fetchall()
            conn.executemany("UPDATE m SET locked = 1 WHERE seq = ?", [(r[0],) for r in rows])
            conn.execute("COMMIT")
            if not rows:
                time.sleep(0.001)
            for seq, _body, sent in rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM m WHERE seq = ? AND locked = 1", (seq,))
                conn.execute("COMMIT")
                log.write(f"{sent} {time.time()}\n")
    conn.close()


def raw_produce(db: Path, total: int) -> None:
    conn = _raw_connect(db)
    body = _message().body
    for _ in range(0, total, 100):
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        conn.executemany("INSERT INTO m (body, sent) VALUES (?, ?)", [(body, now)] * 100)
        conn.execute("COMMIT")
    conn.close()


def _raw_backlog(db: Path) -> int:
    conn = _raw_connect(db)
    try:
        return conn.execute("SELECT count(*) FROM m").fetchone()[0]
    finally:
        conn.close()


def _bus_backlog(db: Path) -> int:
    with SqliteBus(db, TOPOLOGY) as bus:
        return sum(s.active for s in bus.stats() if s.entity_path == QUEUE)


# --- running them ------------------------------------------------------------------------
def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_bus", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def _round_trips(folder: Path, total: int, rate: float, batch: int,
                 raw: bool = False) -> list[tuple[float, float]]:
    """(sent, completed) of every message through 2 consumer processes."""
    folder.mkdir()
    db, stop = folder / "bus.db", folder / "stop"
    if raw:
        _raw_connect(db).close()
    else:
        SqliteBus(db, TOPOLOGY).close()
    prefix = "raw-" if raw else ""
    consumers = [_spawn(f"{prefix}consume", str(db), str(folder / f"c{n}.log"), str(stop),
                        str(batch)) for n in range(2)]
    try:
        assert all(c.stdout.readline().strip() == "ready" for c in consumers)
        producer = _spawn(f"{prefix}produce", str(db), str(total), str(rate))
        producer.wait(timeout=600)
        backlog = _raw_backlog if raw else _bus_backlog
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and backlog(db):
            time.sleep(0.05)
    finally:
        stop.touch()
        for c in consumers:
            c.wait(timeout=30)
            c.stdout.close()
    return [tuple(map(float, line.split())) for n in range(2)
            for line in (folder / f"c{n}.log").read_text().splitlines()]


def _throughput(trips: list[tuple[float, float]]) -> float:
    if len(trips) != THROUGHPUT_MESSAGES:
        raise RuntimeError(f"{len(trips)} of {THROUGHPUT_MESSAGES} messages made the round trip")
    return len(trips) / (max(done for _, done in trips) - min(sent for sent, _ in trips))



def _latencies_ms(folder: Path, rate: float) -> list[float]:
    trips = _round_trips(folder, rate * LATENCY_SECONDS, rate, batch=1)
    return [(done - sent) * 1000 for sent, done in trips]


# --- the benchmark -----------------------------------------------------------------------
def run(results) -> None:
    n = runs(3, "bus")
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        folder = Path(tmp)
        rates = alternate(
            n,
            bus=lambda i: _throughput(_round_trips(folder / f"bus-{i}", THROUGHPUT_MESSAGES, 0,
                                                   batch=32)),
            raw_sqlite=lambda i: _throughput(_round_trips(folder / f"raw-{i}",
                                                          THROUGHPUT_MESSAGES, 0, batch=32,
                                                          raw=True)))
        results.compare("bus.sqlite.round_trip_throughput_vs_raw_sqlite", rates["bus"],
                        rates["raw_sqlite"], "msg/s", target=">= 0.5", higher_is_better=True,
                        note="1 producer + 2 consumer processes; sends of 100, claims of 32")
        best = max(rates["bus"])
        results.add("bus.sqlite.round_trip_throughput", best, "msg/s", target=">= 1000",
                    samples=rates["bus"])

        busy = [_latencies_ms(folder / f"latency-{i}", LATENCY_RATE) for i in range(n)]
        p50s, p99s = [percentile(b, 50) for b in busy], [percentile(b, 99) for b in busy]
        results.add("bus.sqlite.round_trip_latency_p50", min(p50s), "ms", target="<= 20",
                    samples=p50s, note=f"paced at {LATENCY_RATE} msg/s")
        results.add("bus.sqlite.round_trip_latency_p99", min(p99s), "ms", target="<= 100",
                    samples=p99s, note=f"paced at {LATENCY_RATE} msg/s")
        # a consumer that was idle: how fast the doorbell wakes it
        quiet = [percentile(_latencies_ms(folder / f"quiet-{i}", QUIET_RATE), 50)
                 for i in range(n)]
        results.add("bus.sqlite.quiet_latency_p50", min(quiet), "ms", target="<= 20",
                    samples=quiet, note=f"paced at {QUIET_RATE} msg/s")

        SqliteBus(folder / "idle.db", TOPOLOGY).close()
        waiter = _spawn("idle", str(folder / "idle.db"), str(IDLE_SECONDS))
        cpu = float(waiter.communicate(timeout=IDLE_SECONDS + 60)[0].strip())
        share = cpu / IDLE_SECONDS * 100
        results.add("bus.sqlite.idle_consumer_cpu", share, "% core", target="<= 1")
    signing.run(results)
    observability(results)


# --- tracing and metrics on the bus (issue 20): figures of their own -----------------------
def observability(results) -> None:
    """Round trip with tracing on vs off, and the ledger's /metrics with 1,000 sites
    (tests/benchmarks/observability.py says how)."""
    from tests.benchmarks import observability as figures

    figures.run(results)


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "consume":
        consume(Path(args[0]), Path(args[1]), Path(args[2]), int(args[3]))
    elif role == "produce":
        produce(Path(args[0]), int(args[1]), float(args[2]))
    elif role == "raw-consume":
        raw_consume(Path(args[0]), Path(args[1]), Path(args[2]), int(args[3]))
    elif role == "raw-produce":
        raw_produce(Path(args[0]), int(args[1]))
    elif role == "idle":
        idle(Path(args[0]), float(args[1]))
