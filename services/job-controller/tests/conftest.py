from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities
from jc_federation import LocalFederation
from jc_service import SITES


@pytest.fixture(autouse=True)
def _identities(tmp_path):
    """The identities `arcflare local up` would create, where these tests keep their data
    (tmp_path itself, or tmp_path/data), and the member the tests act as."""
    for data_dir in (tmp_path, tmp_path / "data"):
        ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS,
                                                     ("member@hospital.org", "hospital")))


@pytest.fixture(scope="session")
def idle_federation(tmp_path_factory: pytest.TempPathFactory):
    """A real NVFlare server on loopback whose sites are provisioned but not started: a job
    submitted to it stays SUBMITTED, and a SubmitJob waits for clients that do not come.
    A test may start a site, and stops it again before it ends."""
    fed = LocalFederation(tmp_path_factory.mktemp("idle-nvflare"), SITES)
    try:
        fed.provision()
        fed.start_server()
        fed.wait_for_clients(0)  # no clients: until the admin can log in
        yield fed
    finally:
        fed.stop()
