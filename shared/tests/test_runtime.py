"""The runtime against the real embedded broker: exactly-once effects, rejections, retries."""
from __future__ import annotations

import json
import time

import pytest
from arcflare.bus.port import MessageLockLost, SubQueue
from arcflare.client import Client
from arcflare.contracts.commands import AddSite, CreateFederation, RemoveSite
from arcflare.contracts.events import SiteProvisioned, SiteRemoved
from arcflare.runtime import Consumer, Rejected, Service, StateStore

from tests.support.signing import raw as signed_raw
from tests.support.signing import signer_for

SIGNERS: dict = {}


@pytest.fixture(autouse=True)
def _signers(settings):
    SIGNERS["operator"] = signer_for(settings.data_dir, "admin@arcflare.local")

SCHEMA = "CREATE TABLE sites (federation TEXT, site TEXT, PRIMARY KEY (federation, site))"
FPR = ":".join(["AB"] * 32)


class Calls:
    def __init__(self):
        self.add_site = 0
        self.failures_left = 0


def add_site(cmd: AddSite, *, uow, calls: Calls) -> None:
    calls.add_site += 1
    if calls.failures_left:
        calls.failures_left -= 1
        raise ConnectionError("kit store unreachable")
    if cmd.site == "forbidden":
        raise Rejected("conflict", "site forbidden exists in another federation")
    uow.write().execute("INSERT INTO sites VALUES (?, ?)", (cmd.federation, cmd.site))
    uow.publish(SiteProvisioned(federation=cmd.federation, site=cmd.site, org=cmd.org,
                                kit_ref="file:/kits/x", cert_fingerprint=FPR,
                                not_after="2027-01-01T00:00:00Z"))


def remove_site(cmd: RemoveSite, *, uow) -> None:
    uow.publish(SiteRemoved(federation=cmd.federation, site=cmd.site))


def make_service(settings, bus, calls, **kwargs) -> Service:
    return Service(
        name="provisioner", settings=settings, bus=bus,
        state=StateStore(settings.data_dir / "provisioner.db", [SCHEMA]),
        consumers=[Consumer("provisioner", handlers={AddSite: add_site, RemoveSite: remove_site})],
        dependencies={"calls": calls}, **kwargs,
    )


def rows(svc):
    with svc.state.connect() as db:
        return db.execute("SELECT federation, site FROM sites").fetchall()


def events(bus, types=None):
    out = []
    for m in bus.peek("events", "cli", max_messages=500):
        if types is None or m.subject in types:
            out.append((m.subject, json.loads(m.body), dict(m.application_properties),
                        m.correlation_id))
    return out


def test_handled_command_changes_state_and_publishes_its_outcome(settings, bus):
    calls = Calls()
    svc = make_service(settings, bus, calls)
    client = Client(settings, bus=bus, issued_by="lead@example.org")
    command_id = client.send(AddSite(federation="fed", site="site-a", org="org_a"))

    svc.drain()

    assert [tuple(r) for r in rows(svc)] == [("fed", "site-a")]
    outcome = client.wait(command_id, timeout=5)
    assert outcome.type == "SiteProvisioned"
    assert outcome.causation_id == command_id and outcome.correlation_id == command_id
    # signed by the service that published it, on behalf of the person who ordered it
    assert outcome.issued_by == "service:provisioner"
    assert outcome.on_behalf_of == "lead@example.org"


def test_a_drain_leaves_no_thread_behind(settings, bus):
    # tests drain and never stop: a renewer left running would hold the bus, its
    # connections and its sockets for the rest of the session
    import threading

    svc = make_service(settings, bus, Calls())
    before = {t for t in threading.enumerate() if t.name == "lock-renewer"}

    svc.drain()

    assert {t for t in threading.enumerate() if t.name == "lock-renewer"} <= before


def test_a_service_closes_the_bus_it_owns_and_only_that_one(settings, tmp_path):
    from arcflare.bus.port import BusError
    from arcflare.bus.sqlite import SqliteBus

    shared, own = SqliteBus(tmp_path / "shared.db"), SqliteBus(tmp_path / "own.db")
    for bus, owns in ((shared, False), (own, True)):
        svc = make_service(settings, bus, Calls(), owns_bus=owns)
        svc.start()
        svc.stop()

    assert shared.peek("provisioner") == []  # still open for whoever lent it
    with pytest.raises(BusError, match="closed"):
        own.peek("provisioner")
    shared.close()


def test_redelivery_after_a_lost_settlement_has_no_second_effect(settings, bus):
    """The handler commits, then the lock is lost before complete (a crash between the
    two): the broker redelivers and the inbox completes it without running the handler."""
    calls = Calls()

    class LosesFirstComplete:
        def __init__(self, inner):
            self.inner, self.lost = inner, False

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def complete(self, message):
            if not self.lost:
                self.lost = True
                raise MessageLockLost("lock expired")
            self.inner.complete(message)

    svc = make_service(settings, LosesFirstComplete(bus), calls)
    Client(settings, bus=bus).send(AddSite(federation="fed", site="site-a", org="org_a"))
    svc.drain()
    time.sleep(1.2)  # the topology's lock duration: the message comes back
    svc.drain()

    assert calls.add_site == 1
    assert len(events(bus, {"SiteProvisioned"})) == 1
    assert bus.peek("provisioner", max_messages=10) == []


