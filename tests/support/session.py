"""Session-wide test plumbing, loaded with `-p tests.support.session` (pyproject addopts).

One pytest process runs ~1,300 tests that start brokers, NVFlare and HTTP servers. A
CI runner's soft limit on open files is often 1,024; a slow leak that reaches it shows
up far from its cause, as a peer that accepts a connection and never answers. So the
soft limit goes up to the hard one, and the summary says how many descriptors and
threads the session ended with, next to how many it started with, so a leak is seen.
"""
from __future__ import annotations

import os
import resource
import threading

_START: dict[str, int] = {}


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def pytest_configure(config) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    _START.update(descriptors=_open_descriptors(), threads=threading.active_count())


def pytest_terminal_summary(terminalreporter) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    terminalreporter.write_line(
        f"open descriptors {_START.get('descriptors')} -> {_open_descriptors()} "
        f"(limit {soft}); threads {_START.get('threads')} -> {threading.active_count()}")
