"""The agent beside real NVFlare clients on loopback: a killed client, a client pointed
at the wrong port, a restart the site allows."""
from __future__ import annotations

import time

import pytest
import site_agent_flare as flare
from arcflare.client.client import Client
from arcflare.contracts.commands import RestartSiteClient
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.site_agent.bootstrap import bootstrap

pytestmark = [pytest.mark.nvflare, pytest.mark.slow]
FED = "fedagent"


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    """Kits for three sites and a running server (module-wide: it takes seconds)."""
    root = tmp_path_factory.mktemp("nvflare")
    kits, port = flare.provision(root, FED, ["site-1", "site-2", "site-3"])
    server_ws = flare.place(kits / "localhost", root / "server")
    server = flare.start(server_ws)
    try:
        flare.wait_listening(port, server)
        yield kits
    finally:
        flare.kill(server)


@pytest.fixture
def site(federation, agent_settings, tmp_path):
    """Start one site's client as the deployer would, and an agent beside it."""
    started: list = []
    agents: list = []

    def make(name: str, *, server_port: int | None = None, **settings):
        ws = flare.place(federation / name, tmp_path / "data" / "sites" / FED / name,
                         server_port=server_port)
        started.append((flare.start(ws), ws))
        svc = bootstrap(agent_settings(federation=FED, site=name, **settings))
        agents.append(svc)
        return svc, started[-1][0]

    try:
        yield make
    finally:
        for svc in agents:
            svc.stop(timeout=10)
            svc.bus.close()
        for proc, ws in started:
            flare.kill(proc)
            flare.kill_everything_in(ws)


def tick_until(reporter, statuses: set[str], timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = reporter.tick()
        if health is not None and health.status in statuses:
            return health
        time.sleep(reporter.interval_s)
    raise AssertionError(f"never reached {statuses}; last: {reporter.model.current}")


def health_changes(bus) -> list:
    """An agent's health changes travel on telemetry (its only Send right)."""
    return [m for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=500)
            if m.subject == "SiteHealthChanged"]


def test_a_killed_client_is_reported_crashed_within_two_intervals(site):
    svc, client = site("site-1", heartbeat_interval_s=1.0)
    follower = Client(svc.settings, bus=svc.bus)
    svc.start()  # the real background loop, one tick a second
    _follow_until(follower, "SiteHealthChanged", "connected")

    flare.kill(client)  # SIGKILL to its whole process group
    after_kill = Client(svc.settings, bus=svc.bus)  # follows from here on
    beats = [b.payload["status"] for b in
             _follow_until(after_kill, "SiteHeartbeat", "crashed", topics=("telemetry",))]
    changes = list(follower.follow(types=["SiteHealthChanged"], topics=("telemetry",),
                                   from_start=True, until_idle=True))

    # at most the tick already under way when the client died still saw it alive
    assert len(beats) <= 2 and beats[-1] == "crashed"
    last = changes[-1].open()
    assert (last.previous, last.status) == ("connected", "crashed")
    assert "error_log.txt" in last.diagnosis


def _follow_until(follower, type_name, status, *, topics=("telemetry",), timeout=90.0):
    seen = []
    for envelope in follower.follow(types=[type_name], topics=topics, timeout=timeout):
        seen.append(envelope)
        if envelope.payload["status"] == status:
            return seen
    raise AssertionError(f"no {type_name} {status} within {timeout} s: {seen[-3:]}")


def test_a_client_pointed_at_a_wrong_port_names_the_server_address(site):
    wrong = flare.free_port()
    svc, _ = site("site-2", server_port=wrong)

    health = tick_until(svc.background[0], {"disconnected", "misconfigured"})
    svc.drain()

    assert f"localhost:{wrong}" in health.diagnosis
    last = _envelope(health_changes(svc.bus)[-1]).open()
    assert last.status == health.status and f"localhost:{wrong}" in last.diagnosis


def test_an_allowed_restart_brings_the_client_back_in_a_new_process(site):
    svc, _ = site("site-3", allow_restart=True)
    reporter = svc.background[0]
    tick_until(reporter, {"connected"})
    first_pid = reporter.observer.observe().pid
    requests = Client(svc.settings, bus=svc.bus)

    command_id = requests.send(RestartSiteClient(federation=FED, site="site-3"))
    svc.drain()
    answer = requests.wait(command_id, timeout=10)
    health = tick_until(reporter, {"connected"})
    svc.drain()

    assert answer.type == "SiteClientRestarted" and answer.payload["handle"].startswith(
        "process-group:")
    assert health.status == "connected" and reporter.observer.observe().pid != first_pid
    statuses = [_envelope(m).open().status for m in health_changes(svc.bus)]
    assert "crashed" not in statuses  # a restart that was asked for is not a crash


def _envelope(received):
    from arcflare.bus.codec import from_received

    return from_received(received)


