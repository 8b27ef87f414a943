"""The ledger's settings (env prefix ARCFLARE_)."""
from __future__ import annotations

from arcflare.runtime import Settings
from pydantic import Field


class LedgerSettings(Settings):
    #: the read-only HTTP API; always loopback (the CLI runs on the same machine or pod)
    ledger_host: str = "127.0.0.1"
    #: 0: a free port, written to <data_dir>/run/ledger.port for the CLI
    ledger_port: int = Field(default=0, ge=0, le=65535)
    #: log tails kept per site (the newest ones)
    log_tails_per_site: int = Field(default=20, ge=1, le=1000)
    flare_events_per_federation: int = Field(default=200, ge=1, le=100_000)
