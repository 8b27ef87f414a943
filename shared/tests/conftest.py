from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import TOPOLOGY, Topology
from arcflare.runtime.settings import Settings
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities

#: the persons the tests act as, beside the default operator
OPERATORS = (*DEFAULT_OPERATORS, ("lead@example.org", "example"),
             ("member@example.org", "example"))


def short_locks(topology: Topology = TOPOLOGY, lock_s: float = 1.0,
                max_delivery: int = 3) -> Topology:
    """The real topology with locks short enough for a test to watch them expire."""
    def opts(o):
        return dataclasses.replace(o, lock_duration=timedelta(seconds=lock_s),
                                   max_delivery_count=max_delivery)

    return Topology(
        queues=tuple(dataclasses.replace(q, options=opts(q.options)) for q in topology.queues),
        topics=tuple(
            dataclasses.replace(
                t, options=opts(t.options),
                subscriptions=tuple(dataclasses.replace(s, options=opts(s.options))
                                    for s in t.subscriptions))
            for t in topology.topics),
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A fresh data dir with the local identities (trust root, services, operator)."""
    ensure_local_identities(tmp_path / "data", operators=OPERATORS)
    return Settings(data_dir=tmp_path / "data", retry_backoff_base_s=0.05,
                    retry_backoff_max_s=0.2)


@pytest.fixture
def bus(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bus = SqliteBus(settings.data_dir / "bus.db", short_locks())
    yield bus
    bus.close()
