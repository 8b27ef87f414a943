"""The participants in the read model: lifecycle in the deployer's order, the server's
process and engine apart, certificates and diagnosis codes. Fed directly (no bus)."""
from __future__ import annotations

import itertools
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger import queries
from arcflare.ledger.tables import MIGRATIONS

from .conftest import FED, FP, OWNER, T0, outcome, provisioning
from .test_projections import feed, ledger_db

NOW = T0 + timedelta(minutes=5)


def server_deployed(generation: int, seconds: float) -> Envelope:
    return outcome(e.ServerDeployed(federation=FED, endpoint="localhost:8102", backend="local",
                                    handle=f"pid-{generation}", generation=generation),
                   f"deploy-{generation}", seconds, on_behalf_of=OWNER)


def server_stopped(generation: int, seconds: float, reason: str = "requested") -> Envelope:
    # how the deployer reports a server that went away with the stack (`local down`)
    return outcome(e.SiteStopped(federation=FED, site="server", reason=reason,
                                 generation=generation), None, seconds)


def idle_observation(seconds: float) -> Envelope:
    return outcome(e.FederationStatusObserved(
        federation=FED, server_status="stopped",
        clients=[e.ClientView(name="north-1", last_connect_time=T0 + timedelta(seconds=30))],
    ), None, seconds)


def server_of(tmp_path: Path, name: str, envelopes: list[Envelope]) -> dict:
    db = ledger_db(tmp_path / f"{name}.db")
    feed(db, envelopes)
    return queries.federation(db, FED, NOW)


@pytest.mark.parametrize("clock_skew_s", [0, -30], ids=["clocks-agree", "start-stamped-earlier"])
def test_stop_then_start_reads_running_in_either_arrival_order(tmp_path: Path,
                                                               clock_skew_s: float) -> None:
    # the stop of generation 1 is reported by the restarted deployer while generation 2
    # starts; with a skewed clock the start even carries the earlier timestamp
    stop, start = server_stopped(1, 60), server_deployed(2, 64 + clock_skew_s)
    before = [*provisioning(), server_deployed(1, 5)]

    answers = [server_of(tmp_path, f"order{n}", [*before, *order])
               for n, order in enumerate(itertools.permutations([stop, start]))]

    for fed in answers:
        assert fed["server"]["lifecycle"] == "running"
        assert fed["server"]["generation"] == 2
        assert fed["lifecycle"] == "running"
    assert answers[0] == answers[1]


def test_a_site_restarted_in_a_new_generation_reads_started_in_either_order(
        tmp_path: Path) -> None:
    crash = outcome(e.SiteStopped(federation=FED, site="north-1", reason="crashed",
                                  generation=3), None, 100)
    again = outcome(e.SiteDeployed(federation=FED, site="north-1", backend="local", handle="9",
                                   generation=4), "cmd-deploy", 90)

    for n, order in enumerate(itertools.permutations([crash, again])):
        site = {s["site"]: s for s in server_of(tmp_path, f"s{n}", [*provisioning(), *order])
                ["sites"]}["north-1"]
        assert (site["lifecycle"], site["generation"]) == ("started", 4)


def test_within_one_generation_failure_then_running_then_stopped(tmp_path: Path) -> None:
    failed = outcome(e.DeploymentFailed(federation=FED, target="server", reason="port taken",
                                        generation=2), "try-1", 50)
    running = server_deployed(2, 40)  # a retry of the same generation, stamped earlier
    stopped = server_stopped(2, 30)

    assert server_of(tmp_path, "a", [failed, running])["server"]["lifecycle"] == "running"
    assert server_of(tmp_path, "b", [stopped, failed, running])["server"]["lifecycle"] == "stopped"


def test_an_idle_server_reads_running_and_idle(tmp_path: Path) -> None:
    fed = server_of(tmp_path, "idle", [*provisioning(), server_deployed(1, 5),
                                       idle_observation(20)])

    server = fed["server"]
    assert (server["lifecycle"], server["engine"]) == ("running", "idle")
    assert (server["health"], server["diagnosis_code"]) == ("idle", "serving")
    assert server["engine_status"] == "stopped"  # NVFlare's own word, kept verbatim
    assert (server["registered"], server["expected"]) == (1, 2)
    assert fed["server_status"] == "stopped" and fed["engine"] == "idle"


