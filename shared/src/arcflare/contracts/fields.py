"""Constrained field types shared by commands and events.

The patterns are NVFlare's own (nvflare.apis.utils.format_check), so a name that
passes here also passes NVFlare's provisioning.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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
