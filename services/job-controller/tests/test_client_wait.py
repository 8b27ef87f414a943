"""The wait for clients against a real NVFlare server on loopback: a running job-controller on
the embedded broker, sites provisioned but (mostly) not started, so SubmitJobs wait.

A waiting SubmitJob holds nothing: an AbortJob of the same federation is handled while it
waits, other commands are answered, SIGTERM stops the service at once, and a restart picks
the wait up again and submits once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from arcflare.client import Client
from arcflare.contracts.commands import AbortJob, RecipePackage, RefreshFederationStatus, SubmitJob
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.runtime.settings import Settings
from jc_service import FED, admin_kit, nvflare_jobs, provisioned, start_service

from tests.support.signing import as_provisioner, publish, signer_for

pytestmark = [pytest.mark.nvflare, pytest.mark.slow, pytest.mark.timeout(300)]
#: the runtime gives up on a thread that holds a stop after 30 s; well before that, a stop
#: that nothing holds up is over
STOP_BOUND_S = 20


def waiting_job(name: str, site: str = "site-2", federation: str = FED) -> SubmitJob:
    """A job for a site that is not started: it waits (the default clients_timeout_s, 600 s)."""
    return SubmitJob(federation=federation, name=name, min_clients=1, sites=[site],
                     package=RecipePackage(recipe="fedavg-logreg", parameters={"rounds": 1}))


def caused_by(client: Client, command_id: str) -> list[str]:
    return [e.type for e in client.follow(from_start=True, until_idle=True) if e.causation_id == command_id]


def test_an_abort_is_handled_while_a_submit_of_the_same_federation_waits(idle_federation, tmp_path):
    svc, settings = start_service(tmp_path, idle_federation)
    svc.start()
    try:
        with Client(settings) as client:
            submit_id = client.send(waiting_job("waits"))
            accepted = client.wait(submit_id, timeout=30)
            aborted = client.wait(client.send(AbortJob(federation=FED, job_id=submit_id)), timeout=30)
            submit_story = caused_by(client, submit_id)
    finally:
        svc.stop()

    assert accepted.type == "JobWaitingForClients", accepted.payload
    assert (aborted.type, aborted.payload["job_id"], aborted.payload["status"]) == (
        "JobCompleted", submit_id, "FINISHED:ABORTED"), aborted.payload
    assert submit_story == ["JobWaitingForClients"]  # still waiting when the abort was handled
    assert nvflare_jobs(idle_federation, submit_token=submit_id) == []


def test_two_waiting_submits_hold_up_no_other_command(idle_federation, tmp_path):
    # two federations on the same server: the waits would take both consumer threads (concurrency 2)
    svc, settings = start_service(tmp_path, idle_federation)
    as_provisioner(svc, provisioned(idle_federation, admin_kit(tmp_path, idle_federation),
                                     name="fedtest-b"))
    svc.drain()
    svc.start()
    try:
        with Client(settings) as client:
            waits = [client.send(waiting_job("first")), client.send(waiting_job("second", federation="fedtest-b"))]
            observed = client.wait(client.send(RefreshFederationStatus(federation=FED)), timeout=30)
            answers = [client.wait(w, timeout=30).type for w in waits]
            ends = [client.wait(client.send(AbortJob(federation=fed, job_id=w)), timeout=30).type
                    for fed, w in zip((FED, "fedtest-b"), waits, strict=True)]
    finally:
        svc.stop()

    assert observed.type == "FederationStatusObserved"
    assert answers == ["JobWaitingForClients"] * 2
    assert ends == ["JobCompleted"] * 2


def test_a_wait_survives_a_restart_and_submits_once(idle_federation, tmp_path):
    svc, settings = start_service(tmp_path, idle_federation)
    svc.start()
    client = Client(settings)
    try:
        submit_id = client.send(waiting_job("restarted", site="site-1"))
        accepted = client.wait(submit_id, timeout=30)
        svc.stop()
        svc = bootstrap(settings)  # the same data dir: a restarted job-controller
        svc.start()
        idle_federation.start_client("site-1")
        submitted = client.wait(submit_id, timeout=120, command_type="SubmitJob", settled=True)
        aborted = client.wait(client.send(AbortJob(federation=FED, job_id=submit_id)), timeout=120)
        submit_story = caused_by(client, submit_id)
    finally:
        svc.stop()
        client.close()
        idle_federation.drop_client("site-1")

    assert accepted.type == "JobWaitingForClients"
    assert submitted.type == "JobSubmitted", submitted.payload
    job_id = submitted.payload["job_id"]
    assert [j["job_id"] for j in nvflare_jobs(idle_federation, submit_token=submit_id)] == [job_id]
    assert submit_story.count("JobSubmitted") == 1
    assert (aborted.payload["job_id"], aborted.payload["status"]) == (job_id, "FINISHED:ABORTED")


def test_sigterm_during_a_wait_stops_the_service_at_once(idle_federation, tmp_path):
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(tmp_path), "ARCFLARE_JOB_POLL_INTERVAL_S": "0.5",
           "ARCFLARE_STATUS_POLL_INTERVAL_S": "0", "ARCFLARE_LOG_FORMAT": "json"}
    log_path = tmp_path / "job-controller.log"
    with Client(Settings(data_dir=tmp_path)) as client, open(log_path, "wb") as log:
        publish(client.bus, signer_for(tmp_path, "service:provisioner"), provisioned(idle_federation, admin_kit(tmp_path, idle_federation)))
        service = subprocess.Popen([sys.executable, "-m", "arcflare.job_controller"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            accepted = client.wait(client.send(waiting_job("interrupted")), timeout=60)
            service.send_signal(signal.SIGTERM)
            code = service.wait(timeout=STOP_BOUND_S)
        finally:
            if service.poll() is None:
                os.killpg(service.pid, signal.SIGKILL)
                service.wait()
    output = log_path.read_text()

    assert accepted.type == "JobWaitingForClients", output[-2000:]
    assert code == 0, output[-2000:]
    assert "still waiting for a thread" not in output  # the runtime names whatever holds a stop up
