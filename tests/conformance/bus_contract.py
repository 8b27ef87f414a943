"""The Bus contract: one abstract test class every Bus adapter must pass.

    class TestSqliteBus(BusContract):
        @pytest.fixture
        def bus_factory(self, tmp_path): return functools.partial(SqliteBus, ...)

Entity names are class attributes (see ContractBase) so a live Service Bus
variant can point them at entities that exist in its namespace. Against
TOPOLOGY that could be:

    queue, queue_subscription = "events", "alerter"         # no rules
    crowded_queue, crowded_subscription = "events", "ledger"
    session_queue = "provisioner"
    topic, all_subscription = "events", "alerter"
    filtered_subscription, filtered_subject = "deployer", "SiteRemoved"
    filtered_property = None
    transient_subscription, transient_ttl_seconds = "cli", 1800
    brief_queue, brief_subscription = "events", "alerter"    # a 5 min window: skipped
    duplicate_window_seconds = 300
    lock_seconds, max_delivery_count = 60, 10                # lock tests then skip
"""
from __future__ import annotations

import pytest

from tests.conformance.basics import BasicsContract
from tests.conformance.delivery import DeliveryContract
from tests.conformance.processes import ProcessContract
from tests.conformance.resubmit import ResubmitContract
from tests.conformance.scheduling import SchedulingContract
from tests.conformance.sessions import SessionContract
from tests.conformance.topics import TopicContract


@pytest.mark.conformance
class BusContract(BasicsContract, DeliveryContract, SchedulingContract, ResubmitContract,
                  TopicContract, SessionContract, ProcessContract):
    """Abstract: collected only through subclasses named Test*."""
