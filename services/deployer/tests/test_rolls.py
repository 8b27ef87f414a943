"""Rolling a renewed participant onto its new kit: at once, after its jobs, or not at all.

The deployer service on the embedded bus with its azureml compute (a fake MLClient at the
port boundary): each restart is a new Azure ML job whose kit input shows which kit it runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from arcflare.contracts.commands import DeployServer, DeploySite
from arcflare.contracts.events import CertificateRenewed, JobCompleted, JobSubmitted
from arcflare.deployer.watcher import check_deployments, roll_when_jobs_ended
from dep_fake_ml import aml_deployer, provision_events
from dep_service import FINGERPRINT, publish

from tests.support.signing import publish as signed_publish
from tests.support.signing import signer_for

NEW = ":".join(["CD"] * 32)
SITE_JOB, SERVER_JOB = "arcflare-fedaml-hospital-a", "arcflare-fedaml-server"
NEW_SITE_KIT = "azureml:arcflare-kit-fedaml-hospital-a:2"


@pytest.fixture
def deployed(tmp_path: Path, data_dir: Path):
    """fedaml's server and site running (Azure ML jobs of generation 1)."""
    with aml_deployer(data_dir) as (svc, client, ml, computes):
        provision_events(client, tmp_path)
        svc.drain(timeout=10)
        client.send(DeployServer(federation="fedaml"))
        client.send(DeploySite(federation="fedaml", site="hospital-a"))
        svc.drain(timeout=10)
        run(svc, ml, computes, f"{SERVER_JOB}-1", f"{SITE_JOB}-1")
        yield svc, client, ml, computes


def run(svc, ml, computes, *jobs: str) -> None:
    """Azure ML starts these jobs; the watcher notices."""
    for job in jobs:
        ml.jobs.jobs[job].status = "Running"
    check_deployments(svc.state, computes)
    svc.drain(timeout=10)


def renewed(participant: str = "hospital-a", kind: str = "client", **extra) -> CertificateRenewed:
    kit = NEW_SITE_KIT if kind == "client" else "azureml:arcflare-kit-fedaml-server:2"
    return CertificateRenewed(federation="fedaml", participant=participant, kind=kind,
                              old_fingerprint=FINGERPRINT, new_fingerprint=NEW,
                              not_after="2027-12-01T00:00:00Z", kit_ref=kit, **extra)


def job_event(client, event) -> None:
    signed_publish(client.bus, signer_for(client.settings.data_dir, "service:job-controller"),
                   event)


def job_runs(svc, client) -> None:
    """job-1 runs on the site (as the job-controller announces it)."""
    job_event(client, JobSubmitted(federation="fedaml", job_id="job-1", name="train",
                                   sites=["hospital-a"]))
    svc.drain(timeout=10)


def job_ends(svc, client, computes) -> None:
    """job-1 ends; the watcher's next pass carries out what waited for it."""
    job_event(client, JobCompleted(federation="fedaml", job_id="job-1", name="train",
                                   status="FINISHED:COMPLETED", duration_s=30))
    svc.drain(timeout=10)
    roll_when_jobs_ended(svc.state, computes, svc.dependencies["kits"])
    svc.drain(timeout=10)


def roll_events(client) -> list:
    return [(e.type, e.payload) for e in client.follow(
        types=["ParticipantRolled", "RollPostponed", "RollRefused"], from_start=True,
        until_idle=True, timeout=5)]


def kit_of(ml, job: str) -> str:
    return json.dumps(next(j for j in ml.jobs.submitted if j["name"] == job))


def test_a_running_site_is_restarted_from_its_new_kit_at_once(deployed):
    svc, client, ml, computes = deployed

    publish(client.bus, client.settings.data_dir, renewed())
    svc.drain(timeout=10)
    run(svc, ml, computes, f"{SITE_JOB}-2")

    assert ml.jobs.cancelled == [f"{SITE_JOB}-1"]
    assert NEW_SITE_KIT in kit_of(ml, f"{SITE_JOB}-2")
    (rolled,) = roll_events(client)
    assert rolled == ("ParticipantRolled", {
        "federation": "fedaml", "participant": "hospital-a", "fingerprint": NEW,
        "restarted": True, "generation": 2, "waited_for": [], "sites_restarted": []})


