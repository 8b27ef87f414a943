"""No shared disk: the whole stack with every service, every site agent and the CLI on a data
dir of its own (`arcflare local up --isolated`), sharing only the bus (one embedded broker
file) and an azureblob artifact store on Azurite. The demo trains to a registered model, and
a person's own NVFlare job folder, submitted from the CLI's directory, completes and lands in
MLflow; packages, kits and results travel through the store by reference only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest
from arcflare.client import Client
from arcflare.localstack.demo import DemoRun
from arcflare.localstack.layout import IsolatedLayout
from arcflare.runtime.settings import Settings
from azure.storage.blob import BlobServiceClient

from tests.e2e.stack import arcflare, local_down, running_under
from tests.support.azurite import node_missing, running_azurite

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SITES = 2
FEDERATION = f"hospitals-{SITES}"
PREFIX = "isolated"
SERVICES = ("provisioner", "deployer", "job-controller", "metrics-relay", "alerter", "ledger")

BYO_CLIENT = '''\
"""A site's own training: nudges the weights and reports how far it got."""
import nvflare.client as flare
from nvflare.client.tracking import SummaryWriter

flare.init()
writer = SummaryWriter()
while flare.is_running():
    model = flare.receive()
    r = model.current_round
    writer.add_scalar("accuracy", 0.5 + r / 10, global_step=r)
    flare.send(flare.FLModel(params={k: v + 1 for k, v in model.params.items()},
                             metrics={"accuracy": 0.5 + r / 10}))
