"""Handlers and the wait for clients around a fake FLARE admin: rejections, the wait and its
end (submitted, clients_timeout, aborted), idempotent submit.

The real adapter is exercised against NVFlare in test_flare_jobs and test_client_wait; the
fake is held to it by test_flare_admin_contract; here it lets the surrounding logic be
checked in milliseconds.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from arcflare.client import Client
from arcflare.contracts.commands import AbortJob, RecipePackage, SubmitJob
from arcflare.contracts.events import SiteRemoved
from arcflare.job_controller import tables
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.client_wait import ClientWait, submit_token
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.runtime import authorization
from jc_fakes import FakeFlareAdmin, fake_service, provisioned

from tests.support.signing import as_provisioner


@pytest.fixture
def env(tmp_path: Path):
    with fake_service(tmp_path, FakeFlareAdmin(["site-1", "site-2"]),
                      max_package_bytes=100_000) as running:
        yield running


def outcome(svc, client: Client, command, *, settled: bool = False) -> dict:
    command_id = client.send(command)
    svc.drain()
    if settled:
        clients_looked_at(svc)
    env = client.wait(command_id, timeout=5, settled=settled)
    return {"type": env.type, **env.payload}


def clients_looked_at(svc) -> None:
    """One round of the watcher's wait for clients, and its events relayed."""
    ClientWait(svc.state, svc.dependencies["flare_admins"]).poll()
    svc.drain()


def recipe(**params) -> RecipePackage:
    return RecipePackage(recipe="fedavg-logreg", parameters=params)


def waiting(env, **fields) -> str:
    """A SubmitJob accepted while no client is connected; its id."""
    svc, client, admin, _ = env
    admin.clients = []
    submit_id = client.send(SubmitJob(**{"federation": "fed", "name": "lr", "package": recipe(), **fields}))
    svc.drain()
    return submit_id


def test_a_submit_is_answered_at_once_with_the_wait_for_clients(env) -> None:
    svc, client, admin, _ = env
    admin.clients = []

    result = outcome(svc, client, SubmitJob(federation="fed", name="lr", package=recipe(),
                                            min_clients=2, clients_timeout_s=300))

    assert result["type"] == "JobWaitingForClients"
    assert (result["min_clients"], result["clients_timeout_s"], result["connected"]) == (2, 300, [])
    assert not admin.submitted


def test_a_recipe_job_is_submitted_once_with_its_rounds(env) -> None:
    svc, client, admin, settings = env

    result = outcome(svc, client, SubmitJob(federation="fed", name="lr", package=recipe(rounds=4)),
                     settled=True)
    clients_looked_at(svc)  # the wait is over: a second look submits nothing

    assert result["type"] == "JobSubmitted" and result["rounds"] == 4
    assert result["sites"] == ["site-1", "site-2"]
    assert list(admin.submitted.values()) == [result["job_id"]]
    job_dir = next((settings.data_dir / "jobs").iterdir()) / "lr"
    assert "arcflare.flare.bridge.BusBridge" in (job_dir / "app/config/config_fed_server.json").read_text()


def test_each_site_that_connects_is_announced_until_min_clients_are_there(env) -> None:
    svc, client, admin, _ = env
    admin.clients = ["site-2"]
    command_id = client.send(SubmitJob(federation="fed", name="lr", package=recipe(), min_clients=2))
    svc.drain()

    clients_looked_at(svc)
    admin.clients = ["site-1", "site-2"]
    clients_looked_at(svc)

    story = [(e.type, e.payload.get("connected")) for e in client.follow(
        from_start=True, until_idle=True) if e.causation_id == command_id]
    assert story == [("JobWaitingForClients", []), ("JobWaitingForClients", ["site-2"]),
                     ("JobSubmitted", None)]


