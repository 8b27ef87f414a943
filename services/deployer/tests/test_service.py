"""The deployer service end to end on the embedded bus, with real NVFlare on loopback."""
from __future__ import annotations

import json
import shutil
import signal
import socket

import psutil
import pytest
from arcflare.client import Client
from arcflare.contracts.commands import (
    DeployServer,
    DeploySite,
    RestartSite,
    StopSite,
    TeardownFederation,
)
from arcflare.contracts.events import SiteRemoved
from arcflare.deployer.bootstrap import bootstrap
from dep_kits import ADMIN, provision
from dep_service import (
    connected,
    federation_provisioned,
    processes_in,
    publish,
    registered_clients,
    settings,
    site_provisioned,
    wait_for,
)

from tests.support.flare_project import accepts

pytestmark = pytest.mark.nvflare


@pytest.fixture
def running(tmp_path, data_dir):
    """A started deployer service and a client; both stopped at the end."""
    s = settings(data_dir)
    svc = bootstrap(s)
    svc.start()
    client = Client(s, issued_by=ADMIN)
    try:
        yield svc, client
    finally:
        client.close()
        svc.stop()


def provisioned(svc, kits, sites) -> None:
    """Wait until the deployer has taken in the provisioning events (they race commands)."""
    def known():
        with svc.state.connect() as db:
            fed = db.execute("SELECT 1 FROM federations WHERE name=?",
                             (kits.federation,)).fetchone()
            n = db.execute("SELECT count(*) FROM sites WHERE federation=?",
                           (kits.federation,)).fetchone()[0]
        return fed is not None and n == len(sites)
    assert wait_for(known, timeout=30)


def outcomes(client, types, count, timeout=120.0):
    seen = []
    for envelope in client.follow(types=types, timeout=timeout):
        seen.append(envelope)
        if len(seen) == count:
            break
    return seen


def test_auto_deploy_connects_both_sites_and_a_stopped_site_is_gone(tmp_path, data_dir, running):
    _svc, client = running
    kits = provision(tmp_path / "prov", "fedauto", ["site-1", "site-2"])

    publish(client.bus, client.settings.data_dir, federation_provisioned(kits, auto_deploy=True),
            site_provisioned(kits, "site-1", deploy=True),
            site_provisioned(kits, "site-2", deploy=True))
    deployed = outcomes(client, ["ServerDeployed", "SiteDeployed", "DeploymentFailed"], 3)

    # sites start beside the server, not after it: their clients retry until it listens
    assert sorted(e.type for e in deployed) == ["ServerDeployed", "SiteDeployed", "SiteDeployed"]
    server = next(e for e in deployed if e.type == "ServerDeployed")
    # announced by the watcher once listening, and still naming who the deploy was for
    assert (server.payload["generation"], server.on_behalf_of) == (1, ADMIN)
    assert wait_for(lambda: connected(kits, ["site-1", "site-2"]))

    stop_id = client.send(StopSite(federation=kits.federation, site="site-1"))
    stopped = client.wait(stop_id, timeout=60)

    assert stopped.type == "SiteStopped" and stopped.payload["reason"] == "requested"
    workspaces = {p.environ()["ARCFLARE_WORKSPACE"] for p in processes_in(data_dir)}
    assert not any(w.endswith("/site-1") for w in workspaces)
    assert wait_for(lambda: registered_clients(kits) == {"site-2"}, timeout=60)
    assert connected(kits, ["site-2"])


def test_a_duplicate_deploy_site_starts_one_process(tmp_path, data_dir, running):
    svc, client = running
    kits = provision(tmp_path / "prov", "feddup", ["site-1"])
    publish(client.bus, client.settings.data_dir, federation_provisioned(kits, auto_deploy=False),
            site_provisioned(kits, "site-1", deploy=False))
    provisioned(svc, kits, ["site-1"])
    server_id = client.send(DeployServer(federation=kits.federation))
    assert client.wait(server_id, timeout=90).type == "ServerDeployed"

    first = client.send(DeploySite(federation=kits.federation, site="site-1"))
    second = client.send(DeploySite(federation=kits.federation, site="site-1"))
    outcomes_ = [client.wait(first, timeout=60), client.wait(second, timeout=60)]

    assert [o.type for o in outcomes_] == ["SiteDeployed", "SiteDeployed"]
    assert outcomes_[0].payload["handle"] == outcomes_[1].payload["handle"]
    site_procs = [p for p in processes_in(data_dir)
                  if p.environ()["ARCFLARE_WORKSPACE"].endswith("/site-1")
                  and "client_train" in " ".join(p.cmdline())]
    assert len(site_procs) == 1
    assert wait_for(lambda: connected(kits, ["site-1"]))


