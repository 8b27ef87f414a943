"""Job-controller control-plane overhead: SubmitJob → JobCompleted wall time for the
built-in recipe, beside the same job folder submitted directly with the FLARE API
(submit, poll, download the result) on the same federation in the same run.

Both sides run the identical, already decorated job content (built once by the
job-controller's own prepare step), poll NVFlare at the same interval and end with
the result downloaded; runs alternate so machine noise falls on both.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.harness import ROOT, Results

sys.path.insert(0, str(ROOT / "services" / "job-controller" / "tests"))

from arcflare.client import Client
from arcflare.job_controller.adapters.flare_admin import FlareApiAdmin
from arcflare.job_controller.decoration import bridge_bus
from arcflare.job_controller.job_folders import prepare_job
from arcflare.job_controller.packages import Caps
from jc_federation import ADMIN, LocalFederation
from jc_service import SITES, logreg, start_service, wait_for

RUNS = 2
ROUNDS = 3
POLL_S = 0.5


def direct(admin: FlareApiAdmin, job_dir: Path, results: Path) -> float:
    started = time.monotonic()
    with admin.session() as sess:
        job_id = sess.submit_job(str(job_dir))
        sess.monitor_job_and_return_job_meta(job_id, timeout=600, poll_interval=POLL_S)
        sess.download_job_result(job_id, destination=str(results))
    return time.monotonic() - started


def through_service(client: Client, run: int) -> float:
    started = time.monotonic()
    submitted = client.wait(client.send(logreg(ROUNDS, name=f"bench{run}")), timeout=120, settled=True)
    completed = wait_for(client, submitted.payload["job_id"], "JobCompleted", timeout=600)
    assert completed.payload["status"] == "FINISHED:COMPLETED", completed.payload
    return time.monotonic() - started


def run(results: Results) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    fed = LocalFederation(root / "nvflare", SITES, heart_beat_timeout=10)
    svc = None
    try:
        fed.provision()
        fed.start()
        fed.wait_for_clients(len(SITES))
        data = root / "data"
        svc, settings = start_service(data, fed)
        svc.settings.job_poll_interval_s = POLL_S
        svc.start()
        admin = FlareApiAdmin(fed.admin_kit, ADMIN)
        ours, theirs = [], []
        with Client(settings) as client:
            for n in range(RUNS):
                job_dir = prepare_job(logreg(ROUNDS, name=f"direct{n}"), f"direct-{n}", data_dir=data,
                                      caps=Caps(10**8, 5000), bridge=True,
                                      artifacts=svc.dependencies["artifacts"],
                                      bus=bridge_bus(settings))
                theirs.append(direct(admin, job_dir, root / "direct-results"))
                ours.append(through_service(client, n))
        value, baseline = statistics.median(ours), statistics.median(theirs)
        ratio = value / baseline
        results.add("jobs.submit_to_completed_s", value, "s", baseline=baseline, ratio=ratio,
                    target="<= 1.15", ok=ratio <= 1.15)
        print(f"through the job-controller {ours}, direct FLARE API {theirs}")
    finally:
        if svc:
            svc.stop()  # closes the service's FLARE sessions
        fed.stop()
