"""The relay against real MLflow (sqlite store) and the real embedded bus."""
from __future__ import annotations

import numpy as np
from arcflare.contracts.events import (
    FlareEventObserved,
    JobCompleted,
    JobStatusChanged,
    JobSubmitted,
    MetricPoint,
    MetricsReported,
)

FED = "hospitals"
JOB = "6f1c2d3e-0000-4000-8000-000000000001"


def _points(step: int, **values: float) -> list[MetricPoint]:
    return [MetricPoint(key=k, value=v, step=step, timestamp_ms=1_700_000_000_000 + step)
            for k, v in values.items()]


def _metrics(site: str, step: int, batch_id: str, **values: float) -> MetricsReported:
    return MetricsReported(federation=FED, job_id=JOB, site=site, points=_points(step, **values),
                           batch_id=batch_id)


def _submitted(**kw) -> JobSubmitted:
    return JobSubmitted(federation=FED, job_id=JOB, name="fedavg", sites=["site-1", "site-2"],
                        rounds=3, **kw)


def _runs(relay):
    client = relay.tracking.client
    experiment = client.get_experiment_by_name(FED)
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.data.tags["site"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    return parent, children


def test_a_job_gets_a_parent_run_with_lineage_and_a_child_run_per_site(relay):
    submit = relay.publish(_submitted(), correlation_id="cmd-42")
    for step in range(3):
        relay.publish(_metrics("site-1", step, f"a{step}", loss=1.0 / (step + 1)))
        relay.publish(_metrics("site-2", step, f"b{step}", loss=2.0 / (step + 1)))

    relay.drain()

    parent, children = _runs(relay)
    assert parent.data.tags["federation"] == FED
    assert parent.data.tags["job_id"] == JOB
    assert parent.data.tags["job_name"] == "fedavg"
    assert parent.data.tags["sites"] == "site-1,site-2"
    assert parent.data.tags["command_id"] == "cmd-42" == submit.correlation_id
    assert set(children) == {"site-1", "site-2"}
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children.values())
    assert relay.tracking.metric_history(children["site-2"].info.run_id, "loss") == \
        [(0, 2.0), (1, 1.0), (2, 2.0 / 3)]


def test_metrics_that_overtake_their_job_events_wait_and_then_land(relay):
    # the metrics come first: handled before the job is known, they are retried, not rejected
    relay.publish(_metrics("site-1", 0, "early", loss=0.5))
    relay.publish(FlareEventObserved(federation=FED, job_id=JOB, event="job_started",
                                     detail={"job_name": "fedavg", "nvflare_version": "2.9.0"}))
    relay.drain()
    relay.publish(_submitted())
    relay.drain()

    parent, children = _runs(relay)
    assert relay.dead_letters() == {}
    assert relay.tracking.metric_history(children["site-1"].info.run_id, "loss") == [(0, 0.5)]
    assert parent.data.tags["nvflare_version"] == "2.9.0"
    assert parent.data.tags["sites"] == "site-1,site-2"


def test_replayed_batches_add_no_metric_points(relay):
    relay.publish(_submitted())
    batches = [_metrics("site-1", s, f"batch-{s}", loss=float(s), acc=s / 10) for s in range(5)]
    for batch in batches:
        relay.publish(batch)
    relay.drain()
    _, children = _runs(relay)
    run_id = children["site-1"].info.run_id
    before = {k: relay.tracking.metric_history(run_id, k) for k in ("loss", "acc")}

    for _ in range(2):  # every batch again, as new messages (bridge spool replay)
        for batch in batches:
            relay.publish(batch)
    relay.drain()

    after = {k: relay.tracking.metric_history(run_id, k) for k in ("loss", "acc")}
    assert after == before
    assert len(after["loss"]) == 5


def test_bad_metric_values_and_unknown_jobs_are_dead_lettered_with_a_reason(tmp_path):
    from relay_harness import Relay

    relay = Relay(tmp_path / "data", unknown_job_grace_s=0)
    try:
        relay.publish(_submitted())
        relay.drain()
        point = {"key": "loss", "step": 0, "timestamp_ms": 1}
        nan = relay.publish_raw("MetricsReported", {
            "federation": FED, "job_id": JOB, "site": "site-1",
            "points": [{**point, "value": float("nan")}]})
        text = relay.publish_raw("MetricsReported", {
            "federation": FED, "job_id": JOB, "site": "site-1",
            "points": [{**point, "value": "high"}]})
        stranger = relay.publish(MetricsReported(
            federation=FED, job_id="no-such-job", site="site-1", points=_points(0, loss=1.0)))
        good = relay.publish(_metrics("site-1", 0, "ok", loss=1.0))

        relay.drain()

        assert relay.dead_letters() == {nan: "invalid", text: "invalid",
                                        stranger.message_id: "not_found"}
        _, children = _runs(relay)
        assert relay.tracking.metric_history(children["site-1"].info.run_id, "loss") == [(0, 1.0)]
        assert good.message_id not in relay.dead_letters()
    finally:
        relay.close()


