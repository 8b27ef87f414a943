"""An unreachable bus: heartbeats do not pile up, the latest state goes out on return."""
from __future__ import annotations

from arcflare.bus.port import BusUnavailable
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.events import SiteHeartbeat
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.site_agent.bootstrap import bootstrap
from arcflare.site_agent.telemetry import TelemetrySender

from tests.support.signing import signer_for


class FlakyBus(SqliteBus):
    """The real embedded broker, with a switch that makes sending fail like a dropped link."""

    down = False

    def send(self, entity, messages):
        if self.down:
            raise BusUnavailable("the link to the broker is down")
        return super().send(entity, messages)


def heartbeat(status: str) -> SiteHeartbeat:
    return SiteHeartbeat(federation="fed-a", site="site-1", status=status)


def test_only_the_latest_heartbeat_is_kept_while_the_bus_is_down(tmp_path):
    bus = FlakyBus(tmp_path / "bus.db")
    sender = TelemetrySender(bus, signer=signer_for(tmp_path / "ids", "site:fed-a/site-1"))
    bus.down = True

    sent = [sender.offer(heartbeat(s)) for s in ("starting", "connected", "disconnected")]
    bus.down = False
    sender.offer(heartbeat("crashed"))

    delivered = [m.body for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=100)]
    assert sent == [False, False, False] and sender.pending() == 0
    assert len(delivered) == 1 and b'"crashed"' in delivered[0]
    bus.close()


def test_the_agent_keeps_ticking_while_the_bus_is_down(agent_settings, tmp_path):
    bus = FlakyBus(tmp_path / "bus.db")
    svc = bootstrap(agent_settings(), bus=bus)
    reporter = svc.background[0]
    bus.down = True
    try:
        statuses = [reporter.tick().status for _ in range(5)]
        assert reporter.telemetry.pending() == 1
        bus.down = False
        reporter.tick()
        svc.drain()
    finally:
        svc.stop(timeout=5)

    beats = [m for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=100)
             if m.subject == "SiteHeartbeat"]
    # an agent sends only to telemetry: its health changes travel there too
    changes = [m for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=100)
               if m.subject == "SiteHealthChanged"]
    assert statuses == ["stopped"] * 5  # no workspace under tmp_path: not deployed
    assert len(beats) == 1 and len(changes) == 1
    bus.close()
