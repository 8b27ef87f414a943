"""A service: its consumers, background tasks, outbox relay and health endpoints.

`run()` is the production entry point (blocks until SIGTERM/SIGINT, then stops
receiving, lets in-flight handlers finish, flushes the outbox and returns).
Tests use `drain()` (synchronous) or `start()` / `stop()` (threads).
"""
from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from arcflare.bus.port import Bus, BusError
from arcflare.observability import messaging, tracing
from arcflare.observability.metrics import SERVICE_GAUGES
from arcflare.runtime import identity
from arcflare.runtime.admission import Admission
from arcflare.runtime.consumer import Authorizer, Consumer, MessageProcessor, exponential_backoff
from arcflare.runtime.files import private_umask
from arcflare.runtime.health import HealthServer
from arcflare.runtime.logging import configure_logging, get_logger
from arcflare.runtime.outbox import OutboxRelay
from arcflare.runtime.renewer import LockRenewer
from arcflare.runtime.routing import check_routing
from arcflare.runtime.settings import Settings
from arcflare.runtime.state import StateStore
from arcflare.trust.jws import Signer

log = get_logger("arcflare.runtime")
#: a thread still running this long after stop() is named in the log (what holds us up)
STOP_PATIENCE_S = 5.0
BackgroundTask = Callable[[threading.Event], None]


