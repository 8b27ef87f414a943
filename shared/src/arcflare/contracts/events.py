"""Events: facts, past tense, on the `events` topic; telemetry on `telemetry` (docs/architecture.md §2).

No event ever carries key material: kits travel as references, certificates as
SHA-256 fingerprints.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.base import Event, Telemetry
from arcflare.contracts.commands import AdminSpec, IfJobRunning, Participant
from arcflare.contracts.fields import (
    ComputeSpec,
    FederationName,
    InputName,
    JobId,
    Part,
    SiteData,
    SiteName,
)
from pydantic import Field, StringConstraints

#: degraded: the client runs and is connected, but a data input the site declared is missing
#: or unreadable, so the site's jobs would fail
HealthStatus = Literal[
    "starting", "connected", "disconnected", "crashed", "stopped", "misconfigured", "degraded",
    "unknown"
]
Fingerprint = Annotated[str, Field(pattern=r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")]
#: the id of another message, verbatim: an answer names what it answers exactly as it came
#: (a message id is any string; stripping its spaces would name another message)
MessageId = Annotated[str, StringConstraints(strip_whitespace=False)]


class AdminCertificate(Part):
    """An admin's certificate as the outside world may know it: no key, only its dates."""

    participant: str = Field(max_length=254)  # the admin's email
    fingerprint: Fingerprint
    not_after: datetime


class FederationProvisioned(Event):
    federation: FederationName
    server_endpoint: str  # host:port
    #: the kits' names for people and Azure ML: the artifact's locator, or the Azure ML data
    #: asset `azureml:<name>:<version>` the deployer's Azure ML jobs mount
    server_kit_ref: str
    admin_kit_ref: str
    #: the admin whose kit admin_kit_ref is (the FLARE API logs in as this user)
    admin_name: str
    sites: list[SiteName]
    server_compute: ComputeSpec = ComputeSpec()
    #: who may do what in this federation (arcflare.contracts.authz)
    admins: list[AdminSpec] = Field(default_factory=list)
    ca_fingerprint: Fingerprint
    auto_deploy: bool = False
    #: true when a repeated CreateFederation found the federation already provisioned
    existing: bool = False
    #: the root CA's and the server certificate's expiry (never the keys)
    ca_not_after: datetime | None = None
    server_cert_fingerprint: Fingerprint | None = None
    server_not_after: datetime | None = None
    #: the server's and the admin's kits in the artifact store (area kits): what the deployer
    #: and the job-controller fetch, verify and use; no path of the provisioner's machine
    server_kit: ArtifactRef | None = None
    admin_kit: ArtifactRef | None = None
    #: each admin's current certificate (their kits are the provisioner's to hand out)
    admin_certificates: list[AdminCertificate] = Field(default_factory=list, max_length=100)


class SiteProvisioned(Event):
    federation: FederationName
    site: SiteName
    org: str
    kit_ref: str
    cert_fingerprint: Fingerprint
    not_after: datetime
    compute: ComputeSpec = ComputeSpec()
    #: the deployer should start it (auto_deploy federation, or AddSite --deploy)
    deploy: bool = False
    existing: bool = False
    #: the site's kit in the artifact store (kit_ref is its locator, or its Azure ML asset)
    kit: ArtifactRef | None = None
    #: the site's data inputs as the spec names them (name, kind, locator), for the deployer
    data: SiteData = Field(default_factory=list)


class SiteRemoved(Event):
    federation: FederationName
    site: SiteName


class CertificateExpiring(Event):
    federation: FederationName
    participant: str
    kind: Literal["server", "client", "admin", "ca"]
    fingerprint: Fingerprint
    not_after: datetime
    days_left: int


class CertificateRenewed(Event):
    """A participant's new key and certificate, signed by the federation's own CA, in a new
    version of its kit; the previous version is kept until the deployer has rolled the
    participant onto the new one (ParticipantRolled). No other kit changed."""

    federation: FederationName
    participant: Participant  # "server", a site's name or an admin's email
    kind: Literal["server", "client", "admin"]
    old_fingerprint: Fingerprint
    new_fingerprint: Fingerprint
    not_after: datetime
    kit_ref: str
    #: what the deployer does while a job runs on the participant (the command's option)
    if_job_running: IfJobRunning = "wait"
    #: renewed by the provisioner on its own (ARCFLARE_CERT_AUTO_RENEW_DAYS), not on command
    automatic: bool = False
    #: the CA expires before a full term would end, so this certificate ends with the CA:
    #: only a new CA (docs/certificates.md) lets it live longer
    limited_by_ca: bool = False
    #: the new kit in the artifact store (kit_ref is its locator, or its Azure ML asset)
    kit: ArtifactRef | None = None


class ServerDeployed(Event):
    federation: FederationName
    endpoint: str
    backend: Literal["local", "azureml"]
    handle: str  # pid or Azure ML job name
    #: the deployer's generation of this participant's deployment (one per process or job
    #: it started); with the event kind it orders a participant's lifecycle facts
    generation: int | None = None


