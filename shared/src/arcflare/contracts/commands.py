"""Commands: orders, each to one queue (docs/architecture.md §2). Add fields freely; rename nothing."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.base import Command
from arcflare.contracts.fields import (
    ComputeSpec,
    Email,
    FederationName,
    HostName,
    JobId,
    OrgName,
    Part,
    Port,
    Role,
    SiteData,
    SiteName,
    data_problems,
)
from pydantic import Field, model_validator


class ServerSpec(Part):
    host: HostName = "localhost"
    #: None: a free port is chosen when the federation is created (local mode)
    port: Port | None = None
    compute: ComputeSpec = ComputeSpec()


class SiteSpec(Part):
    name: SiteName
    org: OrgName
    compute: ComputeSpec = ComputeSpec()
    #: the site's own data, each input bound to its jobs as ARCFLARE_INPUT_<NAME>
    data: SiteData = Field(default_factory=list)

    @model_validator(mode="after")
    def _data_fits_compute(self) -> SiteSpec:
        if problems := data_problems(self.compute, self.data):
            raise ValueError("; ".join(problems))
        return self


class AdminSpec(Part):
    email: Email
    org: OrgName
    role: Role


class _ProvisionerCommand(Command):
    channel: ClassVar[str] = "provisioner"


class CreateFederation(_ProvisionerCommand):
    name: FederationName
    server: ServerSpec = ServerSpec()
    sites: list[SiteSpec] = Field(min_length=1, max_length=1000)
    admins: list[AdminSpec] = Field(min_length=1, max_length=100)
    cert_validity_days: int = Field(default=360, ge=1, le=3650)
    auto_deploy: bool = False
    #: seconds before the server drops a silent client (NVFlare's default is 600)
    heart_beat_timeout_s: int = Field(default=60, ge=10, le=3600)

    @property
    def federation(self) -> str:
        return self.name

    @model_validator(mode="after")
    def _unique_names(self) -> CreateFederation:
        names = [s.name for s in self.sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sites: names must be unique; repeated: {', '.join(dupes)}")
        emails = [a.email for a in self.admins]
        dupes = sorted({e for e in emails if emails.count(e) > 1})
        if dupes:
            raise ValueError(f"admins: emails must be unique; repeated: {', '.join(dupes)}")
        if not any(a.role == "project_admin" for a in self.admins):
            raise ValueError("admins: at least one admin must have role project_admin")
        return self


class AddSite(_ProvisionerCommand):
    federation: FederationName
    site: SiteName
    org: OrgName
    compute: ComputeSpec = ComputeSpec()
    #: the site's own data, each input bound to its jobs as ARCFLARE_INPUT_<NAME>
    data: SiteData = Field(default_factory=list)
    #: deploy the new site once its kit exists
    deploy: bool = False

    @model_validator(mode="after")
    def _data_fits_compute(self) -> AddSite:
        if problems := data_problems(self.compute, self.data):
            raise ValueError("; ".join(problems))
        return self


class RemoveSite(_ProvisionerCommand):
    federation: FederationName
    site: SiteName


#: a participant whose certificate can be renewed: "server", a site's name or an admin's email
Participant = Annotated[
    str, Field(pattern=r"^([A-Za-z0-9-_]{1,63}|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})$",
               max_length=254,
               description='"server", a site (NVFlare client) name, or an admin\'s email')
]
#: what a renewal does while a job runs on the participant: wait for the job to end, or
#: leave the participant on its old certificate and say why
IfJobRunning = Literal["wait", "refuse"]


class RenewCertificate(_ProvisionerCommand):
    """A new key and certificate for one participant from the federation's own CA, in a new
    version of its kit; the deployer then restarts that participant on it (the roll)."""

    federation: FederationName
    participant: Participant
    if_job_running: IfJobRunning = "wait"


class _DeployerCommand(Command):
    channel: ClassVar[str] = "deployer"


class DeployServer(_DeployerCommand):
    federation: FederationName


class DeploySite(_DeployerCommand):
    federation: FederationName
    site: SiteName


class StopSite(_DeployerCommand):
    federation: FederationName
    site: SiteName


class RestartSite(_DeployerCommand):
    federation: FederationName
    site: SiteName


class TeardownFederation(_DeployerCommand):
    federation: FederationName


class ArtifactPackage(Part):
    """A job folder (or a .zip/.tar(.gz) of one) in the artifact store, by reference:
    `arcflare job submit FED PATH` and Client.submit_job pack and upload it."""

    kind: Literal["artifact"] = "artifact"
    ref: ArtifactRef


class FolderPackage(Part):
    """Refused by the job-controller: a path of the sender's machine is no job for another
    machine (kept so that such a command is answered with that reason). Use ArtifactPackage."""

    kind: Literal["folder"] = "folder"
    path: str = Field(min_length=1, max_length=4096)


class ArchivePackage(Part):
    """Refused like FolderPackage; use ArtifactPackage."""

    kind: Literal["archive"] = "archive"
    path: str = Field(min_length=1, max_length=4096)


class RecipePackage(Part):
    kind: Literal["recipe"] = "recipe"
    recipe: str = Field(min_length=1, max_length=64)
    parameters: dict[str, Any] = Field(default_factory=dict)


JobPackage = Annotated[ArtifactPackage | RecipePackage | FolderPackage | ArchivePackage,
                      Field(discriminator="kind")]


class _JobCommand(Command):
    channel: ClassVar[str] = "job-controller"


class SubmitJob(_JobCommand):
    """Answered at once with JobWaitingForClients; the job is submitted to NVFlare (JobSubmitted)
    once min_clients of its sites are connected, or fails (JobFailed, clients_timeout)."""

    federation: FederationName
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    package: JobPackage
    min_clients: int = Field(default=1, ge=1, le=1000)
    #: restrict the job to these sites (default: every site)
    sites: list[SiteName] | None = None
    #: seconds the job may run once submitted to NVFlare; then it is aborted
    timeout_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    #: seconds to wait, after acceptance, for min_clients of the sites to be connected to the
    #: server; then the job fails with reason clients_timeout, never having reached NVFlare
    clients_timeout_s: int = Field(default=600, ge=1, le=7 * 24 * 3600)


class AbortJob(_JobCommand):
    federation: FederationName
    #: the NVFlare job id, or the id of the SubmitJob that asked for the job: that one names
    #: it in every state, also while it waits for clients (it has no NVFlare id yet)
    job_id: JobId


class RefreshFederationStatus(_JobCommand):
    federation: FederationName


class _SiteCommand(Command):
    channel: ClassVar[str] = "site-commands"


class TailSiteLogs(_SiteCommand):
    federation: FederationName
    site: SiteName
    lines: int = Field(default=100, ge=1, le=200)
    #: NVFlare log file names (allow-listed by the agent); default log.txt
    file: str = Field(default="log.txt", max_length=64)


class RestartSiteClient(_SiteCommand):
    federation: FederationName
    site: SiteName
