"""The real topology with short locks, for tests that kill a service: its messages come
back within the test (Service Bus allows locks as short as 5 s) instead of minutes."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from arcflare.contracts.topology import TOPOLOGY, Topology


def short_lock_topology(seconds: float = 5.0) -> Topology:
    def short(options):
        return replace(options, lock_duration=timedelta(seconds=seconds))

    return Topology(
        queues=tuple(replace(q, options=short(q.options)) for q in TOPOLOGY.queues),
        topics=tuple(
            replace(t, subscriptions=tuple(replace(s, options=short(s.options))
                                           for s in t.subscriptions))
            for t in TOPOLOGY.topics
        ),
    )
