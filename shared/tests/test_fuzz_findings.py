"""What the fuzz tier (tests/fuzz) found, kept as plain cases on the embedded broker: each
stalled a consumer (its loop restarted on every delivery and the message was left to the
broker's silent MaxDeliveryCountExceeded) before the fix beside it."""
from __future__ import annotations

import json

from arcflare.bus.port import SubQueue
from arcflare.contracts.commands import RemoveSite
from arcflare.contracts.events import FlareEventObserved, MetricsReported
from arcflare.runtime import Consumer, Service, StateStore
from structlog.testing import capture_logs

from tests.support.signing import publish, raw, signer_for


def service(settings, bus, handler) -> Service:
    return Service(name="provisioner", settings=settings, bus=bus,
                   state=StateStore(settings.data_dir / "provisioner.db"),
                   consumers=[Consumer("provisioner", handlers={RemoveSite: handler})])


def dead(bus, entity="provisioner", subscription=None):
    return [(m.message_id, m.dead_letter_reason, m.dead_letter_error_description)
            for m in bus.peek(entity, subscription, max_messages=50,
                              sub_queue=SubQueue.DEAD_LETTER)]


def answers(bus) -> dict[str, dict]:
    return {json.loads(m.body)["command_id"]: {"type": m.subject, **json.loads(m.body)}
            for m in bus.peek("events", "cli", max_messages=50)
            if m.subject in ("CommandRejected", "CommandFailed")}


def loop_restarts(logs) -> list[dict]:
    return [e for e in logs if e["event"] == "loop failed; restarting it"]


def keep(message, *, uow, seen: list) -> None:
    """As the ledger keeps an event's detail: its JSON as text in SQLite."""
    uow.write().execute("CREATE TABLE IF NOT EXISTS kept (detail TEXT)")
    uow.write().execute("INSERT INTO kept VALUES (?)",
                        (json.dumps(message.detail, ensure_ascii=False),))
    seen.append(message)


def test_a_lone_surrogate_escaped_into_a_free_form_field_is_refused_before_any_handler(
        settings, bus):
    """JSON may escape what no text holds; the payload validated (the field takes any JSON),
    and every event made from it could not be serialized."""
    seen: list = []
    svc = Service(name="ledger", settings=settings, bus=bus,
                  state=StateStore(settings.data_dir / "ledger.db"),
                  consumers=[Consumer("telemetry", subscription="metrics-relay",
                                      handlers={FlareEventObserved: keep,
                                                MetricsReported: lambda message: None})],
                  dependencies={"seen": seen})
    bridge = signer_for(settings.data_dir, "bridge:fed")
    body = b'{"federation": "fed", "event": "job_ended", "detail": {"file": "r\\udcff.npy"}}'
    poison = raw(bus, "telemetry", body, signer=bridge, type_name="FlareEventObserved",
                 session=None)
    publish(bus, bridge, FlareEventObserved(federation="fed", event="job_started"))

    with capture_logs() as logs:
        svc.drain()

    assert loop_restarts(logs) == []
    [(message_id, reason, description)] = dead(bus, "telemetry", "metrics-relay")
    assert (message_id, reason) == (poison, "InvalidBody") and "surrogate" in description
    assert [m.event for m in seen] == ["job_started"]


def report_unencodable(message, *, uow) -> None:
    """Text read off a disk (os.listdir of a name that is not UTF-8) keeps its undecodable
    bytes as lone surrogates: valid in Python, unserializable in any event."""
    uow.publish(FlareEventObserved.model_construct(
        federation="fed", job_id=None, site=None, event="job_ended",
        detail={"file": b"result\xff.npy".decode("utf-8", "surrogateescape")}))


def test_work_that_cannot_be_committed_is_a_failed_attempt_and_ends_in_command_failed(
        settings, bus):
    """Committing ran outside the handler's error handling: the consumer loop died on every
    delivery and the command never got an outcome."""
    svc = service(settings, bus, report_unencodable)
    command = publish(bus, signer_for(settings.data_dir, "admin@arcflare.local"),
                      RemoveSite(federation="fed", site="a"))

    with capture_logs() as logs:
        for _ in range(4):  # the test topology allows 3 deliveries
            svc.drain()

    assert loop_restarts(logs) == []
    [(message_id, reason, description)] = dead(bus)
    assert (message_id, reason) == (command.message_id, "RetriesExhausted")
    assert "surrogates not allowed" in description
    failed = answers(bus)[command.message_id]
    assert (failed["type"], failed["reason"], failed["deliveries"]) == \
        ("CommandFailed", "retries_exhausted", 3)
    assert svc.outbox.pending() == 0
