"""The deployer's settings (env prefix ARCFLARE_); laptop defaults need nothing set."""
from __future__ import annotations

from pathlib import Path

from arcflare.runtime import Settings
from pydantic import Field

#: deploy/aml/ in a source checkout (the Azure ML environment's build context)
_REPO_AML_ENV = Path(__file__).resolve().parents[5] / "deploy" / "aml"


class DeployerSettings(Settings):
    #: seconds between SIGTERM and SIGKILL when stopping a participant's process group
    stop_grace_s: float = Field(default=10.0, ge=0, le=600)
    #: seconds a local server gets to accept connections before the deploy fails
    server_ready_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    #: seconds between passes of the watcher (crashed processes, Azure ML job status;
    #: a local server that is not listening yet is looked at every 0.2 s)
    watch_interval_s: float = Field(default=2.0, gt=0, le=600)
    #: Azure ML workspace for compute.backend=azureml (DefaultAzureCredential)
    aml_subscription_id: str | None = None
    aml_resource_group: str | None = None
    aml_workspace: str | None = None
    #: the NVFlare environment jobs run in; built from aml_environment_context if absent
    aml_environment: str = "arcflare-nvflare"
    aml_environment_context: Path = _REPO_AML_ENV
    aml_experiment: str = "arcflare"

    @property
    def kit_cache_dir(self) -> Path:
        """Kits fetched from the artifact store, unpacked (0700, keys 0600), one per version."""
        return self.data_dir / "deployer" / "kits"
