"""The agent beside a real NVFlare client on loopback: the hospital's data folder is removed
while the client stays connected, and the site turns degraded, then recovers."""
from __future__ import annotations

import shutil
import time

import pytest
import site_agent_flare as flare
from arcflare.client.client import Client
from arcflare.site_agent.bootstrap import bootstrap

pytestmark = [pytest.mark.nvflare, pytest.mark.slow]
FED = "feddata"


@pytest.fixture
def connected_site(tmp_path, agent_settings):
    """A server, the site's client started as the deployer starts it, and its agent."""
    kits, port = flare.provision(tmp_path / "nvflare", FED, ["st-marys"])
    server = flare.start(flare.place(kits / "localhost", tmp_path / "server"))
    workspace = tmp_path / "data" / "sites" / FED / "st-marys"
    records = tmp_path / "hospital" / "records"
    records.mkdir(parents=True)
    (records / "admissions.csv").write_text("age,label\n61,1\n")
    client = None
    svc = None
    try:
        flare.wait_listening(port, server)
        client = flare.start(flare.place(kits / "st-marys", workspace))
        svc = bootstrap(agent_settings(federation=FED, site="st-marys",
                                       inputs={"records": str(records)}))
        yield svc, records
    finally:
        if svc is not None:
            svc.stop(timeout=10)
            svc.bus.close()
        for proc in (client, server):
            if proc is not None:
                flare.kill(proc)
        flare.kill_everything_in(workspace)


def tick_until(reporter, status: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = reporter.tick()
        if health is not None and health.status == status:
            return health
        time.sleep(reporter.interval_s)
    raise AssertionError(f"never {status}; last: {reporter.model.current}")


def test_a_vanished_data_folder_turns_a_connected_site_degraded_and_back(connected_site):
    svc, records = connected_site
    reporter = svc.background[0]
    follower = Client(svc.settings, bus=svc.bus)
    tick_until(reporter, "connected")

    shutil.rmtree(records)
    degraded = tick_until(reporter, "degraded", timeout=10)
    records.mkdir()
    recovered = tick_until(reporter, "connected", timeout=10)
    svc.drain()
    # an agent speaks only on telemetry (its one Send right), health changes included
    changes = [e.open() for e in follower.follow(types=["SiteHealthChanged"], from_start=True,
                                                 topics=("telemetry",), until_idle=True)]

    assert "Data input records is missing" in degraded.diagnosis
    assert "Registered with the NVFlare server" in degraded.diagnosis
    assert recovered.status == "connected"
    assert [(c.previous, c.status) for c in changes][-2:] == [("connected", "degraded"),
                                                             ("degraded", "connected")]
    assert "records is missing" in changes[-2].diagnosis
