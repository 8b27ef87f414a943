"""A fork server for the local stack's site agents: one process imports an agent's code once,
and each agent is a fork of it, in a session of its own with its own environment and log.

Why: an agent's imports (pydantic, cryptography, structlog, the contracts) cost ~0.45 s of CPU
at each start. 20 hospitals on one 2-core machine started 20 agents at once, right as their
clients connected and the first job began, and those 9 CPU-seconds were what kept a 20-site
federation's first round and rounds above 1.2x bare NVFlare (docs/decisions/0012). Forked,
the imports are paid once, at stack start.

The server's side is `python -m arcflare.localstack.forkserver <module> [<preload> ...]`; it
reads one JSON request a line on stdin ({"env", "cwd", "log", "nice"}) and answers on stdout
with {"started": pid} or {"failed": reason}; each child's end is reported as
{"exited": pid, "code": c}, with subprocess's convention (a negative code is a signal). It
ends when its stdin closes. The supervisor's side is ForkServer, whose `spawn` returns a
Popen-like handle.

Only the shared layout forks. The isolated layout stands for hospitals on machines of their
own, whose agents share nothing, so each of its agents is started from scratch.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import psutil
from arcflare.localstack.priority import yield_cpu
from arcflare.runtime.processes import wait_ended

#: how long `spawn` waits for the server to answer (its imports, when it has just started)
ANSWER_TIMEOUT_S = 60.0


class ForkServerDown(RuntimeError):
    """The fork server cannot start a process: the caller starts it from scratch instead."""


class Forked:
    """A process the fork server started, with the part of subprocess.Popen the supervisor
    uses. Its exit status comes from the server, which is its parent."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        try:
            self.create_time: float | None = psutil.Process(pid).create_time()
        except psutil.Error:  # ended already; its end is on its way from the server
            self.create_time = None
        self.returncode: int | None = None
        self._server = server

    def poll(self) -> int | None:
        if self.returncode is None:
            self._server.collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"forked pid {self.pid}", timeout)
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


class ForkServer:
    """The supervisor's handle on the fork server process, started on first use and again
    after it dies. A process it forked is its child alone: if it dies, the processes it
    forked are killed (they are marked -SIGKILL) so that the supervisor starts them again
    from the next server, never leaving one whose end nobody would see."""

    def __init__(self, module: str, preload: list[str], *, cwd: Path, log: Path,
                 env: dict[str, str] | None = None, nice: int = 0) -> None:
        self.module, self.preload = module, preload
        self.cwd, self.log, self.env, self.nice = cwd, log, env, nice
        self.proc: subprocess.Popen | None = None
        self.children: dict[int, Forked] = {}
        self._buffer = b""
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        """Start the server, if it is not running, so that it imports ahead of use."""
        with self._lock:
            self._ensure()

    def spawn(self, *, env: dict[str, str], cwd: Path, log: Path, nice: int = 0) -> Forked:
        request = json.dumps({"env": env, "cwd": str(cwd), "log": str(log), "nice": nice})
        with self._lock:
            self._ensure()
            assert self.proc is not None and self.proc.stdin is not None
            try:
                self.proc.stdin.write(request.encode() + b"\n")
                self.proc.stdin.flush()
            except OSError as exc:
                raise ForkServerDown(f"the fork server is gone ({exc})") from None
            answer = self._answer()
            if "started" not in answer:
                raise ForkServerDown(answer.get("failed", f"unexpected answer {answer}"))
            child = self.children[answer["started"]] = Forked(answer["started"], self)
            return child

    def collect(self) -> None:
        """Record the ends the server reported; if the server is gone, end what it forked."""
        with self._lock:
            if self.proc is None:
                return
            for message in self._read(wait_s=0.0):
                self._handle(message)
            if self.proc.poll() is not None:
                self._orphans_killed()

    def close(self) -> None:
        """Stop the server (its children are stopped by their supervisor first)."""
        with self._lock:
            if self.proc is None:
                return
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self._orphans_killed()

    # --- internals ---------------------------------------------------------------------
    def _ensure(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if self.proc is not None:
            self._orphans_killed()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, self.module, *self.preload],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, cwd=self.cwd,
                env={**os.environ, **(self.env or {})})
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = b""
        if self.nice:
            yield_cpu(self.proc.pid, self.nice)

    def _answer(self) -> dict:
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            for message in self._read(wait_s=min(1.0, deadline - time.monotonic())):
                if "exited" in message:
                    self._handle(message)
                else:
                    return message
            if self.proc is None or self.proc.poll() is not None:
                raise ForkServerDown("the fork server exited; see its log "
                                     f"{self.log}")
        raise ForkServerDown(f"the fork server did not answer within {ANSWER_TIMEOUT_S:.0f} s")

    def _read(self, wait_s: float) -> list[dict]:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        if wait_s > 0:
            select.select([out], [], [], wait_s)
        try:
            chunk = out.read()
        except (BlockingIOError, ValueError):
            chunk = None
        if chunk:
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def _handle(self, message: dict) -> None:
        child = self.children.pop(message.get("exited"), None)
        if child is not None:
            child.returncode = message["code"]

    def _orphans_killed(self) -> None:
        killed = []
        for child in self.children.values():
            try:
                proc = psutil.Process(child.pid)
                if proc.create_time() == child.create_time:  # not a pid reused since
                    os.killpg(child.pid, signal.SIGKILL)
                    killed.append(proc)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass
            child.returncode = -signal.SIGKILL
        wait_ended(killed, timeout=5)  # reported ended only once they are
        self.children.clear()


# --- the server's side ------------------------------------------------------------------
def serve(stdin: IO[bytes], stdout: IO[bytes]) -> dict | None:
    """Answer requests until stdin closes (returns None), or return a request in the child
    forked for it."""
    buffered = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], 0.2)
        for pid, code in _ended():
            _say(stdout, {"exited": pid, "code": code})
        if not ready:
            continue
        chunk = os.read(stdin.fileno(), 65536)
        if not chunk:
            return None
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            request = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                _say(stdout, {"failed": f"fork: {exc}"})
                continue
            if pid == 0:
                return request
            _say(stdout, {"started": pid})


def become(request: dict) -> None:
    """In the forked child: a session, a priority, an environment, a log of its own."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if request.get("nice"):
        yield_cpu(os.getpid(), int(request["nice"]))
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 65536)  # the server's pipes to the supervisor above all
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])


def _ended() -> list[tuple[int, int]]:
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def _say(stdout: IO[bytes], message: dict) -> None:
    stdout.write(json.dumps(message).encode() + b"\n")
    stdout.flush()


def main(argv: list[str]) -> None:
    module, preload = argv[0], argv[1:]
    for name in preload:
        importlib.import_module(name)
    # forking is only safe while this process has one thread
    if threading.active_count() != 1:
        sys.exit(f"fork server for {module}: preloading started threads "
                 f"({[t.name for t in threading.enumerate()]}); cannot fork safely")
    request = serve(sys.stdin.buffer, sys.stdout.buffer)
    if request is None:
        return
    become(request)
    import runpy

    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
