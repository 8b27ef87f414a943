"""Consumer processes for the multi-process conformance tests.

Run as `python -m tests.conformance.workers ROLE FACTORY ENTITY ARG` where
FACTORY is a pickled, base64-encoded zero-argument callable returning a Bus,
so each process builds its own connections. A process prints "ready" (or the
ids it holds) on stdout for the test to read.
"""
from __future__ import annotations

import base64
import json
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

from arcflare.bus.port import Bus, MessageLockLost


def encode(factory: Callable[[], Bus]) -> str:
    return base64.b64encode(pickle.dumps(factory)).decode()


def _address(path: str) -> tuple[str, str | None]:
    """'queue' or 'topic/subscriptions/name' as receive() takes it."""
    entity, _, subscription = path.partition("/subscriptions/")
    return entity, subscription or None


def compete(bus: Bus, entity: str, folder: Path) -> None:
    """Receive one at a time until folder/stop exists; log 'message_id start end outcome'."""
    with (folder / f"consumer-{time.monotonic_ns()}.log").open("w") as out:
        print("ready", flush=True)
        while not (folder / "stop").exists():
            for message in bus.receive(*_address(entity), max_messages=1, max_wait=0.2):
                started = time.monotonic()
                time.sleep(0.002)  # the "work": long enough for a second holder to overlap
                try:
                    bus.complete(message)
                    outcome = "completed"
                except MessageLockLost:
                    outcome = "lock-lost"
                out.write(f"{message.message_id} {started} {time.monotonic()} {outcome}\n")
                out.flush()


def hold(bus: Bus, entity: str, count: str) -> None:
    """Lock `count` messages and never settle them (the test SIGKILLs this process)."""
    held: list[str] = []
    while len(held) < int(count):
        held += [m.message_id for m in bus.receive(*_address(entity), max_wait=5,
                                                   max_messages=int(count) - len(held))]
    print(json.dumps(held), flush=True)
    time.sleep(600)


def hold_session(bus: Bus, entity: str, session_id: str) -> None:
    """Lock a session and its first message, and never let go (SIGKILLed by the test)."""
    session = bus.accept_session(entity, session_id=session_id, max_wait=10)
    held = session.receive(max_wait=5) if session else []
    print(json.dumps([m.message_id for m in held]), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    role, factory, entity, arg = sys.argv[1:5]
    with pickle.loads(base64.b64decode(factory))() as bus:
        if role == "compete":
            compete(bus, entity, Path(arg))
        else:
            {"hold": hold, "hold-session": hold_session}[role](bus, entity, arg)
