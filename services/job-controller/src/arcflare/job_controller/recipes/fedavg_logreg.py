"""FedAvg logistic regression on synthetic non-IID data, built with NVFlare's Recipe API."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from arcflare.job_controller.packages import InvalidPackage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CLIENT_SCRIPT = Path(__file__).with_name("logreg_client.py")


class LogRegParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(default=5, ge=1, le=1000)
    lr: float = Field(default=0.5, gt=0, le=10)
    local_epochs: int = Field(default=5, ge=1, le=1000)
    n_features: int = Field(default=10, ge=1, le=10_000)
    samples: int = Field(default=500, ge=10, le=1_000_000)


def parameters(raw: dict[str, Any]) -> LogRegParameters:
    try:
        return LogRegParameters.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidPackage(f"package.parameters.{field}: {first['msg']}") from None


def build_fedavg_logreg(name: str, raw: dict[str, Any], min_clients: int, destination: Path) -> Path:
    from nvflare.app_common.np.recipes.fedavg import NumpyFedAvgRecipe

    p = parameters(raw)
    with tempfile.TemporaryDirectory() as scratch:
        # the recipe copies train_script into the job's custom folder by its base name
        script = Path(scratch) / "logreg_client.py"
        shutil.copyfile(CLIENT_SCRIPT, script)
        recipe = NumpyFedAvgRecipe(
            name=name,
            model=[0.0] * (p.n_features + 1),
            min_clients=min_clients,
            num_rounds=p.rounds,
            train_script=str(script),
            train_args=(
                f"--lr {p.lr} --local_epochs {p.local_epochs} "
                f"--n_features {p.n_features} --samples {p.samples}"
            ),
        )
        recipe.export(str(destination))
    job = destination / name
    _script_by_name(job / "app" / "config" / "config_fed_client.json", script.name)
    return job


def _script_by_name(client_config: Path, script_name: str) -> None:
    """The recipe records the scratch path of the script; the job must name its custom copy."""
    config = json.loads(client_config.read_text())
    for executor in config.get("executors", []):
        args = executor.get("executor", {}).get("args", {})
        if "task_script_path" in args:
            args["task_script_path"] = script_name
    client_config.write_text(json.dumps(config, indent=2, sort_keys=True))
