"""One command, one trace: through the real runtime, the embedded broker and the signatures.

The SDK's spans are recorded in memory here; the same flow across processes and exported over
OTLP is tests/observability/test_stack_observability.py.
"""
from __future__ import annotations

import json

import pytest
from arcflare.bus.codec import to_outgoing
from arcflare.client import Client
from arcflare.contracts.commands import AddSite
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import SiteProvisioned
from arcflare.observability import messaging, tracing
from arcflare.runtime import Consumer, Service, StateStore

from tests.support.signing import SESSION_QUEUES, signer_for

from .conftest import add_site

OPERATOR = "lead@example.org"


def note_site(event: SiteProvisioned, *, uow) -> None:
    uow.write().execute("CREATE TABLE IF NOT EXISTS seen (site TEXT)")
    uow.write().execute("INSERT INTO seen VALUES (?)", (event.site,))


def services(settings, bus) -> tuple[Service, Service]:
    provisioner = Service(
        name="provisioner", settings=settings, bus=bus,
        state=StateStore(settings.data_dir / "provisioner.db"),
        consumers=[Consumer("provisioner", handlers={AddSite: add_site})])
    ledger = Service(
        name="ledger", settings=settings, bus=bus,
        state=StateStore(settings.data_dir / "ledger.db"),
        consumers=[Consumer("events", subscription="ledger",
                            handlers={SiteProvisioned: note_site})])
    return provisioner, ledger


def published(bus, type_name: str) -> list[dict]:
    return [dict(m.application_properties) for m in bus.peek("events", "cli", max_messages=100)
            if m.subject == type_name]


def by_name(spans, name: str):
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_a_command_and_what_it_causes_are_one_trace_of_linked_spans(settings, bus, recorded):
    provisioner, ledger = services(settings, bus)
    client = Client(settings, bus=bus, issued_by=OPERATOR)

    with tracing.span("arcflare site add", root=True) as cli:
        command_id = client.send(AddSite(federation="fed", site="site-a", org="org_a"))
    provisioner.drain()
    ledger.drain()

    spans = recorded.get_finished_spans()
    trace_id = cli.get_span_context().trace_id
    send = by_name(spans, "send provisioner")
    process = by_name(spans, "process provisioner")
    consumed = by_name(spans, "process events")
    assert send.parent.span_id == cli.get_span_context().span_id
    # across the bus: the consumer is the producer's child, and linked to it
    assert process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    # what the handler published carries the handler's context, through the outbox
    assert consumed.parent.span_id == process.context.span_id
    assert [link.context.span_id for link in consumed.links] == [process.context.span_id]
    assert {s.context.trace_id for s in (send, process, consumed)} == {trace_id}
    assert {s.name for s in spans} == {"arcflare site add", "send provisioner",
                                       "process provisioner", "process events"}
    assert process.attributes["messaging.system"] == "arcflare_sqlite"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.destination.name"] == "provisioner"
    assert process.attributes["messaging.message.id"] == command_id
    assert process.attributes["arcflare.outcome"] == "handled"
    assert consumed.attributes["messaging.destination.subscription.name"] == "ledger"
    assert consumed.attributes["arcflare.message.type"] == "SiteProvisioned"
    # what travelled: the creation context, as traceparent and Diagnostic-Id
    (props,) = published(bus, "SiteProvisioned")
    assert props["traceparent"] == props["Diagnostic-Id"] == tracing.traceparent(process.context)


def test_a_rejection_stays_in_the_trace_of_the_command_it_refuses(settings, bus, recorded):
    provisioner, _ = services(settings, bus)
    client = Client(settings, bus=bus, issued_by=OPERATOR)

    with tracing.span("arcflare site add", root=True) as cli:
        client.send(AddSite(federation="fed", site="refused", org="org_a"))
    provisioner.drain()

    process = by_name(recorded.get_finished_spans(), "process provisioner")
    assert process.attributes["arcflare.outcome"] == "rejected"
    assert process.attributes["error.type"] == "conflict"
    (props,) = published(bus, "CommandRejected")
    assert tracing.parse(props["traceparent"]).trace_id == cli.get_span_context().trace_id


def test_a_service_that_does_not_trace_passes_the_trace_on(settings, bus, untraced):
    provisioner, _ = services(settings, bus)
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    command = AddSite(federation="fed", site="site-a", org="org_a")
    message = to_outgoing(Envelope.wrap(command), signer=signer_for(settings.data_dir, OPERATOR),
                          session="provisioner" in SESSION_QUEUES)
    bus.send("provisioner", [messaging.stamp(message, incoming)])

    provisioner.drain()

    (props,) = published(bus, "SiteProvisioned")
    assert props["traceparent"] == props["Diagnostic-Id"] == incoming


def test_nothing_is_stamped_when_nothing_traces(settings, bus, untraced):
    provisioner, _ = services(settings, bus)
    client = Client(settings, bus=bus, issued_by=OPERATOR)

    client.send(AddSite(federation="fed", site="site-a", org="org_a"))
    provisioner.drain()

    (props,) = published(bus, "SiteProvisioned")
    assert "traceparent" not in props and "Diagnostic-Id" not in props


def test_the_outbox_keeps_the_trace_of_the_handler_that_wrote_the_row(settings, bus, recorded):
    provisioner, _ = services(settings, bus)
    client = Client(settings, bus=bus, issued_by=OPERATOR)
    with tracing.span("arcflare site add", root=True):
        client.send(AddSite(federation="fed", site="site-a", org="org_a"))

    provisioner.drain()

    handler = by_name(recorded.get_finished_spans(), "process provisioner")
    with provisioner.state.connect() as db:
        (row,) = db.execute("SELECT envelope, traceparent FROM _outbox").fetchall()
    assert json.loads(row["envelope"])["type"] == "SiteProvisioned"
    assert row["traceparent"] == tracing.traceparent(handler.context)


@pytest.mark.parametrize("value", [
    None, "", "garbage", "00-" + "0" * 32 + "-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
])
def test_a_malformed_traceparent_is_ignored(value):
    assert tracing.parse(value) is None


def test_a_traceparent_round_trips():
    value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert tracing.traceparent(tracing.parse(value)) == value
