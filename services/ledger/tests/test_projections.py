"""The read model and the audit trail, fed directly (no bus): semantics and replay idempotence."""
from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

from arcflare.cli.status_view import participants_table
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger import queries
from arcflare.ledger.projections import Retention, record
from arcflare.ledger.tables import MIGRATIONS
from rich.console import Console

from .conftest import T0

FED = "hospitals"
NOW = T0 + timedelta(minutes=1)


def ledger_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS:
        db.executescript(migration)
    return db


def feed(db: sqlite3.Connection, envelopes: list[Envelope],
         retention: Retention | None = None) -> None:
    for envelope in envelopes:
        db.execute("BEGIN IMMEDIATE")  # one transaction per event, as the runtime does
        record(db, envelope, retention or Retention())
        db.execute("COMMIT")


def test_replaying_everything_twice_shuffled_gives_the_same_read_model(
    tmp_path: Path, events: list[Envelope]
) -> None:
    in_order, replayed = ledger_db(tmp_path / "a.db"), ledger_db(tmp_path / "b.db")
    retention = Retention(log_tails_per_site=3)
    twice = events + events
    random.Random(7).shuffle(twice)

    feed(in_order, sorted(events, key=lambda env: env.occurred_at), retention)
    feed(replayed, twice, retention)

    assert queries.snapshot(replayed) == queries.snapshot(in_order)
    assert queries.federation(replayed, FED, NOW) == queries.federation(in_order, FED, NOW)


def test_many_shuffles_agree(tmp_path: Path, events: list[Envelope]) -> None:
    reference = ledger_db(tmp_path / "ref.db")
    feed(reference, events, Retention(log_tails_per_site=2))
    expected = queries.snapshot(reference)

    for seed in range(5):
        order = list(events)
        random.Random(seed).shuffle(order)
        db = ledger_db(tmp_path / f"{seed}.db")
        feed(db, order, Retention(log_tails_per_site=2))
        assert queries.snapshot(db) == expected, f"shuffle {seed} differs"


def test_sites_join_the_agent_and_the_server_views(tmp_path: Path, events: list[Envelope]) -> None:
    db = ledger_db(tmp_path / "l.db")
    feed(db, events)

    sites = {s["site"]: s for s in queries.federation(db, FED, NOW)["sites"]}

    north, south = sites["north-1"], sites["south-1"]
    assert north["health"] == "connected"
    assert (north["condition"], north["diagnosis_code"]) == ("connected", "registered")
    assert north["server_view"] == "registered"
    assert north["last_connect_time"] == "2026-11-29T08:00:30.000000Z"
    assert north["last_heartbeat"] == "2026-11-29T08:00:45.000000Z"
    assert (north["lifecycle"], north["generation"]) == ("started", 1)
    assert south["lifecycle"] == "deploy_failed"
    assert (south["condition"], south["diagnosis_code"]) == ("failed", "deploy_failed")
    assert "no python3" in south["diagnosis"]
    assert south["server_view"] == "not registered"
    assert south["cert_days_left"] == 360


def test_an_agent_up_but_unregistered_site_gets_a_diagnosis(
    tmp_path: Path, events: list[Envelope], enveloped
) -> None:
    db = ledger_db(tmp_path / "l.db")
    redeployed = e.SiteDeployed(federation=FED, site="south-1", backend="local", handle="77",
                                generation=2)
    beat = e.SiteHeartbeat(federation=FED, site="south-1", status="connected", pid=7)
    feed(db, [*events, enveloped(redeployed, "cmd-redeploy", 90), enveloped(beat, None, 100)])

    south = {s["site"]: s for s in queries.federation(db, FED)["sites"]}["south-1"]

    assert south["server_view"] == "not registered"
    assert south["diagnosis"] == queries.NEVER_REGISTERED
    assert south["diagnosis_code"] == "never_registered"


def test_jobs_keep_their_final_state_history_and_metrics(
    tmp_path: Path, events: list[Envelope]
) -> None:
    db = ledger_db(tmp_path / "l.db")
    feed(db, events)

    job = queries.job(db, FED, "job-1")

    assert job["status"] == "FINISHED:COMPLETED"
    assert [h["status"] for h in job["history"]] == [
        "SUBMITTED", "RUNNING", "FINISHED:COMPLETED", "RUNNING"]
    assert job["final_metrics"] == [{"site": "north-1", "key": "accuracy", "value": 0.9, "step": 3}]
    assert job["model_name"] == "fedavg-model"
    # a job that never got an NVFlare id is known by the SubmitJob's id
    unsubmitted = [j for j in queries.jobs(db, FED) if j["job_id"] == "cmd-submit-2"]
    assert unsubmitted[0]["status"] == "FAILED_TO_SUBMIT"


