"""The provisioner's settings (env prefix ARCFLARE_); laptop defaults need nothing set."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from arcflare.runtime import Settings
from pydantic import Field


class ProvisionerSettings(Settings):
    #: CertificateExpiring is published this many days before a certificate's not_after
    cert_expiry_warning_days: int = Field(default=30, ge=1, le=3650)
    #: how often the running service re-checks for certificates inside that window
    cert_expiry_check_interval_s: float = Field(default=24 * 3600, gt=0)
    #: renew a certificate automatically this many days before its not_after (the same
    #: CertificateRenewed a RenewCertificate makes, so the deployer rolls the participant);
    #: below 360, the term of a certificate NVFlare signs. None: renewals only on command
    cert_auto_renew_days: int | None = Field(default=None, ge=1, le=359)
    #: folder: kits in <data_dir>/kits; azureml: also uploaded as uri_folder data assets
    kit_store: Literal["folder", "azureml"] = "folder"
    aml_subscription_id: str | None = None
    aml_resource_group: str | None = None
    aml_workspace: str | None = None
    #: the provisioner's intermediate (issuer:provisioner): a folder with cert.pem, key.pem
    #: and chain.pem, from `arcflare identity issue issuer`. It issues the identity of each
    #: site's agent into the site's kit and the bridge's into the server kit. None:
    #: <data_dir>/identity/issuer
    issuer_dir: Path | None = None

    @property
    def ca_dir(self) -> Path:
        """NVFlare provisioning workspaces, one per federation, each with its CA state."""
        return self.data_dir / "provisioner" / "ca"

    @property
    def kits_dir(self) -> Path:
        return self.data_dir / "kits"

    @property
    def expiry_warning(self) -> timedelta:
        return timedelta(days=self.cert_expiry_warning_days)

    @property
    def auto_renewal(self) -> timedelta | None:
        days = self.cert_auto_renew_days
        return timedelta(days=days) if days is not None else None
