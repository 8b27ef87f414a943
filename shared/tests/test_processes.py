"""A stopped process that nobody has reaped yet counts as ended."""
from __future__ import annotations

import subprocess
import sys

import psutil
from arcflare.runtime.processes import wait_ended


def test_an_unreaped_zombie_is_ended_and_a_running_process_is_not():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    survivor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        procs = [psutil.Process(sleeper.pid), psutil.Process(survivor.pid)]
        sleeper.terminate()

        done, alive = wait_ended(procs, timeout=1)

        # not reaped (we have not waited on it): psutil.wait_procs would still wait here
        assert psutil.Process(sleeper.pid).status() == psutil.STATUS_ZOMBIE
        assert [p.pid for p in done] == [sleeper.pid]
        assert [p.pid for p in alive] == [survivor.pid]
    finally:
        for proc in (sleeper, survivor):
            proc.kill()
            proc.wait()
