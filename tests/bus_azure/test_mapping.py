"""Envelope ⇄ ServiceBusMessage / received message, field by field."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from arcflare.bus.azure.mapping import application_properties, from_service_bus, to_service_bus
from arcflare.bus.codec import DecodeError, from_received, to_outgoing
from arcflare.contracts.envelope import Envelope
from azure.servicebus import ServiceBusReceivedMessage
from proton import Message, symbol, timestamp

from tests.support.signing import throwaway_signer

SIGNER = throwaway_signer()


def envelope() -> Envelope:
    return Envelope(type="SiteProvisioned", correlation_id="cmd-1", causation_id="cause-1",
                    federation="fédé", site="site-ß", issued_by="ana@example.org",
                    payload={"note": "Zürich → 東京", "n": 1})


def received(message: Message) -> ServiceBusReceivedMessage:
    """A received message exactly as the SDK decodes one off the wire."""
    return ServiceBusReceivedMessage.from_bytes(bytes(message.encode()))


def test_every_outgoing_field_reaches_the_service_bus_message():
    at = datetime(2030, 1, 1, tzinfo=UTC)
    outgoing = to_outgoing(envelope(), session=True, time_to_live=timedelta(minutes=5),
                           scheduled_enqueue_time=at, signer=SIGNER)

    sb = to_service_bus(outgoing)

    assert (sb.message_id, sb.subject, sb.correlation_id, sb.session_id, sb.content_type) == (
        outgoing.message_id, "SiteProvisioned", "cmd-1", "fédé", "application/json")
    assert sb.application_properties == outgoing.application_properties
    assert sb.time_to_live == timedelta(minutes=5)
    assert sb.scheduled_enqueue_time_utc == at
    assert b"".join(sb.body) == outgoing.body


def test_a_received_message_maps_back_to_the_same_envelope():
    sent = envelope()
    outgoing = to_outgoing(sent, session=True, signer=SIGNER)
    wire = Message(body=outgoing.body, id=outgoing.message_id, subject=outgoing.subject,
                   correlation_id=outgoing.correlation_id, group_id=outgoing.session_id,
                   content_type=outgoing.content_type, inferred=True,
                   properties=dict(outgoing.application_properties))
    wire.annotations = {symbol("x-opt-sequence-number"): 42,
                        symbol("x-opt-enqueued-time"): timestamp(1_700_000_000_000)}
    wire.delivery_count = 2

    mapped = from_service_bus(received(wire), "provisioner")

    assert from_received(mapped) == sent.model_copy(update={"issued_by": SIGNER.principal.id})
    assert mapped.sequence_number == 42
    assert mapped.delivery_count == 2
    assert mapped.enqueued_time == datetime.fromtimestamp(1_700_000_000, UTC)
    assert mapped.session_id == "fédé"
    assert mapped.entity_path == "provisioner"
    assert json.loads(mapped.body)["note"] == "Zürich → 東京"


def test_bytes_keys_and_values_are_decoded_and_numbers_kept():
    raw = {b"type": b"SiteProvisioned", b"site": "site-\u00df".encode(), b"attempt": 3,
           b"ok": True, "plain": "text"}

    assert application_properties(raw) == {"type": "SiteProvisioned", "site": "site-ß",
                                            "attempt": 3, "ok": True, "plain": "text"}


def test_dead_letter_details_come_through():
    wire = Message(body=b"{}", id="m-1", inferred=True,
                   properties={"DeadLetterReason": "InvalidJson",
                               "DeadLetterErrorDescription": "line 1"})
    wire.annotations = {symbol("x-opt-deadletter-source"): "orders"}

    mapped = from_service_bus(received(wire), "orders/$deadletterqueue")

    assert (mapped.dead_letter_reason, mapped.dead_letter_error_description,
            mapped.dead_letter_source) == ("InvalidJson", "line 1", "orders")


@pytest.mark.parametrize("wire, reason", [
    (Message(body=b"\x00\xffnot json", id="a", subject="SiteProvisioned", inferred=True),
     "InvalidBody"),
    (Message(body=b"[1, 2]", id="b", subject="SiteProvisioned", inferred=True), "InvalidJson"),
    (Message(body=b'{"a": 1}', id="c", inferred=True), "MissingType"),
    (Message(body="a value body, not data", id="d", subject="SiteProvisioned"), "InvalidJson"),
])
def test_other_producers_messages_fail_in_the_codec_with_a_reason(wire, reason):
    mapped = from_service_bus(received(wire), "orders")

    with pytest.raises(DecodeError) as failure:
        from_received(mapped)

    assert failure.value.reason == reason


def test_a_uuid_message_id_becomes_text():
    message_id = uuid.uuid4()
    wire = Message(body=b"{}", id=message_id, inferred=True)

    assert from_service_bus(received(wire), "orders").message_id == str(message_id)


def test_every_documented_servicebus_setting_reaches_the_adapter(monkeypatch):
    from arcflare.bus.azure.config import AzureBusOptions
    from arcflare.runtime.settings import Settings

    for name, value in {"NAMESPACE": "ns.servicebus.windows.net", "RETRY_MODE": "fixed",
                        "MAX_LOCK_RENEWAL_S": "90", "MAX_CONCURRENT_SESSIONS": "3",
                        "MAX_LOCK_RENEWERS": "7", "STALL_AFTER_S": "45"}.items():
        monkeypatch.setenv(f"ARCFLARE_SERVICEBUS_{name}", value)

    options = AzureBusOptions.from_settings(Settings())

    assert (options.retry_mode, options.max_lock_renewal_s, options.max_concurrent_sessions,
            options.max_lock_renewers, options.stall_after_s) == ("fixed", 90.0, 3, 7, 45.0)
