"""Wires one site agent: its observer, health model, telemetry, and its own
subscription on site-commands (created here, filtered on its site)."""
from __future__ import annotations

import threading
from typing import Any

from arcflare.bus import Bus, connect
from arcflare.bus.port import BusError
from arcflare.contracts.authz import FederationAccess
from arcflare.contracts.topology import site_subscription
from arcflare.runtime import Consumer, Service, StateStore, get_logger
from arcflare.runtime.authorization import enforce_policy
from arcflare.runtime.identity import (
    SETUP_HINT,
    FollowingSigner,
    MissingIdentity,
    load_identity,
)
from arcflare.site_agent.handlers import COMMAND_HANDLERS
from arcflare.site_agent.health import HealthModel
from arcflare.site_agent.inputs import SiteInputs
from arcflare.site_agent.observer import SiteObserver
from arcflare.site_agent.redaction import Redactor
from arcflare.site_agent.reporter import PeriodicTails, SiteReporter
from arcflare.site_agent.settings import SiteAgentSettings
from arcflare.site_agent.tails import RateLimit
from arcflare.site_agent.telemetry import TelemetrySender
from arcflare.trust import local
from arcflare.trust.errors import IdentityError
from arcflare.trust.jws import Signer
from arcflare.trust.kits import kit_identity
from arcflare.trust.principals import Principal

log = get_logger(__name__)


def build_observer(settings: SiteAgentSettings) -> SiteObserver:
    if settings.observer == "kubernetes":
        from arcflare.site_agent.adapters.kubernetes import KubernetesObserver

        return KubernetesObserver.from_settings(settings)
    from arcflare.site_agent.adapters.process import ProcessObserver

    return ProcessObserver(settings.workspace_dir(), log_files=settings.log_files)


class SiteSubscription:
    """The agent's own subscription on site-commands, filtered on its site. Made at
    start; if the bus is away then, made by a background retry instead of failing."""

    def __init__(self, bus: Bus, federation: str, site: str) -> None:
        self.bus, self.subscription = bus, site_subscription(federation, site)
        self.ready = False

    def ensure(self) -> bool:
        try:
            self.bus.ensure_subscription("site-commands", self.subscription.name,
                                         self.subscription.rules[0])
        except BusError as exc:
            log.warning("site subscription not created yet; retrying", error=repr(exc))
            return False
        self.ready = True
        return True

    def __call__(self, stop: threading.Event) -> None:
        while not self.ready and not stop.wait(5.0):
            self.ensure()


def bootstrap(settings: SiteAgentSettings | None = None, *, bus: Bus | None = None,
              site_observer: SiteObserver | None = None, **overrides: Any) -> Service:
    s = settings or SiteAgentSettings()
    owns_bus = bus is None
    bus = bus or connect(s)
    subscription = SiteSubscription(bus, s.federation, s.site)
    subscription.ensure()
    observer = site_observer or build_observer(s)
    redactor = overrides.pop("redactor", None) or Redactor(s.redaction_patterns)
    model = overrides.pop("health_model", None) or HealthModel(
        registration_grace_s=s.registration_grace_s)
    signer = site_signer(s)
    telemetry = overrides.pop("telemetry", None) or TelemetrySender(bus, signer=signer)
    state = StateStore(s.state_file())
    inputs = overrides.pop("site_inputs", None) or SiteInputs(
        s.inputs, s.workspace_dir() if s.observer == "process" else None,
        size_every_s=s.input_size_interval_s)
    reporter = SiteReporter(
        federation=s.federation, site=s.site, observer=observer, model=model,
        telemetry=telemetry, state=state, interval_s=s.heartbeat_interval_s, inputs=inputs)
    background: list = [reporter]
    if s.periodic_tail_s:
        background.append(PeriodicTails(
            federation=s.federation, site=s.site, file=s.periodic_tail_file,
            every_s=s.periodic_tail_s, observer=observer, redactor=redactor,
            telemetry=telemetry))
    if not subscription.ready:
        background.append(subscription)
    dependencies = {
        "site_observer": observer, "redactor": redactor, "health_model": model,
        "tail_rate": RateLimit(s.tail_rate_per_minute), "reporter": reporter,
        "telemetry": telemetry, **overrides,
    }
    return Service(
        # one agent per site may share a data dir (local mode): its own health port file
        name=f"site-agent-{s.federation}-{s.site}", settings=s, bus=bus, state=state,
        consumers=[Consumer("site-commands", subscription=subscription.subscription.name,
                            handlers=COMMAND_HANDLERS, concurrency=1)],
        dependencies=dependencies, background=background, on_stop=[observer.close],
        authorize=site_policy(s), signer=signer, owns_bus=owns_bus)


def site_signer(s: SiteAgentSettings) -> Signer:
    """The agent signs as its site: ARCFLARE_IDENTITY_* when set (a hospital's cluster gets
    them from a secret), else the identity the provisioner put in the site's kit (followed
    as it is renewed), else one in the local layout (<data_dir>/identity/sites/<fed>/<site>)."""
    kit = kit_identity(s.workspace_dir())
    from_kit = kit.exists() and not (s.identity_cert or s.identity_key)
    default = kit if kit.exists() else local.site_identity_paths(s.data_dir, s.federation, s.site)
    # a renewed site's roll puts a new identity in its kit: the agent follows it
    try:
        signer = FollowingSigner(kit) if from_kit else Signer(load_identity(s, default))
    except IdentityError as exc:
        raise MissingIdentity(f"{exc}: {SETUP_HINT}") from None
    expected = Principal.site_agent(s.federation, s.site)
    if signer.principal != expected:
        raise MissingIdentity(f"this agent serves {expected.id} but its identity is "
                              f"{signer.principal.id}; give it its own site's identity")
    return signer


def site_policy(s: SiteAgentSettings):
    """The role policy against the admins the site was configured with. With none
    configured every command is refused: an unknown federation is never a pass."""
    if not s.admins:
        log.warning("no admins configured: every command will be refused",
                    setting="ARCFLARE_ADMINS")
    access = FederationAccess(list(s.admins), {s.site: s.site_org} if s.site_org else {})
    return enforce_policy(lambda db, federation: access if federation == s.federation else None)
