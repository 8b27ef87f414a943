"""Every service as the fuzz tier runs it: built by its own bootstrap() on a fresh data dir
with the local identities, its threads started on the embedded broker, and a probe — one
valid message its consumers must still handle after whatever came before.

Fakes only stand in for what a service calls outside itself and that its own unit tests
fake too: the FLARE admin of the job-controller. Everything else is real (NVFlare
provisioning, MLflow on SQLite, the ledger's HTTP API, the agent's process observer).
"""
from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from arcflare.contracts import commands as c
from arcflare.contracts import events as e
from arcflare.contracts.artifacts import STARTUP_KIT, ArtifactRef
from arcflare.contracts.base import Message
from arcflare.contracts.topology import TOPOLOGY, Rule, site_subscription
from arcflare.runtime import Service
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities

from tests.fuzz.hostile import FED, OPERATOR, SITES, Signers
from tests.support.signing import SESSION_QUEUES, publish

ROOT = Path(__file__).resolve().parents[2]
FINGERPRINT = ":".join(["AB"] * 32)
#: the federation the probes are about: hostile messages are about FED, and a valid one may
#: change what a service knows of it (its admins, say)
PROBED = "probed"
ADMINS = [c.AdminSpec(email=OPERATOR, org="arcflare", role="project_admin")]
#: persons besides the operator that hostile messages are signed by
PEOPLE = (("stranger@elsewhere.org", "elsewhere"),)
FAST_RETRIES = {"retry_backoff_base_s": 0.01, "retry_backoff_max_s": 0.05}


@dataclass(frozen=True)
class Inlet:
    """Where messages for one of the service's consumers are sent, and which of them reach it."""

    send_to: str
    consumer: str  # the consumer's name: entity or entity/subscription
    rules: tuple[Rule, ...]

    def reaches(self, subject: str | None, properties: dict) -> bool:
        return not self.rules or any(r.matches(subject, properties) for r in self.rules)

    @property
    def commands(self) -> bool:
        """Its consumer takes commands: each one it refuses or gives up on is answered."""
        return TOPOLOGY.queue(self.send_to) is not None or self.send_to == "site-commands"

    @property
    def entity_path(self) -> str:
        entity, _, subscription = self.consumer.partition("/")
        return f"{entity}/subscriptions/{subscription}" if subscription else entity

    def session_for(self, properties: dict) -> str | None:
        if self.send_to not in SESSION_QUEUES:
            return None
        federation = properties.get("federation")
        return federation if isinstance(federation, str) and 0 < len(federation) <= 128 else FED


def queue(name: str) -> Inlet:
    return Inlet(name, name, ())


def subscription(topic: str, name: str) -> Inlet:
    found = TOPOLOGY.subscription(topic, name)
    return Inlet(topic, f"{topic}/{name}", found.rules if found else ())


#: what a probe sends: (the message, the principal that signs it, the consumer that handles it)
Probe = tuple[Message, str, str]


@dataclass
class Target:
    name: str
    service: Service
    signers: Signers
    inlets: tuple[Inlet, ...]
    #: makes the probe: one valid message the service must handle after any hostile ones
    make_probe: Callable[[], Probe]
    sites: tuple[str, ...] = SITES

    @property
    def bus(self):
        return self.service.bus

    @property
    def signer_id(self) -> str:
        """The principal the service signs as."""
        return self.service.signer.principal.id

    @property
    def types(self) -> tuple[str, ...]:
        """The message types its consumers handle (most hostile messages pretend to be one)."""
        return tuple(sorted({t.__name__ for consumer in self.service.consumers
                             for t in consumer.handlers}))

    def send(self, message: Message, principal: str) -> str:
        return publish(self.bus, self.signers.get(principal), message).message_id

    def probe(self) -> tuple[str, str]:
        """Sends a probe; returns (the consumer that must handle it, its message id)."""
        message, principal, consumer = self.make_probe()
        return consumer, self.send(message, principal)