class SiteDeployed(Event):
    federation: FederationName
    site: SiteName
    backend: Literal["local", "azureml"]
    handle: str
    #: the deployer's generation of this participant's deployment (one per process or job
    #: it started); with the event kind it orders a participant's lifecycle facts
    generation: int | None = None
    #: asked for by RestartSite (else DeploySite, or an automatic deploy)
    restart: bool = False


class DeploymentFailed(Event):
    federation: FederationName
    target: str  # "server" or a site name
    reason: str
    #: the deployer's generation of this participant's deployment (one per process or job
    #: it started); with the event kind it orders a participant's lifecycle facts
    generation: int | None = None
    restart: bool = False


class SiteStopped(Event):
    federation: FederationName
    site: SiteName
    reason: Literal["requested", "crashed", "removed"]
    #: the deployer's generation of this participant's deployment (one per process or job
    #: it started); with the event kind it orders a participant's lifecycle facts
    generation: int | None = None


class ParticipantRolled(Event):
    """The deployer moved a participant onto its renewed kit: restarted it from the new kit
    (it was running; the server together with its running sites), or recorded the kit for
    its next start (it was not running)."""

    federation: FederationName
    participant: SiteName  # "server" or a site's name
    #: the certificate it runs with now (CertificateRenewed.new_fingerprint)
    fingerprint: Fingerprint
    restarted: bool
    generation: int | None = None
    #: the jobs the roll waited for before restarting it
    waited_for: list[JobId] = Field(default_factory=list)
    #: a server's running sites, restarted with it: an NVFlare client must register again
    #: with a server whose key changed
    sites_restarted: list[SiteName] = Field(default_factory=list)


class RollPostponed(Event):
    """A renewed participant runs a job: it is restarted on its new kit once these end."""

    federation: FederationName
    participant: SiteName
    fingerprint: Fingerprint
    jobs: list[JobId] = Field(min_length=1)


class RollRefused(Event):
    """A renewed participant was left running on its old certificate (a job was running and
    the renewal said not to wait): its next start uses the new kit."""

    federation: FederationName
    participant: SiteName
    fingerprint: Fingerprint
    reason: str = Field(max_length=2000)
    jobs: list[JobId] = Field(default_factory=list)


class FederationTornDown(Event):
    federation: FederationName
    stopped: list[str]
    #: the generation of the server deployment that was stopped
    server_generation: int | None = None


class JobWaitingForClients(Event):
    """A SubmitJob accepted: its job is prepared and waits until min_clients of its sites are
    connected to the server. Published again, caused by the same SubmitJob, whenever the set
    of connected sites changes. Until JobSubmitted gives it an NVFlare id, the job is known
    by the SubmitJob's id (this event's causation_id), which AbortJob accepts."""

    federation: FederationName
    name: str
    min_clients: int
    #: the sites it may run on (None: any site of the federation)
    sites: list[SiteName] | None = None
    clients_timeout_s: int
    #: when the wait ends in JobFailed (clients_timeout) unless min_clients are connected
    clients_deadline: datetime
    #: the job's sites connected to the server so far (empty until the first look)
    connected: list[SiteName] = Field(default_factory=list)


class JobSubmitted(Event):
    federation: FederationName
    job_id: JobId
    name: str
    sites: list[str] = Field(default_factory=list)
    rounds: int | None = None


class JobStatusChanged(Event):
    federation: FederationName
    job_id: JobId
    status: str  # NVFlare's own state, verbatim
    previous: str | None = None


class JobCompleted(Event):
    federation: FederationName
    job_id: JobId
    name: str
    status: str  # final NVFlare status, e.g. FINISHED:COMPLETED
    duration_s: float
    #: where the result is, for people: the locator of `result` (never a path)
    result_ref: str | None = None
    reason: str | None = None
    #: what NVFlare gave back (the server's job folder: global model, logs, metrics
    #: summary) in the artifact store; None when it could not be downloaded
    result: ArtifactRef | None = None


class JobFailed(Event):
    """A job that never ran: not enough clients in time, or NVFlare refused it."""

    federation: FederationName
    name: str
    #: clients_timeout (min_clients not connected within clients_timeout_s), refused (NVFlare
    #: will not take the job) or submit_failed (NVFlare unreachable until the deadline)
    reason: str
    job_id: JobId | None = None
    #: the particulars, in words (how many sites were connected, what NVFlare said)
    detail: str | None = None


class ClientView(Part):
    name: str
    last_connect_time: datetime | None = None
    #: the NVFlare version the client runs, as it answered the server (None: not known)
    nvflare_version: str | None = Field(default=None, max_length=64)


class FederationStatusObserved(Event):
    federation: FederationName
    #: NVFlare's *engine* status ("started" while a job runs, "stopped" when idle), not
    #: whether the server process is up: that is the deployer's ServerDeployed/SiteStopped
    server_status: str
    clients: list[ClientView]
    running_jobs: list[str] = Field(default_factory=list)


class SiteHealthChanged(Event):
    federation: FederationName
    site: SiteName
    status: HealthStatus
    previous: HealthStatus | None = None
    diagnosis: str = ""
    #: a short, stable code for the diagnosis (registered, tls_error, server_unreachable, ...)
    diagnosis_code: str = ""


