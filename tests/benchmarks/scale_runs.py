"""One federation of N local hospitals, start to trained model, measured the same way twice:
through ArcFlare's local stack, and as bare NVFlare driven by hand (bare_flare.py).

Both sides are read by the same observer, the NVFlare server's own logs (flare_logs.py),
for when each client registered, when the job started running and when each round began;
the job's end is what each user waits for (JobCompleted; the FLARE API's final status
and the downloaded result).
"""
from __future__ import annotations

import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from arcflare.cli.local import start_stack, stop_stack
from arcflare.client import Client
from arcflare.contracts.commands import CreateFederation, RecipePackage, SubmitJob
from arcflare.runtime.settings import Settings

from tests.benchmarks import flare_logs
from tests.benchmarks.bare_flare import BareFederation
from tests.benchmarks.job_timeline import follow_job
from tests.e2e.stack import local_down, running_under
from tests.support.flare_project import free_port

ADMIN = "admin@arcflare.local"
#: the demo's setting: a client silent this long is dropped (NVFlare's default is 600 s)
HEART_BEAT_TIMEOUT_S = 30
#: seconds for every site to register: a fixed start plus a share per site
CONNECT_TIMEOUT_S = (120, 15)
JOB_TIMEOUT_S = 1800


@dataclass
class ScaleFigures:
    """Seconds unless named otherwise; `started` times are epoch seconds."""

    connected_s: float = 0.0          # the command (provisioning included) -> last client joined
    client_start_s: list[float] = field(default_factory=list)  # per site: process -> joined
    submit_to_running_s: float = 0.0  # SubmitJob / submit_job -> server: job RUNNING
    first_round_s: float = 0.0        # SubmitJob / submit_job -> server: round 0 started
    round_s: float = 0.0              # median time between round starts
    job_s: float = 0.0                # SubmitJob / submit_job -> the user sees the job done
    #: part of each of the three above: the server stored the job -> its job runner picked
    #: it up (flare_logs.pickup_wait_s: 0-1 s of a once-a-second poll, on either side)
    pickup_s: float = 0.0
    #: the supervisor and the services (central), and the site agents (one per site)
    services_rss_mb: float = 0.0
    services_cpu_s: float = 0.0
    agents_rss_mb: float = 0.0
    agents_cpu_s: float = 0.0
    nvflare_rss_mb: float = 0.0

    @property
    def control_plane_rss_mb(self) -> float:
        return self.services_rss_mb + self.agents_rss_mb

    @property
    def control_plane_cpu_s(self) -> float:
        return self.services_cpu_s + self.agents_cpu_s


def federation_spec(sites: int, port: int) -> CreateFederation:
    return CreateFederation(
        name=f"scale-{sites}",
        server={"host": "localhost", "port": port},
        sites=[{"name": f"hospital-{i:02d}", "org": f"org_{i:02d}"} for i in range(1, sites + 1)],
        admins=[{"email": ADMIN, "org": "consortium", "role": "project_admin"}],
        auto_deploy=True,
        heart_beat_timeout_s=HEART_BEAT_TIMEOUT_S,
    )


def recipe(spec: CreateFederation, rounds: int) -> SubmitJob:
    return SubmitJob(federation=spec.name, name="scale", min_clients=len(spec.sites),
                     timeout_s=JOB_TIMEOUT_S,
                     package=RecipePackage(recipe="fedavg-logreg", parameters={"rounds": rounds}))


# --- ArcFlare ----------------------------------------------------------------------------
def arcflare_run(data: Path, sites: int, rounds: int) -> ScaleFigures:
    """The whole local stack up and ready first (a control plane is long-running), then
    CreateFederation with auto-deploy and SubmitJob through the SDK."""
    spec = federation_spec(sites, free_port())
    server = data / "sites" / spec.name / "server"  # the deployer's name for it
    figures = ScaleFigures()
    try:
        start_stack(data, timeout=300)
        with Client(Settings(data_dir=data), issued_by=ADMIN) as client:
            sent = time.time()
            client.send(spec)
            joined = _wait_joined(server, spec, sent)
            figures.connected_s = max(joined.values()) - sent
            figures.client_start_s = _client_starts(joined, {
                s.name: data / "sites" / spec.name / s.name for s in spec.sites})

            command = recipe(spec, rounds)
            sent, sent_mono = time.time(), time.monotonic()
            timeline = follow_job(client, client.send(command), spec.name, command.name,
                                  sent_mono, timeout=JOB_TIMEOUT_S)
            figures.job_s = timeline.completed_at - sent_mono
            _job_figures(figures, server, timeline.job_id, sent)
        (figures.services_rss_mb, figures.services_cpu_s), (
            figures.agents_rss_mb, figures.agents_cpu_s) = control_plane_cost(data)
        figures.nvflare_rss_mb = _rss_mb(_processes_under(data / "sites"))
    finally:
        stop_stack(data)
        local_down(data)
    leftovers = running_under(data)
    if leftovers:
        raise RuntimeError(f"processes left after stopping the stack: {leftovers}")
    return figures


