"""The bus contract against the embedded SQLite broker."""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from arcflare.bus.port import Bus
from arcflare.bus.sqlite import SqliteBus

from tests.conformance.bus_contract import BusContract
from tests.conformance.topology import CONFORMANCE_TOPOLOGY


@pytest.mark.conformance
class TestSqliteBus(BusContract):
    @pytest.fixture
    def bus_factory(self, tmp_path: Path) -> Callable[[], Bus]:
        return functools.partial(SqliteBus, tmp_path / "bus.db", CONFORMANCE_TOPOLOGY)
