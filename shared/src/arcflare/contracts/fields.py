"""Constrained field types shared by commands and events.

The patterns are NVFlare's own (nvflare.apis.utils.format_check), so a name that
passes here also passes NVFlare's provisioning.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

FederationName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
               description="federation (NVFlare project) name: letters, digits, '-', '_'")
]
SiteName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9-_]+$", max_length=63,
               description="NVFlare client name: letters, digits, '-', '_'")
]
OrgName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_]+$", max_length=63,
               description="NVFlare organisation: letters, digits, '_'")
]
HostName = Annotated[
    str,
    Field(
        pattern=r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
        r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$",
        max_length=253,
    ),
]
Email = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$", max_length=254)
]
Port = Annotated[int, Field(ge=1024, le=65535)]
Role = Literal["project_admin", "org_admin", "lead", "member"]
ROLES: tuple[str, ...] = ("project_admin", "org_admin", "lead", "member")
JobId = Annotated[str, Field(min_length=1, max_length=128)]


class Part(BaseModel):
    """A nested value object: strict like the messages that hold it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ComputeSpec(Part):
    """Where a participant runs. `local`: a process here; `azureml`: an Azure ML command job."""

    backend: Literal["local", "azureml"] = "local"
    #: Azure ML compute name: an attached Arc Kubernetes compute or an AML compute cluster
    compute: str | None = Field(default=None, max_length=255)
    instance_type: str | None = Field(default=None, max_length=255)
    #: Azure ML environment "name:version" or "name@latest"; default: the ArcFlare NVFlare env
    environment: str | None = Field(default=None, max_length=255)


# --- a site's data ------------------------------------------------------------------
# Each site names the data its jobs may read; the deployer binds each input to the site's
# NVFlare client as the environment variable input_variable(name), which a job reads.
# Nothing about the data's content is in these: a name, a kind and where it is.

InputName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9-_]+$", max_length=63,
               description="data input name: letters, digits, '-', '_' (NVFlare's rule for names)")
]
#: a Kubernetes object name (RFC 1123 subdomain), as a PersistentVolumeClaim's must be
KubernetesName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
               max_length=253)
]
DATASTORE_URI = r"^azureml://datastores/[A-Za-z0-9_]+/paths/\S*$"
DATA_ASSET_URI = r"^azureml:[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_.-]+$"


def _absolute_folder(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or "\0" in value or "\n" in value:
        raise ValueError("must be an absolute folder path without '..'")
    return value


FolderPath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_absolute_folder)]


def input_variable(name: str) -> str:
    """The environment variable a site's job reads an input's folder from."""
    return "ARCFLARE_INPUT_" + name.upper().replace("-", "_")


class PathInput(Part):
    """A folder the site's client can read: on the host for the local backend; for azureml,
    inside the job's container (a volume the cluster mounts into it, see PvcInput)."""

    kind: Literal["path"] = "path"
    name: InputName
    path: FolderPath


class UriInput(Part):
    """An Azure ML datastore folder or registered data asset, mounted or downloaded by Azure ML."""

    kind: Literal["uri"] = "uri"
    name: InputName
    uri: str = Field(max_length=2048, pattern=f"{DATASTORE_URI}|{DATA_ASSET_URI}",
                     description="azureml://datastores/<datastore>/paths/<folder> "
                                 "or azureml:<data asset>:<version>")
    mode: Literal["ro_mount", "download"] = "ro_mount"


class PvcInput(Part):
    """A PersistentVolumeClaim on the site's Arc cluster. Azure ML mounts a claim labelled
    ml.azure.com/pvc=true into every job pod of its compute's namespace, at the path in the
    claim's ml.azure.com/mountpath annotation: mount_path must name that same path."""

    kind: Literal["pvc"] = "pvc"
    name: InputName
    pvc: KubernetesName
    mount_path: FolderPath


def _input_kind(value: Any) -> str | None:
    """`kind` when given, else the one locator key present: `{name: x, path: /srv/x}`."""
    if not isinstance(value, dict):
        return getattr(value, "kind", None)
    if "kind" in value:
        return value["kind"]
    present = [kind for kind in ("path", "uri", "pvc") if kind in value]
    return present[0] if len(present) == 1 else None


DataInput = Annotated[
    Annotated[PathInput, Tag("path")] | Annotated[UriInput, Tag("uri")]
    | Annotated[PvcInput, Tag("pvc")],
    Discriminator(_input_kind, custom_error_type="data_input",
                  custom_error_message="a data input is a path, a uri or a pvc: give exactly one of these keys"),
]
SiteData = Annotated[list[DataInput], Field(max_length=32)]


def data_problems(compute: ComputeSpec, data: list[DataInput]) -> list[str]:
    """What is wrong with a site's data given where the site runs (empty: nothing)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(data):
        variable = input_variable(item.name)
        if variable in seen:
            problems.append(f"data.{i}.name: {item.name!r} and {seen[variable]!r} would both be "
                            f"{variable} to a job; rename one")
        seen.setdefault(variable, item.name)
        if item.kind != "path" and compute.backend != "azureml":
            problems.append(f"data.{i}: input {item.name!r} is a {item.kind}, which only an Azure "
                            "ML job can mount; set compute.backend to azureml, or give a path")
    return problems
