"""`python -m arcflare.site_agent` as a process: heartbeats, then a clean SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from site_agent_ids import agent_identities


def test_the_agent_runs_heartbeats_and_stops_cleanly_on_sigterm(tmp_path):
    agent_identities(tmp_path, "fed-a", "site-9")
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(tmp_path), "ARCFLARE_FEDERATION": "fed-a",
           "ARCFLARE_SITE": "site-9", "ARCFLARE_HEARTBEAT_INTERVAL_S": "0.5",
           "ARCFLARE_SITE_WORKSPACE": str(tmp_path / "missing")}
    agent = subprocess.Popen([sys.executable, "-m", "arcflare.site_agent"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    beats = []
    try:
        deadline = time.monotonic() + 60
        while len(beats) < 2 and time.monotonic() < deadline and agent.poll() is None:
            time.sleep(0.5)
            if (tmp_path / "bus.db").exists():
                with SqliteBus(tmp_path / "bus.db") as bus:
                    beats = [m for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION,
                                                 max_messages=50)
                             if m.subject == "SiteHeartbeat"]
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()

    assert len(beats) >= 2, agent.stderr.read().decode()[-2000:]
    assert b'"stopped"' in beats[0].body and b"not deployed" in beats[0].body
    assert code == 0
