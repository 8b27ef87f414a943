"""The deployer as a process of its own (for chaos tests), on a bus whose locks expire in
seconds, so a killed deployer's messages come back within the test instead of minutes."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root: tests.support

from arcflare.bus.sqlite import SqliteBus
from arcflare.deployer.bootstrap import bootstrap
from arcflare.deployer.settings import DeployerSettings

from tests.support.topology import short_lock_topology

if __name__ == "__main__":
    settings = DeployerSettings()
    bus = SqliteBus(settings.data_dir / "bus.db", topology=short_lock_topology())
    bootstrap(settings, bus=bus).run()
