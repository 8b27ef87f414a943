"""Three hospitals train the built-in recipe on their own CSV folders, on the whole local stack.

Each hospital's records are made here with a different distribution (shifted feature means,
so one hospital is mostly positive, one balanced, one mostly negative) under one shared
labelling rule. The federation spec names each hospital's folder as its data input
`records`; the deployer binds it to the NVFlare client as ARCFLARE_INPUT_RECORDS; the
recipe's Client API script, in the job process NVFlare starts, reads the CSV files there.
The final global model is then scored here, on the hospitals' own validation rows.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from arcflare.client import Client
from arcflare.contracts.commands import (
    AddSite,
    CreateFederation,
    RecipePackage,
    RefreshFederationStatus,
    SubmitJob,
)
from arcflare.job_controller.recipes.logreg_client import (
    accuracy,
    csv_dataset,
    shuffled,
    site_dataset,
    split,
    train,
)
from arcflare.runtime.settings import Settings

from tests.e2e.stack import arcflare, local_down, running_under

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

FEDERATION = "hospitals-data"
ADMIN = "admin@arcflare.local"
FEATURES = ["age", "bmi", "glucose", "systolic_bp", "cholesterol", "heart_rate"]
#: the rule every hospital's outcomes follow (plus noise); no hospital's data shows all of it
TRUE_WEIGHTS, TRUE_BIAS = np.array([1.2, -0.8, 0.6, 0.0, 1.0, -0.5]), -0.3
#: per hospital: where its patients' (standardised) features centre, and how many it has
HOSPITALS = {
    "st-marys": (np.array([0.8, -0.5, 0.5, 0.3, 0.6, 0.0]), 900),
    "charite": (np.array([0.0, 0.0, 0.0, -0.5, 0.0, 0.5]), 700),
    "karolinska": (np.array([-0.8, 0.6, -0.4, 0.0, -0.7, 0.2]), 500),
}
ROUNDS = 3


def write_records(folder: Path, centre: np.ndarray, rows: int, seed: int) -> None:
    """Two CSV files (one in a subfolder), with columns the recipe must leave out."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES))) * rng.uniform(0.7, 1.3, len(FEATURES)) + centre
    y = (x @ TRUE_WEIGHTS + TRUE_BIAS + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    half = rows // 2
    for path, part in ((folder / "2023.csv", slice(0, half)),
                       (folder / "2024" / "admissions.csv", slice(half, rows))):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["patient_id", *FEATURES, "ward", "outcome"])
            for i in range(part.start, part.stop):
                out.writerow([f"P{seed}-{i:05d}", *(f"{v:.4f}" for v in x[i]), "B2", y[i]])


def hospital_splits(folders: dict[str, Path]) -> dict[str, tuple]:
    """Each hospital's (train, validation) rows exactly as the recipe's client splits them."""
    return {site: split(*shuffled(*csv_dataset(folder, "outcome", FEATURES, len(FEATURES)), site))
            for site, folder in folders.items()}


