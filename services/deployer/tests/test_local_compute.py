"""The local compute adapter against real NVFlare kits on loopback."""
from __future__ import annotations

import json
import shutil
import signal
import socket
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from arcflare.deployer.adapters.local import LocalCompute
from arcflare.deployer.compute import DeploymentError, Target
from dep_kits import SERVER_NAME, provision
from dep_service import processes_in

pytestmark = pytest.mark.nvflare


@pytest.fixture
def kits(tmp_path: Path):
    return provision(tmp_path / "prov", "fedlocal", ["site-1"])


def server(kits) -> Target:
    return Target(kits.federation, "server", kits.ref(SERVER_NAME),
                  endpoint=f"localhost:{kits.port}")


def site(kits, name: str = "site-1") -> Target:
    return Target(kits.federation, name, kits.ref(name))


def test_a_server_is_starting_until_its_port_accepts_connections(kits, data_dir):
    compute = LocalCompute(data_dir)

    placement = compute.deploy(server(kits))
    first_seen = compute.observe(placement).status
    seen = _wait_while(compute, placement, "starting")

    # deploy returns at the spawn (NVFlare's server needs seconds to listen): not ready
    assert not placement.ready and first_seen == "starting"
    assert seen.status == "running"
    with socket.create_connection(("127.0.0.1", kits.port), timeout=2):
        pass
    assert placement.pid == placement.pgid and not placement.adopted
    workspace = data_dir / "sites" / kits.federation / SERVER_NAME
    assert placement.workspace == str(workspace)
    adopted = compute.deploy(server(kits))
    assert adopted.adopted and adopted.ready and adopted.pid == placement.pid


def test_workspace_is_a_copy_with_storage_inside_it_and_the_kit_untouched(kits, data_dir):
    before = sorted(p.relative_to(kits.server) for p in kits.server.rglob("*"))
    compute = LocalCompute(data_dir)

    placement = compute.deploy(server(kits))

    workspace = Path(placement.workspace)
    resources = (workspace / "local" / "resources.json").read_text()
    assert "/tmp/nvflare" not in resources
    assert str(workspace / "storage") in resources
    assert sorted(p.relative_to(kits.server) for p in kits.server.rglob("*")) == before
    env = psutil.Process(placement.pid).environ()
    assert env["TMPDIR"].startswith(str(workspace))
    assert env["HOME"].startswith(str(workspace))


def test_deploying_a_running_site_again_adopts_it(kits, data_dir):
    compute = LocalCompute(data_dir)
    first = compute.deploy(site(kits))

    again = compute.deploy(site(kits))
    after_restart = LocalCompute(data_dir).deploy(site(kits))

    assert again.adopted and after_restart.adopted
    assert first.pid == again.pid == after_restart.pid
    leaders = [p for p in processes_in(data_dir) if p.pid == first.pid]
    assert len(leaders) == 1


def test_stop_ends_the_whole_group_and_is_idempotent(kits, data_dir):
    compute = LocalCompute(data_dir, stop_grace_s=5)
    placement = compute.deploy(server(kits))
    assert _wait_while(compute, placement, "starting").status == "running"
    placement = replace(placement, ready=True)  # as the watcher records it once announced

    compute.stop(placement)
    compute.stop(placement)

    assert processes_in(data_dir) == []
    assert compute.observe(placement).status == "exited"
    assert compute.expected_exit(placement)


def test_a_killed_process_is_observed_as_exited_not_expected(kits, data_dir):
    compute = LocalCompute(data_dir)
    placement = compute.deploy(site(kits))

    psutil.Process(placement.pid).send_signal(signal.SIGKILL)
    seen = _wait_exit(compute, placement)

    assert seen.status == "exited"
    assert not compute.expected_exit(placement)


def test_port_in_use_fails_with_the_holder_named_and_a_retry_succeeds(kits, data_dir):
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", kits.port))
    blocker.listen()
    compute = LocalCompute(data_dir)
    try:
        with pytest.raises(DeploymentError) as failed:
            compute.deploy(server(kits))
    finally:
        blocker.close()

    assert f"port {kits.port} is already in use by pid" in failed.value.reason
    assert processes_in(data_dir) == []
    assert compute.deploy(server(kits)).pid


def test_a_missing_or_corrupt_kit_fails_before_anything_starts(kits, data_dir):
    compute = LocalCompute(data_dir)
    shutil.move(kits.site("site-1"), kits.root / "elsewhere")
    with pytest.raises(DeploymentError) as missing:
        compute.deploy(site(kits))
    shutil.move(kits.root / "elsewhere", kits.site("site-1"))
    (kits.site("site-1") / "startup" / "client.key").unlink()
    with pytest.raises(DeploymentError) as no_key:
        compute.deploy(site(kits))
    (kits.server / "startup" / "fed_server.json").write_text("{not json")
    with pytest.raises(DeploymentError) as corrupt:
        compute.deploy(server(kits))

    assert "is missing" in missing.value.reason and "re-provision" in missing.value.reason
    assert "lacks client.key" in no_key.value.reason
    assert "fed_server.json is not valid JSON" in corrupt.value.reason
    assert processes_in(data_dir) == []


def test_a_server_that_never_listens_fails_with_its_log(kits, data_dir):
    config = kits.server / "startup" / "fed_server.json"
    fed = json.loads(config.read_text())
    fed["servers"][0]["ssl_cert"] = "rootCA.pem"  # a cert that does not match the key
    config.write_text(json.dumps(fed))
    compute = LocalCompute(data_dir, ready_timeout_s=8)

    placement = compute.deploy(server(kits))
    seen = _wait_while(compute, placement, "starting", timeout=30)

    assert seen.status == "failed", seen
    assert f"did not accept connections on port {kits.port} within 8 s" in seen.detail
    assert "last lines of" in seen.detail
    compute.stop(placement)  # what the watcher does with a failed start
    assert processes_in(data_dir) == []


def test_a_server_that_dies_before_listening_fails_not_crashes(kits, data_dir):
    compute = LocalCompute(data_dir)
    placement = compute.deploy(server(kits))

    psutil.Process(placement.pid).send_signal(signal.SIGKILL)
    seen = _wait_while(compute, placement, "starting")

    assert seen.status == "failed", seen
    assert f"server exited before accepting connections on port {kits.port}" in seen.detail


def _wait_while(compute, placement, status: str, timeout: float = 30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = compute.observe(placement)
        if seen.status != status:
            return seen
        time.sleep(0.1)
    return compute.observe(placement)


def _wait_exit(compute, placement, timeout: float = 20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = compute.observe(placement)
        if seen.status != "running":
            return seen
        time.sleep(0.1)
    return compute.observe(placement)
