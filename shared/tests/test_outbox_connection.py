"""The outbox relay keeps one connection to the service's state file between passes: with no
other connection open, a new one per pass made SQLite create the WAL at each open and
checkpoint and delete it at each close, twice a second for an idle service."""
from __future__ import annotations

from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import TOPOLOGY
from arcflare.runtime.outbox import OutboxRelay
from arcflare.runtime.state import StateStore

from tests.support.signing import signer_for


def test_idle_passes_keep_the_state_files_write_ahead_log(tmp_path) -> None:
    state = StateStore(tmp_path / "svc.db")
    with SqliteBus(tmp_path / "bus.db", TOPOLOGY) as bus:
        relay = OutboxRelay(state, bus, signer_for(tmp_path, "service:deployer"))
        relay.relay()
        wal = tmp_path / "svc.db-wal"
        first = wal.stat().st_ino
        for _ in range(5):
            relay.relay()
        kept = wal.exists() and wal.stat().st_ino == first

        relay.close()
        relay.close()  # twice is harmless
        gone_with_the_last_connection = not wal.exists()
        relay.relay()  # a pass after close opens another

    relay.close()
    assert kept  # the same WAL file through every pass: never deleted and made again
    assert gone_with_the_last_connection