def test_only_the_named_sites_count_towards_min_clients(env) -> None:
    svc, client, admin, _ = env
    admin.clients = ["site-1", "site-2"]

    command_id = client.send(SubmitJob(federation="fed", name="lr", package=recipe(),
                                       sites=["site-3"], min_clients=1))
    svc.drain()
    clients_looked_at(svc)

    assert client.wait(command_id, timeout=5).type == "JobWaitingForClients"
    assert not admin.submitted


def test_an_unknown_federation_is_never_a_pass(env, monkeypatch) -> None:
    svc, client, _, _ = env
    monkeypatch.setattr(authorization, "ARRIVAL_GRACE_S", 0.0)

    result = outcome(svc, client, SubmitJob(federation="nope", name="lr", package=recipe()))

    assert (result["type"], result["reason"]) == ("CommandRejected", "Forbidden")
    assert "'nope' is not known here" in result["detail"]


def test_a_command_that_overtakes_its_federation_waits_for_it(tmp_path: Path) -> None:
    admin = FakeFlareAdmin(["site-1", "site-2"])
    settings = JobControllerSettings(data_dir=tmp_path, retry_backoff_base_s=0.2,
                                     retry_backoff_max_s=0.2)
    svc = bootstrap(settings, admin_factory=lambda fed: admin, watch=False)
    client = Client(settings)
    try:
        command_id = client.send(SubmitJob(federation="late", name="lr", package=recipe()))
        svc.drain(timeout=0.5)  # handled before the federation is known: retried, not refused
        as_provisioner(svc, provisioned("late", ("site-1",)))
        svc.drain()
        answer = client.wait(command_id, timeout=5)
    finally:
        client.close()
        svc.stop()
    assert answer.type == "JobWaitingForClients"


def test_an_unknown_recipe_is_rejected_with_the_built_ins_named(env) -> None:
    svc, client, _, _ = env

    result = outcome(svc, client, SubmitJob(
        federation="fed", name="x", package=RecipePackage(recipe="resnet")))

    assert (result["type"], result["reason"]) == ("CommandRejected", "invalid")
    assert "fedavg-logreg" in result["detail"]


def test_a_bad_recipe_parameter_names_the_field(env) -> None:
    svc, client, _, _ = env

    result = outcome(svc, client, SubmitJob(federation="fed", name="x", package=recipe(rounds=0)))

    assert result["reason"] == "invalid" and "parameters.rounds" in result["detail"]


def test_too_few_clients_within_the_clients_timeout_fails_the_job(env) -> None:
    svc, client, admin, _ = env
    admin.clients = ["site-1"]
    command_id = client.send(SubmitJob(federation="fed", name="lr", package=recipe(),
                                       min_clients=2, clients_timeout_s=1, timeout_s=3600))
    svc.drain()

    time.sleep(1.1)  # past the clients' deadline
    clients_looked_at(svc)

    failed = client.wait(command_id, timeout=5, settled=True)
    assert (failed.type, failed.payload["reason"]) == ("JobFailed", "clients_timeout")
    assert "only 1 of min_clients=2" in failed.payload["detail"]
    assert admin.submitted == {}


def test_a_waiting_job_is_aborted_by_its_submit_id_and_never_reaches_nvflare(env) -> None:
    svc, client, admin, _ = env
    submit_id = waiting(env)

    aborted = outcome(svc, client, AbortJob(federation="fed", job_id=submit_id))
    admin.clients = ["site-1", "site-2"]
    clients_looked_at(svc)

    assert (aborted["type"], aborted["job_id"], aborted["status"]) == (
        "JobCompleted", submit_id, "FINISHED:ABORTED")
    assert "never submitted" in aborted["reason"]
    assert admin.submitted == {}


