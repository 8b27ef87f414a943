"""The local stack's fork server: each process it forks is on its own (session, priority,
environment, working folder, log), its end is seen with its exit code, and nothing it forked
outlives it unseen."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from arcflare.localstack.forkserver import ForkServer, ForkServerDown
from arcflare.localstack.processes import ProcessSpec, Supervised

CHILD = """
import json, os, sys, time
from pathlib import Path
Path(os.environ["REPORT"]).write_text(json.dumps({
    "pid": os.getpid(), "sid": os.getsid(0), "cwd": os.getcwd(),
    "nice": os.getpriority(os.PRIO_PROCESS, 0), "env": dict(os.environ),
    "preloaded": "json_preloaded" in sys.modules, "name": __name__}))
print("child started", flush=True)
code = int(os.environ.get("EXIT_WITH", "-1"))
if code >= 0:
    sys.exit(code)
time.sleep(60)
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "forked_child.py").write_text(CHILD)
    (folder / "json_preloaded.py").write_text("import json\n")
    return folder


@pytest.fixture
def server(tmp_path: Path, code: Path):
    server = ForkServer("forked_child", ["json_preloaded"], cwd=tmp_path,
                        log=tmp_path / "logs" / "forkserver.log",
                        env={"PYTHONPATH": str(code), "SERVERS_OWN": "1"})
    yield server
    for child in list(server.children.values()):
        child.send_signal(signal.SIGKILL)
    server.close()


def report(path: Path, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"the forked process never wrote {path}")


def test_a_forked_process_has_its_own_session_priority_environment_folder_and_log(
        server, tmp_path, code) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {"REPORT": str(tmp_path / "seen.json"), "PYTHONPATH": str(code), "ONLY_MINE": "yes"}

    child = server.spawn(env=env, cwd=work, log=tmp_path / "child.log", nice=7)
    seen = report(tmp_path / "seen.json")

    assert seen["pid"] == child.pid == seen["sid"]  # a session of its own
    assert seen["nice"] == 7
    assert seen["cwd"] == str(work)
    assert seen["env"] == env  # exactly what was asked: nothing of the server's own
    assert seen["preloaded"] and seen["name"] == "__main__"
    assert psutil.Process(child.pid).ppid() == server.pid
    assert child.poll() is None
    deadline = time.monotonic() + 10
    while "child started" not in (tmp_path / "child.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_exit_codes_and_signals_are_reported_as_subprocess_does(server, tmp_path, code) -> None:
    env = {"REPORT": str(tmp_path / "a.json"), "PYTHONPATH": str(code), "EXIT_WITH": "3"}
    exits = server.spawn(env=env, cwd=tmp_path, log=tmp_path / "a.log")
    stays = server.spawn(env={**env, "REPORT": str(tmp_path / "b.json"), "EXIT_WITH": "-1"},
                         cwd=tmp_path, log=tmp_path / "b.log")
    report(tmp_path / "b.json")

    stays.send_signal(signal.SIGTERM)

    assert exits.wait(timeout=20) == 3
    assert stays.wait(timeout=20) == -signal.SIGTERM
    assert not psutil.pid_exists(exits.pid) or psutil.Process(exits.pid).ppid() != server.pid


def test_when_the_server_dies_what_it_forked_is_ended_and_the_next_spawn_starts_a_new_one(
        server, tmp_path, code) -> None:
    env = {"REPORT": str(tmp_path / "a.json"), "PYTHONPATH": str(code)}
    orphan = server.spawn(env=env, cwd=tmp_path, log=tmp_path / "a.log")
    report(tmp_path / "a.json")
    first = server.pid

    os.kill(first, signal.SIGKILL)
    psutil.Process(first).wait(timeout=10) if psutil.pid_exists(first) else None

    assert orphan.wait(timeout=20) == -signal.SIGKILL
    assert not psutil.pid_exists(orphan.pid) or psutil.Process(orphan.pid).status() == "zombie"
    again = server.spawn(env={**env, "REPORT": str(tmp_path / "b.json")}, cwd=tmp_path,
                         log=tmp_path / "b.log")
    assert report(tmp_path / "b.json")["pid"] == again.pid
    assert server.pid != first


def test_a_server_that_cannot_start_says_so_and_the_supervised_process_starts_from_scratch(
        tmp_path, code) -> None:
    broken = ForkServer("forked_child", ["no_such_module_here"], cwd=tmp_path,
                        log=tmp_path / "forkserver.log", env={"PYTHONPATH": str(code)})
    with pytest.raises(ForkServerDown, match="exited"):
        broken.spawn(env={}, cwd=tmp_path, log=tmp_path / "x.log")
    assert "no_such_module_here" in (tmp_path / "forkserver.log").read_text()

    spec = ProcessSpec("child", "forked_child",
                       env={"PYTHONPATH": str(code), "REPORT": str(tmp_path / "seen.json")})
    sp = Supervised(spec, tmp_path, forkserver=broken)
    sp.start()
    try:
        seen = report(tmp_path / "seen.json")
        assert seen["pid"] == sp.pid and psutil.Process(sp.pid).ppid() == os.getpid()
    finally:
        sp.stop(grace=5)
    assert not sp.alive


def test_a_supervised_process_through_the_server_starts_and_stops(server, tmp_path, code) -> None:
    spec = ProcessSpec("child", "forked_child", nice=5,
                       env={"PYTHONPATH": str(code), "REPORT": str(tmp_path / "seen.json")})
    sp = Supervised(spec, tmp_path, forkserver=server)

    sp.start()
    seen = report(tmp_path / "seen.json")
    assert seen["pid"] == sp.pid and sp.alive and seen["nice"] == 5
    assert seen["env"]["ARCFLARE_DATA_DIR"] == str(tmp_path)
    sp.stop(grace=5)

    assert not sp.alive and sp.proc.returncode == -signal.SIGTERM
    assert "child started" in (tmp_path / "logs" / "child.log").read_text()
