"""Every message ends: poison never stalls a consumer, refusals stay small, the outbox never
blocks, scheduled messages can always be withdrawn, local files are private.
Each case here failed on the runtime before it was made so (see the issue's "Why")."""
from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta

from arcflare.bus.port import SubQueue
from arcflare.contracts.commands import RemoveSite
from arcflare.contracts.events import CommandRejected, SiteHeartbeat, SiteRemoved
from arcflare.runtime import Consumer, Service, StateStore

from tests.support.recording import Seen, every_type_of, record
from tests.support.signing import publish, raw, signer_for


def ledger_like(settings, bus, seen) -> Service:
    return Service(name="ledger", settings=settings, bus=bus,
                   state=StateStore(settings.data_dir / "ledger.db"),
                   consumers=[Consumer("telemetry", subscription="ledger",
                                       handlers=every_type_of("telemetry", "ledger"))],
                   dependencies={"seen": seen})


def provisioner_like(settings, bus, handler=record, seen=None) -> Service:
    return Service(name="provisioner", settings=settings, bus=bus,
                   state=StateStore(settings.data_dir / "provisioner.db"),
                   consumers=[Consumer("provisioner", handlers={RemoveSite: handler})],
                   dependencies={"seen": seen or Seen()})


def heartbeat(site: str) -> SiteHeartbeat:
    return SiteHeartbeat(federation="fed", site=site, status="connected")


def dead(bus, entity, subscription=None):
    return [(m.message_id, m.dead_letter_reason, m.dead_letter_error_description)
            for m in bus.peek(entity, subscription, max_messages=50,
                              sub_queue=SubQueue.DEAD_LETTER)]


def test_deeply_nested_json_among_valid_messages_is_dead_lettered_and_the_rest_handled(
        settings, bus):
    seen = Seen()
    svc = ledger_like(settings, bus, seen)
    agent = signer_for(settings.data_dir, "site:fed/a")
    publish(bus, agent, heartbeat("a"))
    poison = b'{"federation":"fed","site":"a","status":"connected","x":' + b"[" * 100_000 \
        + b"]" * 100_000 + b"}"
    mid = raw(bus, "telemetry", poison, signer=agent, type_name="SiteHeartbeat", site="a",
              session=None)
    for _ in range(4):
        publish(bus, agent, heartbeat("a"))

    svc.drain(timeout=10)

    assert len(seen.messages) == 5
    [(dead_id, reason, description)] = dead(bus, "telemetry", "ledger")
    assert (dead_id, reason) == (mid, "TooDeep") and "32 levels" in description
    assert bus.peek("telemetry", "ledger") == []


def test_a_correlation_id_over_128_characters_is_refused_with_an_answer(settings, bus):
    svc = provisioner_like(settings, bus)
    operator = signer_for(settings.data_dir, "admin@arcflare.local")
    body = RemoveSite(federation="fed", site="a").model_dump_json().encode()
    from arcflare.bus.port import OutgoingMessage

    bus.send("provisioner", [OutgoingMessage(
        body=body, message_id="m-long", subject="RemoveSite", correlation_id="c" * 300,
        session_id="fed", application_properties={
            "type": "RemoveSite", "federation": "fed", "issued_by": operator.principal.id})])
    svc.drain()
    [(_, reason, description)] = dead(bus, "provisioner")
    assert reason == "InvalidEnvelope" and "correlation id is 300 characters" in description
    rejected = [json.loads(m.body) for m in bus.peek("events", "cli")
                if m.subject == "CommandRejected"]
    assert [r["command_id"] for r in rejected] == ["m-long"]


