from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from relay_harness import Relay


@pytest.fixture
def relay(tmp_path):
    r = Relay(tmp_path / "data")
    try:
        yield r
    finally:
        r.close()

