"""Every queue, topic, subscription and filter, as data (DESIGN §4).

Three renderings are made from TOPOLOGY and tested to agree: the embedded
broker's entities, `arcflare bus init` (ServiceBusAdministrationClient), and the
Service Bus emulator's Config.json (`arcflare bus topology --format emulator`).
"""
from __future__ import annotations

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


COMMAND_QUEUE = EntityOptions(
    lock_duration=timedelta(minutes=5),
    max_delivery_count=10,
    default_ttl=timedelta(hours=1),
    requires_session=True,
    duplicate_detection_window=timedelta(minutes=5),
)
EVENTS = EntityOptions(lock_duration=timedelta(minutes=1), max_delivery_count=10,
                       default_ttl=timedelta(hours=1))
TELEMETRY = EntityOptions(lock_duration=timedelta(minutes=1), max_delivery_count=10,
                          default_ttl=timedelta(minutes=5), dead_letter_on_expiration=False)
#: followers peek this copy; it only needs to outlive a `--wait`
FOLLOW = EntityOptions(lock_duration=timedelta(seconds=30), max_delivery_count=1,
                       default_ttl=timedelta(minutes=30), dead_letter_on_expiration=False)
SITE_COMMANDS = EntityOptions(lock_duration=timedelta(minutes=1), max_delivery_count=5,
                              default_ttl=timedelta(minutes=5))

#: the subscription every CLI / SDK follower peeks (never receives from)
FOLLOW_SUBSCRIPTION = "cli"


def site_subscription_name(site: str) -> str:
    return f"site-{site}"[:50]


def site_subscription(site: str) -> Subscription:
    """The per-site subscription on `site-commands` (created when the site agent starts)."""
    return Subscription(
        site_subscription_name(site),
        (Rule(name="site", properties={"site": site}),),
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
                    by_type("FederationProvisioned", "SiteProvisioned", "SiteRemoved"),
                    EVENTS,
                ),
                Subscription(
                    "job-controller",
                    by_type(
                        "FederationProvisioned", "SiteProvisioned", "SiteRemoved",
                        "ServerDeployed", "SiteDeployed", "SiteStopped",
                    ),
                    EVENTS,
                ),
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
                            "MetricsReported"),
                    TELEMETRY,
                ),
                Subscription(FOLLOW_SUBSCRIPTION, (), FOLLOW),
            ),
            TELEMETRY,
        ),
        Topic("site-commands", (), SITE_COMMANDS),
    ),
)