def wait_connected(client: Client, sites: set[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        command_id = client.send(RefreshFederationStatus(federation=FEDERATION))
        try:
            outcome = client.wait(command_id, timeout=30)
            seen = {c["name"] for c in outcome.payload.get("clients", [])}
        except TimeoutError:
            pass
        if sites <= seen:
            return
        time.sleep(1)
    raise AssertionError(f"connected: {sorted(seen)}; wanted {sorted(sites)}")


def completed_job(client: Client, job_id: str, timeout: float = 420):
    for env in client.follow(types=["JobCompleted"], federation=FEDERATION, timeout=timeout):
        if env.payload["job_id"] == job_id:
            return env
    raise AssertionError(f"job {job_id} did not complete within {timeout} s")


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("stack")
    hospital_data = tmp_path_factory.mktemp("hospital-data")
    folders = {site: hospital_data / site / "records" for site in HOSPITALS}
    for seed, (site, (centre, rows)) in enumerate(HOSPITALS.items(), start=11):
        write_records(folders[site], centre, rows, seed)
    try:
        started = arcflare("local", "up", "--data-dir", str(data), "--json", timeout=180)
        assert started.returncode == 0, started.stderr[-3000:]
        with Client(Settings(data_dir=data)) as client:
            spec = CreateFederation(
                name=FEDERATION, auto_deploy=True, heart_beat_timeout_s=30,
                sites=[{"name": s, "org": s.replace("-", "_"),
                        "data": [{"name": "records", "path": str(folders[s])}]}
                       for s in HOSPITALS],
                admins=[{"email": ADMIN, "org": "consortium", "role": "project_admin"}])
            provisioned = client.wait(client.send(spec), timeout=120)
            assert provisioned.type == "FederationProvisioned", provisioned.payload
            wait_connected(client, set(HOSPITALS))
            yield folders, client
    finally:
        local_down(data)
        assert running_under(data) == [], "processes left after local down"


def test_three_hospitals_train_on_their_own_records_beyond_chance_and_synthetic_data(
        federation, tmp_path):
    folders, client = federation
    submitted = client.wait(client.send(SubmitJob(
        federation=FEDERATION, name="records-logreg", min_clients=len(HOSPITALS), timeout_s=600,
        package=RecipePackage(recipe="fedavg-logreg", parameters={
            "rounds": ROUNDS, "data": "records", "label": "outcome",
            "features": ",".join(FEATURES)}))), timeout=300, settled=True)
    assert submitted.type == "JobSubmitted", submitted.payload
    completed = completed_job(client, submitted.payload["job_id"])
    assert completed.payload["status"] == "FINISHED:COMPLETED", completed.payload

    result = client.download_result(completed.payload["result"], tmp_path / "result")
    model = np.load(result / "workspace" / "models" / "server.npy").reshape(-1)
    splits = hospital_splits(folders)
    x_train = np.concatenate([s[0][0] for s in splits.values()])
    y_train = np.concatenate([s[0][1] for s in splits.values()])
    x_val = np.concatenate([s[1][0] for s in splits.values()])
    y_val = np.concatenate([s[1][1] for s in splits.values()])

    # The floor is the best a model can score without these hospitals' data: a constant
    # answer (the majority outcome over all three), or the recipe's synthetic fallback (what
    # it learns from its own generated data for these sites, whose rule is not this one).
    # The ceiling is one model trained on all the rows pooled. A federation that trained on
    # anything else than each hospital's own records stays near the floor; one that did
    # must cover most of the gap. The gap itself must be wide, or the test would prove nothing.
    constant = max(y_val.mean(), 1 - y_val.mean())
    synthetic = [site_dataset(site, len(FEATURES), 500) for site in HOSPITALS]
    fallback = train(np.zeros(len(FEATURES) + 1), np.concatenate([x for x, _ in synthetic]),
                     np.concatenate([y for _, y in synthetic]), 0.5, 300)
    floor = max(constant, accuracy(fallback, x_val, y_val))
    ceiling = accuracy(train(np.zeros(len(FEATURES) + 1), x_train, y_train, 0.5, 300),
                       x_val, y_val)
    assert ceiling - floor > 0.25, (floor, ceiling)
    threshold = floor + 0.75 * (ceiling - floor)

    global_accuracy = accuracy(model, x_val, y_val)
    assert global_accuracy >= threshold, (global_accuracy, threshold, floor, ceiling)
    assert model.shape == (len(FEATURES) + 1,)


def test_each_hospital_agent_reports_its_records_present_and_only_their_size_class(federation):
    _folders, client = federation
    deadline = time.monotonic() + 60
    reported: dict[str, list] = {}
    while set(reported) != set(HOSPITALS) and time.monotonic() < deadline:
        for beat in client.follow(types=["SiteHeartbeat"], topics=("telemetry",),
                                  from_start=True, until_idle=True, timeout=5):
            if beat.payload["federation"] == FEDERATION and beat.payload["inputs"]:
                reported[beat.payload["site"]] = beat.payload["inputs"]
        time.sleep(1)

    assert reported == {site: [{"name": "records", "present": True, "readable": True,
                                "size": "<1MB"}] for site in HOSPITALS}


def test_a_hospital_whose_folder_is_missing_fails_to_deploy_naming_the_input(federation):
    folders, client = federation
    missing = folders["charite"].parent.parent / "erasmus" / "records"

    added = client.wait(client.send(AddSite(
        federation=FEDERATION, site="erasmus", org="erasmus_mc", deploy=True,
        data=[{"name": "records", "path": str(missing)}])), timeout=120)
    # the first failure for erasmus ends the follow; draining it would wait out its timeout
    failed = next((e for e in client.follow(types=["DeploymentFailed"], federation=FEDERATION,
                                            timeout=60)
                   if e.payload["target"] == "erasmus"), None)

    assert added.type == "SiteProvisioned"
    assert added.payload["data"] == [{"kind": "path", "name": "records", "path": str(missing)}]
    assert failed is not None, "no DeploymentFailed for erasmus within 60 s"
    assert f"data input 'records': {missing} does not exist" in failed.payload["reason"]
