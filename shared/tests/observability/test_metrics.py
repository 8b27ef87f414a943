"""/metrics on a running service's health port: counts by outcome, timings, and the gauges read
when scraped (readiness, outbox backlog, the age of what waits, lock renewals)."""
from __future__ import annotations

import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

from arcflare.client import Client
from arcflare.contracts.commands import AddSite
from arcflare.contracts.events import SiteProvisioned
from arcflare.runtime import Consumer, Service, StateStore
from arcflare.runtime.outbox import OutboxRelay
from prometheus_client.parser import text_string_to_metric_families

from tests.support.signing import raw, signer_for

from .conftest import FPR, add_site

OPERATOR = "lead@example.org"


def started(settings, bus, handler=add_site) -> Service:
    service = Service(
        name="provisioner", settings=settings.model_copy(update={"health_port": 0}), bus=bus,
        state=StateStore(settings.data_dir / "provisioner.db"),
        consumers=[Consumer("provisioner", handlers={AddSite: handler})])
    service.start()
    return service


def scrape(service: Service) -> dict[tuple[str, frozenset], float]:
    port = int((service.settings.run_dir() / f"{service.name}.port").read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def settled(service: Service, timeout: float = 10.0) -> dict[tuple[str, frozenset], float]:
    """The metrics once the outbox has sent everything (a refusal is announced more than once)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(service)
        backlog = value(samples, "arcflare_outbox_backlog_messages", service=service.name)
        if backlog == 0 or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def outcomes(bus, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [m.subject for m in bus.peek("events", "cli", max_messages=100)]
        if len(seen) >= count:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"only {seen} published within {timeout} s")


def test_every_outcome_is_counted_by_consumer_and_type(settings, bus) -> None:
    service = started(settings, bus)
    try:
        before = scrape(service)
        client = Client(settings, bus=bus, issued_by=OPERATOR)
        command_id = client.send(AddSite(federation="fed", site="site-a", org="org_a"))
        client.send(AddSite(federation="fed", site="refused", org="org_a"))
        raw(bus, "provisioner", b"{}", signer=None, type_name="Evil<script>")
        outcomes(bus, 3)
        after = settled(service)
    finally:
        service.stop()

    def delta(name: str, **labels: str) -> float:
        labels = {"service": "provisioner", "consumer": "provisioner", **labels}
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("arcflare_messages_received_total", type="AddSite") == 2
    assert delta("arcflare_messages_handled_total", type="AddSite") == 1
    assert delta("arcflare_messages_rejected_total", type="AddSite", reason="conflict") == 1
    assert delta("arcflare_messages_dead_lettered_total", type="AddSite", reason="conflict") == 1
    # a subject outside the catalogue mints no series of its own
    assert delta("arcflare_messages_received_total", type="unknown") == 1
    assert delta("arcflare_messages_rejected_total", type="unknown",
                 reason="Unauthenticated") == 1
    assert delta("arcflare_message_handling_duration_seconds_count", type="AddSite",
                 outcome="handled") == 1
    assert not any("Evil" in str(key) or command_id in str(key) for key in after)
    assert value(after, "arcflare_service_ready", service="provisioner") == 1
    assert value(after, "arcflare_outbox_backlog_messages", service="provisioner") == 0


def test_a_message_held_by_a_slow_handler_shows_its_age_and_the_lock_renewals(settings, bus):
    running, release = threading.Event(), threading.Event()

    def slow(cmd: AddSite, *, uow) -> None:
        running.set()
        release.wait(20)

    service = started(settings, bus, slow)
    try:
        before = scrape(service)
        Client(settings, bus=bus, issued_by=OPERATOR).send(
            AddSite(federation="fed", site="site-a", org="org_a"))
        assert running.wait(10)
        time.sleep(1.6)  # locks last 1 s here: renewed every 0.5 s
        during = scrape(service)
    finally:
        release.set()
        service.stop()
    age = value(during, "arcflare_consumer_oldest_message_age_seconds",
                service="provisioner", consumer="provisioner")
    assert 1.5 <= age < 30
    renewed = (value(during, "arcflare_lock_renewals_total", service="provisioner",
                     kind="session", result="ok")
               - value(before, "arcflare_lock_renewals_total", service="provisioner",
                       kind="session", result="ok"))
    assert renewed >= 2


def test_the_outbox_backlog_is_what_is_due_and_unsent(settings, bus) -> None:
    state = StateStore(settings.data_dir / "provisioner.db")
    relay = OutboxRelay(state, bus, signer_for(settings.data_dir, "service:provisioner"))
    event = SiteProvisioned(federation="fed", site="site-a", org="org_a", kit_ref="file:/k",
                            cert_fingerprint=FPR, not_after="2027-01-01T00:00:00Z")
    with state.unit_of_work() as uow:
        uow.publish(event)
        uow.publish(event, at=datetime.now(UTC) + timedelta(hours=1))  # not due: not backlog
    later = datetime.now(UTC) + timedelta(seconds=30)

    count, age = relay.backlog(later)
    relay.relay()

    assert count == 1 and 30 <= age < 40
    assert relay.backlog(later) == (0, 0.0)