def test_a_server_running_a_job_and_a_stopped_one(tmp_path: Path) -> None:
    busy = outcome(e.FederationStatusObserved(federation=FED, server_status="started",
                                              clients=[], running_jobs=["job-1"]), None, 20)

    running = server_of(tmp_path, "busy", [server_deployed(1, 5), busy])["server"]
    stopped = server_of(tmp_path, "down", [server_deployed(1, 5), busy,
                                           server_stopped(1, 30)])["server"]

    assert (running["lifecycle"], running["engine"]) == ("running", "running job")
    assert (stopped["lifecycle"], stopped["engine"]) == ("stopped", None)
    assert (stopped["health"], stopped["diagnosis_code"]) == ("stopped", "stopped")


def test_a_job_reported_ended_since_the_last_observation_no_longer_runs(tmp_path: Path) -> None:
    busy = outcome(e.FederationStatusObserved(federation=FED, server_status="started",
                                              clients=[], running_jobs=["job-1"]), None, 20)
    ended = outcome(e.JobCompleted(federation=FED, job_id="job-1", name="x",
                                   status="FINISHED:COMPLETED", duration_s=9), "cmd-submit", 25)

    fed = server_of(tmp_path, "e", [server_deployed(1, 5), busy, ended])

    assert (fed["server"]["engine"], fed["engine"]) == ("idle", "idle")
    assert fed["server"]["engine_status"] == "started"  # what NVFlare said, kept verbatim


def test_what_a_stopped_server_saw_is_no_longer_news(tmp_path: Path) -> None:
    fed = server_of(tmp_path, "gone", [*provisioning(), server_deployed(1, 5),
                                       idle_observation(20), server_stopped(1, 30)])

    assert fed["server"]["registered"] is None
    assert {s["server_view"] for s in fed["sites"]} == {"unknown"}


def test_teardown_ends_the_server_of_its_generation(tmp_path: Path) -> None:
    torn = outcome(e.FederationTornDown(federation=FED, stopped=["server"], server_generation=1),
                   "cmd-teardown", 30)

    fed = server_of(tmp_path, "t", [*provisioning(), server_deployed(1, 5), torn])
    redeployed = server_of(tmp_path, "r", [*provisioning(), server_deployed(1, 5), torn,
                                           server_deployed(2, 29)])

    assert fed["lifecycle"] == "torn_down"
    assert fed["server"]["diagnosis_code"] == "torn_down"
    assert redeployed["lifecycle"] == "running"


def test_certificate_days_left_for_every_participant_the_ca_and_the_server(
        tmp_path: Path) -> None:
    renewed = outcome(e.CertificateExpiring(
        federation=FED, participant="north-1", kind="client", fingerprint="CD:" * 31 + "CD",
        not_after=T0 + timedelta(days=400, hours=1), days_left=400), None, 3)

    fed = server_of(tmp_path, "c", [renewed, *provisioning()])  # the renewal arrives first

    assert fed["ca"]["days_left"] == 360  # 360 days and 1 hour after T0, read 5 min after
    assert fed["server"]["cert_days_left"] == 360
    days = {s["site"]: s["cert_days_left"] for s in fed["sites"]}
    assert days == {"north-1": 400, "south-1": 360}
    assert {(c["participant"], c["kind"]) for c in fed["certificates"]} == {
        ("rootCA", "ca"), ("server", "server"), ("north-1", "client"), ("south-1", "client")}
    assert fed["as_of"] == "2026-11-29T08:05:00.000000Z"


