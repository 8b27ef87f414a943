"""The alerter's settings (env prefix ARCFLARE_)."""
from __future__ import annotations

from pathlib import Path

from arcflare.runtime import Settings
from pydantic import Field


class AlerterSettings(Settings):
    #: a rules YAML file; None: the built-in default rules (arcflare/alerter/default_rules.yaml)
    alert_rules_file: Path | None = None
    #: how often due for-duration alerts are looked for
    alert_check_interval_s: float = Field(default=1.0, gt=0, le=60)
