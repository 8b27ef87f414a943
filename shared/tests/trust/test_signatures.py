"""Sign and verify: the round trip, and every way a signature is refused — each its own test."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from arcflare.trust.authority import CertificateAuthority, Issuer, TrustRoot
from arcflare.trust.errors import Unauthenticated
from arcflare.trust.jws import (
    SIGNED_FIELDS,
    TYP,
    Signer,
    b64url,
    canonical,
    es256,
    protected_header,
    signing_input,
)
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier, load_anchors

#: an envelope as it travels: every signed field set, as the strings put on the wire
FIELDS = {
    "message_id": "6f1c2b9e-0d55-4c3e-9a57-7f0e1d2c3b4a", "type": "SiteDeployed",
    "federation": "example", "site": "hospital-a", "issued_by": "service:deployer",
    "on_behalf_of": "lead@hospital-a.org", "correlation_id": "c-1", "causation_id": "c-0",
    "occurred_at": "2025-03-01T12:00:00.123456+00:00",
}
BODY = b'{"federation":"example","site":"hospital-a","endpoint":"grpc://127.0.0.1:8002"}'
DEPLOYER = Principal.service("deployer")


def signed(identity, fields=FIELDS, body=BODY) -> tuple[str, str]:
    """A token and the certificate chain its message carries beside it."""
    signer = Signer(identity)
    return signer.sign(fields, body), signer.chain


def refusal(verifier: Verifier, token: str, fields=FIELDS, body=BODY, *,
            chain: str | None = None) -> str:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token, fields, body, chain=chain)
    assert info.value.reason == "Unauthenticated"
    return info.value.description


def test_a_signed_envelope_verifies_as_its_signer(issue, verifier):
    # Prepare
    signer = Signer(issue(DEPLOYER))

    # Execute
    token = signer.sign(FIELDS, BODY)
    principal = verifier.verify(token, FIELDS, BODY, chain=signer.chain)

    # Assert
    assert principal == signer.principal == DEPLOYER
    header, payload, signature = token.split(".")
    assert payload == "" and header and signature


def test_a_person_verifies_with_the_org_of_the_certificate(issue, verifier):
    # Prepare
    token, chain = signed(issue(Principal.person("lead@hospital-a.org", "hospital_a")))

    # Execute
    principal = verifier.verify(token, FIELDS, BODY, chain=chain)

    # Assert
    assert (principal.id, principal.org) == ("lead@hospital-a.org", "hospital_a")


def test_the_token_is_a_standard_detached_jws(issue):
    # Prepare
    identity = issue(DEPLOYER)
    token, chain = signed(identity)
    header, _, signature = token.split(".")

    # Execute: another JOSE implementation checks it with the payload put back (RFC 7515 F)
    attached = f"{header}.{b64url(canonical(FIELDS, BODY))}.{signature}"
    decoded = jwt.api_jws.decode_complete(attached, key=identity.certificate.public_key(),
                                          algorithms=["ES256"])

    # Assert
    assert decoded["header"]["alg"] == "ES256"
    leaf = hashlib.sha256(identity.chain[0]).digest()
    assert decoded["header"]["x5t#S256"] == b64url(leaf)  # RFC 7515 §4.1.8
    assert [base64.b64decode(c) for c in chain.split(",")] == list(identity.chain)
    assert json.loads(decoded["payload"]) == {**FIELDS,
                                              "body_sha256": hashlib.sha256(BODY).hexdigest()}


def test_the_canonical_form_is_sorted_compact_json_of_exactly_the_signed_fields():
    # Execute
    text = canonical({**FIELDS, "extra": "ignored", "on_behalf_of": None}, b"")

    # Assert
    assert text.startswith(b'{"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c')
    assert b'"on_behalf_of":null' in text and b" " not in text and b"extra" not in text
    assert list(json.loads(text)) == sorted([*SIGNED_FIELDS, "body_sha256"])


@pytest.mark.parametrize("value", [
    "plain", 'quote " and \\ backslash', "tab\tnew\nline\x00nul\x1f", "häßlich — ünïcode ✓",
    "emoji 🏥 astral", "\u2028 line separator", "/slash", "",
])
def test_the_canonical_form_is_byte_for_byte_what_json_dumps_writes(value):
    # Prepare
    fields = {name: value for name in SIGNED_FIELDS} | {"causation_id": None}
    expected = json.dumps({**fields, "body_sha256": hashlib.sha256(BODY).hexdigest()},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    # Execute / Assert
    assert canonical(fields, BODY) == expected


def test_a_field_that_is_no_string_is_refused_when_signing(issue):
    # Execute / Assert
    with pytest.raises(ValueError, match="occurred_at must be signed as the string"):
        Signer(issue(DEPLOYER)).sign({**FIELDS, "occurred_at": datetime.now(UTC)}, BODY)


def test_a_tampered_body_is_refused(issue, verifier):
    # Prepare
    token, chain = signed(issue(DEPLOYER))

    # Execute
    description = refusal(verifier, token, body=BODY.replace(b"8002", b"8003"), chain=chain)

    # Assert
    assert "signature does not match" in description


@pytest.mark.parametrize("field", SIGNED_FIELDS)
def test_a_tampered_envelope_field_is_refused(issue, verifier, field):
    # Prepare
    token, chain = signed(issue(DEPLOYER))

    # Execute
    description = refusal(verifier, token, fields={**FIELDS, field: FIELDS[field] + "x"},
                          chain=chain)

    # Assert
    assert "signature does not match" in description


@pytest.mark.parametrize("field", SIGNED_FIELDS)
def test_an_envelope_field_added_after_signing_is_refused(issue, verifier, field):
    # Prepare
    token, chain = signed(issue(DEPLOYER), {**FIELDS, field: None})

    # Execute / Assert
    assert "signature does not match" in refusal(verifier, token, fields=FIELDS, chain=chain)


def test_another_certificate_put_under_a_signature_is_refused(issue, verifier):
    # Prepare: the provisioner's signature under the deployer's certificate
    token, chain = signed(issue(DEPLOYER))
    forged, _ = signed(issue(Principal.service("provisioner")))
    header = token.split(".")[0]

    # Execute / Assert
    assert "signature does not match" in refusal(
        verifier, f"{header}..{forged.split('.')[2]}", chain=chain)


def test_a_chain_other_than_the_certificate_the_signature_names_is_refused(issue, verifier):
    # Prepare: the deployer's token, carried with the provisioner's certificate
    token, _ = signed(issue(DEPLOYER))
    _, other = signed(issue(Principal.service("provisioner")))

    # Execute / Assert
    assert "is not the one the signature names" in refusal(verifier, token, chain=other)


def test_a_message_without_its_certificate_chain_is_refused(issue, verifier):
    # Prepare
    token, _ = signed(issue(DEPLOYER))

    # Execute / Assert
    assert "carries no signature_chain" in refusal(verifier, token, chain=None)


@pytest.mark.parametrize(("chain", "problem"), [
    ("", "carries no signature_chain"),
    (",,", "malformed signature_chain: expected base64 DER certificates"),
    ("häßlich", "malformed signature_chain: expected base64 DER certificates"),
    ("!!!", "malformed signature_chain: its first certificate is not base64"),
    ("bm90IGEgY2VydA==", "is not the one the signature names"),
])
def test_a_malformed_certificate_chain_is_refused(issue, verifier, chain, problem):
    # Prepare
    token, _ = signed(issue(DEPLOYER))

    # Execute / Assert
    assert problem in refusal(verifier, token, chain=chain)


def test_a_token_carrying_its_chain_in_the_header_still_verifies(issue, verifier):
    # Prepare: signed as before the chain moved beside the token (x5c in the header), so a
    # message sent then and resubmitted from a dead-letter queue later is still proven
    identity = issue(DEPLOYER)
    header = protected_header(identity, TYP)
    token = f"{header}..{es256(identity, signing_input(header, canonical(FIELDS, BODY)))}"

    # Execute / Assert
    assert verifier.verify(token, FIELDS, BODY) == DEPLOYER


def test_an_expired_certificate_is_refused_and_says_when(issue, verifier):
    # Prepare
    identity = issue(DEPLOYER, now=datetime.now(UTC) - timedelta(days=30), validity_days=1)
    token, chain = signed(identity)

    # Execute
    description = refusal(verifier, token, chain=chain)

    # Assert
    assert "expired at" in description
    assert identity.certificate.not_valid_after_utc.isoformat() in description


def test_a_certificate_not_yet_valid_is_refused_and_says_when(issue, verifier):
    # Prepare
    identity = issue(DEPLOYER, now=datetime.now(UTC) + timedelta(days=2))
    token, chain = signed(identity)

    # Execute
    description = refusal(verifier, token, chain=chain)

    # Assert
    assert "is not valid before " + identity.certificate.not_valid_before_utc.isoformat() \
        in description


def test_a_cached_certificate_is_refused_once_it_expires(issue, root):
    # Prepare
    now = [datetime.now(UTC)]
    verifier = Verifier([root.certificate], clock=lambda: now[0])
    token, chain = signed(issue(DEPLOYER, validity_days=1))
    verifier.verify(token, FIELDS, BODY, chain=chain)

    # Execute
    now[0] += timedelta(days=2)

    # Assert
    assert "expired at" in refusal(verifier, token, chain=chain)


def test_a_small_cache_still_verifies_every_signer(issue, root):
    # Prepare
    verifier = Verifier([root.certificate], cache_size=1)
    signers = [Signer(issue(Principal.service(name))) for name in ("deployer", "ledger")]

    # Execute
    principals = [verifier.verify(s.sign(FIELDS, BODY), FIELDS, BODY, chain=s.chain).id
                  for s in signers + signers]

    # Assert
    assert principals == ["service:deployer", "service:ledger"] * 2


def test_a_certificate_from_another_root_is_refused(issue, tmp_path):
    # Prepare
    foreign = TrustRoot.create(tmp_path / "foreign")
    token, chain = signed(issue(DEPLOYER, authority=foreign))
    verifier = Verifier(load_anchors(TrustRoot.create(tmp_path / "ours").anchors))

    # Execute / Assert
    assert "does not reach a trust anchor" in refusal(verifier, token, chain=chain)


def test_a_site_agent_issued_by_the_provisioner_is_accepted(issue, root, verifier, tmp_path):
    # Prepare
    issuer = Issuer.load(root.issue_issuer(out_dir=tmp_path / "issuer").directory)
    site = Principal.site_agent("example", "hospital-a")
    token, chain = signed(issue(site, authority=issuer))

    # Execute / Assert
    assert verifier.verify(token, FIELDS, BODY, chain=chain) == site


def test_a_person_issued_by_the_provisioner_is_refused(issue, root, verifier, tmp_path):
    # Prepare: a provisioner that misuses its issuer key to make a person
    issuer = Issuer.load(root.issue_issuer(out_dir=tmp_path / "issuer").directory)
    rogue = CertificateAuthority(issuer.certificate, issuer.key, issuer.chain, {"person"})
    token, chain = signed(issue(Principal.person("admin@arcflare.local"), authority=rogue))

    # Execute
    description = refusal(verifier, token, chain=chain)

    # Assert
    assert "a person certificate must be issued directly by a trust anchor" in description


def test_a_site_agent_from_an_issuer_other_than_the_provisioner_is_refused(issue, root, verifier,
                                                                           tmp_path):
    # Prepare
    other = Issuer.load(root.issue_issuer("deployer", out_dir=tmp_path / "issuer").directory)
    token, chain = signed(issue(Principal.site_agent("example", "hospital-a"), authority=other))

    # Execute / Assert
    assert "or the provisioner's issuer" in refusal(verifier, token, chain=chain)


def test_the_issuer_itself_cannot_sign_messages(root, verifier, tmp_path):
    # Prepare
    token, chain = signed(root.issue_issuer(out_dir=tmp_path / "issuer").load())

    # Execute / Assert: a CA certificate is no end entity
    assert "'CN=issuer:provisioner' does not reach a trust anchor" in refusal(
        verifier, token, chain=chain)


def tampered_header(token: str, **changes) -> str:
    header_b64, _, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    return f"{b64url(json.dumps(header).encode())}..{signature}"


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "EdDSA"])
def test_an_algorithm_other_than_es256_is_refused(issue, verifier, alg):
    # Prepare
    token, chain = signed(issue(DEPLOYER))
    token = tampered_header(token, alg=alg)

    # Execute / Assert
    assert f"unsupported signature algorithm '{alg}'" in refusal(verifier, token, chain=chain)


def test_a_token_naming_no_certificate_is_refused(issue, verifier):
    # Prepare
    token, chain = signed(issue(DEPLOYER))
    token = tampered_header(token, **{"x5t#S256": None})

    # Execute / Assert
    assert "no x5c certificate chain" in refusal(verifier, token, chain=chain)


def test_a_critical_header_extension_is_refused(issue, verifier):
    # Prepare
    token, chain = signed(issue(DEPLOYER))
    token = tampered_header(token, crit=["exp"])

    # Execute / Assert
    assert "'crit'" in refusal(verifier, token, chain=chain)


@pytest.mark.parametrize(("token", "problem"), [
    ("", "expected a compact detached JWS"),
    ("abc", "expected a compact detached JWS"),
    ("a.b.c.d", "expected a compact detached JWS"),
    ("e30.cGF5bG9hZA.c2ln", "carries a payload"),
    ("!!!..c2ln", "header is not base64url JSON"),
    ("WzFd..c2ln", "header is not a JSON object"),
    (f"{b64url(json.dumps({'alg': 'ES256', 'x5c': ['bm90IGEgY2VydA==']}).encode())}..c2ln",
     "x5c[0] is not a base64 DER certificate"),
])
def test_a_malformed_token_is_refused(verifier, token, problem):
    # Execute / Assert
    assert problem in refusal(verifier, token)


def test_a_signature_of_the_wrong_length_is_refused(issue, verifier):
    # Prepare
    token, chain = signed(issue(DEPLOYER))
    header = token.split(".")[0]

    # Execute / Assert
    assert "is 64 bytes, not 3" in refusal(verifier, f"{header}..{b64url(b'abc')}", chain=chain)
