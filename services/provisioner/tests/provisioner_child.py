"""The provisioner as a process of its own that dies (os._exit, no clean-up) the moment a
renewal has put its new kit in place, before anything is recorded or published: the
crash the kit versions must survive. Its bus has short locks, so the command it held
comes back within the test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root: tests.support

from arcflare.bus.sqlite import SqliteBus
from arcflare.provisioner import renewal
from arcflare.provisioner.bootstrap import bootstrap
from arcflare.provisioner.settings import ProvisionerSettings

from tests.support.topology import short_lock_topology

#: the child's exit code once it died where it should
DIED_AFTER_KIT = 75


def _renew_kit_then_die(*args, **kwargs):
    _renew_kit(*args, **kwargs)
    os._exit(DIED_AFTER_KIT)


if __name__ == "__main__":
    _renew_kit, renewal.renew_kit = renewal.renew_kit, _renew_kit_then_die
    settings = ProvisionerSettings()
    bootstrap(settings, bus=SqliteBus(settings.data_dir / "bus.db",
                                      topology=short_lock_topology())).run()
