"""The identities a site agent's tests need, as `arcflare local up` would make them."""
from __future__ import annotations

from pathlib import Path

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
