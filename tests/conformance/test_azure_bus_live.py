"""The bus contract against Azure Service Bus: a real namespace or the emulator.

One environment variable away:

    ARCFLARE_TEST_SERVICEBUS_CONNECTION_STRING='Endpoint=sb://...;SharedAccessKeyName=...;...' \
        pytest -m azure_live tests/conformance/test_azure_bus_live.py

The entities must exist (`arcflare bus init`, or the emulator started with
deploy/servicebus/Config.json). With a Docker engine, the value `emulator` starts
the Service Bus emulator and Azure SQL Edge here (testcontainers' generic
DockerContainer; testcontainers-python has no Service Bus module) with that config.
"""
from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from arcflare.bus.azure import AzureBusOptions, AzureServiceBus
from arcflare.bus.port import Bus

from tests.conformance.bus_contract import BusContract

VARIABLE = "ARCFLARE_TEST_SERVICEBUS_CONNECTION_STRING"
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "servicebus" / "Config.json"
EMULATOR_IMAGE = "mcr.microsoft.com/azure-messaging/servicebus-emulator:latest"
SQL_EDGE_IMAGE = "mcr.microsoft.com/azure-sql-edge:latest"

pytestmark = [
    pytest.mark.azure_live,
    pytest.mark.skipif(not os.environ.get(VARIABLE),
                       reason=f"{VARIABLE} is unset (a namespace's connection string, "
                              "or 'emulator' with a Docker engine)"),
]


def connect(connection_string: str) -> Bus:
    return AzureServiceBus(AzureBusOptions(connection_string=connection_string))


def docker_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all "no"
        return False


@pytest.fixture(scope="session")
def servicebus_emulator() -> Iterator[str]:
    """Start SQL Edge and the emulator on a private network; yield a connection string."""
    if not docker_answers():
        pytest.skip("the emulator needs a Docker engine, and none answers")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.waiting_utils import wait_for_logs

    password = "Ar1-" + secrets.token_hex(12)
    with Network() as network:
        sql = (DockerContainer(SQL_EDGE_IMAGE).with_network(network)
               .with_network_aliases("sqledge")
               .with_env("ACCEPT_EULA", "Y").with_env("MSSQL_SA_PASSWORD", password))
        emulator = (DockerContainer(EMULATOR_IMAGE).with_network(network)
                    .with_env("ACCEPT_EULA", "Y").with_env("SQL_SERVER", "sqledge")
                    .with_env("MSSQL_SA_PASSWORD", password)
                    .with_volume_mapping(str(CONFIG),
                                         "/ServiceBus_Emulator/ConfigFiles/Config.json", "ro")
                    .with_exposed_ports(5672, 5300))
        with sql:
            wait_for_logs(sql, "SQL Server is now ready for client connections", timeout=180)
            with emulator:
                wait_for_logs(emulator, "Emulator Service is Successfully Up", timeout=300)
                host = emulator.get_container_host_ip()
                port = emulator.get_exposed_port(5672)
                time.sleep(1)
                yield (f"Endpoint=sb://{host}:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
                       "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;")


@pytest.fixture(scope="session")
def live_connection_string(request) -> str:
    value = os.environ[VARIABLE]
    if value == "emulator":
        return request.getfixturevalue("servicebus_emulator")
    return value


@pytest.mark.azure_live
class TestAzureServiceBusLive(BusContract):
    # TOPOLOGY's entities stand in for the contract's (see bus_contract.py)
    queue, queue_subscription = "events", "alerter"
    crowded_queue, crowded_subscription = "events", "ledger"
    session_queue = "provisioner"
    topic, all_subscription = "events", "alerter"
    filtered_subscription, filtered_subject = "deployer", "SiteRemoved"
    filtered_property = None
    transient_subscription, transient_ttl_seconds = "cli", 1800
    brief_queue, brief_subscription = "events", "alerter"
    duplicate_window_seconds = 300  # TOPOLOGY's: those tests skip themselves
    lock_seconds, max_delivery_count = 60, 10

    @pytest.fixture
    def bus_factory(self, live_connection_string: str) -> Callable[[], Bus]:
        return functools.partial(connect, live_connection_string)
