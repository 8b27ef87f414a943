from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dep_service import kill_all_in


@pytest.fixture
def data_dir(tmp_path: Path):
    """A data dir whose processes are all killed when the test ends, whatever happened."""
    path = tmp_path / "data"
    path.mkdir()
    yield path
    kill_all_in(path)