'''


def byo_job(folder: Path, name: str = "byo-fedavg") -> Path:
    """An NVFlare job exported with NVFlare's own Recipe API, as a person brings one."""
    import numpy as np
    from nvflare.app_common.np.recipes.fedavg import NumpyFedAvgRecipe

    folder.mkdir(parents=True)
    (folder / "client.py").write_text(BYO_CLIENT)
    NumpyFedAvgRecipe(name=name, model=np.zeros((2, 2)).tolist(), min_clients=SITES,
                      num_rounds=2, train_script=str(folder / "client.py")).export(
        str(folder / "jobs"))
    return folder / "jobs" / name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    if why := node_missing():
        pytest.skip(why)
    root = tmp_path_factory.mktemp("isolated")
    with running_azurite() as azurite:
        env = {**os.environ, "ARCFLARE_ARTIFACT_STORE": "azureblob",
               "ARCFLARE_ARTIFACT_BLOB_CONNECTION_STRING": azurite.connection_string,
               "ARCFLARE_ARTIFACT_BLOB_CONTAINER_PREFIX": PREFIX}
        try:
            up = arcflare("local", "up", "--isolated", "--data-dir", str(root), "--json",
                          timeout=240, env=env)
            assert up.returncode == 0, up.stderr[-3000:]
            cli = IsolatedLayout(root).cli_dir()
            yield root, cli, {**env, "ARCFLARE_BUS_FILE": str(root / "bus.db"),
                              "ARCFLARE_DATA_DIR": str(cli)}, azurite
        finally:
            local_down(root, env=env)
            assert running_under(root) == [], "processes left after local down"


@pytest.fixture(scope="module")
def client(stack):
    _, cli, env, _ = stack
    settings = Settings(
        data_dir=cli, bus_file=env["ARCFLARE_BUS_FILE"], artifact_store="azureblob",
        artifact_blob_connection_string=env["ARCFLARE_ARTIFACT_BLOB_CONNECTION_STRING"],
        artifact_blob_container_prefix=PREFIX)
    with Client(settings) as c:
        yield c


@pytest.fixture(scope="module")
def demo(stack, client):
    _, cli, _, _ = stack
    return DemoRun(data_dir=cli, sites=SITES, rounds=2, progress=lambda _: None).run(client)


@pytest.fixture(scope="module")
def byo(stack, demo):
    _, cli, env, _ = stack
    job = byo_job(cli / "my-work")
    relative = job.relative_to(cli)  # submitted from the CLI's own directory
    done = arcflare("job", "submit", FEDERATION, f"./{relative}", "--min-clients", str(SITES),
                    "--wait", "--timeout", "400", "--job-timeout", "600", "--json",
                    timeout=450, env=env, cwd=cli)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def mlflow(stack):
    from mlflow import MlflowClient

    root = stack[0]
    return MlflowClient(f"sqlite:///{root / 'parties' / 'metrics-relay' / 'mlflow.db'}")


def test_the_demo_completes_with_its_model_in_mlflow(stack, demo) -> None:
    assert demo["status"] == "FINISHED:COMPLETED"
    name, version = demo["mlflow"]["model_name"], demo["mlflow"]["model_version"]
    versions = mlflow(stack).search_model_versions(f"name = '{name}'")
    assert [str(v.version) for v in versions] == [str(version)]
    assert versions[0].tags["job_id"] == demo["job_id"]


def test_a_job_folder_of_the_clis_own_directory_completes_and_its_model_lands_in_mlflow(
        stack, byo) -> None:
    completed = byo["completed"]["payload"]
    assert completed["status"] == "FINISHED:COMPLETED"
    assert completed["result"]["locator"].startswith("azureblob:results/")
    versions = mlflow(stack).search_model_versions(f"name = '{FEDERATION}-byo-fedavg'")
    assert [v.tags["job_id"] for v in versions] == [completed["job_id"]]


def test_each_site_agent_sees_its_client_from_its_own_data_dir(stack, client, byo) -> None:
    connected = {e.payload["site"] for e in client.follow(
        types=["SiteHeartbeat"], federation=FEDERATION, topics=("telemetry",), from_start=True,
        until_idle=True) if e.payload["status"] == "connected"}

    assert len(connected) == SITES


def test_each_party_runs_on_a_data_dir_of_its_own(stack, byo) -> None:
    root = stack[0]
    parties = root / "parties"
    seen: dict[str, str] = {}
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
            env = proc.info["environ"] or {}
        except psutil.Error:
            continue
        for name in (*SERVICES, "site_agent"):
            if line.endswith(f"-m arcflare.{name.replace('-', '_')}"):
                seen.setdefault(env.get("ARCFLARE_SITE") or name, env.get("ARCFLARE_DATA_DIR", ""))
    agents = {s: d for s, d in seen.items() if s not in SERVICES and s != "site_agent"}
    assert {s: seen.get(s) for s in SERVICES} == {s: str(parties / s) for s in SERVICES}
    assert len(agents) == SITES
    assert all(d == str(parties / f"site-agent-{FEDERATION}-{s}") for s, d in agents.items())
    # each keeps its own state, and no one else's
    assert (parties / "provisioner" / "kits").is_dir()
    assert not any((parties / p / "kits").exists() for p in ("deployer", "job-controller"))
    assert (parties / "metrics-relay" / "mlflow.db").is_file()
    assert not list(parties.glob("*/artifacts"))  # the folder store is never used
    assert not list(parties.rglob("root-key.pem"))  # the operator's root key stays theirs
    assert not list((parties / "provisioner" / "identity").glob("services/deployer"))
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith("bus.db")) == [
        "identity", "logs", "parties", "run"]


def test_packages_kits_and_results_travel_through_the_store_by_reference(stack, client,
                                                                         byo) -> None:
    root, _, _, azurite = stack
    events = list(client.follow(types=["FederationProvisioned", "SiteProvisioned",
                                       "JobCompleted"], federation=FEDERATION,
                                from_start=True, until_idle=True))
    refs = [e.payload[k] for e in events for k in ("kit_ref", "server_kit_ref",
                                                     "admin_kit_ref", "result_ref")
            if e.payload.get(k)]
    assert refs and all(r.startswith(("azureblob:kits/", "azureblob:results/")) for r in refs)
    assert not any(str(root) in json.dumps(e.payload) for e in events)
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    held = {c.name: len(list(blobs.get_container_client(c.name).list_blobs()))
            for c in blobs.list_containers(name_starts_with=PREFIX)}
    assert held[f"{PREFIX}-kits"] == SITES + 2  # each site, the server and the admin: once
    assert held[f"{PREFIX}-packages"] == 1  # the person's job folder
    assert held[f"{PREFIX}-results"] == 2  # the demo's job and theirs
