"""The ledger's settings (env prefix ARCFLARE_)."""
from __future__ import annotations

from pathlib import Path

from arcflare.runtime import Settings
from arcflare.runtime.addresses import is_wildcard
from pydantic import Field, model_validator


class LedgerSettings(Settings):
    #: where the read API and the console listen. Loopback: open to this machine. Any other
    #: address: every read needs a signed request or a console session of a person who is at
    #: least `member` of the federation read, and the Host header must be an allowed one
    ledger_host: str = "127.0.0.1"
    #: 0: a free port, written to <data_dir>/run/ledger.port for the CLI
    ledger_port: int = Field(default=0, ge=0, le=65535)
    #: Host header values (name or name:port) accepted besides loopback names and ledger_host,
    #: e.g. the DNS name people reach the ledger by; required when bound to 0.0.0.0 or ::
    ledger_allowed_hosts: list[str] = Field(default_factory=list)
    #: how old a signed request may be (`Authorization: ArcFlare <proof>`)
    ledger_request_max_age_s: float = Field(default=60.0, gt=0, le=3600)
    #: how old a console sign-in link (`arcflare console`) may be when it is opened
    ledger_login_max_age_s: float = Field(default=300.0, gt=0, le=3600)
    #: how long a console session lasts after signing in
    ledger_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    #: serve HTTPS with this certificate and key (PEM); recommended off loopback, unless a
    #: proxy in front terminates TLS and keeps the Host header and the path as they were
    ledger_tls_cert: Path | None = None
    ledger_tls_key: Path | None = None
    #: the MLflow UI the console links registered models to; None: no links
    ledger_mlflow_ui_url: str | None = "http://127.0.0.1:5000"
    #: live updates: at most one batch of changes per this many seconds per browser
    ledger_live_interval_s: float = Field(default=0.25, ge=0.05, le=10)
    #: log tails kept per site (the newest ones)
    log_tails_per_site: int = Field(default=20, ge=1, le=1000)
    flare_events_per_federation: int = Field(default=200, ge=1, le=100_000)

    @model_validator(mode="after")
    def _consistent(self) -> LedgerSettings:
        if (self.ledger_tls_cert is None) != (self.ledger_tls_key is None):
            raise ValueError("ledger_tls_cert and ledger_tls_key go together: set both or "
                             "neither")
        if is_wildcard(self.ledger_host) and not self.ledger_allowed_hosts:
            raise ValueError(f"ledger_host {self.ledger_host} listens on every address: set "
                             "ledger_allowed_hosts to the names people reach the ledger by")
        return self