def test_a_job_that_reached_nvflare_after_an_abort_won_is_aborted_there(env) -> None:
    svc, client, admin, _ = env
    submit_id = waiting(env)
    with svc.state.connect() as db:
        seen_by_watcher = tables.waiting_job(db, submit_id)

    outcome(svc, client, AbortJob(federation="fed", job_id=submit_id))
    ClientWait(svc.state, svc.dependencies["flare_admins"]).submit(
        admin, seen_by_watcher, ["site-1"])
    svc.drain()

    [job_id] = admin.submitted.values()
    assert admin.job(job_id).status == "FINISHED:ABORTED"
    assert not [e for e in client.follow(types=["JobSubmitted"], from_start=True, until_idle=True)]


def test_a_submitted_job_is_aborted_by_its_submit_id_too(env) -> None:
    svc, client, admin, _ = env
    submitted = outcome(svc, client, SubmitJob(federation="fed", name="lr", package=recipe()),
                        settled=True)
    submit_id = next(e.causation_id for e in client.follow(types=["JobSubmitted"], from_start=True,
                                                             until_idle=True))

    outcome_id = client.send(AbortJob(federation="fed", job_id=submit_id))
    svc.drain()

    assert admin.job(submitted["job_id"]).status == "FINISHED:ABORTED"
    assert not [e for e in client.follow(types=["CommandRejected"], from_start=True, until_idle=True)
                if e.causation_id == outcome_id]


def test_a_job_the_scheduler_started_as_its_abort_arrived_is_aborted_again(env) -> None:
    from arcflare.job_controller.watcher import JobWatcher

    svc, client, admin, _ = env
    submitted = outcome(svc, client, SubmitJob(federation="fed", name="lr", package=recipe()),
                        settled=True)
    job_id = submitted["job_id"]
    admin.abort = lambda _: None  # NVFlare's scheduler took the job: this abort is lost
    client.send(AbortJob(federation="fed", job_id=job_id))
    svc.drain()
    admin.set_status(job_id, "RUNNING")
    del admin.abort  # the class's abort, which ends the job as ABORTED
    watcher = JobWatcher(svc.state, svc.dependencies["flare_admins"], svc.settings,
                         svc.dependencies["artifacts"])

    watcher.poll_jobs()  # sees RUNNING after the abort: aborts again
    watcher.poll_jobs()  # sees the end
    svc.drain()

    assert admin.job(job_id).status == "FINISHED:ABORTED"
    [ended] = [e for e in client.follow(types=["JobCompleted"], from_start=True, until_idle=True)]
    assert (ended.payload["job_id"], ended.payload["status"]) == (job_id, "FINISHED:ABORTED")


def test_aborting_a_job_whose_wait_ended_in_failure_is_a_conflict(env) -> None:
    svc, client, _, _ = env
    submit_id = waiting(env, clients_timeout_s=1)
    time.sleep(1.1)
    clients_looked_at(svc)

    result = outcome(svc, client, AbortJob(federation="fed", job_id=submit_id))

    assert (result["type"], result["reason"]) == ("CommandRejected", "conflict")
    assert "never reached NVFlare: it ended failed" in result["detail"]


def test_a_removed_site_is_disabled_on_the_server(env) -> None:
    svc, _, admin, _ = env

    as_provisioner(svc, SiteRemoved(federation="fed", site="site-2"))
    svc.drain()

    assert admin.disabled == ["site-2"]


def test_the_submit_token_is_the_command_id_or_a_digest_nvflare_accepts() -> None:
    from nvflare.apis.utils.job_submit_token import validate_submit_token

    uuid_id = "8cc38774-7dd8-44b5-8f6e-cfa84813bfb2"
    odd_id = "batch/42 #7"

    assert submit_token(uuid_id) == uuid_id
    assert validate_submit_token(submit_token(odd_id)) == submit_token(odd_id) != odd_id


def test_a_member_may_not_submit_a_job(env) -> None:
    svc, _client, admin, settings = env
    member = Client(settings, issued_by="member@hospital.org")
    try:
        result = outcome(svc, member, SubmitJob(federation="fed", name="lr", package=recipe()))
    finally:
        member.close()

    assert (result["type"], result["reason"]) == ("CommandRejected", "Forbidden")
    assert not admin.submitted
