"""Job-controller knobs (env prefix ARCFLARE_); the defaults suit a laptop."""
from __future__ import annotations

from pathlib import Path

from arcflare.runtime.settings import Settings
from pydantic import Field


class JobControllerSettings(Settings):
    #: how often the watcher asks NVFlare about every unfinished job
    job_poll_interval_s: float = Field(default=1.0, gt=0)
    #: how often FederationStatusObserved is published per known federation (0 = never)
    status_poll_interval_s: float = Field(default=30.0, ge=0)
    #: FLARE API: seconds to connect and log in, and per admin command
    flare_connect_timeout_s: float = Field(default=10.0, gt=0)
    flare_command_timeout_s: float = Field(default=30.0, gt=0)
    #: FLARE API: attempts per call when the server is unreachable (a fresh session each time)
    flare_attempts: int = Field(default=3, ge=1, le=10)
    #: abort a running job when one of its sites is dropped by the server (after NVFlare's
    #: heart_beat_timeout) instead of waiting for NVFlare's own, much later, dead-client handling
    abort_on_site_loss: bool = True
    #: how often the server's client list is checked while jobs run
    site_check_interval_s: float = Field(default=5.0, gt=0)
    #: job packages: caps applied while validating and unpacking
    max_package_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    #: files and folders together (an archive of empty folders costs inodes too)
    max_package_files: int = Field(default=5000, gt=0)

    @property
    def kit_cache_dir(self) -> Path:
        """The admin kits fetched from the artifact store (0700, keys 0600), one per version."""
        return self.data_dir / "job-controller" / "kits"
