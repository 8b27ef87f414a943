"""The agent's pulse: observe the client every interval, publish SiteHeartbeat on
telemetry and SiteHealthChanged on events at each change of status."""
from __future__ import annotations

import threading
import time

from arcflare.contracts.events import InputHealth, SiteHealthChanged, SiteHeartbeat, SiteLogTail
from arcflare.runtime import StateStore, get_logger
from arcflare.site_agent.health import Health, HealthModel
from arcflare.site_agent.inputs import SiteInputs
from arcflare.site_agent.observer import LogUnavailable, SiteObserver
from arcflare.site_agent.redaction import FollowedLog, Redactor
from arcflare.site_agent.tails import make_safe
from arcflare.site_agent.telemetry import TelemetrySender

log = get_logger(__name__)
#: while the client is starting, it is looked at this often rather than every heartbeat
#: interval (15 s): its registration is what a federation's operator waits to see, and an
#: agent that starts before its client registers would otherwise show it up to 15 s late
STARTING_TICK_S = 1.0


class SiteReporter:
    def __init__(self, *, federation: str, site: str, observer: SiteObserver,
                 model: HealthModel, telemetry: TelemetrySender, state: StateStore,
                 interval_s: float, inputs: SiteInputs | None = None) -> None:
        self.federation = federation
        self.site = site
        self.observer = observer
        self.model = model
        self.telemetry = telemetry
        self.state = state
        self.interval_s = interval_s
        self.inputs = inputs or SiteInputs({})
        self.status: str | None = None

    def __call__(self, stop: threading.Event) -> None:
        """Background task: one tick now, then one per interval until stopped (each
        STARTING_TICK_S while the client starts)."""
        while True:
            started = time.monotonic()
            health = self.tick()
            every = self.interval_s
            if health is not None and health.status == "starting":
                every = min(every, STARTING_TICK_S)
            if stop.wait(max(0.0, every - (time.monotonic() - started))):
                return

    def tick(self) -> Health | None:
        try:
            obs = self.observer.observe()
            inputs = self.inputs.check()
        except Exception:  # an observer bug must not silence the heartbeat for good
            log.exception("observing the site client failed")
            return None
        passed = self.model.update(obs, inputs)
        self._announce(passed)
        health = passed[-1]
        self.telemetry.offer(SiteHeartbeat(
            federation=self.federation, site=self.site, status=health.status,
            diagnosis=health.diagnosis, diagnosis_code=health.code, pid=obs.pid, pod=obs.pod,
            uptime_s=round(time.time() - obs.started_at, 1) if obs.started_at is not None else None,
            cpu_percent=obs.cpu_percent, rss_bytes=obs.rss_bytes, current_job=obs.current_job,
            inputs=[InputHealth(name=i.name, present=i.present, readable=i.readable, size=i.size)
                    for i in inputs]))
        return health

    def _announce(self, passed: list[Health]) -> None:
        changes, previous = [], self.status
        for health in passed:
            if health.status != previous:
                changes.append(SiteHealthChanged(
                    federation=self.federation, site=self.site, status=health.status,
                    previous=previous, diagnosis=health.diagnosis,
                    diagnosis_code=health.code))
                previous = health.status
        if not changes:
            return
        try:
            with self.state.unit_of_work() as uow:
                for change in changes:
                    uow.publish(change)
        except Exception:  # retried at the next tick: the status is only advanced on success
            log.exception("health change not recorded; retrying at the next tick")
            return
        for change in changes:
            log.info("site health changed", status=change.status, previous=change.previous,
                     diagnosis=change.diagnosis)
        self.status = previous


class PeriodicTails:
    """Background task: new lines of one log file, redacted, every `every_s` seconds."""

    def __init__(self, *, federation: str, site: str, file: str, every_s: float,
                 observer: SiteObserver, redactor: Redactor, telemetry: TelemetrySender) -> None:
        self.federation, self.site, self.file, self.every_s = federation, site, file, every_s
        self.observer, self.telemetry = observer, telemetry
        # ticks are chunks of one log: a key block open at the end of one goes on in the next
        self.redaction = FollowedLog(redactor)

    def __call__(self, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            self.tick()

    def tick(self) -> SiteLogTail | None:
        try:
            lines = self.observer.new_lines(self.file)
        except LogUnavailable as exc:
            log.warning("periodic tail not possible", file=self.file, reason=str(exc))
            return None
        except Exception:  # an observer bug must not end periodic tails for good
            log.exception("reading new log lines failed", file=self.file)
            return None
        if not lines:
            return None
        safe = make_safe(lines, self.redaction)
        tail = SiteLogTail(federation=self.federation, site=self.site, file=self.file,
                           lines=safe.lines, truncated=safe.truncated,
                           redacted_count=safe.redacted_count)
        self.telemetry.offer(tail, slot=f"tail:{self.file}")
        return tail
