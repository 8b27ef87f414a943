"""The audit trail: one entry per command, who issued it, how it ended, what it caused."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger import queries

from .conftest import FED, OWNER, SCIENTIST, T0, outcome
from .test_projections import feed, ledger_db


def trail(tmp_path: Path, envelopes: list[Envelope]) -> dict[str, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = ledger_db(tmp_path / "audit.db")
    feed(db, envelopes)
    return {entry["command_id"]: entry for entry in queries.audit(db, FED)}


def test_one_entry_per_command_with_the_events_it_caused(tmp_path: Path,
                                                         events: list[Envelope]) -> None:
    commands = trail(tmp_path, events)

    create = commands["cmd-create"]
    assert create["command_type"] == "CreateFederation"
    assert sorted((ev["type"], ev["note"]) for ev in create["events"]) == [
        ("FederationProvisioned", ""), ("SiteProvisioned", "north-1"),
        ("SiteProvisioned", "south-1")]
    assert (create["outcome"], create["actor"], create["automatic"]) == (
        "succeeded", OWNER, False)
    assert create["took_s"] == 0.1
    submit = commands["cmd-submit"]
    assert submit["command_type"] == "SubmitJob"
    assert [ev["type"] for ev in submit["events"]] == [
        "JobSubmitted", "JobStatusChanged", "JobCompleted"]
    assert (submit["outcome"], submit["actor"], submit["took_s"]) == ("succeeded", SCIENTIST, 20.0)
    # a watcher's own observation, a late poll, an alert and a warning are nobody's command
    assert set(commands) == {"cmd-create", "auto-deploy-server", "auto-deploy-north",
                             "cmd-deploy-south", "cmd-refresh", "cmd-submit", "cmd-submit-2",
                             "cmd-stop"}


def test_each_command_is_listed_once(tmp_path: Path, events: list[Envelope]) -> None:
    db = ledger_db(tmp_path / "once.db")
    feed(db, events)

    ids = [entry["command_id"] for entry in queries.audit(db)]

    assert len(ids) == len(set(ids)) == 8


def test_automatic_commands_are_the_services_on_behalf_of_the_person(
        tmp_path: Path, events: list[Envelope]) -> None:
    commands = trail(tmp_path, events)

    server = commands["auto-deploy-server"]
    assert server["command_type"] == "DeployServer"
    assert (server["actor"], server["on_behalf_of"], server["automatic"]) == (
        "service:deployer", OWNER, True)
    assert server["correlation_id"] == "cmd-create"
    assert commands["auto-deploy-north"]["command_type"] == "DeploySite"


def test_failures_and_rejections_carry_their_reason_and_the_person(
        tmp_path: Path, events: list[Envelope]) -> None:
    commands = trail(tmp_path, events)

    failed = commands["cmd-deploy-south"]
    assert (failed["command_type"], failed["outcome"], failed["reason"]) == (
        "DeploySite", "failed", "no python3")
    rejected = commands["cmd-stop"]
    assert (rejected["command_type"], rejected["outcome"]) == ("StopSite", "rejected")
    assert rejected["reason"] == "unauthorized: member may only read"
    assert rejected["actor"] == "viewer@south.org"
    assert commands["cmd-submit-2"]["outcome"] == "failed"


def test_a_refused_command_names_the_proven_identity_never_the_claim(tmp_path: Path) -> None:
    # the runtime carries the command's claimed issuer forward as on_behalf_of: not proof
    forged = outcome(e.CommandRejected(
        federation=FED, command_type="TeardownFederation", command_id="forged",
        reason="Unauthenticated", detail="no valid signature", claimed_by=OWNER),
        "forged", 1, "service:deployer", on_behalf_of=OWNER)
    posing = outcome(e.CommandRejected(
        federation=FED, command_type="TeardownFederation", command_id="posing",
        reason="Forbidden", detail="issued_by is not the signer", claimed_by=OWNER,
        proven_by=SCIENTIST), "posing", 2, "service:deployer", on_behalf_of=OWNER)
    gave_up = outcome(e.CommandFailed(
        federation=FED, command_type="SubmitJob", command_id="gave-up",
        reason="retries_exhausted", detail="FlareUnavailable: server down", deliveries=10),
        "gave-up", 3, "service:job-controller", on_behalf_of=SCIENTIST)

    commands = trail(tmp_path, [forged, posing, gave_up])

    assert (commands["forged"]["actor"], commands["forged"]["claimed_by"]) == (None, OWNER)
    assert commands["forged"]["on_behalf_of"] is None
    assert (commands["posing"]["actor"], commands["posing"]["proven_by"]) == (SCIENTIST,
                                                                              SCIENTIST)
    failed = commands["gave-up"]
    assert (failed["command_type"], failed["outcome"], failed["actor"]) == (
        "SubmitJob", "failed", SCIENTIST)
    assert failed["reason"] == "retries_exhausted: FlareUnavailable: server down"


def test_commands_named_by_their_events_together(tmp_path: Path) -> None:
    add = outcome(e.SiteProvisioned(federation=FED, site="east-1", org="east", kit_ref="k",
                                    cert_fingerprint="AB:" * 31 + "AB",
                                    not_after="2027-11-29T00:00:00Z"), "cmd-add", 1,
                  on_behalf_of=OWNER)
    restart = outcome(e.SiteDeployed(federation=FED, site="east-1", backend="local",
                                     handle="5", generation=2, restart=True), "cmd-restart", 2,
                      on_behalf_of=OWNER)
    abort = outcome(e.JobCompleted(federation=FED, job_id="job-9", name="x",
                                   status="FINISHED:ABORTED", duration_s=3), "cmd-abort", 3)

    commands = trail(tmp_path, [add, restart, abort])

    assert commands["cmd-add"]["command_type"] == "AddSite"
    assert commands["cmd-restart"]["command_type"] == "RestartSite"
    assert (commands["cmd-abort"]["command_type"], commands["cmd-abort"]["outcome"]) == (
        "AbortJob", "failed")
    assert commands["cmd-abort"]["actor"] == "service:job-controller"  # nobody else is known


def test_before_signing_an_outcome_issued_by_the_person_still_names_them(
        tmp_path: Path) -> None:
    # what services publish today: issued_by carried over from the command, no on_behalf_of
    deployed = outcome(e.ServerDeployed(federation=FED, endpoint="h:1", backend="local",
                                        handle="1", generation=1), "cmd-deploy", 1, OWNER)

    entry = trail(tmp_path, [deployed])["cmd-deploy"]

    assert (entry["actor"], entry["on_behalf_of"], entry["automatic"]) == (OWNER, OWNER, False)
    assert entry["took_s"] is None  # one event: the ledger never saw the command itself


def test_limit_counts_commands_not_events(tmp_path: Path, events: list[Envelope]) -> None:
    db = ledger_db(tmp_path / "l.db")
    feed(db, events)

    newest = queries.audit(db, FED, limit=2)

    assert [c["command_id"] for c in newest] == ["cmd-submit-2", "cmd-stop"]


def test_a_submit_waiting_for_clients_is_in_progress_until_the_job_is_submitted(
        tmp_path: Path) -> None:
    wait = e.JobWaitingForClients(federation=FED, name="fedavg", min_clients=2,
                                  clients_timeout_s=300,
                                  clients_deadline=T0 + timedelta(seconds=301))
    accepted = outcome(wait, "cmd-wait", 1, on_behalf_of=SCIENTIST)
    submitted = outcome(e.JobSubmitted(federation=FED, job_id="job-7", name="fedavg"),
                        "cmd-wait", 30, on_behalf_of=SCIENTIST)

    waiting = trail(tmp_path / "a", [accepted])["cmd-wait"]
    done = trail(tmp_path / "b", [accepted, submitted])["cmd-wait"]

    assert (waiting["command_type"], waiting["outcome"]) == ("SubmitJob", "in progress")
    assert (done["outcome"], done["outcome_type"], done["took_s"]) == (
        "succeeded", "JobSubmitted", 29.0)
