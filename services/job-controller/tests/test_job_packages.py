"""Job packages by reference: a person's job folder travels through the artifact store, and
whatever is wrong with a reference (missing, tampered, too big, too many files, a path of
the sender's machine, a kit) is refused at once, naming the reference and the problem, with
nothing half-unpacked left behind and nothing submitted."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from arcflare.bus.port import SubQueue
from arcflare.cli.main import app
from arcflare.client import Client
from arcflare.contracts.artifacts import STARTUP_KIT, ZIP
from arcflare.contracts.commands import (
    ArchivePackage,
    ArtifactPackage,
    FolderPackage,
    SubmitJob,
)
from arcflare.job_controller.client_wait import ClientWait
from arcflare.job_controller.settings import JobControllerSettings
from jc_fakes import FakeFlareAdmin, fake_service
from typer.testing import CliRunner

META = {"name": "byo", "deploy_map": {"app": ["@ALL"]}, "min_clients": 1}


def byo_job(folder: Path, extra_files: int = 0) -> Path:
    """A classic NVFlare job folder as a person would bring it."""
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "app" / "custom").mkdir()
    (folder / "meta.json").write_text(json.dumps(META))
    (folder / "app" / "config" / "config_fed_server.json").write_text(
        json.dumps({"format_version": 2, "workflows": [], "components": []}))
    (folder / "app" / "config" / "config_fed_client.json").write_text(
        json.dumps({"format_version": 2, "executors": [], "components": []}))
    (folder / "app" / "custom" / "train.py").write_text("print('my own training')\n")
    for i in range(extra_files):
        (folder / "app" / "custom" / f"part{i}.py").write_text("x = 1\n")
    return folder


@pytest.fixture
def env(tmp_path: Path):
    with fake_service(tmp_path / "data", FakeFlareAdmin(["site-1", "site-2"]),
                      max_package_bytes=200_000, max_package_files=20) as running:
        yield running


def outcome(svc, client: Client, command_id: str) -> dict:
    svc.drain()
    env = client.wait(command_id, timeout=5)
    return {"type": env.type, **env.payload}


def submit(svc, client: Client, package) -> dict:
    return outcome(svc, client, client.send(SubmitJob(federation="fed", name="byo",
                                                      package=package)))


def nothing_left(settings: JobControllerSettings) -> bool:
    jobs = settings.data_dir / "jobs"
    return not jobs.exists() or list(jobs.iterdir()) == []


def test_a_folder_of_this_machine_runs_from_its_reference(env, tmp_path: Path) -> None:
    svc, client, admin, settings = env
    folder = byo_job(tmp_path / "my-job")

    accepted = outcome(svc, client, client.submit_job("fed", folder, min_clients=2))
    ClientWait(svc.state, svc.dependencies["flare_admins"]).poll()

    assert accepted["type"] == "JobWaitingForClients"
    assert len(admin.submitted) == 1
    job_dir = next((settings.data_dir / "jobs").iterdir()) / "my-job"
    assert (job_dir / "app" / "custom" / "train.py").read_text() == "print('my own training')\n"
    assert "BusBridge" in (job_dir / "app" / "config" / "config_fed_server.json").read_text()


def test_the_same_folder_submitted_twice_is_stored_once(env, tmp_path: Path) -> None:
    _, client, _, settings = env
    folder = byo_job(tmp_path / "my-job")

    first, again = client.upload_job(folder), client.upload_job(folder)

    assert first == again
    blobs = list((settings.data_dir / "artifacts" / "packages").glob("*/*"))
    assert [b.name for b in blobs] == [first.ref.sha256]


def test_no_path_of_the_submitting_machine_goes_on_the_bus(env, tmp_path: Path) -> None:
    svc, client, _, settings = env
    folder = byo_job(tmp_path / "a-folder-only-this-machine-has")

    sent = CliRunner().invoke(app, ["job", "submit", "fed", str(folder), "--json",
                                    "--data-dir", str(settings.data_dir)])

    assert sent.exit_code == 0, sent.output
    [message] = client.bus.peek("job-controller")
    body = json.loads(message.body)
    assert body["package"]["kind"] == "artifact"
    assert str(tmp_path) not in message.body.decode()
    svc.drain()


@pytest.mark.parametrize("package", [FolderPackage(path="/home/someone/job"),
                                     ArchivePackage(path="job.zip")])
def test_a_path_from_the_sender_is_refused_not_read(env, package) -> None:
    svc, client, admin, settings = env

    result = submit(svc, client, package)

    assert (result["type"], result["reason"]) == ("CommandRejected", "invalid")
    assert "names a path on the sender's machine" in result["detail"]
    assert admin.submitted == {} and nothing_left(settings)


def test_a_missing_blob_is_refused_naming_the_reference(env, tmp_path: Path) -> None:
    svc, client, admin, settings = env
    package = client.upload_job(byo_job(tmp_path / "job"))
    settings.data_dir.joinpath("artifacts", "packages", package.ref.sha256[:2],
                               package.ref.sha256).unlink()

    result = submit(svc, client, package)

    assert result["reason"] == "invalid"
    assert result["detail"].startswith(f"package.ref {package.ref.locator}: ")
    assert "no such blob" in result["detail"]
    assert result["errors"][0]["field"] == "package.ref"
    assert admin.submitted == {} and nothing_left(settings)


def test_a_tampered_blob_is_refused_before_anything_is_unpacked(env, tmp_path: Path) -> None:
    svc, client, admin, settings = env
    package = client.upload_job(byo_job(tmp_path / "job"))
    blob = settings.data_dir / "artifacts" / "packages" / package.ref.sha256[:2] / \
        package.ref.sha256
    blob.write_bytes(os.urandom(package.ref.size))  # same size, other bytes

    result = submit(svc, client, package)

    assert result["reason"] == "invalid"
    assert f"package.ref {package.ref.locator}: the stored bytes do not match their sha256" \
        in result["detail"]
    assert admin.submitted == {} and nothing_left(settings)


def test_a_package_over_the_size_cap_is_refused_before_it_is_fetched(env, tmp_path: Path) -> None:
    svc, client, admin, settings = env
    job = byo_job(tmp_path / "job")
    (job / "app" / "custom" / "weights.bin").write_bytes(os.urandom(300_000))

    result = submit(svc, client, client.upload_job(job))

    assert result["reason"] == "invalid"
    assert "is more than the cap of 200000 bytes" in result["detail"]
    assert admin.submitted == {} and nothing_left(settings)


def test_a_package_over_the_file_cap_is_refused_and_leaves_nothing(env, tmp_path: Path) -> None:
    svc, client, admin, settings = env
    package = client.upload_job(byo_job(tmp_path / "job", extra_files=30))

    result = submit(svc, client, package)

    assert result["reason"] == "invalid"
    assert result["detail"].startswith(f"package.ref {package.ref.locator}: more than 20 files")
    dead = client.bus.peek("job-controller", sub_queue=SubQueue.DEAD_LETTER)
    assert [m.dead_letter_reason for m in dead] == ["invalid"]
    assert dead[0].delivery_count == 1  # refused on its first delivery, never retried
    assert admin.submitted == {} and nothing_left(settings)


def test_an_archive_that_climbs_out_is_refused_naming_the_member(env, tmp_path: Path) -> None:
    svc, client, admin, settings = env
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("job/meta.json", json.dumps(META))
        zf.writestr("job/../../../escape.py", "x")
    package = client.upload_job(archive)

    result = submit(svc, client, package)

    assert package.ref.media_type == ZIP
    assert result["reason"] == "invalid"
    assert "member 'job/../../../escape.py' contains '..'" in result["detail"]
    assert not (settings.data_dir.parent / "escape.py").exists()
    assert admin.submitted == {} and nothing_left(settings)


def test_a_startup_kit_is_never_taken_for_a_package(env) -> None:
    svc, client, admin, settings = env
    kit = client.artifacts.put(b"-----BEGIN PRIVATE KEY-----", STARTUP_KIT, area="kits")

    result = submit(svc, client, ArtifactPackage(ref=kit))

    assert result["reason"] == "invalid"
    assert "only 'packages' is read here" in result["detail"]
    assert admin.submitted == {} and nothing_left(settings)


def test_a_path_that_is_no_job_is_a_usage_error_of_the_cli(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a job")

    result = CliRunner().invoke(app, ["job", "submit", "fed", str(tmp_path / "notes.txt"),
                                      "--data-dir", str(tmp_path / "data")])

    assert result.exit_code == 2
    assert "neither a job folder nor" in result.output