def test_a_completed_job_registers_its_global_model_once(relay, tmp_path):
    models = tmp_path / "download" / JOB / "workspace" / "models"
    models.mkdir(parents=True)
    np.save(models / "server.npy", np.full((2, 2), 3.0))
    result = relay.store_result(tmp_path / "download" / JOB)
    relay.publish(_submitted())
    relay.publish(_metrics("site-1", 0, "m0", loss=0.3))
    relay.drain()
    completed = JobCompleted(federation=FED, job_id=JOB, name="fedavg",
                             status="FINISHED:COMPLETED", duration_s=18.0, result=result,
                             result_ref=result.locator)

    relay.publish(completed)
    relay.drain()
    relay.publish(completed)  # redelivered as a new message
    relay.drain()

    registered = relay.events("ModelRegistered")
    versions = relay.tracking.client.search_model_versions(f"name = '{FED}-fedavg'")
    parent, children = _runs(relay)
    assert len(registered) == 1 and len(versions) == 1
    assert registered[0]["version"] == str(versions[0].version) == "1"
    assert registered[0]["run_id"] == parent.info.run_id == versions[0].run_id
    assert versions[0].tags["federation"] == FED
    assert versions[0].tags["job_id"] == JOB
    assert versions[0].tags["sites"] == "site-1,site-2"
    assert versions[0].tags["rounds"] == "3"
    artifacts = relay.tracking.client.list_artifacts(parent.info.run_id, "global_model")
    assert [a.path for a in artifacts] == ["global_model/server.npy"]
    assert parent.info.status == "FINISHED"
    assert children["site-1"].info.status == "FINISHED"
    assert list((relay.settings.data_dir / "results").iterdir()) == []  # scratch removed


def test_failed_and_aborted_jobs_end_their_runs_with_the_matching_status(relay):
    other = "6f1c2d3e-0000-4000-8000-000000000002"
    relay.publish(_submitted())
    relay.publish(JobSubmitted(federation=FED, job_id=other, name="second"))
    relay.publish(_metrics("site-1", 0, "x", loss=1.0))
    relay.drain()

    relay.publish(JobStatusChanged(federation=FED, job_id=JOB, status="RUNNING"))
    relay.publish(JobCompleted(federation=FED, job_id=JOB, name="fedavg", duration_s=5,
                               status="FINISHED:EXECUTION_EXCEPTION"))
    relay.publish(JobCompleted(federation=FED, job_id=other, name="second", duration_s=5,
                               status="FINISHED:ABORTED"))
    relay.drain()

    client = relay.tracking.client
    runs = client.search_runs([client.get_experiment_by_name(FED).experiment_id])
    status = {(r.data.tags["job_id"], r.data.tags.get("site")): r.info.status for r in runs}
    assert status == {(JOB, None): "FAILED", (JOB, "site-1"): "FAILED", (other, None): "KILLED"}
    assert relay.events("ModelRegistered") == []


def test_while_mlflow_is_unreachable_messages_wait_and_nothing_is_lost(tmp_path, monkeypatch):
    from relay_flare import free_port
    from relay_harness import Relay

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    data_dir = tmp_path / "data"
    down = Relay(data_dir, tracking_uri=f"http://127.0.0.1:{free_port()}",
                 retry_backoff_base_s=1.0)
    try:
        down.publish(_submitted())
        for step in range(3):
            down.publish(_metrics("site-1", step, f"s{step}", loss=float(step)))
        down.service.drain(timeout=1.5)  # every handler fails: abandoned, to be retried
        assert down.dead_letters() == {} and down.dead_letters("events") == {}
    finally:
        down.close()

    back = Relay(data_dir)  # the same bus and state, MLflow reachable again
    try:
        back.drain()
        _, children = _runs(back)
        assert back.tracking.metric_history(children["site-1"].info.run_id, "loss") == \
            [(0, 0.0), (1, 1.0), (2, 2.0)]
    finally:
        back.close()