def control_plane_cost(data: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """((RSS MiB, CPU s) of the supervisor and services, (RSS MiB, CPU s) of the site
    agents): every process of the stack, none of NVFlare's; CPU since each started."""
    state = json.loads((data / "run" / "stack.json").read_text())
    services = [state["supervisor_pid"]] + [p["pid"] for p in state["processes"]
                                            if p["pid"] and not p["name"].startswith("site-agent-")]
    agents = [p["pid"] for p in state["processes"]
              if p["pid"] and p["name"].startswith("site-agent-")]
    return _cost(services), _cost(agents)


def _cost(pids: list[int]) -> tuple[float, float]:
    procs, cpu = [], 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        procs.append(proc)
        cpu += times.user + times.system
    return _rss_mb(procs), cpu


# --- bare NVFlare ------------------------------------------------------------------------
def bare_run(root: Path, sites: int, rounds: int) -> ScaleFigures:
    """The same job NVFlare runs on ArcFlare's side, less ArcFlare's own part: each client
    streams its metrics to the server (NVFlare's ConvertToFedEvent, what a federation that
    tracks its sites' metrics centrally configures), and the server has no bridge."""
    from arcflare.job_controller.decoration import decorate_job
    from arcflare.job_controller.recipes.fedavg_logreg import build_fedavg_logreg

    spec = federation_spec(sites, free_port())
    fed = BareFederation(root, spec, spec.server.port)
    job = build_fedavg_logreg("scale", {"rounds": rounds}, sites, root / "job")
    decorate_job(job, federation=spec.name, bridge=False)
    figures = ScaleFigures()
    try:
        sent = time.time()
        fed.provision()
        fed.start("localhost")
        fed.start_sites()
        joined = _wait_joined(fed.server, spec, sent)
        figures.connected_s = max(joined.values()) - sent
        figures.client_start_s = _client_starts(joined, {
            s.name: fed.kits / s.name for s in spec.sites})
        session = fed.session()
        try:
            sent, sent_mono = time.time(), time.monotonic()
            job_id = fed.run_job(session, job, root / "result")
            figures.job_s = time.monotonic() - sent_mono
        finally:
            session.close()
        _job_figures(figures, fed.server, job_id, sent)
        figures.nvflare_rss_mb = _rss_mb(_processes_under(root))
    finally:
        fed.stop()
    return figures


# --- shared -------------------------------------------------------------------------------
def _wait_joined(server: Path, spec: CreateFederation, since: float) -> dict[str, float]:
    """Every site's registration, from the server's log."""
    wanted = {s.name for s in spec.sites}
    timeout = CONNECT_TIMEOUT_S[0] + CONNECT_TIMEOUT_S[1] * len(wanted)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        joined = {name: at for name, at in flare_logs.joined_at(server).items()
                  if name in wanted and at >= since - 1}
        if set(joined) == wanted:
            return joined
        time.sleep(0.25)
    missing = sorted(wanted - set(flare_logs.joined_at(server)))
    raise TimeoutError(f"{len(missing)} of {len(wanted)} sites never joined the server "
                       f"within {timeout} s: {', '.join(missing[:5])} …")


def _client_starts(joined: dict[str, float], workspaces: dict[str, Path]) -> list[float]:
    """Per site: its NVFlare client process's start -> its registration."""
    starts = []
    for site, workspace in workspaces.items():
        procs = [p for p in _processes_under(workspace) if "client_train" in _cmdline(p)]
        if not procs:
            raise RuntimeError(f"no NVFlare client process runs from {workspace}")
        starts.append(joined[site] - min(p.create_time() for p in procs))
    return starts


def _job_figures(figures: ScaleFigures, server: Path, job_id: str, sent: float) -> None:
    # JobCompleted can come before NVFlare has archived the ended job's run folder (its
    # log with it) into the job store: look again for a while
    deadline = time.monotonic() + 30
    while True:
        running = flare_logs.started_running_at(server, job_id)
        rounds = flare_logs.round_starts(server, job_id)
        if (running is not None and rounds) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    pickup = flare_logs.pickup_wait_s(server, job_id)
    if running is None or not rounds or pickup is None:
        raise RuntimeError(f"the server log and job store of job {job_id} show no start, no "
                           "round or no schedule time")
    figures.pickup_s = pickup
    figures.submit_to_running_s = running - sent
    figures.first_round_s = rounds[0] - sent
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    figures.round_s = statistics.median(gaps) if gaps else 0.0


def _processes_under(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if str(folder) in _cmdline(proc) or str(folder) in (proc.cwd() or ""):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20
