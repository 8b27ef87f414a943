"""One contract for the tracking port, over MLflow as the relay meets it: a local store
(sqlite:///, the default) and a tracking server over HTTP (the REST API a remote or
Azure ML tracking URI speaks), each a real MLflow.

The port only writes, apart from metric histories; what a write left behind is read through
MLflow's own client. Names are unique per test, so the tests of a class share one store.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.contracts.events import MetricPoint
from arcflare.metrics_relay.adapters.tracking import (
    BATCH_LIMIT,
    MlflowTracking,
    Tracking,
    TrackingRefused,
)
from mlflow import MlflowClient

from tests.support.flare_project import free_port


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def points(key: str, steps) -> list[MetricPoint]:
    return [MetricPoint(key=key, value=step / 10, step=step, timestamp_ms=1_000 + step) for step in steps]


class TrackingContract:
    @pytest.fixture
    def tracking_uri(self) -> str:
        raise NotImplementedError("a contract subclass provides the store's tracking URI")

    @pytest.fixture
    def tracking(self) -> Tracking:
        raise NotImplementedError("a contract subclass provides the tracking fixture")

    @pytest.fixture
    def mlflow(self, tracking_uri: str) -> MlflowClient:
        """What the writes left behind, read with MLflow's own client."""
        return MlflowClient(tracking_uri)

    @pytest.fixture
    def run_id(self, tracking: Tracking) -> str:
        return tracking.run(tracking.experiment(unique("exp"), {}), unique("key"), "run", {})

    def test_an_experiment_is_found_not_made_twice(self, tracking: Tracking) -> None:
        name = unique("exp")

        first = tracking.experiment(name, {"federation": "fed"})

        assert tracking.experiment(name, {}) == first

    def test_a_run_is_found_by_its_key_under_its_parent(self, tracking: Tracking, mlflow) -> None:
        experiment = tracking.experiment(unique("exp"), {})
        parent = tracking.run(experiment, unique("key"), "parent", {"job_id": "j1"})
        key = unique("key")

        child = tracking.run(experiment, key, "site-1", {"site": "site-1"}, parent_run_id=parent)
        again = tracking.run(experiment, key, "renamed", {})

        assert again == child != parent
        assert tracking.run_experiment(child) == experiment
        tags = mlflow.get_run(child).data.tags
        assert (tags["site"], tags["mlflow.parentRunId"]) == ("site-1", parent)

    @pytest.mark.parametrize("quote", ["'", '"'])
    def test_a_key_with_a_quote_still_finds_its_run(self, tracking: Tracking, quote: str) -> None:
        experiment = tracking.experiment(unique("exp"), {})
        key = unique(f"job{quote}s")

        assert tracking.run(experiment, key, "r", {}) == tracking.run(experiment, key, "r", {})

    def test_a_run_that_does_not_exist_has_no_experiment(self, tracking: Tracking) -> None:
        assert tracking.run_experiment(uuid.uuid4().hex) is None

    def test_metric_histories_come_in_step_order(self, tracking: Tracking, run_id: str) -> None:
        tracking.log_points(run_id, points("loss", [2, 0, 1]))

        assert tracking.metric_history(run_id, "loss") == [(0, 0.0), (1, 0.1), (2, 0.2)]
        assert tracking.metric_history(run_id, "never-logged") == []

    def test_more_points_than_one_batch_are_all_kept(self, tracking: Tracking, run_id: str) -> None:
        tracking.log_points(run_id, points("acc", range(BATCH_LIMIT + 1)))

        assert [step for step, _ in tracking.metric_history(run_id, "acc")] == list(range(BATCH_LIMIT + 1))

    def test_tags_and_the_final_status_land_on_the_run(self, tracking, run_id, mlflow) -> None:
        tracking.set_tags(run_id, {"nvflare.connection": "disconnected"})
        tracking.end_run(run_id, "KILLED")

        run = mlflow.get_run(run_id)
        assert run.data.tags["nvflare.connection"] == "disconnected"
        assert run.info.status == "KILLED"

    def test_a_model_version_is_registered_once_per_unique_tag(self, tracking, run_id, mlflow, tmp_path) -> None:
        (tmp_path / "server.npy").write_bytes(b"weights")
        source = tracking.log_artifact(run_id, tmp_path / "server.npy", "global_model")
        name = unique("model")

        first = tracking.register_model(name, source, run_id, {"job_id": "j1"}, unique_tag="job_id")
        again = tracking.register_model(name, source, run_id, {"job_id": "j1"}, unique_tag="job_id")
        other = tracking.register_model(name, source, run_id, {"job_id": "j2"}, unique_tag="job_id")

        assert source.endswith("/global_model")
        assert (first, again, other) == ("1", "1", "2")
        version = mlflow.get_model_version(name, first)
        assert (version.run_id, version.source) == (run_id, source)

    def test_names_the_server_never_accepts_are_refused(self, tracking: Tracking, run_id: str) -> None:
        with pytest.raises(TrackingRefused):
            tracking.log_points(run_id, points("../escape", [0]))
        with pytest.raises(TrackingRefused):
            tracking.set_tags(run_id, {"../escape": "x"})
        with pytest.raises(TrackingRefused):
            tracking.register_model("no/slashes", "file:/nowhere", run_id, {"job_id": "j"},
                                    unique_tag="job_id")


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-local")


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_tracking_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


class TestLocalStore(TrackingContract):
    @pytest.fixture
    def tracking_uri(self, local_store: Path) -> str:
        return f"sqlite:///{local_store / 'mlflow.db'}"

    @pytest.fixture
    def tracking(self, tracking_uri: str, local_store: Path) -> Tracking:
        return MlflowTracking(tracking_uri, artifact_root=(local_store / "mlartifacts").as_uri())


@pytest.mark.slow
class TestTrackingServer(TrackingContract):
    @pytest.fixture
    def tracking_uri(self, tracking_server: str) -> str:
        return tracking_server

    @pytest.fixture
    def tracking(self, tracking_uri: str) -> Tracking:
        return MlflowTracking(tracking_uri)


class running_tracking_server:
    """`mlflow server` on a free loopback port over a fresh store; stopped, with its workers, on exit."""

    def __init__(self, root: Path, timeout: float = 90.0) -> None:
        self.root, self.timeout, self.port = root, timeout, free_port()

    def __enter__(self) -> str:
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                   "--artifacts-destination", str(self.root / "mlartifacts")]
        with open(self.root / "server.log", "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        uri = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + self.timeout
        while not self._healthy(uri):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"mlflow server not up: {(self.root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        return uri

    @staticmethod
    def _healthy(uri: str) -> bool:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()