def identities(data_dir: Path) -> Signers:
    """The identities `arcflare local up` makes, and a stranger's."""
    ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS, *PEOPLE))
    return Signers(data_dir)


@contextmanager
def running(target: Target) -> Iterator[Target]:
    target.service.start()
    try:
        yield target
    finally:
        target.service.stop(timeout=15)
        target.bus.close()


def _kit(name: str) -> ArtifactRef:
    """A kit reference into the folder store's kits area with no kit behind it: accepted on
    arrival, nothing it names can ever start."""
    sha256 = hashlib.sha256(name.encode()).hexdigest()
    return ArtifactRef(sha256=sha256, size=1, media_type=STARTUP_KIT,
                       locator=f"folder:kits/{sha256}")


def _provisioned(federation: str) -> e.FederationProvisioned:
    """A federation as the provisioner announces it, its kits by reference."""
    server, admin = _kit(f"{federation}/server"), _kit(f"{federation}/{OPERATOR}")
    return e.FederationProvisioned(
        federation=federation, server_endpoint="localhost:8102",
        server_kit_ref=server.locator, server_kit=server, admin_kit_ref=admin.locator,
        admin_kit=admin, admin_name=OPERATOR, sites=list(SITES), admins=ADMINS,
        ca_fingerprint=FINGERPRINT)


# --- the services --------------------------------------------------------------------------
def provisioner(data_dir: Path) -> Target:
    from arcflare.provisioner.bootstrap import bootstrap
    from arcflare.provisioner.settings import ProvisionerSettings

    signers = identities(data_dir)
    svc = bootstrap(ProvisionerSettings(data_dir=data_dir, **FAST_RETRIES))
    # provisioned once; later the same AddSite is answered from the records
    probe = c.AddSite(federation=PROBED, site="probe", org="hospital")
    target = Target("provisioner", svc, signers,
                    (queue("provisioner"), subscription("events", "provisioner")),
                    lambda: (probe, OPERATOR, "provisioner"))
    for federation in (FED, PROBED):
        target.send(c.CreateFederation(name=federation, admins=ADMINS,
                                       sites=[{"name": s, "org": "hospital"} for s in SITES]),
                    OPERATOR)
    return target


def deployer(data_dir: Path) -> Target:
    from arcflare.deployer.bootstrap import bootstrap
    from arcflare.deployer.settings import DeployerSettings

    signers = identities(data_dir)
    settings = DeployerSettings(data_dir=data_dir, watch_interval_s=0.5, stop_grace_s=5,
                                **FAST_RETRIES)
    def probe() -> Probe:
        name = f"probe-{uuid.uuid4().hex[:8]}"
        kit = _kit(f"{PROBED}/{name}")
        return (e.SiteProvisioned(federation=PROBED, site=name, org="hospital",
                                  kit_ref=kit.locator, kit=kit,
                                  cert_fingerprint=FINGERPRINT,
                                  not_after="2030-01-01T00:00:00+00:00", deploy=False),
                "service:provisioner", "events/deployer")

    target = Target("deployer", bootstrap(settings), signers,
                    (queue("deployer"), subscription("events", "deployer")), probe)
    for federation in (FED, PROBED):
        target.send(_provisioned(federation), "service:provisioner")
    return target


def job_controller(data_dir: Path) -> Target:
    sys.path.insert(0, str(ROOT / "services" / "job-controller" / "tests"))
    from arcflare.job_controller.bootstrap import bootstrap
    from arcflare.job_controller.settings import JobControllerSettings
    from jc_fakes import FakeFlareAdmin

    signers = identities(data_dir)
    admin = FakeFlareAdmin(list(SITES))
    svc = bootstrap(JobControllerSettings(data_dir=data_dir, job_poll_interval_s=0.5,
                                          status_poll_interval_s=0, **FAST_RETRIES),
                    admin_factory=lambda federation: admin)
    probe = c.RefreshFederationStatus(federation=PROBED)
    target = Target("job-controller", svc, signers,
                    (queue("job-controller"), subscription("events", "job-controller")),
                    lambda: (probe, OPERATOR, "job-controller"))
    for federation in (FED, PROBED):
        target.send(_provisioned(federation), "service:provisioner")
    return target


