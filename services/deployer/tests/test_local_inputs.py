"""A local site's data inputs: checked at deploy time, bound to the real NVFlare client."""
from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from arcflare.client import Client
from arcflare.contracts.commands import DeploySite
from arcflare.contracts.fields import PathInput, UriInput
from arcflare.deployer.adapters.local import LocalCompute
from arcflare.deployer.bootstrap import bootstrap
from arcflare.deployer.compute import DeploymentError, Target
from arcflare.flare.site_inputs import MARKER
from dep_kits import ADMIN, provision
from dep_service import (
    federation_provisioned,
    processes_in,
    publish,
    settings,
    site_provisioned,
    wait_for,
)

pytestmark = pytest.mark.nvflare


@pytest.fixture
def kits(tmp_path):
    return provision(tmp_path / "prov", "feddata", ["st-marys"])


def _known(svc, federation: str, site: str) -> bool:
    """The deployer took the provisioning events in (a command sent earlier would race them)."""
    with svc.state.connect() as db:
        known = db.execute("SELECT 1 FROM federations WHERE name=?", (federation,)).fetchone()
        return known is not None and db.execute(
            "SELECT 1 FROM sites WHERE federation=? AND name=?", (federation, site)).fetchone()


def client_environment(data_dir, site: str) -> dict[str, str]:
    """The environment of the site's NVFlare client process, once sub_start.sh has started it
    (SiteDeployed is published at the spawn; on a busy machine python comes a little later)."""
    def clients():
        return [p for p in processes_in(data_dir)
                if "client_train" in " ".join(p.cmdline())
                and p.environ()["ARCFLARE_WORKSPACE"].endswith(f"/{site}")]

    [client] = wait_for(clients, timeout=60, poll=0.2) or [None]
    assert client is not None, f"no NVFlare client process for {site}"
    return client.environ()


def test_a_missing_folder_fails_the_deploy_naming_the_input_and_a_retry_binds_it(
        tmp_path, data_dir, kits):
    records = tmp_path / "hospital" / "records"
    svc = bootstrap(settings(data_dir))
    svc.start()
    client = Client(svc.settings, issued_by=ADMIN)
    try:
        site = site_provisioned(kits, "st-marys", deploy=False).model_copy(
            update={"data": [PathInput(name="records", path=str(records))]})
        publish(client.bus, data_dir, federation_provisioned(kits, auto_deploy=False), site)
        assert wait_for(lambda: _known(svc, kits.federation, "st-marys"), timeout=30)
        failed = client.wait(client.send(DeploySite(federation=kits.federation, site="st-marys")),
                             timeout=60)
        started_after_failure = processes_in(data_dir)
        records.mkdir(parents=True)
        deployed = client.wait(
            client.send(DeploySite(federation=kits.federation, site="st-marys")), timeout=60)
        env = client_environment(data_dir, "st-marys")
    finally:
        client.close()
        svc.stop()

    assert failed.type == "DeploymentFailed" and failed.payload["target"] == "st-marys"
    assert f"data input 'records': {records} does not exist" in failed.payload["reason"]
    assert started_after_failure == []
    assert deployed.type == "SiteDeployed"
    # the NVFlare client (whose job processes inherit its environment) has the folder
    assert env["ARCFLARE_INPUT_RECORDS"] == str(records)
    marker = data_dir / "sites" / kits.federation / "st-marys" / MARKER
    assert json.loads(marker.read_text()) == {"inputs": {"records": str(records)}}


def test_what_a_local_client_cannot_read_is_refused_before_anything_starts(
        tmp_path, data_dir, kits):
    compute = LocalCompute(data_dir)
    site = Target(kits.federation, "st-marys", kits.ref("st-marys"))
    a_file = tmp_path / "records.csv"
    a_file.write_text("age,label\n")

    refusals = {}
    for name, item in {
        "uri": UriInput(name="imaging", uri="azureml:imaging:1"),
        "file": PathInput(name="records", path=str(a_file)),
    }.items():
        with pytest.raises(DeploymentError) as failed:
            compute.deploy(replace(site, data=(item,)))
        refusals[name] = failed.value.reason

    assert "data input 'imaging' is a uri, which only an Azure ML job can mount" in refusals["uri"]
    assert f"data input 'records': {a_file} is not a folder" in refusals["file"]
    assert processes_in(data_dir) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder: nothing to refuse")
def test_a_folder_the_deployer_cannot_read_is_refused(tmp_path, data_dir, kits):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    site = Target(kits.federation, "st-marys", kits.ref("st-marys"),
                  data=(PathInput(name="records", path=str(locked)),))

    with pytest.raises(DeploymentError, match="cannot be read by user"):
        LocalCompute(data_dir).deploy(site)
    assert processes_in(data_dir) == []
