from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from arcflare.site_agent.settings import SiteAgentSettings
from site_agent_ids import OPERATOR_ADMIN, agent_identities


@pytest.fixture
def agent_settings(tmp_path: Path):
    """Settings for one agent with everything under tmp_path."""
    def make(**overrides) -> SiteAgentSettings:
        values = {"data_dir": tmp_path / "data", "federation": "fed-a", "site": "site-1",
                  "heartbeat_interval_s": 0.5, "log_level": "WARNING",
                  "admins": [OPERATOR_ADMIN]}
        values.update(overrides)
        agent_identities(values["data_dir"], values["federation"], values["site"])
        return SiteAgentSettings(**values)
    return make
