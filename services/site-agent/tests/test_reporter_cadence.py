"""The reporter looks at a starting client often, so its registration is reported when it
happens, not a heartbeat interval (15 s) later."""
from __future__ import annotations

import threading
import time

from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.site_agent.bootstrap import bootstrap
from arcflare.site_agent.logtail import Tail
from arcflare.site_agent.observer import Observation, SiteObserver
from arcflare.site_agent.reporter import STARTING_TICK_S

REGISTERED = ("2026-11-29 08:13:06,168 - FederatedClient - INFO - Successfully registered "
              "client:site-1 for project fed-a.")


class RegistersOnThirdLook(SiteObserver):
    kind = "scripted"

    def __init__(self) -> None:
        self.looks = 0
        self.registered = threading.Event()
        self.started_at = time.time()

    def observe(self) -> Observation:
        self.looks += 1
        lines = [REGISTERED] if self.looks == 3 else []
        if self.looks >= 3:
            self.registered.set()
        return Observation("running", identity="pid-1", pid=1, started_at=self.started_at,
                           new_log_lines=lines)

    def tail(self, file: str, lines: int) -> Tail:
        raise NotImplementedError

    def restart(self) -> str:
        raise NotImplementedError


def test_a_starting_client_is_looked_at_each_second_until_it_registers(agent_settings, tmp_path):
    bus = SqliteBus(tmp_path / "bus.db")
    observer = RegistersOnThirdLook()
    svc = bootstrap(agent_settings(heartbeat_interval_s=600), bus=bus, site_observer=observer)
    reporter, stop = svc.background[0], threading.Event()
    loop = threading.Thread(target=reporter, args=(stop,), daemon=True)
    loop.start()
    try:
        # at the 600 s heartbeat interval, the third look would come 20 minutes from now
        assert observer.registered.wait(timeout=30), f"{observer.looks} looks"
        time.sleep(3 * STARTING_TICK_S)  # a connected client is looked at per the interval again
        looks_once_connected = observer.looks
        stop.set()
        loop.join(timeout=10)
        svc.drain()
    finally:
        stop.set()
        svc.stop(timeout=5)

    assert looks_once_connected == 3
    changes = [m for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=100)
               if m.subject == "SiteHealthChanged"]
    assert [b'"connected"' in m.body for m in changes] == [False, True]
    bus.close()
