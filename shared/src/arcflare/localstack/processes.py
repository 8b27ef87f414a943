"""One supervised process: start, readiness, stop, and restart with backoff."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from arcflare.localstack.forkserver import Forked, ForkServer, ForkServerDown
from arcflare.localstack.priority import yield_cpu
from arcflare.runtime.logging import get_logger

log = get_logger("arcflare.localstack")


@dataclass
class ProcessSpec:
    name: str
    module: str  # run as `python -m <module>`
    env: dict[str, str] = field(default_factory=dict)
    #: file under <data>/run/ holding the health port
    port_file: str = ""
    #: CPU niceness: what only watches or records the federation yields the CPU to what
    #: drives it (provisioning, deployment, NVFlare itself) when the machine is busy
    nice: int = 0
    #: the process's own data dir; None: the stack's (arcflare.localstack.layout)
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        self.port_file = self.port_file or f"{self.name}.port"


@dataclass
class Supervised:
    spec: ProcessSpec
    data_dir: Path
    #: when set, the process is a fork of this server's warm copy, not started from scratch
    forkserver: ForkServer | None = None
    proc: subprocess.Popen | Forked | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    ready: bool = False
    restarts_in_a_row: int = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def own_dir(self) -> Path:
        """The process's data dir (its state, its health port file)."""
        return self.spec.data_dir or self.data_dir

    def start(self) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (self.own_dir / "run" / self.spec.port_file).unlink(missing_ok=True)
        env = {**os.environ, "ARCFLARE_DATA_DIR": str(self.own_dir),
               "ARCFLARE_HEALTH_PORT": "0", "ARCFLARE_LOG_FORMAT": "json", **self.spec.env}
        self.proc = self._forked(env, logs / f"{self.spec.name}.log")
        if self.proc is None:
            with open(logs / f"{self.spec.name}.log", "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", self.spec.module], env=env, stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                    cwd=self.own_dir)
            if self.spec.nice:
                # set from here rather than in a preexec_fn, which is unsafe with threads
                yield_cpu(self.proc.pid, self.spec.nice)
        self.started_at = time.monotonic()
        self.ready = False

    def _forked(self, env: dict[str, str], log_file: Path) -> Forked | None:
        if self.forkserver is None:
            return None
        try:
            return self.forkserver.spawn(env=env, cwd=self.own_dir, log=log_file,
                                         nice=self.spec.nice)
        except ForkServerDown as exc:  # slower, but the process runs all the same
            log.warning("fork server unavailable; starting the process from scratch",
                        process=self.spec.name, reason=str(exc))
            return None

    def probe(self) -> bool:
        """Ready once its health server answers /readyz with 200."""
        if not self.alive:
            self.ready = False
            return False
        if self.ready:
            return True
        port_file = self.own_dir / "run" / self.spec.port_file
        try:
            port = int(port_file.read_text())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                self.ready = json.load(answer).get("ready", False)
        except (OSError, ValueError):
            self.ready = False
        return self.ready

    def schedule_restart(self) -> float:
        """Backoff like a compose restart policy: 1, 2, 4 … 30 s; reset after a good run."""
        if time.monotonic() - self.started_at > 60:
            self.restarts_in_a_row = 0
        delay = min(30.0, 2.0 ** (self.restarts_in_a_row - 1)) if self.restarts_in_a_row else 0.5
        self.restarts_in_a_row += 1
        self.next_start = time.monotonic() + delay
        return delay

    def stop(self, grace: float = 20.0) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("did not stop within the grace period; killed", process=self.spec.name,
                        pid=self.proc.pid, grace_s=grace)
            kill_group(self.proc.pid)
            self.proc.wait(timeout=5)

    def row(self) -> dict:
        return {"name": self.spec.name, "pid": self.pid, "alive": self.alive,
                "ready": self.ready, "restarts": self.restarts}


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def processes_under(data_dir: Path) -> list[psutil.Process]:
    """Processes started from inside the data dir (NVFlare participants, agents, services)."""
    root = str(data_dir)
    me = psutil.Process()
    spared = {me.pid, *(p.pid for p in me.parents())}  # never the caller or its shell
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "environ"]):
        try:
            if proc.pid in spared:
                continue
            cwd = proc.info.get("cwd") or ""
            env = proc.info.get("environ") or {}
            cmdline = " ".join(proc.info.get("cmdline") or [])
            ours = "arcflare" in cmdline or "nvflare" in cmdline
            if cwd == root or cwd.startswith(root + os.sep) or (
                    ours and env.get("ARCFLARE_DATA_DIR") == root):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found
