"""The demo end to end beside a bare NVFlare run of the same job, and the idle stack's memory.

- demo: `arcflare demo --keep --json` (stack start, provision, deploy, train, model in
  MLflow) plus stopping the stack as `arcflare demo` does, wall time as a user sees it.
  Target <= 90 s.
- bare NVFlare, same run: the same project (the demo's CreateFederation) provisioned
  with `nvflare provision`, every kit started at once with its own `sub_start.sh --once`,
  the job-controller's exported fedavg-logreg recipe submitted with the FLARE API, waited
  for, its result downloaded, and the processes stopped (bare_flare.py). Ratio target
  <= 1.3, alternating runs, best of each side.
- memory: summed RSS of the idle local stack (supervisor, services and site agents, no
  NVFlare process) after the demo, beside one bare `python -c 'import time; ...'`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from arcflare.cli.local import stop_stack

from tests.benchmarks.bare_flare import BareFederation
from tests.benchmarks.harness import Results
from tests.benchmarks.noise import alternate, runs
from tests.e2e.stack import arcflare, local_down, running_under
from tests.support.flare_project import free_port, wait_listening

SITES = 3
ROUNDS = 5
GB = 1024**3


# --- the demo -------------------------------------------------------------------------
def demo_run(data: Path) -> tuple[float, dict, tuple[int, int]]:
    """(wall seconds, the summary, (idle stack RSS bytes, processes)).

    `--keep` leaves the stack up for the memory figure; the stop is then timed on its own,
    with the very call `arcflare demo` makes without --keep, and added."""
    started = time.monotonic()
    try:
        done = arcflare("demo", "--data-dir", str(data), "--sites", str(SITES),
                        "--rounds", str(ROUNDS), "--keep", "--json", timeout=600)
        demo_s = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"demo failed: {done.stderr[-2000:]}")
        rss = idle_stack_rss(data)
        stop_started = time.monotonic()
        stop_stack(data)
        stop_s = time.monotonic() - stop_started
        if stop_s > 5:  # say which process held the stop up
            print((data / "logs" / "supervisor.log").read_text()[-3000:])
    finally:
        local_down(data)
    print(f"demo {demo_s:.1f} s + stop {stop_s:.1f} s")
    return demo_s + stop_s, json.loads(done.stdout), rss


def idle_stack_rss(data: Path, settle_s: float = 5.0) -> tuple[int, int]:
    """Supervisor + every process it supervises (services, site agents); NVFlare's own
    processes are started by the deployer and are not in stack.json."""
    time.sleep(settle_s)  # let the job's last events drain: idle, not busy
    state = json.loads((data / "run" / "stack.json").read_text())
    pids = [state["supervisor_pid"], *(p["pid"] for p in state["processes"])]
    total = 0
    for pid in pids:
        proc = psutil.Process(pid)
        assert "nvflare" not in " ".join(proc.cmdline()), proc.cmdline()
        total += proc.memory_info().rss
    return total, len(pids)


def bare_python_rss() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(1.0)
        return psutil.Process(proc.pid).memory_info().rss
    finally:
        proc.kill()
        proc.wait()


# --- bare NVFlare -----------------------------------------------------------------------
def bare_nvflare_run(root: Path) -> float:
    """The demo's federation (same CreateFederation spec) by hand: provision, start every
    kit, wait for the hospitals, submit the recipe, wait, download, stop."""
    from arcflare.job_controller.recipes.fedavg_logreg import build_fedavg_logreg
    from arcflare.localstack.demo import DemoRun

    fed = BareFederation(root, DemoRun(root, sites=SITES).spec(), free_port())
    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started, 2)
    try:
        fed.provision()
        phase("provisioned")
        fed.start("localhost")
        fed.start_sites()
        job = build_fedavg_logreg("logreg", {"rounds": ROUNDS}, SITES, root / "job")
        wait_listening(fed.port)
        phase("server_listening")
        session = fed.session()
        try:
            while len(session.get_system_info().client_info) < SITES:
                time.sleep(0.5)
            phase("clients_connected")
            fed.run_job(session, job, root / "result")
            phase("result_downloaded")
        finally:
            session.close()
    finally:
        fed.stop()
    phase("stopped")
    print(f"bare NVFlare phases (s since start): {phases}")
    return time.monotonic() - started


# --- the benchmark ----------------------------------------------------------------------
def run(results: Results) -> None:
    rss: list[tuple[int, int]] = []

    def demo(n: int) -> float:
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
            data = Path(tmp)
            seconds, summary, footprint = demo_run(data)
            leftovers = running_under(data)
            assert not leftovers, leftovers
            rss.append(footprint)
            print(f"demo run {n}: {seconds:.1f} s, timings {summary['timings']}")
            return seconds

    def bare(n: int) -> float:
        with tempfile.TemporaryDirectory(prefix="bench-bare-nvflare-") as tmp:
            return bare_nvflare_run(Path(tmp))

    seconds = alternate(runs(2, "demo"), demo=demo, bare_nvflare=bare)
    results.add("demo.end_to_end_s", min(seconds["demo"]), "s", target="<= 90",
                samples=seconds["demo"])
    results.compare("demo.vs_bare_nvflare", seconds["demo"], seconds["bare_nvflare"], "s",
                    target="<= 1.3", note=f"{SITES} hospitals, {ROUNDS} rounds, stop included")
    stack_rss, count = max(rss)
    bare = bare_python_rss()
    results.add("demo.idle_stack_rss_gb", stack_rss / GB, "GB", baseline=bare * count / GB,
                target="<= 1.5")
    print(f"idle stack {count} processes {stack_rss / 2**20:.0f} MiB vs {count} bare "
          f"interpreters {bare * count / 2**20:.0f} MiB")
