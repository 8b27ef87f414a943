"""The outbox relay signs what it sends together once (docs/decisions/0011), and every message
still admits alone; a row that cannot be signed is parked and holds up nothing."""
from __future__ import annotations

from arcflare.bus.codec import PROOF_PROPERTY, SIGNATURE_PROPERTY
from arcflare.contracts.events import SiteRemoved
from arcflare.runtime.admission import Admission
from arcflare.runtime.outbox import OutboxRelay
from arcflare.runtime.state import StateStore
from arcflare.trust import local
from arcflare.trust.jws import Signer
from arcflare.trust.verifier import Verifier, load_anchors

from tests.support.signing import signer_for


def publish(store: StateStore, sites: list[str]) -> list[str]:
    with store.unit_of_work() as uow:
        return [uow.publish(SiteRemoved(federation="fed", site=site)) for site in sites]


def received(bus) -> list:
    messages = []
    while batch := bus.receive("events", "cli", max_messages=50, max_wait=0.2):
        messages += batch
        for message in batch:
            bus.complete(message)
    return messages


class RefusesToSign(Signer):
    """A signer that cannot sign one message (as a signer whose key went missing would not):
    to see the relay's fallback around it."""

    def __init__(self, signer: Signer, message_id: str) -> None:
        super().__init__(signer.identity)
        self.message_id = message_id

    def sign_batch(self, items):
        if any(fields["message_id"] == self.message_id for fields, _ in items):
            raise ValueError("no key for this one")
        return super().sign_batch(items)


def test_messages_relayed_together_share_one_signature_and_each_is_admitted(tmp_path, bus):
    # Prepare
    ids = tmp_path / "ids"
    signer = signer_for(ids, "service:provisioner")
    admission = Admission(Verifier(load_anchors(local.anchors_path(ids))))
    store = StateStore(tmp_path / "state.db")
    sites = [f"site-{n}" for n in range(5)]
    ids_sent = publish(store, sites)

    # Execute
    OutboxRelay(store, bus, signer).relay()
    messages = received(bus)

    # Assert
    assert sorted(m.message_id for m in messages) == sorted(ids_sent)
    assert len({m.application_properties[SIGNATURE_PROPERTY] for m in messages}) == 1
    assert all(m.application_properties[PROOF_PROPERTY] for m in messages)
    admitted = [admission.admit(m, command=False) for m in messages]
    assert sorted(a.message.site for a in admitted) == sites
    assert {a.principal.id for a in admitted} == {"service:provisioner"}


def test_a_message_sent_alone_carries_no_proof(tmp_path, bus):
    # Prepare
    store = StateStore(tmp_path / "state.db")
    publish(store, ["site-1"])

    # Execute
    OutboxRelay(store, bus, signer_for(tmp_path / "ids", "service:provisioner")).relay()

    # Assert
    [message] = received(bus)
    assert PROOF_PROPERTY not in message.application_properties
    assert message.application_properties[SIGNATURE_PROPERTY].count(".") == 2


def test_a_row_that_cannot_be_signed_is_parked_and_the_rest_go(tmp_path, bus):
    # Prepare
    store = StateStore(tmp_path / "state.db")
    first, unsignable, last = publish(store, ["site-1", "site-2", "site-3"])
    signer = RefusesToSign(signer_for(tmp_path / "ids", "service:provisioner"), unsignable)

    # Execute
    OutboxRelay(store, bus, signer).relay()

    # Assert
    sent = {m.message_id for m in received(bus) if m.subject == "SiteRemoved"}
    assert sent == {first, last}
    with store.connect() as db:
        parked = db.execute("SELECT parked FROM _outbox WHERE id = ?", (unsignable,)).fetchone()
    assert "could not be signed" in parked["parked"] and "no key for this one" in parked["parked"]
