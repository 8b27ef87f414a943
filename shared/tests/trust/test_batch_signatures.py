"""One signature for messages sent together: each message still proves itself, alone, through
its place in the batch's Merkle tree — and every way such a proof is refused."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from arcflare.trust import verifier as verifier_module
from arcflare.trust.errors import Unauthenticated
from arcflare.trust.jws import (
    MAX_BATCH,
    Signer,
    b64url,
    decode_proof,
    encode_proof,
    leaf_hash,
    merkle_proofs,
    merkle_root,
)
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier

DEPLOYER = Principal.service("deployer")


def envelope(n: int) -> tuple[dict[str, str | None], bytes]:
    fields = {
        "message_id": f"m-{n}", "type": "SiteDeployed", "federation": "example",
        "site": f"hospital-{n}", "issued_by": DEPLOYER.id, "on_behalf_of": None,
        "correlation_id": "c-1", "causation_id": None,
        "occurred_at": "2025-03-01T12:00:00.123456+00:00",
    }
    return fields, f'{{"federation":"example","site":"hospital-{n}"}}'.encode()


BATCH = [envelope(n) for n in range(7)]


@pytest.fixture
def deployer(issue) -> Signer:
    return Signer(issue(DEPLOYER))


@pytest.fixture
def signed(deployer):
    """(token, proof) of each message of BATCH, signed together as the deployer."""
    return deployer.sign_batch(BATCH)[1]


@pytest.fixture
def refusal(deployer):
    """The refusal of a message carrying the deployer's certificate chain."""
    def refusal(verifier: Verifier, token: str, fields, body, proof, chain=deployer.chain) -> str:
        with pytest.raises(Unauthenticated) as info:
            verifier.verify(token, fields, body, proof, chain)
        return info.value.description

    return refusal


@pytest.fixture
def ecdsa_checks(monkeypatch):
    """How many signatures the verifier checked with the public key."""
    calls = []
    real = verifier_module._check_signature
    monkeypatch.setattr(verifier_module, "_check_signature",
                        lambda *args: calls.append(1) or real(*args))
    return calls


@pytest.mark.parametrize("size", [2, 3, 4, 5, 7, 8, 9, 16, 17, 100])
def test_every_leaf_of_a_tree_reaches_its_root(size):
    # Prepare
    leaves = [leaf_hash(str(n).encode()) for n in range(size)]

    # Execute
    root, proofs = merkle_proofs(leaves)

    # Assert
    assert {merkle_root(leaf, i, size, proofs[i]) for i, leaf in enumerate(leaves)} == {root}
    assert max(len(p) for p in proofs) == (size - 1).bit_length()


def test_every_message_of_a_batch_verifies_as_its_signer_with_one_signature_checked(signed, verifier, ecdsa_checks, deployer):
    # Execute
    principals = [verifier.verify(token, fields, body, proof, deployer.chain)
                  for (fields, body), (token, proof) in zip(BATCH, signed, strict=True)]

    # Assert
    assert principals == [DEPLOYER] * len(BATCH)
    assert len({token for token, _ in signed}) == 1
    assert len(ecdsa_checks) == 1


def test_a_single_message_is_signed_alone_with_no_proof(issue, verifier):
    # Execute
    signer = Signer(issue(DEPLOYER))
    _, [(token, proof)] = signer.sign_batch(BATCH[:1])

    # Assert
    assert proof is None
    assert verifier.verify(token, *BATCH[0], chain=signer.chain) == DEPLOYER


def test_a_tampered_body_in_a_verified_batch_is_refused(signed, verifier, refusal, deployer):
    # Prepare: the batch's signature is verified and remembered
    (fields, body), (token, proof) = BATCH[0], signed[0]
    verifier.verify(token, fields, body, proof, deployer.chain)

    # Execute
    description = refusal(verifier, token, fields, body.replace(b"hospital-0", b"hospital-x"),
                          proof)

    # Assert
    assert "batch signature does not match" in description


def test_a_tampered_envelope_field_in_a_verified_batch_is_refused(signed, verifier, refusal, deployer):
    # Prepare
    (fields, body), (token, proof) = BATCH[2], signed[2]
    verifier.verify(token, fields, body, proof, deployer.chain)

    # Execute
    description = refusal(verifier, token, {**fields, "issued_by": "service:provisioner"}, body,
                          proof)

    # Assert
    assert "batch signature does not match" in description


