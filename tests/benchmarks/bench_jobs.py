"""Job-controller control-plane overhead: SubmitJob → JobCompleted wall time for the
built-in recipe, beside the same job folder submitted directly with the FLARE API
(submit, poll, download the result) on the same federation in the same run.

Both sides keep their FLARE API session open across runs (the job-controller keeps one
per federation; the direct side logs in once before the first run), run the identical,
already decorated job content (built once by the job-controller's own prepare step),
poll NVFlare at the same interval and end with the result downloaded. Runs alternate;
each side's best run is judged (target <= 1.05).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import flare_logs
from tests.benchmarks.harness import ROOT, Results
from tests.benchmarks.job_timeline import follow_job
from tests.benchmarks.noise import alternate, runs

sys.path.insert(0, str(ROOT / "services" / "job-controller" / "tests"))

from arcflare.client import Client
from arcflare.job_controller.decoration import bridge_bus
from arcflare.job_controller.job_folders import prepare_job
from arcflare.job_controller.packages import Caps
from arcflare.trust.local import ensure_local_identities
from jc_federation import ADMIN, LocalFederation
from jc_service import FED, SITES, logreg, start_service
from nvflare.fuel.flare_api.flare_api import new_secure_session

ROUNDS = 3
POLL_S = 0.5


def direct(session, job_dir: Path, results: Path, running: list[float], server: Path) -> float:
    started, wall = time.monotonic(), time.time()
    job_id = session.submit_job(str(job_dir))
    meta = session.monitor_job_and_return_job_meta(job_id, timeout=600, poll_interval=POLL_S)[1]
    session.download_job_result(job_id, destination=str(results))
    elapsed = time.monotonic() - started
    if meta.get("status") != "FINISHED:COMPLETED":
        raise RuntimeError(f"direct job ended {meta.get('status')}")
    running.append(_running_after(server, job_id, wall))
    return elapsed


def through_service(client: Client, run: int, running: list[float], server: Path) -> float:
    command = logreg(ROUNDS, name=f"bench{run}")
    started, wall = time.monotonic(), time.time()
    command_id = client.send(command)
    timeline = follow_job(client, command_id, FED, command.name, started, timeout=600)
    running.append(_running_after(server, timeline.job_id, wall))
    return timeline.completed_at - started


def _running_after(server: Path, job_id: str, sent: float) -> float:
    """Seconds from the submit to the server's job runner reporting the job RUNNING."""
    at = flare_logs.started_running_at(server, job_id)
    if at is None:
        raise RuntimeError(f"the server log never shows job {job_id} running")
    return at - sent


def run(results: Results) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    fed = LocalFederation(root / "nvflare", SITES, heart_beat_timeout=10)
    svc = session = None
    try:
        fed.provision()
        fed.start()
        fed.wait_for_clients(len(SITES))
        data = root / "data"
        ensure_local_identities(data)  # what `arcflare local up` creates
        fed.admit_bridge(data)  # the bridge in the job signs what it reports
        svc, settings = start_service(data, fed)
        svc.settings.job_poll_interval_s = POLL_S
        svc.start()
        session = new_secure_session(ADMIN, str(fed.admin_kit), timeout=30)
        server = fed.kits / "localhost"
        running: dict[str, list[float]] = {"ours": [], "theirs": []}
        with Client(settings) as client:
            def direct_run(n: int) -> float:
                job_dir = prepare_job(logreg(ROUNDS, name=f"direct{n}"), f"direct-{n}",
                                      data_dir=data, caps=Caps(10**8, 5000), bridge=True,
                                      artifacts=svc.dependencies["artifacts"],
                                      bus=bridge_bus(settings))
                return direct(session, job_dir, root / "direct-results", running["theirs"],
                              server)

            seconds = alternate(
                runs(3, "jobs"),
                job_controller=lambda n: through_service(client, n, running["ours"], server),
                flare_api=direct_run)
        results.compare("jobs.submit_to_completed_s", seconds["job_controller"],
                        seconds["flare_api"], "s", target="<= 1.05",
                        note=f"{len(SITES)} sites, {ROUNDS} rounds, FLARE API session kept")
        results.compare("jobs.submit_to_running_s", running["ours"], running["theirs"], "s",
                        note="submit -> the server's job runner reports RUNNING (its log); "
                             "a warm job-controller, every site connected")
    finally:
        if session is not None:
            session.close()
        if svc:
            svc.stop()  # closes the service's FLARE sessions
        fed.stop()
