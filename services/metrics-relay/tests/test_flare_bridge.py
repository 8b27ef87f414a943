"""A real NVFlare federation (server + 2 sites on loopback) with the bridge in the job:
NVFlare's own analytics events → bus → metrics-relay → MLflow."""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from arcflare.bus.codec import to_outgoing
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import JobCompleted, JobSubmitted, MetricsReported
from arcflare.trust.jws import Signer
from arcflare.trust.kits import kit_identity
from relay_flare import expected_history, export_job, provision, run_job, running_federation
from relay_harness import Relay

pytestmark = [pytest.mark.nvflare, pytest.mark.slow, pytest.mark.timeout(600)]

FED = "fedx"
SITES = ["site-1", "site-2"]
ROUNDS = 3


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("flare")
    prod = provision(root / "kits", FED, SITES, identities_from=root / "ids")
    with running_federation(prod, SITES):
        yield root, prod


@pytest.fixture
def relay(federation, tmp_path):
    # the relay trusts the root that issued the bridge's identity in the server kit
    shutil.copytree(federation[0] / "ids" / "identity", tmp_path / "data" / "identity")
    r = Relay(tmp_path / "data")
    try:
        yield r
    finally:
        r.close()


def _bridge_args(relay: Relay, **extra) -> dict:
    return {"federation": FED, "data_dir": str(relay.settings.data_dir), "window_s": 0.2, **extra}


def _announce(relay: Relay, job_id: str, meta: dict, name: str) -> str:
    """What the job-controller publishes around a job it ran (it is not in this test)."""
    command_id = str(uuid.uuid4())
    relay.publish(JobSubmitted(federation=FED, job_id=job_id, name=name, sites=SITES,
                               rounds=ROUNDS), correlation_id=command_id)
    result = relay.store_result(relay.settings.data_dir / "results" / job_id)
    relay.publish(JobCompleted(federation=FED, job_id=job_id, name=name, status=meta["status"],
                               duration_s=1.0, result=result, result_ref=result.locator),
                  correlation_id=command_id)
    return command_id


def _site_runs(relay: Relay, job_id: str):
    client = relay.tracking.client
    experiment = client.get_experiment_by_name(FED)
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.job_id = '{job_id}'")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    return parent, {r.data.tags["site"]: r.info.run_id for r in runs if r.data.tags.get("site")}


def _histories(relay: Relay, children: dict[str, str]) -> dict:
    return {site: {k: relay.tracking.metric_history(run, k) for k in ("train_loss", "accuracy")}
            for site, run in children.items()}


def _telemetry_copies(relay: Relay, type_name: str) -> list:
    """Every telemetry message of a type, read from the followers' copy."""
    found, after = [], None
    while page := relay.bus.peek("telemetry", "cli", max_messages=100,
                                 from_sequence_number=after):
        found += [m for m in page if m.subject == type_name]
        after = page[-1].sequence_number + 1
    return found


def test_metrics_of_every_site_reach_mlflow_with_lineage_and_the_model_is_registered(
        federation, relay):
    root, prod = federation
    job = export_job(root / "job-a", "fedavg-a", ROUNDS, _bridge_args(relay))
    job_id, meta = run_job(prod, job, relay.settings.data_dir / "results")
    command_id = _announce(relay, job_id, meta, "fedavg-a")

    relay.drain()

    assert meta["status"] == "FINISHED:COMPLETED"
    parent, children = _site_runs(relay, job_id)
    assert parent.data.tags["federation"] == FED
    assert parent.data.tags["job_name"] == "fedavg-a"
    assert parent.data.tags["sites"] == "site-1,site-2"
    assert parent.data.tags["command_id"] == command_id
    assert parent.data.tags["nvflare_version"] == "2.9.0"
    assert parent.info.status == "FINISHED"
    assert _histories(relay, children) == {s: expected_history(s, ROUNDS) for s in SITES}
    versions = relay.tracking.client.search_model_versions(f"name = '{FED}-fedavg-a'")
    assert len(versions) == 1
    assert versions[0].run_id == parent.info.run_id
    assert {k: versions[0].tags[k] for k in ("federation", "job_id", "sites", "rounds")} == \
        {"federation": FED, "job_id": job_id, "sites": "site-1,site-2", "rounds": str(ROUNDS)}
    registered = relay.events("ModelRegistered")
    assert [(e["name"], e["version"], e["run_id"]) for e in registered] == \
        [(f"{FED}-fedavg-a", "1", parent.info.run_id)]

    lifecycle = [json.loads(m.body) for m in _telemetry_copies(relay, "FlareEventObserved")]
    assert [e["event"] for e in lifecycle if e["job_id"] == job_id] == ["job_started", "job_ended"]

    # replay every MetricsReported twice more, as new messages signed by the bridge (a bridge
    # re-sending after a crash): the histories stay as they are, by batch id
    copies = _telemetry_copies(relay, "MetricsReported")
    bridge = Signer(kit_identity(prod / "localhost").load())
    for _ in range(2):
        relay.bus.send("telemetry", [
            to_outgoing(Envelope.wrap(MetricsReported.model_validate_json(m.body)), signer=bridge)
            for m in copies])
    relay.drain()

    assert len(copies) >= len(SITES)
    assert _histories(relay, children) == {s: expected_history(s, ROUNDS) for s in SITES}
    assert relay.dead_letters() == {}


def _end_outage_once_spooled(outage: sqlite3.Connection, spool: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not _spooled(spool):
        time.sleep(0.5)
    outage.execute("COMMIT")


def _spooled(spool: Path) -> int:
    if not spool.exists():
        return 0
    with closing(sqlite3.connect(spool, timeout=5)) as db:
        try:
            return db.execute("SELECT count(*) FROM spooled").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0


def test_metrics_logged_while_the_bus_is_down_arrive_once_it_is_back(federation, relay):
    root, prod = federation
    job = export_job(root / "job-b", "fedavg-b", ROUNDS,
                     _bridge_args(relay, flush_timeout_s=120))
    bus_db = relay.settings.data_dir / "bus.db"
    spool = relay.settings.data_dir / "spool" / f"bridge-{FED}.db"
    outage = sqlite3.connect(bus_db, isolation_level=None, timeout=60, check_same_thread=False)
    outage.execute("BEGIN EXCLUSIVE")  # nobody can write to the bus: it is down
    # The bus stays down until the bridge's send has failed (after the broker's 30 s busy
    # timeout) and it has spooled; the job's END_RUN waits for the bus (flush_timeout_s).
    restore = threading.Thread(target=_end_outage_once_spooled, args=(outage, spool))
    restore.start()
    try:
        job_id, meta = run_job(prod, job, relay.settings.data_dir / "results")
    finally:
        restore.join()
        outage.close()
    _announce(relay, job_id, meta, "fedavg-b")

    relay.drain()

    assert meta["status"] == "FINISHED:COMPLETED"
    _, children = _site_runs(relay, job_id)
    assert _histories(relay, children) == {s: expected_history(s, ROUNDS) for s in SITES}
    server_log = next((relay.settings.data_dir / "results" / job_id).rglob("workspace/log.txt"))
    assert "spooled telemetry message(s) to the bus" in server_log.read_text()
