"""The process observer: an NVFlare client started from its workspace's startup kit.

`startup/start.sh` runs `sub_start.sh`, a watchdog (pid in daemon_pid.fl) that
starts `client_train` (pid in pid.fl) and restarts it when it dies, unless
`shutdown.fl` asks it to stop; a clean stop removes the pid files. Jobs run in
`worker_process -n <job id>` children of the client.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from arcflare.runtime import get_logger
from arcflare.site_agent.adapters.workspace import (
    certificate_not_after,
    environment_of,
    has_once_mode,
    log_time,
    read_pid,
    same_path,
    server_address,
)
from arcflare.site_agent.logtail import LogFollower, Tail, read_last_lines
from arcflare.site_agent.observer import (
    CannotRestart,
    LogUnavailable,
    Observation,
    SiteObserver,
)

log = get_logger(__name__)

DEFAULT_LOG_FILES = ("log.txt", "log.json", "error_log.txt")
#: what ClientEngine logs when told to shut down (admin `shutdown client`)
_CLEAN_SHUTDOWN = "Client shutdown..."


class ProcessObserver(SiteObserver):
    kind = "process"

    def __init__(self, workspace: Path, *, log_files: tuple[str, ...] = DEFAULT_LOG_FILES) -> None:
        self.workspace = workspace
        self.log_files = log_files
        self._procs: dict[int, psutil.Process] = {}
        self._signals = LogFollower(workspace / "log.txt")
        self._followers: dict[str, LogFollower] = {}
        #: (pid, create_time) of the client last seen running
        self._last_seen: tuple[int, float] | None = None
        self._shutdown_logged = False
        #: the client this agent started itself (RestartSiteClient), reaped when it exits
        self._started: subprocess.Popen | None = None

    # --- observing ----------------------------------------------------------
    def observe(self) -> Observation:
        ws = self.workspace
        if not ws.is_dir():
            # provisioned but not deployed yet (the agent may start first), or removed
            return Observation("stopped", detail=(
                f"The site is not deployed: its workspace {ws} does not exist yet. Deploy it "
                "(arcflare deploy FED --site SITE), or set ARCFLARE_SITE_WORKSPACE to the "
                "folder the NVFlare client runs from."))
        self._reap()
        address = server_address(ws)
        lines = self._signals.read_new()
        previous = self._last_seen
        client = self._find_client()
        if client is not None:
            if self._last_seen != previous:
                self._shutdown_logged = False  # a new incarnation
            observation = self._running(client, address, lines)
            self._note_shutdown(observation.new_log_lines)
            return observation
        self._note_shutdown(lines)
        daemon = self._alive(read_pid(ws / "daemon_pid.fl"), "sub_start")
        gone = self._last_seen
        if daemon is not None:
            return self._watched(ws, address)
        if self._started is not None:  # our restart, before it execs NVFlare
            return Observation("starting", server_address=address,
                               detail="The NVFlare client is being restarted.")
        if (ws / "pid.fl").exists() or (gone and not self._shut_down(gone[1])):
            pid = gone[0] if gone else read_pid(ws / "pid.fl")
            return Observation("exited", server_address=address, detail=(
                f"The NVFlare client process (pid {pid}) is gone without NVFlare's clean "
                f"shutdown (killed, out of memory or crashed): look at "
                f"{ws / 'error_log.txt'}, then restart the site."))
        if gone:
            return Observation("stopped", server_address=address, detail=(
                f"The NVFlare client (pid {gone[0]}) was shut down; deploy or restart the "
                "site to bring it back."))
        return Observation("stopped", server_address=address, detail=(
            f"The NVFlare client is not running for workspace {ws}: deploy or restart the "
            "site."))

    def _watched(self, ws: Path, address: str | None) -> Observation:
        """start.sh's watchdog is up but the client is not."""
        if (ws / "shutdown.fl").exists():
            return Observation("stopped", server_address=address,
                               detail="The NVFlare client is shutting down as requested.")
        if (ws / "pid.fl").exists():
            return Observation("restarting", server_address=address, detail=(
                "The NVFlare client process died and its watchdog is restarting it: look at "
                f"{ws / 'error_log.txt'} for the cause."))
        return Observation("starting", server_address=address,
                           detail="The NVFlare client's watchdog is starting it.")

    def _note_shutdown(self, lines: list[str]) -> None:
        if any(_CLEAN_SHUTDOWN in line for line in lines):
            self._shutdown_logged = True

    def _shut_down(self, started: float) -> bool:
        """A clean stop: NVFlare logged its own shutdown (at any tick while it ran), or a
        shutdown.fl newer than the process."""
        if self._shutdown_logged:
            return True
        try:
            return (self.workspace / "shutdown.fl").stat().st_mtime >= started - 1
        except OSError:
            return False

    def _find_client(self) -> psutil.Process | None:
        """pid.fl (start.sh), else the process we saw last, else a scan for
        `client_train -m <this workspace>` (the deployer's `sub_start.sh --once`)."""
        found = self._alive(read_pid(self.workspace / "pid.fl"), "client_train")
        if found is None and self._last_seen:
            found = self._alive(self._last_seen[0], "client_train")
        if found is None:
            found = self._scan()
        if found is None:
            return None
        try:
            self._last_seen = (found.pid, found.create_time())
        except psutil.Error:
            return None
        return found

    def _scan(self) -> psutil.Process | None:
        target = str(self.workspace.resolve())
        for proc in psutil.process_iter(["cmdline"]):
            args = proc.info.get("cmdline") or []
            if not any("client_train" in a for a in args):
                continue
            # `python -m <module> -m <workspace>`: the workspace follows the second -m
            if any(flag == "-m" and same_path(value, target)
                   for flag, value in itertools.pairwise(args)):
                return self._alive(proc.pid, "client_train")
        return None

    def _alive(self, pid: int | None, marker: str) -> psutil.Process | None:
        if pid is None:
            return None
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = psutil.Process(pid)
                if not any(marker in part for part in proc.cmdline()):
                    return None  # a recycled pid
                self._procs[pid] = proc
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except psutil.Error:
            pass
        self._procs.pop(pid, None)
        return None

    def _running(self, proc: psutil.Process, address: str | None,
                 lines: list[str]) -> Observation:
        try:
            with proc.oneshot():
                started = proc.create_time()
                cpu = proc.cpu_percent(None)
                rss = proc.memory_info().rss
            job = self._current_job(proc)
        except psutil.Error:
            return Observation("restarting", server_address=address,
                               detail="The NVFlare client process just exited.")
        lines = self._since(started, lines)
        return Observation(
            "running", identity=f"{proc.pid}@{started:.2f}",
            certificate_not_after=certificate_not_after(self.workspace), pid=proc.pid, started_at=started,
            cpu_percent=cpu, rss_bytes=rss, current_job=job, new_log_lines=lines,
            server_address=address)

    @staticmethod
    def _current_job(proc: psutil.Process) -> str | None:
        for child in proc.children(recursive=True):
            try:
                args = child.cmdline()
            except psutil.Error:
                continue
            if any("worker_process" in a for a in args) and "-n" in args:
                i = args.index("-n")
                if i + 1 < len(args):
                    return args[i + 1]
        return None

    @staticmethod
    def _since(started: float, lines: list[str]) -> list[str]:
        """Only lines this incarnation wrote (log.txt outlives restarts)."""
        keep, out = True, []
        for line in lines:
            stamp = log_time(line)
            if stamp is not None:
                keep = stamp >= int(started) - 1
            if keep:
                out.append(line)
        return out

    # --- logs ---------------------------------------------------------------
    def _log_path(self, file: str) -> Path:
        if file not in self.log_files:
            raise LogUnavailable(
                f"file {file!r} is not an allowed log; allowed: {', '.join(self.log_files)}")
        return self.workspace / file

    def tail(self, file: str, lines: int) -> Tail:
        path = self._log_path(file)
        try:
            return read_last_lines(path, lines)
        except FileNotFoundError:
            raise LogUnavailable(f"{file} does not exist in the site workspace yet") from None
        except OSError as exc:
            raise LogUnavailable(f"{file} cannot be read: {exc.strerror or exc}") from None

    def new_lines(self, file: str) -> list[str]:
        follower = self._followers.get(file)
        if follower is None:
            follower = self._followers[file] = LogFollower(self._log_path(file))
        return follower.read_new()

    # --- restarting -----------------------------------------------------------
    def restart(self) -> str:
        """Stop the client's process group, then start it again the way it was started:
        start.sh when its watchdog ran it, else the deployer's `sub_start.sh --once`."""
        ws = self.workspace
        startup = ws / "startup"
        if not (startup / "sub_start.sh").is_file():
            raise CannotRestart(f"{startup / 'sub_start.sh'} does not exist: the site has no "
                                "startup kit to restart from")
        daemon = self._alive(read_pid(ws / "daemon_pid.fl"), "sub_start")
        client = self._find_client()
        watchdog = daemon is not None or not has_once_mode(startup / "sub_start.sh")
        env = environment_of(client or daemon)  # its python3 on PATH, as its starter set it
        for proc in (daemon, client):
            if proc is not None:
                self._stop_group(proc)
        for name in ("pid.fl", "daemon_pid.fl", "shutdown.fl", "restart.fl"):
            (ws / name).unlink(missing_ok=True)
        self._last_seen = None
        argv = ["bash", str(startup / "start.sh")] if watchdog else \
            ["bash", str(startup / "sub_start.sh"), "--once"]
        with open(ws / "console.txt", "ab") as console:
            child = subprocess.Popen(
                argv, cwd=ws, start_new_session=True, stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, env={**env, "ARCFLARE_WORKSPACE": str(ws)})
        if watchdog:
            child.wait(timeout=30)  # start.sh only backgrounds the watchdog and returns
        else:
            self._reap()
            self._started = child
        log.info("site client restarted", workspace=str(ws), process_group=child.pid,
                 watchdog=watchdog)
        return f"process-group:{child.pid}"

    def _reap(self) -> None:
        if self._started is not None and self._started.poll() is not None:
            self._started = None

    def close(self) -> None:
        self._reap()

    @staticmethod
    def _stop_group(proc: psutil.Process, grace_s: float = 10.0) -> None:
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            return
        if pgid == os.getpgrp():  # started in our own group: never signal ourselves
            targets = [proc, *proc.children(recursive=True)]
            for p in targets:
                p.send_signal(signal.SIGKILL)
            return
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