def test_transient_failure_is_retried_then_succeeds(settings, bus):
    calls = Calls()
    calls.failures_left = 1
    svc = make_service(settings, bus, calls)
    Client(settings, bus=bus).send(AddSite(federation="fed", site="site-a", org="org_a"))
    svc.drain()
    svc.drain()
    assert calls.add_site == 2
    assert [tuple(r) for r in rows(svc)] == [("fed", "site-a")]


def test_a_command_that_always_fails_ends_with_command_failed_and_a_dead_letter(settings, bus):
    calls = Calls()
    calls.failures_left = 100
    svc = make_service(settings, bus, calls)
    client = Client(settings, bus=bus)
    command_id = client.send(AddSite(federation="fed", site="site-a", org="org_a"))

    for _ in range(5):
        svc.drain()

    dead = bus.peek("provisioner", max_messages=10, sub_queue=SubQueue.DEAD_LETTER)
    assert [m.dead_letter_reason for m in dead] == ["RetriesExhausted"]
    assert "ConnectionError: kit store unreachable" in dead[0].dead_letter_error_description
    assert calls.add_site == 3  # the topology's max delivery count: the last one is ours
    assert rows(svc) == []
    outcome = client.wait(command_id, timeout=5)  # --wait always ends
    assert outcome.type == "CommandFailed"
    assert outcome.payload["reason"] == "retries_exhausted"
    assert outcome.payload["deliveries"] == 3
    assert "kit store unreachable" in outcome.payload["detail"]


def test_handler_rejection_dead_letters_and_answers_command_rejected(settings, bus):
    svc = make_service(settings, bus, Calls())
    client = Client(settings, bus=bus)
    command_id = client.send(AddSite(federation="fed", site="forbidden", org="org_a"))
    svc.drain()
    outcome = client.wait(command_id, timeout=5)
    assert outcome.type == "CommandRejected"
    assert outcome.payload["reason"] == "conflict"
    assert outcome.payload["command_id"] == command_id
    dead = bus.peek("provisioner", max_messages=10, sub_queue=SubQueue.DEAD_LETTER)
    assert [(m.message_id, m.dead_letter_reason) for m in dead] == [(command_id, "conflict")]


def raw(bus, body: bytes, subject: str | None, props: dict, session="fed",
        signer=None) -> str:
    """Bytes on the provisioner queue, signed by the default operator over exactly them."""
    extra = {k: v for k, v in props.items() if k not in ("type", "federation")}
    return signed_raw(bus, "provisioner", body, signer=signer or SIGNERS["operator"],
                      type_name=props.get("type", subject), federation=props.get("federation"),
                      extra=extra, session=session)


@pytest.mark.parametrize(
    ("body", "subject", "props", "reason", "field"),
    [
        (b"\x00\xff\x13garbage", "AddSite", {"type": "AddSite"}, "InvalidBody", None),
        (b"{oops", "AddSite", {"type": "AddSite"}, "InvalidJson", None),
        (b"{}", "LaunchRockets", {"type": "LaunchRockets"}, "unknown_type", None),
        (json.dumps({"federation": "fed", "site": "a/b", "org": "o"}).encode(), "AddSite",
         {"type": "AddSite", "federation": "fed"}, "invalid", "site"),
        (json.dumps({"federation": "fed", "site": "a", "org": "o", "extra": 1}).encode(),
         "AddSite", {"type": "AddSite"}, "invalid", "extra"),
        (json.dumps({"federation": "fed", "site": "a"}).encode(), "CreateFederation",
         {"type": "CreateFederation"}, "invalid", "name"),
    ],
)
def test_bad_input_is_dead_lettered_with_a_reason_and_rejected(settings, bus, body, subject,
                                                                props, reason, field):
    svc = make_service(settings, bus, Calls())
    client = Client(settings, bus=bus)
    mid = raw(bus, body, subject, props)

    svc.drain()

    dead = bus.peek("provisioner", max_messages=10, sub_queue=SubQueue.DEAD_LETTER)
    assert [(m.message_id, m.dead_letter_reason) for m in dead] == [(mid, reason)]
    assert dead[0].dead_letter_error_description
    outcome = client.wait(mid, timeout=5, command_type=subject)
    assert outcome.type == "CommandRejected"
    assert outcome.payload["command_id"] == mid and outcome.payload["reason"] == reason
    if field:
        assert field in [e["field"] for e in outcome.payload["errors"]]