class Service:
    def __init__(
        self,
        *,
        name: str,
        settings: Settings,
        bus: Bus,
        state: StateStore,
        consumers: Sequence[Consumer],
        dependencies: Mapping[str, Any] | None = None,
        background: Sequence[BackgroundTask] = (),
        authorize: Authorizer | None = None,
        on_stop: Sequence[Callable[[], None]] = (),
        signer: Signer | None = None,
        owns_bus: bool = False,
    ) -> None:
        """signer: who this service signs as; default its identity from the settings (a
        site agent passes its site's). Verification has no off switch. owns_bus: the bus
        was opened for this service (bootstrap connected it), so stop() closes it."""
        self.name = name
        self.signer = signer or identity.service_signer(settings, name)
        self.admission = Admission(identity.verifier(settings),
                                   command_max_age_s=settings.command_max_age_s,
                                   clock_skew_s=settings.clock_skew_s)
        if self.signer.principal.kind == "site":
            # a site agent may send only to telemetry (deploy/servicebus: its only Send right)
            state.channels["events"] = "telemetry"
        self.settings = settings
        self.bus = bus
        self.owns_bus = owns_bus
        self.state = state
        self.consumers = list(consumers)
        self.dependencies = {"settings": settings, "bus": bus, "state": state,
                             **(dependencies or {})}
        check_routing(self.consumers, self.dependencies, bus.topology, name)
        self.background = list(background)
        self.on_stop = list(on_stop)
        self.stopping = threading.Event()
        self.outbox = OutboxRelay(state, bus, self.signer, service=name)
        self._renewer: LockRenewer | None = None
        self._threads: list[threading.Thread] = []
        self._health: HealthServer | None = None
        self._last_bus_ok = time.monotonic()
        self._processors = [
            MessageProcessor(
                c, bus=bus, state=state, admission=self.admission,
                dependencies=self.dependencies, authorize=authorize,
                backoff=exponential_backoff(settings.retry_backoff_base_s,
                                            settings.retry_backoff_max_s),
                stopping=self.stopping, service=name,
            )
            for c in self.consumers
        ]
        messaging.use_bus(bus)

    # --- production ------------------------------------------------------------
    def run(self) -> None:
        private_umask()
        configure_logging(self.name, self.settings.log_level, self.settings.log_format)
        try:
            tracing.configure(self.name)
        except ValueError as exc:  # an OTEL_* variable asks for what we cannot do
            log.error("cannot start: the tracing settings are invalid", error=str(exc))
            raise SystemExit(2) from None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.start()
        log.info("service started", consumers=[c.name for c in self.consumers],
                 data_dir=str(self.settings.data_dir))
        try:
            while not self.stopping.wait(1.0):
                pass
        finally:
            log.info("stopping: finishing in-flight messages and flushing the outbox")
            self.stop()
            log.info("service stopped")

    def start(self) -> None:
        self.stopping.clear()
        self._renewer = LockRenewer(self.bus, service=self.name)
        for processor in self._processors:
            n = processor.consumer.concurrency or self.settings.concurrency
            for i in range(n):
                self._spawn(f"{processor.consumer.name}#{i}", self._consume_forever, processor)
        self._spawn("outbox", self._relay_forever)
        for task in self.background:
            self._spawn(getattr(task, "__name__", "background"), task, self.stopping)
        if self.settings.health_port is not None:
            self._health = HealthServer(
                self.settings.health_host, self.settings.health_port, self.readiness,
                self.settings.run_dir() / f"{self.name}.port",
            )
        SERVICE_GAUGES.add(self)  # read when /metrics is scraped

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.state.outbox_written.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.1, min(STOP_PATIENCE_S, deadline - time.monotonic())))
            if thread.is_alive():  # say what holds the stop up before a supervisor kills us
                frame = sys._current_frames().get(thread.ident or 0)
                log.warning("stopping: still waiting for a thread", thread=thread.name,
                            waited_s=STOP_PATIENCE_S,
                            where="".join(traceback.format_stack(frame)[-6:]) if frame else "")
                thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._threads = []
        SERVICE_GAUGES.remove(self)
        try:
            self.outbox.relay()
        except BusError as exc:
            log.error("outbox not flushed; it is relayed at next start", error=repr(exc))
        self.outbox.close()
        if self._renewer:
            self._renewer.close()
        for hook in self.on_stop:
            hook()
        if self._health:
            self._health.close()
            self._health = None
        tracing.flush()
        if self.owns_bus:  # its connections and sockets go with it, not at process exit
            self.bus.close()

    def readiness(self) -> dict:
        alive = {t.name: t.is_alive() for t in self._threads}
        bus_ok = time.monotonic() - self._last_bus_ok < 30
        return {"ready": bool(alive) and all(alive.values()) and bus_ok and not self.stopping.is_set(),
                "service": self.name, "threads": alive, "bus_ok": bus_ok,
                "outbox_pending": self.outbox.pending()}

    # --- tests -----------------------------------------------------------------
    def drain(self, timeout: float = 10.0) -> int:
        """Handle every available message and relay the outbox until quiet."""
        # a renewer made here ends with the drain: a test that drains and never stops
        # must not leave a thread behind holding its bus
        own_renewer = self._renewer is None
        if own_renewer:
            self._renewer = LockRenewer(self.bus, service=self.name)
        handled = 0
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                n = sum(self._consume_once(p, max_wait=0.0) for p in self._processors)
                sent = self.outbox.relay()
                handled += n
                if n == 0 and sent == 0:
                    break
        finally:
            if own_renewer and self._renewer is not None:
                self._renewer.close()
                self._renewer = None
        return handled

    # --- loops -------------------------------------------------------------------
    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            while not self.stopping.is_set():
                try:
                    target(*args)
                    return
                except Exception:  # a loop must never die silently: log, pause, go on
                    log.exception("loop failed; restarting it", loop=name)
                    self.stopping.wait(1.0)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _consume_forever(self, processor: MessageProcessor) -> None:
        while not self.stopping.is_set():
            try:
                # short waits keep SIGTERM prompt; the broker wakes waiters on new messages
                self._consume_once(processor, max_wait=0.25)
                self._last_bus_ok = time.monotonic()
            except BusError as exc:
                log.warning("bus unavailable; retrying", error=repr(exc))
                self.stopping.wait(2.0)

    def _relay_forever(self) -> None:
        while not self.stopping.is_set():
            self.state.outbox_written.wait(0.5)
            self.state.outbox_written.clear()
            try:
                self.outbox.relay()
            except BusError as exc:
                log.warning("outbox relay failed; retrying", error=repr(exc))
                self.stopping.wait(1.0)

    def _consume_once(self, processor: MessageProcessor, max_wait: float) -> int:
        consumer = processor.consumer
        renewer = self._renewer
        assert renewer is not None
        if consumer.sessions:
            session = self.bus.accept_session(consumer.entity, consumer.subscription,
                                              max_wait=max_wait)
            if session is None:
                return 0
            # the port gives a session's expiry only on renewal; renewing once tells the span
            renewer.hold(session, session.renew_lock())
            structlog.contextvars.bind_contextvars(session=session.session_id)
            handled = 0
            try:
                # one session at a time, in order, until it has nothing more for now or a
                # message must wait for a retry (then the session goes back to the pool)
                while not self.stopping.is_set():
                    batch = session.receive(max_messages=1, max_wait=min(max_wait, 0.2))
                    if not batch:
                        break
                    outcomes = self._process_all(processor, batch, renewer)
                    handled += len(outcomes)
                    if "abandoned" in outcomes:
                        break
            finally:
                renewer.release(session)
                session.close()
                structlog.contextvars.unbind_contextvars("session")
            return handled
        batch = self.bus.receive(consumer.entity, consumer.subscription,
                                 max_messages=8, max_wait=max_wait)
        return len(self._process_all(processor, batch, renewer))

    def _process_all(self, processor: MessageProcessor, batch, renewer: LockRenewer) -> list[str]:
        """Each message's outcome. Whatever happens to one, none of the batch stays held:
        the renewer lets go of each as it ends, and of the rest if the loop is left early."""
        if not processor.consumer.sessions:  # in a session, the session lock covers them
            for received in batch:
                renewer.hold(received, received.locked_until)
        outcomes: list[str] = []
        try:
            for received in batch:
                if self.stopping.is_set():
                    break
                try:
                    outcomes.append(processor.process(received))
                finally:
                    renewer.release(received)
        finally:
            # not started (stopping, or the bus failed under us): give them back now rather
            # than wait for their locks to expire
            for rest in batch[len(outcomes):]:
                renewer.release(rest)
                try:
                    self.bus.abandon(rest)
                except BusError:
                    pass
        return outcomes
