"""Every queue, topic, subscription and filter, as data (docs/architecture.md §2).

Three renderings are made from TOPOLOGY and tested to agree: the embedded
broker's entities, `arcflare bus init` (ServiceBusAdministrationClient), and the
Service Bus emulator's Config.json (`arcflare bus topology --format emulator`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Rule:
    """A correlation filter: every given field must match (AND). Empty = everything."""

    name: str = "$Default"
    subject: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def matches(self, subject: str | None, properties: dict[str, object]) -> bool:
        if self.subject is not None and subject != self.subject:
            return False
        return all(str(properties.get(k)) == v for k, v in self.properties.items())


def by_type(*types: str) -> tuple[Rule, ...]:
    """One rule per message type: a subscription receives the union (OR) of its rules."""
    return tuple(Rule(name=t, subject=t) for t in types)


@dataclass(frozen=True)
class EntityOptions:
    lock_duration: timedelta = timedelta(seconds=60)
    max_delivery_count: int = 10
    default_ttl: timedelta = timedelta(hours=1)
    dead_letter_on_expiration: bool = True
    requires_session: bool = False
    duplicate_detection_window: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Queue:
    name: str
    options: EntityOptions = EntityOptions()


@dataclass(frozen=True)
class Subscription:
    name: str
    rules: tuple[Rule, ...] = ()  # no rules: every message
    options: EntityOptions = EntityOptions()


@dataclass(frozen=True)
class Topic:
    name: str
    subscriptions: tuple[Subscription, ...] = ()
    options: EntityOptions = EntityOptions()


@dataclass(frozen=True)
class Topology:
    queues: tuple[Queue, ...]
    topics: tuple[Topic, ...]

    def queue(self, name: str) -> Queue | None:
        return next((q for q in self.queues if q.name == name), None)

    def topic(self, name: str) -> Topic | None:
        return next((t for t in self.topics if t.name == name), None)

    def subscription(self, topic: str, name: str) -> Subscription | None:
        t = self.topic(topic)
        return next((s for s in t.subscriptions if s.name == name), None) if t else None


#: Locks are short and renewed while a handler runs (arcflare.runtime.renewer): a consumer
#: that dies (SIGKILL) gives its messages and sessions back within one lock duration.
COMMAND_QUEUE = EntityOptions(
    lock_duration=timedelta(seconds=30),
    max_delivery_count=10,
    default_ttl=timedelta(hours=1),
    requires_session=True,
    duplicate_detection_window=timedelta(minutes=5),
)
#: a service may be down a while: its events wait a day, then go to its dead-letter queue
EVENTS = EntityOptions(lock_duration=timedelta(seconds=30), max_delivery_count=10,
                       default_ttl=timedelta(days=1))
#: metrics are history: kept like events, never dropped silently
TELEMETRY = EntityOptions(lock_duration=timedelta(seconds=30), max_delivery_count=10,
                          default_ttl=timedelta(days=1))
#: heartbeats and log tails are only worth their latest value: short-lived, dropped on expiry
LIVE_TELEMETRY = EntityOptions(lock_duration=timedelta(seconds=30), max_delivery_count=10,
                               default_ttl=timedelta(minutes=5), dead_letter_on_expiration=False)
#: followers peek this copy; it only needs to outlive a `--wait`
FOLLOW = EntityOptions(lock_duration=timedelta(seconds=30), max_delivery_count=1,
                       default_ttl=timedelta(minutes=30), dead_letter_on_expiration=False)
SITE_COMMANDS = EntityOptions(lock_duration=timedelta(seconds=30), max_delivery_count=5,
                              default_ttl=timedelta(minutes=5))

#: events a site agent sends, on telemetry (its only Send right: arcflare.contracts.senders)
SITE_AGENT_EVENTS = ("SiteHealthChanged", "SiteClientRestarted", "CommandRejected",
                     "CommandFailed", "MessageRefused", "OutboxMessageParked")

#: the subscription every CLI / SDK follower peeks (never receives from)
FOLLOW_SUBSCRIPTION = "cli"


def site_subscription_name(federation: str, site: str) -> str:
    """`<federation>.<site>`; Service Bus caps subscription names at 50 characters, so a
    longer one is shortened with a hash that keeps two sites' names apart."""
    name = f"{federation}.{site}"
    if len(name) <= 50:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{federation[:19]}.{site[:19]}-{digest}"


def site_subscription(federation: str, site: str) -> Subscription:
    """One site's subscription on `site-commands` (created when its site agent starts).
    Filtered on federation and site: two federations may both have a `site-1`."""
    return Subscription(
        site_subscription_name(federation, site),
        (Rule(name="site", properties={"federation": federation, "site": site}),),
        SITE_COMMANDS,
    )


TOPOLOGY = Topology(
    queues=(
        Queue("provisioner", COMMAND_QUEUE),
        Queue("deployer", COMMAND_QUEUE),
        Queue("job-controller", COMMAND_QUEUE),
    ),
    topics=(
        Topic(
            "events",
            (
                Subscription(
                    "deployer",
                    # jobs: a renewed participant is rolled once the jobs it runs have ended
                    by_type("FederationProvisioned", "SiteProvisioned", "SiteRemoved",
                            "CertificateRenewed", "JobSubmitted", "JobCompleted", "JobFailed"),
                    EVENTS,
                ),
                Subscription(
                    "job-controller",
                    by_type("FederationProvisioned", "SiteRemoved", "CertificateRenewed",
                            "ServerDeployed"),
                    EVENTS,
                ),
                # a renewed participant runs on its new kit: the previous version can go
                Subscription("provisioner", by_type("ParticipantRolled"), EVENTS),
                Subscription(
                    "metrics-relay",
                    by_type("JobSubmitted", "JobStatusChanged", "JobCompleted"),
                    EVENTS,
                ),
                Subscription("alerter", (), EVENTS),
                Subscription("ledger", (), EVENTS),
                Subscription(FOLLOW_SUBSCRIPTION, (), FOLLOW),
            ),
            EVENTS,
        ),
        Topic(
            "telemetry",
            (
                Subscription(
                    "metrics-relay", by_type("MetricsReported", "FlareEventObserved"), TELEMETRY
                ),
                Subscription(
                    "ledger",
                    by_type("SiteHeartbeat", "SiteLogTail", "FlareEventObserved",
                            "MetricsReported", *SITE_AGENT_EVENTS),
                    LIVE_TELEMETRY,
                ),
                Subscription("alerter", by_type(*SITE_AGENT_EVENTS), TELEMETRY),
                Subscription(FOLLOW_SUBSCRIPTION, (), FOLLOW),
            ),
            TELEMETRY,
        ),
        Topic("site-commands", (), SITE_COMMANDS),
    ),
)


def with_sites(topology: Topology, sites: list[tuple[str, str]]) -> Topology:
    """The topology plus the `site-commands` subscriptions of the given (federation, site)
    pairs: what `arcflare bus init --site FED/SITE` creates on a real namespace, so a site
    agent needs no Manage rights to make its own."""
    extra = tuple(site_subscription(fed, site) for fed, site in sites)
    topics = tuple(
        Topic(t.name, t.subscriptions + extra, t.options) if t.name == "site-commands" else t
        for t in topology.topics)
    return Topology(topology.queues, topics)
