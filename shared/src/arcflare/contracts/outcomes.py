"""Which events answer which command (docs/architecture.md §2: every command ends in an event that
names it as causation_id). `arcflare ... --wait` and Client.wait rely on this."""
from __future__ import annotations

SUCCESS: dict[str, tuple[str, ...]] = {
    "CreateFederation": ("FederationProvisioned",),
    "AddSite": ("SiteProvisioned",),
    "RemoveSite": ("SiteRemoved",),
    # the new kit exists; the deployer's roll follows (ParticipantRolled, RollRefused), caused
    # by CertificateRenewed and correlated with the command
    "RenewCertificate": ("CertificateRenewed",),
    "DeployServer": ("ServerDeployed",),
    "DeploySite": ("SiteDeployed",),
    "StopSite": ("SiteStopped",),
    "RestartSite": ("SiteDeployed",),
    "TeardownFederation": ("FederationTornDown",),
    # accepted at once; JobSubmitted (or JobFailed) follows, caused by the same SubmitJob
    "SubmitJob": ("JobWaitingForClients", "JobSubmitted"),
    "AbortJob": ("JobCompleted",),
    "RefreshFederationStatus": ("FederationStatusObserved",),
    "TailSiteLogs": ("SiteLogTail",),
    "RestartSiteClient": ("SiteClientRestarted",),
}
FAILURE: tuple[str, ...] = ("CommandRejected", "CommandFailed", "DeploymentFailed", "JobFailed")
#: outcomes that accept a command whose work goes on; waiting for it to settle passes them over
ACCEPTED: tuple[str, ...] = ("JobWaitingForClients",)


def outcome_types(command_type: str) -> tuple[str, ...]:
    return SUCCESS.get(command_type, ()) + FAILURE


def is_failure(event_type: str) -> bool:
    return event_type in FAILURE