@pytest.mark.parametrize("renewal_first", [False, True], ids=["in-order", "renewal-first"])
def test_a_renewal_replaces_the_certificate_even_when_the_ca_keeps_its_end(
        tmp_path: Path, renewal_first: bool) -> None:
    # the CA ends with the old certificate, so the renewed one ends the same moment
    not_after = T0 + timedelta(days=360, hours=1)
    new_fp = "EF:" * 31 + "EF"
    renewals = [outcome(e.CertificateRenewed(
        federation=FED, participant=participant, kind=kind, old_fingerprint=FP,
        new_fingerprint=new_fp, not_after=not_after, kit_ref=f"kits/{participant}/2",
        limited_by_ca=True), "cmd-renew", 40) for participant, kind in
        (("north-1", "client"), ("server", "server"), (OWNER, "admin"))]
    given = provisioning()
    given[0] = given[0].model_copy(update={"payload": {
        **given[0].payload, "admin_certificates": [
            {"participant": OWNER, "fingerprint": FP, "not_after": not_after.isoformat()}]}})
    stream = [*renewals, *given] if renewal_first else [*given, *renewals]

    fed = server_of(tmp_path, "r", stream)

    fingerprints = {c["participant"]: c["fingerprint"] for c in fed["certificates"]}
    assert fingerprints == {"rootCA": FP, "server": new_fp, "north-1": new_fp,
                            "south-1": FP, OWNER: new_fp}
    north = next(s for s in fed["sites"] if s["site"] == "north-1")
    assert (north["cert_fingerprint"], north["kit_ref"]) == (new_fp, "kits/north-1/2")
    assert north["org"] == "north"


def test_the_deployers_word_wins_over_a_stale_heartbeat(tmp_path: Path) -> None:
    beat = outcome(e.SiteHeartbeat(federation=FED, site="north-1", status="connected",
                                   diagnosis_code="registered"), None, 10)
    stop = outcome(e.SiteStopped(federation=FED, site="north-1", reason="requested",
                                 generation=1), "cmd-stop", 20)
    removed = outcome(e.SiteRemoved(federation=FED, site="south-1"), "cmd-remove", 30)

    sites = {s["site"]: s for s in server_of(tmp_path, "w", [*provisioning(), beat, stop,
                                                             removed])["sites"]}

    assert (sites["north-1"]["condition"], sites["north-1"]["diagnosis_code"]) == (
        "stopped", "stopped")
    assert sites["south-1"]["removed"] is True
    assert sites["south-1"]["diagnosis_code"] == "removed"


def test_diagnosis_codes_come_from_the_agent_or_from_its_health_word(tmp_path: Path) -> None:
    tls = outcome(e.SiteHealthChanged(federation=FED, site="north-1", status="misconfigured",
                                      diagnosis="The TLS handshake failed.",
                                      diagnosis_code="tls_error"), None, 10)
    older_agent = outcome(e.SiteHeartbeat(federation=FED, site="south-1", status="connected",
                                          diagnosis="Registered."), None, 10)
    started = [outcome(e.SiteDeployed(federation=FED, site=s, backend="local", handle="1",
                                      generation=1), None, 5) for s in ("north-1", "south-1")]

    sites = {s["site"]: s for s in server_of(tmp_path, "d", [*provisioning(), *started, tls,
                                                             older_agent])["sites"]}

    assert (sites["north-1"]["condition"], sites["north-1"]["diagnosis_code"]) == (
        "misconfigured", "tls_error")
    assert sites["north-1"]["diagnosis"] == "The TLS handshake failed."
    assert sites["south-1"]["diagnosis_code"] == "registered"


def test_a_provisioned_site_never_deployed_says_so(tmp_path: Path) -> None:
    site = server_of(tmp_path, "n", provisioning())["sites"][0]

    assert (site["condition"], site["diagnosis_code"]) == ("not deployed", "not_deployed")
    assert site["lifecycle"] is None


def test_ledger_data_from_before_the_server_had_a_row_is_migrated(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "v1.db", isolation_level=None)
    old.executescript(MIGRATIONS[0])
    old.execute("INSERT INTO sites (federation, site, lifecycle, lifecycle_v) VALUES"
                " (?, 'server', 'stopped', '0|2026-11-29T08:00:00.000000Z|x')", (FED,))
    old.execute("INSERT INTO sites (federation, site, lifecycle, lifecycle_v) VALUES"
                " (?, 'north-1', 'started', '0|2026-11-29T09:00:00.000000Z|y')", (FED,))

    for migration in MIGRATIONS[1:]:
        old.executescript(migration)
    feed(old, [outcome(e.SiteStopped(federation=FED, site="north-1", reason="requested",
                                     generation=1), None, 1)])

    sites = {s["site"]: s for s in queries.federation(old, FED, NOW)["sites"]}
    assert set(sites) == {"north-1"}
    assert sites["north-1"]["lifecycle"] == "stopped"  # the old clock-ordered version is gone