def test_a_site_running_a_job_is_rolled_once_the_job_has_ended(deployed):
    # Prepare: a job runs on the site
    svc, client, ml, computes = deployed
    job_runs(svc, client)

    # Execute: renewed while the job runs, then the job ends
    publish(client.bus, client.settings.data_dir, renewed())
    svc.drain(timeout=10)
    roll_when_jobs_ended(svc.state, computes, svc.dependencies["kits"])
    restarted_during_the_job = f"{SITE_JOB}-2" in ml.jobs.jobs
    job_ends(svc, client, computes)
    run(svc, ml, computes, f"{SITE_JOB}-2")

    # Assert
    assert not restarted_during_the_job
    postponed, rolled = roll_events(client)
    assert postponed == ("RollPostponed", {"federation": "fedaml", "participant": "hospital-a",
                                           "fingerprint": NEW, "jobs": ["job-1"]})
    assert rolled[0] == "ParticipantRolled"
    assert (rolled[1]["waited_for"], rolled[1]["generation"]) == (["job-1"], 2)
    assert NEW_SITE_KIT in kit_of(ml, f"{SITE_JOB}-2")


def test_refusing_to_interrupt_a_job_leaves_the_site_on_its_old_certificate(deployed):
    svc, client, ml, computes = deployed
    job_runs(svc, client)

    publish(client.bus, client.settings.data_dir, renewed(if_job_running="refuse"))
    svc.drain(timeout=10)
    roll_when_jobs_ended(svc.state, computes, svc.dependencies["kits"])

    (refused,) = roll_events(client)
    assert refused[0] == "RollRefused" and refused[1]["jobs"] == ["job-1"]
    assert "runs job job-1" in refused[1]["reason"]
    assert "--if-job-running refuse" in refused[1]["reason"]
    assert ml.jobs.cancelled == [] and f"{SITE_JOB}-2" not in ml.jobs.jobs
    # its next start (here: after its job ended by itself) uses the new kit
    ml.jobs.jobs[f"{SITE_JOB}-1"].status = "Completed"
    check_deployments(svc.state, computes)
    svc.drain(timeout=10)
    client.send(DeploySite(federation="fedaml", site="hospital-a"))
    svc.drain(timeout=10)
    assert NEW_SITE_KIT in kit_of(ml, f"{SITE_JOB}-2")


def test_a_site_that_does_not_run_is_only_pointed_at_its_new_kit(tmp_path, data_dir):
    with aml_deployer(data_dir) as (svc, client, ml, _):
        provision_events(client, tmp_path)
        svc.drain(timeout=10)

        publish(client.bus, client.settings.data_dir, renewed())
        svc.drain(timeout=10)
        client.send(DeploySite(federation="fedaml", site="hospital-a"))
        svc.drain(timeout=10)

        (rolled,) = roll_events(client)
        assert rolled[0] == "ParticipantRolled" and rolled[1]["restarted"] is False
        assert NEW_SITE_KIT in kit_of(ml, f"{SITE_JOB}-1")


def test_the_server_waits_for_any_job_and_restarts_with_its_sites(deployed):
    # Prepare: a job on the site, which the server's restart would cut short too
    svc, client, ml, computes = deployed
    job_runs(svc, client)

    # Execute
    publish(client.bus, client.settings.data_dir, renewed("server", "server"))
    svc.drain(timeout=10)
    job_ends(svc, client, computes)
    run(svc, ml, computes, f"{SERVER_JOB}-2", f"{SITE_JOB}-2")

    # Assert: both restarted (the site must register with the server's new key)
    assert sorted(ml.jobs.cancelled) == [f"{SITE_JOB}-1", f"{SERVER_JOB}-1"]
    postponed, rolled = roll_events(client)
    assert postponed[0] == "RollPostponed"
    assert rolled == ("ParticipantRolled", {
        "federation": "fedaml", "participant": "server", "fingerprint": NEW, "restarted": True,
        "generation": 2, "waited_for": ["job-1"], "sites_restarted": ["hospital-a"]})
    assert "arcflare-kit-fedaml-server:2" in kit_of(ml, f"{SERVER_JOB}-2")


@pytest.mark.parametrize(("participant", "kind"), [("admin@arcflare.test", "admin"),
                                                    ("hospital-z", "client")])
def test_what_the_deployer_does_not_run_is_no_roll(deployed, participant, kind):
    svc, client, ml, _ = deployed

    publish(client.bus, client.settings.data_dir, renewed(participant, kind))
    svc.drain(timeout=10)

    assert roll_events(client) == []
    assert ml.jobs.cancelled == []
