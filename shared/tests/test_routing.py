"""A service whose handler tables, subscriptions and wiring disagree refuses to start."""
from __future__ import annotations

import pytest
from arcflare.contracts.commands import AddSite, SubmitJob
from arcflare.contracts.events import JobCompleted, SiteProvisioned
from arcflare.contracts.topology import TOPOLOGY
from arcflare.runtime import Consumer, Service, StateStore
from arcflare.runtime.routing import MisroutedService, routing_problems


def noop(message, *, uow) -> None:
    pass


def needs_kit_store(message, *, uow, kit_store) -> None:
    pass


def test_a_type_that_never_travels_on_the_consumed_entity_is_named():
    problems = routing_problems([Consumer("provisioner", handlers={SubmitJob: noop})], {},
                                TOPOLOGY)
    assert problems == [("provisioner: handles SubmitJob, which travels on job-controller, "
                        "not provisioner")]


def test_a_type_the_subscriptions_rules_never_deliver_is_named():
    problems = routing_problems(
        [Consumer("events", subscription="metrics-relay",
                  handlers={SiteProvisioned: noop, JobCompleted: noop})], {}, TOPOLOGY)
    assert any("handles SiteProvisioned, but the subscription's rules never deliver it" in p
               for p in problems)


def test_a_delivered_type_with_no_handler_is_named():
    problems = routing_problems(
        [Consumer("events", subscription="metrics-relay", handlers={JobCompleted: noop})],
        {}, TOPOLOGY)
    assert sorted(problems) == [
        ("events/metrics-relay: the subscription delivers JobStatusChanged, which no handler "
        "takes; handle it or drop it from the subscription's rules"),
        ("events/metrics-relay: the subscription delivers JobSubmitted, which no handler "
        "takes; handle it or drop it from the subscription's rules"),
    ]


def test_an_unwired_dependency_fails_at_start_not_at_the_first_message(settings, bus):
    with pytest.raises(MisroutedService, match="needs_kit_store needs kit_store"):
        Service(name="provisioner", settings=settings, bus=bus,
                state=StateStore(settings.data_dir / "p.db"),
                consumers=[Consumer("provisioner", handlers={AddSite: needs_kit_store})])


def test_every_service_as_bootstrapped_is_routed_consistently(tmp_path):
    """The real services: tables, topology and wiring agree (else none of them starts)."""
    import importlib

    from arcflare.trust.local import ensure_local_identities

    ensure_local_identities(tmp_path)
    for name in ("provisioner", "deployer", "job_controller", "metrics_relay", "alerter",
                 "ledger"):
        bootstrap = importlib.import_module(f"arcflare.{name}.bootstrap").bootstrap
        settings_module = importlib.import_module(f"arcflare.{name}.settings")
        settings_class = next(getattr(settings_module, n) for n in dir(settings_module)
                              if n.endswith("Settings") and n != "Settings")
        service = bootstrap(settings_class(data_dir=tmp_path))
        service.bus.close()
