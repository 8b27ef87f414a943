"""SIGTERM: stop receiving, finish in-flight work, flush the outbox, exit 0; probes answer."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from arcflare.bus.sqlite import SqliteBus
from arcflare.client import Client
from arcflare.contracts.commands import RemoveSite
from arcflare.runtime import Settings
from arcflare.trust.local import ensure_local_identities

HERE = Path(__file__).parent


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_finishes_the_handler_in_flight_and_exits_0(tmp_path):
    data = tmp_path / "data"
    ensure_local_identities(data)
    marker = tmp_path / "started"
    bus = SqliteBus(data / "bus.db")
    client = Client(Settings(data_dir=data), bus=bus)
    proc = subprocess.Popen([sys.executable, str(HERE / "slow_service.py"), str(data),
                             str(marker)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        port_file = data / "run" / "slow.port"
        assert wait_for(port_file.exists), "the health server never started"
        base = f"http://127.0.0.1:{port_file.read_text()}"
        assert json.load(urllib.request.urlopen(f"{base}/healthz"))["status"] == "ok"
        assert wait_for(lambda: _ready(base))

        command_id = client.send(RemoveSite(federation="fed", site="a"))
        assert wait_for(marker.exists), "the handler never started"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

        outcome = client.wait(command_id, timeout=5)
        assert outcome.type == "SiteRemoved"
        assert bus.peek("provisioner", max_messages=5) == []
        assert not port_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        bus.close()


def _ready(base: str) -> bool:
    try:
        return json.load(urllib.request.urlopen(f"{base}/readyz"))["ready"]
    except OSError:
        return False
