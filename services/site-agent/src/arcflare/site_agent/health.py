"""The health model: an observation and NVFlare's log signals become one status
and one sentence a hospital's IT staff can act on."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from arcflare.site_agent.inputs import InputState
from arcflare.site_agent.observer import Observation
from arcflare.site_agent.signals import Signal, read_signal


@dataclass(frozen=True)
class Health:
    status: str
    diagnosis: str
    #: short and stable, for tables and rules: registered, tls_error, server_unreachable, ...
    code: str = ""


_LINK_FAILURES = {"refused", "dns", "tls", "expired", "timeout", "lost"}


def _link_health(signal: Signal, address: str) -> Health:
    addr = signal.address or address
    reason = f" ({signal.detail})" if signal.detail else ""
    match signal.kind:
        case "refused":
            return Health("disconnected", (
                f"Cannot connect to the NVFlare server at {addr} (connection refused): check that "
                f"the server is running and that the firewall allows outbound TCP to {addr}."),
                "server_unreachable")
        case "dns":
            return Health("misconfigured", (
                f"The NVFlare server address {addr} does not resolve: check the hospital's DNS "
                f"or the server name in the site's startup kit."), "dns_error")
        case "tls":
            return Health("misconfigured", (
                f"The TLS handshake with the NVFlare server at {addr} failed{reason}: the site's "
                f"startup kit was not issued by this server's federation; redeploy the site's kit."),
                "tls_error")
        case "expired":
            return Health("misconfigured", (
                f"A certificate for the connection to {addr} has expired: re-issue the startup "
                f"kits (site and, if needed, server) and redeploy."), "cert_expired")
        case "timeout":
            return Health("disconnected", (
                f"Connections to the NVFlare server at {addr} time out: a firewall or proxy is "
                f"probably dropping the traffic; allow outbound TCP to {addr}."), "server_timeout")
        case _:  # lost
            return Health("disconnected", (
                f"Lost the connection to the NVFlare server at {addr}: check that the server is "
                f"up and that the network path to it is open."), "connection_lost")


def _data_health(health: Health, inputs: Sequence[InputState]) -> Health:
    """A client that runs but cannot read its site's data is degraded: its jobs would fail."""
    broken = [i for i in inputs if not i.usable]
    if not broken:
        return health
    problems = ", ".join(f"data input {i.name} is {'not readable' if i.present else 'missing'}"
                         for i in broken)
    if health.status not in ("connected", "starting"):
        return Health(health.status, f"{health.diagnosis} Also: {problems}.", health.code)
    return Health("degraded", (
        f"{problems[0].upper()}{problems[1:]}: this site's jobs cannot read it. Restore the "
        f"folder or its mount, or change the site's data in the federation spec. "
        f"{health.diagnosis}"), "data_missing" if any(not i.present for i in broken)
        else "data_unreadable")


class HealthModel:
    """Follows one client across observations. Not thread-safe: one reporter drives it."""

    def __init__(self, *, registration_grace_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.grace = registration_grace_s
        self.clock = clock
        self._identity: str | None = None
        self._registered: str | None = None  # "site-a (project p)" once registered
        self._failure: Signal | None = None
        self._restart_expected = False
        self.current: Health | None = None

    def expect_restart(self) -> None:
        """The next change of incarnation was asked for (RestartSiteClient), not a crash."""
        self._restart_expected = True

    def update(self, obs: Observation, inputs: Sequence[InputState] = ()) -> list[Health]:
        """The states passed through since the last update, oldest first (usually one)."""
        passed: list[Health] = []
        if obs.identity != self._identity:
            if self._identity is not None and obs.identity is not None and \
                    self.current is not None and self.current.status not in ("crashed", "stopped") \
                    and not self._restart_expected:
                passed.append(Health("crashed", (
                    "The NVFlare client restarted on its own (it exited unexpectedly): "
                    "look at error_log.txt for the cause."), "crashed"))
            if obs.identity is not None:
                self._restart_expected = False
            self._identity = obs.identity
            self._registered = None
            self._failure = None
        for line in obs.new_log_lines:
            self._follow(read_signal(line))
        passed.append(_data_health(self._assess(obs), inputs))
        self.current = passed[-1]
        return passed

    def _follow(self, signal: Signal | None) -> None:
        if signal is None:
            return
        if signal.kind == "registered":
            self._registered, self._failure = signal.detail, None
        elif signal.kind == "link_up":
            if self._registered:
                self._failure = None
        elif signal.kind in _LINK_FAILURES:
            self._failure = signal

    def _assess(self, obs: Observation) -> Health:
        address = obs.server_address or "the configured address"
        match obs.runtime:
            case "starting":
                return Health("starting", obs.detail or "The NVFlare client is starting.",
                              "starting")
            case "restarting" | "exited":
                return Health("crashed", obs.detail, "crashed")
            case "stopped":
                return Health("stopped", obs.detail, "stopped")
            case "broken":
                return Health("misconfigured", obs.detail, "misconfigured")
            case "unknown":
                return Health("unknown", obs.detail, "unknown")
        if self._failure is not None:
            return _link_health(self._failure, address)
        expired = obs.certificate_not_after is not None and \
            obs.certificate_not_after < self.clock()
        if expired and not self._registered:
            return Health("misconfigured", (
                "The site's client certificate (startup/client.crt) expired on "
                f"{datetime.fromtimestamp(obs.certificate_not_after, UTC):%Y-%m-%d}: "
                "re-issue the site's startup kit and redeploy."), "cert_expired")
        if self._registered:
            return Health("connected", (
                f"Registered with the NVFlare server at {address} as {self._registered}."),
                "registered")
        up = self.clock() - obs.started_at if obs.started_at is not None else 0.0
        if up < self.grace:
            return Health("starting", (
                f"The NVFlare client is up and has not registered with the server at {address} "
                "yet."), "registering")
        return Health("disconnected", (
            f"The NVFlare client has been up {int(up)} s but never registered with the server at "
            f"{address}: check the server address, the firewall and the site's certificate."),
            "never_registered")
