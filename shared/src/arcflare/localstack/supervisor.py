"""The local stack: every service and one site agent per local site, as separate
processes, restarted with backoff when they crash (like a compose restart policy). On the
shared layout the agents are forks of one warm copy (arcflare.localstack.forkserver).

State for `arcflare local ps` is written to <data>/run/stack.json.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psutil
from arcflare.localstack.forkserver import ForkServer
from arcflare.localstack.layout import SharedLayout
from arcflare.localstack.processes import ProcessSpec, Supervised, processes_under
from arcflare.runtime.logging import get_logger
from arcflare.runtime.processes import ended, wait_ended

log = get_logger("arcflare.localstack")

#: observers (ledger, alerter, metrics-relay, site agents) run niced: on a busy machine
#: NVFlare and the services that drive it come first; only the model waits on an observer
OBSERVER_NICE = 10
SERVICES = [
    ProcessSpec("ledger", "arcflare.ledger", nice=OBSERVER_NICE),
    ProcessSpec("provisioner", "arcflare.provisioner"),
    ProcessSpec("deployer", "arcflare.deployer"),
    # NVFlare is asked for job status this often: a finished job is seen within it
    ProcessSpec("job-controller", "arcflare.job_controller",
                env={"ARCFLARE_JOB_POLL_INTERVAL_S": "0.5"}),
    ProcessSpec("metrics-relay", "arcflare.metrics_relay", nice=OBSERVER_NICE),
    ProcessSpec("alerter", "arcflare.alerter", nice=OBSERVER_NICE),
]
STATE_FILE = "stack.json"
#: the site agents' fork server: its name in stack.json, and what it imports ahead of a fork
FORKSERVER = "site-agent-forkserver"
SITE_AGENT_MODULE = "arcflare.site_agent"
SITE_AGENT_PRELOAD = ["arcflare.site_agent.bootstrap", "arcflare.site_agent.settings",
                      "arcflare.site_agent.adapters.process"]
PID_FILE = "supervisor.pid"


def site_agent_spec(federation: str, site: str, org: str | None = None,
                    admins: list[dict] | None = None, *, data_dir: Path | None = None,
                    env: dict[str, str] | None = None) -> ProcessSpec:
    """One site's agent; it obeys the federation's admins, as the hospital would configure."""
    env = {
        **(env or {}),
        "ARCFLARE_FEDERATION": federation,
        "ARCFLARE_SITE": site,
        "ARCFLARE_OBSERVER": "process",  # its workspace: <data>/sites/<fed>/<site>
    }
    if org:
        env["ARCFLARE_SITE_ORG"] = org
    if admins:
        env["ARCFLARE_ADMINS"] = json.dumps(admins)
    return ProcessSpec(name=f"site-agent-{federation}-{site}", module=SITE_AGENT_MODULE,
                       env=env, nice=OBSERVER_NICE, data_dir=data_dir)


class Supervisor:
    def __init__(self, data_dir: Path, services: list[ProcessSpec] | None = None,
                 site_agents: bool = True, tick: float = 0.25,
                 starting_tick: float = 0.1, layout: SharedLayout | None = None) -> None:
        self.data_dir = data_dir
        self.layout = layout or SharedLayout(data_dir)
        self.run_dir = data_dir / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tick = tick
        #: while a process is not ready yet, look more often: `local up` and the demo wait on it
        self.starting_tick = starting_tick
        self.site_agents = site_agents
        self.procs: dict[str, Supervised] = {
            spec.name: Supervised(self._placed(spec), data_dir)
            for spec in (services or SERVICES)}
        self._agents_file = self.run_dir / "agents.json"
        #: agents on the shared layout are forks of one warm copy (arcflare.localstack.forkserver)
        self.forkserver = None if self.layout.isolated or not site_agents else ForkServer(
            SITE_AGENT_MODULE, SITE_AGENT_PRELOAD, cwd=data_dir, nice=OBSERVER_NICE,
            log=data_dir / "logs" / f"{FORKSERVER}.log",
            env={"ARCFLARE_DATA_DIR": str(data_dir), "ARCFLARE_LOG_FORMAT": "json"})
        self._cursor: int | None = None
        self._bus = None
        #: each federation's admins, from FederationProvisioned, for its sites' agents
        self._admins: dict[str, list[dict]] = {}

    def _placed(self, spec: ProcessSpec) -> ProcessSpec:
        """The service on the data dir the layout gives it (its own, when isolated)."""
        if not self.layout.isolated:
            return spec
        return replace(spec, data_dir=self.layout.service_dir(spec.name),
                       env={**self.layout.env(), **spec.env})

    # --- lifecycle ---------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        (self.run_dir / PID_FILE).write_text(str(os.getpid()))
        if self.forkserver is not None:
            self.forkserver.start()  # its imports now, not when the first sites are deployed
        for agent in self._known_agents():
            self._add_agent(**agent)
        try:
            while not stop.is_set():
                self.step()
                stop.wait(self.tick if self.all_ready() else self.starting_tick)
        finally:
            self.shutdown()
            (self.run_dir / PID_FILE).unlink(missing_ok=True)

    def step(self) -> None:
        now = time.monotonic()
        for sp in list(self.procs.values()):
            if sp.proc is not None and not sp.alive and sp.next_start <= sp.started_at:
                code = sp.proc.returncode
                delay = sp.schedule_restart()
                sp.restarts += 1
                log.warning("process exited; restarting", process=sp.spec.name,
                            exit_code=code, restart_in_s=delay, restarts=sp.restarts)
            if sp.proc is None or (not sp.alive and now >= sp.next_start):
                sp.start()
                log.info("process started", process=sp.spec.name, pid=sp.pid)
            sp.probe()
        if self.site_agents:
            self._watch_sites()
        self._write_state()

    def all_ready(self) -> bool:
        return all(sp.ready for sp in self.procs.values())

    def shutdown(self, grace: float = 20.0) -> None:
        """Agents and services together (each flushes its outbox on SIGTERM; none waits on
        another), then the NVFlare processes the deployer left under the data dir. NVFlare
        goes last: a service still talking to a server that is gone (the job-controller's
        FLARE session) would wait out its connect timeouts before it could stop. They are
        recorded in run/stopped.json first, so the next deployer reports them stopped on
        request, not crashed."""
        started = time.monotonic()
        procs = list(self.procs.values())
        for sp in procs:
            if sp.alive:
                sp.proc.send_signal(signal.SIGTERM)
        for sp in procs:
            sp.stop(grace)
        if self.forkserver is not None:
            self.forkserver.close()
        log.info("services and agents stopped", seconds=round(time.monotonic() - started, 2))
        stopped = stop_leftovers(self.data_dir)
        log.info("leftover processes stopped", pids=stopped,
                 seconds=round(time.monotonic() - started, 2))
        self._write_state()
        if self._bus is not None:
            self._bus.close()
        log.info("local stack stopped", seconds=round(time.monotonic() - started, 2))

    # --- site agents -------------------------------------------------------------
    def _watch_sites(self) -> None:
        from arcflare.bus import connect
        from arcflare.runtime import identity
        from arcflare.runtime.admission import Admission, Refused
        from arcflare.runtime.settings import Settings

        if self._bus is None:
            shared = self.layout.env().get("ARCFLARE_BUS_FILE")
            settings = Settings(data_dir=self.data_dir,
                                **({"bus_file": Path(shared)} if shared else {}))
            self._bus = connect(settings)
            self._admission = Admission(identity.verifier(settings))
        for received in self._bus.peek("events", "cli", max_messages=256,
                                       from_sequence_number=self._cursor):
            self._cursor = received.sequence_number + 1
            if received.subject not in ("FederationProvisioned", "SiteProvisioned",
                                        "SiteRemoved"):
                continue
            try:  # an agent is started only for what the provisioner really said
                env = self._admission.admit(received, command=False).envelope
            except Refused as refused:
                log.warning("ignoring an unproven provisioning event", reason=refused.reason,
                            detail=refused.detail, message_id=received.message_id)
                continue
            fed, site = env.payload.get("federation"), env.payload.get("site")
            local = env.payload.get("compute", {}).get("backend", "local") == "local"
            if env.type == "FederationProvisioned":  # published before its sites
                self._admins[fed] = env.payload.get("admins", [])
            elif env.type == "SiteProvisioned" and local:
                self._add_agent(fed, site, env.payload.get("org"), self._admins.get(fed))
            elif env.type == "SiteRemoved":
                self._remove_agent(fed, site)

    def _add_agent(self, federation: str, site: str, org: str | None = None,
                   admins: list[dict] | None = None) -> None:
        if site_agent_spec(federation, site).name in self.procs:
            return
        own_dir, env = self.layout.agent(federation, site)
        spec = site_agent_spec(federation, site, org, admins,
                               data_dir=None if own_dir == self.data_dir else own_dir, env=env)
        self.procs[spec.name] = Supervised(spec, self.data_dir, forkserver=self.forkserver)
        self._save_agents()

    def _remove_agent(self, federation: str, site: str) -> None:
        sp = self.procs.pop(site_agent_spec(federation, site).name, None)
        if sp:
            sp.stop()
            self._save_agents()

    def _known_agents(self) -> list[dict]:
        try:
            return list(json.loads(self._agents_file.read_text()))
        except (OSError, ValueError):
            return []

    def _save_agents(self) -> None:
        agents = [
            {"federation": sp.spec.env["ARCFLARE_FEDERATION"], "site": sp.spec.env["ARCFLARE_SITE"],
             "org": sp.spec.env.get("ARCFLARE_SITE_ORG"),
             "admins": json.loads(sp.spec.env.get("ARCFLARE_ADMINS", "[]"))}
            for name, sp in self.procs.items() if name.startswith("site-agent-")]
        self._agents_file.write_text(json.dumps(agents))

    def _write_state(self) -> None:
        state = {"supervisor_pid": os.getpid(), "updated_at": datetime.now(UTC).isoformat(),
                 "processes": [sp.row() for sp in self.procs.values()]}
        server = self.forkserver.proc if self.forkserver is not None else None
        if server is not None:
            alive = server.poll() is None
            state["processes"].append({"name": FORKSERVER, "pid": server.pid,
                                       "alive": alive, "ready": alive, "restarts": 0})
        tmp = self.run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.run_dir / STATE_FILE)


def stop_leftovers(data_dir: Path, grace: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process still running from the data dir.

    Each is first written to <data>/run/stopped.json (pid, create_time), so a deployer
    started later reports those NVFlare participants as stopped on request, not crashed."""
    procs = processes_under(data_dir)
    record_stopped(data_dir, procs)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = wait_ended(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    wait_ended(alive, timeout=5)
    return [p.pid for p in procs]


STOPPED_FILE = "stopped.json"


def record_stopped(data_dir: Path, procs: list[psutil.Process]) -> None:
    path = data_dir / "run" / STOPPED_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = []
    for proc in procs:
        try:
            known.append({"pid": proc.pid, "create_time": proc.create_time()})
        except psutil.NoSuchProcess:
            continue
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known[-1000:]))
    tmp.replace(path)


def read_state(data_dir: Path) -> dict | None:
    try:
        state = json.loads((data_dir / "run" / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    for row in state["processes"]:
        row["alive"] = bool(row["pid"]) and psutil.pid_exists(row["pid"]) and _not_zombie(row["pid"])
    return state


def supervisor_pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / "run" / PID_FILE).read_text())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) and _not_zombie(pid) else None


def _not_zombie(pid: int) -> bool:
    try:
        return not ended(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False
