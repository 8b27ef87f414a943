"""Many site agents in one process, for the fleet benchmark: each simulated agent does on
its own schedule what a real one does each interval — a SiteHeartbeat (sent straight to
the bus, as the agent's TelemetrySender sends it) and, when its status changes, a
SiteHealthChanged (a real agent relays it from its outbox); both on the topic agents speak
on, each signed with that site's own agent identity from the data dir's local root.

Run by bench_fleet as
    python -m tests.benchmarks.fleet_agents DATA_DIR AGENTS_FILE INTERVAL_S SECONDS SEED
      START_AT FLIP OUT
(AGENTS_FILE: a JSON list of [federation, site])
and writes one line per message sent to OUT: `message_id type occurred_at_epoch`.
"""
from __future__ import annotations

import heapq
import json
import random
import sys
import time
from pathlib import Path

from arcflare.bus import connect
from arcflare.bus.codec import to_outgoing
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import SiteHealthChanged, SiteHeartbeat
from arcflare.contracts.senders import SITE_AGENT_TOPIC
from arcflare.runtime.settings import Settings
from arcflare.trust.jws import Signer
from arcflare.trust.local import site_identity

STATUSES = ("connected", "disconnected")
DIAGNOSES = {"connected": "client process up, registered with the server",
             "disconnected": "client process up, not registered with the server"}


class SimulatedAgent:
    def __init__(self, federation: str, site: str, pid: int, signer: Signer) -> None:
        self.federation, self.site, self.pid, self.signer = federation, site, pid, signer
        self.status: str | None = None
        self.started = time.time()

    def tick(self, flip: bool) -> tuple[SiteHealthChanged | None, SiteHeartbeat]:
        """This interval's messages: a health change on the first tick and on a flip."""
        previous = self.status
        if previous is None:
            self.status = "connected"
        elif flip:
            self.status = STATUSES[1 - STATUSES.index(previous)]
        change = None
        if self.status != previous:
            change = SiteHealthChanged(
                federation=self.federation, site=self.site, status=self.status, previous=previous,
                diagnosis=DIAGNOSES[self.status])
        beat = SiteHeartbeat(
            federation=self.federation, site=self.site, status=self.status,
            diagnosis=DIAGNOSES[self.status], pid=self.pid,
            uptime_s=round(time.time() - self.started, 1), cpu_percent=0.4,
            rss_bytes=180 * 2**20, current_job=None)
        return change, beat


def simulate(data_dir: Path, agents: list[tuple[str, str]], interval_s: float, seconds: float,
             seed: int, start_at: float, flip: float, out: Path) -> None:
    rng = random.Random(seed)
    bus = connect(Settings(data_dir=data_dir))
    simulated = [SimulatedAgent(fed, site, 10_000 + n,
                                Signer(site_identity(data_dir, fed, site).load()))
                 for n, (fed, site) in enumerate(agents)]
    # each agent keeps its own phase within the interval, as agents started at random do
    due = [(start_at + rng.uniform(0, interval_s), n) for n in range(len(simulated))]
    heapq.heapify(due)
    end = start_at + seconds
    print("ready", flush=True)
    with out.open("w") as log:
        while due and due[0][0] < end:
            at, n = heapq.heappop(due)
            time.sleep(max(0.0, at - time.time()))
            agent = simulated[n]
            for message in agent.tick(flip=rng.random() < flip):
                if message is not None:
                    envelope = Envelope.wrap(message)
                    bus.send(SITE_AGENT_TOPIC, [to_outgoing(envelope, signer=agent.signer)])
                    _record(log, envelope)
            heapq.heappush(due, (at + interval_s, n))
    bus.close()


def _record(log, envelope: Envelope) -> None:
    log.write(f"{envelope.message_id} {envelope.type} {envelope.occurred_at.timestamp()}\n")


if __name__ == "__main__":
    data, agents_file, interval, seconds, seed, start_at, flip, out = sys.argv[1:]
    simulate(Path(data), [tuple(a) for a in json.loads(Path(agents_file).read_text())],
             float(interval),
             float(seconds), int(seed), float(start_at), float(flip), Path(out))
