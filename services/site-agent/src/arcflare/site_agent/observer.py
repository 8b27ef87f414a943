"""The site observer port: what the agent can see of the NVFlare client beside it.

Two adapters: `adapters.process` (a local process tree, its pid files and log
files) and `adapters.kubernetes` (pods by label selector, pod logs).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Literal

from arcflare.site_agent.logtail import Tail

#: what the runtime looks like, before any log is read
Runtime = Literal[
    "running",     # the client process / container is up
    "starting",    # about to start (watchdog's first sleep, pod pending)
    "restarting",  # it died and something (watchdog, kubelet) is bringing it back
    "exited",      # it died and nothing will bring it back
    "stopped",     # not running, cleanly (no pid files, pod succeeded, no pod)
    "broken",      # cannot run as configured (no workspace, image cannot be pulled)
    "unknown",     # the agent cannot see (Kubernetes API unreachable)
]


@dataclass(frozen=True)
class Observation:
    runtime: Runtime
    #: what identifies this incarnation (pid and start time, pod uid and restarts)
    identity: str | None = None
    detail: str = ""
    pid: int | None = None
    pod: str | None = None
    started_at: float | None = None  # epoch seconds
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    current_job: str | None = None
    restarts: int = 0
    #: log lines written by this incarnation since the previous observation
    new_log_lines: list[str] = field(default_factory=list)
    #: the NVFlare server address the client is configured with, when known
    server_address: str | None = None
    #: when the site's client certificate expires (epoch seconds), when known
    certificate_not_after: float | None = None


class LogUnavailable(LookupError):
    """The asked log cannot be read: one sentence saying why."""


class CannotRestart(LookupError):
    """There is nothing this agent can restart: one sentence saying why."""


class SiteObserver(abc.ABC):
    kind: str

    @abc.abstractmethod
    def observe(self) -> Observation:
        """The client's state now. Never raises for anything the site does."""

    @abc.abstractmethod
    def tail(self, file: str, lines: int) -> Tail:
        """The last lines of an (allow-listed) log file. Raises LogUnavailable."""

    def new_lines(self, file: str) -> list[str]:
        """Lines appended to `file` since the previous call (periodic tails)."""
        return []

    @abc.abstractmethod
    def restart(self) -> str:
        """Restart the client; returns a handle naming what was restarted. Raises CannotRestart."""

    def close(self) -> None:
        pass
