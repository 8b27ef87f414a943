"""Fuzz, service tier: hostile messages thrown at every service's consumers on the embedded
broker, each service built by its own bootstrap() and running its threads.

For every example (a few hostile messages, then one valid probe) and every message that
reached one of the service's consumers: it ends within a bound, completed or dead-lettered
by the service itself with a reason (never left active or locked, never given up by the
broker as MaxDeliveryCountExceeded), a command it did not carry out with an outcome naming
it (CommandRejected or CommandFailed); the probe is handled; no consumer loop died; the
service stays ready; its outbox drains.
"""
from __future__ import annotations

import json
import time

import pytest
from arcflare.bus.port import BusError, SubQueue
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.runtime.admission import inbox_id
from hypothesis import event, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.fuzz.budget import fuzz
from tests.fuzz.hostile import hostile_messages
from tests.fuzz.targets import SERVICES, Target, running

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]

#: every delivery a message is allowed, with backoff, and the refusals it causes handled, on a
#: busy machine
SETTLE_S = 60.0
EXAMPLES = 30


def hostile_for(target: Target):
    return st.lists(st.tuples(st.sampled_from(target.inlets),
                              hostile_messages(target.types, sites=target.sites)),
                    min_size=1, max_size=4)


def send(target: Target, batch) -> list[tuple[object, str]]:
    """Sends what the broker takes; returns (inlet, message id) of those that reach a consumer."""
    reached = []
    for inlet, hostile in batch:
        hostile, signature = target.signers.sign(hostile)
        message = hostile.outgoing(signature, inlet.session_for(hostile.properties))
        try:
            target.bus.send(inlet.send_to, [message])
        except (BusError, UnicodeEncodeError):
            continue  # refused at send (size, ids, session, text): it never reaches anyone
        if inlet.reaches(message.subject, message.application_properties):
            reached.append((inlet, message.message_id))
    return reached


def busy(target: Target) -> dict[str, tuple[int, int]]:
    """Consumed entities with messages not ended yet: path -> (active, locked)."""
    paths = {inlet.entity_path for inlet in target.inlets}
    return {s.entity_path: (s.active, s.locked) for s in target.bus.stats()
            if s.entity_path in paths and (s.active or s.locked)}


def settle(target: Target, consumer: str, probe: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        seen = target.service.state.seen(consumer, probe)
        if seen and not busy(target) and target.service.outbox.pending() == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"not settled within {SETTLE_S} s: busy {busy(target)}, probe "
                         f"{target.service.state.seen(consumer, probe)}, outbox pending "
                         f"{target.service.outbox.pending()}")


def answered(target: Target) -> set[str]:
    """Ids of the commands the service answered with an outcome (a site agent's go to
    telemetry; the hostile messages on those topics are no answers)."""
    ids = set()
    for topic in ("events", "telemetry"):
        for m in target.bus.peek(topic, FOLLOW_SUBSCRIPTION, max_messages=5000):
            if m.subject not in ("CommandRejected", "CommandFailed") or \
                    m.application_properties.get("issued_by") != target.signer_id:
                continue
            try:
                ids.add(json.loads(m.body).get("command_id"))
            except (ValueError, AttributeError):
                continue  # a hostile look-alike (signed by someone else, claiming to be it)
    return ids


def dead_letters(target: Target) -> dict[str, tuple[str | None, str | None, str]]:
    """Per dead letter: its reason, description, and the id its answer names (a copy that
    says it is a resubmit of another message is answered under that original id)."""
    found = {}
    for inlet in target.inlets:
        entity, _, subscription = inlet.consumer.partition("/")
        for m in target.bus.peek(entity, subscription or None, max_messages=1000,
                                 sub_queue=SubQueue.DEAD_LETTER):
            found[m.message_id] = (m.dead_letter_reason, m.dead_letter_error_description,
                                   inbox_id(m))
    return found


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_message_ends_and_the_service_keeps_going(name, tmp_path):
    target = SERVICES[name](tmp_path / "data")
    with running(target), capture_logs() as logs:
        consumer, probe = target.probe()
        settle(target, consumer, probe)
        assert target.service.state.seen(consumer, probe).outcome == "handled"

        @fuzz(EXAMPLES)
        @given(hostile_for(target))
        def throw(batch) -> None:
            reached = send(target, batch)
            consumer, probe = target.probe()

            settle(target, consumer, probe)

            dead, answers = dead_letters(target), answered(target)
            for inlet, message_id in reached:
                reason, description, named = dead.get(message_id, ("completed", "", message_id))
                event(reason)
                assert reason and reason != "MaxDeliveryCountExceeded", (message_id, description)
                if inlet.commands and reason != "completed":  # --wait always ends
                    assert named in answers, (message_id, named, reason, description)
            seen = target.service.state.seen(consumer, probe)
            assert seen.outcome == "handled", seen
            assert [e for e in logs if e["event"] == "loop failed; restarting it"] == []
            assert target.service.readiness()["ready"]

        throw()
