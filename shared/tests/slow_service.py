"""A service whose handler takes a while: run as a subprocess by test_shutdown.py."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.commands import RemoveSite
from arcflare.contracts.events import SiteRemoved
from arcflare.runtime import Consumer, Service, Settings, StateStore
from arcflare.runtime.identity import service_signer


def remove_site(cmd: RemoveSite, *, uow) -> None:
    Path(sys.argv[2]).write_text("started")
    time.sleep(1.5)
    uow.publish(SiteRemoved(federation=cmd.federation, site=cmd.site))


if __name__ == "__main__":
    settings = Settings(data_dir=Path(sys.argv[1]), health_port=0)
    Service(
        name="slow", settings=settings, bus=SqliteBus(settings.data_dir / "bus.db"),
        state=StateStore(settings.data_dir / "slow.db"),
        consumers=[Consumer("provisioner", handlers={RemoveSite: remove_site})],
        signer=service_signer(settings, "provisioner"),  # it plays the provisioner
    ).run()
