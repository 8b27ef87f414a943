"""Many processes on one broker: competing consumers and a consumer killed with SIGKILL."""
from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from arcflare.bus.port import Bus, entity_path

from tests.conformance import workers
from tests.conformance.base import ContractBase

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def consumer_processes(count: int, *args: str) -> Iterator[list[subprocess.Popen]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    processes = []
    try:
        for _ in range(count):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "tests.conformance.workers", *args],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))
        yield processes
    finally:
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


class ProcessContract(ContractBase):
    def test_four_competing_processes_handle_every_message_once(
        self, bus: Bus, bus_factory: Callable[[], Bus], tmp_path: Path
    ):
        ids = [f"job-{i}" for i in range(200)]
        factory = workers.encode(bus_factory)
        crowd = entity_path(self.crowded_queue, self.crowded_subscription)
        with consumer_processes(4, "compete", factory, crowd, str(tmp_path)) as consumers:
            try:
                assert [c.stdout.readline().strip() for c in consumers] == ["ready"] * 4
                for start in range(0, len(ids), 50):
                    bus.send(self.crowded_queue,
                             [self.message(message_id=i) for i in ids[start:start + 50]])
                self._wait_until_empty(bus, crowd)
            finally:
                (tmp_path / "stop").touch()

        handled = [(log.name, *line.split()) for log in tmp_path.glob("consumer-*.log")
                   for line in log.read_text().splitlines()]
        completed = collections.Counter(i for _, i, _, _, outcome in handled
                                        if outcome == "completed")
        assert completed == collections.Counter(ids)  # none lost, none completed twice
        by_id = collections.defaultdict(list)
        for _, i, started, ended, _ in handled:
            by_id[i].append((float(started), float(ended)))
        for spans in by_id.values():  # never in two hands at once
            spans.sort()
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        assert len({log for log, *_ in handled}) >= 2

    def test_a_killed_consumer_loses_nothing(self, bus: Bus, bus_factory: Callable[[], Bus]):
        sent = [self.message(message_id=f"kill-{i}") for i in range(3)]
        bus.send(self.queue, sent)

        self.outwaits(self.lock_seconds)
        with consumer_processes(1, "hold", workers.encode(bus_factory),
                                entity_path(*self.plain), "3") as [holder]:
            try:
                held = json.loads(holder.stdout.readline())
            finally:
                holder.kill()  # SIGKILL: no cleanup, its locks simply stay
        back = self.receive_all(bus, *self.plain, count=3, max_wait=self.lock_seconds + 10)

        assert sorted(held) == sorted(m.message_id for m in sent)
        assert sorted(m.message_id for m in back) == sorted(held)
        assert {m.delivery_count for m in back} == {2}

    def test_a_killed_session_holder_releases_the_session(
        self, bus: Bus, bus_factory: Callable[[], Bus]
    ):
        self.outwaits(self.lock_seconds)
        bus.send(self.session_queue, [self.message(message_id="first", session_id="fed-k"),
                                      self.message(message_id="second", session_id="fed-k")])

        with consumer_processes(1, "hold-session", workers.encode(bus_factory),
                                self.session_queue, "fed-k") as [holder]:
            try:
                held = json.loads(holder.stdout.readline())
            finally:
                holder.kill()
        session = bus.accept_session(self.session_queue, session_id="fed-k",
                                     max_wait=self.lock_seconds + 10)
        with session:
            back = session.receive(max_messages=2, max_wait=5)

        assert held == ["first"]
        assert [(m.message_id, m.delivery_count) for m in back] == [("first", 2), ("second", 1)]

    @staticmethod
    def _wait_until_empty(bus: Bus, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = {s.entity_path: s for s in bus.stats()}[path]
            if stats.active == 0:
                return
            time.sleep(0.05)
