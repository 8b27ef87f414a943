"""A metrics-relay on a fresh data dir, driven synchronously by the tests."""
from __future__ import annotations

import json
from pathlib import Path

from arcflare.artifacts.folders import put_folder
from arcflare.bus.port import SubQueue
from arcflare.contracts.artifacts import JOB_RESULT, ArtifactRef
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope, new_id
from arcflare.metrics_relay.bootstrap import bootstrap
from arcflare.metrics_relay.settings import MetricsRelaySettings

from tests.support.signing import identities_in, raw, send_as_authors, signer_for


def relay_settings(data_dir: Path, **overrides) -> MetricsRelaySettings:
    identities_in(data_dir)
    fast_retries = {"retry_backoff_base_s": 0.01, "retry_backoff_max_s": 0.05}
    return MetricsRelaySettings(data_dir=data_dir, **{**fast_retries, **overrides})


class Relay:
    """A metrics-relay on a fresh data dir, with the bus it listens on."""

    def __init__(self, data_dir: Path, **overrides) -> None:
        self.settings = relay_settings(data_dir, **overrides)
        self.service = bootstrap(self.settings)
        self.bus = self.service.bus
        self.tracking = self.service.dependencies["tracking"]
        self.artifacts = self.service.dependencies["artifacts"]

    def store_result(self, folder: Path) -> ArtifactRef:
        """A job result as the job-controller leaves it: packed into the artifact store."""
        return put_folder(self.artifacts, folder, JOB_RESULT, area="results")

    def publish(self, message: Message, *, correlation_id: str | None = None,
                message_id: str | None = None) -> Envelope:
        """Signed by whoever may say it: the job-controller, the bridge of its federation."""
        envelope = Envelope.wrap(message, message_id=message_id or new_id(),
                                 correlation_id=correlation_id)
        send_as_authors(self.bus, self.settings.data_dir, [envelope])
        return envelope

    def publish_raw(self, type_name: str, payload: dict, topic: str = "telemetry") -> str:
        """A message the contract would refuse (NaN, text values), signed by the bridge of
        its federation but otherwise straight onto the bus."""
        federation = payload.get("federation", "fed")
        return raw(self.bus, topic, json.dumps(payload).encode(),
                   signer=signer_for(self.settings.data_dir, f"bridge:{federation}"),
                   type_name=type_name, federation=federation, site=payload.get("site"),
                   session=None)

    def drain(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            self.service.drain(timeout=30)

    def dead_letters(self, topic: str = "telemetry") -> dict[str, str]:
        return {m.message_id: m.dead_letter_reason for m in self.bus.peek(
            topic, "metrics-relay", sub_queue=SubQueue.DEAD_LETTER, max_messages=100)}

    def events(self, type_name: str) -> list[dict]:
        return [json.loads(m.body) for m in self.bus.peek("events", "cli", max_messages=500)
                if m.subject == type_name]

    def close(self) -> None:
        self.bus.close()


