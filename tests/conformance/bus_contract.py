"""The Bus contract: one abstract test class every Bus adapter must pass.

    class TestSqliteBus(BusContract):
        @pytest.fixture
        def bus_factory(self, tmp_path): return functools.partial(SqliteBus, ...)

Entity names are class attributes (see ContractBase) so a live Service Bus
variant can point them at entities that exist in its namespace.
"""
from __future__ import annotations

import pytest

from tests.conformance.basics import BasicsContract
from tests.conformance.delivery import DeliveryContract
from tests.conformance.processes import ProcessContract
from tests.conformance.sessions import SessionContract
from tests.conformance.topics import TopicContract


@pytest.mark.conformance
class BusContract(BasicsContract, DeliveryContract, TopicContract, SessionContract,
                  ProcessContract):
    """Abstract: collected only through subclasses named Test*."""
