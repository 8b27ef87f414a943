"""Signed messages for tests: as a given principal of the local layout, or hostile ones.

Every consumer admits only signed messages, so a test that plays another service, an
agent or an attacker signs as that principal here — with the real trust code, the same
keys a local stack would use.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from arcflare.bus.codec import CHAIN_PROPERTY, SIGNATURE_PROPERTY, signed_fields, to_outgoing
from arcflare.bus.port import Bus, OutgoingMessage
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.topology import TOPOLOGY
from arcflare.trust import local
from arcflare.trust.identity import IdentityFiles
from arcflare.trust.jws import Signer
from arcflare.trust.principals import Principal

SESSION_QUEUES = {q.name for q in TOPOLOGY.queues if q.options.requires_session}


def signer_for(data_dir: Path, principal: str | Principal) -> Signer:
    """The signer of a principal ("service:deployer", "site:fed/site", "bridge:fed" or an
    email), issued from the data dir's local root when it does not exist yet."""
    p = principal if isinstance(principal, Principal) else Principal.from_id(principal)
    files: IdentityFiles
    if p.kind == "service":
        local.ensure_local_identities(data_dir, services=(p.name,), operators=())
        files = local.service_identity_paths(data_dir, p.name)
    elif p.kind == "person":
        local.ensure_local_identities(data_dir, services=(), operators=((p.name, "example"),))
        files = local.person_identity_paths(data_dir, p.name)
    elif p.kind == "site":
        files = local.site_identity(data_dir, p.federation, p.site)
    elif p.kind == "bridge":
        files = local.bridge_identity(data_dir, p.federation)
    else:
        raise ValueError(f"no test signer for {p.id}")
    return Signer(files.load())


def publish(bus: Bus, signer: Signer, message: Message, *, causation_id: str | None = None,
            on_behalf_of: str | None = None, occurred_at: datetime | None = None,
            entity: str | None = None) -> Envelope:
    """Send a message signed by `signer`, as a service or agent would."""
    envelope = Envelope.wrap(message, causation_id=causation_id, on_behalf_of=on_behalf_of)
    if occurred_at is not None:
        envelope = envelope.model_copy(update={"occurred_at": occurred_at})
    channel = entity or message.channel
    bus.send(channel, [to_outgoing(envelope, signer=signer, session=channel in SESSION_QUEUES)])
    return envelope.model_copy(update={"issued_by": signer.principal.id})


def raw(bus: Bus, entity: str, body: bytes, *, signer: Signer | None, type_name: str | None,
        federation: str | None = "fed", site: str | None = None,
        issued_by: str | None = None, extra: dict | None = None,
        message_id: str | None = None, session: str | None = "fed",
        tamper: dict | None = None, body_signed: bytes | None = None) -> str:
    """Any bytes, with routing properties, signed (or not) over exactly what is sent —
    for testing what consumers make of malformed or hostile input. `tamper` changes
    properties after signing; `body_signed` is signed instead of the body sent."""
    mid = message_id or str(uuid.uuid4())
    props: dict[str, str] = {"schema": "arcflare.v1",
                             "occurred_at": datetime.now(UTC).isoformat()}
    for key, value in (("type", type_name), ("federation", federation), ("site", site)):
        if value is not None:
            props[key] = value
    if signer is not None:
        props["issued_by"] = issued_by or signer.principal.id
    elif issued_by is not None:
        props["issued_by"] = issued_by
    props.update(extra or {})
    if signer is not None:
        fields = signed_fields(mid, type_name or "", mid, props)
        props[SIGNATURE_PROPERTY] = signer.sign(fields, body if body_signed is None
                                                else body_signed)
        props[CHAIN_PROPERTY] = signer.chain
    props.update(tamper or {})
    bus.send(entity, [OutgoingMessage(body=body, message_id=mid, subject=type_name,
                                      correlation_id=mid, application_properties=props,
                                      session_id=session if entity in SESSION_QUEUES else None)])
    return mid


def author_of(envelope: Envelope) -> str:
    """The principal the permission table lets say this message: its owning service, the
    agent of its site, its federation's bridge; commands come from the default operator."""
    from arcflare.contracts.senders import BRIDGE_TYPES, EVENT_OWNERS, SITE_AGENT_TYPES

    if envelope.type in SITE_AGENT_TYPES:
        return f"site:{envelope.federation}/{envelope.site}"
    if envelope.type in BRIDGE_TYPES:
        return f"bridge:{envelope.federation}"
    if envelope.type in EVENT_OWNERS:
        return f"service:{EVENT_OWNERS[envelope.type]}"
    if envelope.type in ("CommandRejected", "CommandFailed", "MessageRefused",
                         "OutboxMessageParked"):
        return "service:provisioner"
    return envelope.issued_by if envelope.issued_by and ":" not in envelope.issued_by \
        else "admin@arcflare.local"


def send_as_authors(bus: Bus, data_dir: Path, envelopes: list[Envelope],
                    entity: str | None = None) -> None:
    """Send prepared envelopes, each signed by the principal entitled to say it (keeping its
    ids, times and causation), to its channel — site agents' to telemetry."""
    from arcflare.contracts.base import message_class
    from arcflare.contracts.senders import SITE_AGENT_TOPIC, SITE_AGENT_TYPES

    signers: dict[str, Signer] = {}
    for envelope in envelopes:
        author = author_of(envelope)
        signer = signers.get(author) or signers.setdefault(author, signer_for(data_dir, author))
        channel = entity or (SITE_AGENT_TOPIC if envelope.type in SITE_AGENT_TYPES
                             else message_class(envelope.type).channel)
        bus.send(channel, [to_outgoing(envelope, signer=signer,
                                       session=channel in SESSION_QUEUES)])


def identities_in(data_dir: Path) -> Path:
    """The local identities a `local up` would create, in a test's data dir."""
    local.ensure_local_identities(data_dir)
    return data_dir


def as_provisioner(service, event: Message) -> Envelope:
    """Publish an event on a test service's bus as the provisioner signs it (what a service
    under test learns about its federations from)."""
    return publish(service.bus, signer_for(service.settings.data_dir, "service:provisioner"),
                   event)


_THROWAWAY: dict[str, Signer] = {}


def throwaway_signer(principal: str = "service:provisioner") -> Signer:
    """A signer from a root made once per test process, for tests of the wire and mapping
    that only need messages signed, not a consumer that trusts them."""
    if principal not in _THROWAWAY:
        import tempfile

        home = Path(tempfile.mkdtemp(prefix="arcflare-signer-"))
        _THROWAWAY[principal] = signer_for(home, principal)
    return _THROWAWAY[principal]
