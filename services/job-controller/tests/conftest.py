from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities


@pytest.fixture(autouse=True)
def _identities(tmp_path):
    """The identities `arcflare local up` would create, where these tests keep their data
    (tmp_path itself, or tmp_path/data), and the member the tests act as."""
    for data_dir in (tmp_path, tmp_path / "data"):
        ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS,
                                                     ("member@hospital.org", "hospital")))