def test_a_message_with_another_members_proof_is_refused(signed, verifier, refusal, deployer):
    # Prepare
    for (fields, body), (token, proof) in zip(BATCH, signed, strict=True):
        verifier.verify(token, fields, body, proof, deployer.chain)

    # Execute
    description = refusal(verifier, signed[0][0], *BATCH[0], signed[1][1])

    # Assert
    assert "not this message's" in description


def test_a_message_outside_the_batch_is_refused_under_its_signature(signed, verifier, refusal, deployer):
    # Prepare
    verifier.verify(signed[0][0], *BATCH[0], signed[0][1], deployer.chain)

    # Execute: an eighth message claiming the first one's place
    description = refusal(verifier, signed[0][0], *envelope(99), signed[0][1])

    # Assert
    assert "batch signature does not match" in description


def test_a_batch_signature_without_its_proof_is_refused(signed, verifier, refusal):
    assert "carries no inclusion proof" in refusal(verifier, signed[0][0], *BATCH[0], None)


def test_a_proof_under_a_single_message_signature_is_refused(issue, signed, verifier, refusal, deployer):
    # Prepare
    token = deployer.sign(*BATCH[0])

    # Execute
    description = refusal(verifier, token, *BATCH[0], signed[0][1])

    # Assert
    assert "not a batch's" in description


@pytest.mark.parametrize(("member", "size", "problem"), [
    # 7 leaves leave the last alone at the bottom; 8 would give it a sibling there
    (6, 8, "missing hashes"),
    # 6 leaves give the first the same path shape, but the signature covers size 7
    (0, 6, "batch signature does not match"),
])
def test_a_proof_claiming_another_batch_size_is_refused(signed, verifier, member, size, problem, refusal):
    # Prepare
    index, _, siblings = decode_proof(signed[member][1])

    # Execute
    description = refusal(verifier, signed[member][0], *BATCH[member],
                          encode_proof(index, size, siblings))

    # Assert
    assert problem in description


@pytest.mark.parametrize(("proof", "problem"), [
    ("0.7", "expected 'index.size.siblings'"),
    ("x.7.AAAA", "expected 'index.size.siblings'"),
    ("7.7." + b64url(bytes(96)), "out of range"),
    (f"0.{MAX_BATCH + 1}." + b64url(bytes(32 * 13)), "out of range"),
    ("0.7." + b64url(bytes(31)), "whole SHA-256 hashes"),
    ("0.7." + b64url(bytes(64)), "missing hashes"),
    ("0.7." + b64url(bytes(128)), "more hashes than its tree"),
    ("0.7.A=", "malformed inclusion proof"),
])
def test_a_malformed_proof_is_refused_naming_what_is_wrong(signed, verifier, proof, problem, refusal):
    description = refusal(verifier, signed[0][0], *BATCH[0], proof)

    assert "malformed inclusion proof" in description and problem in description


def test_a_remembered_batch_is_refused_once_its_certificate_expires(issue, root, refusal):
    # Prepare
    now = [datetime.now(UTC)]
    verifier = Verifier([root.certificate], clock=lambda: now[0])
    short_lived = Signer(issue(DEPLOYER, validity_days=1))
    _, signed = short_lived.sign_batch(BATCH)
    verifier.verify(signed[0][0], *BATCH[0], signed[0][1], short_lived.chain)

    # Execute
    now[0] += timedelta(days=2)

    # Assert
    assert "expired at" in refusal(verifier, signed[1][0], *BATCH[1], signed[1][1],
                                   short_lived.chain)


def test_a_batch_signed_by_a_key_from_another_root_is_refused(signed, tmp_path, refusal):
    from arcflare.trust.authority import TrustRoot

    # Prepare
    stranger = Verifier([TrustRoot.create(tmp_path / "other").certificate])

    # Execute
    description = refusal(stranger, signed[0][0], *BATCH[0], signed[0][1])

    # Assert
    assert "does not reach a trust anchor" in description


def test_a_batch_larger_than_the_limit_is_not_signed(issue):
    with pytest.raises(ValueError, match="1 to 4096"):
        Signer(issue(DEPLOYER)).sign_batch([envelope(0)] * (MAX_BATCH + 1))
