"""The tracking port (MLflow terms: experiments, runs, metric histories, model registry)
and its MLflow adapter. Every create is a find-or-create on a key, so a handler that
runs twice (redelivery after a crash) never makes a second run or model version."""
from __future__ import annotations

import abc
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Literal

from arcflare.contracts.events import MetricPoint
from arcflare.observability.tracing import traced

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]
RUN_KEY_TAG = "arcflare.run_key"
#: MLflow's own cap on metrics per log_batch call
BATCH_LIMIT = 1000


class TrackingRefused(ValueError):
    """The tracking server will never accept this (bad key, bad name): not worth a retry."""


class Tracking(abc.ABC):
    @abc.abstractmethod
    def experiment(self, name: str, tags: Mapping[str, str]) -> str:
        """Find or create the experiment; returns its id."""

    @abc.abstractmethod
    def run(self, experiment_id: str, key: str, name: str, tags: Mapping[str, str],
            parent_run_id: str | None = None) -> str:
        """Find the run tagged with key, or create it; returns its run id."""

    @abc.abstractmethod
    def run_experiment(self, run_id: str) -> str | None:
        """The experiment id of an existing run, or None if there is no such run."""

    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None: ...

    @abc.abstractmethod
    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every point of one metric, in step order."""

    @abc.abstractmethod
    def end_run(self, run_id: str, status: RunStatus) -> None: ...

    @abc.abstractmethod
    def log_artifact(self, run_id: str, path: Path, artifact_path: str) -> str:
        """Upload a file under artifact_path; returns the artifact folder's URI."""

    @abc.abstractmethod
    def register_model(self, name: str, source: str, run_id: str,
                       tags: Mapping[str, str], *, unique_tag: str) -> str:
        """Register source as a version of model `name`, unless a version whose
        `unique_tag` equals tags[unique_tag] exists already. Returns the version."""


class MlflowTracking(Tracking):
    def __init__(self, tracking_uri: str, registry_uri: str | None = None,
                 artifact_root: str | None = None) -> None:
        from mlflow import MlflowClient

        _write_ahead_log(tracking_uri)
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.client = MlflowClient(tracking_uri=tracking_uri,
                                   registry_uri=registry_uri or tracking_uri)

    @traced("mlflow experiment")
    def experiment(self, name: str, tags: Mapping[str, str]) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        with _refusals():
            try:
                return self.client.create_experiment(name, artifact_location=location,
                                                     tags=dict(tags))
            except Exception as exc:
                if _code(exc) != "RESOURCE_ALREADY_EXISTS":
                    raise
        return self.client.get_experiment_by_name(name).experiment_id  # created concurrently

    @traced("mlflow run")
    def run(self, experiment_id: str, key: str, name: str, tags: Mapping[str, str],
            parent_run_id: str | None = None) -> str:
        found = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = {_literal(key)}",
            max_results=1)
        if found:
            return found[0].info.run_id
        all_tags = {**tags, RUN_KEY_TAG: key}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        with _refusals():
            return self.client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id

    @traced("mlflow run_experiment")
    def run_experiment(self, run_id: str) -> str | None:
        try:
            return self.client.get_run(run_id).info.experiment_id
        except Exception as exc:
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    @traced("mlflow set_tags")
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        with _refusals():
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    @traced("mlflow log_points")
    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points]
        with _refusals():
            for i in range(0, len(metrics), BATCH_LIMIT):
                self.client.log_batch(run_id, metrics=metrics[i:i + BATCH_LIMIT], synchronous=True)

    @traced("mlflow metric_history")
    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        history = self.client.get_metric_history(run_id, key)
        return sorted((m.step, m.value) for m in history)

    @traced("mlflow end_run")
    def end_run(self, run_id: str, status: RunStatus) -> None:
        self.client.set_terminated(run_id, status)

    @traced("mlflow log_artifact")
    def log_artifact(self, run_id: str, path: Path, artifact_path: str) -> str:
        self.client.log_artifact(run_id, str(path), artifact_path)
        return f"{self.client.get_run(run_id).info.artifact_uri.rstrip('/')}/{artifact_path}"

    @traced("mlflow register_model")
    def register_model(self, name: str, source: str, run_id: str,
                       tags: Mapping[str, str], *, unique_tag: str) -> str:
        with _refusals():
            try:
                self.client.create_registered_model(name)
            except Exception as exc:
                if _code(exc) != "RESOURCE_ALREADY_EXISTS":
                    raise
        existing = self.client.search_model_versions(
            f"name = {_literal(name)} and tags.`{unique_tag}` = {_literal(tags[unique_tag])}")
        if existing:
            return str(existing[0].version)
        with _refusals():
            version = self.client.create_model_version(
                name, source=source, run_id=run_id, tags={k: str(v) for k, v in tags.items()})
        return str(version.version)


def _write_ahead_log(uri: str) -> None:
    """A local SQLite store in WAL mode: one fsync per commit instead of a rollback journal's
    several (3-4x the points/s on a slow disk), and readers (`mlflow ui`) never block the
    relay. The mode is stored in the file, so MLflow's own connections use it too."""
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def _literal(value: str) -> str:
    """A string in an MLflow search filter, which knows no escapes: in whichever quotes the
    value does not contain (a backslash-escaped quote would not match, and a find-or-create
    would create every time)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise TrackingRefused(f"{value!r}: an MLflow search cannot name a value with both kinds of quotes")


def _code(exc: Exception) -> str | None:
    return getattr(exc, "error_code", None)


class _refusals:
    """MLflow's 'invalid parameter' errors become TrackingRefused (permanent); anything
    else (connection refused, database locked, 5xx) stays as it is: transient."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and _code(exc) in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
            raise TrackingRefused(str(exc).splitlines()[0][:500]) from exc
        return False
