"""metrics-relay settings (env prefix ARCFLARE_)."""
from __future__ import annotations

from typing import Literal

from arcflare.runtime import Settings
from pydantic import Field


class MetricsRelaySettings(Settings):
    #: MLflow tracking URI; default sqlite:///<data_dir>/mlflow.db. In production the Azure
    #: ML workspace's URI (azureml://...; needs the azureml-mlflow plugin, see README).
    tracking_uri: str | None = None
    #: model registry URI; default: the tracking URI
    registry_uri: str | None = None
    #: where new experiments keep artifacts; default <data_dir>/mlartifacts (local stores only:
    #: Azure ML decides its own artifact store)
    artifact_root: str | None = None
    #: "per_job": a parent run per NVFlare job. "server_job": when the NVFlare server runs
    #: as an Azure ML job, that job's own MLflow run (its MLFLOW_RUN_ID, reported by the
    #: bridge) is the parent, so metrics show on the job's Metrics tab in Azure ML Studio.
    parent_run: Literal["per_job", "server_job"] = "per_job"
    #: metrics for a job nobody has announced yet are retried for this long (the job's
    #: events may simply not have arrived), then rejected as not_found; keep it below the
    #: time the retries take to use up the subscription's max delivery count (~2 min)
    unknown_job_grace_s: float = 60.0
    #: job results (fetched from the artifact store for the global model): caps on the
    #: archive and on what it unpacks to, in bytes and in files and folders
    max_result_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_result_files: int = Field(default=20_000, gt=0)

    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    def resolved_artifact_root(self) -> str | None:
        if self.artifact_root:
            return self.artifact_root
        if self.resolved_tracking_uri().startswith("sqlite:"):
            return (self.data_dir / "mlartifacts").as_uri()
        return None