def test_a_command_with_thousands_of_unknown_keys_gets_a_small_rejection_and_the_outbox_flows(
        settings, bus):
    svc = provisioner_like(settings, bus)
    operator = signer_for(settings.data_dir, "admin@arcflare.local")
    payload = {"federation": "fed", "site": "a", **{f"key_{i:05d}": i for i in range(6000)}}
    body = json.dumps(payload).encode()
    assert len(body) > 59_000
    mid = raw(bus, "provisioner", body, signer=operator, type_name="RemoveSite")
    publish(bus, operator, RemoveSite(federation="fed", site="b"))  # a legitimate one behind it

    svc.drain()

    events = {m.subject: json.loads(m.body) for m in bus.peek("events", "cli", max_messages=50)}
    rejected = events["CommandRejected"]
    assert rejected["command_id"] == mid and rejected["reason"] == "invalid"
    assert rejected["errors_total"] == 6000 and len(rejected["errors"]) == 20
    sizes = [len(m.body) for m in bus.peek("events", "cli", max_messages=50)]
    assert max(sizes) < 8_000
    assert svc.outbox.pending() == 0


def too_big_refusal(message, *, uow) -> None:
    """A handler whose event can never be sent: even its bounded form is over the limit."""
    uow.publish(CommandRejected(federation="fed", command_type="x" * 300_000,
                                command_id="c", reason="r"))
    uow.publish(SiteRemoved(federation="fed", site=message.site))


def test_an_event_that_can_never_be_sent_is_parked_and_the_rows_behind_it_go_out(settings, bus):
    svc = provisioner_like(settings, bus, handler=too_big_refusal)
    publish(bus, signer_for(settings.data_dir, "admin@arcflare.local"),
            RemoveSite(federation="fed", site="a"))

    svc.drain()

    sent = {m.subject: json.loads(m.body) for m in bus.peek("events", "cli", max_messages=50)}
    assert sent["SiteRemoved"]["site"] == "a"
    parked = sent["OutboxMessageParked"]
    assert parked["message_type"] == "CommandRejected" and "bytes" in parked["reason"]
    assert svc.outbox.pending() == 0
    with svc.state.connect() as db:
        assert db.execute("SELECT COUNT(*) FROM _outbox WHERE parked IS NOT NULL").fetchone()[0] == 1


def schedule(message, *, uow) -> None:
    uow.publish(SiteRemoved(federation="fed", site=message.site),
                at=datetime.now(UTC) + timedelta(seconds=1.5))


def test_a_scheduled_message_waits_in_the_outbox_and_is_sent_when_due(settings, bus):
    svc = provisioner_like(settings, bus, handler=schedule)
    publish(bus, signer_for(settings.data_dir, "admin@arcflare.local"),
            RemoveSite(federation="fed", site="a"))
    svc.drain()
    assert [m.subject for m in bus.peek("events", "cli")] == []
    time.sleep(1.6)
    svc.outbox.relay()
    assert [m.subject for m in bus.peek("events", "cli")] == ["SiteRemoved"]


def test_a_scheduled_message_can_be_withdrawn_after_a_crash_and_never_arrives(settings, bus):
    svc = provisioner_like(settings, bus, handler=schedule)
    publish(bus, signer_for(settings.data_dir, "admin@arcflare.local"),
            RemoveSite(federation="fed", site="a"))
    svc.drain()  # committed and relayed: a crash now loses nothing
    with svc.state.connect() as db:
        [(message_id,)] = db.execute("SELECT id FROM _outbox WHERE deliver_at IS NOT NULL")

    restarted = provisioner_like(settings, bus, handler=schedule)  # same state file
    with restarted.state.unit_of_work() as uow:
        assert uow.cancel_scheduled(message_id) is True
    time.sleep(1.6)
    restarted.outbox.relay()

    assert [m.subject for m in bus.peek("events", "cli")] == []


def test_local_files_are_private(settings, bus):
    svc = provisioner_like(settings, bus)
    svc.drain()
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(settings.data_dir) == 0o700
    assert mode(svc.state.path) == 0o600
    from arcflare.bus import connect

    connect(settings).close()
    assert mode(settings.data_dir / "bus.db") == 0o600