def test_log_tails_are_capped_per_site_keeping_the_newest(
    tmp_path: Path, events: list[Envelope]
) -> None:
    db = ledger_db(tmp_path / "l.db")
    feed(db, events, Retention(log_tails_per_site=2))

    tails = queries.log_tails(db, FED, "north-1")

    assert [t["lines"] for t in tails] == [["line 3"], ["line 4"]]


def test_alerts_are_listed(tmp_path: Path, events: list[Envelope]) -> None:
    db = ledger_db(tmp_path / "l.db")
    feed(db, events)

    assert [a["rule"] for a in queries.alerts(db)] == ["deployment-failed"]


def test_sites_heard_from_before_their_federation_are_still_shown(tmp_path: Path,
                                                                   enveloped) -> None:
    db = ledger_db(tmp_path / "l.db")
    feed(db, [enveloped(e.SiteHeartbeat(federation="late", site="a", status="starting"), None, 1)])

    shown = queries.federation(db, "late")

    assert shown["lifecycle"] is None
    assert [s["site"] for s in shown["sites"]] == ["a"]
    assert queries.federation(db, "never") is None


def test_a_site_whose_data_vanished_stays_degraded_with_its_diagnosis_and_shows_as_a_warning(
    tmp_path: Path, events: list[Envelope], enveloped
) -> None:
    db = ledger_db(tmp_path / "l.db")
    diagnosis = "Data input records is missing: this site's jobs cannot read it."
    changed = e.SiteHealthChanged(federation=FED, site="north-1", status="degraded",
                                  previous="connected", diagnosis=diagnosis,
                                  diagnosis_code="data_missing")
    feed(db, [*events, enveloped(changed, None, 100)])

    federation = queries.federation(db, FED, NOW)
    north = {s["site"]: s for s in federation["sites"]}["north-1"]
    console = Console(record=True, width=100, force_terminal=True, color_system="standard")
    console.print(participants_table(federation))

    assert north["health"] == "degraded" and north["diagnosis"] == diagnosis
    assert (north["condition"], north["diagnosis_code"]) == ("degraded", "data_missing")
    assert "\x1b[33mdegraded" in console.export_text(styles=True)  # yellow, as misconfigured


def waiting(connected: list[str], seconds: float, enveloped) -> Envelope:
    return enveloped(e.JobWaitingForClients(
        federation=FED, name="fedavg", min_clients=2, clients_timeout_s=300,
        clients_deadline=T0 + timedelta(seconds=310), connected=connected), "cmd-wait", seconds)


def test_a_job_waiting_for_clients_goes_on_under_its_nvflare_id_in_either_order(
    tmp_path: Path, enveloped
) -> None:
    submitted = enveloped(e.JobSubmitted(federation=FED, job_id="job-7", name="fedavg",
                                         sites=["north-1", "south-1"]), "cmd-wait", 40)
    stream = [waiting([], 10, enveloped), waiting(["north-1"], 20, enveloped), submitted]

    for n, order in enumerate([stream, stream[::-1]]):
        db = ledger_db(tmp_path / f"{n}.db")
        feed(db, order)
        assert [(j["job_id"], j["status"]) for j in queries.jobs(db, FED)] == [
            ("job-7", "SUBMITTED")]

    only_waiting = ledger_db(tmp_path / "w.db")
    feed(only_waiting, stream[:2])
    [job] = queries.jobs(only_waiting, FED)
    assert (job["job_id"], job["status"]) == ("cmd-wait", "WAITING_FOR_CLIENTS")
    assert job["submitted_at"] == "2026-11-29T08:00:10.000000Z"  # accepted, not last heard


def test_a_wait_that_times_out_ends_the_job_failed_with_the_particulars(
    tmp_path: Path, enveloped
) -> None:
    failed = enveloped(e.JobFailed(federation=FED, name="fedavg", reason="clients_timeout",
                                   detail="1 of min_clients=2 connected within 300 s"),
                       "cmd-wait", 311)
    db = ledger_db(tmp_path / "t.db")
    feed(db, [failed, waiting(["north-1"], 20, enveloped)])

    [job] = queries.jobs(db, FED)
    assert (job["job_id"], job["status"]) == ("cmd-wait", "FAILED_TO_SUBMIT")
    assert job["reason"] == "clients_timeout: 1 of min_clients=2 connected within 300 s"