class SiteClientRestarted(Event):
    federation: FederationName
    site: SiteName
    handle: str


class ModelRegistered(Event):
    federation: FederationName
    job_id: JobId
    name: str
    version: str
    run_id: str


class AlertRaised(Event):
    rule: str
    severity: Literal["info", "warning", "critical"]
    summary: str
    federation: str | None = None
    site: str | None = None
    source_type: str
    source_message_id: MessageId


class FieldError(Part):
    field: str
    problem: str


#: what a refusal carries at most: a rejection of a huge message must not be huge itself
MAX_DETAIL = 2000
MAX_FIELD_ERRORS = 20


class CommandRejected(Event):
    federation: str | None = None
    command_type: str
    command_id: MessageId
    #: "invalid", "Unauthenticated", "Forbidden", "unknown_type", "conflict", "not_found", ...
    reason: str
    detail: str = Field(default="", max_length=MAX_DETAIL)
    errors: list[FieldError] = Field(default_factory=list, max_length=MAX_FIELD_ERRORS)
    #: how many field errors there were (errors keeps the first MAX_FIELD_ERRORS)
    errors_total: int | None = None
    #: the issued_by the command claimed, and the principal its signature proved (None
    #: when there was no valid signature): the audit shows both
    claimed_by: str | None = None
    proven_by: str | None = None

    def bounded(self, detail_chars: int = 300, errors: int = 3) -> CommandRejected:
        """A smaller copy, for when even the capped form cannot be sent."""
        return self.model_copy(update={
            "detail": self.detail[:detail_chars], "errors": self.errors[:errors],
            "errors_total": self.errors_total if self.errors_total is not None
            else len(self.errors)})


class CommandFailed(Event):
    """A command that could not be carried out although it was valid: its last allowed
    delivery failed too (reason `retries_exhausted`), with the last error. An effect made
    before the failure (an NVFlare job, a process) may exist: detail says what failed."""

    federation: str | None = None
    command_type: str
    command_id: MessageId
    reason: str
    detail: str = Field(default="", max_length=MAX_DETAIL)
    deliveries: int

    def bounded(self, detail_chars: int = 300) -> CommandFailed:
        return self.model_copy(update={"detail": self.detail[:detail_chars]})


class MessageRefused(Event):
    """An event or telemetry message a consumer refused before any handler ran because its
    proof failed (Unauthenticated) or its sender may not say it (Forbidden): the audit trail
    and an alert, since it may be an attack. Commands are answered with CommandRejected."""

    federation: str | None = None
    consumer: str  # entity/subscription that received it
    message_type: str
    message_id: MessageId
    reason: str
    detail: str = Field(default="", max_length=MAX_DETAIL)
    claimed_by: str | None = None
    proven_by: str | None = None

    def bounded(self, detail_chars: int = 300) -> MessageRefused:
        return self.model_copy(update={"detail": self.detail[:detail_chars]})


class OutboxMessageParked(Event):
    """A message a service wrote but can never send as it is (over the size limit even in
    its bounded form, or not encodable): set aside so the messages behind it keep flowing."""

    service: str
    message_type: str
    message_id: MessageId
    reason: str = Field(max_length=MAX_DETAIL)
    federation: str | None = None


class InputHealth(Part):
    """One data input as the site's agent sees it: nothing about its content but its size
    class (empty, < 1 MB, < 1 GB, >= 1 GB; None when it cannot be read)."""

    name: InputName
    present: bool
    readable: bool
    size: Literal["empty", "<1MB", "<1GB", ">=1GB"] | None = None


class SiteHeartbeat(Telemetry):
    federation: FederationName
    site: SiteName
    status: HealthStatus
    diagnosis: str = ""
    #: a short, stable code for the diagnosis (registered, tls_error, server_unreachable, ...)
    diagnosis_code: str = ""
    pid: int | None = None
    pod: str | None = None
    uptime_s: float | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    current_job: str | None = None
    inputs: list[InputHealth] = Field(default_factory=list, max_length=32)


class SiteLogTail(Telemetry):
    federation: FederationName
    site: SiteName
    file: str
    lines: list[str] = Field(max_length=200)
    truncated: bool = False
    redacted_count: int = 0
    #: the TailSiteLogs command id, or None for a periodic tail
    request_id: str | None = None


class MetricPoint(Part):
    key: str = Field(min_length=1, max_length=250)
    value: Annotated[float, Field(allow_inf_nan=False)]
    step: int = Field(default=0, ge=0)
    timestamp_ms: int


class MetricsReported(Telemetry):
    federation: FederationName
    job_id: JobId
    site: str
    points: list[MetricPoint] = Field(min_length=1, max_length=5000)
    #: the bridge's batch id; with site and job it makes replays idempotent
    batch_id: str | None = None


class FlareEventObserved(Telemetry):
    federation: FederationName
    job_id: JobId | None = None
    event: str  # e.g. job_started, job_ended, client_disconnected, client_reconnected
    site: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
