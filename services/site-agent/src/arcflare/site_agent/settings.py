"""Site agent settings (env prefix ARCFLARE_): which site, how to see its client, what may leave."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.fields import FederationName, InputName, SiteName
from arcflare.runtime import Settings
from pydantic import Field, field_validator

#: NVFlare's own log files in a participant folder; nothing else can be tailed
NVFLARE_LOG_FILES = ("log.txt", "log.json", "error_log.txt", "log_fl.txt")


class SiteAgentSettings(Settings):
    federation: FederationName = "local"
    site: SiteName = "site-1"
    observer: Literal["process", "kubernetes"] = "process"

    # process observer: the participant folder the deployer runs the client from
    site_workspace: Path | None = Field(
        default=None, description="default: <data_dir>/sites/<federation>/<site>")

    # kubernetes observer
    k8s_namespace: str = "default"
    #: default: the label the deployer puts on a site's pods
    k8s_label_selector: str | None = None
    k8s_container: str | None = None
    #: None: in-cluster config when running in a pod, else the default kubeconfig
    kubeconfig: Path | None = None

    heartbeat_interval_s: float = Field(default=15.0, gt=0, le=3600)
    #: a running client that has not registered after this long is `disconnected`
    registration_grace_s: float = Field(default=60.0, ge=0)

    log_files: tuple[str, ...] = ("log.txt", "log.json", "error_log.txt")
    redaction_patterns: list[str] = Field(default_factory=list)
    tail_rate_per_minute: int = Field(default=6, ge=1, le=600)
    #: seconds between periodic tails of new lines; None: off
    periodic_tail_s: float | None = Field(default=None, gt=0)
    periodic_tail_file: str = "log.txt"

    allow_restart: bool = False

    #: the site's data inputs as this agent sees them, JSON {"<input name>": "<folder>"} (on a
    #: cluster: where the agent's pod mounts them). Empty: those the deployer bound to the
    #: client in its workspace (process observer); checked each heartbeat, content never read
    inputs: dict[InputName, Path] = Field(default_factory=dict, max_length=32)
    #: seconds between measurements of each input's size class (a walk that stops at 1 GB)
    input_size_interval_s: float = Field(default=600.0, gt=0)

    #: who may send this site commands (NVFlare-style roles, arcflare.contracts.authz), as
    #: JSON: [{"email": ..., "org": ..., "role": ...}]. Empty: every command is refused (an
    #: unknown federation is never a pass; docs/architecture.md §4).
    admins: list[AdminSpec] = Field(default_factory=list)
    #: the site's organisation, for org_admin rights over it
    site_org: str | None = None

    @field_validator("log_files")
    @classmethod
    def _only_nvflare_logs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [f for f in value if f not in NVFLARE_LOG_FILES]
        if bad:
            raise ValueError(
                f"log_files may only name NVFlare log files ({', '.join(NVFLARE_LOG_FILES)}); "
                f"got {', '.join(bad)}")
        return value

    @field_validator("redaction_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"redaction_patterns[{i}] is not a valid regular expression: {exc}") from None
        return value

    def workspace_dir(self) -> Path:
        return self.site_workspace or self.data_dir / "sites" / self.federation / self.site

    def label_selector(self) -> str:
        return self.k8s_label_selector or f"arcflare.io/site={self.site}"

    def state_file(self) -> Path:
        return self.data_dir / f"site-agent-{self.federation}-{self.site}.db"
