"""CertificateExpiring: scheduled before not_after, and announced once at start-up when due."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from arcflare.contracts.commands import RemoveSite
from arcflare.provisioner.bootstrap import bootstrap
from arcflare.provisioner.expiry import announce_expiring

from .conftest import federation_spec, make_settings


def outbox(harness) -> list[tuple[dict, str | None]]:
    with harness.service.state.connect() as db:
        rows = db.execute("SELECT envelope, deliver_at FROM _outbox ORDER BY seq").fetchall()
    return [(json.loads(env), at) for env, at in rows]


def expiring(harness) -> list[tuple[dict, str | None]]:
    return [(env, at) for env, at in outbox(harness) if env["type"] == "CertificateExpiring"]


def test_each_certificate_gets_a_warning_scheduled_30_days_before_not_after(harness):
    harness.run(federation_spec(sites=2))

    scheduled = expiring(harness)
    kinds = sorted((env["payload"]["kind"], env["payload"]["participant"]) for env, _ in scheduled)
    assert kinds == [("admin", "admin@hospital.org"), ("admin", "lead@hospital.org"),
                     ("ca", "rootCA"), ("client", "site-1"), ("client", "site-2"),
                     ("server", "server")]
    for env, deliver_at in scheduled:
        not_after = datetime.fromisoformat(env["payload"]["not_after"])
        assert datetime.fromisoformat(deliver_at) == not_after - timedelta(days=30)
        assert env["payload"]["days_left"] == 30


def test_startup_check_announces_certificates_inside_the_window_once(harness):
    harness.run(federation_spec(sites=1))
    before = len(expiring(harness))
    # a wider window than the one the warnings were scheduled with (e.g. the setting grew)
    wide = timedelta(days=400)

    first = announce_expiring(harness.service.state, wide)
    second = announce_expiring(harness.service.state, wide)

    assert first == 5 and second == 0
    announced = expiring(harness)[before:]
    assert all(at is None for _, at in announced)  # published at once, not scheduled
    assert all(0 < env["payload"]["days_left"] < 400 for env, _ in announced)


def test_startup_check_leaves_certificates_outside_the_window_alone(harness):
    harness.run(federation_spec(sites=1))

    assert announce_expiring(harness.service.state, timedelta(days=30)) == 0


def test_short_lived_certificates_are_announced_when_issued(harness):
    # a CA valid 20 days: every certificate is inside the 30-day window from the start
    harness.run(federation_spec(sites=1, cert_validity_days=20))

    immediate = [env for env, at in expiring(harness) if at is None]
    assert len(immediate) == 5
    assert all(env["payload"]["days_left"] <= 20 for env in immediate)
    assert announce_expiring(harness.service.state, timedelta(days=30),
                             now=datetime.now(UTC)) == 0


def test_the_service_checks_at_start_up(harness, tmp_path):
    # Prepare: provisioned with the default 30-day window, restarted with a 400-day one
    harness.run(federation_spec(sites=1))
    harness.service.stop(timeout=5)
    settings = make_settings(harness.settings.data_dir, cert_expiry_warning_days=400)
    restarted = bootstrap(settings)

    # Execute
    restarted.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(immediate(harness)) < 5:
            time.sleep(0.1)
    finally:
        restarted.stop(timeout=10)

    # Assert
    assert sorted(env["payload"]["kind"] for env in immediate(harness)) == \
        ["admin", "admin", "ca", "client", "server"]


def immediate(harness) -> list[dict]:
    return [env for env, at in expiring(harness) if at is None]



def held_warnings(harness) -> list[str]:
    """The participants whose CertificateExpiring waits in the outbox for its due time."""
    with harness.service.state.connect() as db:
        return sorted(r[0] for r in db.execute(
            "SELECT json_extract(envelope, '$.payload.participant') FROM _outbox "
            "WHERE sent_at IS NULL AND deliver_at IS NOT NULL"))


def test_removing_a_site_withdraws_its_scheduled_warning(harness):
    harness.run(federation_spec(sites=2))
    harness.service.outbox.relay()
    before = held_warnings(harness)

    harness.run(RemoveSite(federation="demo", site="site-1"))
    harness.service.outbox.relay()
    after = held_warnings(harness)

    # six certificates have a warning waiting for its day (CA, server, two admins, two
    # sites); site-1's is withdrawn, and nothing was ever scheduled at the broker
    assert len(before) == 6 and "site-1" in before
    assert after == [p for p in before if p != "site-1"]
    assert all(s.scheduled == 0 for s in harness.service.bus.stats())
    with harness.service.state.connect() as db:
        rows = db.execute("SELECT o.cancel, json_extract(o.envelope, '$.payload.participant') "
                          "FROM _outbox o JOIN certificates c ON c.warning_id = o.id").fetchall()
    assert sorted((p, c) for c, p in rows if c) == [("site-1", "done")]
    again = harness.run(RemoveSite(federation="demo", site="site-1"))
    assert again.type == "SiteRemoved" and held_warnings(harness) == after