def test_failures_say_what_to_fix_and_a_retry_after_the_fix_succeeds(tmp_path, data_dir, running):
    svc, client = running
    kits = provision(tmp_path / "prov", "fedfail", ["site-1"])
    publish(client.bus, client.settings.data_dir, federation_provisioned(kits, auto_deploy=False),
            site_provisioned(kits, "site-1", deploy=False))
    provisioned(svc, kits, ["site-1"])
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", kits.port))
    blocker.listen()
    try:
        blocked = client.wait(client.send(DeployServer(federation=kits.federation)), timeout=60)
    finally:
        blocker.close()
    unknown = client.wait(client.send(DeploySite(federation=kits.federation, site="site-9")),
                          timeout=60)
    kit = kits.artifact("site-1")
    blob = kits.artifacts.path("kits", kit.sha256)
    shutil.move(blob, tmp_path / "moved")  # the kit is gone from the artifact store
    missing = client.wait(client.send(DeploySite(federation=kits.federation, site="site-1")),
                          timeout=60)

    assert blocked.type == "DeploymentFailed" and blocked.payload["target"] == "server"
    assert f"port {kits.port} is already in use" in blocked.payload["reason"]
    assert unknown.type == "DeploymentFailed"
    assert "site-9 is not a provisioned site" in unknown.payload["reason"]
    assert "known: site-1" in unknown.payload["reason"]
    assert missing.type == "DeploymentFailed" and "re-provision" in missing.payload["reason"]
    assert f"kit {kit.locator}: the folder store holds no such blob" in \
        missing.payload["reason"]

    shutil.move(tmp_path / "moved", blob)
    retried = client.wait(client.send(DeployServer(federation=kits.federation)), timeout=90)
    site = client.wait(client.send(DeploySite(federation=kits.federation, site="site-1")),
                       timeout=60)

    assert retried.type == "ServerDeployed" and retried.payload["endpoint"].endswith(str(kits.port))
    assert site.type == "SiteDeployed"
    assert wait_for(lambda: connected(kits, ["site-1"]))


def test_a_site_that_dies_on_its_own_is_reported_crashed_and_restarts_on_request(
        tmp_path, data_dir, running):
    _svc, client = running
    kits = provision(tmp_path / "prov", "fedcrash", ["site-1"])
    publish(client.bus, client.settings.data_dir, federation_provisioned(kits, auto_deploy=True),
            site_provisioned(kits, "site-1", deploy=True))
    deployed = [e for e in outcomes(client, ["ServerDeployed", "SiteDeployed"], 2)
                if e.type == "SiteDeployed"]
    pid = int(deployed[0].payload["handle"])

    psutil.Process(pid).send_signal(signal.SIGKILL)
    crashed = outcomes(client, ["SiteStopped"], 1, timeout=60)

    assert crashed[0].payload == {"federation": kits.federation, "site": "site-1",
                                  "reason": "crashed", "generation": 1}

    restarted = client.wait(client.send(RestartSite(federation=kits.federation, site="site-1")),
                            timeout=60)

    assert restarted.type == "SiteDeployed" and int(restarted.payload["handle"]) != pid
    # a new process is a new generation: the ledger orders the crash before it by that alone
    assert (restarted.payload["generation"], restarted.payload["restart"]) == (2, True)
    assert wait_for(lambda: connected(kits, ["site-1"]))


def test_a_removed_site_is_stopped_and_teardown_stops_the_rest_then_the_server(
        tmp_path, data_dir, running):
    _svc, client = running
    kits = provision(tmp_path / "prov", "fedtear", ["site-1", "site-2"])
    publish(client.bus, client.settings.data_dir, federation_provisioned(kits, auto_deploy=True),
            site_provisioned(kits, "site-1", deploy=True),
            site_provisioned(kits, "site-2", deploy=True))
    outcomes(client, ["ServerDeployed", "SiteDeployed"], 3)
    publish(client.bus, client.settings.data_dir, SiteRemoved(federation=kits.federation, site="site-2"))
    removed = outcomes(client, ["SiteStopped"], 1, timeout=60)

    torn = client.wait(client.send(TeardownFederation(federation=kits.federation)), timeout=60)

    assert removed[0].payload["site"] == "site-2" and removed[0].payload["reason"] == "removed"
    assert torn.type == "FederationTornDown"
    assert torn.payload["stopped"] == ["site-1", "server"]
    assert torn.payload["server_generation"] == 1
    assert processes_in(data_dir) == []
    assert not wait_for(lambda: accepts(kits.port), timeout=1)


def test_a_server_that_never_listens_is_answered_failed_by_the_watcher_and_stopped(
        tmp_path, data_dir):
    kits = provision(tmp_path / "prov", "fedmute", [])
    config = kits.server / "startup" / "fed_server.json"
    fed = json.loads(config.read_text())
    fed["servers"][0]["ssl_cert"] = "rootCA.pem"  # a cert that does not match the key
    config.write_text(json.dumps(fed))
    svc = bootstrap(settings(data_dir, server_ready_timeout_s=6))
    svc.start()
    client = Client(settings(data_dir), issued_by=ADMIN)
    try:
        publish(client.bus, client.settings.data_dir, federation_provisioned(kits, auto_deploy=False))
        provisioned(svc, kits, [])
        outcome = client.wait(client.send(DeployServer(federation=kits.federation)), timeout=60)

        assert outcome.type == "DeploymentFailed" and outcome.payload["target"] == "server"
        assert f"did not accept connections on port {kits.port} within 6 s" in (
            outcome.payload["reason"])
        assert wait_for(lambda: processes_in(data_dir) == [], timeout=20)
        with svc.state.connect() as db:
            row = db.execute("SELECT status FROM deployments WHERE target='server'").fetchone()
        assert row["status"] == "failed"
    finally:
        client.close()
        svc.stop()
