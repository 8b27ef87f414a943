"""ARCFLARE_CERT_AUTO_RENEW_DAYS: the provisioner renews certificates on its own, in time."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arcflare.contracts.commands import RemoveSite
from arcflare.provisioner.auto_renewal import renew_due
from arcflare.provisioner.bootstrap import bootstrap, load_issuer

from .conftest import ADMIN, Harness, federation_spec, harness_on, make_settings

AHEAD = 30


@pytest.fixture
def renewing(tmp_path: Path) -> Iterator[Harness]:
    with harness_on(make_settings(tmp_path / "data", cert_auto_renew_days=AHEAD)) as running:
        yield running


def renew_as_of(harness: Harness, now: datetime) -> datetime | None:
    service = harness.service
    next_due = renew_due(service.state, service.dependencies["kit_store"],
                         service.dependencies["artifacts"], load_issuer(harness.settings),
                         harness.settings, now=now)
    service.drain(timeout=10)
    return next_due


def renewed(harness: Harness) -> dict[str, dict]:
    return {e.payload["participant"]: e.payload for e in harness.published()
            if e.type == "CertificateRenewed"}


def test_certificates_are_renewed_automatically_ahead_of_their_end(renewing):
    # Prepare: a CA of ten years, so a renewal extends NVFlare's 360-day certificates
    created = renewing.run(federation_spec(sites=2, cert_validity_days=3650))
    renewing.run(RemoveSite(federation="demo", site="site-2"))
    site_not_after = datetime.fromisoformat(
        renewing.caused_by(created)[1].payload["not_after"])

    # Execute: nothing is due today; AHEAD days before the end, everything is
    early = renew_as_of(renewing, datetime.now(UTC))
    nothing = renewed(renewing)
    renew_as_of(renewing, site_not_after - timedelta(days=AHEAD - 1))

    # Assert
    assert nothing == {}
    assert early is not None and abs(early - (site_not_after - timedelta(days=AHEAD))) \
        < timedelta(minutes=1)
    done = renewed(renewing)
    assert sorted(done) == sorted([ADMIN, "lead@hospital.org", "server", "site-1"])
    assert all(p["automatic"] and p["if_job_running"] == "wait" for p in done.values())
    assert not any(p["limited_by_ca"] for p in done.values())


def test_certificates_their_ca_does_not_outlive_are_left_to_the_ca_warning(renewing):
    # the default CA term is NVFlare's certificate term: no renewal could extend them
    created = renewing.run(federation_spec(sites=1))
    not_after = datetime.fromisoformat(renewing.caused_by(created)[1].payload["not_after"])

    next_due = renew_as_of(renewing, not_after - timedelta(days=1))

    assert renewed(renewing) == {}
    assert next_due is None


def test_the_service_renews_only_when_asked_to(tmp_path):
    def tasks(**extra) -> list[str]:
        service = bootstrap(make_settings(tmp_path / "data", **extra))
        try:
            return [task.__name__ for task in service.background]
        finally:
            service.stop(timeout=5)

    assert "renew_certificates_ahead_of_expiry" not in tasks()
    assert "renew_certificates_ahead_of_expiry" in tasks(cert_auto_renew_days=AHEAD)
