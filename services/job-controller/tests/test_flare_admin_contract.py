"""One contract for the FLARE admin port: the fake the unit tests use, and the real adapter
on a real NVFlare server on loopback (no client connected, so jobs stay SUBMITTED).

Every test submits under tokens of its own, so the tests share one server.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.artifacts.folder import FolderArtifactStore
from arcflare.contracts.commands import RecipePackage, SubmitJob
from arcflare.job_controller.adapters.flare_admin import (
    FlareAdmin,
    FlareApiAdmin,
    JobRefused,
    UnknownJob,
)
from arcflare.job_controller.job_folders import prepare_job
from arcflare.job_controller.packages import Caps
from jc_fakes import FakeFlareAdmin
from jc_federation import ADMIN

NAME = "contract"
#: a site that never connects: the job is deployed to it only, so it never starts
ABSENT_SITE = "site-2"


def job_folder(data_dir: Path, rounds: int) -> Path:
    """A real NVFlare job (the built-in recipe, as the job-controller builds it)."""
    command = SubmitJob(federation="fedtest", name=NAME, sites=[ABSENT_SITE],
                        package=RecipePackage(recipe="fedavg-logreg", parameters={"rounds": rounds}))
    return prepare_job(command, f"contract-{rounds}", data_dir=data_dir, caps=Caps(10**8, 5000),
                       bridge=False, artifacts=FolderArtifactStore(data_dir / "artifacts"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same job twice, in two builds whose content differs."""
    data_dir = tmp_path_factory.mktemp("contract-jobs")
    return job_folder(data_dir, rounds=2), job_folder(data_dir, rounds=3)


def token() -> str:
    return f"contract-{uuid.uuid4()}"


class FlareAdminContract:
    @pytest.fixture
    def admin(self) -> Iterator[FlareAdmin]:
        raise NotImplementedError("a contract subclass provides the admin fixture")

    def test_a_server_without_clients_shows_none(self, admin: FlareAdmin) -> None:
        view = admin.server_view()

        assert view.clients == [] and view.running_jobs == []
        assert isinstance(view.status, str) and view.status

    def test_warmed_it_answers_and_lists_the_clients_its_view_shows(self, admin) -> None:
        admin.warm()

        assert admin.connected_clients() == [c.name for c in admin.server_view().clients]

    def test_a_token_submits_once_even_when_the_content_changed(self, admin, folders) -> None:
        first_build, second_build = folders
        tok = token()

        job_id = admin.submit(first_build, tok)
        again = admin.submit(first_build, tok)
        rebuilt = admin.submit(second_build, tok)

        assert again == rebuilt == job_id
        assert admin.find_submitted(tok) == job_id
        assert [v.job_id for v in admin.jobs()].count(job_id) == 1

    def test_a_token_never_used_finds_nothing(self, admin: FlareAdmin) -> None:
        assert admin.find_submitted(token()) is None

    def test_a_submitted_job_waits_under_its_name(self, admin, folders) -> None:
        job_id = admin.submit(folders[0], token())

        view = admin.job(job_id)

        assert (view.job_id, view.name, view.status) == (job_id, NAME, "SUBMITTED")
        assert view.submit_time and view.duration_s is None

    def test_a_folder_that_is_not_a_job_is_refused(self, admin, tmp_path: Path) -> None:
        (tmp_path / "notajob").mkdir()

        with pytest.raises(JobRefused):
            admin.submit(tmp_path / "notajob", token())

    def test_an_unknown_job_is_unknown(self, admin: FlareAdmin) -> None:
        nobody = str(uuid.uuid4())

        with pytest.raises(UnknownJob):
            admin.job(nobody)
        with pytest.raises(UnknownJob):
            admin.abort(nobody)

    def test_abort_ends_a_job_before_it_ran_and_again_is_harmless(self, admin, folders) -> None:
        job_id = admin.submit(folders[0], token())

        admin.abort(job_id)
        admin.abort(job_id)

        assert admin.job(job_id).status == "FINISHED:ABORTED"

    def test_an_ended_job_downloads_into_a_folder_named_by_its_id(self, admin, folders, tmp_path) -> None:
        job_id = admin.submit(folders[0], token())
        admin.abort(job_id)

        result = admin.download_result(job_id, tmp_path / "results")

        assert result == tmp_path / "results" / job_id and result.is_dir()
        meta = json.loads((result / "meta.json").read_text())
        assert (meta["job_id"], meta["name"], meta["status"]) == (job_id, NAME, "FINISHED:ABORTED")


class TestFakeFlareAdmin(FlareAdminContract):
    @pytest.fixture
    def admin(self) -> Iterator[FlareAdmin]:
        yield FakeFlareAdmin(clients=[])


@pytest.mark.nvflare
@pytest.mark.slow
class TestFlareApiAdmin(FlareAdminContract):
    @pytest.fixture
    def admin(self, idle_federation) -> Iterator[FlareAdmin]:
        admin = FlareApiAdmin(idle_federation.admin_kit, ADMIN)
        try:
            yield admin
        finally:
            admin.close()  # an open FLARE API session would hang the interpreter at exit
