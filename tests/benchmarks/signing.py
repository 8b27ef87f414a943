"""Signed beside unsigned: what proving every message costs on the embedded broker (issue 15).

The same layout as the bus round trip (bench_bus): one producer process sending in batches
of 100, two competing consumer processes receiving in batches of 32 and completing each
message. Both sides move the same event. The unsigned side maps the envelope to a bus
message and reads it back with the codec (what the runtime did before signing); the signed
side signs each message as it leaves (`to_outgoing` with the provisioner's identity) and the
consumers admit each one as every service does (chain from the cache, signature, issued_by,
the permission table, the payload). Targets: signed throughput >= 0.6x unsigned;
verification p50 <= 0.3 ms per message with the certificate cached. Best of N alternating
runs (ARCFLARE_BENCH_BUS_RUNS).

    .venv/bin/python -m tests.benchmarks.harness bus
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from arcflare.bus.codec import (
    CHAIN_PROPERTY,
    envelope_of,
    signed_fields,
    to_outgoing,
    to_outgoing_batch,
    wire_of,
)
from arcflare.bus.port import OutgoingMessage
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import SiteProvisioned
from arcflare.runtime.admission import Admission
from arcflare.trust import local
from arcflare.trust.jws import Signer
from arcflare.trust.verifier import Verifier, load_anchors

from tests.benchmarks.noise import alternate, percentile, runs

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 6000
QUEUE = "bench"


def _topology():
    from tests.benchmarks.bench_bus import TOPOLOGY

    return TOPOLOGY


def _event(n: int) -> SiteProvisioned:
    return SiteProvisioned(federation="bench", site=f"site-{n % 50}", org="o",
                           kit_ref=f"file:/kits/bench/site-{n % 50}",
                           cert_fingerprint=":".join(["AB"] * 32),
                           not_after=datetime(2027, 1, 1, tzinfo=UTC))


def _unsigned(envelope: Envelope) -> OutgoingMessage:
    """The envelope as the codec mapped it before signing: the same fields, no proof."""
    return OutgoingMessage(body=envelope.body(), message_id=envelope.message_id,
                           subject=envelope.type, correlation_id=envelope.correlation_id,
                           application_properties=envelope.application_properties())


# --- the processes ---------------------------------------------------------------------------
def produce(db: Path, total: int, signed: bool, ids: Path) -> None:
    signer = Signer(local.service_identity_paths(ids, "provisioner").load())
    with SqliteBus(db, _topology()) as bus:
        for start in range(0, total, 100):
            envelopes = [Envelope.wrap(_event(n)) for n in range(start, start + 100)]
            messages = to_outgoing_batch(envelopes, signer=signer) if signed else \
                [_unsigned(e) for e in envelopes]
            sent = time.time()
            bus.send(QUEUE, [OutgoingMessage(**{
                **m.__dict__, "application_properties": {**m.application_properties,
                                                         "sent": sent}}) for m in messages])


def consume(db: Path, out: Path, stop: Path, signed: bool, ids: Path) -> None:
    admission = Admission(Verifier(load_anchors(local.anchors_path(ids))))
    with SqliteBus(db, _topology()) as bus, out.open("w") as log:
        print("ready", flush=True)
        while not stop.exists():
            for message in bus.receive(QUEUE, max_messages=32, max_wait=0.5):
                if signed:
                    admission.admit(message, command=False)
                else:
                    envelope_of(wire_of(message), message).open()
                bus.complete(message)
                log.write(f"{message.application_properties['sent']} {time.time()}\n")


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.benchmarks.signing", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def _throughput(folder: Path, ids: Path, signed: bool) -> float:
    folder.mkdir()
    db, stop, mode = folder / "bus.db", folder / "stop", "signed" if signed else "unsigned"
    SqliteBus(db, _topology()).close()
    consumers = [_spawn("consume", str(db), str(folder / f"c{n}.log"), str(stop), mode,
                        str(ids)) for n in range(2)]
    try:
        assert all(c.stdout.readline().strip() == "ready" for c in consumers)
        _spawn("produce", str(db), str(MESSAGES), mode, str(ids)).wait(timeout=600)
        deadline = time.monotonic() + 120
        with SqliteBus(db, _topology()) as bus:
            while time.monotonic() < deadline and sum(
                    s.active for s in bus.stats() if s.entity_path == QUEUE):
                time.sleep(0.05)
    finally:
        stop.touch()
        for c in consumers:
            c.wait(timeout=30)
            c.stdout.close()
    trips = [tuple(map(float, line.split())) for n in range(2)
             for line in (folder / f"c{n}.log").read_text().splitlines()]
    if len(trips) != MESSAGES:
        raise RuntimeError(f"{len(trips)} of {MESSAGES} {mode} messages made the round trip")
    return len(trips) / (max(done for _, done in trips) - min(sent for sent, _ in trips))


def _verification_p50_ms(ids: Path) -> float:
    signer = Signer(local.service_identity_paths(ids, "provisioner").load())
    verifier = Verifier(load_anchors(local.anchors_path(ids)))
    envelope = Envelope.wrap(_event(1))
    message = to_outgoing(envelope, signer=signer)
    props = {k: str(v) for k, v in message.application_properties.items()}
    fields = signed_fields(envelope.message_id, envelope.type, envelope.correlation_id, props)
    token = props["signature"]
    chain = props[CHAIN_PROPERTY]
    verifier.verify(token, fields, message.body, chain=chain)  # verified once, then cached
    samples = []
    for _ in range(5000):
        started = time.perf_counter()
        verifier.verify(token, fields, message.body, chain=chain)
        samples.append((time.perf_counter() - started) * 1000)
    return percentile(samples, 50)


def run(results) -> None:
    with tempfile.TemporaryDirectory(prefix="arcflare-bench-signing-") as tmp:
        folder, ids = Path(tmp), Path(tmp) / "ids"
        local.ensure_local_identities(ids)
        samples = alternate(
            runs(5, "bus"),
            signed=lambda i: _throughput(folder / f"signed-{i}", ids, signed=True),
            unsigned=lambda i: _throughput(folder / f"unsigned-{i}", ids, signed=False))
        results.compare("bus.signed_round_trip", samples["signed"], samples["unsigned"],
                        "msg/s", target=">= 0.6", higher_is_better=True,
                        note="1 producer + 2 consumer processes: sign on send, admit on "
                             "receive, vs the same without proof")
        results.add("bus.signature_verification_p50", _verification_p50_ms(ids), "ms",
                    target="<= 0.3", note="certificate chain cached")


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "produce":
        produce(Path(args[0]), int(args[1]), args[2] == "signed", Path(args[3]))
    else:
        consume(Path(args[0]), Path(args[1]), Path(args[2]), args[3] == "signed", Path(args[4]))
