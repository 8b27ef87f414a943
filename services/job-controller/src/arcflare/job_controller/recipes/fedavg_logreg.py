"""FedAvg logistic regression, built with NVFlare's Recipe API: on each site's own CSV files
(`data` names the site input, `label` and `features` its columns), or on synthetic non-IID
data when no input is named."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from arcflare.contracts.fields import InputName
from arcflare.job_controller.packages import InvalidPackage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CLIENT_SCRIPT = Path(__file__).with_name("logreg_client.py")

#: a CSV column name as it can travel in the client's arguments (NVFlare splits them on
#: whitespace; ',' separates features; '$' would start one of its secret references)
ColumnName = Annotated[str, Field(pattern=r"^[^\s,$]{1,128}$")]


class LogRegParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(default=5, ge=1, le=1000)
    lr: float = Field(default=0.5, gt=0, le=10)
    local_epochs: int = Field(default=5, ge=1, le=1000)
    #: model size when features are not named (synthetic data, or every CSV column but the label)
    n_features: int = Field(default=10, ge=1, le=10_000)
    #: rows of synthetic data per site
    samples: int = Field(default=500, ge=10, le=1_000_000)
    #: the site data input to train on (ARCFLARE_INPUT_<NAME> at each site); None: synthetic
    data: InputName | None = None
    #: the CSV column holding the 0/1 label
    label: ColumnName = "label"
    #: the CSV columns to train on, in this order; None: every column but the label
    features: list[ColumnName] | None = Field(default=None, min_length=1, max_length=10_000)

    @field_validator("features", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # --param features=age,bmi,glucose on the command line
        return [part.strip() for part in value.split(",")] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_model_size(self) -> LogRegParameters:
        if self.features is None:
            return self
        if self.data is None:
            raise ValueError("features name CSV columns, so they need data (the site input)")
        if "n_features" in self.model_fields_set and self.n_features != len(self.features):
            raise ValueError(f"n_features is {self.n_features} but {len(self.features)} features "
                             "are named; leave n_features out")
        if self.label in self.features:
            raise ValueError(f"the label column {self.label!r} is also named as a feature")
        return self

    @property
    def model_size(self) -> int:
        return len(self.features) if self.features else self.n_features

    def client_arguments(self) -> str:
        args = (f"--lr {self.lr} --local_epochs {self.local_epochs} "
                f"--n_features {self.model_size} --samples {self.samples}")
        if self.data:
            args += f" --data {self.data} --label {self.label}"
        if self.features:
            args += f" --features {','.join(self.features)}"
        return args


def parameters(raw: dict[str, Any]) -> LogRegParameters:
    try:
        return LogRegParameters.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = f"package.parameters.{field}" if field else "package.parameters"
        raise InvalidPackage(f"{where}: {first['msg']}") from None


def build_fedavg_logreg(name: str, raw: dict[str, Any], min_clients: int, destination: Path) -> Path:
    from nvflare.app_common.np.recipes.fedavg import NumpyFedAvgRecipe

    p = parameters(raw)
    with tempfile.TemporaryDirectory() as scratch:
        # the recipe copies train_script into the job's custom folder by its base name
        script = Path(scratch) / "logreg_client.py"
        shutil.copyfile(CLIENT_SCRIPT, script)
        recipe = NumpyFedAvgRecipe(
            name=name,
            model=[0.0] * (p.model_size + 1),
            min_clients=min_clients,
            num_rounds=p.rounds,
            train_script=str(script),
            train_args=p.client_arguments(),
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
