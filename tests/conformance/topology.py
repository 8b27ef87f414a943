"""The entities the conformance suite runs against on the embedded broker:
short locks and TTLs so lock expiry and expiration take a second, not minutes."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from arcflare.contracts.topology import EntityOptions, Queue, Rule, Subscription, Topic, Topology

QUICK = EntityOptions(
    lock_duration=timedelta(seconds=1),
    max_delivery_count=3,
    default_ttl=timedelta(minutes=5),
    dead_letter_on_expiration=True,
    duplicate_detection_window=timedelta(minutes=1),
)

CONFORMANCE_TOPOLOGY = Topology(
    queues=(
        Queue("work", QUICK),
        # long locks: competing consumers on a loaded machine must not lose one by slowness
        Queue("crowd", replace(QUICK, lock_duration=timedelta(seconds=30), max_delivery_count=10)),
        Queue("orders", replace(QUICK, requires_session=True)),
        # a window short enough to outwait
        Queue("brief", replace(QUICK, duplicate_detection_window=timedelta(seconds=1))),
    ),
    topics=(
        Topic(
            "news",
            (
                Subscription("all", (), QUICK),
                Subscription(
                    "created",
                    (Rule("created", subject="Created"), Rule("red", properties={"colour": "red"})),
                    QUICK,
                ),
                Subscription(
                    "transient", (),
                    replace(QUICK, default_ttl=timedelta(seconds=1),
                            dead_letter_on_expiration=False),
                ),
            ),
            QUICK,
        ),
    ),
)
