"""Many processes on one broker: competing consumers and a consumer killed with SIGKILL."""
from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from arcflare.bus.port import Bus
from tests.conformance import workers
from tests.conformance.base import ContractBase

SPAWN = multiprocessing.get_context("spawn")


class ProcessContract(ContractBase):
    def test_four_competing_processes_handle_every_message_once(
        self, bus: Bus, bus_factory: Callable[[], Bus], tmp_path: Path
    ):
        ids = [f"job-{i}" for i in range(200)]
        stop = SPAWN.Event()
        readies = [SPAWN.Event() for _ in range(4)]
        logs = [tmp_path / f"consumer-{n}.log" for n in range(4)]
        consumers = [
            SPAWN.Process(target=workers.compete,
                          args=(bus_factory, self.crowded_queue, log, ready, stop))
            for log, ready in zip(logs, readies, strict=True)
        ]
        try:
            for consumer in consumers:
                consumer.start()
            assert all(ready.wait(60) for ready in readies)
            for start in range(0, len(ids), 50):
                bus.send(self.crowded_queue,
                         [self.message(message_id=i) for i in ids[start:start + 50]])
            self._wait_until_empty(bus, self.crowded_queue)
        finally:
            stop.set()
            for consumer in consumers:
                consumer.join(timeout=10)
                if consumer.is_alive():
                    consumer.kill()
                    consumer.join()

        handled = [(n, *line.split()) for n, log in enumerate(logs)
                   for line in log.read_text().splitlines()]
        completed = collections.Counter(i for _, i, _, _, outcome in handled
                                        if outcome == "completed")
        assert completed == collections.Counter(ids)  # none lost, none completed twice
        by_id = collections.defaultdict(list)
        for _, i, started, ended, _ in handled:
            by_id[i].append((float(started), float(ended)))
        for spans in by_id.values():  # never in two hands at once
            spans.sort()
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
        assert len({n for n, *_ in handled}) >= 2

    def test_a_killed_consumer_loses_nothing(self, bus: Bus, bus_factory: Callable[[], Bus]):
        sent = [self.message(message_id=f"kill-{i}") for i in range(3)]
        bus.send(self.queue, sent)
        locked = SPAWN.Queue()
        holder = SPAWN.Process(target=workers.hold, args=(bus_factory, self.queue, 3, locked))
        try:
            holder.start()
            held = locked.get(timeout=60)
            os.kill(holder.pid, signal.SIGKILL)
        finally:
            holder.join(timeout=10)
            if holder.is_alive():
                holder.kill()
                holder.join()

        back = self.receive_all(bus, self.queue, count=3, max_wait=self.lock_seconds + 10)

        assert sorted(held) == sorted(m.message_id for m in sent)
        assert sorted(m.message_id for m in back) == sorted(held)
        assert {m.delivery_count for m in back} == {2}

    @staticmethod
    def _wait_until_empty(bus: Bus, queue: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = {s.entity_path: s for s in bus.stats()}[queue]
            if stats.active == 0:
                return
            time.sleep(0.05)
