"""The chaos run judges MLflow only once the metrics-relay has caught up.

Seed 188070 broke on this: the relay was SIGKILLed just after it claimed a site's round-0
batch. The batch stayed locked for the subscription's lock duration (30 s); meanwhile the
restarted relay wrote rounds 1 and 2 and registered the model, the demo returned and the
check read MLflow with round 0 still held under the dead relay's lock. Not lost: once the
lock expired the batch was delivered again and written. These tests replay that moment on
the embedded broker, with the relay's telemetry lock shortened so it expires in the test.
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.events import MetricPoint, MetricsReported
from arcflare.contracts.topology import TOPOLOGY, Topology

from tests.chaos.run import RELAY_SUBSCRIPTIONS, relay_backlog, relay_caught_up
from tests.support.signing import publish, signer_for

LOCK_S = 1.0


def relay_lock(seconds: float) -> Topology:
    """The real topology with the relay's telemetry lock as short as a test can wait for."""
    def shortened(sub):
        if sub.name != "metrics-relay":
            return sub
        return dataclasses.replace(sub, options=dataclasses.replace(
            sub.options, lock_duration=timedelta(seconds=seconds)))

    topics = tuple(dataclasses.replace(t, subscriptions=tuple(map(shortened, t.subscriptions)))
                   for t in TOPOLOGY.topics)
    return Topology(TOPOLOGY.queues, topics)


def round_zero(site: str) -> MetricsReported:
    return MetricsReported(federation="hospitals-3", job_id="0b5c7f7e-job", site=site,
                           points=[MetricPoint(key="accuracy", value=0.57, step=0,
                                               timestamp_ms=1)],
                           batch_id="batch-round-0")


def test_the_relay_is_waited_for_on_both_of_its_subscriptions() -> None:
    assert {(topic, sub) for topic, sub, _ in RELAY_SUBSCRIPTIONS} == \
        {("telemetry", "metrics-relay"), ("events", "metrics-relay")}


def test_a_batch_held_by_a_killed_relay_is_waited_for_until_the_relay_settles_it(
        tmp_path: Path) -> None:
    topology = relay_lock(LOCK_S)
    bus = SqliteBus(tmp_path / "bus.db", topology)
    publish(bus, signer_for(tmp_path, "bridge:hospitals-3"), round_zero("charite-berlin"))
    killed_relay = SqliteBus(tmp_path / "bus.db", topology)
    held = killed_relay.receive("telemetry", "metrics-relay", max_messages=8)
    killed_relay.close()  # SIGKILLed before it settled the batch: only its lock is left
    assert [m.subject for m in held] == ["MetricsReported"]

    # where the check used to read MLflow: nothing for the relay to receive, yet not caught up
    assert bus.receive("telemetry", "metrics-relay", max_messages=8) == []
    assert relay_backlog(bus) == {"telemetry/metrics-relay": 1}
    problems = relay_caught_up(bus, timeout=0.1)
    assert len(problems) == 1 and "telemetry/metrics-relay" in problems[0]

    # the restarted relay gets the batch again once the lock expires, and settles it
    restarted_relay = SqliteBus(tmp_path / "bus.db", topology)
    again = restarted_relay.receive("telemetry", "metrics-relay", max_messages=8,
                                    max_wait=LOCK_S + 5)
    assert [(m.message_id, m.delivery_count) for m in again] == [(held[0].message_id, 2)]
    restarted_relay.complete(again[0])
    restarted_relay.close()

    assert relay_backlog(bus) == {}
    assert relay_caught_up(bus, timeout=0.1) == []
    bus.close()
