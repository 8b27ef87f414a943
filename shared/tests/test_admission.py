"""Admission against the real embedded broker and real certificates: every message proves
who sent it, and every consumer checks that its sender may say it — one refused case per
rule. Refusals are dead-lettered with Unauthenticated or Forbidden and announced
(CommandRejected for commands, MessageRefused for the rest); no handler runs."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from arcflare.bus.port import SubQueue
from arcflare.client import Client
from arcflare.contracts.commands import AddSite
from arcflare.contracts.events import SiteHeartbeat, SiteProvisioned
from arcflare.runtime import Consumer, Service, StateStore
from arcflare.trust import local
from arcflare.trust.authority import TrustRoot
from arcflare.trust.jws import Signer
from arcflare.trust.principals import Principal

from tests.support.recording import Seen, every_type_of, record
from tests.support.signing import publish, raw, signer_for

FPR = ":".join(["AB"] * 32)
FED = "fed"


def commands_service(settings, bus, seen) -> Service:
    return Service(name="provisioner", settings=settings, bus=bus,
                   state=StateStore(settings.data_dir / "p.db"),
                   consumers=[Consumer("provisioner", handlers={AddSite: record})],
                   dependencies={"seen": seen})


def events_service(settings, bus, seen) -> Service:
    """Plays the ledger: every event and telemetry message of interest."""
    return Service(name="ledger", settings=settings, bus=bus,
                   state=StateStore(settings.data_dir / "l.db"),
                   consumers=[Consumer("events", subscription="ledger",
                                       handlers={SiteProvisioned: record}),
                              Consumer("telemetry", subscription="ledger",
                                       handlers=every_type_of("telemetry", "ledger"))],
                   dependencies={"seen": seen})


def site_provisioned(site="a") -> SiteProvisioned:
    return SiteProvisioned(federation=FED, site=site, org="o", kit_ref="file:/kits/x",
                           cert_fingerprint=FPR, not_after=datetime(2027, 1, 1, tzinfo=UTC))


def heartbeat(site="a", federation=FED) -> SiteHeartbeat:
    return SiteHeartbeat(federation=federation, site=site, status="connected")


def dead(bus, entity, subscription=None):
    return [(m.dead_letter_reason, m.dead_letter_error_description)
            for m in bus.peek(entity, subscription, max_messages=50,
                              sub_queue=SubQueue.DEAD_LETTER)]


def announced(bus, type_name):
    return [json.loads(m.body) for topic in ("events", "telemetry")
            for m in bus.peek(topic, "cli", max_messages=500) if m.subject == type_name]


# --- the happy paths the refusals are set against ---------------------------------------
def test_a_service_event_and_an_agent_heartbeat_are_admitted(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    publish(bus, signer_for(settings.data_dir, "service:provisioner"), site_provisioned())
    publish(bus, signer_for(settings.data_dir, "site:fed/a"), heartbeat())
    svc.drain()
    assert sorted(type(m).__name__ for m in seen.messages) == ["SiteHeartbeat", "SiteProvisioned"]


# --- Unauthenticated -----------------------------------------------------------------------
def test_an_unsigned_command_is_unauthenticated_and_answered(settings, bus):
    seen = Seen()
    svc = commands_service(settings, bus, seen)
    body = AddSite(federation=FED, site="a", org="o").model_dump_json().encode()
    mid = raw(bus, "provisioner", body, signer=None, type_name="AddSite",
              issued_by="admin@arcflare.local")
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "provisioner")
    assert reason == "Unauthenticated" and "no signature" in description
    [rejected] = announced(bus, "CommandRejected")
    assert rejected["command_id"] == mid and rejected["reason"] == "Unauthenticated"
    assert rejected["claimed_by"] == "admin@arcflare.local" and rejected["proven_by"] is None


def test_a_site_agent_posing_as_the_provisioner_is_unauthenticated(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    agent = signer_for(settings.data_dir, "site:fed/a")
    body = site_provisioned().model_dump_json().encode()
    raw(bus, "events", body, signer=agent, type_name="SiteProvisioned", site="a",
        issued_by="service:provisioner", session=None)
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "events", "ledger")
    assert reason == "Unauthenticated"
    assert "service:provisioner" in description and "site:fed/a" in description
    [refused] = announced(bus, "MessageRefused")
    assert (refused["claimed_by"], refused["proven_by"]) == ("service:provisioner", "site:fed/a")


def test_a_tampered_body_is_unauthenticated(settings, bus):
    """A signature lifted from a genuine message, on a body that now points elsewhere."""
    seen = Seen()
    svc = events_service(settings, bus, seen)
    provisioner = signer_for(settings.data_dir, "service:provisioner")
    good = site_provisioned().model_dump_json().encode()
    evil = good.replace(b"file:/kits/x", b"file:/tmp/evil")
    raw(bus, "events", evil, signer=provisioner, type_name="SiteProvisioned", site="a",
        session=None, body_signed=good)
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "events", "ledger")
    assert reason == "Unauthenticated" and "signature" in description


def test_a_tampered_envelope_field_is_unauthenticated(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    body = heartbeat(site="a").model_dump_json().encode()
    raw(bus, "telemetry", body, signer=signer_for(settings.data_dir, "site:fed/a"),
        type_name="SiteHeartbeat", site="a", session=None,
        tamper={"occurred_at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()})
    svc.drain()
    assert seen.messages == []
    assert [r for r, _ in dead(bus, "telemetry", "ledger")] == ["Unauthenticated"]


def _foreign_signer(tmp_path, principal: Principal) -> Signer:
    root = TrustRoot.create(tmp_path / "other-root", common_name="someone else's root")
    return Signer(root.issue(principal, out_dir=tmp_path / "other-id").load())


def test_a_certificate_from_another_root_is_unauthenticated(settings, bus, tmp_path):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    publish(bus, _foreign_signer(tmp_path, Principal.service("provisioner")), site_provisioned())
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "events", "ledger")
    assert reason == "Unauthenticated" and "trust anchor" in description


def test_an_expired_certificate_is_unauthenticated(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    root = TrustRoot.load(local.trust_dir(settings.data_dir))
    files = root.issue(Principal.service("provisioner"), out_dir=settings.data_dir / "old-id",
                       validity_days=1, now=datetime.now(UTC) - timedelta(days=3))
    publish(bus, Signer(files.load()), site_provisioned())
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "events", "ledger")
    assert reason == "Unauthenticated" and "expired" in description


# --- Forbidden -------------------------------------------------------------------------------
def test_a_person_sending_an_event_is_forbidden(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    publish(bus, signer_for(settings.data_dir, "admin@arcflare.local"), site_provisioned())
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "events", "ledger")
    assert reason == "Forbidden" and "only from service provisioner" in description
    [refused] = announced(bus, "MessageRefused")
    assert refused["proven_by"] == "admin@arcflare.local" and refused["reason"] == "Forbidden"


def test_an_agent_reporting_another_site_is_forbidden(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    publish(bus, signer_for(settings.data_dir, "site:fed/a"), heartbeat(site="b"))
    publish(bus, signer_for(settings.data_dir, "site:fed/a"), heartbeat(federation="other"))
    svc.drain()
    assert seen.messages == []
    assert [r for r, _ in dead(bus, "telemetry", "ledger")] == ["Forbidden", "Forbidden"]


def test_a_service_sending_a_command_it_may_not_is_forbidden(settings, bus):
    seen = Seen()
    svc = commands_service(settings, bus, seen)
    publish(bus, signer_for(settings.data_dir, "service:alerter"),
            AddSite(federation=FED, site="a", org="o"))
    svc.drain()
    assert seen.messages == []
    [rejected] = announced(bus, "CommandRejected")
    assert rejected["reason"] == "Forbidden" and "commands come from persons" in rejected["detail"]


def test_an_envelope_federation_other_than_the_payloads_is_forbidden(settings, bus):
    seen = Seen()
    svc = commands_service(settings, bus, seen)
    body = AddSite(federation="victim", site="a", org="o").model_dump_json().encode()
    raw(bus, "provisioner", body, signer=signer_for(settings.data_dir, "admin@arcflare.local"),
        type_name="AddSite", federation="mine", session="mine")
    svc.drain()
    assert seen.messages == []
    [rejected] = announced(bus, "CommandRejected")
    assert rejected["reason"] == "Forbidden" and "'mine'" in rejected["detail"]


def test_a_stale_command_is_forbidden(settings, bus):
    seen = Seen()
    svc = commands_service(settings, bus, seen)
    publish(bus, signer_for(settings.data_dir, "admin@arcflare.local"),
            AddSite(federation=FED, site="a", org="o"),
            occurred_at=datetime.now(UTC) - timedelta(seconds=settings.command_max_age_s + 60))
    svc.drain()
    assert seen.messages == []
    [rejected] = announced(bus, "CommandRejected")
    assert rejected["reason"] == "Forbidden" and "stale" in rejected["detail"]


def test_a_message_from_the_future_is_forbidden(settings, bus):
    seen = Seen()
    svc = events_service(settings, bus, seen)
    publish(bus, signer_for(settings.data_dir, "site:fed/a"), heartbeat(),
            occurred_at=datetime.now(UTC) + timedelta(days=365))
    svc.drain()
    assert seen.messages == []
    [(reason, description)] = dead(bus, "telemetry", "ledger")
    assert reason == "Forbidden" and "in the future" in description


def test_the_client_ignores_a_forged_outcome(settings, bus, tmp_path):
    """--wait must not end on an outcome nobody entitled to it published."""
    client = Client(settings, bus=bus)
    command_id = client.send(AddSite(federation=FED, site="a", org="o"))
    forged = site_provisioned()
    publish(bus, signer_for(settings.data_dir, "site:fed/a"), forged, causation_id=command_id)
    publish(bus, _foreign_signer(tmp_path, Principal.service("provisioner")), forged,
            causation_id=command_id)
    with pytest.raises(TimeoutError):
        client.wait(command_id, timeout=1.0)


def test_a_service_without_an_identity_refuses_to_start(settings, bus):
    from arcflare.runtime.identity import MissingIdentity

    with pytest.raises(MissingIdentity, match="arcflare identity init"):
        Service(name="nobody", settings=settings, bus=bus,
                state=StateStore(settings.data_dir / "n.db"), consumers=[])
