"""Job results are read from the artifact store only: a result that is missing, tampered,
over the caps or a path is refused naming the reference and the problem; the job's runs end
all the same, no model is registered from it, and no scratch copy stays behind."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from arcflare.bus.port import SubQueue
from arcflare.contracts.events import JobCompleted, JobSubmitted
from relay_harness import Relay

FED = "hospitals"
JOB = "6f1c2d3e-0000-4000-8000-0000000000aa"


def result_folder(root: Path, payload: int = 100) -> Path:
    models = root / JOB / "workspace" / "models"
    models.mkdir(parents=True)
    np.save(models / "server.npy", np.ones(payload))
    return root / JOB


@pytest.fixture
def relay(tmp_path: Path):
    r = Relay(tmp_path / "data", max_result_bytes=50_000)
    try:
        yield r
    finally:
        r.close()


def completed(result=None, result_ref=None) -> JobCompleted:
    return JobCompleted(federation=FED, job_id=JOB, name="fedavg", status="FINISHED:COMPLETED",
                        duration_s=3.0, result=result,
                        result_ref=result_ref or (result.locator if result else None))


def refusal(relay: Relay) -> tuple[str, str]:
    dead = relay.bus.peek("events", "metrics-relay", sub_queue=SubQueue.DEAD_LETTER)
    assert [m.subject for m in dead] == ["JobCompleted"]
    return dead[0].dead_letter_reason, dead[0].dead_letter_error_description


def outcome(relay: Relay, event: JobCompleted):
    relay.publish(JobSubmitted(federation=FED, job_id=JOB, name="fedavg", sites=["site-1"]))
    relay.publish(event)
    relay.drain()
    client = relay.tracking.client
    [parent] = client.search_runs([client.get_experiment_by_name(FED).experiment_id])
    assert parent.info.status == "FINISHED"  # the runs end whatever became of the model
    assert relay.events("ModelRegistered") == []
    assert list((relay.settings.data_dir / "results").glob("result-*")) == []  # no scratch
    return parent


def test_a_tampered_result_is_refused_naming_it(relay: Relay, tmp_path: Path) -> None:
    ref = relay.store_result(result_folder(tmp_path / "download"))
    relay.artifacts.path("results", ref.sha256).write_bytes(os.urandom(ref.size))

    parent = outcome(relay, completed(ref))

    reason, why = refusal(relay)
    assert reason == "invalid"
    assert why == (f"result {ref.locator}: the stored bytes do not match their sha256 "
                   f"{why.rsplit('sha256 ', 1)[1]}")
    assert parent.data.tags["arcflare.model"].startswith(f"not registered: result {ref.locator}")


def test_a_missing_result_is_refused_as_not_found(relay: Relay, tmp_path: Path) -> None:
    ref = relay.store_result(result_folder(tmp_path / "download"))
    relay.artifacts.path("results", ref.sha256).unlink()

    outcome(relay, completed(ref))

    reason, why = refusal(relay)
    assert reason == "not_found" and why.startswith(f"result {ref.locator}: ")


def test_a_result_over_the_cap_is_refused_before_it_is_fetched(relay: Relay,
                                                               tmp_path: Path) -> None:
    big = result_folder(tmp_path / "download", payload=100_000)
    (big / "noise.bin").write_bytes(os.urandom(60_000))
    ref = relay.store_result(big)

    outcome(relay, completed(ref))

    reason, why = refusal(relay)
    assert reason == "invalid" and "is more than the cap of 50000 bytes" in why


def test_a_path_is_never_opened_as_a_result(relay: Relay, tmp_path: Path) -> None:
    # a result folder where the relay would once have looked: it must not be read
    result_folder(relay.settings.data_dir / "results")

    outcome(relay, completed(result_ref=f"file:{relay.settings.data_dir / 'results' / JOB}"))

    reason, why = refusal(relay)
    assert reason == "Forbidden" and "results are read from the store only" in why
