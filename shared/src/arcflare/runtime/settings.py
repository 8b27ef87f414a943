"""Settings every ArcFlare process shares: pydantic-settings, env prefix ARCFLARE_.

Defaults work on a laptop with nothing set: the embedded bus and all state in
./.arcflare. Each service subclasses Settings for its own knobs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARCFLARE_", extra="ignore")

    data_dir: Path = Field(default=Path(".arcflare"), description="all local state lives here")
    #: sqlite: the embedded broker in <data_dir>/bus.db; azure: Azure Service Bus
    bus: Literal["sqlite", "azure"] = "sqlite"
    #: the embedded broker's file, for processes that share a broker but not a data dir;
    #: None: <data_dir>/bus.db
    bus_file: Path | None = None
    #: a Service Bus connection string (SAS, or the emulator's UseDevelopmentEmulator=true)
    servicebus_connection_string: SecretStr | None = None
    #: fully qualified, e.g. myns.servicebus.windows.net (DefaultAzureCredential)
    servicebus_namespace: str | None = None
    #: the SDK's own retries of a failed operation, and its backoff (seconds)
    servicebus_retry_total: int = 3
    servicebus_retry_backoff_s: float = 0.8
    servicebus_retry_backoff_max_s: float = 30.0
    servicebus_retry_mode: Literal["exponential", "fixed"] = "exponential"
    #: the SDK's AutoLockRenewer keeps a message or session lock this long (seconds)
    servicebus_max_lock_renewal_s: float = Field(default=300.0, gt=0)
    #: session locks one process holds at once
    servicebus_max_concurrent_sessions: int = Field(default=8, ge=1, le=256)
    #: locks renewed at once (a worker thread each)
    servicebus_max_lock_renewers: int = Field(default=32, ge=1, le=1024)
    #: watchdog: rebuild a receiver idle this long while its entity holds an older message
    servicebus_stall_after_s: float = Field(default=120.0, gt=0)
    #: where /healthz and /readyz listen (0.0.0.0 in a container)
    health_host: str = "127.0.0.1"
    #: None: no health server; 0: a free port (written to <data_dir>/run/<service>.port)
    health_port: int | None = None
    log_level: str = "INFO"
    #: auto: readable on a terminal, JSON lines otherwise
    log_format: Literal["auto", "console", "json"] = "auto"
    #: the person this process acts as when it sends commands (the CLI, the SDK): chooses
    #: among the person identities in <data_dir>/identity/persons (arcflare identity)
    issued_by: str = "admin@arcflare.local"
    #: this process's certificate and key (PEM); None: its identity in <data_dir>/identity
    #: (a service's under services/<name>, a person's under persons/<email>)
    identity_cert: Path | None = None
    identity_key: Path | None = None
    #: intermediates between the certificate and a trust anchor (PEM); None: chain.pem beside
    #: the certificate, when there is one
    identity_chain: Path | None = None
    #: the trust root(s) every signature must chain to (PEM bundle); None:
    #: <data_dir>/identity/trust/anchors.pem
    trust_anchors: Path | None = None
    #: where job packages, job results and startup kits travel between processes (only
    #: content-addressed references go on the bus): folder: files under artifact_folder,
    #: for processes that share that folder; azureblob: Azure Blob Storage
    artifact_store: Literal["folder", "azureblob"] = "folder"
    #: the folder store's root; None: <data_dir>/artifacts
    artifact_folder: Path | None = None
    #: azureblob: https://<account>.blob.core.windows.net (DefaultAzureCredential), or a
    #: connection string (SAS or account key; Azurite's for the emulator)
    artifact_blob_account_url: str | None = None
    artifact_blob_connection_string: SecretStr | None = None
    #: azureblob: containers <prefix>-packages, <prefix>-results and <prefix>-kits
    artifact_blob_container_prefix: str = Field(default="arcflare",
                                                pattern=r"^[a-z0-9](-?[a-z0-9]){1,40}$")
    #: commands older than this are refused as stale (Forbidden)
    command_max_age_s: float = Field(default=600.0, gt=0)
    #: how far in the future a message's occurred_at may be (clocks differ a little)
    clock_skew_s: float = Field(default=300.0, ge=0)
    #: consumer threads per entity (session entities: sessions handled in parallel)
    concurrency: int = Field(default=2, ge=1, le=64)
    #: transient failures: abandon after min(base * 2**(n-1), max) seconds
    retry_backoff_base_s: float = 0.5
    retry_backoff_max_s: float = 30.0

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def bus_path(self) -> Path:
        return (self.bus_file or self.data_dir / "bus.db").expanduser().resolve()

    def run_dir(self) -> Path:
        path = self.data_dir / "run"
        path.mkdir(parents=True, exist_ok=True)
        return path
