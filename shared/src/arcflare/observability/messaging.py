"""A trace across the bus, as the OpenTelemetry messaging conventions and Service Bus have it.

Every message carries its creation context in the application properties `traceparent` (W3C)
and `Diagnostic-Id` (the same value: what Azure's SDKs and Application Insights read). Outside the
signed envelope fields: adding them changes no signature.

- A command sent by the CLI or the SDK: a "send <queue>" PRODUCER span, a new trace when no span
  is current (one trace per command).
- An event a handler publishes: its creation context is the handler's own (consumer) span, kept
  in the outbox row until the relay sends it. No "create" span, and no span of ours for the
  relay's batch send: on Azure the SDK's own send span (azure-core tracing) is that span, linked
  to every message it carries, and two spans less per event is what keeps tracing cheap.
- A received message: a "process <entity>" CONSUMER span, child of the message's creation context
  (so a command's flow is one trace across processes) and linked to it (the conventions' link
  between consumer and producer, which also survives a sampler that cuts the parent).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from arcflare.bus.port import Bus, OutgoingMessage, ReceivedMessage
from arcflare.contracts.envelope import Envelope
from arcflare.observability import tracing
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACEPARENT = "traceparent"
DIAGNOSTIC_ID = "Diagnostic-Id"
#: the properties a trace travels in (the Azure adapter hands them to the SDK as its own)
TRACE_PROPERTIES = (TRACEPARENT, DIAGNOSTIC_ID)
#: outcomes of a received message that are failures of this processing (span status ERROR)
FAILED = frozenset({"abandoned", "exhausted", "lock_lost"})


class _System:
    name = "servicebus"


_system = _System()


def use_bus(bus: Bus) -> None:
    """messaging.system for this process's spans: Azure Service Bus, or the embedded broker."""
    _system.name = "servicebus" if type(bus).__module__.startswith("arcflare.bus.azure") \
        else "arcflare_sqlite"


def stamp(message: OutgoingMessage, traceparent: str | None) -> OutgoingMessage:
    """The message with its creation context in its application properties."""
    if not traceparent:
        return message
    props = {**message.application_properties, TRACEPARENT: traceparent,
             DIAGNOSTIC_ID: traceparent}
    return dataclasses.replace(message, application_properties=props)


def _attributes(operation: str, destination: str, envelope: Envelope | None = None,
                subscription: str | None = None) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "messaging.system": _system.name,
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
    }
    if subscription:
        attributes["messaging.destination.subscription.name"] = subscription
    if envelope is not None:
        attributes["messaging.message.id"] = envelope.message_id
        if envelope.correlation_id:
            attributes["messaging.message.conversation_id"] = envelope.correlation_id
        attributes["arcflare.message.type"] = envelope.type
        if envelope.federation:
            attributes["arcflare.federation"] = envelope.federation
    return attributes


@contextmanager
def sending(destination: str, envelope: Envelope) -> Iterator[str | None]:
    """Around sending one command now: yields the traceparent to stamp it with."""
    if not tracing.enabled():
        yield tracing.current_traceparent()
        return
    with tracing.span(f"send {destination}", kind=SpanKind.PRODUCER,
                      attributes=_attributes("send", destination, envelope)) as made:
        yield tracing.traceparent(made.get_span_context())


@contextmanager
def processing(received: ReceivedMessage, destination: str,
               subscription: str | None) -> Iterator[Span | None]:
    """Around processing one received message: its consumer span (or, not tracing, its
    creation context made current so what the handler publishes carries it on)."""
    props = received.application_properties or {}
    parent = tracing.parse(props.get(TRACEPARENT) or props.get(DIAGNOSTIC_ID))
    if not tracing.enabled():
        with tracing.span("", parent=parent):
            yield None
        return
    attributes = _attributes("process", destination, subscription=subscription)
    attributes["messaging.message.id"] = received.message_id
    if received.correlation_id:
        attributes["messaging.message.conversation_id"] = received.correlation_id
    if received.delivery_count > 1:  # a redelivery (every attribute costs on every message)
        attributes["messaging.servicebus.message.delivery_count"] = received.delivery_count
    with tracing.span(f"process {destination}", kind=SpanKind.CONSUMER, parent=parent,
                      root=parent is None, attributes=attributes,
                      links=[parent] if parent else ()) as made:
        yield made


def ended(span: Span | None, outcome: str, type_name: str, reason: str | None = None) -> None:
    """What became of the message, on its consumer span."""
    if span is None:
        return
    span.set_attribute("arcflare.message.type", type_name)
    span.set_attribute("arcflare.outcome", outcome)
    if reason:
        span.set_attribute("error.type", reason)
    if outcome in FAILED:
        span.set_status(Status(StatusCode.ERROR, outcome))