def test_a_resubmitted_rejected_command_runs_again_under_the_original_id(settings, bus):
    """The cause of a rejection may be fixed since (here: the site no longer conflicts); the
    resubmitted copy has a new id, but the inbox and the answer name the original."""
    calls = Calls()
    svc = make_service(settings, bus, calls)
    client = Client(settings, bus=bus)
    command_id = client.send(AddSite(federation="fed", site="forbidden", org="org_a"))
    svc.drain()
    assert client.wait(command_id, timeout=5).type == "CommandRejected"

    copy_id = bus.resubmit_dead_letter("provisioner", command_id)
    svc.drain()

    assert copy_id != command_id and calls.add_site == 2  # it ran again
    rejected = [p for _, p, _, _ in events(bus, {"CommandRejected"})]
    assert [r["command_id"] for r in rejected] == [command_id, command_id]
    dead = bus.peek("provisioner", max_messages=10, sub_queue=SubQueue.DEAD_LETTER)
    assert [m.message_id for m in dead] == [copy_id]
    assert dead[0].application_properties["original_message_id"] == command_id


def test_a_command_that_failed_runs_again_when_resubmitted_once_the_cause_is_fixed(settings,
                                                                                    bus):
    calls = Calls()
    calls.failures_left = 100
    svc = make_service(settings, bus, calls)
    client = Client(settings, bus=bus)
    command_id = client.send(AddSite(federation="fed", site="site-a", org="org_a"))
    for _ in range(5):
        svc.drain()
    assert client.wait(command_id, timeout=5).type == "CommandFailed"
    calls.failures_left = 0  # the kit store is back

    bus.resubmit_dead_letter("provisioner", command_id)
    svc.drain()

    assert [tuple(r) for r in rows(svc)] == [("fed", "site-a")]
    [provisioned] = [p for _, p, props, _ in events(bus, {"SiteProvisioned"})]
    assert provisioned["site"] == "site-a"
    assert bus.peek("provisioner", max_messages=5, sub_queue=SubQueue.DEAD_LETTER) == []


def test_a_resubmitted_unproven_command_is_refused_again_without_running(settings, bus):
    calls = Calls()
    svc = make_service(settings, bus, calls)
    body = AddSite(federation="fed", site="a", org="o").model_dump_json().encode()
    mid = signed_raw(bus, "provisioner", body, signer=None, type_name="AddSite",
                     issued_by="admin@arcflare.local")
    svc.drain()
    bus.resubmit_dead_letter("provisioner", mid)
    svc.drain()

    assert calls.add_site == 0
    assert len(events(bus, {"CommandRejected"})) == 1  # the same proof, the same answer
    dead = bus.peek("provisioner", max_messages=10, sub_queue=SubQueue.DEAD_LETTER)
    assert [m.dead_letter_reason for m in dead] == ["Unauthenticated"]


def test_authorization_hook_refusals_are_forbidden_rejections(settings, bus):
    def only_leads(envelope, message, *, uow):
        if envelope.issued_by != "lead@example.org":
            raise Rejected("Forbidden", f"{envelope.issued_by} may not {envelope.type}")

    svc = make_service(settings, bus, Calls(), authorize=only_leads)
    client = Client(settings, bus=bus, issued_by="member@example.org")
    command_id = client.send(AddSite(federation="fed", site="site-a", org="org_a"))
    svc.drain()
    outcome = client.wait(command_id, timeout=5)
    assert (outcome.type, outcome.payload["reason"]) == ("CommandRejected", "Forbidden")
    assert rows(svc) == []


def test_commands_of_one_federation_are_handled_in_order(settings, bus):
    seen = []

    def record(cmd, *, uow):
        seen.append(cmd.site)

    svc = Service(name="provisioner", settings=settings, bus=bus,
                  state=StateStore(settings.data_dir / "t.db"),
                  consumers=[Consumer("provisioner", handlers={AddSite: record})])
    client = Client(settings, bus=bus)
    names = [f"s{i}" for i in range(20)]
    for name in names:
        client.send(AddSite(federation="fed", site=name, org="o"))
    svc.start()
    try:
        deadline = time.monotonic() + 15
        while len(seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop()
    assert seen == names


def test_create_federation_is_routed_by_its_name(settings, bus):
    client = Client(settings, bus=bus)
    client.send(CreateFederation(
        name="hospitals", sites=[{"name": "a", "org": "o"}],
        admins=[{"email": "a@b.org", "org": "o", "role": "project_admin"}]))
    session = bus.accept_session("provisioner", max_wait=1)
    assert session.session_id == "hospitals"
    session.close()


def test_a_thread_that_holds_up_the_stop_is_named_with_where_it_waits(settings, bus,
                                                                        monkeypatch):
    import threading

    from arcflare.runtime import service as service_module
    from structlog.testing import capture_logs

    monkeypatch.setattr(service_module, "STOP_PATIENCE_S", 0.2)
    released = threading.Event()

    def stubborn_watch(stop: threading.Event) -> None:
        stop.wait()
        released.wait(1.0)  # a call that does not heed the stop, e.g. a slow remote API

    stubborn_watch.__name__ = "stubborn_watch"
    svc = make_service(settings, bus, Calls(), background=[stubborn_watch])
    svc.start()
    with capture_logs() as logs:
        svc.stop(timeout=5)

    waits = {e["thread"]: e for e in logs if e["event"] == "stopping: still waiting for a thread"}
    # (a consumer inside its 0.25 s receive wait may be named too at this short patience)
    assert "released.wait(1.0)" in waits["stubborn_watch"]["where"]
