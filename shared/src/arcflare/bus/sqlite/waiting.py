"""Waiting for messages without spinning.

An idle receiver sleeps with exponential backoff (1 ms up to MAX_SLEEP) and,
on each wake-up, reads `PRAGMA data_version`, which changes only when another
connection committed. Only then (or every RECHECK, for locks and schedules
that fall due without any commit) does it run the cheap `ready` read, and only
when that finds something does it take the write lock to claim.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

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
        time.sleep(min(sleep, deadline - now))
        sleep = min(sleep * 2, MAX_SLEEP)
        latest = data_version(conn)
        if latest == version and time.monotonic() - checked < RECHECK:
            continue
        version, checked = latest, time.monotonic()
        idle()
        if ready():
            result = attempt()
            sleep = 0.001
    return result