def metrics_relay(data_dir: Path) -> Target:
    from arcflare.metrics_relay.bootstrap import bootstrap
    from arcflare.metrics_relay.settings import MetricsRelaySettings

    signers = identities(data_dir)
    svc = bootstrap(MetricsRelaySettings(data_dir=data_dir, unknown_job_grace_s=1.0,
                                         **FAST_RETRIES))
    return Target("metrics-relay", svc, signers,
                  (subscription("telemetry", "metrics-relay"),
                   subscription("events", "metrics-relay")),
                  lambda: (e.JobSubmitted(federation=FED, job_id=str(uuid.uuid4()), name="probe",
                                          sites=list(SITES), rounds=1),
                           "service:job-controller", "events/metrics-relay"))


def ledger(data_dir: Path) -> Target:
    from arcflare.ledger.bootstrap import bootstrap
    from arcflare.ledger.settings import LedgerSettings

    signers = identities(data_dir)
    probe = e.SiteHeartbeat(federation=FED, site="site-1", status="connected")
    return Target("ledger", bootstrap(LedgerSettings(data_dir=data_dir, **FAST_RETRIES)),
                  signers, (subscription("events", "ledger"), subscription("telemetry", "ledger")),
                  lambda: (probe, f"site:{FED}/site-1", "telemetry/ledger"))


def alerter(data_dir: Path) -> Target:
    from arcflare.alerter.bootstrap import bootstrap
    from arcflare.alerter.settings import AlerterSettings

    signers = identities(data_dir)
    probe = e.SiteRemoved(federation=FED, site="site-2")
    return Target("alerter", bootstrap(AlerterSettings(data_dir=data_dir, **FAST_RETRIES)),
                  signers, (subscription("events", "alerter"), subscription("telemetry", "alerter")),
                  lambda: (probe, "service:provisioner", "events/alerter"))


def site_agent(data_dir: Path) -> Target:
    from arcflare.site_agent.bootstrap import bootstrap
    from arcflare.site_agent.settings import SiteAgentSettings
    from arcflare.site_agent.tails import RateLimit

    signers = identities(data_dir)
    signers.get(f"site:{FED}/site-1")  # the agent's own identity, as local up makes it
    workspace = data_dir / "sites" / FED / "site-1"
    workspace.mkdir(parents=True)
    (workspace / "log.txt").write_text("".join(f"2026-11-29 08:00:{i:02d},000 - INFO - line {i}\n"
                                               for i in range(20)))
    settings = SiteAgentSettings(data_dir=data_dir, federation=FED, site="site-1",
                                 heartbeat_interval_s=5, admins=[a.model_dump() for a in ADMINS],
                                 **FAST_RETRIES)
    # tails leave a site at a bounded rate; the probe's must not wait behind hostile ones
    svc = bootstrap(settings, tail_rate=RateLimit(600, burst=10_000))
    own = site_subscription(FED, "site-1")
    inlet = Inlet("site-commands", f"site-commands/{own.name}", own.rules)
    probe = c.TailSiteLogs(federation=FED, site="site-1", lines=3)
    return Target("site-agent", svc, signers, (inlet,), lambda: (probe, OPERATOR, inlet.consumer),
                  sites=("site-1",))


SERVICES: dict[str, Callable[[Path], Target]] = {
    "provisioner": provisioner, "deployer": deployer, "job-controller": job_controller,
    "metrics-relay": metrics_relay, "ledger": ledger, "alerter": alerter,
    "site-agent": site_agent,
}
