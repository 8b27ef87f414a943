"""Consumer processes for the multi-process conformance tests (spawned, so
each builds its own Bus from a picklable factory)."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from arcflare.bus.port import Bus, MessageLockLost


def compete(factory: Callable[[], Bus], entity: str, log: Path, ready, stop) -> None:
    """Receive one at a time until told to stop; log 'message_id start end outcome'."""
    with factory() as bus, log.open("w") as out:
        ready.set()
        while not stop.is_set():
            for message in bus.receive(entity, max_messages=1, max_wait=0.2):
                started = time.monotonic()
                time.sleep(0.002)  # the "work": long enough for a second holder to overlap
                try:
                    bus.complete(message)
                    outcome = "completed"
                except MessageLockLost:
                    outcome = "lock-lost"
                out.write(f"{message.message_id} {started} {time.monotonic()} {outcome}\n")
                out.flush()


def hold(factory: Callable[[], Bus], entity: str, count: int, locked) -> None:
    """Lock `count` messages and never settle them (the test SIGKILLs this process)."""
    bus = factory()
    held: list[str] = []
    while len(held) < count:
        held += [m.message_id for m in bus.receive(entity, max_messages=count - len(held),
                                                   max_wait=5)]
    locked.put(held)
    time.sleep(600)
