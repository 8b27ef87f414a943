"""Waiting for messages without spinning.

An idle receiver blocks on its doorbell (see doorbell.py) for up to RECHECK,
or, where there is none, sleeps with exponential backoff (1 ms up to
MAX_SLEEP). On each wake-up it reads `PRAGMA data_version`, which changes only
when another connection committed. Only when rung, when that changed, or every
RECHECK (locks and schedules fall due without any commit) does it run the cheap
`ready` read, and only when that finds something does it take the write lock.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from arcflare.bus.sqlite.doorbell import Listener

T = TypeVar("T")

MAX_SLEEP = 0.05
RECHECK = 0.2


def data_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA data_version").fetchone()[0]


def wait_for(
    conn: sqlite3.Connection,
    attempt: Callable[[], T],
    ready: Callable[[], bool],
    max_wait: float,
    idle: Callable[[], None] = lambda: None,
    listener: Listener | None = None,
) -> T:
    """Run `attempt` until it returns something truthy or max_wait elapses."""
    deadline = time.monotonic() + max_wait
    result = attempt()
    sleep = 0.001
    version = data_version(conn)
    checked = time.monotonic()
    while not result:
        now = time.monotonic()
        if now >= deadline:
            return result
        if listener is not None:
            rung = listener.wait(min(RECHECK, deadline - now))
        else:
            time.sleep(min(sleep, deadline - now))
            sleep, rung = min(sleep * 2, MAX_SLEEP), False
        latest = data_version(conn)
        if not rung and latest == version and time.monotonic() - checked < RECHECK:
            continue
        version, checked = latest, time.monotonic()
        idle()
        if ready():
            result = attempt()
            sleep = 0.001
    return result
