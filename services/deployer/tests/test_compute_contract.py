"""One contract for every compute adapter (local processes, Azure ML jobs)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from arcflare.deployer.adapters.local import LocalCompute
from arcflare.deployer.compute import Compute, Placement, Target
from dep_fake_ml import ARC, FakeMLClient, compute_with
from dep_kits import provision
from dep_service import wait_for

from tests.support.flare_processes import kill_all_in


@dataclass
class Case:
    compute: Compute
    target: Target
    #: what the outside world does to make a deployed placement run (a queued job starts)
    start_running: Callable[[Placement], None]


@pytest.fixture(params=[pytest.param("local", marks=pytest.mark.nvflare), "azureml"])
def case(request, tmp_path, data_dir) -> Iterator[Case]:
    if request.param == "local":
        kits = provision(tmp_path / "prov", "fedcontract", ["site-1"])
        try:
            yield Case(LocalCompute(data_dir, stop_grace_s=5),
                       Target(kits.federation, "site-1", kits.ref("site-1")), lambda p: None)
        finally:  # a test that deploys and never stops leaves no NVFlare client running
            kill_all_in(data_dir)
        return
    ml = FakeMLClient({"arc-hospital-a"}, {"arcflare-nvflare": "1"})

    def start(placement: Placement) -> None:
        ml.jobs.jobs[placement.handle].status = "Running"

    yield Case(compute_with(ml), Target("fedcontract", "site-1", "azureml:kit:1", ARC), start)


def test_deploying_twice_adopts_the_first(case: Case):
    first = case.compute.deploy(case.target)
    again = case.compute.deploy(case.target)

    assert not first.adopted and again.adopted
    assert again.handle == first.handle


def test_a_deployed_participant_is_observed_running(case: Case):
    placement = case.compute.deploy(case.target)
    case.start_running(placement)

    assert wait_for(lambda: case.compute.observe(placement).status == "running", timeout=30)


def test_stop_is_idempotent_and_the_exit_is_expected(case: Case):
    placement = case.compute.deploy(case.target)
    case.start_running(placement)

    case.compute.stop(placement)
    case.compute.stop(placement)

    assert case.compute.observe(placement).status == "exited"
    assert case.compute.expected_exit(placement)
