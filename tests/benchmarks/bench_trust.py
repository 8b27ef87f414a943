"""Trust: what proof of origin costs per message, and what a fresh data dir's identities cost.

Per-message figures are medians over single calls (p50), with real keys from a fresh local
layout; the envelope and body are the size of a typical event. Baseline for verification: one
bare ECDSA P-256 verification of the same bytes, the part no cache can save.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from arcflare.trust.jws import Signer, canonical, signing_input
from arcflare.trust.local import ensure_local_identities, site_identity
from arcflare.trust.verifier import Verifier, load_anchors
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

N = 10_000
FIELDS = {
    "message_id": "6f1c2b9e-0d55-4c3e-9a57-7f0e1d2c3b4a", "type": "SiteStatusObserved",
    "federation": "example", "site": "hospital-a", "issued_by": "site:example/hospital-a",
    "on_behalf_of": None, "correlation_id": "6f1c2b9e-0d55-4c3e-9a57-7f0e1d2c3b4a",
    "causation_id": None, "occurred_at": "2025-03-01T12:00:00.123456+00:00",
}
BODY = b'{"federation":"example","site":"hospital-a","status":"connected","detail":"%s"}' % (
    b"x" * 400)


def p50_ms(call: Callable[[], object], n: int = N) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def run(results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        local = ensure_local_identities(Path(tmp))
        fresh_s = time.perf_counter() - started
        started = time.perf_counter()
        ensure_local_identities(Path(tmp))
        again_s = time.perf_counter() - started
        signer = Signer(site_identity(Path(tmp), "example", "hospital-a").load())
        anchors = load_anchors(local.anchors)
    verifier = Verifier(anchors)
    token = signer.sign(FIELDS, BODY)
    verifier.verify(token, FIELDS, BODY, chain=signer.chain)

    results.add("trust.local_identities_fresh", fresh_s, "s", target="< 1 s")
    results.add("trust.local_identities_again", again_s, "s")
    results.add("trust.sign_p50", p50_ms(lambda: signer.sign(FIELDS, BODY)), "ms")
    signed = signing_input(token.split(".")[0], canonical(FIELDS, BODY))
    signature = signer.identity.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    public_key = signer.identity.certificate.public_key()
    baseline = p50_ms(lambda: public_key.verify(signature, signed, ec.ECDSA(hashes.SHA256())))
    verify = p50_ms(lambda: verifier.verify(token, FIELDS, BODY, chain=signer.chain))
    results.add("trust.verify_cached_p50", verify, "ms", baseline=baseline,
                target="<= 0.3 ms")
    results.add("trust.verify_uncached_p50",
                p50_ms(lambda: Verifier(anchors).verify(token, FIELDS, BODY, chain=signer.chain),
                       n=500), "ms")
