from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from arcflare.site_agent.settings import SiteAgentSettings
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities, site_identity

#: who may command the test agents unless a test configures otherwise: the default operator,
#: as the local stack configures each agent with its federation's admins
OPERATOR_ADMIN = {"email": "admin@arcflare.local", "org": "arcflare", "role": "project_admin"}
#: persons the tests act as (each gets an identity in the data dir)
PEOPLE = (("lead@consortium.org", "consortium"), ("member@consortium.org", "consortium"),
          ("it@hospital-a.org", "hospital_a"), ("it@hospital-b.org", "hospital_b"),
          ("stranger@elsewhere.org", "elsewhere"))


def agent_identities(data_dir: Path, federation: str, site: str) -> None:
    """What `arcflare local up` would give the agent: the local root, the operators, and
    the site's own identity."""
    ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS, *PEOPLE))
    site_identity(data_dir, federation, site)


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
