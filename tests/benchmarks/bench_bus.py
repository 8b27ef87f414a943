"""Embedded broker round trip: 1 producer and 2 consumer processes.

Figures (issue 2, Performance): throughput of send -> receive -> complete
(>= 1,000 msg/s), latency from send to completed (p50 <= 20 ms, p99 <= 100 ms)
with the producer paced below saturation (200 msg/s, and 10 msg/s so consumers
are idle when a message arrives), and the CPU an idle consumer burns
over ~10 s (<= 1 % of a core). Baselines in the same run: raw SQLite
insert + delete (one transaction each, same file settings) for throughput,
and an in-process queue.Queue hand-off between threads for latency.

    .venv/bin/python -m tests.benchmarks.harness bus
"""
from __future__ import annotations

import os
import queue
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from arcflare.bus.port import OutgoingMessage
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import EntityOptions, Queue, Topology

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


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_bus", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def _round_trips(folder: Path, total: int, rate: float, batch: int) -> list[tuple[float, float]]:
    db, stop = folder / "bus.db", folder / "stop"
    SqliteBus(db, TOPOLOGY).close()
    consumers = [_spawn("consume", str(db), str(folder / f"c{n}.log"), str(stop), str(batch))
                 for n in range(2)]
    try:
        assert all(c.stdout.readline().strip() == "ready" for c in consumers)
        producer = _spawn("produce", str(db), str(total), str(rate))
        producer.wait(timeout=600)
        with SqliteBus(db, TOPOLOGY) as bus:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any(
                    s.active for s in bus.stats() if s.entity_path == QUEUE):
                time.sleep(0.05)
    finally:
        stop.touch()
        for c in consumers:
            c.wait(timeout=30)
            c.stdout.close()
    return [tuple(map(float, line.split())) for n in range(2)
            for line in (folder / f"c{n}.log").read_text().splitlines()]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# --- baselines ---------------------------------------------------------------------------
def raw_sqlite_throughput(folder: Path, total: int = 3000) -> float:
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE m (seq INTEGER PRIMARY KEY, body BLOB)")
    body = _message().body
    started = time.perf_counter()
    for _ in range(total):
        conn.execute("INSERT INTO m (body) VALUES (?)", (body,))
    for _ in range(total):
        conn.execute("BEGIN IMMEDIATE")
        (seq,) = conn.execute("SELECT seq FROM m ORDER BY seq LIMIT 1").fetchone()
        conn.execute("DELETE FROM m WHERE seq = ?", (seq,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


def queue_latency_ms(total: int = 2000) -> float:
    handoff: queue.Queue[float] = queue.Queue()
    latencies: list[float] = []

    def consumer() -> None:
        for _ in range(total):
            sent = handoff.get()
            latencies.append(time.perf_counter() - sent)

    thread = threading.Thread(target=consumer)
    thread.start()
    for _ in range(total):
        handoff.put(time.perf_counter())
        time.sleep(0.0005)
    thread.join()
    return statistics.median(latencies) * 1000


# --- the benchmark -----------------------------------------------------------------------
def run(results) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        folder = Path(tmp)
        raw = raw_sqlite_throughput(folder)
        (folder / "throughput").mkdir()
        trips = _round_trips(folder / "throughput", THROUGHPUT_MESSAGES, 0, batch=32)
        first_sent = min(sent for sent, _ in trips)
        last_done = max(done for _, done in trips)
        throughput = len(trips) / (last_done - first_sent)
        results.add("bus.sqlite.round_trip_throughput", throughput, "msg/s", baseline=raw,
                    target=">= 1000", ok=throughput >= 1000 and len(trips) == THROUGHPUT_MESSAGES)

        (folder / "latency").mkdir()
        trips = _round_trips(folder / "latency", LATENCY_RATE * LATENCY_SECONDS, LATENCY_RATE,
                             batch=1)
        latencies = [(done - sent) * 1000 for sent, done in trips]
        base = queue_latency_ms()
        p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
        results.add("bus.sqlite.round_trip_latency_p50", p50, "ms", baseline=base,
                    target="<= 20", ok=p50 <= 20)
        results.add("bus.sqlite.round_trip_latency_p99", p99, "ms", baseline=base,
                    target="<= 100", ok=p99 <= 100)

        # a consumer that was idle: how fast the doorbell wakes it
        (folder / "quiet").mkdir()
        trips = _round_trips(folder / "quiet", QUIET_RATE * LATENCY_SECONDS, QUIET_RATE, batch=1)
        quiet = _percentile([(done - sent) * 1000 for sent, done in trips], 50)
        results.add("bus.sqlite.quiet_latency_p50", quiet, "ms", baseline=base,
                    target="<= 20", ok=quiet <= 20)

        SqliteBus(folder / "idle.db", TOPOLOGY).close()
        waiter = _spawn("idle", str(folder / "idle.db"), str(IDLE_SECONDS))
        cpu = float(waiter.communicate(timeout=IDLE_SECONDS + 60)[0].strip())
        share = cpu / IDLE_SECONDS * 100
        results.add("bus.sqlite.idle_consumer_cpu", share, "% core", target="<= 1", ok=share <= 1)
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
    elif role == "idle":
        idle(Path(args[0]), float(args[1]))
